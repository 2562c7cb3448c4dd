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
use crate::state::{Handle, Model};

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

enum Body {
    /// Held whole: may be sent more than once.
    Held(Bytes),
    /// Streamed: one attempt.
    Streamed(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>),
}

/// Reads the rest of `payload` into a channel from a task on this worker, so
/// the upstream request can stream it (the payload is not `Send`).
fn pump(
    mut payload: web::Payload,
    first: Bytes,
    limit: usize,
) -> tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    actix_web::rt::spawn(async move {
        let mut sent = first.len();
        if !first.is_empty() && tx.send(Ok(first)).await.is_err() {
            return;
        }
        while let Some(chunk) = payload.next().await {
            let item = match chunk {
                Ok(b) => {
                    sent += b.len();
                    if sent > limit {
                        Err(std::io::Error::other(
                            "request body over the pass-through limit",
                        ))
                    } else {
                        Ok(b)
                    }
                }
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    rx
}

/// The pass-through handler.
pub async fn passthrough(
    req: HttpRequest,
    mut payload: web::Payload,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    let key = crate::routes::authorize_request(&req, &state).await?;
    let path = req
        .path()
        .strip_prefix("/v1")
        .unwrap_or(req.path())
        .to_owned();
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let limit = state.config.max_passthrough_body_bytes;
    let (body, from_body) = if ctype.starts_with("multipart/") {
        // Read until the model field shows up (or 64 KiB), then stream.
        let mut prefix = BytesMut::new();
        let mut model = None;
        while prefix.len() < MODEL_SCAN_BYTES {
            match payload.next().await {
                Some(Ok(b)) => {
                    prefix.extend_from_slice(&b);
                    model = multipart_model(&prefix);
                    if model.is_some() {
                        break;
                    }
                }
                Some(Err(e)) => {
                    return Err(ApiError::invalid(format!(
                        "could not read the request body: {e}"
                    )));
                }
                None => break,
            }
        }
        (Body::Streamed(pump(payload, prefix.freeze(), limit)), model)
    } else {
        let bytes = crate::routes::read_body_limited(&req, payload, limit).await?;
        let model = if ctype.contains("json") || bytes.first() == Some(&b'{') {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("model").and_then(|m| m.as_str()).map(str::to_owned))
        } else {
            None
        };
        (Body::Held(bytes), model)
    };
    let model = from_body.unwrap_or_else(|| path.trim_start_matches('/').to_owned());
    let cands = state.upstream_candidates(&model);
    let cands = if cands.is_empty() {
        cands
    } else {
        state
            .router
            .order(state.permit(key.as_ref(), &model, cands)?)
    };
    if cands.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            format!(
                "No upstream serves '{model}' for {} {}",
                req.method(),
                req.path()
            ),
        )
        .param("model")
        .code("model_not_found"));
    }
    let query = req.query_string();
    let target = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let auth = crate::routes::client_auth(&req);
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let budget = state.router.config().max_attempts;
    let mut body = Some(body);
    let mut last = None;
    let mut tried = 0;
    for m in cands {
        if tried >= budget {
            break;
        }
        let key = m.key();
        let Some(up) = m.upstream.as_ref() else {
            continue;
        };
        if !state.router.admit(&key) {
            continue;
        }
        tried += 1;
        let mut r = up.request(method.clone(), &target, &auth);
        for (name, value) in req.headers() {
            if !DROP_REQUEST.contains(&name.as_str()) {
                r = r.header(name.as_str(), value.as_bytes());
            }
        }
        let r = match body.take() {
            Some(Body::Held(b)) => {
                body = Some(Body::Held(b.clone()));
                r.body(b)
            }
            Some(Body::Streamed(rx)) => r.body(reqwest::Body::wrap_stream(
                futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|item| (item, rx))
                }),
            )),
            None => break,
        };
        let t0 = std::time::Instant::now();
        let first = Duration::from_secs(up.cfg.timeouts.first_byte_secs);
        let err = match tokio::time::timeout(first, r.send()).await {
            Err(_) => ApiError::upstream(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                format!(
                    "Upstream '{key}' did not answer within {} s",
                    first.as_secs()
                ),
            )
            .code("upstream_timeout"),
            Ok(Err(e)) => crate::openai::transport(up, &e),
            Ok(Ok(resp)) => {
                let status = resp.status().as_u16();
                if state.router.config().retry_on_status.contains(&status)
                    && matches!(body, Some(Body::Held(_)))
                {
                    crate::openai::error_from(up, resp).await
                } else {
                    state.router.success(&key, t0.elapsed());
                    return Ok(respond(resp, &m, up.cfg.timeouts.idle_secs));
                }
            }
        };
        crate::routes::attempt_failed(&state, &key, &err);
        last = Some(err);
        if !matches!(body, Some(Body::Held(_))) {
            break;
        }
    }
    Err(crate::routes::exhausted(last, &model))
}

/// The upstream's response, streamed: status and headers as sent, each
/// chunk forwarded as it comes, a chunk gap over the idle timeout ending the
/// body.
fn respond(resp: reqwest::Response, m: &Arc<Model>, idle_secs: u64) -> HttpResponse {
    let mut out = HttpResponse::build(
        StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
    );
    for (name, value) in resp.headers() {
        if !DROP_RESPONSE.contains(&name.as_str()) {
            out.append_header((name.as_str(), value.as_bytes()));
        }
    }
    out.insert_header(("x-oai-upstream", m.key()));
    let idle = Duration::from_secs(idle_secs);
    let mut body = resp.bytes_stream();
    let s = async_stream::stream! {
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

    #[test]
    fn the_model_field_is_found_in_a_multipart_prefix() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF";
        assert_eq!(multipart_model(body).as_deref(), Some("whisper-1"));
        // Cut inside the value: not yet.
        assert_eq!(multipart_model(&body[..60]), None);
        assert_eq!(multipart_model(b"--b\r\nname=\"file\"\r\n\r\nxx"), None);
    }
}
