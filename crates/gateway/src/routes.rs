//! HTTP handlers. They only adapt: extract, call a library or the backend,
//! map the result.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use openai_types::chat::ChatCompletionRequest;
use openai_types::completions::{Completion, CompletionChoice, CompletionRequest};
use openai_types::embeddings::EmbeddingRequest;
use openai_types::models::{Model as ModelEntry, ModelList};
use openai_types::stream::{OutputShape, SseWriter, StreamItem};
use serde::de::DeserializeOwned;
use sm_stream::TranslatorConfig;

use crate::config::Backend;
use crate::error::ApiError;
use crate::metrics::{self, METRICS};
use crate::provider::{ChatCall, ItemStream};
use crate::records::RecPatch;
use crate::shape;
use crate::state::{AppState, Handle, Model};

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ping", web::get().to(ping))
        .route("/health", web::get().to(health))
        .route("/v1/models", web::get().to(list_models))
        .route("/v1/models/{id:.*}", web::get().to(get_model))
        .route("/v1/chat/completions", web::post().to(chat))
        .route("/v1/completions", web::post().to(completions))
        .route("/v1/embeddings", web::post().to(embeddings))
        .route("/metrics", web::get().to(metrics_route))
        .route("/v1/metrics", web::get().to(metrics_route))
        .route("/admin/upstreams", web::get().to(admin_list))
        .route(
            "/admin/upstreams/{action:(disable|enable)}/{name:.*}",
            web::post().to(admin_set),
        );
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

async fn health(handle: web::Data<Handle>) -> HttpResponse {
    let state = handle.state();
    let (ready, auth) = state.access.health();
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

/// `GET /metrics` (and `/v1/metrics`): Prometheus text, behind its own
/// token when one is configured.
async fn metrics_route(
    req: HttpRequest,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    if let Some(auth) = &state.metrics_auth {
        let h = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        auth.verify_header(h).await?;
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics::render(&state)))
}

/// The admin API's key check; without an admin key the API does not exist.
async fn admin_auth(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(admin) = &state.admin else {
        return Err(ApiError::no_route(req.method().as_str(), req.path()));
    };
    let h = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    admin.verify_header(h).await?;
    Ok(())
}

/// `GET /admin/upstreams`: every candidate's breaker and health.
async fn admin_list(req: HttpRequest, handle: web::Data<Handle>) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    admin_auth(&req, &state).await?;
    Ok(json(&serde_json::json!({
        "object": "list",
        "data": state.router.snapshot(),
    })))
}

/// `POST /admin/upstreams/{disable|enable}/{name}`.
async fn admin_set(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    admin_auth(&req, &state).await?;
    let (action, name) = path.into_inner();
    if !state.router.set_disabled(&name, action == "disable") {
        return Err(ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            format!("No upstream or model named '{name}'"),
        )
        .code("upstream_not_found"));
    }
    tracing::warn!(upstream = %name, action = %action, "admin changed an upstream");
    let view = state.router.snapshot().into_iter().find(|v| v.name == name);
    Ok(json(&view))
}

