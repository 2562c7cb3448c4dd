//! The fake SageMaker runtime.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};
use sm_stream::frame::encode;
use tokio::io::{AsyncReadExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;

use crate::http::{self, Handler, Request, Server, lock};

/// The payload format a fake endpoint's container speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerDialect {
    /// OpenAI chat completions in and out (vLLM, TGI Messages API, LMI).
    OpenAi,
    /// TGI `generate` / `generate_stream`.
    Tgi,
    /// LMI rolling batch JSON lines.
    Lmi,
    /// A format no gateway knows: `{"generation":{"piece":…}}` JSON lines.
    Unknown,
}

/// What an endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `"Echo: "` and the last user message (OpenAI) or the prompt (TGI/LMI).
    Echo,
    /// A fixed text.
    Text(String),
    /// `" tick"` tokens forever (for disconnect tests).
    Endless,
    /// A Text Embeddings Inference rerank container: `{query, texts}` in,
    /// `[{index, score}]` out, most relevant first.
    Rerank,
    /// An embedding container: `{"inputs": [texts]}` in; a vector a text
    /// (TEI; `[chars, position, 0.5]`), or with `per_token` a vector a
    /// word (the toolkit's feature extraction: `[word chars, position]`).
    Embedding {
        /// One vector a word rather than a text.
        per_token: bool,
    },
}

/// A failure the endpoint injects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// None.
    None,
    /// `ModelError` (424) with the container's status and message.
    ModelError {
        /// `OriginalStatusCode`.
        status: u16,
        /// `OriginalMessage`.
        message: String,
    },
    /// `ThrottlingException` (400 with that error type).
    Throttling,
    /// `ServiceUnavailable` (503).
    ServiceUnavailable,
    /// `InternalFailure` (500).
    InternalFailure,
    /// A `ModelStreamError` event after this many tokens.
    ModelStreamErrorAfter(usize),
    /// An `InternalStreamFailure` event after this many tokens.
    InternalStreamFailureAfter(usize),
    /// Accept the request and never answer.
    HangBeforeHeaders,
}

/// A fake endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Container dialect.
    pub dialect: ContainerDialect,
    /// What it answers.
    pub reply: Reply,
    /// Bytes per `PayloadPart` (small values cut records and characters).
    pub part_bytes: usize,
    /// Pause between tokens.
    pub token_delay: Duration,
    /// Injected failure.
    pub fault: Fault,
}

impl Endpoint {
    /// An echoing endpoint of the given dialect, 7-byte payload parts (which
    /// cut CJK characters), no delay.
    pub fn echo(dialect: ContainerDialect) -> Self {
        Self {
            dialect,
            reply: Reply::Echo,
            part_bytes: 7,
            token_delay: Duration::ZERO,
            fault: Fault::None,
        }
    }
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Endpoint name.
    pub endpoint: String,
    /// Streaming API or not.
    pub stream: bool,
    /// The request target as sent (path and query).
    pub path: String,
    /// Lower-cased header names and values.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

/// What happened to one streaming response.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    /// Endpoint name.
    pub endpoint: String,
    /// When the response head was written.
    pub started: Instant,
    /// When the stream ended: finished, failed, or the client closed.
    pub ended: Option<Instant>,
    /// Whether the client closed the connection before the stream finished.
    pub client_closed: bool,
    /// Tokens written.
    pub tokens_sent: usize,
}

#[derive(Debug, Default)]
struct Shared {
    endpoints: Mutex<HashMap<String, Endpoint>>,
    requests: Mutex<Vec<RecordedRequest>>,
    streams: Mutex<Vec<StreamRecord>>,
    hangs: Mutex<Vec<HangRecord>>,
}

/// A request that [`Fault::HangBeforeHeaders`] held: when it came and when
/// its caller closed the connection.
#[derive(Debug, Clone)]
pub struct HangRecord {
    /// Endpoint name.
    pub endpoint: String,
    /// When the request was read.
    pub started: Instant,
    /// When the caller closed the connection.
    pub closed: Option<Instant>,
}

/// A fake SageMaker runtime on a loopback port. Dropping it stops it.
#[derive(Debug)]
pub struct FakeSageMaker {
    server: Server,
    shared: Arc<Shared>,
}

impl Handler for Shared {
    fn handle<'a>(
        &'a self,
        req: &'a Request,
        r: &'a mut BufReader<tokio::net::tcp::OwnedReadHalf>,
        w: &'a mut OwnedWriteHalf,
    ) -> Pin<Box<dyn Future<Output = Result<bool>> + Send + 'a>> {
        Box::pin(handle(req, r, w, self))
    }
}

