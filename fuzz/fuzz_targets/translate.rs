//! Arbitrary bytes through the translator, as payload and as event-stream
//! input. Invariants: no panic; the output ends with `[DONE]` or one error
//! event; splitting the input anywhere changes nothing.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sm_stream::{OutputShape, ReasoningMode, Translator, TranslatorConfig};

fn run(data: &[u8], cut: usize, framed: bool, reasoning: ReasoningMode) -> BytesMut {
    let mut t = Translator::new(TranslatorConfig {
        reasoning,
        include_usage: true,
        max_record_bytes: 4096,
        ..TranslatorConfig::default()
    });
    let w = t.sse_writer(OutputShape::Chat);
    let mut items = Vec::new();
    for piece in [&data[..cut], &data[cut..]] {
        if framed {
            t.push_event_stream(piece, &mut items);
        } else {
            t.push_payload(piece, &mut items);
        }
    }
    t.finish(&mut items);
    let mut out = BytesMut::new();
    w.write_all(&items, &mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, data)) = data.split_first() else {
        return;
    };
    let framed = ctl & 1 == 1;
    let reasoning = match (ctl >> 1) & 3 {
        0 => ReasoningMode::Off,
        1 => ReasoningMode::Tags,
        _ => ReasoningMode::TagsStartInReasoning,
    };
    let whole = run(data, 0, framed, reasoning);
    assert!(whole.ends_with(b"data: [DONE]\n\n") || whole.windows(9).any(|w| w == b"{\"error\":"));
    let cut = (ctl as usize * 7919) % (data.len() + 1);
    assert_eq!(run(data, cut, framed, reasoning), whole);
});
