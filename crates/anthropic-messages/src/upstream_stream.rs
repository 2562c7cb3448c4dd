//! A Messages upstream's event stream (SSE bytes, in any cuts) as chat
//! stream items: [`ChatTranslator`], a
//! [`StreamTranslate`](openai_types::stream::StreamTranslate).

use bytes::{Buf, Bytes, BytesMut};
use openai_types::chat::{
    ChunkChoice, Delta, FinishReason, FunctionCallChunk, FunctionType, Role, ThinkingBlock,
    ToolCallChunk,
};
use openai_types::stream::{StreamItem, StreamTranslate};
use openai_types::{ErrorResponse, Usage as OaUsage};
use serde_json::Value;

use crate::message::{StopReason, Usage, finish_reason, openai_usage};

/// The longest SSE line a stream may send (a line is one event's JSON).
pub const MAX_LINE_BYTES: usize = 8 << 20;

/// Why an upstream's stream failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError(pub String);

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StreamError {}

/// Translates a Messages event stream into chat items (choice 0): text as
/// `content`, thinking as `reasoning_content` (signatures and redacted
/// blocks as `thinking_blocks`), each `tool_use` block as a tool call with
/// a dense index, `message_delta`'s stop reason as the finish reason, and
/// usage (input counted at `message_start`, output at the end); an `error`
/// event as the stream's error item.
#[derive(Debug, Default)]
pub struct ChatTranslator {
    buf: BytesMut,
    /// Per content block index: its tool call's dense index, if a tool.
    tools: Vec<Option<u32>>,
    next_tool: u32,
    role_sent: bool,
    usage: Usage,
    finish: Option<FinishReason>,
    done: bool,
    failure: Option<StreamError>,
}

