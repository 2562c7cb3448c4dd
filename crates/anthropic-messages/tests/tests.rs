//! The translation both ways, the event stream against a golden fixture,
//! its invariant over arbitrary input and arbitrary splits, and the fuzz
//! corpus replayed.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use anthropic_messages::chat::{from_chat, prompt_tokens, to_chat};
use anthropic_messages::events::{Accumulator, EventWriter};
use anthropic_messages::fuzzing::{check_events, items_from_bytes};
use anthropic_messages::{ErrorKind, ErrorResponse, MessagesRequest, StopReason};
use bytes::BytesMut;
use openai_types::Usage;
use openai_types::chat::{
    ChatCompletion, ChatMessage, ChunkChoice, ContentPart, Delta, FinishReason, FunctionCallChunk,
    MessageContent, ToolCallChunk, ToolChoice, ToolChoiceMode,
};
use openai_types::stream::StreamItem;
use openai_types::usage::PromptTokensDetails;
use proptest::prelude::*;
use serde_json::{Value, json};

/// A request as Claude Code sends one: system blocks with `cache_control`,
/// tools, an earlier turn with thinking and two tool calls, their results
/// (one an error, one with an image), a PDF.
fn agent_request() -> MessagesRequest {
    serde_json::from_value(json!({
        "model": "claude-sonnet-4",
        "max_tokens": 32000,
        "stream": true,
        "system": [
            {"type": "text", "text": "You are Claude Code."},
            {"type": "text", "text": "Project notes", "cache_control": {"type": "ephemeral"}}
        ],
        "tools": [
            {"name": "Write", "description": "Writes a file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}},
            {"name": "Read", "description": "", "input_schema": {"type": "object"}}
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": false},
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "metadata": {"user_id": "u-1"},
        "top_k": 5,
        "messages": [
            {"role": "user", "content": "Write a.txt and read b.txt"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Two tools.", "signature": "sig-1"},
                {"type": "text", "text": "On it."},
                {"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {"path": "a.txt"}},
                {"type": "tool_use", "id": "toolu_2", "name": "Read", "input": {"path": "b.txt"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "written"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true, "content": [
                    {"type": "text", "text": "no such file"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}
                ]},
                {"type": "document", "title": "spec.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
                {"type": "text", "text": "Go on."}
            ]}
        ]
    }))
    .unwrap()
}

#[test]
fn an_agent_request_becomes_chat_with_nothing_lost() {
    let chat = to_chat(&agent_request()).unwrap();
    let roles: Vec<_> = chat.messages.iter().map(ChatMessage::role).collect();
    assert_eq!(
        roles,
        [
            "system",
            "user",
            "assistant",
            "tool",
            "tool",
            "user",
            "user"
        ]
    );
    let ChatMessage::System(s) = &chat.messages[0] else {
        panic!()
    };
    let MessageContent::Parts(parts) = &s.content else {
        panic!()
    };
    assert!(
        matches!(&parts[1], ContentPart::Text { extra, .. } if extra["cache_control"] == json!({"type": "ephemeral"}))
    );
    let ChatMessage::Assistant(a) = &chat.messages[2] else {
        panic!()
    };
    let calls = a.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].function.arguments, r#"{"path":"b.txt"}"#);
    assert_eq!(a.reasoning_content.as_deref(), Some("Two tools."));
    assert_eq!(
        a.extra["thinking_blocks"],
        json!([{"type": "thinking", "thinking": "Two tools.", "signature": "sig-1"}])
    );
    let ChatMessage::Tool(t) = &chat.messages[4] else {
        panic!()
    };
    assert_eq!(t.tool_call_id, "toolu_2");
    assert_eq!(t.content.text(), "Error: no such file");
    // The result's image follows as a user message; the PDF is a file part.
    let ChatMessage::User(img) = &chat.messages[5] else {
        panic!()
    };
    assert!(img.content.has_non_text());
    let ChatMessage::User(u) = &chat.messages[6] else {
        panic!()
    };
    let MessageContent::Parts(parts) = &u.content else {
        panic!()
    };
    assert!(
        matches!(&parts[0], ContentPart::File { file } if file["file_data"] == "data:application/pdf;base64,JVBER" && file["filename"] == "spec.pdf")
    );
    assert_eq!(chat.max_tokens, Some(32000));
    assert_eq!(chat.reasoning_effort.as_deref(), Some("low"));
    assert_eq!(chat.parallel_tool_calls, Some(true));
    assert_eq!(
        chat.tool_choice,
        Some(ToolChoice::Mode(ToolChoiceMode::Auto))
    );
    assert!(chat.include_usage());
    assert_eq!(chat.user.as_deref(), Some("u-1"));
    assert_eq!(chat.extra["top_k"], 5);
    let tools = chat.tools.as_ref().unwrap();
    // An empty description is left out, not sent empty.
    assert_eq!(tools[1].function.description, None);
    assert!(prompt_tokens(&chat) > openai_types::validate::chat_prompt_tokens(&chat));
    openai_types::validate::chat(&chat).unwrap();
}

/// What Claude Code sends today: a system turn inside `messages`, adaptive
/// thinking with `output_config.effort`, tools with extra fields.
#[test]
fn claude_code_s_system_turns_and_adaptive_thinking_are_understood() {
    let r: MessagesRequest = serde_json::from_value(json!({
        "model": "m", "max_tokens": 128000, "stream": true,
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "tools": [{"name": "Later", "description": "d", "input_schema": {"type": "object"}, "defer_loading": true}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "system", "content": [{"type": "text", "text": "# Environment", "cache_control": {"type": "ephemeral"}}]}
        ]
    }))
    .unwrap();
    let chat = to_chat(&r).unwrap();
    assert_eq!(chat.messages[1].role(), "system");
    assert_eq!(chat.reasoning_effort.as_deref(), Some("high"));
    // Round trip keeps what was not modelled.
    let back = serde_json::to_value(&r).unwrap();
    assert_eq!(back["tools"][0]["defer_loading"], true);
    assert_eq!(back["thinking"]["display"], "omitted");
}

#[test]
fn blocks_out_of_place_and_server_tools_are_refused_by_path() {
    let mut r = agent_request();
    r.messages[0].content = serde_json::from_value(
        json!([{"type": "tool_use", "id": "x", "name": "Write", "input": {}}]),
    )
    .unwrap();
    assert_eq!(to_chat(&r).unwrap_err().param, "messages.0.content.0.type");
    let mut r = agent_request();
    r.tools = Some(
        serde_json::from_value(json!([{"type": "web_search_20250305", "name": "web_search"}]))
            .unwrap(),
    );
    assert_eq!(to_chat(&r).unwrap_err().param, "tools.0.type");
}

fn completion(finish: &str, usage: Value) -> ChatCompletion {
    serde_json::from_value(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "logprobs": null, "finish_reason": finish, "message": {
            "role": "assistant", "content": "Done.", "refusal": null,
            "reasoning_content": "Hmm.",
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "Write", "arguments": "{\"path\":\"a\"}"}},
                {"id": "call_b", "type": "function", "function": {"name": "Read", "arguments": "not json"}}
            ]
        }}],
        "usage": usage
    }))
    .unwrap()
}

