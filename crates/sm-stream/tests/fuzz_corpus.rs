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
