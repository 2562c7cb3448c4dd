//! The Messages stream: chat stream items written as Anthropic's event
//! sequence ([`EventWriter`]), and an event sequence read back into a
//! whole message ([`Accumulator`]).
//!
//! The sequence is `message_start`, `ping`, then per content block
//! `content_block_start`, its deltas (`text_delta`, `thinking_delta`,
//! `input_json_delta`) and `content_block_stop`, then `message_delta`
//! (stop reason and usage) and `message_stop`. A failure is one `error`
//! event, the stream's last.

use bytes::{BufMut, BytesMut};
use openai_types::chat::{FinishReason, ThinkingBlock};
use openai_types::stream::StreamItem;
use serde::Serialize;
use std::io::Write as _;

use serde_json::Value;

use crate::chat::{stop_reason, tool_input};
use crate::error::ErrorResponse;
use crate::message::{ContentBlock, Message, StopReason, Usage};

/// What the block being written is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// Encrypted thinking (written whole, at once).
    Redacted,
    /// A tool call: its chat index.
    Tool(u32),
}

/// Writes chat stream items (choice 0) as Messages events.
///
/// Tool call blocks stay open until the message ends, so a backend that
/// interleaves two calls' argument pieces (or text between them) has each
/// piece written to its own block's index.
#[derive(Debug)]
pub struct EventWriter {
    start: Option<Message>,
    /// Blocks written so far: what each index is.
    blocks: Vec<Open>,
    /// Indexes started and not yet stopped.
    open: Vec<usize>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    ended: bool,
}

impl EventWriter {
    /// A writer for message `id` of `model`; `input_tokens` is the prompt
    /// estimate `message_start` carries (the exact count follows in
    /// `message_delta`).
    pub fn new(id: &str, model: &str, input_tokens: u64) -> Self {
        let usage = Usage {
            input_tokens,
            output_tokens: 0,
            cache_creation_input_tokens: Some(0),
            cache_read_input_tokens: Some(0),
        };
        Self {
            start: Some(Message::empty(id, model, usage)),
            blocks: Vec::new(),
            open: Vec::new(),
            finish: None,
            usage: None,
            ended: false,
        }
    }