#[test]
fn a_chat_answer_becomes_a_message_with_cache_reads_split_out() {
    let c = completion(
        "tool_calls",
        json!({"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107,
               "prompt_tokens_details": {"cached_tokens": 60}}),
    );
    let m = from_chat(&c, "msg_1", "claude");
    let v = serde_json::to_value(&m).unwrap();
    assert_eq!(
        v,
        json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": [
                {"type": "thinking", "thinking": "Hmm.", "signature": ""},
                {"type": "text", "text": "Done."},
                {"type": "tool_use", "id": "call_a", "name": "Write", "input": {"path": "a"}},
                {"type": "tool_use", "id": "call_b", "name": "Read", "input": "not json"}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 40, "output_tokens": 7,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 60}
        })
    );
    for (finish, stop) in [
        ("stop", StopReason::EndTurn),
        ("length", StopReason::MaxTokens),
        ("content_filter", StopReason::Refusal),
    ] {
        let m = from_chat(&completion(finish, Value::Null), "msg_1", "m");
        assert_eq!(m.stop_reason, Some(stop));
    }
}

#[test]
fn errors_take_the_type_of_their_status() {
    let e = openai_types::ErrorResponse::new("slow down", "rate_limit_exceeded");
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (529, "overloaded_error"),
    ] {
        let v = serde_json::to_value(ErrorResponse::from_openai(status, &e)).unwrap();
        assert_eq!(
            v,
            json!({"type": "error", "error": {"type": kind, "message": "slow down"}})
        );
    }
    // In a stream there is no status: the error's own type tells.
    assert_eq!(
        ErrorResponse::from_openai(0, &e).error.kind,
        ErrorKind::RateLimit
    );
}