impl FakeSageMaker {
    /// Starts on `127.0.0.1:0` (or `addr`) in the current tokio runtime.
    pub async fn start_on(addr: SocketAddr) -> Result<Self> {
        let shared = Arc::new(Shared::default());
        let server = Server::start(addr, Arc::clone(&shared)).await?;
        Ok(Self { server, shared })
    }

    /// Starts on a free loopback port.
    pub async fn start() -> Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// Adds or replaces an endpoint.
    pub fn add(&self, name: &str, endpoint: Endpoint) -> &Self {
        lock(&self.shared.endpoints).insert(name.to_owned(), endpoint);
        self
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Streaming responses so far.
    pub fn streams(&self) -> Vec<StreamRecord> {
        lock(&self.shared.streams).clone()
    }

    /// Requests held by [`Fault::HangBeforeHeaders`] so far.
    pub fn hangs(&self) -> Vec<HangRecord> {
        lock(&self.shared.hangs).clone()
    }
}

fn error(status: u16, kind: &str, body: Value) -> (u16, Vec<(&'static str, String)>, Vec<u8>) {
    (
        status,
        vec![
            ("x-amzn-errortype", kind.to_owned()),
            ("content-type", "application/json".to_owned()),
            (
                "x-amzn-requestid",
                "00000000-0000-0000-0000-000000000000".to_owned(),
            ),
        ],
        body.to_string().into_bytes(),
    )
}

/// Handles one request; returns whether the connection may be reused.
async fn handle(
    req: &Request,
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
    shared: &Shared,
) -> Result<bool> {
    let path = req.path.split('?').next().unwrap_or_default();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (name, stream) = match (req.method.as_str(), segs.as_slice()) {
        ("POST", ["endpoints", name, "invocations"]) => (crate::http::decode(name), false),
        ("POST", ["endpoints", name, "invocations-response-stream"]) => {
            (crate::http::decode(name), true)
        }
        _ => {
            let (s, h, b) = error(
                404,
                "UnknownOperationException",
                json!({"message": "unknown operation"}),
            );
            http::write_full(w, s, &h, &b).await?;
            return Ok(true);
        }
    };
    lock(&shared.requests).push(RecordedRequest {
        endpoint: name.clone(),
        stream,
        path: req.path.clone(),
        headers: req.headers.clone(),
        body: req.body.clone(),
    });
    if !req
        .headers
        .get("authorization")
        .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 Credential="))
    {
        let (s, h, b) = error(
            403,
            "UnrecognizedClientException",
            json!({"message": "Missing Authentication Token"}),
        );
        http::write_full(w, s, &h, &b).await?;
        return Ok(true);
    }
    let Some(ep) = lock(&shared.endpoints).get(&name).cloned() else {
        let (s, h, b) = error(
            400,
            "ValidationError",
            json!({"message": format!("Endpoint {name} of account 123456789012 not found.")}),
        );
        http::write_full(w, s, &h, &b).await?;
        return Ok(true);
    };
    let fault = match &ep.fault {
        Fault::ModelError { status, message } => Some(error(
            424,
            "ModelError",
            json!({
                "message": format!("Received server error ({status}) from primary with message \"{message}\". See https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logEventViewer:group=/aws/sagemaker/Endpoints/{name} in account 123456789012 for more information."),
                "OriginalStatusCode": status,
                "OriginalMessage": message,
                "LogStreamArn": format!("arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/{name}"),
            }),
        )),
        Fault::Throttling => Some(error(
            400,
            "ThrottlingException",
            json!({"message": "Rate exceeded"}),
        )),
        Fault::ServiceUnavailable => Some(error(
            503,
            "ServiceUnavailable",
            json!({"message": "Service is unavailable"}),
        )),
        Fault::InternalFailure => Some(error(
            500,
            "InternalFailure",
            json!({"message": "An internal failure occurred"}),
        )),
        Fault::HangBeforeHeaders => {
            // Hold the connection until the client gives up.
            let at = {
                let mut h = lock(&shared.hangs);
                h.push(HangRecord {
                    endpoint: name.clone(),
                    started: Instant::now(),
                    closed: None,
                });
                h.len() - 1
            };
            let mut buf = [0u8; 1];
            let _ = r.read(&mut buf).await;
            if let Some(h) = lock(&shared.hangs).get_mut(at) {
                h.closed = Some(Instant::now());
            }
            return Ok(false);
        }
        _ => None,
    };
    if let Some((s, h, b)) = fault {
        http::write_full(w, s, &h, &b).await?;
        return Ok(true);
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let retrieval = match ep.reply {
        Reply::Embedding { per_token } => Some((200, crate::rerank::embeddings(&body, per_token))),
        Reply::Rerank => Some(crate::rerank::tei(&body)),
        _ => None,
    };
    if let Some((status, out)) = retrieval {
        let json = ("content-type", "application/json".to_owned());
        http::write_full(w, status, &[json], out.to_string().as_bytes()).await?;
        return Ok(true);
    }
    let (tokens, limited) = reply_tokens(&ep, &body);
    if !stream {
        let out = full_body(ep.dialect, &tokens, limited);
        http::write_full(
            w,
            200,
            &[
                ("content-type", "application/json".to_owned()),
                ("x-amzn-invoked-production-variant", "AllTraffic".to_owned()),
            ],
            &out,
        )
        .await?;
        return Ok(true);
    }
    stream_reply(&name, &ep, tokens, limited, r, w, shared).await
}

/// The reply's tokens (a word with its leading space, or one CJK character),
/// and whether a token limit cut it.
fn reply_tokens(ep: &Endpoint, body: &Value) -> (Vec<String>, bool) {
    let text = match &ep.reply {
        Reply::Text(t) => t.clone(),
        Reply::Endless | Reply::Rerank | Reply::Embedding { .. } => return (Vec::new(), false),
        Reply::Echo => {
            let said = match ep.dialect {
                ContainerDialect::OpenAi => body["messages"]
                    .as_array()
                    .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
                    .map(|m| match &m["content"] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default(),
                _ => body["inputs"].as_str().unwrap_or_default().to_owned(),
            };
            format!("Echo: {said}")
        }
    };
    let mut tokens: Vec<String> = Vec::new();
    for ch in text.chars() {
        let start_new = tokens.is_empty()
            || ch == ' '
            || !ch.is_ascii()
            || tokens
                .last()
                .is_some_and(|t| t.chars().last().is_some_and(|c| !c.is_ascii()));
        if start_new {
            tokens.push(ch.to_string());
        } else if let Some(t) = tokens.last_mut() {
            t.push(ch);
        }
    }
    let limit = body["max_tokens"]
        .as_u64()
        .or_else(|| body["max_completion_tokens"].as_u64())
        .or_else(|| body["parameters"]["max_new_tokens"].as_u64());
    match limit {
        Some(n) if (n as usize) < tokens.len() => {
            tokens.truncate(n as usize);
            (tokens, true)
        }
        _ => (tokens, false),
    }
}

fn full_body(dialect: ContainerDialect, tokens: &[String], limited: bool) -> Vec<u8> {
    let text: String = tokens.concat();
    let n = tokens.len();
    let v = match dialect {
        ContainerDialect::OpenAi => json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 1718000000, "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null,
                          "finish_reason": if limited { "length" } else { "stop" }}],
            "usage": {"prompt_tokens": 11, "completion_tokens": n, "total_tokens": 11 + n}
        }),
        ContainerDialect::Tgi => json!([{"generated_text": text, "details": {
            "finish_reason": if limited { "length" } else { "eos_token" }, "generated_tokens": n, "seed": null}}]),
        ContainerDialect::Lmi => json!({"generated_text": text}),
        ContainerDialect::Unknown => json!({"generation": {"piece": text}}),
    };
    v.to_string().into_bytes()
}

