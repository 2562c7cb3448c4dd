//! The admin API, behind the admin key (without one it does not exist):
//! upstreams (health, breaker, disable, enable), stored keys (create: the
//! secret shown once; list; get; update; disable; enable; delete), usage
//! per key and model from the request records, and its own OpenAPI
//! document at `/admin/openapi.json`.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::respond::json;
use crate::error::ApiError;
use crate::keys::{KeyPatch, KeyStore, NewKey, StoredKey};
use crate::routing::state::{AppState, Handle};

/// The admin API's key check; without an admin key the API does not exist.
pub(super) async fn admin_auth(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(admin) = &state.admin else {
        return Err(ApiError::no_route(req.method().as_str(), req.path()));
    };
    let h = super::extract::authorization(req);
    // The console's session cookie stands for the key; its changes carry
    // the session's CSRF token.
    if h.is_none()
        && let Some(key) = &state.config.admin.key
        && let Some(s) = super::console::session(req, &key.0, super::console::generation(state))
    {
        let reads = matches!(req.method().as_str(), "GET" | "HEAD");
        if !reads && !super::console::csrf_ok(req, &key.0, &s) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_error",
                "csrf",
                "This change needs the console's CSRF token (x-csrf-token).",
            )
            .code("csrf_token_invalid"));
        }
        return Ok(());
    }
    admin.verify_header(h).await?;
    Ok(())
}

/// Declares the admin routes once: registered by `routes`, listed in
/// `ROUTES` (which the OpenAPI document is checked against, so the two
/// cannot drift).
macro_rules! admin_routes {
    ($($method:ident $path:literal => $handler:ident),* $(,)?) => {
        /// Every admin route: method and actix pattern (for the check).
        #[cfg(test)]
        pub(super) const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        /// Registers the admin routes.
        pub(super) fn routes(cfg: &mut web::ServiceConfig) {
            $(cfg.route($path, web::$method().to($handler));)*
        }
    };
}

admin_routes! {
    get "/admin/upstreams" => upstreams,
    post "/admin/upstreams/{action:(disable|enable)}/{name:.*}" => set_upstream,
    get "/admin/keys" => list_keys,
    post "/admin/keys" => create_key,
    get "/admin/keys/{id}" => get_key,
    patch "/admin/keys/{id}" => update_key,
    delete "/admin/keys/{id}" => delete_key,
    post "/admin/keys/{id}/{action:(disable|enable)}" => toggle_key,
    get "/admin/usage" => usage,
    get "/admin/usage/daily" => usage_daily,
    get "/admin/requests" => requests,
    post "/admin/upstreams/test/{name:.*}" => test_upstream,
    get "/admin/openapi.json" => openapi,
}

/// `GET /admin/upstreams`: every candidate's breaker and health.
async fn upstreams(req: HttpRequest, handle: web::Data<Handle>) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    admin_auth(&req, &state).await?;
    Ok(json(&json!({
        "object": "list",
        "data": state.router.snapshot(),
    })))
}

/// `POST /admin/upstreams/{disable|enable}/{name}`.
async fn set_upstream(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    admin_auth(&req, &state).await?;
    let (action, name) = path.into_inner();
    if !state.router.set_disabled(&name, action == "disable") {
        return Err(
            not_found(format!("No upstream or model named '{name}'")).code("upstream_not_found")
        );
    }
    tracing::warn!(upstream = %name, action = %action, "admin changed an upstream");
    let view = state.router.snapshot().into_iter().find(|v| v.name == name);
    Ok(json(&view))
}

fn not_found(message: String) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "not_found",
        message,
    )
}

/// The key store, after the admin key check (503 when records are off).
async fn store(req: &HttpRequest, state: &AppState) -> Result<std::sync::Arc<KeyStore>, ApiError> {
    admin_auth(req, state).await?;
    state.access.stored().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "no_key_store",
            "Stored keys live in the records database: turn [records] on.",
        )
        .code("key_store_unavailable")
    })
}

/// A key as the admin API shows it: never the secret or its hash.
fn view(ks: &KeyStore, k: &StoredKey) -> Value {
    let used = ks.used(k);
    let mut v = serde_json::to_value(k).unwrap_or_default();
    v["object"] = json!("key");
    v["used_tokens"] = json!(used.tokens);
    v["used_micro_usd"] = json!(used.micro_usd);
    v["status"] = json!(k.status(crate::ids::now_ms() as i64, used));
    v
}

