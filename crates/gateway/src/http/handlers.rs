//! The inference routes. Each adapts: accept (key, body), validate, admit
//! (`AppState::admit`: the candidates this key may use, in order, and its
//! ticket), serve (`routing::serve`: one path for every [`Call`]), respond
//! (a whole answer, or the SSE response), with the outcome told once
//! whatever happens.

use actix_web::{HttpRequest, HttpResponse, web};
use openai_types::Usage;
use openai_types::chat::{ChatCompletionRequest, FinishReason};
use openai_types::completions::CompletionRequest;
use openai_types::embeddings::EmbeddingRequest;
use openai_types::responses::Response;
use openai_types::responses::chat::EventWriter;
use openai_types::stream::{OutputShape, SseWriter};

use super::extract::{Accepted, Named, accept};
use super::respond::{json, served_by, served_by_of};
use super::sse::{self, Writer};
use crate::backend::call::{Call, EmbeddingCall};
use crate::backend::{ChatCall, CompletionCall, chat_only};
use crate::error::ApiError;
use crate::ids::{new_id, now};
use crate::observe::outcome::Outcome;
use crate::routing::admission::{Admitted, Ask};
use crate::routing::failover::Served;
use crate::routing::serve;
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
    /// An Anthropic `message` and its events: its id, and the prompt
    /// estimate `message_start` carries.
    Messages {
        /// `msg_…`.
        id: String,
        /// Prompt tokens, estimated.
        estimate: u64,
        /// Streamed as Bedrock's event-stream frames (InvokeModel), not SSE.
        bedrock: bool,
    },
}

/// Serves a chat request for `a` (a chat request, or a Responses request
/// translated to one): validated, admitted, served, answered whole or
/// streamed in `shape`. When every candidate fails for a reason another
/// model may not share (the context window, a content policy), the
/// model's `fallbacks` are admitted and tried in turn (a key not allowed
/// one skips it); `x-oai-model` names the model that answered.
pub(super) async fn serve_chat<A: super::extract::Named>(
    handle: &web::Data<Handle>,
    state: &AppState,
    a: &Accepted<A>,
    r: ChatCompletionRequest,
    shape: Shape,
) -> Result<HttpResponse, ApiError> {
    openai_types::validate::chat(&r)?;
    let route = match shape {
        Shape::Chat => "chat",
        Shape::Responses(_) => "responses",
        Shape::Messages { .. } => "messages",
    };
    let prompt_estimate = openai_types::validate::chat_prompt_tokens(&r);
    let affinity = crate::routing::affinity::of_chat(
        state.config.routing.affinity,
        a.meta.session.as_deref(),
        a.meta.key.as_ref().map(|k| k.as_str()),
        &r,
    );
    let fallbacks = state.fallbacks_of(&r.model);
    let (id, created) = (new_id("chatcmpl"), now());
    let mut call = Some(ChatCall {
        prompt_estimate,
        id,
        created,
        client_auth: a.meta.caller.clone(),
        max_choices: state.config.max_choices,
        images: Default::default(),
        key_guardrail: state.access.guardrail_of(a.meta.key.as_ref()),
        req: r,
    });
    // The failure that moved the request on: the model's error, its name
    // and why (what every fallback replaces).
    let mut moved: Option<(ApiError, String, crate::routing::fallback::Reason)> = None;
    for (i, name) in std::iter::once(None)
        .chain(fallbacks.iter().map(Some))
        .enumerate()
    {
        let more = i < fallbacks.len();
        let Some(mut attempt) = (if more { call.clone() } else { call.take() }) else {
            break;
        };
        if let Some(n) = name {
            attempt.req.model.clone_from(n);
        }
        let model = attempt.req.model.clone();
        let ask = Ask {
            model: &model,
            affinity,
            ..a.ask(prompt_estimate)
        };
        let cands = if name.is_none() {
            state.candidates(&model)
        } else {
            state.fallback_candidates(&model)
        };
        let admitted = match cands {
            Ok(cands) => state.admit(ask, cands).await,
            Err(e) => Err(e),
        };
        let admitted = match (admitted, &moved) {
            (Ok(x), _) => x,
            (Err(e), None) => return Err(e),
            // A fallback this key may not use (or gone): the next one.
            (Err(_), Some(_)) => continue,
        };
        if let Some((_, from, why)) = &moved {
            tracing::info!(from = %from, to = %model, reason = why.label(), "every candidate failed; trying a fallback model");
            crate::observe::metrics::METRICS
                .fallbacks
                .with_label_values(&[from.as_str(), model.as_str(), why.label()])
                .inc();
        }
        let serving = Serving {
            handle,
            state,
            a,
            admitted,
            route,
        };
        match serving.respond(attempt, &shape).await {
            Err(e) if more => match crate::routing::fallback::reason(&e) {
                // The first failure is what the client sees if nothing
                // else answers; the model it names stays the one asked.
                Some(why) if moved.is_none() => moved = Some((e, model, why)),
                Some(_) => {}
                None => return Err(e),
            },
            // `x-oai-model` names the model that answered (`served_by`).
            result => return result,
        }
    }
    Err(moved.map_or_else(|| ApiError::internal("no model left to try"), |(e, ..)| e))
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
    openai_types::validate::completion(&r)?;
    // Only candidates whose backend takes this request (a SageMaker
    // endpoint takes one text prompt; an upstream takes what the spec does).
    let mut refusal = None;
    let mut cands = state.candidates(&r.model)?;
    cands.retain(|m| match handle.backends.takes_completion(m, &r) {
        Ok(()) => true,
        Err(e) => {
            refusal.get_or_insert(e);
            false
        }
    });
    if cands.is_empty() {
        return Err(refusal.unwrap_or_else(|| chat_only(&r.model)));
    }
    let prompt_estimate = openai_types::validate::completion_prompt_tokens(&r);
    let serving = Serving {
        handle: &handle,
        state: &state,
        a: &a,
        admitted: state.admit(a.ask(prompt_estimate), cands).await?,
        route: "completions",
    };
    let (id, created) = (new_id("cmpl"), now());
    let (stream, include_usage) = (r.is_stream(), r.include_usage());
    let writer = Writer::Chat(SseWriter::new(
        &id,
        &r.model,
        created,
        OutputShape::Completion,
    ));
    let call = CompletionCall {
        prompt_estimate,
        req: r,
        id,
        created,
        client_auth: a.meta.caller.clone(),
    };
    if stream {
        return serving.streamed(call, writer, include_usage).await;
    }
    let served = serving.whole(call).await?;
    let usage = served.value.usage.clone();
    Ok(serving.answer(&served, usage.as_ref(), None))
}

