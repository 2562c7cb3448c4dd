//! A fake OpenAI-compatible upstream (as vLLM, llama.cpp or OpenAI answer),
//! with fault modes for failover tests.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::http::{self, Handler, Request, Server, lock};

/// A failure the fake injects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenAiFault {
    /// None.
    None,
    /// An error status with an OpenAI error body (and `Retry-After` for 429).
    Status(u16),
    /// Accept and never send the response head.
    HangBeforeHeaders,
    /// Send this many stream chunks, then nothing while the client waits.
    HangMidStream(usize),
    /// Wait this long before the response head.
    SlowFirstByte(Duration),
    /// A stream whose events are not JSON.
    MalformedSse,
    /// Send this many stream chunks, then close the connection mid-body.
    ResetMidBody(usize),
    /// Fail (500) every n-th request (n = 10: 10 %).
    FailEvery(u64),
    /// An error status whose message repeats the `Authorization` header it
    /// was sent (as careless servers do).
    EchoAuth(u16),
    /// A whole (non-streamed) answer whose body breaks off after its head.
    CutBody,
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct OpenAiRequest {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers (lowercase names).
    pub headers: HashMap<String, String>,
    /// The body as JSON (`null` if not JSON).
    pub json: Value,
    /// Body length.
    pub body_len: usize,
    /// The raw body.
    pub body: Vec<u8>,
}

#[derive(Debug)]
struct Shared {
    name: String,
    fault: Mutex<OpenAiFault>,
    token_delay: Mutex<Duration>,
    requests: Mutex<Vec<OpenAiRequest>>,
    count: AtomicU64,
}

/// A fake OpenAI-compatible server on a loopback port. Dropping it stops it.
#[derive(Debug)]
pub struct FakeOpenAi {
    server: Server,
    shared: Arc<Shared>,
}

impl Handler for Shared {
    fn handle<'a>(
        &'a self,
        req: &'a Request,
        r: &'a mut BufReader<OwnedReadHalf>,
        w: &'a mut OwnedWriteHalf,
    ) -> Pin<Box<dyn Future<Output = Result<bool>> + Send + 'a>> {
        Box::pin(handle(req, r, w, self))
    }
}

impl FakeOpenAi {
    /// Starts a fake named `name` (its answers say who answered).
    pub async fn start(name: &str) -> Result<Self> {
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            fault: Mutex::new(OpenAiFault::None),
            token_delay: Mutex::new(Duration::ZERO),
            requests: Mutex::new(Vec::new()),
            count: AtomicU64::new(0),
        });
        let server =
            Server::start(SocketAddr::from(([127, 0, 0, 1], 0)), Arc::clone(&shared)).await?;
        Ok(Self { server, shared })
    }

    /// `http://127.0.0.1:PORT/v1`: the base URL to configure.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.server.addr)
    }

    /// Sets the fault.
    pub fn set_fault(&self, f: OpenAiFault) {
        *lock(&self.shared.fault) = f;
    }

    /// Pause between stream chunks.
    pub fn set_token_delay(&self, d: Duration) {
        *lock(&self.shared.token_delay) = d;
    }

    /// Requests so far.
    pub fn requests(&self) -> Vec<OpenAiRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests arrived.
    pub fn count(&self) -> u64 {
        self.shared.count.load(Ordering::Relaxed)
    }
}

async fn error(w: &mut OwnedWriteHalf, status: u16, message: &str) -> Result<bool> {
    let mut headers = vec![("content-type", "application/json".to_owned())];
    if status == 429 {
        headers.push(("retry-after", "7".to_owned()));
    }
    let body = json!({"error": {"message": message, "type": if status == 429 { "rate_limit_error" } else { "server_error" }, "param": null, "code": if status == 429 { "rate_limit_exceeded" } else { "upstream_failed" }}});
    http::write_full(w, status, &headers, body.to_string().as_bytes()).await?;
    Ok(true)
}

