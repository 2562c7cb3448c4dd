//! An OpenAI-style upstream's SSE body as the gateway reads it: the OpenAI
//! dialect fixed, bytes handed over as `Bytes` in three pieces. Invariants:
//! no panic; the output ends with `[DONE]` or one error event; where the
//! body is cut changes nothing.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sm_stream::{DialectKind, OutputShape, Translator, TranslatorConfig};

fn run(data: &[u8], cuts: [usize; 2]) -> BytesMut {
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

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, data)) = data.split_first() else {
        return;
    };
    let whole = run(data, [0, 0]);
    assert!(
        whole.ends_with(b"data: [DONE]\n\n") || whole.windows(9).any(|w| w == b"{\"error\":"),
        "{}",
        String::from_utf8_lossy(&whole)
    );
    let n = data.len() + 1;
    let cuts = [(ctl as usize * 7919) % n, (ctl as usize * 104_729 + 13) % n];
    assert_eq!(run(data, cuts), whole);
});
