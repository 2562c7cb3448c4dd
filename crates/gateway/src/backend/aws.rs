//! What the AWS backends share: the mapping of SDK failures that happen
//! before a service answers (timeouts, connections, request construction).

use actix_web::http::StatusCode;
use aws_sdk_sagemakerruntime::error::{ProvideErrorMetadata, SdkError};

use crate::error::ApiError;

/// Where a transport failure's details are: the log, never the answer.
const SEE_LOG: &str = "the gateway's log has the details under this response's x-request-id";

/// A service that could not be reached (502), or not within the connect
/// timeout (504); the details are logged by the caller, not answered.
pub(crate) fn unreachable(service: &str, timeout: bool) -> ApiError {
    if timeout {
        let mut e = ApiError::unreachable(format!("Timed out connecting to {service}; {SEE_LOG}"));
        e.status = StatusCode::GATEWAY_TIMEOUT;
        e
    } else {
        ApiError::unreachable(format!("Could not reach {service}; {SEE_LOG}"))
    }
}

/// The error of a call that failed before the service answered (timeout,
/// connection, request construction), for any AWS service; `None` for a
/// service error.
pub(crate) fn transport_error<E, R>(e: &SdkError<E, R>, service: &str) -> Option<ApiError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if !matches!(e, SdkError::ServiceError(_)) {
        tracing::warn!(service, error = %aws_sdk_sagemakerruntime::error::DisplayErrorContext(e), "AWS call failed before the service answered");
    }
    Some(match e {
        SdkError::TimeoutError(_) => {
            ApiError::upstream_timeout(format!("Timed out calling {service}"))
        }
        SdkError::DispatchFailure(d) => unreachable(service, d.is_timeout()),
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
