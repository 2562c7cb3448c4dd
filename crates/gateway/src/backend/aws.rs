//! What the AWS backends share: the mapping of SDK failures that happen
//! before a service answers (timeouts, connections, request construction).

use actix_web::http::StatusCode;
use aws_sdk_sagemakerruntime::error::{ProvideErrorMetadata, SdkError};

use crate::error::ApiError;

/// The error of a call that failed before the service answered (timeout,
/// connection, request construction), for any AWS service; `None` for a
/// service error.
pub fn transport_error<E, R>(e: &SdkError<E, R>, service: &str) -> Option<ApiError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    const SEE_LOG: &str = "the gateway's log has the details under this response's x-request-id";
    if !matches!(e, SdkError::ServiceError(_)) {
        tracing::warn!(service, error = %aws_sdk_sagemakerruntime::error::DisplayErrorContext(e), "AWS call failed before the service answered");
    }
    Some(match e {
        SdkError::TimeoutError(_) => {
            ApiError::upstream_timeout(format!("Timed out calling {service}"))
        }
        SdkError::DispatchFailure(d) => {
            let mut e = ApiError::unreachable(if d.is_timeout() {
                format!("Timed out connecting to {service}; {SEE_LOG}")
            } else {
                format!("Could not reach {service}; {SEE_LOG}")
            });
            if d.is_timeout() {
                e.status = StatusCode::GATEWAY_TIMEOUT;
            }
            e
        }
        SdkError::ConstructionFailure(_) => {
            ApiError::internal(format!("Could not build the {service} request; {SEE_LOG}"))
        }
        SdkError::ResponseError(_) => ApiError::upstream(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!("{service} sent an unreadable answer; {SEE_LOG}"),
        )
        .code("upstream_error"),
        _ => return None,
    })
}
