//! Anthropic's Messages API as a front door: `POST /v1/messages` (whole and
//! streamed) and `POST /v1/messages/count_tokens`. An adapter over the chat
//! lifecycle: the request becomes a chat request
//! (`anthropic_messages::chat::to_chat`) and goes through the same
//! admission, routing, failover and outcome as `/v1/chat/completions`
//! (`route="messages"`); the answer is written as a `message` or as its
//! event stream. Every error, before or after the first byte, is in
//! Anthropic's envelope.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use anthropic_messages::chat::{prompt_tokens, to_chat};
use anthropic_messages::request::TokenCount;
use anthropic_messages::{CountTokensRequest, ErrorResponse, MessagesRequest};

use std::sync::Arc;

use super::extract::{Accepted, Named, Received, authorize, received};
use super::handlers::{Shape, serve_chat};
use super::respond::json;
use super::{intake, passthrough};
use crate::backend::Model;
use crate::config::UpstreamKind;
use crate::error::ApiError;
use crate::routing::state::Handle;

impl Named for MessagesRequest {
    fn model_name(&self) -> &str {
        &self.model
    }
}

impl Named for CountTokensRequest {
    fn model_name(&self) -> &str {
        &self.model
    }
}

/// `POST /v1/messages`. A model served only by `anthropic` upstreams gets
/// the request as it came (headers such as `anthropic-beta` included);
/// every other model is served over chat.
pub(super) async fn messages(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> HttpResponse {
    let served = async {
        let (received, _) = match take(&req, payload, &handle).await? {
            Taken::Passed(resp) => return Ok(resp),
            Taken::Held(received, cands) => (received, cands),
        };
        serve_message(&handle, received.parse::<MessagesRequest>()?, false).await
    };
    served.await.unwrap_or_else(|e| error_response(&e))
}

/// `POST /v1/messages/count_tokens`: passed through to `anthropic`
/// upstreams (they count exactly); for other models, the prompt's tokens
/// estimated the way admission estimates them (system, messages and tool
/// schemas), for a model this key may use.
pub(super) async fn count_tokens(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> HttpResponse {
    let state = handle.state();
    let counted = async {
        let (received, cands) = match take(&req, payload, &handle).await? {
            Taken::Passed(resp) => return Ok(resp),
            Taken::Held(received, cands) => (received, cands),
        };
        let a = received.parse::<CountTokensRequest>()?;
        // The model must be the key's to use; nothing is reserved.
        state
            .access
            .permit(a.meta.key.as_ref(), &a.r.model, cands)?;
        let chat = to_chat(&a.r.into_messages())?;
        Ok::<_, ApiError>(json(&TokenCount {
            input_tokens: prompt_tokens(&chat),
        }))
    };
    counted.await.unwrap_or_else(|e| error_response(&e))
}

/// A Messages body taken in: passed through as it came when every
/// candidate of its model is an `anthropic` upstream, else held whole
/// (under `max_body_bytes`) with those candidates.
enum Taken {
    Passed(HttpResponse),
    Held(Received, Vec<Arc<Model>>),
}

/// The key checked and the body taken: held up to the replay size (so an
/// upstream can be tried again), its model read as it passes.
async fn take(
    req: &HttpRequest,
    payload: web::Payload,
    handle: &web::Data<Handle>,
) -> Result<Taken, ApiError> {
    let state = handle.state();
    let started = std::time::Instant::now();
    let key = authorize(req, &state).await?;
    let incoming =
        intake::take(req, payload, &state, state.config.passthrough_replay_bytes).await?;
    let model = incoming
        .model
        .clone()
        .ok_or_else(|| ApiError::invalid("model: Field required").param("model"))?;
    let cands = state.candidates(&model)?;
    if only_anthropic(&cands) {
        let resp =
            passthrough::forward_incoming(req, handle, key, started, incoming, model).await?;
        return Ok(Taken::Passed(resp));
    }
    let body = incoming.whole(state.config.max_body_bytes).await?;
    Ok(Taken::Held(
        received(req, &state, started, key, body),
        cands,
    ))
}

/// Serves an accepted Messages request over chat, answered as a message
/// or its events (`bedrock`: in Bedrock's event-stream frames).
pub(super) async fn serve_message(
    handle: &web::Data<Handle>,
    accepted: Accepted<MessagesRequest>,
    bedrock: bool,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    let (a, r) = accepted.split();
    let chat = to_chat(&r)?;
    let estimate = prompt_tokens(&chat);
    let id = crate::ids::new_id("msg").replacen('-', "_", 1);
    // The chat request stands for it from here.
    drop(r);
    let shape = Shape::Messages {
        id,
        estimate,
        bedrock,
    };
    serve_chat(handle, &state, &a, chat, shape).await
}

/// Whether every candidate is an `anthropic` upstream (the request then
/// passes through as it came).
fn only_anthropic(cands: &[Arc<Model>]) -> bool {
    cands.iter().all(|m| {
        m.served_by()
            .is_some_and(|u| u.cfg.kind == UpstreamKind::Anthropic)
    })
}

/// `e` in Anthropic's envelope, with the status and headers the OpenAI
/// routes answer it with.
pub(crate) fn error_response(e: &ApiError) -> HttpResponse {
    let mut resp = e.error_response();
    let body = ErrorResponse::from_openai(e.status.as_u16(), &e.body);
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    if e.status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().remove("www-authenticate");
    }
    resp.set_body(actix_web::body::BoxBody::new(bytes))
}
