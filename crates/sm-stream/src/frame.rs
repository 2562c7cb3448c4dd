//! Layer 1: `application/vnd.amazon.eventstream` frames to SageMaker events.

use aws_smithy_types::event_stream::Message;
use bytes::Bytes;
/// The generic framing, from the `event-frames` crate (re-exported so this
/// crate's users need no second dependency).
pub use event_frames::{MAX_FRAME_BYTES, MessageDecoder, header_str};

use crate::Error;

impl From<event_frames::Error> for Error {
    fn from(e: event_frames::Error) -> Self {
        Self::Frame(e.to_string())
    }
}

/// One event of `InvokeEndpointWithResponseStream`'s response stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmEvent {
    /// A `PayloadPart`: bytes of the container's response, cut anywhere.
    PayloadPart(Bytes),
    /// The `ModelStreamError` exception: the container failed mid-stream.
    ModelStreamError {
        /// `Message`.
        message: String,
        /// `ErrorCode`.
        error_code: Option<String>,
    },
    /// The `InternalStreamFailure` exception: SageMaker's own failure.
    InternalStreamFailure {
        /// `Message`.
        message: String,
    },
    /// Any other event or exception, kept by name so nothing is silently lost.
    Other {
        /// `:message-type`.
        message_type: String,
        /// `:event-type` or `:exception-type`.
        name: String,
        /// The payload.
        payload: Bytes,
    },
}

impl SmEvent {
    /// The translation error an exception event stands for, if it is one.
    pub fn as_error(&self) -> Option<Error> {
        match self {
            Self::PayloadPart(_) => None,
            Self::ModelStreamError {
                message,
                error_code,
            } => Some(Error::Upstream {
                kind: "model_stream_error".into(),
                message: message.clone(),
                code: error_code.clone(),
            }),
            Self::InternalStreamFailure { message } => Some(Error::Upstream {
                kind: "internal_stream_failure".into(),
                message: message.clone(),
                code: None,
            }),
            Self::Other {
                message_type, name, ..
            } if message_type != "event" => Some(Error::Upstream {
                kind: "upstream_exception".into(),
                message: format!("upstream sent {message_type} '{name}'"),
                code: Some(name.clone()),
            }),
            Self::Other { .. } => None,
        }
    }
}

/// Incremental SageMaker frame decoder: a [`MessageDecoder`] whose messages
/// are read as [`SmEvent`]s.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    inner: MessageDecoder,
}

impl FrameDecoder {
    /// A new decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes from the wire.
    pub fn push(&mut self, bytes: &[u8]) {
        self.inner.push(bytes);
    }

    /// Decodes the next complete frame, if there is one.
    pub fn next_event(&mut self) -> Result<Option<SmEvent>, Error> {
        match self.inner.next_message()? {
            Some(m) => to_event(m).map(Some),
            None => Ok(None),
        }
    }

    /// Whether bytes of an unfinished frame are pending (a cut stream).
    pub fn has_partial(&self) -> bool {
        self.inner.has_partial()
    }
}

#[derive(serde::Deserialize)]
struct ExceptionBody {
    #[serde(rename = "Message", alias = "message", default)]
    message: Option<String>,
    #[serde(rename = "ErrorCode", default)]
    error_code: Option<String>,
}

fn to_event(message: Message) -> Result<SmEvent, Error> {
    let message_type = header_str(&message, ":message-type").unwrap_or("event");
    match message_type {
        "event" => {
            let name = header_str(&message, ":event-type").unwrap_or_default();
            if name == "PayloadPart" {
                Ok(SmEvent::PayloadPart(message.payload().clone()))
            } else {
                Ok(SmEvent::Other {
                    message_type: "event".into(),
                    name: name.to_owned(),
                    payload: message.payload().clone(),
                })
            }
        }
        "exception" => {
            let name = header_str(&message, ":exception-type").unwrap_or_default();
            let body: ExceptionBody =
                serde_json::from_slice(message.payload()).unwrap_or(ExceptionBody {
                    message: Some(String::from_utf8_lossy(message.payload()).into_owned()),
                    error_code: None,
                });
            let text = body.message.unwrap_or_else(|| name.to_owned());
            Ok(match name {
                "ModelStreamError" => SmEvent::ModelStreamError {
                    message: text,
                    error_code: body.error_code,
                },
                "InternalStreamFailure" => SmEvent::InternalStreamFailure { message: text },
                other => SmEvent::Other {
                    message_type: "exception".into(),
                    name: other.to_owned(),
                    payload: message.payload().clone(),
                },
            })
        }
        "error" => {
            let code = header_str(&message, ":error-code").unwrap_or("error");
            let text = header_str(&message, ":error-message").unwrap_or_default();
            Err(Error::Upstream {
                kind: "event_stream_error".into(),
                message: format!("{code}: {text}"),
                code: Some(code.to_owned()),
            })
        }
        other => Err(Error::Frame(format!(
            "unrecognized :message-type '{other}'"
        ))),
    }
}

/// Encodes events as event-stream frames, exactly as AWS services send them
/// (for test servers, fixtures and fuzzing; the gateway only decodes).
pub mod encode {
    use bytes::Bytes;
    pub use event_frames::encode::frame;

    /// A `PayloadPart` event frame.
    pub fn payload_part(bytes: &[u8]) -> Vec<u8> {
        frame(
            vec![
                (":message-type", "event"),
                (":event-type", "PayloadPart"),
                (":content-type", "application/octet-stream"),
            ],
            Bytes::copy_from_slice(bytes),
        )
    }

    /// An exception frame (`ModelStreamError`, `InternalStreamFailure`).
    pub fn exception(name: &str, message: &str, error_code: Option<&str>) -> Vec<u8> {
        let mut body = serde_json::json!({ "Message": message });
        if let Some(c) = error_code {
            body["ErrorCode"] = c.into();
        }
        frame(
            vec![
                (":message-type", "exception"),
                (":exception-type", name),
                (":content-type", "application/json"),
            ],
            Bytes::from(body.to_string()),
        )
    }
}
