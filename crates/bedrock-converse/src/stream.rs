//! `converse-stream` events to OpenAI stream items: one [`StreamTranslator`]
//! per stream.

use openai_types::Usage;
use openai_types::chat::{
    ChunkChoice, Delta, FinishReason, FunctionCallChunk, FunctionType, Role as OaRole,
    ThinkingBlock, ToolCallChunk,
};
use openai_types::stream::{OutputShape, SseWriter, StreamItem};

use crate::Error;
use crate::event::EventDecoder;
pub use crate::response::ReasoningOutput;
use crate::response::{finish_reason, usage};
use crate::wire::{BlockDelta, StreamEvent};
use openai_types::tokens::TokenCounter;

/// Per-stream settings.
#[derive(Debug, Clone, Default)]
pub struct StreamConfig {
    /// The `id` of every chunk.
    pub id: String,
    /// The `model` of every chunk.
    pub model: String,
    /// The `created` of every chunk.
    pub created: u64,
    /// Emit the final usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Where reasoning goes.
    pub reasoning: ReasoningOutput,
    /// Prompt tokens to report if Bedrock sends no `metadata`.
    pub prompt_tokens_estimate: u64,
    /// The tool standing in for structured output
    /// ([`crate::request::structured_output_fallback`]): its input streams
    /// as content, and the model's other text is dropped.
    pub answer_tool: Option<String>,
}

/// A stream translator. Feed it events ([`StreamTranslator::push_event`]) or
/// raw event-stream bytes ([`StreamTranslator::push_bytes`]), then call
/// [`StreamTranslator::finish`] at end of input. Output items are appended to
/// `out`; after [`StreamItem::Done`] or [`StreamItem::Error`] input is
/// ignored.
#[derive(Debug)]
pub struct StreamTranslator {
    cfg: StreamConfig,
    decoder: EventDecoder,
    role_sent: bool,
    /// (content block index, dense tool-call index).
    tools: Vec<(u32, u32)>,
    think_open: bool,
    /// The content block carrying the answer tool's input.
    answer_block: Option<u32>,
    stopped: bool,
    usage: Option<Usage>,
    generated: TokenCounter,
    ended: bool,
    error: Option<Error>,
}

impl StreamTranslator {
    /// A translator for one stream.
    pub fn new(cfg: StreamConfig) -> Self {
        Self {
            cfg,
            decoder: EventDecoder::new(),
            role_sent: false,
            tools: Vec::new(),
            think_open: false,
            answer_block: None,
            stopped: false,
            usage: None,
            generated: TokenCounter::default(),
            ended: false,
            error: None,
        }
    }

    /// The stream's settings.
    pub fn config(&self) -> &StreamConfig {
        &self.cfg
    }

    /// An SSE writer for this stream's id, model and `created`.
    pub fn sse_writer(&self) -> SseWriter {
        SseWriter::new(
            &self.cfg.id,
            &self.cfg.model,
            self.cfg.created,
            OutputShape::Chat,
        )
    }

    /// Whether the last item has been emitted.
    pub fn is_finished(&self) -> bool {
        self.ended
    }

    /// The error that ended the stream, if one did.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Usage: Bedrock's (from `metadata`), else an estimate marked
    /// `estimated`.
    pub fn usage(&self) -> Usage {
        self.usage.clone().unwrap_or_else(|| {
            let mut u = Usage::new(self.cfg.prompt_tokens_estimate, self.generated.tokens());
            u.estimated = true;
            u
        })
    }

