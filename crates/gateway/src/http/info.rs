//! The routes that are not inference: `/ping`, `/health`, `/metrics` and
//! the model list (the admin API is `admin`).

use actix_web::{HttpRequest, HttpResponse, web};
use openai_types::models::{Model as ModelEntry, ModelList};

use super::extract::authorize;
use super::respond::json;
use crate::error::ApiError;
use crate::observe::metrics;
use crate::routing::state::Handle;

pub(super) async fn ping() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

pub(super) async fn health(handle: web::Data<Handle>) -> HttpResponse {
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
pub(super) async fn metrics_route(
    req: HttpRequest,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    if let Some(auth) = &state.metrics_auth {
        auth.verify_header(super::extract::authorization(&req))
            .await?;
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics::render(
            state
                .router
                .snapshot()
                .iter()
                .map(|h| (h.name.as_str(), h.state.gauge())),
            state.access.counters(),
        )))
}

pub(super) async fn list_models(
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

pub(super) async fn get_model(
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
    let m = state
        .models
        .get(&id)
        .ok_or_else(|| ApiError::model_not_found(format!("The model '{id}' does not exist")))?;
    Ok(json(&ModelEntry::new(id, m.created, m.cfg.owner())))
}