/// `POST /v1/embeddings`.
pub(super) async fn embeddings(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    let (a, req) = accept::<EmbeddingRequest>(&req, payload, &state)
        .await?
        .split();
    let serving = Serving {
        handle: &handle,
        state: &state,
        a: &a,
        admitted: state.admit(a.ask(0), state.candidates(&req.model)?).await?,
        route: "embeddings",
    };
    let call = EmbeddingCall {
        req,
        caller: a.meta.caller.clone(),
    };
    let served = serving.whole(call).await?;
    let usage = Usage::new(served.value.usage.prompt_tokens, 0);
    Ok(serving.answer(&served, Some(&usage), None))
}

/// `POST /v1/rerank` (also `/v2/rerank` and `/rerank`: the Cohere/Jina
/// shape): Bedrock's rerank models, SageMaker TEI endpoints, upstreams.
pub(super) async fn rerank(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    let (a, req) = accept::<openai_types::rerank::RerankRequest>(&req, payload, &state)
        .await?
        .split();
    openai_types::rerank::validate(&req)
        .map_err(|(message, param)| ApiError::invalid(message).param(param))?;
    let serving = Serving {
        handle: &handle,
        state: &state,
        a: &a,
        admitted: state.admit(a.ask(0), state.candidates(&req.model)?).await?,
        route: "rerank",
    };
    let call = crate::backend::call::RerankCall {
        req,
        id: new_id("rerank"),
        caller: a.meta.caller.clone(),
    };
    let served = serving.whole(call).await?;
    Ok(serving.answer(&served, None, None))
}

