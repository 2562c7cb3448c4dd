//! Replays the cargo-fuzz corpus (`fuzz/corpus/translate`) under plain
//! `cargo test`, with the fuzz target's own invariants.

use std::path::Path;

use crate::support::{Feed, Options, run_pieces};

#[test]
fn fuzz_corpus_replays_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/translate");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        panic!("fuzz corpus missing at {dir:?}");
    };
    let mut n = 0;
    for e in entries {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        for feed in [Feed::Payload, Feed::EventStream] {
            let (whole, _) = run_pieces(&Options::default(), feed, [data.as_slice()]);
            assert!(whole.ends_with("data: [DONE]\n\n") || whole.contains("{\"error\":"));
            let mid = data.len() / 2;
            let (split, _) = run_pieces(&Options::default(), feed, [&data[..mid], &data[mid..]]);
            assert_eq!(split, whole);
        }
        n += 1;
    }
    assert!(n > 0, "empty fuzz corpus");
}

#[test]
fn frames_roundtrip_corpus_replays_clean() {
    use sm_stream::frame::{FrameDecoder, SmEvent, encode};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/frames_roundtrip");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        let Some((&ctl, data)) = data.split_first() else {
            continue;
        };
        let parts: Vec<&[u8]> = data.split(|b| *b == 0xff).collect();
        let wire: Vec<u8> = parts.iter().flat_map(|p| encode::payload_part(p)).collect();
        let cut = (ctl as usize * 31) % (wire.len() + 1);
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        for piece in [&wire[..cut], &wire[cut..]] {
            d.push(piece);
            while let Some(ev) = d.next_event().unwrap() {
                match ev {
                    SmEvent::PayloadPart(b) => got.push(b.to_vec()),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert!(!d.has_partial());
        assert_eq!(got, parts.iter().map(|p| p.to_vec()).collect::<Vec<_>>());
        n += 1;
    }
    assert!(n > 0, "empty corpus");
}

/// The `upstream_sse` target's run: the OpenAI dialect fixed, the body
/// handed over as `Bytes` in three pieces.
fn upstream_sse(data: &[u8], a: usize, b: usize) -> bytes::BytesMut {
    use sm_stream::{DialectKind, OutputShape, Translator, TranslatorConfig};
    let mut t = Translator::new(TranslatorConfig {
        dialect: DialectKind::OpenAiChat,
        include_usage: true,
        max_record_bytes: 4096,
        ..TranslatorConfig::default()
    });
    let w = t.sse_writer(OutputShape::Chat);
    let mut items = Vec::new();
    for piece in [&data[..a], &data[a..b], &data[b..]] {
        t.push_payload_bytes(bytes::Bytes::copy_from_slice(piece), &mut items);
    }
    t.finish(&mut items);
    let mut out = bytes::BytesMut::new();
    w.write_all(&items, &mut out);
    out
}

#[test]
fn upstream_sse_corpus_replays_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/upstream_sse");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        let Some((_, data)) = data.split_first() else {
            continue;
        };
        let whole = upstream_sse(data, 0, 0);
        assert!(
            whole.ends_with(b"data: [DONE]\n\n") || whole.windows(9).any(|w| w == b"{\"error\":")
        );
        let (a, b) = (data.len() / 3, data.len() * 2 / 3);
        assert_eq!(upstream_sse(data, a, b), whole);
        n += 1;
    }
    assert!(n > 0, "empty corpus");
}