fn missing(id: &str) -> ApiError {
    not_found(format!("No key with id '{id}'")).code("key_not_found")
}

fn invalid(e: anyhow::Error) -> ApiError {
    ApiError::invalid(format!("{e:#}"))
}

async fn list_keys(req: HttpRequest, handle: web::Data<Handle>) -> Result<HttpResponse, ApiError> {
    let ks = store(&req, &handle.state()).await?;
    let data: Vec<Value> = ks.list().iter().map(|k| view(&ks, k)).collect();
    Ok(json(&json!({"object": "list", "data": data})))
}

/// The largest admin request body.
const MAX_ADMIN_BODY: usize = 64 * 1024;

/// An admin request's body: a JSON object, under [`MAX_ADMIN_BODY`] and the
/// body deadline, refused in the OpenAI envelope otherwise (413, 408, 400).
async fn object<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    handle: &Handle,
) -> Result<T, ApiError> {
    let state = handle.state();
    let body = super::body::read(req, payload, MAX_ADMIN_BODY, &state.config).await?;
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::invalid("The request body must be a JSON object"));
    }
    super::extract::parse(&body)
}

async fn create_key(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let ks = store(&req, &handle.state()).await?;
    let new: NewKey = object(&req, payload, &handle).await?;
    let (secret, k) = ks.create(new).await.map_err(invalid)?;
    tracing::warn!(key_id = %k.id, name = %k.name, "admin created a key");
    let mut v = view(&ks, &k);
    // The only time the secret is shown.
    v["key"] = json!(secret);
    let mut resp = json(&v);
    *resp.status_mut() = StatusCode::CREATED;
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

async fn get_key(
    req: HttpRequest,
    id: web::Path<String>,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let ks = store(&req, &handle.state()).await?;
    let k = ks.get(&id).ok_or_else(|| missing(&id))?;
    Ok(json(&view(&ks, &k)))
}

async fn change(ks: &KeyStore, id: &str, patch: KeyPatch) -> Result<HttpResponse, ApiError> {
    if !ks.update(id, patch).await.map_err(invalid)? {
        return Err(missing(id));
    }
    tracing::warn!(key_id = %id, "admin changed a key");
    let k = ks.get(id).ok_or_else(|| missing(id))?;
    Ok(json(&view(ks, &k)))
}

async fn update_key(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let ks = store(&req, &handle.state()).await?;
    let patch: KeyPatch = object(&req, payload, &handle).await?;
    change(&ks, &id, patch).await
}

async fn toggle_key(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let ks = store(&req, &handle.state()).await?;
    let (id, action) = path.into_inner();
    let patch = KeyPatch {
        disabled: Some(action == "disable"),
        ..KeyPatch::default()
    };
    change(&ks, &id, patch).await
}

async fn delete_key(
    req: HttpRequest,
    id: web::Path<String>,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let ks = store(&req, &handle.state()).await?;
    if !ks.delete(&id).await.map_err(invalid)? {
        return Err(missing(&id));
    }
    tracing::warn!(key_id = %id, "admin deleted a key");
    Ok(json(
        &json!({"id": id.as_str(), "object": "key", "deleted": true}),
    ))
}

/// The records (flushed), after the admin key check, and the query's
/// parameters.
async fn records<'h>(
    req: &HttpRequest,
    handle: &'h Handle,
) -> Result<(&'h crate::observe::records::Recorder, Params), ApiError> {
    admin_auth(req, &handle.state()).await?;
    let Some(rec) = &handle.recorder else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "no_records",
            "This is read from the request records: turn [records] on.",
        ));
    };
    let q = web::Query::<Params>::from_query(req.query_string())
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    rec.flush().await;
    Ok((rec, q.into_inner()))
}

/// Query parameters of the records' views.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Since, Unix ms.
    #[serde(default)]
    since_ms: i64,
    /// One key.
    key_id: Option<String>,
    /// One model.
    model: Option<String>,
    /// At most this many records.
    limit: Option<i64>,
}

