//! Pass-through to OpenAI-style upstreams, the upstream side: a request
//! sent as the client made it (its body held, so it can go to the next
//! candidate, or streamed to one), and the upstream's answer relayed:
//! status and headers as sent, an error body read up to 64 KiB and scrubbed
//! of every key the gateway knows, any other body streamed with the
//! upstream's idle limit between chunks. The HTTP layer only takes the body
//! in and wraps what comes back.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};

use crate::backend::client::{Body, Response};
use crate::backend::openai::{Upstream, error_from, transport};
use crate::backend::{Caller, Model};
use crate::error::ApiError;

/// Response headers not passed back.
const DROP_RESPONSE: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "server",
    "date",
];

/// Largest upstream error body scrubbed of keys before it is passed on.
const ERROR_BODY_MAX: usize = 64 * 1024;

/// A request body to pass on.
pub(crate) enum Payload {
    /// Held whole: may be sent more than once.
    Held(Bytes),
    /// Streamed: one attempt.
    Streamed(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>),
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Held(b) => write!(f, "Held({} bytes)", b.len()),
            Self::Streamed(_) => f.write_str("Streamed"),
        }
    }
}

/// What ended a client's upload early, if its reader cut it (the reason
/// the client is told, instead of the upstream's view of a broken body).
pub(crate) type WhyCut = Arc<dyn Fn() -> Option<ApiError> + Send + Sync>;

