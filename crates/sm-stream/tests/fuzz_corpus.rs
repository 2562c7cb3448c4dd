//! Replays the cargo-fuzz corpora (`fuzz/corpus/{translate,
//! frames_roundtrip,upstream_sse}`) under plain `cargo test`, with the
//! targets' own invariants (`sm_stream::fuzzing`).

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        panic!("fuzz corpus missing at {dir:?}");
    };
    let mut n = 0;
    for e in entries {
        check(&std::fs::read(e.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n > 0, "empty fuzz corpus at {dir:?}");
}

#[test]
fn translate_corpus_replays_clean() {
    replay("translate", sm_stream::fuzzing::check_translate);
}

#[test]
fn frames_roundtrip_corpus_replays_clean() {
    replay(
        "frames_roundtrip",
        sm_stream::fuzzing::check_frames_roundtrip,
    );
}

#[test]
fn upstream_sse_corpus_replays_clean() {
    replay("upstream_sse", sm_stream::fuzzing::check_upstream_sse);
}
