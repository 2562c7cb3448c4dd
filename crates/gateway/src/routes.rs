//! HTTP handlers. They only adapt: extract, call a library or the backend,
//! map the result.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use aws_sdk_sagemakerruntime::types::ResponseStream;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use openai_types::chat::ChatCompletionRequest;
use openai_types::completions::{Completion, CompletionChoice, CompletionRequest};
use openai_types::models::{Model as ModelEntry, ModelList};
use serde::de::DeserializeOwned;
use sm_stream::{OutputShape, SseWriter, Translator, TranslatorConfig};

use crate::error::ApiError;
use crate::sagemaker::stream_event_error;
use crate::shape;
use crate::state::{AppState, Model};

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ping", web::get().to(ping))
        .route("/health", web::get().to(health))
        .route("/v1/models", web::get().to(list_models))
        .route("/v1/models/{id:.*}", web::get().to(get_model))
        .route("/v1/chat/completions", web::post().to(chat))
        .route("/v1/completions", web::post().to(completions));
}

/// Any other route: an OpenAI-shaped 404.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::no_route(req.method().as_str(), req.path()))
}

async fn ping() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

async fn health(state: web::Data<AppState>) -> HttpResponse {
    let (ready, auth) = match &state.auth {
        None => (true, serde_json::json!({"enabled": false})),
        Some(a) => {
            let s = a.status();
            (
                s.loaded,
                serde_json::json!({
                    "enabled": true,
                    "source": s.source,
                    "loaded": s.loaded,
                    "key_count": s.key_count,
                    "age_secs": s.age_secs,
                    "last_refresh_error": s.last_error,
                    "refreshes": s.refreshes,
                    "failures": s.failures,
                }),
            )
        }
    };
    let body = serde_json::json!({
        "status": if ready { "ok" } else { "unavailable" },
        "models": state.order,
        "auth": auth,
    });
    let mut r = if ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    r.json(body)
}

async fn authorize(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<keyauth::KeyId>, ApiError> {
    let Some(auth) = &state.auth else {
        return Ok(None);
    };
    let h = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    Ok(Some(auth.verify_header(h).await?))
}

async fn list_models(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state).await?;
    let data = state
        .order
        .iter()
        .filter_map(|n| state.models.get(n))
        .map(|m| ModelEntry::new(m.cfg.name.clone(), m.created, m.cfg.owned_by.clone()))
        .collect::<Vec<_>>();
    Ok(json(&ModelList::from(data)))
}

async fn get_model(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state).await?;
    let id = path.into_inner();
    let m = state.models.get(&id).ok_or_else(|| {
        ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            format!("The model '{id}' does not exist"),
        )
        .param("model")
        .code("model_not_found")
    })?;
    Ok(json(&ModelEntry::new(
        id,
        m.created,
        m.cfg.owned_by.clone(),
    )))
}

/// A JSON body with its `Content-Length`, written in one piece.
fn json<T: serde::Serialize>(v: &T) -> HttpResponse {
    match serde_json::to_vec(v) {
        Ok(b) => HttpResponse::Ok().content_type("application/json").body(b),
        Err(e) => actix_web::ResponseError::error_response(&ApiError::internal(e.to_string())),
    }
}

