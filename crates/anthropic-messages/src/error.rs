//! The error envelope: `{"type":"error","error":{"type":…,"message":…}}`,
//! its types and the HTTP statuses they go with.

use serde::{Deserialize, Serialize};

/// An error answer (and the data of a stream's `error` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// Always `"error"`.
    #[serde(rename = "type")]
    pub kind: ErrorTag,
    /// What went wrong.
    pub error: ErrorBody,
}

/// The error object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ErrorKind,
    /// What went wrong, for people.
    pub message: String,
}

impl ErrorResponse {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorTag,
            error: ErrorBody {
                kind,
                message: message.into(),
            },
        }
    }

    /// The answer to an OpenAI-style error with HTTP `status` (0 in a
    /// stream, where only the error's type tells): the message kept.
    pub fn from_openai(status: u16, e: &openai_types::ErrorResponse) -> Self {
        let kind = if status != 0 {
            ErrorKind::for_status(status)
        } else {
            match e.error.kind.as_str() {
                "invalid_request_error" => ErrorKind::InvalidRequest,
                "authentication_error" => ErrorKind::Authentication,
                "permission_error" => ErrorKind::Permission,
                "not_found_error" => ErrorKind::NotFound,
                "rate_limit_error" | "rate_limit_exceeded" | "insufficient_quota" => {
                    ErrorKind::RateLimit
                }
                "timeout" | "timeout_error" => ErrorKind::Timeout,
                "overloaded_error" => ErrorKind::Overloaded,
                _ => ErrorKind::Api,
            }
        };
        Self::new(kind, e.error.message.clone())
    }
}

/// An error's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// 400: the request is malformed.
    #[serde(rename = "invalid_request_error")]
    InvalidRequest,
    /// 401: no key, or a wrong one.
    #[serde(rename = "authentication_error")]
    Authentication,
    /// 402: billing.
    #[serde(rename = "billing_error")]
    Billing,
    /// 403: the key may not do this.
    #[serde(rename = "permission_error")]
    Permission,
    /// 404: no such resource (or model).
    #[serde(rename = "not_found_error")]
    NotFound,
    /// 413: the request is too large.
    #[serde(rename = "request_too_large")]
    RequestTooLarge,
    /// 429: too many requests or tokens.
    #[serde(rename = "rate_limit_error")]
    RateLimit,
    /// 504: timed out.
    #[serde(rename = "timeout_error")]
    Timeout,
    /// 500: an unexpected error.
    #[serde(rename = "api_error")]
    Api,
    /// 529: overloaded.
    #[serde(rename = "overloaded_error")]
    Overloaded,
}

impl ErrorKind {
    /// The type Anthropic answers with `status`.
    pub fn for_status(status: u16) -> Self {
        match status {
            400 | 405 | 409 | 422 => Self::InvalidRequest,
            401 => Self::Authentication,
            402 => Self::Billing,
            403 => Self::Permission,
            404 => Self::NotFound,
            413 => Self::RequestTooLarge,
            429 => Self::RateLimit,
            503 | 529 => Self::Overloaded,
            504 => Self::Timeout,
            _ => Self::Api,
        }
    }

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::Billing => "billing_error",
            Self::Permission => "permission_error",
            Self::NotFound => "not_found_error",
            Self::RequestTooLarge => "request_too_large",
            Self::RateLimit => "rate_limit_error",
            Self::Timeout => "timeout_error",
            Self::Api => "api_error",
            Self::Overloaded => "overloaded_error",
        }
    }
}

/// The fixed value `"error"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorTag;

impl Serialize for ErrorTag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("error")
    }
}

impl<'de> Deserialize<'de> for ErrorTag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "error" => Ok(ErrorTag),
            other => Err(serde::de::Error::custom(format!(
                "expected \"error\", found \"{other}\""
            ))),
        }
    }
}
