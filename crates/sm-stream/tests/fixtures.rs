//! Golden fixtures: each `test_data/*.payload` against its `.sse` snapshot,
//! unsplit and split at every byte boundary. `UPDATE_SNAPSHOTS=1` (or
//! `cargo xtask fixtures`) rewrites the snapshots; CI never sets it.

use crate::support::{Feed, Options, fixtures, run_pieces, test_data};

#[test]
fn fixtures_match_snapshots() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut failures = Vec::new();
    for (name, payload) in fixtures() {
        let opts = Options::for_fixture(&name);
        let (sse, _) = run_pieces(&opts, Feed::Payload, [payload.as_slice()]);
        let path = test_data().join(format!("{name}.sse"));
        if update {
            std::fs::write(&path, &sse).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("missing snapshot {path:?}: run `cargo xtask fixtures`"));
        if sse != want {
            failures.push(format!("{name}:\n--- want\n{want}\n--- got\n{sse}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn valid_fixtures_end_in_done_and_invalid_in_error() {
    for (name, payload) in fixtures() {
        let opts = Options::for_fixture(&name);
        let (sse, _) = run_pieces(&opts, Feed::Payload, [payload.as_slice()]);
        if name.starts_with("valid_") {
            assert!(sse.ends_with("data: [DONE]\n\n"), "{name}: {sse}");
            assert!(!sse.contains("\"error\""), "{name}: {sse}");
        } else {
            assert!(name.starts_with("invalid_"), "{name}");
            assert!(!sse.contains("[DONE]"), "{name}: {sse}");
            let last = sse.trim_end().rsplit("\n\n").next().unwrap();
            assert!(last.starts_with("data: {\"error\":"), "{name}: {last}");
        }
    }
}

#[test]
fn every_two_piece_split_gives_identical_output() {
    for (name, payload) in fixtures() {
        let opts = Options::for_fixture(&name);
        let (whole, _) = run_pieces(&opts, Feed::Payload, [payload.as_slice()]);
        for i in 0..=payload.len() {
            let (a, b) = payload.split_at(i);
            let (split, _) = run_pieces(&opts, Feed::Payload, [a, b]);
            assert_eq!(split, whole, "{name} split at {i}");
        }
    }
}

#[test]
fn every_piece_size_from_1_to_11_gives_identical_output() {
    for (name, payload) in fixtures() {
        let opts = Options::for_fixture(&name);
        let (whole, _) = run_pieces(&opts, Feed::Payload, [payload.as_slice()]);
        for size in 1..=11 {
            let (split, _) = run_pieces(&opts, Feed::Payload, payload.chunks(size));
            assert_eq!(split, whole, "{name} in pieces of {size}");
        }
    }
}

#[test]
fn cjk_text_survives_byte_at_a_time() {
    let payload = std::fs::read(test_data().join("valid_openai_sse_vllm.payload")).unwrap();
    let (_, items) = run_pieces(&Options::default(), Feed::Payload, payload.chunks(1));
    let text: String = items
        .iter()
        .filter_map(|i| match i {
            sm_stream::StreamItem::Choice(c) => c.delta.content.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(text, "你好，世界！ Hello");
}
