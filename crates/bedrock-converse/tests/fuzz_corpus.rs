//! Replays the cargo-fuzz corpus (`fuzz/corpus/bedrock_stream`) under plain
//! `cargo test`, with the fuzz target's invariants.

use std::path::Path;

use bedrock_converse::fuzzing::{structured_wire, translate};

#[test]
fn bedrock_stream_corpus_replays_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/bedrock_stream");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        let Some((&ctl, data)) = data.split_first() else {
            continue;
        };
        let wire = if ctl & 1 == 0 {
            data.to_vec()
        } else {
            structured_wire(data)
        };
        let whole = translate(&wire, &[], ctl & 2 != 0);
        assert!(whole.ends_with("data: [DONE]\n\n") || whole.contains("{\"error\":"));
        assert!(whole.matches("{\"error\":").count() <= 1);
        for at in [(ctl as usize >> 2).min(wire.len()), wire.len() / 2] {
            assert_eq!(translate(&wire, &[at], ctl & 2 != 0), whole);
        }
        n += 1;
    }
    assert!(n > 0, "empty corpus");
}
