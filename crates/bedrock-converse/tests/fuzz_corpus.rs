//! Replays the cargo-fuzz corpus (`fuzz/corpus/bedrock_stream`) under plain
//! `cargo test`, with the fuzz target's invariants.

use std::path::Path;

#[test]
fn bedrock_stream_corpus_replays_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/bedrock_stream");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        bedrock_converse::fuzzing::check(&std::fs::read(e.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n > 0, "empty corpus");
}

#[test]
fn chat_request_corpus_replays_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/chat_request");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        bedrock_converse::fuzzing::check_request(&std::fs::read(e.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n > 0, "empty corpus");
}
