//! The Responses API over chat: requests translated, answers and event
//! streams checked against the spec's rules (`contract`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::BytesMut;
use openai_types::Usage;
use openai_types::chat::{
    ChatCompletion, ChunkChoice, Delta, FinishReason, FunctionCallChunk, ToolCallChunk,
};
use openai_types::contract::{check_response, check_response_events};
use openai_types::responses::CreateResponse;
use openai_types::responses::chat::{EventWriter, from_chat, response_base, to_chat};
use openai_types::stream::StreamItem;
use openai_types::{ErrorResponse, chat::FunctionType};
use serde_json::{Value, json};

fn req(v: Value) -> CreateResponse {
    serde_json::from_value(v).unwrap()
}

#[test]
fn requests_become_chat_requests() {
    let r = req(json!({
        "model": "m", "instructions": "Be brief.", "stream": true,
        "input": [
            {"role": "user", "content": "weather in Oslo?"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "and this"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"},
            {"type": "function_call", "call_id": "c2", "name": "get_time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "12C"},
            {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "noon"}]},
            {"role": "assistant", "content": [{"type": "output_text", "text": "It is 12C."}]}
        ],
        "tools": [{"type": "function", "name": "get_weather", "strict": true,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "text": {"format": {"type": "json_schema", "name": "W", "schema": {"type": "object"}, "strict": true}},
        "reasoning": {"effort": "low"},
        "max_output_tokens": 100, "temperature": 0.5, "store": false
    }));
    let c = serde_json::to_value(to_chat(&r).unwrap()).unwrap();
    assert_eq!(
        c["messages"][0],
        json!({"role": "developer", "content": "Be brief."})
    );
    assert_eq!(c["messages"][2]["content"][1]["image_url"]["detail"], "low");
    let calls = c["messages"][3]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "two calls in one assistant turn");
    assert_eq!(calls[0]["function"]["arguments"], "{\"city\":\"Oslo\"}");
    assert_eq!(
        c["messages"][4],
        json!({"role": "tool", "tool_call_id": "c1", "content": "12C"})
    );
    assert_eq!(c["messages"][5]["content"], "noon");
    assert_eq!(
        c["messages"][6],
        json!({"role": "assistant", "content": "It is 12C."})
    );
    assert_eq!(c["tools"][0]["function"]["strict"], true);
    assert_eq!(c["tool_choice"]["function"]["name"], "get_weather");
    assert_eq!(c["response_format"]["json_schema"]["name"], "W");
    assert_eq!(c["reasoning_effort"], "low");
    assert_eq!(c["max_completion_tokens"], 100);
    assert_eq!(c["stream_options"]["include_usage"], true);
}

#[test]
fn what_needs_a_store_or_other_tools_is_refused_by_path() {
    for (extra, param) in [
        (
            json!({"previous_response_id": "resp_1"}),
            "previous_response_id",
        ),
        (json!({"store": true}), "store"),
        (json!({"background": true}), "background"),
        (json!({"tools": [{"type": "web_search"}]}), "tools[0].type"),
        (
            json!({"input": [{"type": "item_reference", "id": "x"}]}),
            "input[0].type",
        ),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}),
            "input[0].content[0].type",
        ),
        (
            json!({"text": {"format": {"type": "yaml"}}}),
            "text.format.type",
        ),
    ] {
        let mut v = json!({"model": "m", "input": "hi"});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        let e = to_chat(&req(v)).unwrap_err();
        assert_eq!(e.param, param, "{e:?}");
    }
}

fn completion(v: Value) -> ChatCompletion {
    serde_json::from_value(v).unwrap()
}