fn piece(delta: Delta, finish: Option<FinishReason>) -> StreamItem {
    StreamItem::Choice(ChunkChoice {
        index: 0,
        delta,
        logprobs: None,
        finish_reason: finish,
    })
}

fn call(index: u32, first: bool, args: &str) -> Delta {
    Delta {
        tool_calls: Some(vec![ToolCallChunk {
            index,
            id: first.then(|| format!("call_{index}")),
            kind: None,
            function: Some(FunctionCallChunk {
                name: first.then(|| ["Write", "Read"][index as usize % 2].to_owned()),
                arguments: Some(args.to_owned()),
            }),
        }]),
        ..Delta::default()
    }
}

fn text(t: &str) -> Delta {
    Delta {
        content: Some(t.to_owned()),
        ..Delta::default()
    }
}

fn thinking(t: &str) -> Delta {
    Delta {
        reasoning_content: Some(t.to_owned()),
        ..Delta::default()
    }
}

/// Thinking, text, then two parallel tool calls whose pieces interleave.
fn agent_stream() -> Vec<StreamItem> {
    let mut usage = Usage::new(120, 30);
    usage.prompt_tokens_details = Some(PromptTokensDetails {
        cached_tokens: Some(100),
        audio_tokens: None,
        cache_write_tokens: None,
    });
    vec![
        piece(thinking("Need "), None),
        piece(thinking("two files."), None),
        piece(text("Writing "), None),
        piece(text("both."), None),
        piece(call(0, true, "{\"pa"), None),
        piece(call(1, true, "{\"path\":"), None),
        piece(call(0, false, "th\":\"a\"}"), None),
        piece(call(1, false, "\"b\"}"), Some(FinishReason::ToolCalls)),
        StreamItem::Usage(usage),
        StreamItem::Done,
    ]
}

fn write(items: &[StreamItem]) -> String {
    let mut w = EventWriter::new("msg_1", "claude", 120);
    let mut out = BytesMut::new();
    for i in items {
        w.write(i, &mut out);
    }
    String::from_utf8(out.to_vec()).unwrap()
}

fn accumulate(sse: &str) -> anthropic_messages::Message {
    let mut acc = Accumulator::default();
    for ev in sse.split_terminator("\n\n") {
        let data = ev.split_once("\ndata: ").unwrap().1;
        acc.push(&serde_json::from_str(data).unwrap()).unwrap();
    }
    acc.finish().unwrap()
}

