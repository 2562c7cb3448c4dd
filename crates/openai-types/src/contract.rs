//! The OpenAI contract as executable checks, written from `openapi.yaml`
//! (`CreateChatCompletionStreamResponse`, `CreateChatCompletionResponse`,
//! `Error`). For tests of every crate that produces OpenAI output; enabled by
//! the `contract` feature. A violation panics with the rule it breaks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test oracle: a broken rule is a failed assertion"
)]

use std::collections::HashMap;

use serde_json::Value;

/// Checks one SSE body against the spec's rules for chat chunks. Returns the
/// concatenated content of choice 0.
pub fn check_chat_sse(sse: &str) -> String {
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

/// Checks an error envelope: `message`, `type`, `param` and `code` all present.
pub fn check_error(v: &Value) {
    let o = v["error"]
        .as_object()
        .expect("an error body is {\"error\": {...}}");
    for k in ["message", "type", "param", "code"] {
        assert!(o.contains_key(k), "error.{k} is required: {v}");
    }
    assert!(o["message"].is_string() && o["type"].is_string(), "{v}");
}

/// Checks a `chat.completion` body against the spec's required fields.
pub fn check_chat_completion(v: &Value) {
    for k in ["id", "object", "created", "model", "choices"] {
        assert!(v.get(k).is_some(), "chat.completion.{k} is required: {v}");
    }
    assert_eq!(v["object"], "chat.completion");
    for c in v["choices"].as_array().expect("choices is a list") {
        let o = c.as_object().unwrap();
        for k in ["index", "message", "finish_reason", "logprobs"] {
            assert!(o.contains_key(k), "choice.{k} is required: {v}");
        }
        let m = c["message"].as_object().unwrap();
        for k in ["role", "content", "refusal"] {
            assert!(m.contains_key(k), "message.{k} is required: {v}");
        }
        assert_eq!(m["role"], "assistant");
        for (k, val) in m {
            if !["content", "refusal"].contains(&k.as_str()) {
                assert!(
                    !val.is_null(),
                    "message.{k} is optional: left out, not null"
                );
            }
        }
        if let Some(tcs) = m.get("tool_calls") {
            for tc in tcs.as_array().unwrap() {
                assert!(tc["id"].is_string() && tc["type"] == "function", "{tc}");
                assert!(tc["function"]["name"].is_string());
                let args = tc["function"]["arguments"]
                    .as_str()
                    .expect("arguments is a string");
                serde_json::from_str::<Value>(args).expect("arguments hold JSON");
            }
        }
        assert!(
            [
                "stop",
                "length",
                "tool_calls",
                "content_filter",
                "function_call"
            ]
            .contains(&c["finish_reason"].as_str().unwrap_or_default()),
            "finish_reason: {v}"
        );
    }
    if let Some(u) = v.get("usage") {
        for k in ["prompt_tokens", "completion_tokens", "total_tokens"] {
            assert!(u[k].is_u64(), "usage.{k}");
        }
    }
}
