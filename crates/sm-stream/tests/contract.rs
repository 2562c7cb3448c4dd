//! The OpenAI contract, checked on every fixture's output: rules written from
//! `openapi.yaml` (`CreateChatCompletionStreamResponse`, `Error`).

use std::collections::HashMap;

use openai_types::contract::check_chat_sse;
use serde_json::Value;

use crate::support::{Feed, Options, fixtures, run_pieces};

#[test]
fn every_chat_fixture_meets_the_contract() {
    for (name, payload) in fixtures() {
        let opts = Options::for_fixture(&name);
        if opts.shape() != sm_stream::OutputShape::Chat {
            continue;
        }
        let (sse, _) = run_pieces(&opts, Feed::Payload, [payload.as_slice()]);
        check_chat_sse(&sse);
    }
}

#[test]
fn legacy_completion_chunks_meet_the_contract() {
    let (name, payload) = fixtures()
        .into_iter()
        .find(|(n, _)| n == "valid_lmi_outputs")
        .unwrap();
    let opts = Options::for_fixture(&name);
    let (sse, _) = run_pieces(&opts, Feed::Payload, [payload.as_slice()]);
    let mut text = String::new();
    for ev in sse.trim_end().split("\n\n") {
        let data = ev.strip_prefix("data: ").unwrap();
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["object"], "text_completion");
        for c in v["choices"].as_array().unwrap() {
            for k in ["text", "index", "logprobs", "finish_reason"] {
                assert!(c.as_object().unwrap().contains_key(k), "{k}");
            }
            text.push_str(c["text"].as_str().unwrap());
        }
    }
    assert_eq!(text, "Once upon a time");
}

#[test]
fn tool_call_indices_are_dense_even_after_text() {
    let (_, payload) = fixtures()
        .into_iter()
        .find(|(n, _)| n == "valid_openai_tool_calls")
        .unwrap();
    let (_, items) = run_pieces(&Options::default(), Feed::Payload, [payload.as_slice()]);
    let mut args = HashMap::<u32, String>::new();
    for i in &items {
        if let sm_stream::StreamItem::Choice(c) = i {
            for tc in c.delta.tool_calls.iter().flatten() {
                let a = tc
                    .function
                    .as_ref()
                    .and_then(|f| f.arguments.clone())
                    .unwrap_or_default();
                args.entry(tc.index).or_default().push_str(&a);
            }
        }
    }
    assert_eq!(args[&0], "{\"city\": \"北京\"}");
    assert_eq!(args[&1], "{}");
}
