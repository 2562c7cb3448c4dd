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
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use super::intake::{self, Body, Incoming};
use crate::backend::Model;
use crate::error::ApiError;
use crate::observe::outcome::Outcome;
use crate::routing::admission::Ask;
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
    "te",
    "upgrade",
    "proxy-authorization",
    "accept-encoding",
];

/// Response headers not forwarded.
const DROP_RESPONSE: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "server",
    "date",
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
    forward(&req, &handle, key, started, path, incoming, model).await
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
    forward(req, handle, key, started, path, incoming, model).await
}

/// Sends `body` to the upstreams that serve `model`, in order.
#[allow(clippy::too_many_arguments)]
async fn forward(
    req: &HttpRequest,
    handle: &web::Data<Handle>,
    key: Option<keyauth::KeyId>,
    started: std::time::Instant,
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
    let ask = Ask {
        key: key.as_ref(),
        ip: req.peer_addr().map(|a| a.ip()),
        model: &model,
        estimate: 0,
    };
    let admitted = state.admit(ask, cands).await?;
    let query = req.query_string();
    let target = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let caller = super::extract::client_auth(req, &state);
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let headers: Vec<(String, Vec<u8>)> = req
        .headers()
        .iter()
        .filter(|(n, _)| !DROP_REQUEST.contains(&n.as_str()))
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let held = matches!(body, Body::Held(_));
    let retry_on = state.router.config().retry_on_status.clone();
    let mut body = Some(body);
    let mut send =
        |m: Arc<Model>, _more: bool| -> BoxFuture<'static, Result<reqwest::Response, ApiError>> {
            let (method, target, caller, headers) = (
                method.clone(),
                target.clone(),
                caller.clone(),
                headers.clone(),
            );
            let (cut, retry_on) = (Arc::clone(&cut), retry_on.clone());
            let body = match body.take() {
                Some(Body::Held(b)) => {
                    body = Some(Body::Held(b.clone()));
                    Some(reqwest::Body::from(b))
                }
                Some(Body::Streamed(rx)) => Some(reqwest::Body::wrap_stream(
                    futures_util::stream::unfold(rx, |mut rx| async move {
                        rx.recv().await.map(|item| (item, rx))
                    }),
                )),
                None => None,
            };
            Box::pin(async move {
                let up = m.served_by().ok_or_else(|| {
                    ApiError::internal("pass-through to a model without an upstream")
                })?;
                let body = body.ok_or_else(|| ApiError::internal("request body already sent"))?;
                let mut r = up.request(method, &target, &caller)?;
                for (name, value) in headers {
                    r = r.header(name, value);
                }
                match r.body(body).send().await {
                    Err(e) => Err(cut
                        .error()
                        .unwrap_or_else(|| crate::backend::openai::transport(up, &e))),
                    Ok(resp) if held && retry_on.contains(&resp.status().as_u16()) => {
                        Err(crate::backend::openai::error_from(up, resp, &caller).await)
                    }
                    Ok(resp) => Ok(resp),
                }
            })
        };
    let rules = Rules {
        // A body that was streamed cannot be sent again.
        attempts: (!held).then_some(1),
        first_byte: Some(FirstByte::Head(Duration::from_secs(
            state.config.first_byte_timeout_secs,
        ))),
    };
    let mut outcome = Outcome {
        key_id: key.as_ref().map(|k| k.as_str().to_owned()),
        started,
        route: "passthrough",
        request_id: super::extract::request_id(req),
        served: None,
        upstream_time: None,
        patch: super::extract::patch_of(req),
        ticket: admitted.ticket(),
    };
    let served = failover::run(state.walk(), &admitted, &model, rules, &mut send)
        .await
        .inspect_err(|e| outcome.failed(&model, e))?;
    let up = served
        .model
        .served_by()
        .ok_or_else(|| ApiError::internal("pass-through to a model without an upstream"))?;
    outcome.served = Some(super::respond::served_by_of(&served.model));
    outcome.upstream_time = Some(served.took);
    outcome.finish(served.value.status().as_u16(), None, false);
    Ok(respond(served.value, &served.model, up, &caller).await)
}

/// Largest upstream error body scrubbed of keys before it is passed on.
const ERROR_BODY_MAX: usize = 64 * 1024;

/// The upstream's response, streamed: status and headers as sent, each
/// chunk forwarded as it comes, a chunk gap over the idle timeout ending the
/// body. An error answer (4xx, 5xx) is read first, up to 64 KiB, and every
/// key the gateway knows (the upstream's own included) masked in it.
async fn respond(
    resp: reqwest::Response,
    m: &Arc<Model>,
    up: &crate::backend::openai::Upstream,
    caller: &crate::backend::Caller,
) -> HttpResponse {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = HttpResponse::build(status);
    for (name, value) in resp.headers() {
        if !DROP_RESPONSE.contains(&name.as_str()) {
            out.append_header((name.as_str(), value.as_bytes()));
        }
    }
    out.insert_header(("x-oai-upstream", m.key()));
    let idle = Duration::from_secs(up.cfg.timeouts.idle_secs);
    let mut body = resp.bytes_stream();
    let mut head = Bytes::new();
    if status.as_u16() >= 400 {
        let mut buf = BytesMut::new();
        let mut whole = false;
        while buf.len() <= ERROR_BODY_MAX {
            match tokio::time::timeout(idle, body.next()).await {
                Ok(Some(Ok(b))) => buf.extend_from_slice(&b),
                Ok(None) => {
                    whole = true;
                    break;
                }
                _ => break,
            }
        }
        let text = String::from_utf8_lossy(&buf);
        let clean = up.scrub(&text, Some(caller));
        if whole {
            return out.body(clean);
        }
        head = Bytes::from(clean);
    }
    let s = async_stream::stream! {
        if !head.is_empty() {
            yield Ok::<Bytes, actix_web::Error>(head);
        }
        loop {
            match tokio::time::timeout(idle, body.next()).await {
                Ok(Some(Ok(b))) => yield Ok::<Bytes, actix_web::Error>(b),
                Ok(Some(Err(e))) => {
                    yield Err(actix_web::error::ErrorBadGateway(e.to_string()));
                    break;
                }
                Ok(None) => break,
                Err(_) => {
                    yield Err(actix_web::error::ErrorGatewayTimeout("upstream idle"));
                    break;
                }
            }
        }
    };
    out.streaming(s)
}
