//! `POST /v1/responses`. A model served only by OpenAI-style upstreams gets
//! the request as it came (they speak the Responses API natively); every
//! other model (SageMaker, Bedrock, or a mix) is served over chat through
//! `openai_types::responses::chat`, answered as a `response` or as its
//! event stream.

use actix_web::{HttpRequest, HttpResponse, web};
use openai_types::responses::CreateResponse;
use openai_types::responses::chat::{response_base, to_chat};

use super::extract::{parse, receive};
use super::handlers::{Shape, serve_chat};
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
    let received = receive(&req, payload, &state).await?;
    let r: CreateResponse = parse(&received.body)?;
    let cands = state.candidates(&r.model)?;
    if cands.iter().all(|m| m.served_by().is_some()) {
        let body = received.body.clone();
        let a = received.with(r);
        let model = a.r.model.clone();
        return super::passthrough::forward_held(&req, &handle, a.key, a.started, body, model)
            .await;
    }
    let a = received.with(r);
    let chat = to_chat(&a.r).map_err(|e| ApiError::invalid(e.message).param(e.param))?;
    // OpenAI's response ids are `resp_…` (chat's are `chatcmpl-…`).
    let id = new_id("resp").replacen('-', "_", 1);
    let base = response_base(&a.r, &id, now());
    serve_chat(&handle, &state, &a, chat, Shape::Responses(Box::new(base))).await
}