async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(ApiError::too_large(limit));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::invalid(format!("could not read the request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid(
            "the request body is empty: send a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let v: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::invalid(format!(
                "We could not parse the JSON body of your request: {inner}"
            ))
        } else {
            let err = ApiError::invalid(format!("Invalid request: {inner}"));
            if path == "." { err } else { err.param(path) }
        }
    })?;
    de.end().map_err(|e| {
        ApiError::invalid(format!(
            "We could not parse the JSON body of your request: {e}"
        ))
    })?;
    Ok(v)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn new_id(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(N.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{prefix}-{:016x}", h.finish())
}

/// The first steps of every inference route: the clock starts, the key is
/// checked, the body is read within its limit and parsed.
async fn accept<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(Instant, Option<keyauth::KeyId>, T), ApiError> {
    let started = Instant::now();
    let key = authorize(req, state).await?;
    let body = read_body(req, payload, state.config.max_body_bytes).await?;
    Ok((started, key, parse(&body)?))
}

async fn chat(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (started, key, r): (_, _, ChatCompletionRequest) = accept(&req, payload, &state).await?;
    shape::validate_chat(&r)?;
    let model = state.resolve(&r.model)?;
    let stream = r.is_stream();
    let tcfg = TranslatorConfig {
        id: new_id("chatcmpl"),
        model: r.model.clone(),
        created: now(),
        dialect: model.cfg.dialect,
        reasoning: model.cfg.reasoning.into(),
        include_usage: r.include_usage(),
        prompt_tokens_estimate: shape::estimate_prompt(&r),
        ..TranslatorConfig::default()
    };
    let up = shape::chat_body(&model, r, stream)?;
    let ctx = Ctx {
        key,
        model,
        started,
        route: "chat",
    };
    if stream {
        return stream_response(&state, ctx, up, tcfg, OutputShape::Chat).await;
    }
    let c = complete(&state, &ctx, up, tcfg).await?;
    ctx.log(200, c.usage.as_ref(), false);
    Ok(json(&c))
}

async fn completions(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (started, key, r): (_, _, CompletionRequest) = accept(&req, payload, &state).await?;
    let prompt = shape::validate_completion(&r)?;
    let model = state.resolve(&r.model)?;
    let stream = r.is_stream();
    let tcfg = TranslatorConfig {
        id: new_id("cmpl"),
        model: r.model.clone(),
        created: now(),
        dialect: model.cfg.dialect,
        // Legacy completions carry text only: reasoning stays inline.
        include_usage: r.include_usage(),
        prompt_tokens_estimate: sm_stream::complete::estimate_tokens(&prompt),
        ..TranslatorConfig::default()
    };
    let up = shape::completion_body(&model, &r, prompt, stream)?;
    let ctx = Ctx {
        key,
        model,
        started,
        route: "completions",
    };
    if stream {
        return stream_response(&state, ctx, up, tcfg, OutputShape::Completion).await;
    }
    let (id, created) = (tcfg.id.clone(), tcfg.created);
    let c = complete(&state, &ctx, up, tcfg).await?;
    ctx.log(200, c.usage.as_ref(), false);
    let out = Completion {
        id,
        object: Default::default(),
        created,
        model: c.model,
        choices: c
            .choices
            .into_iter()
            .map(|ch| CompletionChoice {
                text: ch.message.content.unwrap_or_default(),
                index: ch.index,
                logprobs: None,
                finish_reason: Some(ch.finish_reason),
            })
            .collect(),
        usage: c.usage,
        system_fingerprint: None,
    };
    Ok(json(&out))
}

/// What a request log line says. Never a key, never a prompt.
struct Ctx {
    key: Option<keyauth::KeyId>,
    model: Arc<Model>,
    started: Instant,
    route: &'static str,
}

impl Ctx {
    fn log(&self, status: u16, usage: Option<&openai_types::Usage>, stream: bool) {
        tracing::info!(
            route = self.route,
            model = %self.model.cfg.name,
            endpoint = %self.model.cfg.endpoint_name(),
            key_id = self.key.as_ref().map(|k| k.as_str()).unwrap_or("-"),
            status,
            stream,
            duration_ms = self.started.elapsed().as_millis() as u64,
            prompt_tokens = usage.map(|u| u.prompt_tokens),
            completion_tokens = usage.map(|u| u.completion_tokens),
            "request"
        );
    }
}

async fn complete(
    state: &AppState,
    ctx: &Ctx,
    up: Vec<u8>,
    tcfg: TranslatorConfig,
) -> Result<openai_types::chat::ChatCompletion, ApiError> {
    let body = state
        .sagemaker
        .invoke(&ctx.model.cfg, up)
        .await
        .inspect_err(|e| {
            ctx.log(e.status.as_u16(), None, false);
        })?;
    sm_stream::complete::translate_response(&body, tcfg).map_err(|e| {
        let err = ApiError::upstream(
            actix_web::http::StatusCode::BAD_GATEWAY,
            e.label(),
            format!("The model's response could not be used: {e}"),
        );
        let err = match e.to_openai().error.code {
            Some(c) => err.code(c),
            None => err,
        };
        ctx.log(502, None, false);
        err
    })
}

async fn stream_response(
    state: &AppState,
    ctx: Ctx,
    up: Vec<u8>,
    tcfg: TranslatorConfig,
    shape: OutputShape,
) -> Result<HttpResponse, ApiError> {
    let mut upstream = match state.sagemaker.invoke_stream(&ctx.model.cfg, up).await {
        Ok(u) => u,
        Err(e) => {
            ctx.log(e.status.as_u16(), None, true);
            return Err(e);
        }
    };
    let writer = SseWriter::new(&tcfg.id, &tcfg.model, tcfg.created, shape);
    let mut t = Translator::new(tcfg);
    let idle = std::time::Duration::from_secs(state.config.stream_idle_timeout_secs);
    let mut guard = StreamGuard { ctx, done: false };
    let s = async_stream::stream! {
        let mut items = Vec::new();
        let mut out = BytesMut::new();
        loop {
            match tokio::time::timeout(idle, upstream.recv()).await {
                Err(_) => t.push_error(
                    sm_stream::Error::Upstream {
                        kind: "upstream_idle_timeout".into(),
                        message: format!("the model sent nothing for {} s", idle.as_secs()),
                        code: Some("upstream_idle_timeout".into()),
                    },
                    &mut items,
                ),
                Ok(Ok(Some(ResponseStream::PayloadPart(p)))) => {
                    if let Some(b) = p.bytes {
                        t.push_payload_bytes(Bytes::from(b.into_inner()), &mut items);
                    }
                }
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None)) => t.finish(&mut items),
                Ok(Err(e)) => t.push_error(stream_event_error(&e), &mut items),
            }
            writer.write_all(&items, &mut out);
            items.clear();
            if !out.is_empty() {
                yield Ok::<Bytes, actix_web::Error>(out.split().freeze());
            }
            if t.is_finished() {
                if let Some(e) = t.error() {
                    tracing::warn!(error = %e, kind = e.label(), "stream ended with an error");
                }
                guard.done = true;
                guard.ctx.log(200, Some(&t.usage()), true);
                break;
            }
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(s))
}

/// Logs a stream the client left before it ended (dropping the generator
/// drops the upstream stream, which closes its connection).
struct StreamGuard {
    ctx: Ctx,
    done: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if !self.done {
            tracing::info!(
                route = self.ctx.route,
                model = %self.ctx.model.cfg.name,
                duration_ms = self.ctx.started.elapsed().as_millis() as u64,
                "client disconnected mid-stream; upstream stream dropped"
            );
        }
    }
}