/// An admitted request on its way to an answer: what every answer path
/// needs, held once.
struct Serving<'a, A> {
    handle: &'a Handle,
    state: &'a AppState,
    a: &'a Accepted<A>,
    admitted: Admitted,
    route: &'static str,
}

impl<A: Named> Serving<'_, A> {
    /// A chat call served and answered in `shape`: streamed when the
    /// request asks, else whole.
    async fn respond(&self, call: ChatCall, shape: &Shape) -> Result<HttpResponse, ApiError> {
        let r = &call.req;
        let (id, created) = (call.id.as_str(), call.created);
        let (stream, include_usage) = (r.is_stream(), r.include_usage());
        let writer = stream.then(|| match shape {
            Shape::Chat => Writer::Chat(SseWriter::new(id, &r.model, created, OutputShape::Chat)),
            Shape::Responses(base) => {
                Writer::Responses(Box::new(EventWriter::new((**base).clone())))
            }
            Shape::Messages {
                id,
                estimate,
                bedrock: false,
            } => Writer::Messages(Box::new(anthropic_messages::events::EventWriter::new(
                id, &r.model, *estimate,
            ))),
            Shape::Messages {
                id,
                estimate,
                bedrock: true,
            } => Writer::Bedrock(Box::new(super::bedrock_frames::Framer::new(
                id, &r.model, *estimate,
            ))),
        });
        if let Some(writer) = writer {
            return self.streamed(call, writer, include_usage).await;
        }
        let served = self.whole(call).await?;
        let usage = served.value.usage.clone();
        let reasons = served.value.choices.iter().map(|c| c.finish_reason);
        let reason = crate::observe::outcome::reason_of(reasons);
        Ok(match shape {
            Shape::Chat => self.answer(&served, usage.as_ref(), reason),
            Shape::Responses(base) => {
                let served = Served {
                    value: openai_types::responses::chat::from_chat(
                        (**base).clone(),
                        &served.value,
                    ),
                    model: served.model,
                    took: served.took,
                };
                self.answer(&served, usage.as_ref(), reason)
            }
            Shape::Messages { id, .. } => {
                let served = Served {
                    value: anthropic_messages::chat::from_chat(
                        &served.value,
                        id,
                        self.a.r.model_name(),
                    ),
                    model: served.model,
                    took: served.took,
                };
                self.answer(&served, usage.as_ref(), reason)
            }
        })
    }

    /// A whole answer through the serve path; a failure's outcome told.
    async fn whole<C: Call>(&self, call: C) -> Result<Served<C::Answer>, ApiError> {
        serve::whole(self.state, &self.handle.backends, &self.admitted, call)
            .await
            .inspect_err(|e| self.failed(e))
    }

    fn failed(&self, e: &ApiError) {
        self.a
            .outcome(self.route, &self.admitted)
            .failed(self.a.r.model_name(), e);
    }

    /// A whole answer: its outcome told, written with its `Content-Length`,
    /// naming the candidate that served it.
    fn answer<T: serde::Serialize>(
        &self,
        served: &Served<T>,
        usage: Option<&Usage>,
        reason: Option<FinishReason>,
    ) -> HttpResponse {
        let mut outcome = self.a.outcome(self.route, &self.admitted);
        outcome.finish_reason = reason;
        outcome.served = Some(served_by_of(&served.model));
        outcome.upstream_time = Some(served.took);
        outcome.finish(200, usage, false);
        let mut resp = json(&served.value);
        served_by(&mut resp, &served.model);
        resp
    }

    /// A stream through the serve path (the first batch in hand before
    /// anything is sent), then the SSE response.
    async fn streamed<C: Call>(
        &self,
        call: C,
        writer: Writer,
        include_usage: bool,
    ) -> Result<HttpResponse, ApiError> {
        let served = serve::stream(self.state, &self.handle.backends, &self.admitted, call)
            .await
            .inspect_err(|e| self.failed(e))?;
        let mut outcome: Outcome = self.a.outcome(self.route, &self.admitted);
        outcome.served = Some(served_by_of(&served.model));
        outcome.first_token(served.took);
        let model = std::sync::Arc::clone(&served.model);
        let mut resp = sse::response(self.state, outcome, served, writer, include_usage);
        served_by(&mut resp, &model);
        Ok(resp)
    }
}
