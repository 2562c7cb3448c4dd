//! The fake Bedrock: runtime (`Converse`, `ConverseStream`, `InvokeModel`)
//! and control plane (`ListFoundationModels`, `ListInferenceProfiles`) on one
//! loopback port, in Bedrock's REST JSON protocol with event-stream frames.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;
use bedrock_converse::event::encode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::bedrock_guardrail::FakeGuardrail;
use crate::bedrock_model::{Answer, answer, converse_body, frames};
pub use crate::bedrock_model::{BedrockFault, BedrockModel, BedrockReply};
use crate::http::{self, Handler, Request, Server, lock};

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
    /// This region's prompt cache: the prefixes written so far.
    cache: Mutex<std::collections::HashSet<String>>,
    /// Guardrails by (id, version).
    guardrails: Mutex<HashMap<(String, String), FakeGuardrail>>,
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

    /// Adds a guardrail (by id and version) that `guardrailConfig` and
    /// `ApplyGuardrail` may name.
    pub fn add_guardrail(&self, id: &str, version: &str, g: FakeGuardrail) -> &Self {
        lock(&self.shared.guardrails).insert((id.to_owned(), version.to_owned()), g);
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
        ) => ((*op).to_owned(), crate::http::decode(id)),
        ("POST", ["guardrail", id, "version", v, "apply"]) => (
            "apply-guardrail".to_owned(),
            format!("{}:{}", crate::http::decode(id), crate::http::decode(v)),
        ),
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
        "apply-guardrail" => {
            let (id, v) = model_id.split_once(':').unwrap_or((&model_id, ""));
            let g = lock(&shared.guardrails)
                .get(&(id.to_owned(), v.to_owned()))
                .cloned();
            return match g {
                Some(g) => json_ok(w, &g.apply(&body)).await,
                None => {
                    error(
                        w,
                        404,
                        "ResourceNotFoundException",
                        "The guardrail does not exist.",
                    )
                    .await
                }
            };
        }
        "foundation-models" => return json_ok(w, &foundation_models(shared)).await,
        "inference-profiles" => return json_ok(w, &inference_profiles(shared)).await,
        _ => {}
    }
    // A system-defined profile reaches the model it routes to.
    let routed = lock(&shared.profiles)
        .iter()
        .find(|(p, _)| *p == model_id)
        .map(|(_, m)| m.clone());
    let found = {
        let models = lock(&shared.models);
        models
            .get(&model_id)
            .or_else(|| routed.as_ref().and_then(|m| models.get(m)))
            .cloned()
    };
    if let Some(m) = &found
        && !m.on_demand
        && !is_profile(&model_id)
    {
        return error(
            w,
            400,
            "ValidationException",
            &format!(
                "Invocation of model ID {model_id} with on-demand throughput isn\u{2019}t supported. Retry your request with the ID or ARN of an inference profile that contains this model."
            ),
        )
        .await;
    }
    let Some(model) = found else {
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
    let guardrail = match body.get("guardrailConfig") {
        None => None,
        Some(c) => {
            let key = (
                c["guardrailIdentifier"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                c["guardrailVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
            let found = lock(&shared.guardrails).get(&key).cloned();
            match found {
                Some(g) => Some((
                    g,
                    c["trace"].as_str() == Some("enabled")
                        || c["trace"].as_str() == Some("enabled_full"),
                )),
                None => {
                    return error(
                        w,
                        400,
                        "ValidationException",
                        "The guardrail identifier or version provided in the request does not exist.",
                    )
                    .await;
                }
            }
        }
    };
    let screened = |mut a: crate::bedrock_model::Answer| {
        if let Some((g, trace)) = &guardrail {
            let (prompt, _, _) = crate::bedrock_model::last_user(&body);
            if let Some(word) = g.hit(&prompt) {
                let t = trace.then(|| FakeGuardrail::trace(word, "INPUT"));
                a.intervene(&g.input_message, t);
            } else if let Some(word) = g.hit(&a.text()) {
                let t = trace.then(|| FakeGuardrail::trace(word, "OUTPUT"));
                a.intervene(&g.output_message, t);
            }
        }
        a
    };
    match operation.as_str() {
        "invoke" => invoke(w, &model, &body).await,
        "converse" => {
            if body["messages"].as_array().is_none_or(|m| m.is_empty()) {
                return error(w, 400, "ValidationException", "messages must not be empty").await;
            }
            let a = screened(answer(&model, &body, &shared.cache));
            json_ok(w, &converse_body(&a)).await
        }
        _ => {
            let a = screened(answer(&model, &body, &shared.cache));
            stream(&model_id, &model, &a, r, w, shared).await
        }
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
    if model.reply == BedrockReply::Rerank {
        let (Some(q), Some(docs)) = (body["query"].as_str(), body["documents"].as_array()) else {
            return error(
                w,
                400,
                "ValidationException",
                "Malformed input request: query and documents are required",
            )
            .await;
        };
        let top_n = body["top_n"].as_u64().unwrap_or(docs.len() as u64) as usize;
        if top_n == 0 || top_n > docs.len() {
            return error(
                w,
                400,
                "ValidationException",
                "Malformed input request: top_n must be between 1 and the number of documents",
            )
            .await;
        }
        let mut scored: Vec<(usize, f64)> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    i,
                    crate::rerank::relevance(q, d.as_str().unwrap_or_default()),
                )
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(top_n);
        let results: Vec<Value> = scored
            .into_iter()
            .map(|(i, s)| json!({"index": i, "relevance_score": s}))
            .collect();
        return json_ok(w, &json!({"results": results})).await;
    }
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
