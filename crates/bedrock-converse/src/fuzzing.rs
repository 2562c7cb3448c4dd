//! The harness the fuzz target (`fuzz/fuzz_targets/bedrock_stream.rs`) and
//! the corpus replay test share: build a wire from fuzz data and translate it
//! in pieces.

use bytes::{Bytes, BytesMut};
use sm_stream::frame::encode::frame;

use crate::{ReasoningOutput, StreamConfig, StreamTranslator};

const EVENTS: &[&str] = &[
    "messageStart",
    "contentBlockStart",
    "contentBlockDelta",
    "contentBlockStop",
    "messageStop",
    "metadata",
    "futureEvent",
];

/// Valid event-stream frames from arbitrary data: pieces split at `0xff`,
/// each piece's first byte picking the event type (or an exception), the
/// rest its payload as is.
pub fn structured_wire(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in data.split(|b| *b == 0xff) {
        let Some((&kind, payload)) = piece.split_first() else {
            continue;
        };
        let payload = Bytes::copy_from_slice(payload);
        let i = kind as usize % (EVENTS.len() + 1);
        out.extend(match EVENTS.get(i) {
            Some(name) => frame(
                vec![
                    (":message-type", "event"),
                    (":event-type", name),
                    (":content-type", "application/json"),
                ],
                payload,
            ),
            None => frame(
                vec![
                    (":message-type", "exception"),
                    (":exception-type", "throttlingException"),
                    (":content-type", "application/json"),
                ],
                payload,
            ),
        });
    }
    out
}

/// Translates `wire` cut at `cuts`, with usage and inline or field
/// reasoning, to SSE text.
pub fn translate(wire: &[u8], cuts: &[usize], inline: bool) -> String {
    let mut t = StreamTranslator::new(StreamConfig {
        include_usage: true,
        reasoning: if inline {
            ReasoningOutput::InlineThink
        } else {
            ReasoningOutput::Field
        },
        ..StreamConfig::default()
    });
    let mut items = Vec::new();
    let mut from = 0;
    for &c in cuts.iter().chain(std::iter::once(&wire.len())) {
        let c = c.clamp(from, wire.len());
        t.push_bytes(&wire[from..c], &mut items);
        from = c;
    }
    t.finish(&mut items);
    let mut out = BytesMut::new();
    t.sse_writer().write_all(&items, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The fuzz target's invariants on one input (first byte: mode and cut):
/// the output ends with `[DONE]` or one error event, and cutting the wire
/// changes nothing. Fails by assertion.
pub fn check(input: &[u8]) {
    let Some((&ctl, data)) = input.split_first() else {
        return;
    };
    let wire = if ctl & 1 == 0 {
        data.to_vec()
    } else {
        structured_wire(data)
    };
    let inline = ctl & 2 != 0;
    let whole = translate(&wire, &[], inline);
    assert!(whole.ends_with("data: [DONE]\n\n") || whole.contains("{\"error\":"));
    assert!(whole.matches("{\"error\":").count() <= 1);
    for at in [(ctl as usize >> 2).min(wire.len()), wire.len() / 2] {
        assert_eq!(translate(&wire, &[at], inline), whole, "cut at {at}");
    }
}
