//! Every other `/v1/*` route (audio, images, moderations, responses,
//! files…) passed through to OpenAI-style upstreams, both bodies streamed.
//!
//! The body is taken by [`super::intake`]: its model is the outermost JSON
//! object's `model` or the form's `model` field, else the URL path stands
//! in for it (`audio/speech`). A body up to the replay size is held, so the
//! request can fail over to the next upstream before the first byte; a
//! larger one is streamed to one upstream as it arrives, and so is every
//! response.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use super::extract::RequestMeta;
use super::intake::{self, Incoming};
use crate::backend::Model;
use crate::backend::relay::{Relay, RelayError, Relayed, RelayedBody};
use crate::error::ApiError;
use crate::routing::failover::{self, FirstByte, Rules};
use crate::routing::state::Handle;

/// Request headers not forwarded (hop-by-hop, or set by the gateway).
const DROP_REQUEST: &[&str] = &[
    "x-request-id",
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "authorization",
    // The client's gateway key, Anthropic's way.
    "x-api-key",
    "te",
    "upgrade",
    "proxy-authorization",
    "accept-encoding",
];

/// Refuses a client's path that could leave the upstream's base path once
/// a URL parser has read it (see [`openai_types::path::check`]): 400 in the
/// OpenAI envelope.
pub(crate) fn check_path(path: &str) -> Result<(), ApiError> {
    openai_types::path::check(path).map_err(|why| {
        ApiError::invalid(format!("The request path is not allowed: {why}")).code("invalid_path")
    })
}

/// The pass-through handler: the key checked, the path guarded, the body
/// held or streamed, then the upstreams that admit the model in order
/// (several only when the body can be sent again).
pub(crate) async fn passthrough(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    let started = std::time::Instant::now();
    let key = super::extract::authorize(&req, &state).await?;
    let path = req
        .path()
        .strip_prefix("/v1")
        .unwrap_or(req.path())
        .to_owned();
    check_path(&path)?;
    let hold = state.config.passthrough_replay_bytes;
    let incoming = intake::take(&req, payload, &state, hold).await?;
    let model = incoming
        .model
        .clone()
        .unwrap_or_else(|| path.trim_start_matches('/').to_owned());
    let meta = RequestMeta::of(&req, &state, started, key);
    forward(&req, &handle, meta, path, incoming, model).await
}

/// Passes an [`Incoming`] body through to the upstreams that serve `model`.
pub(crate) async fn forward_incoming(
    req: &HttpRequest,
    handle: &web::Data<Handle>,
    key: Option<keyauth::KeyId>,
    started: std::time::Instant,
    incoming: Incoming,
    model: String,
) -> Result<HttpResponse, ApiError> {
    let path = req
        .path()
        .strip_prefix("/v1")
        .unwrap_or(req.path())
        .to_owned();
    check_path(&path)?;
    let meta = RequestMeta::of(req, &handle.state(), started, key);
    forward(req, handle, meta, path, incoming, model).await
}

/// Sends `body` to the upstreams that serve `model`, in order.
async fn forward(
    req: &HttpRequest,
    handle: &web::Data<Handle>,
    meta: RequestMeta,
    path: String,
    incoming: Incoming,
    model: String,
) -> Result<HttpResponse, ApiError> {
    let (body, cut) = (incoming.body, incoming.cut);
    let state = handle.state();
    let cands = state.upstream_candidates(&model);
    if cands.is_empty() {
        return Err(ApiError::model_not_found(format!(
            "No upstream serves '{model}' for {} {}",
            req.method(),
            req.path()
        )));
    }
    // A stored key's address, quota and rate limits (no tokens are known
    // of a pass-through body: it reserves and settles none).
    let admitted = state.admit(meta.ask(&model, 0), cands).await?;
    let query = req.query_string();
    let target = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let default_head = Duration::from_secs(state.config.first_byte_timeout_secs);
    let headers: Vec<(String, Vec<u8>)> = req
        .headers()
        .iter()
        .filter(|(n, _)| !DROP_REQUEST.contains(&n.as_str()))
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let mut relay = Relay::new(
        req.method().as_str(),
        target,
        headers,
        meta.caller.clone(),
        state.router.config().retry_on_status.clone(),
        body,
        Arc::new(move || cut.error()),
        default_head,
    )?;
    let held = relay.replayable();
    let mut send = |m: Arc<Model>, _more: bool| relay.attempt(m);
    let rules = Rules {
        // A body that was streamed cannot be sent again, and its head is
        // timed by the relay.
        attempts: (!held).then_some(1),
        first_byte: held.then_some(FirstByte::Head(default_head)),
    };
    let mut outcome = meta.outcome("passthrough", &admitted);
    let served = failover::run(state.walk(), &admitted, &model, rules, &mut send)
        .await
        .inspect_err(|e| outcome.failed(&model, e))?;
    outcome.served = Some(super::respond::served_by_of(&served.model));
    outcome.upstream_time = Some(served.took);
    outcome.finish(served.value.status(), None, false);
    let relayed = relay.respond(served.value, &served.model).await?;
    Ok(respond(relayed, &served.model))
}

/// The upstream's answer as the client's: status and headers as sent, the
/// body whole or streamed as the relay gives it.
fn respond(relayed: Relayed, m: &Model) -> HttpResponse {
    let status = StatusCode::from_u16(relayed.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = HttpResponse::build(status);
    for (name, value) in &relayed.headers {
        out.append_header((name.as_str(), value.as_slice()));
    }
    out.insert_header(("x-oai-upstream", m.key()));
    match relayed.body {
        RelayedBody::Whole(b) => out.body(b),
        RelayedBody::Streamed(s) => out.streaming(s.map(|r| {
            r.map_err(|e| match e {
                RelayError::Upstream(e) => actix_web::error::ErrorBadGateway(e),
                RelayError::Idle => actix_web::error::ErrorGatewayTimeout("upstream idle"),
            })
        })),
    }
}
