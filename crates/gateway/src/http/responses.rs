//! `POST /v1/responses`. A model served only by OpenAI-style upstreams gets
//! the request as it came (they speak the Responses API natively); every
//! other model (SageMaker, Bedrock, or a mix) is served over chat through
//! `openai_types::responses::chat`, answered as a `response` or as its
//! event stream.

use actix_web::{HttpRequest, HttpResponse, web};
use openai_types::responses::CreateResponse;
use openai_types::responses::chat::{response_base, to_chat};

use super::extract::{authorize, received};
use super::handlers::{Shape, serve_chat};
use super::{intake, passthrough};
use crate::error::ApiError;
use crate::ids::{new_id, now};
use crate::routing::state::Handle;

/// `POST /v1/responses`.
pub(super) async fn responses(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    let started = std::time::Instant::now();
    let key = authorize(&req, &state).await?;
    // Held up to the replay size (so an upstream can be tried again), then
    // streamed: through to an upstream, or read whole (under
    // `max_body_bytes`) for a model served here.
    let limit = state.config.max_body_bytes;
    let hold = state.config.passthrough_replay_bytes;
    let incoming = intake::take(&req, payload, &state, hold).await?;
    let model = incoming
        .model
        .clone()
        .ok_or_else(|| ApiError::invalid("you must provide a model parameter").param("model"))?;
    let cands = state.candidates(&model)?;
    if cands.iter().all(|m| m.served_by().is_some()) {
        return passthrough::forward_incoming(&req, &handle, key, started, incoming, model).await;
    }
    let body = incoming.whole(limit).await?;
    let (a, r) = received(&req, &state, started, key, body)
        .parse::<CreateResponse>()?
        .split();
    let chat = to_chat(&r)?;
    // OpenAI's response ids are `resp_…` (chat's are `chatcmpl-…`).
    let id = new_id("resp").replacen('-', "_", 1);
    let base = response_base(&r, &id, now());
    // The chat request stands for it from here.
    drop(r);
    serve_chat(&handle, &state, &a, chat, Shape::Responses(Box::new(base))).await
}