    /// Appends the events `item` produces to `out`.
    pub fn write(&mut self, item: &StreamItem, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        if let Some(m) = self.start.take() {
            out.put_slice(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":");
            json_to(out, &m);
            out.put_slice(b"}\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\n");
        }
        match item {
            StreamItem::Choice(c) if c.index == 0 => {
                let d = &c.delta;
                if let Some(r) = d.reasoning_content.as_deref().filter(|r| !r.is_empty()) {
                    let i = self.block(Open::Thinking, out);
                    delta(out, i, "thinking_delta", "thinking", r);
                }
                for b in d.thinking_blocks.iter().flatten() {
                    self.signed(b, out);
                }
                if let Some(t) = d.content.as_deref().filter(|t| !t.is_empty()) {
                    let i = self.block(Open::Text, out);
                    delta(out, i, "text_delta", "text", t);
                }
                if let Some(t) = d.refusal.as_deref().filter(|t| !t.is_empty()) {
                    let i = self.block(Open::Text, out);
                    delta(out, i, "text_delta", "text", t);
                }
                for call in d.tool_calls.iter().flatten() {
                    let f = call.function.as_ref();
                    let i = self.tool(
                        call.index,
                        call.id.as_deref(),
                        f.and_then(|f| f.name.as_deref()),
                        out,
                    );
                    if let Some(args) = f.and_then(|f| f.arguments.as_deref())
                        && !args.is_empty()
                    {
                        delta(out, i, "input_json_delta", "partial_json", args);
                    }
                }
                if c.finish_reason.is_some() {
                    self.finish = c.finish_reason;
                }
            }
            StreamItem::Choice(_) => {}
            StreamItem::Usage(u) => self.usage = Some(Usage::from_openai(u)),
            StreamItem::Done => {
                self.close(true, out);
                let stop = self.finish.map(stop_reason).unwrap_or(StopReason::EndTurn);
                let u = self.usage.unwrap_or_default();
                out.put_slice(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
                json_to(out, &stop);
                let _ = write!(
                    (&mut *out).writer(),
                    ",\"stop_sequence\":null}},\"usage\":{{\"input_tokens\":{},\"output_tokens\":{},\"cache_creation_input_tokens\":{},\"cache_read_input_tokens\":{}}}}}\n\n",
                    u.input_tokens,
                    u.output_tokens,
                    u.cache_creation_input_tokens.unwrap_or(0),
                    u.cache_read_input_tokens.unwrap_or(0),
                );
                out.put_slice(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
                self.ended = true;
            }
            StreamItem::Error(e) => {
                event(out, "error", &ErrorResponse::from_openai(0, e));
                self.ended = true;
            }
        }
    }

    /// A signed reasoning piece: thinking text and its signature (which
    /// ends the thinking block), or a redacted block, written whole.
    fn signed(&mut self, b: &ThinkingBlock, out: &mut BytesMut) {
        match b {
            ThinkingBlock::Thinking {
                thinking,
                signature,
            } => {
                if !thinking.is_empty() {
                    let i = self.block(Open::Thinking, out);
                    delta(out, i, "thinking_delta", "thinking", thinking);
                }
                if let Some(sig) = signature {
                    let i = self.block(Open::Thinking, out);
                    delta(out, i, "signature_delta", "signature", sig);
                    self.close(false, out);
                }
            }
            ThinkingBlock::RedactedThinking { data } => {
                self.close(false, out);
                self.start_block(Open::Redacted, out);
                out.put_slice(br#"{"type":"redacted_thinking","data":"#);
                json_to(out, data);
                out.put_slice(b"}}\n\n");
                self.close(false, out);
            }
        }
    }

    /// The index of an open block of `kind`, started when the last open
    /// block is not one (other text and thinking blocks stopped; tool
    /// calls stay open).
    fn block(&mut self, kind: Open, out: &mut BytesMut) -> usize {
        if let Some(&i) = self.open.last()
            && self.blocks[i] == kind
        {
            return i;
        }
        self.close(false, out);
        let block: &[u8] = match kind {
            Open::Text => br#"{"type":"text","text":""}"#,
            Open::Thinking => br#"{"type":"thinking","thinking":"","signature":""}"#,
            Open::Tool(_) | Open::Redacted => unreachable!("started in `tool` and `signed`"),
        };
        let i = self.start_block(kind, out);
        out.put_slice(block);
        out.put_slice(b"}\n\n");
        i
    }

    /// The index of tool call `index`'s block, started on its first piece
    /// (open text and thinking blocks stopped). Tool blocks stay open
    /// until the message ends, so a call's pieces always reach its block.
    fn tool(
        &mut self,
        index: u32,
        id: Option<&str>,
        name: Option<&str>,
        out: &mut BytesMut,
    ) -> usize {
        if let Some(&i) = self
            .open
            .iter()
            .find(|&&i| self.blocks[i] == Open::Tool(index))
        {
            return i;
        }
        self.close(false, out);
        let i = self.start_block(Open::Tool(index), out);
        out.put_slice(br#"{"type":"tool_use","id":"#);
        json_to(out, id.unwrap_or_default());
        out.put_slice(br#","name":"#);
        json_to(out, name.unwrap_or_default());
        out.put_slice(b",\"input\":{}}}\n\n");
        i
    }

    /// Starts block `i` of `kind`: writes `content_block_start` up to its
    /// `content_block`, which the caller writes and closes (`}\n\n`).
    fn start_block(&mut self, kind: Open, out: &mut BytesMut) -> usize {
        let i = self.blocks.len();
        self.blocks.push(kind);
        self.open.push(i);
        let _ = write!(
            (&mut *out).writer(),
            "event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":{i},\"content_block\":"
        );
        i
    }

    /// Stops the open blocks (`tools`: tool calls too).
    fn close(&mut self, tools: bool, out: &mut BytesMut) {
        let blocks = &self.blocks;
        let (stop, keep): (Vec<usize>, Vec<usize>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|&i| tools || !matches!(blocks[i], Open::Tool(_)));
        self.open = keep;
        for i in stop {
            let _ = write!(
                (&mut *out).writer(),
                "event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":{i}}}\n\n"
            );
        }
    }
}

/// A `content_block_delta` whose delta is `{"type": kind, field: text}`,
/// written without building a JSON value (the stream's hot path).
fn delta(out: &mut BytesMut, index: usize, kind: &str, field: &str, text: &str) {
    out.put_slice(
        b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
    );
    let _ = write!((&mut *out).writer(), "{index}");
    out.put_slice(b",\"delta\":{\"type\":\"");
    out.put_slice(kind.as_bytes());
    out.put_slice(b"\",\"");
    out.put_slice(field.as_bytes());
    out.put_slice(b"\":");
    json_to(out, text);
    out.put_slice(b"}}\n\n");
}

/// Appends `v` as JSON (serializing into memory cannot fail).
fn json_to<T: Serialize + ?Sized>(out: &mut BytesMut, v: &T) {
    let _ = serde_json::to_writer((&mut *out).writer(), v);
}

/// Appends `event: name` and its JSON data.
fn event<T: Serialize>(out: &mut BytesMut, name: &str, data: &T) {
    out.put_slice(b"event: ");
    out.put_slice(name.as_bytes());
    out.put_slice(b"\ndata: ");
    // Serializing a JSON value into memory cannot fail.
    let _ = serde_json::to_writer((&mut *out).writer(), data);
    out.put_slice(b"\n\n");
}

/// Builds the whole message a stream of events describes, as the SDKs do:
/// feed each event's data with [`Accumulator::push`].
#[derive(Debug, Default)]
pub struct Accumulator {
    message: Option<Message>,
    json: Vec<String>,
    error: Option<ErrorResponse>,
}

impl Accumulator {
    /// Feeds one event's data (the JSON after `data: `).
    pub fn push(&mut self, data: &Value) -> Result<(), String> {
        let kind = data["type"].as_str().unwrap_or_default();
        match kind {
            "message_start" => {
                let m: Message = serde_json::from_value(data["message"].clone())
                    .map_err(|e| format!("message_start: {e}"))?;
                self.message = Some(m);
            }
            "content_block_start" => {
                let b: ContentBlock = serde_json::from_value(data["content_block"].clone())
                    .map_err(|e| format!("content_block_start: {e}"))?;
                let m = self.message()?;
                if index(data)? != m.content.len() {
                    return Err("content_block_start out of order".into());
                }
                m.content.push(b);
                self.json.push(String::new());
            }
            "content_block_delta" => {
                let i = index(data)?;
                let d = &data["delta"];
                let text = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
                let m = self
                    .message
                    .as_mut()
                    .ok_or("an event before message_start")?;
                match (m.content.get_mut(i), d["type"].as_str()) {
                    (Some(ContentBlock::Text { text: t }), Some("text_delta")) => {
                        t.push_str(&text("text"));
                    }
                    (Some(ContentBlock::Thinking { thinking, .. }), Some("thinking_delta")) => {
                        thinking.push_str(&text("thinking"));
                    }
                    (Some(ContentBlock::Thinking { signature, .. }), Some("signature_delta")) => {
                        signature.push_str(&text("signature"));
                    }
                    (Some(ContentBlock::ToolUse { .. }), Some("input_json_delta")) => {
                        self.json[i].push_str(&text("partial_json"));
                    }
                    _ => return Err(format!("delta {d} does not fit block {i}")),
                }
            }
            "content_block_stop" => {
                let i = index(data)?;
                let json = std::mem::take(&mut self.json[i]);
                if let Some(ContentBlock::ToolUse { input, .. }) =
                    self.message()?.content.get_mut(i)
                    && !json.is_empty()
                {
                    *input = tool_input(&json);
                }
            }
            "message_delta" => {
                let m = self.message()?;
                m.stop_reason = serde_json::from_value(data["delta"]["stop_reason"].clone())
                    .map_err(|e| format!("message_delta: {e}"))?;
                m.stop_sequence = data["delta"]["stop_sequence"].as_str().map(str::to_owned);
                let u = &data["usage"];
                let n = |k: &str| u[k].as_u64();
                if let Some(v) = n("output_tokens") {
                    m.usage.output_tokens = v;
                }
                if let Some(v) = n("input_tokens") {
                    m.usage.input_tokens = v;
                }
                if let Some(v) = n("cache_read_input_tokens") {
                    m.usage.cache_read_input_tokens = Some(v);
                }
                if let Some(v) = n("cache_creation_input_tokens") {
                    m.usage.cache_creation_input_tokens = Some(v);
                }
            }
            "error" => {
                self.error =
                    Some(serde_json::from_value(data.clone()).map_err(|e| format!("error: {e}"))?);
            }
            "message_stop" | "ping" => {}
            other => return Err(format!("unknown event type '{other}'")),
        }
        Ok(())
    }

    fn message(&mut self) -> Result<&mut Message, String> {
        self.message
            .as_mut()
            .ok_or_else(|| "an event before message_start".into())
    }

    /// The message so far, or the error that ended the stream.
    pub fn finish(self) -> Result<Message, ErrorResponse> {
        match (self.error, self.message) {
            (Some(e), _) => Err(e),
            (None, Some(m)) => Ok(m),
            (None, None) => Err(ErrorResponse::new(
                crate::error::ErrorKind::Api,
                "the stream ended before message_start",
            )),
        }
    }
}

fn index(data: &Value) -> Result<usize, String> {
    data["index"]
        .as_u64()
        .map(|i| i as usize)
        .ok_or_else(|| format!("no index in {data}"))
}