/// A request passed through, sent to one candidate at a time.
pub(crate) struct Relay {
    method: http::Method,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    caller: Caller,
    /// Statuses that move a held body on to the next candidate.
    retry_on: Vec<u16>,
    body: Option<Payload>,
    why_cut: WhyCut,
    /// The gateway's head deadline, for upstreams that set none: a
    /// streamed body's runs from the end of its upload (the upload goes at
    /// the client's pace, not the upstream's).
    default_head: Duration,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("method", &self.method)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// An upstream's answer, its head read; its body still to come.
#[derive(Debug)]
pub(crate) struct Head(Response);

impl Head {
    /// Its status.
    pub(crate) fn status(&self) -> u16 {
        self.0.status().as_u16()
    }
}

/// A relayed body's failure after its head was sent.
#[derive(Debug)]
pub(crate) enum RelayError {
    /// The upstream's connection failed.
    Upstream(String),
    /// The upstream was silent past its idle limit.
    Idle,
}

/// An answer to pass back.
pub(crate) struct Relayed {
    /// Its status.
    pub(crate) status: u16,
    /// Its headers, hop-by-hop ones left out.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    /// Its body.
    pub(crate) body: RelayedBody,
}

/// A relayed answer's body.
pub(crate) enum RelayedBody {
    /// Read whole (an error answer, scrubbed).
    Whole(Bytes),
    /// Passed on as it comes.
    Streamed(Pin<Box<dyn Stream<Item = Result<Bytes, RelayError>> + Send>>),
}

impl std::fmt::Debug for Relayed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relayed")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A request: `method` and `target` (path and query, checked by the
    /// caller) with `headers` (hop-by-hop ones already left out).
    #[allow(
        clippy::too_many_arguments,
        reason = "the request's parts, each kept as given"
    )]
    pub(crate) fn new(
        method: &str,
        target: String,
        headers: Vec<(String, Vec<u8>)>,
        caller: Caller,
        retry_on: Vec<u16>,
        body: Payload,
        why_cut: WhyCut,
        default_head: Duration,
    ) -> Result<Self, ApiError> {
        let method = http::Method::from_bytes(method.as_bytes())
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        Ok(Self {
            method,
            target,
            headers,
            caller,
            retry_on,
            body: Some(body),
            why_cut,
            default_head,
        })
    }

    /// Whether the body can be sent more than once.
    pub(crate) fn replayable(&self) -> bool {
        matches!(self.body, Some(Payload::Held(_)))
    }

    /// Sends the request to `m`'s upstream: its answer's head, or the
    /// failure (a status in `retry_on` is one, for a held body, so the next
    /// candidate gets it). A held body's head deadline is failover's; a
    /// streamed body's starts when its last byte is sent, and is kept here.
    pub(crate) fn attempt(&mut self, m: Arc<Model>) -> BoxFuture<'static, Result<Head, ApiError>> {
        let held = self.replayable();
        let (uploaded, sent_all) = tokio::sync::oneshot::channel::<()>();
        let body = match self.body.take() {
            Some(Payload::Held(b)) => {
                self.body = Some(Payload::Held(b.clone()));
                Some(Body::from(b))
            }
            Some(Payload::Streamed(rx)) => {
                Some(Body::Stream(Box::pin(futures_util::stream::unfold(
                    (rx, Some(uploaded)),
                    |(mut rx, mut done)| async move {
                        let item = rx.recv().await;
                        if item.is_none() {
                            // The whole body went out: the head's clock starts.
                            done.take().map(|d| d.send(()));
                        }
                        item.map(|item| (item, (rx, done)))
                    },
                ))))
            }
            None => None,
        };
        let head_limit = (!held).then(|| m.head_first_byte(self.default_head));
        let (method, target, caller, headers) = (
            self.method.clone(),
            self.target.clone(),
            self.caller.clone(),
            self.headers.clone(),
        );
        let (retry_on, why_cut) = (self.retry_on.clone(), Arc::clone(&self.why_cut));
        Box::pin(async move {
            let up = upstream(&m)?;
            let body = body.ok_or_else(|| ApiError::internal("request body already sent"))?;
            // The client's headers replace the upstream's defaults of the
            // same name (`anthropic-version`), never add a second value.
            let mut map = http::HeaderMap::with_capacity(headers.len());
            for (name, value) in headers {
                if let (Ok(n), Ok(v)) = (
                    http::HeaderName::from_bytes(name.as_bytes()),
                    http::HeaderValue::from_bytes(&value),
                ) {
                    map.append(n, v);
                }
            }
            let r = up.request(method, &target, &caller)?.headers(map);
            let sent = r.body(body).send();
            let sent = match head_limit {
                None => sent.await,
                Some(limit) => {
                    tokio::pin!(sent);
                    tokio::select! {
                        r = &mut sent => r,
                        // Sent whole (or the upload ended otherwise).
                        _ = sent_all => match tokio::time::timeout(limit, &mut sent).await {
                            Ok(r) => r,
                            Err(_) => return Err(ApiError::first_byte_timeout(&m.key(), limit)),
                        },
                    }
                }
            };
            match sent {
                Err(e) => Err(why_cut().unwrap_or_else(|| transport(up, &e))),
                Ok(resp) if held && retry_on.contains(&resp.status().as_u16()) => {
                    Err(error_from(up, resp, &caller).await)
                }
                Ok(resp) => Ok(Head(resp)),
            }
        })
    }

    /// The answer `m` gave, to pass back: an error answer (4xx, 5xx) read
    /// first, up to 64 KiB, with every key the gateway knows (the
    /// upstream's own and the client's included) masked in it; any body
    /// streamed chunk by chunk, a gap over the upstream's idle limit ending
    /// it.
    pub(crate) async fn respond(&self, head: Head, m: &Model) -> Result<Relayed, ApiError> {
        let up = upstream(m)?;
        let resp = head.0;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter(|(n, _)| !DROP_RESPONSE.contains(&n.as_str()))
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        let idle = Duration::from_secs(up.cfg.timeouts.idle_secs);
        let mut body = resp.bytes_stream();
        let mut head = Bytes::new();
        if status >= 400 {
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
            head = Bytes::from(up.scrub(&text, Some(&self.caller)));
            if whole {
                return Ok(Relayed {
                    status,
                    headers,
                    body: RelayedBody::Whole(head),
                });
            }
        }
        let s = async_stream::stream! {
            if !head.is_empty() {
                yield Ok(head);
            }
            loop {
                match tokio::time::timeout(idle, body.next()).await {
                    Ok(Some(Ok(b))) => yield Ok(b),
                    Ok(Some(Err(e))) => {
                        yield Err(RelayError::Upstream(e.to_string()));
                        break;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        yield Err(RelayError::Idle);
                        break;
                    }
                }
            }
        };
        Ok(Relayed {
            status,
            headers,
            body: RelayedBody::Streamed(Box::pin(s)),
        })
    }
}

fn upstream(m: &Model) -> Result<&Arc<Upstream>, ApiError> {
    m.served_by()
        .ok_or_else(|| ApiError::internal("pass-through to a model without an upstream"))
}