#[test]
fn a_stream_matches_its_golden_events() {
    let got = write(&agent_stream());
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/agent_stream.sse"
    );
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(path, &got).unwrap();
    }
    let want = std::fs::read_to_string(path).unwrap();
    assert_eq!(got, want, "rewrite with UPDATE_SNAPSHOTS=1 and review");
    let m = accumulate(&got);
    assert_eq!(m.stop_reason, Some(StopReason::ToolUse));
    assert_eq!(m.usage.input_tokens, 20);
    assert_eq!(m.usage.cache_read_input_tokens, Some(100));
    assert_eq!(m.content.len(), 4);
    let v = serde_json::to_value(&m.content[2..]).unwrap();
    assert_eq!(
        v,
        json!([
            {"type": "tool_use", "id": "call_0", "name": "Write", "input": {"path": "a"}},
            {"type": "tool_use", "id": "call_1", "name": "Read", "input": {"path": "b"}}
        ])
    );
}

#[test]
fn a_failed_stream_ends_in_one_error_event() {
    let items = [
        piece(text("Hal"), None),
        StreamItem::Error(openai_types::ErrorResponse::new(
            "upstream went away",
            "server_error",
        )),
        StreamItem::Done,
    ];
    let sse = write(&items);
    let last = sse.split_terminator("\n\n").last().unwrap();
    assert_eq!(
        last,
        r#"event: error
data: {"type":"error","error":{"type":"api_error","message":"upstream went away"}}"#
    );
    assert!(!sse.contains("message_stop"));
}

/// `s` cut at the given fractions, in order.
fn split(s: &str, cuts: &[f64]) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|f| (f * chars.len() as f64) as usize)
        .collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for a in at.into_iter().chain([chars.len()]) {
        out.push(chars[last..a].iter().collect());
        last = a;
    }
    out
}

proptest! {
    #[test]
    fn any_item_sequence_keeps_the_stream_contract(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_events(&items_from_bytes(&data));
    }

    /// However a whole answer is cut into pieces (and its two tool calls'
    /// pieces interleaved), the message built back from the events is the
    /// whole answer's message.
    #[test]
    fn any_split_gives_the_whole_answer(
        think in "[a-z ]{0,40}",
        said in "\\PC{0,40}",
        a in "[a-z]{0,12}",
        b in "[a-z]{0,12}",
        cuts in proptest::collection::vec(0.0f64..1.0, 0..6),
    ) {
        let args = [json!({"path": a}).to_string(), json!({"path": b}).to_string()];
        let mut items = Vec::new();
        for p in split(&think, &cuts).iter().filter(|p| !p.is_empty()) {
            items.push(piece(thinking(p), None));
        }
        for p in split(&said, &cuts).iter().filter(|p| !p.is_empty()) {
            items.push(piece(text(p), None));
        }
        let (pa, pb) = (split(&args[0], &cuts), split(&args[1], &cuts));
        for (i, (x, y)) in pa.iter().zip(&pb).enumerate() {
            items.push(piece(call(0, i == 0, x), None));
            items.push(piece(call(1, i == 0, y), None));
        }
        items.push(piece(Delta::default(), Some(FinishReason::ToolCalls)));
        items.push(StreamItem::Usage(Usage::new(9, 4)));
        items.push(StreamItem::Done);
        let streamed = accumulate(&write(&items));
        let whole = completion_of(&think, &said, &args);
        let mut want = from_chat(&whole, "msg_1", "claude");
        // message_start carried the estimate; message_delta the count.
        want.usage = streamed.usage;
        prop_assert_eq!(streamed.usage.input_tokens, 9);
        prop_assert_eq!(streamed, want);
    }
}

fn completion_of(think: &str, said: &str, args: &[String; 2]) -> ChatCompletion {
    serde_json::from_value(json!({
        "id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": said, "refusal": null, "reasoning_content": think,
            "tool_calls": [
                {"id": "call_0", "type": "function", "function": {"name": "Write", "arguments": args[0]}},
                {"id": "call_1", "type": "function", "function": {"name": "Read", "arguments": args[1]}}
            ]
        }}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    }))
    .unwrap()
}

#[test]
fn fuzz_corpus_replays_clean() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/corpus/anthropic_events"
    );
    let entries: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
    assert!(!entries.is_empty(), "{dir} is empty");
    for e in entries {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        check_events(&items_from_bytes(&data));
    }
}
