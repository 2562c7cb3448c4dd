//! The crate's one error type, and Bedrock's exceptions mapped to HTTP.

use openai_types::ErrorResponse;

/// Why a translation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The OpenAI request cannot be expressed in Converse (a client error).
    #[error("{message}")]
    Invalid {
        /// What is wrong.
        message: String,
        /// The request field at fault (`messages[2].content[0]`).
        param: Option<String>,
    },
    /// Bedrock reported an exception (before or during a stream).
    #[error("{message}")]
    Upstream {
        /// The exception's name as Bedrock spells it (`ThrottlingException`).
        name: String,
        /// Its message.
        message: String,
    },
    /// The stream ended before `messageStop`.
    #[error("the model's stream was cut short: {0}")]
    Truncated(String),
    /// The event-stream bytes could not be decoded.
    #[error("event-stream framing error: {0}")]
    Frame(String),
    /// A Bedrock response did not have the expected shape.
    #[error("unexpected response from Bedrock: {0}")]
    BadResponse(String),
}

/// How an error is presented over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpMapping {
    /// The status code.
    pub status: u16,
    /// OpenAI's `error.type`.
    pub kind: &'static str,
    /// OpenAI's `error.code`.
    pub code: &'static str,
}

/// The HTTP mapping of a Bedrock exception by name. Names are compared without
/// regard to the case of their first letter (`throttlingException` in a
/// stream, `ThrottlingException` in a response header).
pub fn exception_mapping(name: &str) -> HttpMapping {
    let n = name.rsplit('#').next().unwrap_or(name);
    let m = |status, kind, code| HttpMapping { status, kind, code };
    let eq = |want: &str| n.eq_ignore_ascii_case(want);
    if eq("ValidationException") {
        m(400, "invalid_request_error", "validation_error")
    } else if eq("AccessDeniedException") {
        m(403, "permission_error", "access_denied")
    } else if eq("ResourceNotFoundException") {
        m(404, "invalid_request_error", "model_not_found")
    } else if eq("ThrottlingException") {
        m(429, "rate_limit_error", "rate_limit_exceeded")
    } else if eq("ServiceQuotaExceededException") {
        m(429, "rate_limit_error", "quota_exceeded")
    } else if eq("ModelTimeoutException") {
        m(504, "server_error", "model_timeout")
    } else if eq("ServiceUnavailableException") {
        m(503, "server_error", "service_unavailable")
    } else if eq("ModelNotReadyException") {
        m(503, "server_error", "model_not_ready")
    } else if eq("ModelStreamErrorException") || eq("ModelErrorException") {
        m(502, "server_error", "model_error")
    } else {
        m(502, "server_error", "upstream_error")
    }
}

impl Error {
    /// A client error about one field.
    pub fn invalid(message: impl Into<String>, param: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// How this error is presented over HTTP.
    pub fn http(&self) -> HttpMapping {
        match self {
            Self::Invalid { .. } => HttpMapping {
                status: 400,
                kind: "invalid_request_error",
                code: "invalid_request",
            },
            Self::Upstream { name, .. } => exception_mapping(name),
            Self::Truncated(_) => HttpMapping {
                status: 502,
                kind: "server_error",
                code: "upstream_truncated",
            },
            Self::Frame(_) | Self::BadResponse(_) => HttpMapping {
                status: 502,
                kind: "server_error",
                code: "bad_upstream_response",
            },
        }
    }

    /// The OpenAI error envelope.
    pub fn to_openai(&self) -> ErrorResponse {
        let h = self.http();
        let mut e = ErrorResponse::new(self.to_string(), h.kind);
        e.error.code = Some(h.code.into());
        if let Self::Invalid { param, .. } = self {
            e.error.param = param.clone();
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exceptions_map_to_the_documented_statuses() {
        for (name, status) in [
            ("ValidationException", 400),
            ("validationException", 400),
            ("AccessDeniedException", 403),
            ("ResourceNotFoundException", 404),
            ("ThrottlingException", 429),
            ("throttlingException", 429),
            ("ModelTimeoutException", 504),
            ("ServiceUnavailableException", 503),
            ("serviceUnavailableException", 503),
            ("internalServerException", 502),
            ("com.amazon.coral#ThrottlingException", 429),
        ] {
            assert_eq!(exception_mapping(name).status, status, "{name}");
        }
    }

    #[test]
    fn the_envelope_names_the_param_of_a_client_error() {
        let e = Error::invalid("bad", "messages[0]").to_openai();
        assert_eq!(e.error.param.as_deref(), Some("messages[0]"));
        assert_eq!(e.error.kind, "invalid_request_error");
    }
}