fn record(dialect: ContainerDialect, i: usize, text: &str, last: Option<(bool, usize)>) -> String {
    match dialect {
        ContainerDialect::OpenAi => {
            let chunk = |delta: Value, fin: Value| {
                json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1718000000,
                       "model": "fake", "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": fin}]})
            };
            match last {
                None if i == 0 => format!(
                    "data: {}\n\ndata: {}\n\n",
                    chunk(json!({"role": "assistant", "content": ""}), Value::Null),
                    chunk(json!({"content": text}), Value::Null)
                ),
                None => format!("data: {}\n\n", chunk(json!({"content": text}), Value::Null)),
                Some((limited, n)) => {
                    let fin = chunk(json!({}), json!(if limited { "length" } else { "stop" }));
                    let usage = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1718000000,
                        "model": "fake", "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": n, "total_tokens": 11 + n}});
                    format!("data: {fin}\n\ndata: {usage}\n\ndata: [DONE]\n\n")
                }
            }
        }
        ContainerDialect::Tgi => match last {
            None => format!(
                "data:{}\n\n",
                json!({"index": i, "token": {"id": i, "text": text, "logprob": -0.1, "special": false}, "generated_text": null, "details": null})
            ),
            Some((limited, n)) => format!(
                "data:{}\n\n",
                json!({"index": i, "token": {"id": 2, "text": "</s>", "logprob": 0.0, "special": true}, "generated_text": "",
                       "details": {"finish_reason": if limited { "length" } else { "eos_token" }, "generated_tokens": n + 1, "seed": null}})
            ),
        },
        ContainerDialect::Unknown => format!(
            "{}\n",
            json!({"generation": {"piece": text, "pad": "p".repeat(300)}})
        ),
        ContainerDialect::Lmi => match last {
            None => format!(
                "{}\n",
                json!({"token": {"id": [i], "text": text, "log_prob": -0.1}})
            ),
            Some((limited, n)) => format!(
                "{}\n",
                json!({"token": {"id": [2], "text": "", "log_prob": 0.0}, "generated_text": "",
                       "details": {"finish_reason": if limited { "length" } else { "eos_token" }, "generated_tokens": n}})
            ),
        },
    }
}

