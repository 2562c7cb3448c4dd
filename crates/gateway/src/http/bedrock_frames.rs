//! Anthropic's Messages events in Bedrock's framing: each event's JSON,
//! base64, in a `chunk` frame of the AWS event-stream, as
//! `InvokeModelWithResponseStream` sends them (the writer of
//! `invoke.rs`'s streams).

use base64::Engine as _;
use bytes::{BufMut, BytesMut};
use openai_types::stream::StreamItem;
use serde_json::Value;

/// The Messages events of a stream, each as a Bedrock `chunk` frame (the
/// event's JSON, base64, in `{"bytes": …}`); a failure as an exception
/// frame. `ping` events are Anthropic's alone and left out.
#[derive(Debug)]
pub(crate) struct Framer {
    events: anthropic_messages::events::EventWriter,
    scratch: BytesMut,
}

impl Framer {
    /// A framer for message `id` of `model`, `estimate` prompt tokens.
    pub(crate) fn new(id: &str, model: &str, estimate: u64) -> Self {
        Self {
            events: anthropic_messages::events::EventWriter::new(id, model, estimate),
            scratch: BytesMut::new(),
        }
    }

    /// Appends the frames `item` produces to `out`.
    pub(crate) fn write(&mut self, item: &StreamItem, out: &mut BytesMut) {
        self.events.write(item, &mut self.scratch);
        let sse = self.scratch.split();
        // The writer's own output: `event: NAME\ndata: JSON\n\n`, JSON on
        // one line.
        for ev in sse[..].split(|&b| b == b'\n').collect::<Vec<_>>().chunks(3) {
            let (Some(name), Some(data)) = (
                ev.first().and_then(|l| l.strip_prefix(b"event: ")),
                ev.get(1).and_then(|l| l.strip_prefix(b"data: ")),
            ) else {
                continue;
            };
            let frame = match name {
                b"ping" => continue,
                b"error" => {
                    let message = serde_json::from_slice::<Value>(data)
                        .ok()
                        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    event_frames::encode::frame(
                        vec![
                            (":message-type", "exception"),
                            (":exception-type", "modelStreamErrorException"),
                            (":content-type", "application/json"),
                        ],
                        serde_json::json!({ "message": message }).to_string().into(),
                    )
                }
                _ => {
                    let mut payload = Vec::with_capacity(data.len() * 4 / 3 + 16);
                    payload.extend_from_slice(b"{\"bytes\":\"");
                    let mut b64 = String::with_capacity(data.len() * 4 / 3 + 4);
                    base64::engine::general_purpose::STANDARD.encode_string(data, &mut b64);
                    payload.extend_from_slice(b64.as_bytes());
                    payload.extend_from_slice(b"\"}");
                    event_frames::encode::frame(
                        vec![
                            (":event-type", "chunk"),
                            (":content-type", "application/json"),
                            (":message-type", "event"),
                        ],
                        payload.into(),
                    )
                }
            };
            out.put_slice(&frame);
        }
    }
}