async fn authorize(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<keyauth::KeyId>, ApiError> {
    let h = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    state.access.verify_header(h).await
}

async fn list_models(
    req: HttpRequest,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    authorize(&req, &state).await?;
    let mut data = state
        .order
        .iter()
        .filter_map(|n| state.models.get(n))
        .map(|m| ModelEntry::new(m.cfg.name.clone(), m.created, m.cfg.owner()))
        .collect::<Vec<_>>();
    for d in state.catalog.models() {
        if !state.models.contains_key(&d.id) {
            data.push(ModelEntry::new(d.id, 0, d.owned_by));
        }
    }
    Ok(json(&ModelList::from(data)))
}

async fn get_model(
    req: HttpRequest,
    path: web::Path<String>,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    authorize(&req, &state).await?;
    let id = path.into_inner();
    if !state.models.contains_key(&id)
        && let Some(d) = state.catalog.models().into_iter().find(|d| d.id == id)
    {
        return Ok(json(&ModelEntry::new(d.id, 0, d.owned_by)));
    }
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
    Ok(json(&ModelEntry::new(id, m.created, m.cfg.owner())))
}

/// A JSON body with its `Content-Length`, written in one piece.
fn json<T: serde::Serialize>(v: &T) -> HttpResponse {
    match serde_json::to_vec(v) {
        Ok(b) => HttpResponse::Ok().content_type("application/json").body(b),
        Err(e) => actix_web::ResponseError::error_response(&ApiError::internal(e.to_string())),
    }
}

/// Checks the client's key (for the pass-through routes).
pub(crate) async fn authorize_request(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<keyauth::KeyId>, ApiError> {
    authorize(req, state).await
}

/// Any route not served here: `/v1/*` passes through to OpenAI-style
/// upstreams when there are any; everything else is an OpenAI-shaped 404.
pub async fn fallback(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    if req.path().starts_with("/v1/") && !state.upstreams.is_empty() {
        return crate::passthrough::passthrough(req, payload, handle).await;
    }
    Ok(not_found(req).await)
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

/// Unix seconds now.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fresh id: `prefix-` and 16 hex digits.
pub(crate) fn new_id(prefix: &str) -> String {
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

/// A request's `model`, for its record.
trait Named {
    fn model_name(&self) -> &str;
}

impl Named for ChatCompletionRequest {
    fn model_name(&self) -> &str {
        &self.model
    }
}

impl Named for CompletionRequest {
    fn model_name(&self) -> &str {
        &self.model
    }
}

impl Named for EmbeddingRequest {
    fn model_name(&self) -> &str {
        &self.model
    }
}

/// An accepted request: checked key, parsed body, its id and record.
struct Accepted<T> {
    started: Instant,
    key: Option<keyauth::KeyId>,
    r: T,
    rid: String,
    patch: Option<RecPatch>,
}

/// The first steps of every inference route: the clock starts, the key is
/// checked, the body is read within its limit and parsed, the record notes
/// the key id and model (and the body, when the policy asks).
async fn accept<T: DeserializeOwned + Named>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Accepted<T>, ApiError> {
    let started = Instant::now();
    let key = authorize(req, state).await?;
    let body = crate::body::read(req, payload, state.config.max_body_bytes, &state.config).await?;
    let patch = patch_of(req);
    let rc = &state.config.records;
    if let Some(p) = &patch
        && rc.wants_body(
            req.match_pattern().as_deref().unwrap_or(""),
            key.as_ref().map(|k| k.as_str()),
        )
    {
        let mut p = p.0.borrow_mut();
        p.request_body = Some(crate::records::redact_body(&body, rc.body_max_bytes));
        p.request_headers = Some(crate::records::redact_headers(
            req.headers()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_bytes())),
        ));
    }
    let r: T = parse(&body)?;
    note(&patch, |p| {
        p.key_id = key.as_ref().map(|k| k.as_str().to_owned());
        p.model = Some(r.model_name().to_owned());
    });
    Ok(Accepted {
        started,
        key,
        r,
        rid: request_id(req),
        patch,
    })
}

/// The request id the middleware assigned (from `x-request-id` or new).
pub(crate) fn request_id(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

/// The request's record, if records are on.
pub(crate) fn patch_of(req: &HttpRequest) -> Option<RecPatch> {
    req.extensions().get::<RecPatch>().cloned()
}

/// Fills the request's record.
fn note(patch: &Option<RecPatch>, f: impl FnOnce(&mut crate::records::Record)) {
    if let Some(p) = patch {
        f(&mut p.0.borrow_mut());
    }
}

/// A request's id, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The client's `Authorization` header, for upstreams that forward it.
pub(crate) fn client_auth(req: &HttpRequest) -> crate::provider::Caller {
    crate::provider::Caller {
        auth: req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        request_id: request_id(req),
    }
}

/// A candidate failed before the client had a byte: logged, counted, and
/// reported to its breaker; the caller moves on.
pub(crate) fn attempt_failed(state: &AppState, key: &str, e: &ApiError) {
    tracing::warn!(upstream = %key, status = e.status.as_u16(), error = e.label, "attempt failed before the first byte; trying the next candidate");
    METRICS
        .upstream_errors
        .with_label_values(&[key, e.label])
        .inc();
    METRICS.failovers.with_label_values(&[key]).inc();
    state
        .router
        .failure(key, &state.redactor.scrub(&e.body.error.message, None));
}

/// The answer when no candidate could serve.
pub(crate) fn exhausted(last: Option<ApiError>, model: &str) -> ApiError {
    last.unwrap_or_else(|| {
        ApiError::upstream(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "no_upstream_available",
            format!("No upstream for '{model}' is available right now (all are disabled or their circuit breakers are open)"),
        )
        .code("no_upstream_available")
    })
}

/// Tries `cands` in order within the retry budget, each at most once:
/// skipped while its breaker is open, moved past on a retryable error,
/// stopped at any other. Returns the answer and the candidate that gave it.
async fn failover<T, F>(
    state: &AppState,
    cands: Vec<Arc<Model>>,
    model_name: &str,
    mut attempt: F,
) -> Result<(T, Arc<Model>, std::time::Duration), ApiError>
where
    F: FnMut(Arc<Model>, bool) -> futures_util::future::BoxFuture<'static, Result<T, ApiError>>,
{
    let budget = state.router.config().max_attempts;
    let n = cands.len();
    let mut tried = 0;
    let mut last = None;
    for (i, m) in cands.into_iter().enumerate() {
        if tried >= budget {
            break;
        }
        let key = m.key();
        if !state.router.admit(&key) {
            continue;
        }
        tried += 1;
        let more = i + 1 < n && tried < budget;
        let t0 = Instant::now();
        match attempt(Arc::clone(&m), more).await {
            Ok(v) => {
                let took = t0.elapsed();
                state.router.success(&key, took);
                return Ok((v, m, took));
            }
            Err(e) if state.router.retryable(&e) => {
                attempt_failed(state, &key, &e);
                last = Some(e);
            }
            Err(e) => {
                state.router.release(&key);
                return Err(e);
            }
        }
    }
    Err(exhausted(last, model_name))
}

async fn chat(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    let Accepted {
        started,
        key,
        r,
        rid,
        patch,
    } = accept::<ChatCompletionRequest>(&req, payload, &state).await?;
    shape::validate_chat(&r)?;
    let cands = state.router.order(state.access.permit(
        key.as_ref(),
        &r.model,
        state.candidates(&r.model)?,
    )?);
    let stream = r.is_stream();
    let include_usage = r.include_usage();
    let (id, created) = (new_id("chatcmpl"), now());
    let prompt_estimate = shape::estimate_prompt(&r);
    let auth = client_auth(&req);
    let writer = SseWriter::new(&id, &r.model, created, OutputShape::Chat);
    let model_name = r.model.clone();
    let mut slot = Some(r);
    let mut make_call = move |more: bool| -> Result<ChatCall, ApiError> {
        let req = if more { slot.clone() } else { slot.take() }
            .ok_or_else(|| ApiError::internal("request already sent"))?;
        Ok(ChatCall {
            req,
            id: id.clone(),
            created,
            prompt_estimate,
            client_auth: auth.clone(),
        })
    };
    if stream {
        let h = handle.clone();
        let mut open = |m: Arc<Model>, more: bool| {
            let h = h.clone();
            let call = make_call(more);
            Box::pin(async move { h.provider(&m).chat_stream(&m, call?).await })
                as futures_util::future::BoxFuture<'static, _>
        };
        let r = StreamReq {
            model_name: &model_name,
            route: "chat",
            rid: rid.clone(),
            patch: patch.clone(),
            key,
            started,
            include_usage,
            writer,
        };
        return stream_failover(&state, cands, r, &mut open).await;
    }
    let h = handle.clone();
    let res = failover(&state, cands, &model_name, |m, more| {
        let h = h.clone();
        let call = make_call(more);
        Box::pin(async move { h.provider(&m).chat(&m, call?).await })
    })
    .await;
    match res {
        Ok((c, model, took)) => {
            let upstream_time = Some(took);
            let ctx = Ctx {
                key,
                model,
                started,
                route: "chat",
                rid: rid.clone(),
                upstream_time,
                patch: patch.clone(),
            };
            Ok(ctx.answer(c.usage.as_ref(), &c))
        }
        Err(e) => {
            tracing::info!(route = "chat", model = %model_name, status = e.status.as_u16(), error = e.label, "request failed");
            Err(e)
        }
    }
}

/// Names the candidate that served a response.
fn served_by(resp: &mut HttpResponse, m: &Model) {
    if let Ok(v) = header::HeaderValue::from_str(&m.key()) {
        resp.headers_mut()
            .insert(header::HeaderName::from_static("x-oai-upstream"), v);
    }
}

/// What a streamed request needs besides its candidates.
struct StreamReq<'a> {
    model_name: &'a str,
    route: &'static str,
    rid: String,
    patch: Option<RecPatch>,
    key: Option<keyauth::KeyId>,
    started: Instant,
    include_usage: bool,
    writer: SseWriter,
}

/// A stream opener for one candidate (`more`: another candidate may follow,
/// so the request must be kept).
type Open<'s> = dyn FnMut(Arc<Model>, bool) -> futures_util::future::BoxFuture<'s, Result<ItemStream, ApiError>>
    + 's;

/// A streamed request: the next candidate is tried until one sends its first
/// chunk (within the first-byte timeout); from then on the client has bytes
/// and there is no retry.
async fn stream_failover(
    state: &AppState,
    cands: Vec<Arc<Model>>,
    r: StreamReq<'_>,
    open: &mut Open<'_>,
) -> Result<HttpResponse, ApiError> {
    let StreamReq {
        model_name,
        route,
        rid,
        patch,
        key,
        started,
        include_usage,
        writer,
    } = r;
    let upstream_time = None;
    let budget = state.router.config().max_attempts;
    let n = cands.len();
    let mut tried = 0;
    let mut last = None;
    for (i, m) in cands.into_iter().enumerate() {
        if tried >= budget {
            break;
        }
        let rkey = m.key();
        if !state.router.admit(&rkey) {
            continue;
        }
        tried += 1;
        let more = i + 1 < n && tried < budget;
        let first_byte = std::time::Duration::from_secs(match &m.upstream {
            Some(u) => u.cfg.timeouts.stream_first_byte_secs,
            None => state.config.first_byte_timeout_secs,
        });
        let t0 = Instant::now();
        let opening = open(Arc::clone(&m), more);
        let opened = tokio::time::timeout(first_byte, async {
            let mut items = opening.await?;
            let first = items.next().await;
            Ok::<_, ApiError>((first, items))
        })
        .await;
        let err = match opened {
            Err(_) => ApiError::upstream(
                actix_web::http::StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                format!(
                    "'{rkey}' sent no first chunk within {} s",
                    first_byte.as_secs()
                ),
            )
            .code("upstream_timeout"),
            Ok(Err(e)) if !state.router.retryable(&e) => {
                state.router.release(&rkey);
                Ctx {
                    key,
                    model: m,
                    started,
                    route: "chat",
                    rid: rid.clone(),
                    upstream_time,
                    patch: patch.clone(),
                }
                .log(e.status.as_u16(), None, true);
                return Err(e);
            }
            Ok(Err(e)) => e,
            Ok(Ok((Some(batch), rest))) if !matches!(batch.first(), Some(StreamItem::Error(_))) => {
                state.router.success(&rkey, t0.elapsed());
                METRICS
                    .ttft
                    .with_label_values(&[route, "true"])
                    .observe(started.elapsed().as_secs_f64());
                note(&patch, |p| {
                    p.stream = true;
                    p.upstream = Some(rkey.clone());
                    p.ttft_ms = i64::try_from(started.elapsed().as_millis()).ok();
                });
                METRICS
                    .added
                    .with_label_values(&[route])
                    .observe(t0.saturating_duration_since(started).as_secs_f64());
                let items: ItemStream =
                    Box::pin(futures_util::stream::once(async move { batch }).chain(rest));
                let ctx = Ctx {
                    key,
                    model: m,
                    started,
                    route: "chat",
                    rid: rid.clone(),
                    upstream_time,
                    patch: patch.clone(),
                };
                let model = Arc::clone(&ctx.model);
                let mut resp = sse_response(state, ctx, items, writer, include_usage);
                served_by(&mut resp, &model);
                return Ok(resp);
            }
            Ok(Ok((batch, _))) => {
                let message = match batch.as_deref() {
                    Some([StreamItem::Error(e), ..]) => e.error.message.clone(),
                    _ => "the stream ended before its first chunk".into(),
                };
                ApiError::upstream(
                    actix_web::http::StatusCode::BAD_GATEWAY,
                    "upstream_error",
                    message,
                )
                .code("upstream_error")
            }
        };
        attempt_failed(state, &rkey, &err);
        last = Some(err);
    }
    let e = exhausted(last, model_name);
    tracing::info!(route, model = %model_name, status = e.status.as_u16(), error = e.label, "request failed");
    Err(e)
}

async fn completions(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    let Accepted {
        started,
        key,
        r,
        rid,
        patch,
    } = accept::<CompletionRequest>(&req, payload, &state).await?;
    let prompt = shape::validate_completion(&r)?;
    // Legacy completions: SageMaker endpoints and OpenAI-style upstreams.
    let cands: Vec<Arc<Model>> = state
        .candidates(&r.model)?
        .into_iter()
        .filter(|m| m.cfg.backend != Backend::Bedrock)
        .collect();
    if cands.is_empty() {
        return Err(ApiError::invalid(format!(
            "'{}' is a chat model: use /v1/chat/completions",
            r.model
        ))
        .param("model")
        .code("model_not_supported"));
    }
    let cands = state
        .router
        .order(state.access.permit(key.as_ref(), &r.model, cands)?);
    let stream = r.is_stream();
    let include_usage = r.include_usage();
    let (id, created) = (new_id("cmpl"), now());
    let auth = client_auth(&req);
    let prompt_estimate = sm_stream::complete::estimate_tokens(&prompt);
    let model_name = r.model.clone();
    let base = TranslatorConfig {
        id: id.clone(),
        model: r.model.clone(),
        created,
        // Legacy completions carry text only: reasoning stays inline.
        include_usage,
        prompt_tokens_estimate: prompt_estimate,
        ..TranslatorConfig::default()
    };
    let h = handle.clone();
    if stream {
        let writer = SseWriter::new(&id, &r.model, created, OutputShape::Completion);
        let mut open = |m: Arc<Model>, _more: bool| {
            let (h, r, prompt, auth) = (h.clone(), r.clone(), prompt.clone(), auth.clone());
            let tcfg = TranslatorConfig {
                dialect: m.cfg.dialect,
                ..base.clone()
            };
            Box::pin(async move {
                match &m.upstream {
                    Some(up) => crate::openai::completion_stream(up, &r, tcfg, auth).await,
                    None => {
                        let body = shape::completion_body(&m, &r, prompt, true)?;
                        h.sagemaker.stream_items(&m.cfg, body, tcfg).await
                    }
                }
            }) as futures_util::future::BoxFuture<'static, _>
        };
        let sr = StreamReq {
            model_name: &model_name,
            route: "completions",
            rid: rid.clone(),
            patch: patch.clone(),
            key,
            started,
            include_usage,
            writer,
        };
        return stream_failover(&state, cands, sr, &mut open).await;
    }
    let (out, model, took) = failover(&state, cands, &model_name, |m, _| {
        let (h, r, prompt, auth) = (h.clone(), r.clone(), prompt.clone(), auth.clone());
        let tcfg = TranslatorConfig {
            dialect: m.cfg.dialect,
            ..base.clone()
        };
        Box::pin(async move {
            match &m.upstream {
                Some(up) => crate::openai::completion(up, &r, tcfg, auth).await,
                None => {
                    let body = shape::completion_body(&m, &r, prompt, false)?;
                    let c = h.sagemaker.complete(&m.cfg, body, tcfg.clone()).await?;
                    Ok(Completion {
                        id: tcfg.id,
                        object: Default::default(),
                        created: tcfg.created,
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
                    })
                }
            }
        })
    })
    .await?;
    let upstream_time = Some(took);
    let ctx = Ctx {
        key,
        model,
        started,
        route: "completions",
        rid: rid.clone(),
        upstream_time,
        patch: patch.clone(),
    };
    Ok(ctx.answer(out.usage.as_ref(), &out))
}

async fn embeddings(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    let Accepted {
        started,
        key,
        r,
        rid,
        patch,
    } = accept::<EmbeddingRequest>(&req, payload, &state).await?;
    let cands = state.router.order(state.access.permit(
        key.as_ref(),
        &r.model,
        state.candidates(&r.model)?,
    )?);
    let auth = client_auth(&req);
    let model_name = r.model.clone();
    let h = handle.clone();
    let (out, model, took) = failover(&state, cands, &model_name, |m, _| {
        let (h, r, auth) = (h.clone(), r.clone(), auth.clone());
        Box::pin(async move { h.provider(&m).embeddings(&m, r, auth).await })
    })
    .await
    .inspect_err(|e| {
        tracing::info!(route = "embeddings", model = %model_name, status = e.status.as_u16(), error = e.label, "request failed");
    })?;
    let upstream_time = Some(took);
    let ctx = Ctx {
        key,
        model,
        started,
        route: "embeddings",
        rid: rid.clone(),
        upstream_time,
        patch: patch.clone(),
    };
    let usage = openai_types::Usage::new(out.usage.prompt_tokens, 0);
    Ok(ctx.answer(Some(&usage), &out))
}

/// What a request log line says. Never a key, never a prompt.
struct Ctx {
    key: Option<keyauth::KeyId>,
    model: Arc<Model>,
    started: Instant,
    route: &'static str,
    rid: String,
    /// How long the serving upstream call took (whole answers).
    upstream_time: Option<std::time::Duration>,
    /// The request's record, filled here.
    patch: Option<RecPatch>,
}

impl Ctx {
    /// A whole answer: logged and counted, written with its
    /// `Content-Length`, and naming the candidate that served it.
    fn answer<T: serde::Serialize>(
        &self,
        usage: Option<&openai_types::Usage>,
        body: &T,
    ) -> HttpResponse {
        self.log(200, usage, false);
        let mut resp = json(body);
        served_by(&mut resp, &self.model);
        resp
    }

    fn log(&self, status: u16, usage: Option<&openai_types::Usage>, stream: bool) {
        let cfg = &self.model.cfg;
        let m = &*METRICS;
        let upstream = self.model.key();
        let total = self.started.elapsed();
        m.requests
            .with_label_values(&[
                self.route,
                self.model.metric_name(),
                upstream.as_str(),
                metrics::class(status),
            ])
            .inc();
        let stream_label = if stream { "true" } else { "false" };
        m.duration
            .with_label_values(&[self.route, stream_label])
            .observe(total.as_secs_f64());
        if !stream && status < 400 {
            m.ttft
                .with_label_values(&[self.route, stream_label])
                .observe(total.as_secs_f64());
            if let Some(u) = self.upstream_time {
                m.added
                    .with_label_values(&[self.route])
                    .observe(total.saturating_sub(u).as_secs_f64());
            }
        }
        if let Some(u) = usage {
            m.tokens
                .with_label_values(&[self.model.metric_name(), "prompt"])
                .inc_by(u.prompt_tokens);
            m.tokens
                .with_label_values(&[self.model.metric_name(), "completion"])
                .inc_by(u.completion_tokens);
        }
        note(&self.patch, |p| {
            p.key_id = self.key.as_ref().map(|k| k.as_str().to_owned());
            p.model = Some(cfg.name.clone());
            p.upstream = Some(upstream.clone());
            p.stream = stream;
            if let Some(u) = usage {
                p.prompt_tokens = i64::try_from(u.prompt_tokens).ok();
                p.completion_tokens = i64::try_from(u.completion_tokens).ok();
                p.tokens_estimated = u.estimated;
            }
            if !stream && status < 400 {
                p.ttft_ms = i64::try_from(total.as_millis()).ok();
            }
        });
        tracing::info!(
            request_id = %self.rid,
            route = self.route,
            model = %cfg.name,
            backend = ?cfg.backend,
            upstream = %match cfg.backend {
                Backend::Sagemaker => cfg.endpoint_name().to_owned(),
                Backend::Bedrock => cfg.bedrock_model_id().to_owned(),
                Backend::Openai => self.model.key(),
            },
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

/// Streams a provider's items as SSE: each batch written and flushed as it
/// comes, a stream silent for `stream_idle_timeout_secs` ended with an error
/// event, the usage chunk forwarded only when the client asked for it.
fn sse_response(
    state: &AppState,
    ctx: Ctx,
    mut items: ItemStream,
    writer: SseWriter,
    include_usage: bool,
) -> HttpResponse {
    let idle = std::time::Duration::from_secs(state.config.stream_idle_timeout_secs);
    let redactor = Arc::clone(&state.redactor);
    METRICS.active_streams.inc();
    let mut guard = StreamGuard {
        ctx,
        done: false,
        sent: sm_stream::complete::TokenCounter::default(),
    };
    let s = async_stream::stream! {
        let mut out = BytesMut::new();
        let mut usage = None;
        loop {
            let mut batch = match tokio::time::timeout(idle, items.next()).await {
                Ok(Some(b)) => b,
                Ok(None) => vec![StreamItem::Error(
                    openai_types::ErrorResponse::new("the upstream stream ended without a result", "server_error")
                        .with_code("upstream_truncated"),
                )],
                Err(_) => vec![StreamItem::Error(
                    openai_types::ErrorResponse::new(
                        format!("the model sent nothing for {} s", idle.as_secs()),
                        "server_error",
                    )
                    .with_code("upstream_idle_timeout"),
                )],
            };
            let mut last = false;
            for item in &mut batch {
                match item {
                    StreamItem::Usage(u) => {
                        usage = Some(u.clone());
                        if !include_usage {
                            continue;
                        }
                    }
                    StreamItem::Done => last = true,
                    StreamItem::Error(e) => {
                        last = true;
                        // The upstream's words: no key of ours goes out in them.
                        if let std::borrow::Cow::Owned(clean) = redactor.scrub(&e.error.message, None) {
                            e.error.message = clean;
                        }
                        let kind = e.error.code.clone().unwrap_or_else(|| "stream_error".into());
                        note(&guard.ctx.patch, |p| p.error = Some(kind));
                    }
                    StreamItem::Choice(c) => {
                        for t in [&c.delta.content, &c.delta.reasoning_content].into_iter().flatten() {
                            guard.sent.add(t);
                        }
                    }
                }
                writer.write(item, &mut out);
                if last {
                    break;
                }
            }
            if !out.is_empty() {
                yield Ok::<Bytes, actix_web::Error>(out.split().freeze());
            }
            if last {
                guard.done = true;
                guard.ctx.log(200, usage.as_ref(), true);
                break;
            }
        }
    };
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(s)
}

/// Logs a stream the client left before it ended (dropping the generator
/// drops the upstream stream, which closes its connection).
struct StreamGuard {
    ctx: Ctx,
    done: bool,
    /// Tokens sent, estimated, for an interrupted stream's record.
    sent: sm_stream::complete::TokenCounter,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        METRICS.active_streams.dec();
        if !self.done {
            let sent = i64::try_from(self.sent.tokens()).unwrap_or(i64::MAX);
            let (cfg, upstream) = (&self.ctx.model.cfg, self.ctx.model.key());
            note(&self.ctx.patch, |p| {
                p.stream = true;
                p.model = Some(cfg.name.clone());
                p.upstream = Some(upstream);
                p.completion_tokens = Some(sent);
                p.tokens_estimated = true;
                p.interrupted = true;
                p.error = Some("client_disconnected".into());
            });
        }
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
