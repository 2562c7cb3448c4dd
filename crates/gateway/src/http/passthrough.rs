//! Every other `/v1/*` route (audio, images, moderations, responses,
//! files…) passed through to OpenAI-style upstreams, both bodies streamed.
//!
//! The model is read from a JSON body's `model`, from a multipart form's
//! `model` field (looked for in the first 64 KiB, where clients put their
//! small fields), or else the URL path stands in for it (`audio/speech`).
//! A JSON or empty body is held, so the request can fail over to the next
//! upstream before the first byte; a multipart body is streamed to one
//! upstream as it arrives, and so is every response.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::error::ApiError;
use futures_util::future::BoxFuture;

use crate::backend::Model;
use crate::observe::outcome::Outcome;
use crate::routing::failover::{self, Rules};
use crate::routing::state::Handle;

/// How much of a multipart body is searched for the `model` field.
const MODEL_SCAN_BYTES: usize = 64 * 1024;

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

/// The `model` field's value in the start of a multipart body.
pub fn multipart_model(prefix: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(prefix);
    let rest = text.split("name=\"model\"").nth(1)?;
    let value = rest.split("\r\n\r\n").nth(1)?;
    let v = value.split("\r\n").next()?.trim();
    (!v.is_empty() && value.contains("\r\n")).then(|| v.to_owned())
}

/// Refuses a client's path that could leave the upstream's base path once
/// a URL parser has read it (see [`openai_types::path::check`]): 400 in the
/// OpenAI envelope.
pub fn check_path(path: &str) -> Result<(), ApiError> {
    openai_types::path::check(path).map_err(|why| {
        ApiError::invalid(format!("The request path is not allowed: {why}")).code("invalid_path")
    })
}

/// The first `"model": "…"` in the start of a JSON body too large to hold
/// (the body is streamed on; clients put `model` first).
pub fn json_model(prefix: &[u8]) -> Option<String> {
    let mut rest = prefix;
    while let Some(i) = memchr::memmem::find(rest, b"\"model\"") {
        rest = &rest[i + 7..];
        let after = rest.trim_ascii_start();
        let Some(after) = after.strip_prefix(b":") else {
            continue;
        };
        let after = after.trim_ascii_start();
        let Some(value) = after.strip_prefix(b"\"") else {
            continue;
        };
        let end = value.iter().position(|&c| c == b'"' || c == b'\\')?;
        if value[end] == b'\\' {
            return None;
        }
        return std::str::from_utf8(&value[..end]).ok().map(str::to_owned);
    }
    None
}

enum Body {
    /// Held whole: may be sent more than once.
    Held(Bytes),
    /// Streamed: one attempt.
    Streamed(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>),
}

