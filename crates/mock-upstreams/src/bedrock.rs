//! The fake Bedrock: runtime (`Converse`, `ConverseStream`, `InvokeModel`)
//! and control plane (`ListFoundationModels`, `ListInferenceProfiles`) on one
//! loopback port, in Bedrock's REST JSON protocol with event-stream frames.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use bedrock_converse::event::encode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::http::{self, Handler, Request, Server, lock};

/// What a fake model answers.
#[derive(Debug, Clone, PartialEq)]
pub enum BedrockReply {
    /// `"Echo: "` and the last user text; images are described as
    /// `[image png N bytes]`.
    Echo,
    /// A fixed text.
    Text(String),
    /// With tools offered and no tool result yet: a short text, then a call to
    /// `name` with `input`. After a tool result: `"The tool said: "` and the
    /// result text.
    ToolCall {
        /// The tool to call.
        name: String,
        /// Its input.
        input: Value,
    },
    /// A reasoning block (with a signature), then the answer.
    Reasoning {
        /// The reasoning text.
        thinking: String,
        /// The answer.
        answer: String,
    },
    /// `" tick"` forever (for disconnect tests).
    Endless,
    /// An embedding model: a vector per text whose first value is the text's
    /// length in characters and second its position in the call.
    Embedding,
}

/// A failure a fake model injects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BedrockFault {
    /// None.
    None,
    /// An error response: status, exception name, message.
    Status(u16, String, String),
    /// An exception event after this many text deltas.
    StreamException {
        /// Deltas before it.
        after: usize,
        /// `throttlingException`, `modelStreamErrorException`, …
        name: String,
    },
    /// Accept the request and never answer.
    Hang,
}

/// A fake model.
#[derive(Debug, Clone)]
pub struct BedrockModel {
    /// What it answers.
    pub reply: BedrockReply,
    /// Injected failure.
    pub fault: BedrockFault,
    /// Pause between stream events.
    pub token_delay: Duration,
    /// Bytes per HTTP chunk of a stream (small values cut frames).
    pub chunk_bytes: usize,
    /// Whether `ListFoundationModels` lists it.
    pub listed: bool,
    /// Whether it takes `outputConfig` (structured output); one that does
    /// not refuses it with 400, as older models do.
    pub structured_output: bool,
}

impl BedrockModel {
    /// A model with this reply, no fault, no delay.
    pub fn new(reply: BedrockReply) -> Self {
        Self {
            reply,
            fault: BedrockFault::None,
            token_delay: Duration::ZERO,
            chunk_bytes: 1 << 20,
            listed: true,
            structured_output: true,
        }
    }
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct BedrockRequest {
    /// `converse`, `converse-stream`, `invoke`, `foundation-models`,
    /// `inference-profiles`.
    pub operation: String,
    /// The model id from the path (decoded).
    pub model_id: String,
    /// Request headers (lowercase names).
    pub headers: HashMap<String, String>,
    /// The body as JSON (`null` if none).
    pub body: Value,
}

/// A streaming response's life.
#[derive(Debug, Clone)]
pub struct BedrockStream {
    /// The model.
    pub model_id: String,
    /// When its head was written.
    pub started: Instant,
    /// When it ended.
    pub ended: Option<Instant>,
    /// Whether the client closed first.
    pub client_closed: bool,
}

#[derive(Debug, Default)]
struct Shared {
    models: Mutex<HashMap<String, BedrockModel>>,
    profiles: Mutex<Vec<(String, String)>>,
    requests: Mutex<Vec<BedrockRequest>>,
    streams: Mutex<Vec<BedrockStream>>,
}

/// A fake Bedrock on a loopback port. Dropping it stops it.
#[derive(Debug)]
pub struct FakeBedrock {
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

impl FakeBedrock {
    /// Starts on `addr` in the current tokio runtime.
    pub async fn start_on(addr: SocketAddr) -> Result<Self> {
        let shared = Arc::new(Shared::default());
        let server = Server::start(addr, Arc::clone(&shared)).await?;
        Ok(Self { server, shared })
    }

