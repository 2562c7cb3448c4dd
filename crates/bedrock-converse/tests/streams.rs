//! Stream fixtures: Bedrock events, framed exactly as Bedrock frames them,
//! through the translator whole, split at every byte boundary, and in small
//! pieces; the SSE must be identical every time, match its snapshot and meet
//! the OpenAI contract.

use bedrock_converse::event::encode;
use bedrock_converse::{ReasoningOutput, StreamConfig, StreamTranslator};
use bytes::BytesMut;
use openai_types::contract::check_chat_sse;
use openai_types::stream::StreamItem;
use serde_json::Value;

use crate::support::{dir, fixtures, updating};

fn wire(f: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    for e in f["events"].as_array().unwrap() {
        let name = e[0].as_str().unwrap();
        match name.strip_prefix('!') {
            Some(exception) => out.extend(encode::exception(exception, e[1].as_str().unwrap())),
            None => out.extend(encode::event(name, &e[1])),
        }
    }
    let cut = f["options"]["truncate_bytes"].as_u64().unwrap_or(0) as usize;
    out.truncate(out.len() - cut);
    out
}

fn config(f: &Value) -> StreamConfig {
    let o = &f["options"];
    StreamConfig {
        id: "chatcmpl-test".into(),
        model: "claude".into(),
        created: 1_700_000_000,
        include_usage: o["include_usage"].as_bool().unwrap_or(false),
        reasoning: match o["reasoning"].as_str() {
            None | Some("field") => ReasoningOutput::Field,
            Some("inline") => ReasoningOutput::InlineThink,
            Some("drop") => ReasoningOutput::Drop,
            Some(other) => panic!("bad reasoning option {other}"),
        },
        prompt_tokens_estimate: 7,
        answer_tool: o["answer_tool"].as_str().map(str::to_owned),
    }
}

fn run<'a>(f: &Value, pieces: impl IntoIterator<Item = &'a [u8]>) -> (String, Vec<StreamItem>) {
    let mut t = StreamTranslator::new(config(f));
    let mut items = Vec::new();
    for p in pieces {
        t.push_bytes(p, &mut items);
    }
    t.finish(&mut items);
    assert!(t.is_finished());
    let mut out = BytesMut::new();
    t.sse_writer().write_all(&items, &mut out);
    (String::from_utf8(out.to_vec()).unwrap(), items)
}

#[test]
fn every_stream_fixture_matches_its_snapshot_and_the_contract() {
    for (name, f) in fixtures("stream") {
        let bytes = wire(&f);
        let (sse, _) = run(&f, [bytes.as_slice()]);
        check_chat_sse(&sse);
        let path = dir("stream").join(format!("{name}.sse"));
        if updating() {
            std::fs::write(&path, &sse).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{name}.sse is missing (UPDATE_SNAPSHOTS=1 writes it)"));
        assert_eq!(sse, want, "stream/{name}");
    }
}

#[test]
fn every_stream_fixture_is_the_same_split_at_any_byte() {
    for (name, f) in fixtures("stream") {
        let bytes = wire(&f);
        let (whole, _) = run(&f, [bytes.as_slice()]);
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            let (sse, _) = run(&f, [a, b]);
            assert_eq!(sse, whole, "stream/{name} cut at {cut}");
        }
        for size in 1..=7 {
            let (sse, _) = run(&f, bytes.chunks(size));
            assert_eq!(sse, whole, "stream/{name} in pieces of {size}");
        }
    }
}

fn fixture(name: &str) -> Value {
    fixtures("stream")
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap()
        .1
}

fn tool_args(items: &[StreamItem]) -> Vec<(u32, Option<String>, String)> {
    let mut out: Vec<(u32, Option<String>, String)> = Vec::new();
    for i in items {
        if let StreamItem::Choice(c) = i {
            for tc in c.delta.tool_calls.iter().flatten() {
                let args = tc
                    .function
                    .as_ref()
                    .and_then(|f| f.arguments.clone())
                    .unwrap_or_default();
                match out.iter_mut().find(|(ix, _, _)| *ix == tc.index) {
                    Some(e) => e.2.push_str(&args),
                    None => out.push((
                        tc.index,
                        tc.function.as_ref().and_then(|f| f.name.clone()),
                        args,
                    )),
                }
            }
        }
    }
    out
}

#[test]
fn tool_indices_start_at_zero_after_reasoning_and_text_blocks() {
    let f = fixture("reasoning_then_tool");
    let (_, items) = run(&f, [wire(&f).as_slice()]);
    let calls = tool_args(&items);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, 0, "the first tool call has index 0, never -1");
    assert_eq!(calls[0].1.as_deref(), Some("get_weather"));
    let v: Value = serde_json::from_str(&calls[0].2).unwrap();
    assert_eq!(v["city"], "北京");

    let f = fixture("text_then_two_tools");
    let (_, items) = run(&f, [wire(&f).as_slice()]);
    let calls = tool_args(&items);
    assert_eq!(
        calls.iter().map(|c| c.0).collect::<Vec<_>>(),
        vec![0, 1],
        "content blocks 1 and 2 become tool calls 0 and 1"
    );
}

/// Two calls whose argument pieces arrive interleaved (and stop out of
/// order): each call's pieces join into its own arguments.
#[test]
fn interleaved_tool_arguments_join_per_call() {
    let f = fixture("two_tools_interleaved");
    let (_, items) = run(&f, [wire(&f).as_slice()]);
    let calls = tool_args(&items);
    assert_eq!(calls.len(), 2);
    let (read, grep) = (&calls[0], &calls[1]);
    assert_eq!((read.0, read.1.as_deref()), (0, Some("read")));
    assert_eq!((grep.0, grep.1.as_deref()), (1, Some("grep")));
    let a: Value = serde_json::from_str(&read.2).unwrap();
    let b: Value = serde_json::from_str(&grep.2).unwrap();
    assert_eq!(a["path"], "a.rs");
    assert_eq!(b["pattern"], "fn main");
}

#[test]
fn an_exception_mid_stream_is_one_error_event_then_the_end() {
    let f = fixture("exception_mid_stream");
    let (sse, items) = run(&f, [wire(&f).as_slice()]);
    assert!(
        matches!(items.last(), Some(StreamItem::Error(e)) if e.error.kind == "rate_limit_error")
    );
    assert_eq!(
        items
            .iter()
            .filter(|i| matches!(i, StreamItem::Error(_)))
            .count(),
        1
    );
    assert!(
        !sse.contains("[DONE]"),
        "an errored stream does not claim success"
    );
}
