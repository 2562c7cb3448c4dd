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

/// Checks a `response` object (the Responses API) against the spec's
/// `Response`: the required fields (nullable ones present as `null`), the
/// status, every output item's required fields, and `ResponseUsage`.
pub fn check_response(v: &Value) {
    for k in [
        "id",
        "object",
        "created_at",
        "error",
        "incomplete_details",
        "instructions",
        "model",
        "tools",
        "output",
        "parallel_tool_calls",
        "metadata",
        "tool_choice",
        "temperature",
        "top_p",
    ] {
        assert!(v.get(k).is_some(), "response.{k} is required: {v}");
    }
    assert_eq!(v["object"], "response");
    assert!(v["id"].is_string() && v["model"].is_string() && v["created_at"].is_u64());
    assert!(v["tools"].is_array() && v["parallel_tool_calls"].is_boolean());
    let status = v["status"].as_str().unwrap_or_default();
    assert!(
        [
            "completed",
            "failed",
            "in_progress",
            "cancelled",
            "queued",
            "incomplete"
        ]
        .contains(&status),
        "status: {v}"
    );
    if status == "incomplete" {
        let reason = v["incomplete_details"]["reason"]
            .as_str()
            .unwrap_or_default();
        assert!(
            ["max_output_tokens", "content_filter"].contains(&reason),
            "{v}"
        );
    }
    if !v["error"].is_null() {
        assert!(
            v["error"]["code"].is_string() && v["error"]["message"].is_string(),
            "{v}"
        );
    }
    for item in v["output"].as_array().expect("output is a list") {
        check_output_item(item);
    }
    if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
        for k in ["input_tokens", "output_tokens", "total_tokens"] {
            assert!(u[k].is_u64(), "usage.{k}: {u}");
        }
        assert!(u["input_tokens_details"]["cached_tokens"].is_u64(), "{u}");
        assert!(
            u["input_tokens_details"]["cache_write_tokens"].is_u64(),
            "{u}"
        );
        assert!(
            u["output_tokens_details"]["reasoning_tokens"].is_u64(),
            "{u}"
        );
    }
}

/// Checks one output item: `OutputMessage`, `FunctionToolCall` or
/// `ReasoningItem`.
pub fn check_output_item(item: &Value) {
    let required: &[&str] = match item["type"].as_str() {
        Some("message") => &["id", "type", "role", "content", "status"],
        Some("function_call") => &["type", "call_id", "name", "arguments"],
        Some("reasoning") => &["id", "summary", "type"],
        other => panic!("unexpected output item type {other:?}: {item}"),
    };
    for k in required {
        assert!(
            item.get(*k).is_some(),
            "{}.{k} is required: {item}",
            item["type"]
        );
    }
    if let Some(s) = item.get("status") {
        assert!(
            ["in_progress", "completed", "incomplete"].contains(&s.as_str().unwrap_or_default()),
            "{item}"
        );
    }
    if item["type"] == "message" {
        assert_eq!(item["role"], "assistant");
        for part in item["content"].as_array().expect("content is a list") {
            match part["type"].as_str() {
                Some("output_text") => {
                    for k in ["text", "annotations", "logprobs"] {
                        assert!(part.get(k).is_some(), "output_text.{k} is required: {part}");
                    }
                }
                Some("refusal") => assert!(part["refusal"].is_string()),
                other => panic!("unexpected content part {other:?}"),
            }
        }
    }
    if item["type"] == "function_call" {
        assert!(item["arguments"].is_string(), "{item}");
    }
}

/// Checks a Responses event stream: every event named as its `type`, the
/// required fields of each event type, `sequence_number` counting from 0,
/// items added before their deltas and done after them, and one terminal
/// event (`response.completed`, `response.incomplete` or `response.failed`)
/// last. Returns the final response.
pub fn check_response_events(sse: &str) -> Value {
    assert!(sse.ends_with("\n\n"), "every event ends with a blank line");
    let mut seq = 0u64;
    let mut open: HashMap<u64, String> = HashMap::new();
    let mut done: Vec<u64> = Vec::new();
    let mut last = None;
    for block in sse.trim_end_matches('\n').split("\n\n") {
        assert!(
            last.is_none(),
            "nothing follows the terminal event: {block}"
        );
        let mut lines = block.lines();
        let name = lines
            .next()
            .and_then(|l| l.strip_prefix("event: "))
            .unwrap_or_else(|| panic!("an event line first: {block}"));
        let data = lines
            .next()
            .and_then(|l| l.strip_prefix("data: "))
            .unwrap_or_else(|| panic!("a data line: {block}"));
        let v: Value = serde_json::from_str(data).expect("data is JSON");
        assert_eq!(v["type"], name, "the event is named as its type");
        assert_eq!(v["sequence_number"], seq, "sequence numbers count up: {v}");
        seq += 1;
        let required: &[&str] = match name {
            "response.created"
            | "response.in_progress"
            | "response.completed"
            | "response.incomplete"
            | "response.failed" => &["response"],
            "response.output_item.added" | "response.output_item.done" => &["output_index", "item"],
            "response.content_part.added" | "response.content_part.done" => {
                &["item_id", "output_index", "content_index", "part"]
            }
            "response.output_text.delta" => &[
                "item_id",
                "output_index",
                "content_index",
                "delta",
                "logprobs",
            ],
            "response.output_text.done" => &[
                "item_id",
                "output_index",
                "content_index",
                "text",
                "logprobs",
            ],
            "response.reasoning_text.delta" => {
                &["item_id", "output_index", "content_index", "delta"]
            }
            "response.reasoning_text.done" => &["item_id", "output_index", "content_index", "text"],
            "response.function_call_arguments.delta" => &["item_id", "output_index", "delta"],
            "response.function_call_arguments.done" => {
                &["item_id", "name", "output_index", "arguments"]
            }
            "error" => &["code", "message", "param"],
            other => panic!("unexpected event {other}"),
        };
        for k in required {
            assert!(v.get(*k).is_some(), "{name}.{k} is required: {v}");
        }
        if let Some(r) = v.get("response") {
            check_response(r);
        }
        if let Some(i) = v.get("output_index").and_then(Value::as_u64) {
            assert!(!done.contains(&i), "{name} after output item {i} was done");
            match name {
                "response.output_item.added" => {
                    check_output_item(&v["item"]);
                    assert!(
                        open.insert(i, v["item"]["type"].to_string()).is_none(),
                        "item {i} added twice"
                    );
                }
                "response.output_item.done" => {
                    check_output_item(&v["item"]);
                    assert!(open.remove(&i).is_some(), "item {i} done before added");
                    done.push(i);
                }
                _ => assert!(
                    open.contains_key(&i),
                    "{name} for item {i}, which is not open"
                ),
            }
        }
        if [
            "response.completed",
            "response.incomplete",
            "response.failed",
        ]
        .contains(&name)
        {
            assert!(open.is_empty(), "items left open: {open:?}");
            last = Some(v["response"].clone());
        }
    }
    assert!(
        seq >= 2 && sse.starts_with("event: response.created\n"),
        "the stream starts with response.created"
    );
    last.expect("a terminal event ends the stream")
}
