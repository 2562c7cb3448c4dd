//! The harness the fuzz target (`fuzz/fuzz_targets/bedrock_stream.rs`) and
//! the corpus replay test share: build a wire from fuzz data and translate it
//! in pieces.

use bytes::{Bytes, BytesMut};
use event_frames::encode::frame;

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

/// A client's chat request body through openai-types and into a Converse
/// request, for every reasoning style (the `chat_request` target). Panics
/// if an invariant breaks: what parses serializes and parses back to the
/// same JSON; a Converse request that builds also serializes.
#[allow(clippy::expect_used, clippy::panic)] // a broken invariant is the finding
pub fn check_request(data: &[u8]) {
    use crate::model::ReasoningStyle;
    use openai_types::chat::ChatCompletionRequest;
    let Ok(req) = serde_json::from_slice::<ChatCompletionRequest>(data) else {
        return;
    };
    let once = serde_json::to_value(&req).expect("a parsed request serializes");
    let again: ChatCompletionRequest =
        serde_json::from_value(once.clone()).expect("what we write parses back");
    assert_eq!(serde_json::to_value(&again).expect("serializes"), once);
    let _ = crate::request::image_count(&req);
    let _ = crate::request::remote_image_urls(&req);
    for (model_id, reasoning) in [
        (
            "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            ReasoningStyle::Auto,
        ),
        ("deepseek.r1-v1:0", ReasoningStyle::ReasoningConfig),
        ("openai.gpt-oss-120b-1:0", ReasoningStyle::ReasoningEffort),
        ("amazon.nova-pro-v1:0", ReasoningStyle::None),
    ] {
        let opts = crate::RequestOptions {
            model_id: model_id.to_owned(),
            reasoning,
            default_max_tokens: Some(4096),
            prompt_cache: Some(crate::cache::AutoCache::for_model(model_id)),
            guardrail: None,
        };
        if let Ok(c) = crate::to_converse(&req, &opts, &std::collections::HashMap::new()) {
            serde_json::to_vec(&c).expect("a Converse request serializes");
        }
    }
}