async fn handle(
    req: &Request,
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
    s: &Shared,
) -> Result<bool> {
    let n = s.count.fetch_add(1, Ordering::Relaxed) + 1;
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    lock(&s.requests).push(OpenAiRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        headers: req.headers.clone(),
        json: body.clone(),
        body_len: req.body.len(),
        body: req.body.clone(),
    });
    let fault = lock(&s.fault).clone();
    match fault {
        OpenAiFault::Status(code) => return error(w, code, "injected failure").await,
        OpenAiFault::FailEvery(k) if k > 0 && n.is_multiple_of(k) => {
            return error(w, 500, "injected failure").await;
        }
        OpenAiFault::HangBeforeHeaders => {
            let mut b = [0u8; 1];
            let _ = r.read(&mut b).await;
            return Ok(false);
        }
        OpenAiFault::SlowFirstByte(d) => tokio::time::sleep(d).await,
        OpenAiFault::EchoAuth(code) => {
            let auth = req
                .headers
                .get("authorization")
                .cloned()
                .unwrap_or_default();
            return error(w, code, &format!("Invalid Authorization header: {auth}")).await;
        }
        OpenAiFault::CutBody => {
            use tokio::io::AsyncWriteExt;
            w.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4096\r\n\r\n{\"id\": \"chatcmpl-cut\", \"obj")
                .await?;
            return Ok(false);
        }
        _ => {}
    }
    let path = req.path.split('?').next().unwrap_or_default();
    match (req.method.as_str(), path) {
        ("POST", "/v1/chat/completions") => chat(&body, w, r, s, &fault).await,
        ("POST", "/v1/messages") => messages(&body, w, s).await,
        ("POST", "/v1/messages/count_tokens") => {
            let out = json!({ "input_tokens": 42 });
            let h = [("content-type", "application/json".to_owned())];
            http::write_full(w, 200, &h, out.to_string().as_bytes()).await?;
            Ok(true)
        }
        ("POST", "/v1/completions") => completion(&body, w, s).await,
        // An OTLP/HTTP collector: an empty ExportTraceServiceResponse.
        ("POST", "/v1/traces") => {
            http::write_full(
                w,
                200,
                &[("content-type", "application/x-protobuf".to_owned())],
                b"",
            )
            .await?;
            Ok(true)
        }
        ("POST", "/v1/rerank") => {
            let q = body["query"].as_str().unwrap_or_default().to_owned();
            let docs: Vec<String> = body["documents"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    d.as_str()
                        .or_else(|| d["text"].as_str())
                        .unwrap_or("")
                        .to_owned()
                })
                .collect();
            let mut scored: Vec<(usize, f64)> = docs
                .iter()
                .enumerate()
                .map(|(i, d)| (i, crate::rerank::relevance(&q, d)))
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            if let Some(n) = body["top_n"].as_u64() {
                scored.truncate(n as usize);
            }
            let results: Vec<Value> = scored
                .into_iter()
                .map(|(i, s)| json!({"index": i, "relevance_score": s}))
                .collect();
            let out = json!({"id": "upstream-rerank", "model": body["model"], "results": results,
                "usage": {"total_tokens": docs.len()}});
            http::write_full(
                w,
                200,
                &[("content-type", "application/json".to_owned())],
                out.to_string().as_bytes(),
            )
            .await?;
            Ok(true)
        }
        ("POST", "/v1/embeddings") => {
            let inputs: Vec<String> = match &body["input"] {
                Value::String(t) => vec![t.clone()],
                Value::Array(a) => a
                    .iter()
                    .map(|v| v.as_str().unwrap_or("").to_owned())
                    .collect(),
                _ => vec![],
            };
            let data: Vec<Value> = inputs
                .iter()
                .enumerate()
                .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": [t.chars().count() as f32, 0.5]}))
                .collect();
            let out = json!({"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": inputs.len(), "total_tokens": inputs.len()}});
            http::write_full(
                w,
                200,
                &[("content-type", "application/json".to_owned())],
                out.to_string().as_bytes(),
            )
            .await?;
            Ok(true)
        }
        ("POST", "/v1/responses") => {
            // A native Responses API: a minimal completed response.
            let out = json!({"id": format!("resp_{}", s.name), "object": "response", "created_at": 1718000000,
                "status": "completed", "model": body["model"], "error": null, "incomplete_details": null,
                "instructions": null, "tools": [], "tool_choice": "auto", "parallel_tool_calls": true,
                "metadata": {}, "temperature": null, "top_p": null,
                "output": [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": format!("native {}", s.name), "annotations": [], "logprobs": []}]}]});
            http::write_full(
                w,
                200,
                &[("content-type", "application/json".to_owned())],
                out.to_string().as_bytes(),
            )
            .await?;
            Ok(true)
        }
        ("POST", "/v1/classifications") => {
            // The model it acted on (the last `model`, as JSON parsers keep).
            let out =
                json!({"id": format!("modr-{}", s.name), "model": body["model"], "results": []});
            http::write_full(
                w,
                200,
                &[("content-type", "application/json".to_owned())],
                out.to_string().as_bytes(),
            )
            .await?;
            Ok(true)
        }
        ("POST", "/v1/audio/transcriptions") => {
            // Multipart: report what arrived.
            let text = String::from_utf8_lossy(&req.body);
            let model = text
                .split("name=\"model\"")
                .nth(1)
                .and_then(|rest| rest.split("\r\n\r\n").nth(1))
                .and_then(|v| v.split("\r\n").next())
                .unwrap_or("?")
                .to_owned();
            let out =
                json!({"text": format!("{} got {} bytes for {model}", s.name, req.body.len())});
            http::write_full(
                w,
                200,
                &[("content-type", "application/json".to_owned())],
                out.to_string().as_bytes(),
            )
            .await?;
            Ok(true)
        }
        ("GET", "/v1/big") => {
            // ?mib=N: N MiB in 64 KiB chunks.
            let mib: usize = req
                .path
                .split("mib=")
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            http::write_chunked_head(
                w,
                200,
                &[("content-type", "application/octet-stream".to_owned())],
            )
            .await?;
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..mib * 16 {
                if http::write_chunk(w, &chunk).await.is_err() {
                    return Ok(false);
                }
            }
            http::write_chunk(w, b"").await?;
            Ok(true)
        }
        ("GET", "/v1/models") => {
            let out = json!({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": s.name}]});
            http::write_full(
                w,
                200,
                &[("content-type", "application/json".to_owned())],
                out.to_string().as_bytes(),
            )
            .await?;
            Ok(true)
        }
        _ => error(w, 404, "unknown route").await,
    }
}

async fn completion(body: &Value, w: &mut OwnedWriteHalf, s: &Shared) -> Result<bool> {
    // One choice per prompt, as OpenAI answers a list of prompts.
    let prompts: Vec<String> = match &body["prompt"] {
        Value::Array(v) => v
            .iter()
            .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
            .collect(),
        p => vec![p.as_str().unwrap_or("").to_owned()],
    };
    let text = format!("{} completes: {}", s.name, prompts[0]);
    let model = body["model"].clone();
    if body["stream"] != true {
        let choices: Vec<Value> = prompts
            .iter()
            .enumerate()
            .map(|(i, p)| json!({"text": format!("{} completes: {p}", s.name), "index": i, "logprobs": null, "finish_reason": "stop"}))
            .collect();
        let out = json!({"id": "cmpl-up", "object": "text_completion", "created": 1, "model": model,
            "choices": choices,
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}});
        http::write_full(
            w,
            200,
            &[("content-type", "application/json".to_owned())],
            out.to_string().as_bytes(),
        )
        .await?;
        return Ok(true);
    }
    http::write_chunked_head(w, 200, &[("content-type", "text/event-stream".to_owned())]).await?;
    for word in text.split_inclusive(' ') {
        let e = json!({"id": "cmpl-up", "object": "text_completion", "created": 1, "model": model,
            "choices": [{"text": word, "index": 0, "logprobs": null, "finish_reason": null}]});
        http::write_chunk(w, format!("data: {e}\n\n").as_bytes()).await?;
    }
    let e = json!({"id": "cmpl-up", "object": "text_completion", "created": 1, "model": model,
        "choices": [{"text": "", "index": 0, "logprobs": null, "finish_reason": "stop"}]});
    http::write_chunk(w, format!("data: {e}\n\ndata: [DONE]\n\n").as_bytes()).await?;
    http::write_chunk(w, b"").await?;
    Ok(true)
}

fn last_user(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_owned()
}

async fn chat(
    body: &Value,
    w: &mut OwnedWriteHalf,
    r: &mut BufReader<OwnedReadHalf>,
    s: &Shared,
    fault: &OpenAiFault,
) -> Result<bool> {
    let text = format!("{} says: {}", s.name, last_user(body));
    let model = body["model"].as_str().unwrap_or("").to_owned();
    let words: Vec<String> = text.split_inclusive(' ').map(str::to_owned).collect();
    if body["stream"] != true {
        let out = json!({
            "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": words.len(), "total_tokens": 5 + words.len()},
        });
        http::write_full(
            w,
            200,
            &[("content-type", "application/json".to_owned())],
            out.to_string().as_bytes(),
        )
        .await?;
        return Ok(true);
    }
    http::write_chunked_head(w, 200, &[("content-type", "text/event-stream".to_owned())]).await?;
    let delay = *lock(&s.token_delay);
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": model,
                   "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
        )
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for t in &words {
        events.push(chunk(json!({"content": t}), Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    if body["stream_options"]["include_usage"] == true {
        events.push(format!("data: {}\n\n", json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": words.len(), "total_tokens": 5 + words.len()}})));
    }
    events.push("data: [DONE]\n\n".into());
    if *fault == OpenAiFault::MalformedSse {
        events = vec![
            "data: {not json at all\n\n".into(),
            "data: [DONE]\n\n".into(),
        ];
    }
    let mut probe = [0u8; 64];
    for (i, e) in events.iter().enumerate() {
        match fault {
            OpenAiFault::HangMidStream(k) if i == *k => {
                let _ = r.read(&mut probe).await;
                return Ok(false);
            }
            OpenAiFault::ResetMidBody(k) if i == *k => return Ok(false),
            _ => {}
        }
        if i > 0 && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if http::write_chunk(w, e.as_bytes()).await.is_err() {
            return Ok(false);
        }
    }
    http::write_chunk(w, b"").await?;
    Ok(true)
}

/// Anthropic's Messages API, as a Messages-compatible server answers it:
/// `"<name> says: <last user text>"`, after a signed thinking block when
/// thinking is on; whole or as the event stream (with a `ping`).
async fn messages(body: &Value, w: &mut OwnedWriteHalf, s: &Shared) -> Result<bool> {
    let said = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .map(|m| match &m["content"] {
            Value::String(t) => t.clone(),
            Value::Array(blocks) => blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        })
        .unwrap_or_default();
    let text = format!("{} says: {said}", s.name);
    let thinking = body["thinking"]["type"] == "enabled";
    let model = body["model"].clone();
    let usage = json!({"input_tokens": 7, "output_tokens": 4,
        "cache_creation_input_tokens": 0, "cache_read_input_tokens": 3});
    let mut content = Vec::new();
    if thinking {
        content
            .push(json!({"type": "thinking", "thinking": "Echo it.", "signature": "dXBzdHJlYW0="}));
    }
    content.push(json!({"type": "text", "text": text}));
    if body["stream"] != true {
        let out = json!({"id": "msg_up", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": "end_turn", "stop_sequence": null, "usage": usage});
        let h = [("content-type", "application/json".to_owned())];
        http::write_full(w, 200, &h, out.to_string().as_bytes()).await?;
        return Ok(true);
    }
    let ev = |v: Value| format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap_or(""));
    let mut events = vec![
        ev(
            json!({"type": "message_start", "message": {"id": "msg_up", "type": "message",
            "role": "assistant", "model": model, "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 7, "output_tokens": 1,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 3}}}),
        ),
        ev(json!({"type": "ping"})),
    ];
    let mut index = 0;
    if thinking {
        events.push(ev(json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""}})));
        events.push(ev(json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Echo it."}})));
        events.push(ev(json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "signature_delta", "signature": "dXBzdHJlYW0="}})));
        events.push(ev(json!({"type": "content_block_stop", "index": 0})));
        index = 1;
    }
    events.push(ev(json!({"type": "content_block_start", "index": index,
        "content_block": {"type": "text", "text": ""}})));
    for word in text.split_inclusive(' ') {
        events.push(ev(json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "text_delta", "text": word}})));
    }
    events.push(ev(json!({"type": "content_block_stop", "index": index})));
    events.push(ev(json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
        "usage": {"output_tokens": 4}})));
    events.push(ev(json!({"type": "message_stop"})));
    http::write_chunked_head(w, 200, &[("content-type", "text/event-stream".to_owned())]).await?;
    for e in &events {
        if http::write_chunk(w, e.as_bytes()).await.is_err() {
            return Ok(false);
        }
    }
    http::write_chunk(w, b"").await?;
    Ok(true)
}