#[test]
fn answers_become_responses() {
    let r = req(
        json!({"model": "m", "input": "hi", "tools": [{"type": "function", "name": "f", "parameters": {}, "strict": false}]}),
    );
    let c = completion(
        json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
            "content": "Checking.", "reasoning_content": "They want f.",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}),
    );
    let out = serde_json::to_value(from_chat(response_base(&r, "resp_abc", 9), &c)).unwrap();
    check_response(&out);
    assert_eq!(out["status"], "completed");
    let types: Vec<&str> = out["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["reasoning", "message", "function_call"]);
    assert_eq!(out["output"][1]["content"][0]["text"], "Checking.");
    assert_eq!(out["output"][2]["call_id"], "call_1");
    assert_eq!(out["usage"]["total_tokens"], 12);
    assert_eq!(out["tools"][0]["name"], "f");

    let cut = completion(
        json!({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Once"}}]}),
    );
    let out = serde_json::to_value(from_chat(response_base(&r, "resp_abc", 9), &cut)).unwrap();
    check_response(&out);
    assert_eq!(out["status"], "incomplete");
    assert_eq!(out["incomplete_details"]["reason"], "max_output_tokens");
}

fn chunk(delta: Delta, finish: Option<FinishReason>) -> StreamItem {
    StreamItem::Choice(ChunkChoice {
        index: 0,
        delta,
        logprobs: None,
        finish_reason: finish,
    })
}

fn tool(k: u32, id: Option<&str>, name: Option<&str>, args: &str) -> Delta {
    Delta {
        tool_calls: Some(vec![ToolCallChunk {
            index: k,
            id: id.map(str::to_owned),
            kind: id.map(|_| FunctionType),
            function: Some(FunctionCallChunk {
                name: name.map(str::to_owned),
                arguments: Some(args.into()),
            }),
        }]),
        ..Delta::default()
    }
}

fn text(t: &str, reasoning: bool) -> Delta {
    if reasoning {
        Delta {
            reasoning_content: Some(t.into()),
            ..Delta::default()
        }
    } else {
        Delta {
            content: Some(t.into()),
            ..Delta::default()
        }
    }
}

#[test]
fn streams_become_the_event_sequence() {
    let r = req(json!({"model": "m", "input": "hi", "stream": true}));
    let mut w = EventWriter::new(response_base(&r, "resp_s", 9));
    let mut out = BytesMut::new();
    for item in [
        chunk(
            Delta {
                role: Some(openai_types::chat::Role::Assistant),
                content: Some(String::new()),
                ..Delta::default()
            },
            None,
        ),
        chunk(text("Hmm", true), None),
        chunk(text(" ok.", true), None),
        chunk(text("Hello", false), None),
        chunk(text(" 你好", false), None),
        chunk(tool(0, Some("call_a"), Some("f"), ""), None),
        chunk(tool(0, None, None, "{\"x\":"), None),
        chunk(tool(0, None, None, "1}"), None),
        chunk(tool(1, Some("call_b"), Some("g"), "{}"), None),
        chunk(Delta::default(), Some(FinishReason::ToolCalls)),
        StreamItem::Usage(Usage::new(3, 4)),
        StreamItem::Done,
    ] {
        w.write(&item, &mut out);
    }
    let sse = std::str::from_utf8(&out).unwrap();
    let last = check_response_events(sse);
    assert_eq!(last["status"], "completed");
    let output = last["output"].as_array().unwrap();
    assert_eq!(output.len(), 4, "{last}");
    assert_eq!(output[0]["content"][0]["text"], "Hmm ok.");
    assert_eq!(output[1]["content"][0]["text"], "Hello 你好");
    assert_eq!(output[2]["arguments"], "{\"x\":1}");
    assert_eq!(output[3]["call_id"], "call_b");
    assert_eq!(last["usage"]["output_tokens"], 4);
    assert!(sse.contains("event: response.function_call_arguments.delta\n"));

    // A failure: an error event, then response.failed.
    let mut w = EventWriter::new(response_base(&r, "resp_f", 9));
    let mut out = BytesMut::new();
    w.write(&chunk(text("Hel", false), None), &mut out);
    w.write(
        &StreamItem::Error(
            ErrorResponse::new("upstream broke", "server_error").with_code("upstream_truncated"),
        ),
        &mut out,
    );
    let sse = std::str::from_utf8(&out).unwrap();
    let last = check_response_events(sse);
    assert_eq!(last["status"], "failed");
    assert_eq!(last["error"]["code"], "server_error");
    assert!(sse.contains("event: error\n"));
}
