//! The stream writer's fuzz invariant, shared by the fuzz target
//! (`fuzz/fuzz_targets/anthropic_events.rs`), the corpus replay test and
//! the property tests. It panics when the invariant breaks.
#![allow(clippy::expect_used, clippy::panic)]

use bytes::BytesMut;
use openai_types::chat::{
    ChunkChoice, Delta, FinishReason, FunctionCallChunk, ThinkingBlock, ToolCallChunk,
};
use openai_types::stream::StreamItem;
use openai_types::{ErrorResponse, Usage};
use serde_json::Value;

use crate::chat::tool_input;
use crate::events::{Accumulator, EventWriter};
use crate::message::ContentBlock;

/// Chat stream items a byte string describes: each byte's low bits pick an
/// item (a reasoning, text or refusal piece, a tool call's piece, a finish
/// reason, usage, an error, the end), the next bytes its text.
pub fn items_from_bytes(data: &[u8]) -> Vec<StreamItem> {
    let mut items = Vec::new();
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        let len = usize::from(op >> 4).min(tail.len());
        let (text, tail) = tail.split_at(len);
        rest = tail;
        let text = String::from_utf8_lossy(text).into_owned();
        let mut delta = Delta::default();
        let mut finish = None;
        match op & 0x0f {
            0 => delta.reasoning_content = Some(text),
            1 | 2 => delta.content = Some(text),
            3 => delta.refusal = Some(text),
            4..=7 => {
                let index = u32::from(op & 3);
                delta.tool_calls = Some(vec![ToolCallChunk {
                    index,
                    id: Some(format!("call_{index}")),
                    kind: None,
                    function: Some(FunctionCallChunk {
                        name: Some(format!("tool_{index}")),
                        arguments: Some(text),
                    }),
                }]);
            }
            8 => finish = Some(FinishReason::Stop),
            9 => finish = Some(FinishReason::ToolCalls),
            10 => finish = Some(FinishReason::Length),
            11 => {
                items.push(StreamItem::Usage(Usage::new(len as u64, u64::from(op))));
                continue;
            }
            12 => {
                items.push(StreamItem::Error(ErrorResponse::new(text, "server_error")));
                return items;
            }
            13 => {
                items.push(StreamItem::Done);
                return items;
            }
            14 => {
                delta.thinking_blocks = Some(vec![ThinkingBlock::Thinking {
                    thinking: String::new(),
                    signature: Some(text),
                }]);
            }
            _ => continue,
        }
        items.push(StreamItem::Choice(ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason: finish,
        }));
    }
    items.push(StreamItem::Done);
    items
}

/// Writes `items` as events and checks them: each event's `data` is JSON
/// whose `type` is the event's name; the SDKs' accumulation accepts every
/// event; the stream ends once, with `message_stop` or `error`; and the
/// message built back holds all the input, per kind: the thinking, the
/// text (with refusals) and each tool call's arguments, in order.
pub fn check_events(items: &[StreamItem]) {
    let mut w = EventWriter::new("msg_fuzz", "m", 3);
    let mut out = BytesMut::new();
    for item in items {
        w.write(item, &mut out);
    }
    let text = std::str::from_utf8(&out).expect("events are UTF-8");
    let mut acc = Accumulator::default();
    let mut ends = 0;
    let mut names = Vec::new();
    for ev in text.split_terminator("\n\n") {
        let (name, data) = ev
            .strip_prefix("event: ")
            .and_then(|e| e.split_once("\ndata: "))
            .expect("event: …\\ndata: …");
        let data: Value = serde_json::from_str(data).expect("data is JSON");
        assert_eq!(data["type"], name, "{ev}");
        assert_eq!(ends, 0, "an event after the end: {ev}");
        if name == "message_stop" || name == "error" {
            ends += 1;
        }
        names.push(name.to_owned());
        acc.push(&data).unwrap_or_else(|e| panic!("{e}: {ev}"));
    }
    assert_eq!(ends, 1, "the stream ends once: {names:?}");
    let failed = items.iter().any(|i| matches!(i, StreamItem::Error(_)));
    let message = match acc.finish() {
        Ok(m) => {
            assert!(!failed);
            m
        }
        Err(e) => {
            assert!(failed, "{e:?}");
            return;
        }
    };
    let (mut thinking, mut said, mut signed) = (String::new(), String::new(), String::new());
    let mut args: Vec<(u32, String)> = Vec::new();
    for item in items {
        let StreamItem::Choice(c) = item else {
            continue;
        };
        thinking.push_str(c.delta.reasoning_content.as_deref().unwrap_or_default());
        said.push_str(c.delta.content.as_deref().unwrap_or_default());
        said.push_str(c.delta.refusal.as_deref().unwrap_or_default());
        for b in c.delta.thinking_blocks.iter().flatten() {
            if let ThinkingBlock::Thinking {
                signature: Some(s), ..
            } = b
            {
                signed.push_str(s);
            }
        }
        for call in c.delta.tool_calls.iter().flatten() {
            let piece = call
                .function
                .as_ref()
                .and_then(|f| f.arguments.as_deref())
                .unwrap_or_default();
            match args.iter_mut().find(|(i, _)| *i == call.index) {
                Some((_, a)) => a.push_str(piece),
                None => args.push((call.index, piece.to_owned())),
            }
        }
    }
    let (mut got_thinking, mut got_said, mut got_signed) =
        (String::new(), String::new(), String::new());
    let mut got_calls = Vec::new();
    for b in &message.content {
        match b {
            ContentBlock::Thinking {
                thinking,
                signature,
            } => {
                got_thinking.push_str(thinking);
                got_signed.push_str(signature);
            }
            ContentBlock::Text { text } => got_said.push_str(text),
            ContentBlock::ToolUse { id, input, .. } => got_calls.push((id.clone(), input.clone())),
            ContentBlock::RedactedThinking { .. } => panic!("no redacted thinking was sent"),
        }
    }
    assert_eq!(got_thinking, thinking);
    assert_eq!(got_said, said);
    assert_eq!(got_signed, signed);
    let want: Vec<_> = args
        .iter()
        .map(|(i, a)| (format!("call_{i}"), tool_input(a)))
        .collect();
    assert_eq!(got_calls, want);
}