    /// Feeds raw `application/vnd.amazon.eventstream` bytes, cut anywhere.
    pub fn push_bytes(&mut self, bytes: &[u8], out: &mut Vec<StreamItem>) {
        if self.ended {
            return;
        }
        self.decoder.push(bytes);
        loop {
            match self.decoder.next_event() {
                Ok(Some(e)) => {
                    self.push_event(e, out);
                    if self.ended {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => return self.fail(e, out),
            }
        }
    }

    /// Feeds one event.
    pub fn push_event(&mut self, event: StreamEvent, out: &mut Vec<StreamItem>) {
        if self.ended {
            return;
        }
        match event {
            StreamEvent::MessageStart { .. } => self.role(out),
            StreamEvent::ContentBlockStart { index, tool_use } => {
                if let Some(t) = &tool_use
                    && self.cfg.answer_tool.as_ref() == Some(&t.name)
                {
                    self.answer_block = Some(index);
                    return;
                }
                if let Some(t) = tool_use {
                    self.close_think(out);
                    let dense = self.tool_index(index);
                    self.emit(
                        Delta {
                            tool_calls: Some(vec![ToolCallChunk {
                                index: dense,
                                id: Some(t.tool_use_id),
                                kind: Some(FunctionType),
                                function: Some(FunctionCallChunk {
                                    name: Some(t.name),
                                    arguments: Some(String::new()),
                                }),
                            }]),
                            ..Delta::default()
                        },
                        out,
                    );
                }
            }
            StreamEvent::ContentBlockDelta { index, delta } => self.delta(index, delta, out),
            StreamEvent::ContentBlockStop { .. } => self.close_think(out),
            StreamEvent::MessageStop { stop_reason } => {
                self.close_think(out);
                let mut reason = finish_reason(&stop_reason);
                if reason == FinishReason::ToolCalls && self.tools.is_empty() {
                    reason = FinishReason::Stop;
                }
                self.role(out);
                out.push(StreamItem::Choice(ChunkChoice {
                    index: 0,
                    delta: Delta::default(),
                    logprobs: None,
                    finish_reason: Some(reason),
                }));
                self.stopped = true;
            }
            StreamEvent::Metadata { usage: u } => {
                if let Some(u) = u {
                    self.usage = Some(usage(&u));
                }
            }
            StreamEvent::Exception { name, message } => {
                self.fail(Error::Upstream { name, message }, out)
            }
            StreamEvent::Unknown(_) => {}
        }
    }

    /// Reports an error that ended the upstream stream (a transport error).
    pub fn push_error(&mut self, error: Error, out: &mut Vec<StreamItem>) {
        self.fail(error, out);
    }

    /// End of input: the usage chunk (if asked for) and [`StreamItem::Done`],
    /// or an error item if the stream was cut short.
    pub fn finish(&mut self, out: &mut Vec<StreamItem>) {
        if self.ended {
            return;
        }
        if self.decoder.has_partial() {
            return self.fail(Error::Truncated("partial event-stream frame".into()), out);
        }
        if !self.stopped {
            return self.fail(
                Error::Truncated("the stream ended before messageStop".into()),
                out,
            );
        }
        if self.cfg.include_usage {
            out.push(StreamItem::Usage(self.usage()));
        }
        out.push(StreamItem::Done);
        self.ended = true;
    }

    fn text(&mut self, t: String, out: &mut Vec<StreamItem>) {
        if t.is_empty() {
            return;
        }
        self.generated.add(&t);
        self.close_think(out);
        self.emit(
            Delta {
                content: Some(t),
                ..Delta::default()
            },
            out,
        );
    }

    fn delta(&mut self, index: u32, delta: BlockDelta, out: &mut Vec<StreamItem>) {
        match delta {
            BlockDelta::ToolUseInput(t) if self.answer_block == Some(index) => self.text(t, out),
            BlockDelta::Text(_) if self.cfg.answer_tool.is_some() => {}
            BlockDelta::Text(t) => self.text(t, out),
            BlockDelta::ToolUseInput(input) => {
                self.close_think(out);
                self.generated.add(&input);
                let known = self.tools.iter().any(|(b, _)| *b == index);
                let dense = self.tool_index(index);
                // A fragment without a contentBlockStart still opens a call.
                let (id, kind) = if known {
                    (None, None)
                } else {
                    (
                        Some(format!("call_{}_{index}", self.cfg.id)),
                        Some(FunctionType),
                    )
                };
                self.emit(
                    Delta {
                        tool_calls: Some(vec![ToolCallChunk {
                            index: dense,
                            id,
                            kind,
                            function: Some(FunctionCallChunk {
                                name: None,
                                arguments: Some(input),
                            }),
                        }]),
                        ..Delta::default()
                    },
                    out,
                );
            }
            BlockDelta::ReasoningText(t) => {
                if t.is_empty() {
                    return;
                }
                self.generated.add(&t);
                match self.cfg.reasoning {
                    ReasoningOutput::Field => self.emit(
                        Delta {
                            reasoning_content: Some(t),
                            ..Delta::default()
                        },
                        out,
                    ),
                    ReasoningOutput::InlineThink => {
                        let t = if self.think_open {
                            t
                        } else {
                            self.think_open = true;
                            format!("<think>\n{t}")
                        };
                        self.emit(
                            Delta {
                                content: Some(t),
                                ..Delta::default()
                            },
                            out,
                        );
                    }
                    ReasoningOutput::Drop => {}
                }
            }
            // The signature follows its reasoning: passed on where the
            // reasoning is shown, for the client to send back.
            BlockDelta::ReasoningSignature(sig) if self.cfg.reasoning == ReasoningOutput::Field => {
                self.emit(
                    Delta {
                        thinking_blocks: Some(vec![ThinkingBlock::Thinking {
                            thinking: String::new(),
                            signature: Some(sig),
                        }]),
                        ..Delta::default()
                    },
                    out,
                );
            }
            BlockDelta::ReasoningSignature(_)
            | BlockDelta::ReasoningRedacted
            | BlockDelta::Other => {}
        }
    }

    fn tool_index(&mut self, block: u32) -> u32 {
        if let Some((_, d)) = self.tools.iter().find(|(b, _)| *b == block) {
            return *d;
        }
        let d = self.tools.len() as u32;
        self.tools.push((block, d));
        d
    }

    fn close_think(&mut self, out: &mut Vec<StreamItem>) {
        if self.think_open {
            self.think_open = false;
            self.emit(
                Delta {
                    content: Some("\n</think>\n\n".into()),
                    ..Delta::default()
                },
                out,
            );
        }
    }

    /// The first chunk: the role, with empty content as OpenAI sends it.
    fn role(&mut self, out: &mut Vec<StreamItem>) {
        if !self.role_sent {
            self.role_sent = true;
            out.push(StreamItem::Choice(ChunkChoice {
                index: 0,
                delta: Delta {
                    role: Some(OaRole::Assistant),
                    content: Some(String::new()),
                    ..Delta::default()
                },
                logprobs: None,
                finish_reason: None,
            }));
        }
    }

    fn emit(&mut self, delta: Delta, out: &mut Vec<StreamItem>) {
        self.role(out);
        out.push(StreamItem::Choice(ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason: None,
        }));
    }

    fn fail(&mut self, error: Error, out: &mut Vec<StreamItem>) {
        if self.ended {
            return;
        }
        out.push(StreamItem::Error(error.to_openai()));
        self.error = Some(error);
        self.ended = true;
    }
}

/// What a [`StreamTranslator`] is fed through
/// [`openai_types::stream::StreamTranslate`].
#[derive(Debug, Clone, PartialEq)]
pub enum Feed {
    /// An event the AWS SDK decoded (see the `sdk` module).
    Event(StreamEvent),
    /// Raw `application/vnd.amazon.eventstream` bytes.
    Frames(bytes::Bytes),
}

impl openai_types::stream::StreamTranslate for StreamTranslator {
    type Input = Feed;
    type Error = Error;

    fn push(&mut self, input: Feed, out: &mut Vec<StreamItem>) {
        match input {
            Feed::Event(e) => self.push_event(e, out),
            Feed::Frames(b) => self.push_bytes(&b, out),
        }
    }

    fn fail(&mut self, error: Error, out: &mut Vec<StreamItem>) {
        self.push_error(error, out);
    }

    fn finish(&mut self, out: &mut Vec<StreamItem>) {
        StreamTranslator::finish(self, out);
    }

    fn is_finished(&self) -> bool {
        StreamTranslator::is_finished(self)
    }

    fn failure(&self) -> Option<&Error> {
        self.error()
    }
}
