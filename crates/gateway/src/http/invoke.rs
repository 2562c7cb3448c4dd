//! Bedrock's InvokeModel API for Anthropic models as a front door:
//! `POST /model/{model}/invoke` and `/model/{model}/invoke-with-response-stream`,
//! what Claude Code calls in its Bedrock mode (`CLAUDE_CODE_USE_BEDROCK=1`,
//! `ANTHROPIC_BEDROCK_BASE_URL` here, the gateway's key as
//! `AWS_BEARER_TOKEN_BEDROCK`). The body is Anthropic's (with
//! `anthropic_version`, the model in the path); it is served as a Messages
//! request (`messages.rs`, the chat lifecycle), answered as Bedrock answers:
//! the message whole, or each event as a `chunk` frame of the AWS
//! event-stream, with errors as Bedrock's exceptions.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use anthropic_messages::MessagesRequest;
use serde_json::Value;

use super::extract::{parse, receive};
use crate::error::ApiError;
use crate::routing::state::Handle;

/// `POST /model/{model}/invoke`.
pub(super) async fn invoke(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> HttpResponse {
    serve(req, payload, handle, false).await
}

/// `POST /model/{model}/invoke-with-response-stream`.
pub(super) async fn invoke_stream(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
) -> HttpResponse {
    serve(req, payload, handle, true).await
}

async fn serve(
    req: HttpRequest,
    payload: web::Payload,
    handle: web::Data<Handle>,
    stream: bool,
) -> HttpResponse {
    let state = handle.state();
    let served = async {
        let model = req.match_info().get("model").unwrap_or_default().to_owned();
        let received = receive(&req, payload, &state).await?;
        let mut body: Value = parse(&received.body)?;
        let Some(obj) = body.as_object_mut() else {
            return Err(ApiError::invalid("the body must be a JSON object"));
        };
        // The model is the path's; the stream is the operation's.
        obj.insert("model".into(), Value::String(model));
        obj.insert("stream".into(), Value::Bool(stream));
        let r: MessagesRequest = serde_json::from_value(body)
            .map_err(|e| ApiError::invalid(format!("Invalid request: {e}")))?;
        super::messages::serve_message(&handle, received.with(r), true).await
    };
    served.await.unwrap_or_else(|e| error_response(&e))
}

/// The Bedrock exception a status stands for.
fn exception(status: u16) -> &'static str {
    match status {
        401 | 403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 | 504 => "ModelTimeoutException",
        413 | 400 | 422 => "ValidationException",
        429 => "ThrottlingException",
        503 | 529 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

/// `e` as Bedrock answers errors: `{"message": …}` with
/// `x-amzn-ErrorType`, the status kept.
fn error_response(e: &ApiError) -> HttpResponse {
    let mut resp = e.error_response();
    let body = serde_json::json!({ "message": e.body.error.message });
    if e.status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().remove("www-authenticate");
    }
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(exception(e.status.as_u16())) {
        resp.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-amzn-errortype"),
            v,
        );
    }
    resp.set_body(actix_web::body::BoxBody::new(body.to_string()))
}