    /// Starts on a free loopback port.
    pub async fn start() -> Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` and
    /// `AWS_ENDPOINT_URL_BEDROCK`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// Adds or replaces a model (by foundation model id, profile id or ARN).
    pub fn add(&self, model_id: &str, model: BedrockModel) -> &Self {
        lock(&self.shared.models).insert(model_id.to_owned(), model);
        self
    }

    /// Adds a system-defined inference profile (`us.…`) routing to a model.
    pub fn add_profile(&self, profile_id: &str, model_id: &str) -> &Self {
        lock(&self.shared.profiles).push((profile_id.to_owned(), model_id.to_owned()));
        self
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<BedrockRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Streaming responses so far.
    pub fn streams(&self) -> Vec<BedrockStream> {
        lock(&self.shared.streams).clone()
    }
}

async fn error(w: &mut OwnedWriteHalf, status: u16, name: &str, message: &str) -> Result<bool> {
    http::write_full(
        w,
        status,
        &[
            (
                "x-amzn-errortype",
                format!("{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            ),
            ("content-type", "application/json".to_owned()),
            (
                "x-amzn-requestid",
                "00000000-0000-0000-0000-000000000000".to_owned(),
            ),
        ],
        json!({ "message": message }).to_string().as_bytes(),
    )
    .await?;
    Ok(true)
}

async fn json_ok(w: &mut OwnedWriteHalf, body: &Value) -> Result<bool> {
    http::write_full(
        w,
        200,
        &[("content-type", "application/json".to_owned())],
        body.to_string().as_bytes(),
    )
    .await?;
    Ok(true)
}

async fn handle(
    req: &Request,
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
    shared: &Shared,
) -> Result<bool> {
    let path = req.path.split('?').next().unwrap_or_default();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (operation, model_id) = match (req.method.as_str(), segs.as_slice()) {
        (
            "POST",
            [
                "model",
                id,
                op @ ("converse" | "converse-stream" | "invoke"),
            ],
        ) => ((*op).to_owned(), crate::sagemaker::decode(id)),
        ("GET", ["foundation-models"]) => ("foundation-models".to_owned(), String::new()),
        ("GET", ["inference-profiles"]) => ("inference-profiles".to_owned(), String::new()),
        _ => return error(w, 404, "UnknownOperationException", "unknown operation").await,
    };
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    lock(&shared.requests).push(BedrockRequest {
        operation: operation.clone(),
        model_id: model_id.clone(),
        headers: req.headers.clone(),
        body: body.clone(),
    });
    if !req
        .headers
        .get("authorization")
        .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 Credential="))
    {
        return error(
            w,
            403,
            "UnrecognizedClientException",
            "Missing Authentication Token",
        )
        .await;
    }
    match operation.as_str() {
        "foundation-models" => return json_ok(w, &foundation_models(shared)).await,
        "inference-profiles" => return json_ok(w, &inference_profiles(shared)).await,
        _ => {}
    }
    let Some(model) = lock(&shared.models).get(&model_id).cloned() else {
        return error(
            w,
            400,
            "ValidationException",
            "The provided model identifier is invalid.",
        )
        .await;
    };
    match &model.fault {
        BedrockFault::Status(status, name, message) => {
            return error(w, *status, name, message).await;
        }
        BedrockFault::Hang => {
            let mut buf = [0u8; 1];
            let _ = r.read(&mut buf).await;
            return Ok(false);
        }
        _ => {}
    }
    if operation != "invoke"
        && let Some(why) = crate::bedrock_rules::check(&body, model.structured_output)
    {
        return error(w, 400, "ValidationException", &why).await;
    }
    match operation.as_str() {
        "invoke" => invoke(w, &model, &body).await,
        "converse" => {
            if body["messages"].as_array().is_none_or(|m| m.is_empty()) {
                return error(w, 400, "ValidationException", "messages must not be empty").await;
            }
            json_ok(w, &converse_body(&answer(&model, &body))).await
        }
        _ => stream(&model_id, &model, &answer(&model, &body), r, w, shared).await,
    }
}

fn foundation_models(shared: &Shared) -> Value {
    let models = lock(&shared.models);
    let mut ids: Vec<&String> = models
        .iter()
        .filter(|(id, m)| m.listed && !id.starts_with("arn:") && !is_profile(id))
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    json!({ "modelSummaries": ids.iter().map(|id| {
        let embed = models[*id].reply == BedrockReply::Embedding;
        json!({
            "modelArn": format!("arn:aws:bedrock:us-east-1::foundation-model/{id}"),
            "modelId": id,
            "modelName": id,
            "providerName": id.split('.').next().unwrap_or("Amazon"),
            "inputModalities": ["TEXT"],
            "outputModalities": [if embed { "EMBEDDING" } else { "TEXT" }],
            "responseStreamingSupported": !embed,
            "customizationsSupported": [],
            "inferenceTypesSupported": ["ON_DEMAND"],
            "modelLifecycle": {"status": "ACTIVE"},
        })
    }).collect::<Vec<_>>() })
}

fn is_profile(id: &str) -> bool {
    bedrock_converse::ModelRef::parse(id) != bedrock_converse::ModelRef::Foundation(id)
}

fn inference_profiles(shared: &Shared) -> Value {
    let profiles = lock(&shared.profiles);
    json!({ "inferenceProfileSummaries": profiles.iter().map(|(p, m)| json!({
        "inferenceProfileName": format!("US {m}"),
        "inferenceProfileArn": format!("arn:aws:bedrock:us-east-1:123456789012:inference-profile/{p}"),
        "inferenceProfileId": p,
        "description": "Routes requests across US regions",
        "models": [{"modelArn": format!("arn:aws:bedrock:us-east-1::foundation-model/{m}")}],
        "status": "ACTIVE",
        "type": "SYSTEM_DEFINED",
    })).collect::<Vec<_>>() })
}

/// A planned answer: blocks in order.
#[derive(Debug, Clone)]
enum Block {
    Text(Vec<String>),
    Reasoning(Vec<String>),
    Tool {
        id: String,
        name: String,
        input: Value,
    },
}

struct Answer {
    blocks: Vec<Block>,
    stop: &'static str,
    input_tokens: u64,
    endless: bool,
}

fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if (c == ' ' || !c.is_ascii()) && !cur.is_empty() && cur != " " {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
        if !c.is_ascii() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The last user turn's text, images and tool results.
fn last_user(body: &Value) -> (String, Vec<String>, Vec<String>) {
    let mut text = String::new();
    let mut images = Vec::new();
    let mut results = Vec::new();
    if let Some(m) = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
    {
        for b in m["content"].as_array().into_iter().flatten() {
            if let Some(t) = b["text"].as_str() {
                text = t.to_owned();
            }
            if let Some(i) = b.get("image") {
                let n = i["source"]["bytes"]
                    .as_str()
                    .and_then(|s| {
                        use base64::Engine as _;
                        base64::engine::general_purpose::STANDARD.decode(s).ok()
                    })
                    .map_or(0, |b| b.len());
                images.push(format!(
                    "[image {} {n} bytes]",
                    i["format"].as_str().unwrap_or("?")
                ));
            }
            if let Some(r) = b.get("toolResult") {
                for c in r["content"].as_array().into_iter().flatten() {
                    if let Some(t) = c["text"].as_str() {
                        results.push(t.to_owned());
                    }
                }
            }
        }
    }
    (text, images, results)
}

fn answer(model: &BedrockModel, body: &Value) -> Answer {
    let input_tokens = body.to_string().len() as u64 / 4;
    let max = body["inferenceConfig"]["maxTokens"]
        .as_u64()
        .map(|m| m as usize);
    let (text, images, results) = last_user(body);
    let mut stop = "end_turn";
    let mut blocks = match &model.reply {
        BedrockReply::Echo | BedrockReply::Embedding => {
            let mut said = format!("Echo: {text}");
            for i in &images {
                said.push(' ');
                said.push_str(i);
            }
            vec![Block::Text(tokens(&said))]
        }
        BedrockReply::Text(t) => vec![Block::Text(tokens(t))],
        BedrockReply::Endless => vec![],
        BedrockReply::Reasoning { thinking, answer } => vec![
            Block::Reasoning(tokens(thinking)),
            Block::Text(tokens(answer)),
        ],
        BedrockReply::ToolCall { name, input } => {
            if !results.is_empty() {
                vec![Block::Text(tokens(&format!(
                    "The tool said: {}",
                    results.join("; ")
                )))]
            } else if body.get("toolConfig").is_some() {
                stop = "tool_use";
                vec![
                    Block::Text(tokens("Let me check.")),
                    Block::Tool {
                        id: format!("tooluse_{:08x}", input_tokens),
                        name: name.clone(),
                        input: input.clone(),
                    },
                ]
            } else {
                vec![Block::Text(tokens("No tools were offered."))]
            }
        }
    };
    // Under a schema the model answers with a value shaped by it: as text
    // (`outputConfig`), or as the input of the tool it is forced to call.
    if let Some(schema) = crate::bedrock_rules::output_schema(body) {
        blocks = vec![Block::Text(tokens(
            &crate::bedrock_rules::sample(&schema).to_string(),
        ))];
    } else if let Some((name, schema)) = crate::bedrock_rules::forced_tool(body)
        && results.is_empty()
    {
        stop = "tool_use";
        blocks = vec![Block::Tool {
            id: format!("tooluse_{:08x}", input_tokens),
            name,
            input: crate::bedrock_rules::sample(&schema),
        }];
    }
    if let Some(max) = max {
        for b in &mut blocks {
            if let Block::Text(t) = b
                && t.len() > max
            {
                t.truncate(max);
                stop = "max_tokens";
            }
        }
    }
    for s in body["inferenceConfig"]["stopSequences"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let s = s.as_str().unwrap_or_default();
        for b in &mut blocks {
            if let Block::Text(t) = b
                && let Some(i) = t.iter().position(|tok| tok.trim() == s)
            {
                t.truncate(i);
                stop = "stop_sequence";
            }
        }
    }
    Answer {
        blocks,
        stop,
        input_tokens,
        endless: model.reply == BedrockReply::Endless,
    }
}

fn usage(a: &Answer) -> Value {
    let out: usize = a
        .blocks
        .iter()
        .map(|b| match b {
            Block::Text(t) | Block::Reasoning(t) => t.len(),
            Block::Tool { .. } => 5,
        })
        .sum();
    json!({
        "inputTokens": a.input_tokens,
        "outputTokens": out,
        "totalTokens": a.input_tokens + out as u64,
    })
}

fn converse_body(a: &Answer) -> Value {
    let content: Vec<Value> = a
        .blocks
        .iter()
        .map(|b| match b {
            Block::Text(t) => json!({ "text": t.concat() }),
            Block::Reasoning(t) => json!({ "reasoningContent": { "reasoningText": {
                "text": t.concat(), "signature": "ZmFrZS1zaWduYXR1cmU=" } } }),
            Block::Tool { id, name, input } => {
                json!({ "toolUse": { "toolUseId": id, "name": name, "input": input } })
            }
        })
        .collect();
    json!({
        "output": { "message": { "role": "assistant", "content": content } },
        "stopReason": a.stop,
        "usage": usage(a),
        "metrics": { "latencyMs": 12 },
    })
}

/// The frames of a streamed answer, in order.
fn frames(a: &Answer, fault: &BedrockFault) -> Vec<Vec<u8>> {
    let mut out = vec![encode::event(
        "messageStart",
        &json!({"role": "assistant", "p": "abcdefghijk"}),
    )];
    let mut deltas = 0usize;
    for (i, b) in a.blocks.iter().enumerate() {
        let delta = |d: Value| {
            encode::event(
                "contentBlockDelta",
                &json!({"contentBlockIndex": i, "delta": d, "p": "abcdef"}),
            )
        };
        match b {
            Block::Text(toks) => {
                for t in toks {
                    if let BedrockFault::StreamException { after, name } = fault
                        && deltas == *after
                    {
                        out.push(encode::exception(name, "The stream failed (injected)."));
                        return out;
                    }
                    out.push(delta(json!({ "text": t })));
                    deltas += 1;
                }
            }
            Block::Reasoning(toks) => {
                for t in toks {
                    out.push(delta(json!({ "reasoningContent": { "text": t } })));
                }
                out.push(delta(
                    json!({ "reasoningContent": { "signature": "ZmFrZS1zaWduYXR1cmU=" } }),
                ));
            }
            Block::Tool { id, name, input } => {
                out.push(encode::event(
                    "contentBlockStart",
                    &json!({"contentBlockIndex": i, "start": {"toolUse": {"toolUseId": id, "name": name}}}),
                ));
                let s = input.to_string();
                let cut = s
                    .char_indices()
                    .nth(s.chars().count() / 2)
                    .map_or(0, |(i, _)| i);
                out.push(delta(json!({ "toolUse": { "input": &s[..cut] } })));
                out.push(delta(json!({ "toolUse": { "input": &s[cut..] } })));
            }
        }
        out.push(encode::event(
            "contentBlockStop",
            &json!({"contentBlockIndex": i}),
        ));
    }
    if let BedrockFault::StreamException { name, .. } = fault {
        out.push(encode::exception(name, "The stream failed (injected)."));
        return out;
    }
    out.push(encode::event("messageStop", &json!({"stopReason": a.stop})));
    out.push(encode::event(
        "metadata",
        &json!({"usage": usage(a), "metrics": {"latencyMs": 12}}),
    ));
    out
}

async fn stream(
    model_id: &str,
    model: &BedrockModel,
    a: &Answer,
    r: &mut BufReader<OwnedReadHalf>,
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
                "x-amzn-requestid",
                "00000000-0000-0000-0000-000000000001".to_owned(),
            ),
        ],
    )
    .await?;
    let idx = {
        let mut s = lock(&shared.streams);
        s.push(BedrockStream {
            model_id: model_id.to_owned(),
            started: Instant::now(),
            ended: None,
            client_closed: false,
        });
        s.len() - 1
    };
    let finish = |client_closed: bool| {
        let mut s = lock(&shared.streams);
        s[idx].ended = Some(Instant::now());
        s[idx].client_closed = client_closed;
    };
    let planned = frames(a, &model.fault);
    let mut i = 0usize;
    let mut probe = [0u8; 64];
    loop {
        let frame = if a.endless {
            if i == 0 {
                planned[0].clone()
            } else {
                encode::event(
                    "contentBlockDelta",
                    &json!({"contentBlockIndex": 0, "delta": {"text": " tick"}}),
                )
            }
        } else {
            match planned.get(i) {
                Some(f) => f.clone(),
                None => {
                    http::write_chunk(w, b"").await?;
                    finish(false);
                    return Ok(true);
                }
            }
        };
        if i > 0 && !model.token_delay.is_zero() {
            tokio::select! {
                n = r.read(&mut probe) => {
                    if matches!(n, Ok(0) | Err(_)) {
                        finish(true);
                        return Ok(false);
                    }
                }
                _ = tokio::time::sleep(model.token_delay) => {}
            }
        }
        for piece in frame.chunks(model.chunk_bytes.max(1)) {
            if http::write_chunk(w, piece).await.is_err() {
                finish(true);
                return Ok(false);
            }
        }
        i += 1;
    }
}

async fn invoke(w: &mut OwnedWriteHalf, model: &BedrockModel, body: &Value) -> Result<bool> {
    if model.reply != BedrockReply::Embedding {
        return error(
            w,
            400,
            "ValidationException",
            "This fake model only embeds.",
        )
        .await;
    }
    let vector = |text: &str, i: usize, dims: usize| -> Vec<f32> {
        let mut v = vec![0.0f32; dims.max(2)];
        v[0] = text.chars().count() as f32;
        v[1] = i as f32;
        for (k, x) in v.iter_mut().enumerate().skip(2) {
            *x = ((k * 7 + text.len()) % 13) as f32 / 13.0 - 0.5;
        }
        v
    };
    if let Some(t) = body["inputText"].as_str() {
        let dims = body["dimensions"].as_u64().unwrap_or(1024) as usize;
        let count = t.split_whitespace().count().max(1);
        let e = vector(t, 0, dims);
        return json_ok(
            w,
            &json!({"embedding": e, "inputTextTokenCount": count, "embeddingsByType": {"float": e}}),
        )
        .await;
    }
    if let Some(texts) = body["texts"].as_array() {
        let dims = body["output_dimension"].as_u64().unwrap_or(1024) as usize;
        let v: Vec<Vec<f32>> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| vector(t.as_str().unwrap_or_default(), i, dims))
            .collect();
        return json_ok(
            w,
            &json!({"id": "emb-1", "embeddings": {"float": v}, "response_type": "embeddings_by_type", "texts": texts}),
        )
        .await;
    }
    if let Some(t) = body["singleEmbeddingParams"]["text"]["value"].as_str() {
        let dims = body["singleEmbeddingParams"]["embeddingDimension"]
            .as_u64()
            .unwrap_or(3072) as usize;
        return json_ok(
            w,
            &json!({"embeddings": [{"embeddingType": "TEXT", "embedding": vector(t, 0, dims)}]}),
        )
        .await;
    }
    error(
        w,
        400,
        "ValidationException",
        "Malformed input request: unknown embedding body",
    )
    .await
}