/// Reads the rest of `payload` into a channel from a task on this worker, so
/// the upstream request can stream it (the payload is not `Send`). A body
/// over `limit` or past its deadline ends the upload with an error, and
/// `late` says which.
fn pump(
    mut payload: web::Payload,
    first: Bytes,
    limit: usize,
    deadline: super::body::Deadline,
    late: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    actix_web::rt::spawn(async move {
        let mut sent = first.len();
        if !first.is_empty() && tx.send(Ok(first)).await.is_err() {
            return;
        }
        loop {
            let item = match deadline.next(&mut payload, sent).await {
                Ok(None) => return,
                Ok(Some(b)) => {
                    sent += b.len();
                    if sent > limit {
                        Err(std::io::Error::other(
                            "request body over the pass-through limit",
                        ))
                    } else {
                        Ok(b)
                    }
                }
                Err(e) => {
                    if e.status == StatusCode::REQUEST_TIMEOUT {
                        late.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(std::io::Error::other(e.body.error.message))
                }
            };
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    rx
}

/// The start of the body: read whole if it fits `hold` bytes, else the
/// first `hold` bytes and the rest streamed. For multipart, reading stops
/// early once the `model` field has been seen.
async fn take_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    state: &crate::routing::state::AppState,
    multipart: bool,
    hold: usize,
    late: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<(Body, Option<String>), ApiError> {
    let cfg = &state.config;
    let limit = cfg.max_passthrough_body_bytes;
    if super::body::declared_len(req).is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let deadline = super::body::Deadline::new(cfg);
    let hold = hold.min(limit);
    let mut prefix = BytesMut::new();
    loop {
        let Some(chunk) = deadline.next(&mut payload, prefix.len()).await? else {
            // Whole: held for failover.
            let bytes = prefix.freeze();
            let model = if multipart {
                multipart_model(&bytes)
            } else {
                serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("model").and_then(|m| m.as_str()).map(str::to_owned))
            };
            return Ok((Body::Held(bytes), model));
        };
        if prefix.len() + chunk.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        prefix.extend_from_slice(&chunk);
        let scanned = multipart && prefix.len() >= MODEL_SCAN_BYTES.min(hold);
        if prefix.len() > hold || scanned {
            break;
        }
    }
    let scan = &prefix[..prefix.len().min(MODEL_SCAN_BYTES.max(hold))];
    let model = if multipart {
        multipart_model(scan)
    } else {
        json_model(scan)
    };
    let rx = pump(payload, prefix.freeze(), limit, deadline, Arc::clone(late));
    Ok((Body::Streamed(rx), model))
}

/// The pass-through handler: the key checked, the path guarded, the body
/// held or streamed, then the upstreams that admit the model in order
/// (several only when the body can be sent again).
pub async fn passthrough(
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
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let late = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let multipart = ctype.starts_with("multipart/");
    let hold = state.config.passthrough_replay_bytes;
    let (body, from_body) = take_body(&req, payload, &state, multipart, hold, &late).await?;
    let model = from_body.unwrap_or_else(|| path.trim_start_matches('/').to_owned());
    forward(&req, &handle, key, started, path, body, model, late).await
}

/// A JSON body taken for a route that serves some models itself and passes
/// others through (`/v1/responses`): held whole up to `hold` bytes (so it
/// can be parsed, or sent more than once), streamed beyond.
#[derive(Debug)]
pub struct Incoming {
    body: Body,
    /// The body's `model`.
    pub model: Option<String>,
    late: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Held(b) => write!(f, "Held({} bytes)", b.len()),
            Self::Streamed(_) => f.write_str("Streamed"),
        }
    }
}

impl Incoming {
    /// The whole body, read to its end if it was being streamed: 413 above
    /// `limit`, 408 past the body's deadline.
    pub async fn whole(self, limit: usize) -> Result<Bytes, ApiError> {
        let mut rx = match self.body {
            Body::Held(b) if b.len() <= limit => return Ok(b),
            Body::Held(_) => return Err(ApiError::too_large(limit)),
            Body::Streamed(rx) => rx,
        };
        let mut out = BytesMut::new();
        while let Some(chunk) = rx.recv().await {
            let chunk = chunk.map_err(|e| {
                if self.late.load(std::sync::atomic::Ordering::Relaxed) {
                    ApiError::body_timeout()
                } else {
                    ApiError::invalid(format!("the request body could not be read: {e}"))
                }
            })?;
            if out.len() + chunk.len() > limit {
                return Err(ApiError::too_large(limit));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }
}

/// Takes a JSON body as [`Incoming`].
pub async fn take_json(
    req: &HttpRequest,
    payload: web::Payload,
    state: &crate::routing::state::AppState,
    hold: usize,
) -> Result<Incoming, ApiError> {
    let late = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (body, model) = take_body(req, payload, state, false, hold, &late).await?;
    Ok(Incoming { body, model, late })
}

/// Passes an [`Incoming`] body through to the upstreams that serve `model`.
pub async fn forward_incoming(
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
    forward(
        req,
        handle,
        key,
        started,
        path,
        incoming.body,
        model,
        incoming.late,
    )
    .await
}

/// Sends `body` to the upstreams that serve `model`, in order.
#[allow(clippy::too_many_arguments)]
async fn forward(
    req: &HttpRequest,
    handle: &web::Data<Handle>,
    key: Option<keyauth::KeyId>,
    started: std::time::Instant,
    path: String,
    body: Body,
    model: String,
    late: Arc<std::sync::atomic::AtomicBool>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    let cands = state.upstream_candidates(&model);
    if cands.is_empty() {
        return Err(ApiError::model_not_found(format!(
            "No upstream serves '{model}' for {} {}",
            req.method(),
            req.path()
        )));
    }
    let cands = state
        .router
        .order(state.access.permit(key.as_ref(), &model, cands)?);
    // A stored key's address, quota and rate limits (no tokens are known
    // of a pass-through body: it reserves and settles none).
    let ticket = state
        .access
        .reserve(key.as_ref(), req.peer_addr().map(|a| a.ip()), 0, || None)
        .await?;
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
            let (late, retry_on) = (Arc::clone(&late), retry_on.clone());
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
                    Err(_) if late.load(std::sync::atomic::Ordering::Relaxed) => {
                        Err(ApiError::body_timeout())
                    }
                    Err(e) => Err(crate::backend::openai::transport(up, &e)),
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
        first_byte: Some(|m, _| {
            Duration::from_secs(
                m.served_by()
                    .map_or(120, |u| u.cfg.timeouts.first_byte_secs),
            )
        }),
    };
    let mut outcome = Outcome {
        key_id: key.as_ref().map(|k| k.as_str().to_owned()),
        started,
        route: "passthrough",
        request_id: super::extract::request_id(req),
        served: None,
        upstream_time: None,
        patch: super::extract::patch_of(req),
        ticket,
    };
    let served = failover::run(&state, cands, &model, rules, &mut send)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays the `path_guard` fuzz corpus: a path the guard accepts keeps
    /// an upstream URL under its base.
    #[test]
    fn path_guard_corpus_replays_clean() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/path_guard");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(e.unwrap().path()).unwrap();
            n += 1;
            let Ok(tail) = std::str::from_utf8(&data) else {
                continue;
            };
            let path = format!("/{}", tail.split(['?', '#']).next().unwrap_or(""));
            if check_path(&path).is_err() {
                continue;
            }
            if let Ok(url) = url::Url::parse(&format!("http://up.example/base/v1{path}")) {
                assert_eq!(url.host_str(), Some("up.example"), "{path:?}");
                let p = url.path();
                assert!(
                    p == "/base/v1" || p.starts_with("/base/v1/"),
                    "{path:?} -> {url}"
                );
            }
        }
        assert!(n > 0, "empty corpus");
    }

    #[test]
    fn the_model_is_found_in_a_json_prefix() {
        assert_eq!(
            json_model(br#"{"model" : "gpt-4o", "input": "#).as_deref(),
            Some("gpt-4o")
        );
        assert_eq!(
            json_model(br#"{"input": {"x": 1}, "model":"m1""#).as_deref(),
            Some("m1")
        );
        assert_eq!(
            json_model(br#"{"model": 5, "x": {"model": "m2"}}"#).as_deref(),
            Some("m2")
        );
        assert_eq!(json_model(br#"{"model": "cut"#), None);
        assert_eq!(json_model(br#"{"input": "x"}"#), None);
    }

    #[test]
    fn the_model_field_is_found_in_a_multipart_prefix() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF";
        assert_eq!(multipart_model(body).as_deref(), Some("whisper-1"));
        // Cut inside the value: not yet.
        assert_eq!(multipart_model(&body[..60]), None);
        assert_eq!(multipart_model(b"--b\r\nname=\"file\"\r\n\r\nxx"), None);
    }
}
