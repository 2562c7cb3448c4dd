//! The one place errors become HTTP: the OpenAI error envelope with the right
//! status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use openai_types::ErrorResponse;

/// Who an error is owed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The request itself (4xx the client can fix).
    Client,
    /// The gateway (a bug, a misconfiguration).
    Gateway,
    /// An upstream: it failed, refused, was slow or unreachable.
    Upstream,
}

/// Whether another candidate may succeed where this attempt failed (pingora's
/// `RetryType`, decided where the error is made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Always: nothing reached the upstream, or it never answered in time
    /// (connect errors, timeouts before the first byte).
    Always,
    /// When the status (the upstream's, else ours) is one of
    /// `routing.retry_on_status`.
    ByStatus,
    /// Never: another candidate would fail the same way.
    Never,
}

/// An error answered to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The OpenAI error object (boxed: errors travel in `Result`s).
    pub body: Box<ErrorResponse>,
    /// A low-cardinality label for logs and metrics.
    pub label: &'static str,
    /// The status an OpenAI-compatible upstream answered (for retry rules).
    pub upstream_status: Option<u16>,
    /// The upstream's `Retry-After`, passed on.
    pub retry_after: Option<String>,
    /// More response headers (`x-ratelimit-*` of a refused request).
    pub headers: Vec<(&'static str, String)>,
    /// Close the connection after this answer (the request was not read
    /// whole).
    pub close: bool,
    /// Whose fault it is.
    pub blame: Blame,
    /// Whether the next candidate may be tried.
    pub retry: Retry,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.body.error.message)
    }
}

impl ApiError {
    /// An error of the given status, OpenAI `type` and label.
    pub fn new(
        status: StatusCode,
        kind: &str,
        label: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            body: Box::new(ErrorResponse::new(message, kind)),
            label,
            upstream_status: None,
            retry_after: None,
            headers: Vec::new(),
            close: false,
            blame: if status.is_server_error() {
                Blame::Gateway
            } else {
                Blame::Client
            },
            retry: Retry::ByStatus,
        }
    }

    /// An error an upstream caused (its status kept for the retry rules).
    pub fn from_upstream(status: StatusCode, body: ErrorResponse, label: &'static str) -> Self {
        Self {
            status,
            body: Box::new(body),
            label,
            upstream_status: None,
            retry_after: None,
            headers: Vec::new(),
            close: false,
            blame: Blame::Upstream,
            retry: Retry::ByStatus,
        }
    }

    /// Sets `param`.
    #[must_use]
    pub fn param(mut self, p: impl Into<String>) -> Self {
        self.body.error.param = Some(p.into());
        self
    }

    /// Sets `code`.
    #[must_use]
    pub fn code(mut self, c: impl Into<String>) -> Self {
        self.body.error.code = Some(c.into());
        self
    }

    /// 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_request",
            message,
        )
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "unauthorized",
            message,
        )
        .code("invalid_api_key")
    }

    /// 404 for a route.
    pub fn no_route(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            format!("Invalid URL ({method} {path})"),
        )
    }

    /// 413.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "body_too_large",
            format!("Request body exceeds the limit of {limit} bytes"),
        )
        .code("request_too_large")
    }

    /// 408: the body did not arrive in time; the connection is closed.
    pub fn body_timeout() -> Self {
        let mut e = Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "body_timeout",
            "The request body did not arrive in time",
        )
        .code("request_timeout");
        e.close = true;
        e.retry = Retry::Never;
        e
    }

    /// 502/503/504 and friends: the upstream failed.
    pub fn upstream(status: StatusCode, label: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::new(status, "server_error", label, message);
        e.blame = Blame::Upstream;
        e
    }

    /// 502 `upstream_unreachable`: no connection; the next candidate is
    /// always tried.
    pub fn unreachable(message: impl Into<String>) -> Self {
        let mut e = Self::upstream(StatusCode::BAD_GATEWAY, "upstream_unreachable", message)
            .code("upstream_unreachable");
        e.retry = Retry::Always;
        e
    }

    /// 504 `upstream_timeout`: no answer in time; the next candidate is
    /// always tried.
    pub fn upstream_timeout(message: impl Into<String>) -> Self {
        let mut e = Self::upstream(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", message)
            .code("upstream_timeout");
        e.retry = Retry::Always;
        e
    }

    /// 504: a candidate sent nothing within its first-byte deadline.
    pub fn first_byte_timeout(candidate: &str, limit: std::time::Duration) -> Self {
        Self::upstream_timeout(format!(
            "'{candidate}' sent no first chunk within {} s",
            limit.as_secs()
        ))
    }

    /// 503: every candidate is disabled or behind an open breaker.
    pub fn no_upstream(model: &str) -> Self {
        Self::upstream(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_upstream_available",
            format!("No upstream for '{model}' is available right now (all are disabled or their circuit breakers are open)"),
        )
        .code("no_upstream_available")
    }

    /// 404 `model_not_found`.
    pub fn model_not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            message,
        )
        .param("model")
        .code("model_not_found")
    }

    /// 500 for our own faults: another candidate would meet the same one.
    pub fn internal(message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal",
            message,
        );
        e.retry = Retry::Never;
        e
    }
}

/// A request outside the spec's ranges: 400 naming the parameter.
impl From<openai_types::validate::Invalid> for ApiError {
    fn from(e: openai_types::validate::Invalid) -> Self {
        Self::invalid(e.message).param(e.param)
    }
}

impl From<keyauth::Error> for ApiError {
    fn from(e: keyauth::Error) -> Self {
        match e {
            keyauth::Error::Missing => Self::unauthorized(
                "You didn't provide an API key. Send it in the Authorization header as 'Bearer <key>'.",
            ),
            keyauth::Error::Invalid => Self::unauthorized("Incorrect API key provided."),
            other => Self::upstream(
                StatusCode::SERVICE_UNAVAILABLE,
                "auth_unavailable",
                format!("Authentication is unavailable: {other}"),
            )
            .code("auth_unavailable"),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        // Serializing our own error type cannot fail; the fallback is static.
        let body = serde_json::to_vec(&self.body).unwrap_or_else(|_| {
            br#"{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"#.to_vec()
        });
        let mut r = HttpResponse::build(self.status);
        r.content_type("application/json");
        if self.status == StatusCode::UNAUTHORIZED {
            r.insert_header(("www-authenticate", "Bearer"));
        }
        if let Some(ra) = &self.retry_after {
            r.insert_header(("retry-after", ra.as_str()));
        }
        for (name, value) in &self.headers {
            r.insert_header((*name, value.as_str()));
        }
        if self.close {
            r.force_close();
        }
        r.body(body)
    }
}

/// An error and its sources, `: `-joined (transport errors hide the useful
/// part in a source).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
