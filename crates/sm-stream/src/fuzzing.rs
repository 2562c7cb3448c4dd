//! The invariants the fuzz targets in `fuzz/` check (feature `fuzzing`),
//! shared with the corpus replay test so both check exactly the same
//! thing. Each panics when an invariant breaks.
#![allow(clippy::expect_used, clippy::panic)]

use bytes::{Bytes, BytesMut};

use crate::frame::{FrameDecoder, SmEvent, encode};
use crate::{DialectKind, OutputShape, ReasoningMode, Translator, TranslatorConfig};

/// A stream's SSE ends with `[DONE]` or one error event.
fn ends_well(out: &[u8]) -> bool {
    out.ends_with(b"data: [DONE]\n\n") || out.windows(9).any(|w| w == b"{\"error\":")
}

fn translate_run(data: &[u8], cut: usize, framed: bool, reasoning: ReasoningMode) -> BytesMut {
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

/// `translate`: arbitrary bytes as payload or as event-stream input (the
/// first byte picks the mode, the reasoning mode and the cut). No panic;
/// the output ends well; where the input is cut changes nothing.
pub fn check_translate(data: &[u8]) {
    let Some((&ctl, data)) = data.split_first() else {
        return;
    };
    let framed = ctl & 1 == 1;
    let reasoning = match (ctl >> 1) & 3 {
        0 => ReasoningMode::Off,
        1 => ReasoningMode::Tags,
        _ => ReasoningMode::TagsStartInReasoning,
    };
    let whole = translate_run(data, 0, framed, reasoning);
    assert!(ends_well(&whole), "{}", String::from_utf8_lossy(&whole));
    let cut = (ctl as usize * 7919) % (data.len() + 1);
    assert_eq!(translate_run(data, cut, framed, reasoning), whole);
}

/// `frames_roundtrip`: payload parts (split at every 0xFF byte) encoded as
/// frames, cut anywhere, decode to exactly the same parts.
pub fn check_frames_roundtrip(data: &[u8]) {
    let Some((&ctl, data)) = data.split_first() else {
        return;
    };
    let parts: Vec<&[u8]> = data.split(|b| *b == 0xff).collect();
    let wire: Vec<u8> = parts.iter().flat_map(|p| encode::payload_part(p)).collect();
    let cut = (ctl as usize * 31) % (wire.len() + 1);
    let mut d = FrameDecoder::new();
    let mut got = Vec::new();
    for piece in [&wire[..cut], &wire[cut..]] {
        d.push(piece);
        while let Some(ev) = d.next_event().expect("valid frames decode") {
            match ev {
                SmEvent::PayloadPart(b) => got.push(b.to_vec()),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(!d.has_partial());
    assert_eq!(got, parts.iter().map(|p| p.to_vec()).collect::<Vec<_>>());
}

fn upstream_sse_run(data: &[u8], cuts: [usize; 2]) -> BytesMut {
    let mut t = Translator::new(TranslatorConfig {
        dialect: DialectKind::OpenAiChat,
        include_usage: true,
        max_record_bytes: 4096,
        ..TranslatorConfig::default()
    });
    let w = t.sse_writer(OutputShape::Chat);
    let mut items = Vec::new();
    let (a, b) = (cuts[0].min(cuts[1]), cuts[0].max(cuts[1]));
    for piece in [&data[..a], &data[a..b], &data[b..]] {
        t.push_payload_bytes(Bytes::copy_from_slice(piece), &mut items);
    }
    t.finish(&mut items);
    let mut out = BytesMut::new();
    w.write_all(&items, &mut out);
    out
}

/// `upstream_sse`: an OpenAI-style upstream's SSE body as the gateway
/// reads it (the OpenAI dialect, `Bytes` in three pieces). No panic; the
/// output ends well; where the body is cut changes nothing.
pub fn check_upstream_sse(data: &[u8]) {
    let Some((&ctl, data)) = data.split_first() else {
        return;
    };
    let whole = upstream_sse_run(data, [0, 0]);
    assert!(ends_well(&whole), "{}", String::from_utf8_lossy(&whole));
    let n = data.len() + 1;
    let cuts = [(ctl as usize * 7919) % n, (ctl as usize * 104_729 + 13) % n];
    assert_eq!(upstream_sse_run(data, cuts), whole);
}