async fn stream_reply(
    name: &str,
    ep: &Endpoint,
    tokens: Vec<String>,
    limited: bool,
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
    shared: &Shared,
) -> Result<bool> {
    http::write_chunked_head(
        w,
        200,
        &[
            (
                "content-type",
                "application/vnd.amazon.eventstream".to_owned(),
            ),
            (
                "x-amzn-sagemaker-content-type",
                "application/json".to_owned(),
            ),
            ("x-amzn-invoked-production-variant", "AllTraffic".to_owned()),
        ],
    )
    .await?;
    let idx = {
        let mut s = lock(&shared.streams);
        s.push(StreamRecord {
            endpoint: name.to_owned(),
            started: Instant::now(),
            ended: None,
            client_closed: false,
            tokens_sent: 0,
        });
        s.len() - 1
    };
    let finish = |client_closed: bool, sent: usize| {
        let mut s = lock(&shared.streams);
        s[idx].ended = Some(Instant::now());
        s[idx].client_closed = client_closed;
        s[idx].tokens_sent = sent;
    };
    let endless = ep.reply == Reply::Endless;
    let mut i = 0usize;
    let mut probe = [0u8; 64];
    loop {
        // The wire bytes of this step.
        let mut wire = Vec::new();
        let fault_now = match ep.fault {
            Fault::ModelStreamErrorAfter(n) if i == n => Some(encode::exception(
                "ModelStreamError",
                "Model server crashed mid-stream",
                Some("ModelError"),
            )),
            Fault::InternalStreamFailureAfter(n) if i == n => Some(encode::exception(
                "InternalStreamFailure",
                "Internal stream failure",
                None,
            )),
            _ => None,
        };
        let done = fault_now.is_some() || (!endless && i >= tokens.len());
        if let Some(f) = fault_now {
            wire.extend(f);
        } else {
            let rec = if done {
                record(ep.dialect, i, "", Some((limited, tokens.len())))
            } else if endless {
                record(ep.dialect, i, " tick", None)
            } else {
                record(ep.dialect, i, &tokens[i], None)
            };
            for part in rec.as_bytes().chunks(ep.part_bytes.max(1)) {
                wire.extend(encode::payload_part(part));
            }
        }
        let delay = if i == 0 {
            Duration::ZERO
        } else {
            ep.token_delay
        };
        // Wait, watching for the client to close the connection meanwhile.
        // (No timer at all without a delay: a zero sleep still waits for the
        // timer wheel's next millisecond tick.)
        if !delay.is_zero() {
            tokio::select! {
                n = r.read(&mut probe) => {
                    if matches!(n, Ok(0) | Err(_)) {
                        finish(true, i);
                        return Ok(false);
                    }
                }
                _ = tokio::time::sleep(delay) => {}
            }
        }
        if http::write_chunk(w, &wire).await.is_err() {
            finish(true, i);
            return Ok(false);
        }
        if done {
            http::write_chunk(w, b"").await?;
            finish(false, i);
            return Ok(true);
        }
        i += 1;
    }
}
