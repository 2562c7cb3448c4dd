//! The one error type of this crate.

use openai_types::ErrorResponse;

/// Why a stream could not be translated.
///
/// Every variant maps to an OpenAI error object with [`Error::to_openai`], which
/// is what the translator emits as the stream's last event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An `application/vnd.amazon.eventstream` frame was malformed (bad CRC, bad
    /// length, bad header).
    #[error("invalid event-stream frame: {0}")]
    Frame(String),
    /// A record (line or SSE event) grew past the configured limit.
    #[error("upstream record exceeds {limit} bytes")]
    RecordTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A record was not valid UTF-8 JSON of the expected shape.
    #[error("invalid upstream record: {0}")]
    InvalidRecord(String),
    /// The upstream reported an error inside the stream (a SageMaker exception
    /// event, or an error record of the container).
    #[error("{message}")]
    Upstream {
        /// What failed: `model_stream_error`, `internal_stream_failure`, or the
        /// container's own error type.
        kind: String,
        /// The upstream's message.
        message: String,
        /// The upstream's error code, if it sent one.
        code: Option<String>,
    },
    /// The stream ended before the model finished (no finish reason, a cut
    /// frame or a partial record).
    #[error("upstream stream ended before the completion finished: {0}")]
    Truncated(String),
}

impl Error {
    /// Whether the fault lies with the upstream model server rather than with
    /// the bytes in transit.
    pub fn is_upstream(&self) -> bool {
        matches!(self, Self::Upstream { .. })
    }

    /// Whether retrying the whole request may succeed (transient faults).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Upstream { kind, .. } => kind == "internal_stream_failure",
            Self::Truncated(_) => true,
            _ => false,
        }
    }

    /// A low-cardinality label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Frame(_) => "invalid_frame",
            Self::RecordTooLarge { .. } => "record_too_large",
            Self::InvalidRecord(_) => "invalid_record",
            Self::Upstream { .. } => "upstream_error",
            Self::Truncated(_) => "truncated",
        }
    }

    /// The OpenAI error object sent to the client.
    pub fn to_openai(&self) -> ErrorResponse {
        let (kind, code) = match self {
            Self::Frame(_) => ("server_error", Some("invalid_upstream_frame".to_owned())),
            Self::RecordTooLarge { .. } => {
                ("server_error", Some("upstream_record_too_large".to_owned()))
            }
            Self::InvalidRecord(_) => ("server_error", Some("invalid_upstream_record".to_owned())),
            Self::Upstream { kind, code, .. } => (
                "server_error",
                Some(code.clone().unwrap_or_else(|| kind.clone())),
            ),
            Self::Truncated(_) => ("server_error", Some("upstream_stream_truncated".to_owned())),
        };
        let mut e = ErrorResponse::new(self.to_string(), kind);
        e.error.code = code;
        e
    }
}
