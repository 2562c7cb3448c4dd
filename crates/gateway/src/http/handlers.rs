//! The inference routes. Each adapts: accept (key, body), admit (the
//! candidates this key may use, in order), fail over (`routing::failover`),
//! respond (a whole answer, or the SSE response), with the outcome told
//! once whatever happens.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::future::BoxFuture;
use openai_types::Usage;
use openai_types::chat::ChatCompletionRequest;
use openai_types::completions::CompletionRequest;
use openai_types::embeddings::EmbeddingRequest;
use openai_types::responses::Response;
use openai_types::responses::chat::EventWriter;
use openai_types::stream::{OutputShape, SseWriter};

use super::extract::{Accepted, accept};
use super::respond::{json, served_by, served_by_of};
use super::sse::{self, Writer};
use crate::backend::sagemaker::shape;
use crate::backend::{ChatCall, CompletionCall, Model, chat_only};
use crate::error::ApiError;
use crate::ids::{new_id, now};
use crate::observe::outcome::Outcome;
use crate::routing::failover::{self, Opened, Rules, Served};
use crate::routing::state::{AppState, Handle};

/// `POST /v1/chat/completions`.
pub(super) async fn chat(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    let (a, r) = accept::<ChatCompletionRequest>(&req, payload, &state)
        .await?
        .split();
    serve_chat(&handle, &state, &a, r, Shape::Chat).await
}

/// What a chat answer is written as.
pub(super) enum Shape {
    /// `chat.completion` and its chunks.
    Chat,
    /// A `response` (the Responses API) and its events, from this base.
    Responses(Box<Response>),
}

/// Serves a chat request for `a` (a chat request, or a Responses request
/// translated to one): validated, admitted, failed over, answered whole or
/// streamed in `shape`.
pub(super) async fn serve_chat<A: super::extract::Named>(
    handle: &web::Data<Handle>,
    state: &AppState,
    a: &Accepted<A>,
    r: ChatCompletionRequest,
    shape: Shape,
) -> Result<HttpResponse, ApiError> {
    shape::validate_chat(&r)?;
    let route = match shape {
        Shape::Chat => "chat",
        Shape::Responses(_) => "responses",
    };
    let prompt_estimate = shape::estimate_prompt(&r);
    let cands = admit(state, a, state.candidates(&r.model)?, prompt_estimate).await?;
    let (id, created) = (new_id("chatcmpl"), now());
    let (stream, include_usage) = (r.is_stream(), r.include_usage());
    let mut call = Reusable::new(ChatCall {
        prompt_estimate,
        id,
        created,
        client_auth: a.caller.clone(),
        max_choices: state.config.max_choices,
        images: Default::default(),
        req: r,
    });
    let h = handle.clone();
    if stream {
        let writer = match shape {
            Shape::Chat => {
                let c = call.peek()?;
                Writer::Chat(SseWriter::new(
                    &c.id,
                    &c.req.model,
                    created,
                    OutputShape::Chat,
                ))
            }
            Shape::Responses(base) => Writer::Responses(Box::new(EventWriter::new(*base))),
        };
        let mut open = |m: Arc<Model>, more: bool| -> BoxFuture<'static, _> {
            let (h, call) = (h.clone(), call.take(more));
            Box::pin(async move {
                failover::first_batch(h.backends.chat_stream(&m, call?).await?).await
            })
        };
        return streamed(state, a, route, cands, &mut open, writer, include_usage).await;
    }
    let mut ask = |m: Arc<Model>, more: bool| -> BoxFuture<'static, _> {
        let (h, call) = (h.clone(), call.take(more));
        Box::pin(async move { h.backends.chat(&m, call?).await })
    };
    let served = whole(state, a, route, cands, &mut ask).await?;
    let usage = served.value.usage.clone();
    Ok(match shape {
        Shape::Chat => answer(a, route, &served, usage.as_ref()),
        Shape::Responses(base) => {
            let served = Served {
                value: openai_types::responses::chat::from_chat(*base, &served.value),
                model: served.model,
                took: served.took,
            };
            answer(a, route, &served, usage.as_ref())
        }
    })
}

/// `POST /v1/completions` (legacy; SageMaker endpoints and upstreams).
pub(super) async fn completions(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    let (a, r) = accept::<CompletionRequest>(&req, payload, &state)
        .await?
        .split();
    let prompt = shape::validate_completion(&r)?;
    let mut cands = state.candidates(&r.model)?;
    cands.retain(|m| handle.backends.serves_completions(m));
    if cands.is_empty() {
        return Err(chat_only(&r.model));
    }
    let prompt_estimate = openai_types::tokens::estimate_tokens(&prompt);
    let cands = admit(&state, &a, cands, prompt_estimate).await?;
    let (id, created) = (new_id("cmpl"), now());
    let (stream, include_usage) = (r.is_stream(), r.include_usage());
    let writer = Writer::Chat(SseWriter::new(
        &id,
        &r.model,
        created,
        OutputShape::Completion,
    ));
    let mut call = Reusable::new(CompletionCall {
        prompt_estimate,
        req: r,
        prompt,
        id,
        created,
        client_auth: a.caller.clone(),
    });
    let h = handle.clone();
    if stream {
        let mut open = |m: Arc<Model>, more: bool| -> BoxFuture<'static, _> {
            let (h, call) = (h.clone(), call.take(more));
            Box::pin(async move {
                failover::first_batch(h.backends.completion_stream(&m, call?).await?).await
            })
        };
        return streamed(
            &state,
            &a,
            "completions",
            cands,
            &mut open,
            writer,
            include_usage,
        )
        .await;
    }
    let mut ask = |m: Arc<Model>, more: bool| -> BoxFuture<'static, _> {
        let (h, call) = (h.clone(), call.take(more));
        Box::pin(async move { h.backends.completion(&m, call?).await })
    };
    let served = whole(&state, &a, "completions", cands, &mut ask).await?;
    let usage = served.value.usage.clone();
    Ok(answer(&a, "completions", &served, usage.as_ref()))
}