impl ChatTranslator {
    /// A translator for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn choice(
        &mut self,
        mut delta: Delta,
        finish: Option<FinishReason>,
        out: &mut Vec<StreamItem>,
    ) {
        if !self.role_sent {
            self.role_sent = true;
            delta.role = Some(Role::Assistant);
        }
        out.push(StreamItem::Choice(ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason: finish,
        }));
    }

    fn fail_with(&mut self, e: StreamError, out: &mut Vec<StreamItem>) {
        if self.done {
            return;
        }
        out.push(StreamItem::Error(ErrorResponse::new(
            e.0.clone(),
            "server_error",
        )));
        self.failure = Some(e);
        self.done = true;
    }

    /// One event's data.
    fn event(&mut self, v: &Value, out: &mut Vec<StreamItem>) {
        let index = v["index"].as_u64().unwrap_or(0) as usize;
        match v["type"].as_str().unwrap_or_default() {
            "message_start" => {
                if let Ok(u) = serde_json::from_value::<Usage>(v["message"]["usage"].clone()) {
                    self.usage = u;
                }
            }
            "content_block_start" => {
                let b = &v["content_block"];
                if self.tools.len() <= index {
                    self.tools.resize(index + 1, None);
                }
                match b["type"].as_str() {
                    Some("tool_use") => {
                        let dense = self.next_tool;
                        self.next_tool += 1;
                        self.tools[index] = Some(dense);
                        let delta = tool_piece(
                            dense,
                            b["id"].as_str().map(str::to_owned),
                            b["name"].as_str().map(str::to_owned),
                            String::new(),
                        );
                        self.choice(delta, None, out);
                    }
                    Some("redacted_thinking") => {
                        let data = b["data"].as_str().unwrap_or_default().to_owned();
                        let delta = Delta {
                            thinking_blocks: Some(vec![ThinkingBlock::RedactedThinking { data }]),
                            ..Delta::default()
                        };
                        self.choice(delta, None, out);
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let d = &v["delta"];
                let s = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
                let delta = match d["type"].as_str() {
                    Some("text_delta") => Delta {
                        content: Some(s("text")),
                        ..Delta::default()
                    },
                    Some("thinking_delta") => Delta {
                        reasoning_content: Some(s("thinking")),
                        ..Delta::default()
                    },
                    Some("signature_delta") => Delta {
                        thinking_blocks: Some(vec![ThinkingBlock::Thinking {
                            thinking: String::new(),
                            signature: Some(s("signature")),
                        }]),
                        ..Delta::default()
                    },
                    Some("input_json_delta") => {
                        let Some(Some(dense)) = self.tools.get(index).copied() else {
                            return;
                        };
                        tool_piece(dense, None, None, s("partial_json"))
                    }
                    _ => return,
                };
                self.choice(delta, None, out);
            }
            "message_delta" => {
                self.finish =
                    serde_json::from_value::<StopReason>(v["delta"]["stop_reason"].clone())
                        .ok()
                        .map(finish_reason);
                let u = &v["usage"];
                if let Some(n) = u["output_tokens"].as_u64() {
                    self.usage.output_tokens = n;
                }
                if let Some(n) = u["input_tokens"].as_u64() {
                    self.usage.input_tokens = n;
                }
                if let Some(n) = u["cache_read_input_tokens"].as_u64() {
                    self.usage.cache_read_input_tokens = Some(n);
                }
                if let Some(n) = u["cache_creation_input_tokens"].as_u64() {
                    self.usage.cache_creation_input_tokens = Some(n);
                }
            }
            "message_stop" => {
                let finish = self.finish.unwrap_or(FinishReason::Stop);
                self.choice(Delta::default(), Some(finish), out);
                let usage: OaUsage = openai_usage(&self.usage);
                out.push(StreamItem::Usage(usage));
                out.push(StreamItem::Done);
                self.done = true;
            }
            "error" => {
                let message = v["error"]["message"].as_str().unwrap_or("upstream error");
                self.fail_with(StreamError(message.to_owned()), out);
            }
            _ => {}
        }
    }
}

fn tool_piece(index: u32, id: Option<String>, name: Option<String>, args: String) -> Delta {
    Delta {
        tool_calls: Some(vec![ToolCallChunk {
            index,
            kind: id.is_some().then_some(FunctionType),
            id,
            function: Some(FunctionCallChunk {
                name,
                arguments: Some(args),
            }),
        }]),
        ..Delta::default()
    }
}

impl StreamTranslate for ChatTranslator {
    type Input = Bytes;
    type Error = StreamError;

    fn push(&mut self, input: Bytes, out: &mut Vec<StreamItem>) {
        if self.done {
            return;
        }
        self.buf.extend_from_slice(&input);
        while let Some(nl) = memchr_newline(&self.buf) {
            let line = self.buf.split_to(nl + 1);
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(data) = line.strip_prefix(b"data:") {
                match serde_json::from_slice::<Value>(data.trim_ascii_start()) {
                    Ok(v) => self.event(&v, out),
                    Err(e) => {
                        let e = StreamError(format!(
                            "the upstream sent an event that is not JSON: {e}"
                        ));
                        self.fail_with(e, out);
                    }
                }
            }
            if self.done {
                self.buf.clear();
                return;
            }
        }
        if self.buf.len() > MAX_LINE_BYTES {
            self.buf.advance(self.buf.len());
            let e = StreamError(format!(
                "the upstream sent a line over {MAX_LINE_BYTES} bytes"
            ));
            self.fail_with(e, out);
        }
    }

    fn fail(&mut self, error: StreamError, out: &mut Vec<StreamItem>) {
        self.fail_with(error, out);
    }

    fn finish(&mut self, out: &mut Vec<StreamItem>) {
        if !self.done {
            let e = StreamError("the upstream stream ended before message_stop".into());
            self.fail_with(e, out);
        }
    }

    fn is_finished(&self) -> bool {
        self.done
    }

    fn failure(&self) -> Option<&StreamError> {
        self.failure.as_ref()
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}
