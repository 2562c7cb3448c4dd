//! Chat over a Messages upstream: requests, answers, and the upstream's
//! event stream in arbitrary cuts.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use anthropic_messages::events::{Accumulator, EventWriter};
use anthropic_messages::fuzzing::items_from_bytes;
use anthropic_messages::request::{Block, Content, Role};
use anthropic_messages::upstream::{to_chat_completion, to_messages};
use anthropic_messages::upstream_stream::ChatTranslator;
use bytes::{Bytes, BytesMut};
use openai_types::chat::ChatCompletionRequest;
use openai_types::stream::{StreamItem, StreamTranslate};
use proptest::prelude::*;
use serde_json::json;

#[test]
fn a_chat_request_becomes_alternating_turns() {
    let r: ChatCompletionRequest = serde_json::from_value(json!({
        "model": "claude", "max_tokens": 100, "reasoning_effort": "low", "parallel_tool_calls": false,
        "tools": [{"type": "function", "function": {"name": "w", "description": "", "parameters": {"type": "object"}}}],
        "tool_choice": "required",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": [{"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]},
            {"role": "assistant", "content": null,
             "thinking_blocks": [{"type": "thinking", "thinking": "hm", "signature": "sig"}],
             "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "w", "arguments": "{\"a\":1}"}},
                            {"id": "t2", "type": "function", "function": {"name": "w", "arguments": "oops"}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "one"},
            {"role": "tool", "tool_call_id": "t2", "content": "two"},
            {"role": "user", "content": "and?"}
        ]
    }))
    .unwrap();
    let m = to_messages(&r, "claude-upstream").unwrap();
    assert_eq!(m.model, "claude-upstream");
    let roles: Vec<_> = m.messages.iter().map(|t| t.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::User]);
    let Content::Blocks(a) = &m.messages[1].content else {
        panic!()
    };
    assert!(matches!(&a[0], Block::Thinking { signature, .. } if signature == "sig"));
    assert!(
        matches!(&a[2], Block::ToolUse { input, .. } if input == &json!({"arguments": "oops"}))
    );
    let Content::Blocks(u) = &m.messages[2].content else {
        panic!()
    };
    assert_eq!(
        u.len(),
        3,
        "two results and the text in one user turn: {u:?}"
    );
    // Thinking's budget fits in max_tokens with room to answer.
    let budget = m.thinking.as_ref().unwrap().budget_tokens.unwrap();
    assert!(m.max_tokens > budget, "{} {budget}", m.max_tokens);
    let v = serde_json::to_value(&m).unwrap();
    assert_eq!(
        v["system"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );
    assert_eq!(
        v["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        v["messages"][0]["content"][1]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": "iVBO"})
    );
    assert!(v["tools"][0].get("description").is_none());
}

#[test]
fn a_message_becomes_a_chat_completion_with_cache_reads_in_the_prompt() {
    let m: anthropic_messages::Message = serde_json::from_value(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "c",
        "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}, {"type": "text", "text": "Hi"},
                    {"type": "tool_use", "id": "t", "name": "w", "input": {"a": 1}}],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": 90, "cache_creation_input_tokens": 0}
    }))
    .unwrap();
    let c = to_chat_completion(&m, "chatcmpl-1", "claude", 1);
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"a\":1}"
    );
    assert_eq!(
        v["choices"][0]["message"]["thinking_blocks"][0]["signature"],
        "s"
    );
    assert_eq!(v["usage"]["prompt_tokens"], 100);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 90);
}

fn sse(items: &[StreamItem]) -> Vec<u8> {
    let mut w = EventWriter::new("msg_u", "m", 5);
    let mut out = BytesMut::new();
    for i in items {
        w.write(i, &mut out);
    }
    out.to_vec()
}

fn accumulate(
    bytes: &[u8],
) -> Result<anthropic_messages::Message, anthropic_messages::ErrorResponse> {
    let mut acc = Accumulator::default();
    for ev in std::str::from_utf8(bytes).unwrap().split_terminator("\n\n") {
        let data = ev.split_once("\ndata: ").unwrap().1;
        acc.push(&serde_json::from_str(data).unwrap()).unwrap();
    }
    acc.finish()
}

proptest! {
    /// An upstream's events, cut anywhere, read as chat items and written
    /// back as events, describe the same message (ids aside).
    #[test]
    fn an_upstream_stream_in_any_cuts_reads_back_the_same(
        data in proptest::collection::vec(any::<u8>(), 0..200),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let items = items_from_bytes(&data);
        let upstream = sse(&items);
        let mut at: Vec<usize> = cuts.iter().map(|c| c % (upstream.len() + 1)).collect();
        at.sort_unstable();
        let mut t = ChatTranslator::new();
        let mut got = Vec::new();
        let mut last = 0;
        for a in at.into_iter().chain([upstream.len()]) {
            t.push(Bytes::copy_from_slice(&upstream[last..a]), &mut got);
            last = a;
        }
        t.finish(&mut got);
        prop_assert!(t.is_finished());
        let again = sse(&got);
        match (accumulate(&upstream), accumulate(&again)) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a.content, b.content);
                prop_assert_eq!(a.stop_reason, b.stop_reason);
                prop_assert_eq!(a.usage.output_tokens, b.usage.output_tokens);
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.error.message, b.error.message),
            (a, b) => prop_assert!(false, "{a:?} vs {b:?}"),
        }
    }
}