/// `POST /v1/embeddings`.
pub(super) async fn embeddings(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    let (a, r) = accept::<EmbeddingRequest>(&req, payload, &state)
        .await?
        .split();
    let cands = admit(&state, &a, state.candidates(&r.model)?, 0).await?;
    let h = handle.clone();
    let caller = a.caller.clone();
    // A copy only while another candidate may need one.
    let mut r = Reusable::new(r);
    let mut ask = |m: Arc<Model>, more: bool| -> BoxFuture<'static, _> {
        let (h, r, caller) = (h.clone(), r.take(more), caller.clone());
        Box::pin(async move { h.backends.embeddings(&m, r?, caller).await })
    };
    let served = whole(&state, &a, "embeddings", cands, &mut ask).await?;
    let usage = Usage::new(served.value.usage.prompt_tokens, 0);
    Ok(answer(&a, "embeddings", &served, Some(&usage)))
}

/// The admission hook: the candidates this key may use, in the order to
/// try them (scopes), and a stored key's address, quota and rate limits
/// checked with `estimate` prompt tokens reserved (its ticket goes to the
/// request's outcome, which settles it).
pub(super) async fn admit<T>(
    state: &AppState,
    a: &Accepted<T>,
    cands: Vec<Arc<Model>>,
    estimate: u64,
) -> Result<Vec<Arc<Model>>, ApiError>
where
    T: super::extract::Named,
{
    let allowed = state
        .access
        .permit(a.key.as_ref(), a.r.model_name(), cands)?;
    let price = || state.config.price_of(a.r.model_name());
    let ticket = state
        .access
        .reserve(a.key.as_ref(), a.ip, estimate, price)
        .await?;
    *a.ticket.borrow_mut() = ticket;
    Ok(state.router.order(allowed))
}

/// A request that is sent whole to one candidate at a time: kept while
/// another may follow, moved into the last attempt.
struct Reusable<C>(Option<C>);

impl<C: Clone> Reusable<C> {
    fn new(c: C) -> Self {
        Self(Some(c))
    }

    fn peek(&self) -> Result<&C, ApiError> {
        self.0
            .as_ref()
            .ok_or_else(|| ApiError::internal("request already sent"))
    }

    fn take(&mut self, more: bool) -> Result<C, ApiError> {
        if more { self.0.clone() } else { self.0.take() }
            .ok_or_else(|| ApiError::internal("request already sent"))
    }
}

/// A whole answer through failover; a failure's outcome told.
async fn whole<T, A>(
    state: &AppState,
    a: &Accepted<A>,
    route: &'static str,
    cands: Vec<Arc<Model>>,
    ask: &mut failover::Attempt<'_, T>,
) -> Result<Served<T>, ApiError>
where
    A: super::extract::Named,
{
    failover::run(state, cands, a.r.model_name(), Rules::default(), ask)
        .await
        .inspect_err(|e| a.outcome(route).failed(a.r.model_name(), e))
}

/// A whole answer: its outcome told, written with its `Content-Length`,
/// naming the candidate that served it.
fn answer<T: serde::Serialize, A>(
    a: &Accepted<A>,
    route: &'static str,
    served: &Served<T>,
    usage: Option<&Usage>,
) -> HttpResponse {
    let mut outcome = a.outcome(route);
    outcome.served = Some(served_by_of(&served.model));
    outcome.upstream_time = Some(served.took);
    outcome.finish(200, usage, false);
    let mut resp = json(&served.value);
    served_by(&mut resp, &served.model);
    resp
}

/// A stream through failover (the first batch in hand before anything is
/// sent), then the SSE response.
async fn streamed<A>(
    state: &AppState,
    a: &Accepted<A>,
    route: &'static str,
    cands: Vec<Arc<Model>>,
    open: &mut failover::Attempt<'_, Opened>,
    writer: Writer,
    include_usage: bool,
) -> Result<HttpResponse, ApiError>
where
    A: super::extract::Named,
{
    let rules = Rules {
        first_byte: Some(failover::stream_first_byte),
        ..Rules::default()
    };
    let served = failover::run(state, cands, a.r.model_name(), rules, open)
        .await
        .inspect_err(|e| a.outcome(route).failed(a.r.model_name(), e))?;
    let mut outcome: Outcome = a.outcome(route);
    outcome.served = Some(served_by_of(&served.model));
    outcome.first_token(served.took);
    let mut resp = sse::response(state, outcome, served.value, writer, include_usage);
    served_by(&mut resp, &served.model);
    Ok(resp)
}
