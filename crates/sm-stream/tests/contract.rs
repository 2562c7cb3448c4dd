//! The OpenAI contract, checked on every fixture's output: rules written from
//! `openapi.yaml` (`CreateChatCompletionStreamResponse`, `Error`).

use std::collections::HashMap;

use serde_json::Value;

use crate::support::{Feed, Options, fixtures, run_pieces};

/// Checks one SSE body against the spec's rules for chat chunks. Returns the
/// concatenated content of choice 0.
pub(crate) fn check_chat_sse(sse: &str) -> String {
    assert!(sse.ends_with("\n\n"), "every event ends with a blank line");
    let events: Vec<&str> = sse.trim_end_matches('\n').split("\n\n").collect();
    let mut id = None;
    let mut created = None;
    let mut role_seen: HashMap<u64, bool> = HashMap::new();
    let mut finished: HashMap<u64, bool> = HashMap::new();
    let mut tool_max: HashMap<u64, i64> = HashMap::new();
    let mut content = String::new();
    let mut usage_seen = false;
    for (n, ev) in events.iter().enumerate() {
        let data = ev
            .strip_prefix("data: ")
            .expect("data: prefix with a space");
        let last = n == events.len() - 1;
        if data == "[DONE]" {
            assert!(last, "[DONE] is the last event");
            continue;
        }
        let v: Value = serde_json::from_str(data).expect("each event is one JSON object");
        if let Some(err) = v.get("error") {
            assert!(last, "an error event is the last event");
            let o = err.as_object().unwrap();
            for k in ["message", "type", "param", "code"] {
                assert!(o.contains_key(k), "error.{k} is required");
            }
            assert!(o["message"].is_string() && o["type"].is_string());
            continue;
        }
        for k in ["id", "object", "created", "model", "choices"] {
            assert!(v.get(k).is_some(), "chunk.{k} is required: {data}");
        }
        assert_eq!(v["object"], "chat.completion.chunk");
        assert_eq!(
            *id.get_or_insert(v["id"].clone()),
            v["id"],
            "one id a stream"
        );
        assert_eq!(
            *created.get_or_insert(v["created"].clone()),
            v["created"],
            "one created a stream"
        );
        assert!(!usage_seen, "the usage chunk is the last chunk");
        if let Some(u) = v.get("usage") {
            assert!(!u.is_null(), "optional usage is left out, not null");
            assert_eq!(v["choices"].as_array().unwrap().len(), 0);
            for k in ["prompt_tokens", "completion_tokens", "total_tokens"] {
                assert!(u[k].is_u64(), "usage.{k}");
            }
            assert_eq!(
                u["total_tokens"].as_u64(),
                Some(
                    u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
                )
            );
            usage_seen = true;
            continue;
        }
        let choices = v["choices"].as_array().unwrap();
        assert!(!choices.is_empty(), "content chunks carry a choice");
        for c in choices {
            let o = c.as_object().unwrap();
            for k in ["delta", "finish_reason", "index"] {
                assert!(o.contains_key(k), "choice.{k} is required: {data}");
            }
            let idx = c["index"].as_u64().unwrap();
            assert!(
                !finished.get(&idx).copied().unwrap_or(false),
                "nothing after finish"
            );
            let d = c["delta"].as_object().unwrap();
            for (k, val) in d {
                assert!(!val.is_null(), "delta.{k} is optional: left out, not null");
            }
            let first = !role_seen.get(&idx).copied().unwrap_or(false);
            assert_eq!(
                d.contains_key("role"),
                first,
                "role once, in the first chunk"
            );
            role_seen.insert(idx, true);
            if let Some(tcs) = d.get("tool_calls") {
                for tc in tcs.as_array().unwrap() {
                    let i = tc["index"].as_i64().unwrap();
                    let max = tool_max.entry(idx).or_insert(-1);
                    assert!(i >= 0 && i <= *max + 1, "dense tool-call indices from 0");
                    if i == *max + 1 {
                        assert!(tc["id"].is_string() && tc["type"] == "function");
                        assert!(tc["function"]["name"].is_string());
                    }
                    *max = (*max).max(i);
                }
            }
            if let Some(t) = d.get("content").filter(|_| idx == 0) {
                content.push_str(t.as_str().unwrap());
            }
            match &c["finish_reason"] {
                Value::Null => {}
                Value::String(s) => {
                    assert!(
                        [
                            "stop",
                            "length",
                            "tool_calls",
                            "content_filter",
                            "function_call"
                        ]
                        .contains(&s.as_str())
                    );
                    finished.insert(idx, true);
                }
                other => panic!("bad finish_reason {other}"),
            }
        }
    }
    content
}

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
