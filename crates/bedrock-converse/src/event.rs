//! `converse-stream` event-stream frames to [`StreamEvent`]s, and back (for
//! test servers and fixtures).

use event_frames::{Message, MessageDecoder, header_str};
use serde::Deserialize;
use serde_json::Value;

use crate::Error;
use crate::wire::{BlockDelta, Role, StreamEvent, TokenUsage, ToolUseStart};

/// Incremental decoder: event-stream bytes, cut anywhere, to events.
#[derive(Debug, Default)]
pub struct EventDecoder {
    inner: MessageDecoder,
}

impl EventDecoder {
    /// A new decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes from the wire.
    pub fn push(&mut self, bytes: &[u8]) {
        self.inner.push(bytes);
    }

    /// The next whole event, or `Ok(None)` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, Error> {
        match self.inner.next_message() {
            Ok(Some(m)) => decode_message(&m).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(Error::Frame(e.to_string())),
        }
    }

    /// Whether an unfinished frame is pending (a cut stream).
    pub fn has_partial(&self) -> bool {
        self.inner.has_partial()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart {
    #[serde(default)]
    content_block_index: u32,
    #[serde(default)]
    start: Option<StartBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartBody {
    #[serde(default)]
    tool_use: Option<ToolUseStart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDeltaEvent {
    #[serde(default)]
    content_block_index: u32,
    delta: DeltaBody,
}

/// The `delta` union, read without building a JSON tree.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeltaBody {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<ToolUseDelta>,
    #[serde(default)]
    reasoning_content: Option<ReasoningDelta>,
}

#[derive(Deserialize)]
struct ToolUseDelta {
    #[serde(default)]
    input: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasoningDelta {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    redacted_content: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockIndex {
    #[serde(default)]
    content_block_index: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStopEvent {
    stop_reason: String,
}

#[derive(Deserialize)]
struct MessageStartEvent {
    role: Role,
}

#[derive(Deserialize)]
struct MetadataEvent {
    #[serde(default)]
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct ExceptionBody {
    #[serde(default, alias = "Message")]
    message: Option<String>,
}

fn json<'a, T: Deserialize<'a>>(name: &str, payload: &'a [u8]) -> Result<T, Error> {
    serde_json::from_slice(payload)
        .map_err(|e| Error::BadResponse(format!("a '{name}' event could not be read: {e}")))
}

/// A `contentBlockDelta`'s `delta` union.
fn block_delta(delta: DeltaBody) -> BlockDelta {
    if let Some(t) = delta.text {
        return BlockDelta::Text(t);
    }
    if let Some(t) = delta.tool_use {
        return BlockDelta::ToolUseInput(t.input);
    }
    if let Some(r) = delta.reasoning_content {
        if let Some(t) = r.text {
            return BlockDelta::ReasoningText(t);
        }
        if let Some(t) = r.signature {
            return BlockDelta::ReasoningSignature(t);
        }
        if r.redacted_content.is_some() {
            return BlockDelta::ReasoningRedacted;
        }
    }
    BlockDelta::Other
}

/// One decoded message as an event.
pub fn decode_message(m: &Message) -> Result<StreamEvent, Error> {
    let payload: &[u8] = m.payload();
    match header_str(m, ":message-type").unwrap_or("event") {
        "event" => {
            let name = header_str(m, ":event-type").unwrap_or_default();
            decode_event(name, payload)
        }
        "exception" => {
            let name = header_str(m, ":exception-type").unwrap_or("exception");
            let body: ExceptionBody = serde_json::from_slice(payload).unwrap_or(ExceptionBody {
                message: Some(String::from_utf8_lossy(payload).into_owned()),
            });
            Ok(StreamEvent::Exception {
                name: name.to_owned(),
                message: body.message.unwrap_or_else(|| name.to_owned()),
            })
        }
        "error" => Ok(StreamEvent::Exception {
            name: header_str(m, ":error-code").unwrap_or("error").to_owned(),
            message: header_str(m, ":error-message")
                .unwrap_or_default()
                .to_owned(),
        }),
        other => Err(Error::Frame(format!(
            "unrecognized :message-type '{other}'"
        ))),
    }
}

/// An event by its `:event-type` and JSON payload.
pub fn decode_event(name: &str, payload: &[u8]) -> Result<StreamEvent, Error> {
    Ok(match name {
        "messageStart" => StreamEvent::MessageStart {
            role: json::<MessageStartEvent>(name, payload)?.role,
        },
        "contentBlockStart" => {
            let e: BlockStart = json(name, payload)?;
            StreamEvent::ContentBlockStart {
                index: e.content_block_index,
                tool_use: e.start.and_then(|s| s.tool_use),
            }
        }
        "contentBlockDelta" => {
            let e: BlockDeltaEvent = json(name, payload)?;
            StreamEvent::ContentBlockDelta {
                index: e.content_block_index,
                delta: block_delta(e.delta),
            }
        }
        "contentBlockStop" => StreamEvent::ContentBlockStop {
            index: json::<BlockIndex>(name, payload)?.content_block_index,
        },
        "messageStop" => StreamEvent::MessageStop {
            stop_reason: json::<MessageStopEvent>(name, payload)?.stop_reason,
        },
        "metadata" => StreamEvent::Metadata {
            usage: json::<MetadataEvent>(name, payload)?.usage,
        },
        other => StreamEvent::Unknown(other.to_owned()),
    })
}

/// Encodes `converse-stream` frames exactly as Bedrock sends them (for test
/// servers, fixtures and benchmarks; the gateway only decodes).
pub mod encode {
    use bytes::Bytes;
    use event_frames::encode::frame;
    use serde_json::Value;

    /// An event frame: `:event-type` `name`, a JSON payload.
    pub fn event(name: &str, payload: &Value) -> Vec<u8> {
        frame(
            vec![
                (":message-type", "event"),
                (":event-type", name),
                (":content-type", "application/json"),
            ],
            Bytes::from(payload.to_string()),
        )
    }

    /// An exception frame (`throttlingException`, …).
    pub fn exception(name: &str, message: &str) -> Vec<u8> {
        frame(
            vec![
                (":message-type", "exception"),
                (":exception-type", name),
                (":content-type", "application/json"),
            ],
            Bytes::from(serde_json::json!({ "message": message }).to_string()),
        )
    }
}
