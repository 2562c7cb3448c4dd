//! The HTTP layer: the route table, request extraction, handlers that
//! adapt (accept, admit, fail over, respond), the SSE response, pass-through
//! and the connection type. It holds no retry loop and no backend dispatch:
//! those are `routing` and `backend`.

mod admin;
mod admin_doc;
mod bedrock_frames;
pub(crate) mod body;
pub(crate) mod conn;
mod console;
pub(crate) mod extract;
mod handlers;
mod info;
mod intake;
mod invoke;
mod messages;
pub(crate) mod passthrough;
mod probe;
pub(crate) mod respond;
mod responses;
pub(crate) mod sse;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;
use crate::routing::state::Handle;
use handlers::{chat, completions, embeddings, rerank};
use info::{get_model, health, list_models, metrics_route, ping};

/// Registers every route.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    // Tried in this order, each pattern against the path: the busy fixed
    // paths first, so a chat request never runs the patterns' regexes
    // (`/v1/models/{id:.*}` was 0.7 % of the CPU at saturation ahead of it).
    cfg.route("/v1/chat/completions", web::post().to(chat))
        .route("/ping", web::get().to(ping))
        .route("/health", web::get().to(health))
        .route("/v1/models", web::get().to(list_models))
        .route("/v1/completions", web::post().to(completions))
        .route("/v1/embeddings", web::post().to(embeddings))
        .route("/v1/rerank", web::post().to(rerank))
        .route("/v2/rerank", web::post().to(rerank))
        .route("/rerank", web::post().to(rerank))
        .route("/v1/responses", web::post().to(responses::responses))
        .route("/v1/messages", web::post().to(messages::messages))
        .route(
            "/v1/messages/count_tokens",
            web::post().to(messages::count_tokens),
        )
        .route("/v1/models/{id:.*}", web::get().to(get_model))
        .route("/model/{model}/invoke", web::post().to(invoke::invoke))
        .route(
            "/model/{model}/invoke-with-response-stream",
            web::post().to(invoke::invoke_stream),
        )
        .route("/metrics", web::get().to(metrics_route))
        .route("/v1/metrics", web::get().to(metrics_route))
        .configure(admin::routes)
        .configure(console::routes);
}

/// Any other route: an OpenAI-shaped 404.
pub(crate) async fn not_found(req: HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::no_route(req.method().as_str(), req.path()))
}

/// Any route not served here: `/v1/*` passes through to OpenAI-style
/// upstreams when there are any; everything else is an OpenAI-shaped 404.
pub(crate) async fn fallback(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    if req.path().starts_with("/v1/") && !state.upstreams.is_empty() {
        return crate::http::passthrough::passthrough(req, payload, handle).await;
    }
    Ok(not_found(req).await)
}
