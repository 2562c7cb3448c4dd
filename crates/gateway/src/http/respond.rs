//! What every answer shares: a JSON body written whole, the serving
//! candidate named, who served as the outcome tells it.

use actix_web::HttpResponse;
use actix_web::http::header;

use crate::backend::Model;
use crate::error::ApiError;
use crate::observe::outcome::ServedBy;

/// A JSON body with its `Content-Length`, written in one piece.
pub(crate) fn json<T: serde::Serialize>(v: &T) -> HttpResponse {
    match serde_json::to_vec(v) {
        Ok(b) => HttpResponse::Ok().content_type("application/json").body(b),
        Err(e) => actix_web::ResponseError::error_response(&ApiError::internal(e.to_string())),
    }
}

/// Names the candidate that served a response (`x-oai-upstream`) and its
/// model (`x-oai-model`: a fallback's when one answered).
pub(crate) fn served_by(resp: &mut HttpResponse, m: &Model) {
    for (name, value) in [
        ("x-oai-upstream", m.key()),
        ("x-oai-model", m.cfg.name.clone()),
    ] {
        if let Ok(v) = header::HeaderValue::from_str(&value) {
            resp.headers_mut()
                .insert(header::HeaderName::from_static(name), v);
        }
    }
}

/// Who served, as the outcome tells it.
pub(crate) fn served_by_of(m: &Model) -> ServedBy {
    ServedBy {
        model: m.cfg.name.clone(),
        metric_model: m.metric_name().to_owned(),
        candidate: m.key(),
        backend: m.backend(),
        upstream: m.upstream_label(),
    }
}