fn unreadable(e: sqlx::Error) -> ApiError {
    ApiError::internal(format!("the records could not be read: {e}"))
}

/// `GET /admin/usage?since_ms=…`: per model and key from the request
/// records: requests, errors, tokens, prompt-cache reads and writes, what
/// they cost and what the cache saved (at `[[prices]]`), guardrail
/// interventions, fallbacks and affinity; the key's name where it has one.
async fn usage(req: HttpRequest, handle: web::Data<Handle>) -> Result<HttpResponse, ApiError> {
    let (rec, q) = records(&req, &handle).await?;
    let rows = crate::observe::records::summary(&rec.pool, q.since_ms)
        .await
        .map_err(unreadable)?;
    let state = handle.state();
    let names = state.access.key_names();
    let data: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let cost = r.cost(state.config.price_of(&r.model));
            let key_name = names.get(&r.key_id);
            priced(json!(r), cost, key_name)
        })
        .collect();
    Ok(json(
        &json!({"object": "list", "since_ms": q.since_ms, "data": data}),
    ))
}

/// `GET /admin/usage/daily?since_ms=…&key_id=…`: per day and model, with
/// cost and cache savings.
async fn usage_daily(
    req: HttpRequest,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let (rec, q) = records(&req, &handle).await?;
    let rows = crate::observe::records::daily(&rec.pool, q.since_ms, q.key_id.as_deref())
        .await
        .map_err(unreadable)?;
    let state = handle.state();
    let data: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let cost = r.cost(state.config.price_of(&r.model));
            priced(json!(r), cost, None)
        })
        .collect();
    Ok(json(
        &json!({"object": "list", "since_ms": q.since_ms, "data": data}),
    ))
}

/// A usage row with its cost, savings and key name (`null` without one).
fn priced(mut row: Value, cost: crate::observe::records::Cost, key_name: Option<&String>) -> Value {
    if let Value::Object(o) = &mut row {
        o.insert("cost_micro_usd".into(), cost.cost_micro_usd.into());
        o.insert("saved_micro_usd".into(), cost.saved_micro_usd.into());
        if o.contains_key("key_id") {
            o.insert("key_name".into(), json!(key_name));
        }
    }
    row
}

/// `GET /admin/requests?limit=…&key_id=…&model=…`: recent request records.
async fn requests(req: HttpRequest, handle: web::Data<Handle>) -> Result<HttpResponse, ApiError> {
    let (rec, q) = records(&req, &handle).await?;
    let query = crate::observe::records::Query {
        since_ms: Some(q.since_ms),
        model: q.model,
        key_id: q.key_id,
        status: None,
        limit: q.limit.unwrap_or(50).clamp(1, 500),
    };
    let rows = crate::observe::records::query(&rec.pool, &query)
        .await
        .map_err(unreadable)?;
    let names = handle.state().access.key_names();
    let data: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let name = r.key_id.as_ref().and_then(|id| names.get(id));
            let mut v = json!(r);
            v["key_name"] = json!(name);
            v
        })
        .collect();
    Ok(json(&json!({"object": "list", "data": data})))
}

/// `POST /admin/upstreams/test/{name}`: a tiny request to one candidate
/// (an upstream's model list; a model's one-token chat), timed.
async fn test_upstream(
    req: HttpRequest,
    name: web::Path<String>,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    admin_auth(&req, &state).await?;
    let started = std::time::Instant::now();
    let result = super::probe::probe(&state, &handle, &name).await?;
    let ms = started.elapsed().as_millis() as u64;
    tracing::info!(upstream = %name, ok = result.is_ok(), ms, "admin tested an upstream");
    Ok(json(&match result {
        Ok(status) => {
            json!({"name": name.as_str(), "ok": true, "status": status, "latency_ms": ms})
        }
        Err(e) => {
            json!({"name": name.as_str(), "ok": false, "status": e.status.as_u16(), "latency_ms": ms, "error": e.body.error.message})
        }
    }))
}

/// `GET /admin/openapi.json`: this API, described.
async fn openapi(req: HttpRequest, handle: web::Data<Handle>) -> Result<HttpResponse, ApiError> {
    admin_auth(&req, &handle.state()).await?;
    Ok(json(&super::admin_doc::document()))
}
