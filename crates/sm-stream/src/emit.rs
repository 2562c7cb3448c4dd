//! Layer 3½: what dialects write to. An [`Emitter`] turns normalized
//! generation events (text, reasoning, tool-call fragments, finishes,
//! usage) into OpenAI stream items, keeping each choice's state: its role
//! sent once, its reasoning split, its tool calls numbered densely. The
//! translator owns a [`Generation`] and lends it to its dialect.

use openai_types::Usage;
use openai_types::chat::{
    ChunkChoice, Delta, FinishReason, FunctionCallChunk, FunctionType, Role, ToolCallChunk,
};
use openai_types::stream::StreamItem;

use crate::think::{Part, ThinkSplitter};

/// How reasoning text written inline as `<think>…</think>` is treated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReasoningMode {
    /// Leave the text as it is.
    #[default]
    Off,
    /// Move `<think>…</think>` at the start of the output into
    /// `delta.reasoning_content`.
    Tags,
    /// As `Tags`, but the output begins inside the reasoning (the chat
    /// template already wrote `<think>`, as DeepSeek-R1 distills do).
    TagsStartInReasoning,
}

/// A stream's generation so far: its choices, the usage the upstream
/// reported, the tokens counted.
#[derive(Debug)]
pub(crate) struct Generation {
    /// The stream's id (tool-call ids are made from it).
    id: String,
    reasoning: ReasoningMode,
    pub(crate) choices: Vec<ChoiceState>,
    pub(crate) upstream_usage: Option<Usage>,
    pub(crate) generated: u64,
    /// Upstream said `[DONE]` or the end came: no more input is read.
    pub(crate) closed: bool,
}

impl Generation {
    pub(crate) fn new(id: &str, reasoning: ReasoningMode) -> Self {
        Self {
            id: id.to_owned(),
            reasoning,
            choices: Vec::new(),
            upstream_usage: None,
            generated: 0,
            closed: false,
        }
    }
}

#[derive(Debug)]
pub(crate) struct ChoiceState {
    role_sent: bool,
    pub(crate) finished: bool,
    think: Option<ThinkSplitter>,
    /// (upstream key, dense index) of tool calls seen.
    pub(crate) tools: Vec<(ToolKey, u32)>,
    last_tool: Option<u32>,
}

/// How an upstream identifies a tool call across fragments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToolKey {
    Index(u32),
    Id(String),
}

/// What dialects write to: normalized generation events.
#[derive(Debug)]
pub(crate) struct Emitter<'t> {
    t: &'t mut Generation,
    out: &'t mut Vec<StreamItem>,
}

impl<'t> Emitter<'t> {
    /// Writes `generation`'s events to `out`.
    pub(crate) fn new(t: &'t mut Generation, out: &'t mut Vec<StreamItem>) -> Self {
        Self { t, out }
    }

    fn choice(&mut self, index: u32) -> &mut ChoiceState {
        let i = index as usize;
        while self.t.choices.len() <= i {
            let think = match self.t.reasoning {
                ReasoningMode::Off => None,
                ReasoningMode::Tags => Some(ThinkSplitter::new(false)),
                ReasoningMode::TagsStartInReasoning => Some(ThinkSplitter::new(true)),
            };
            self.t.choices.push(ChoiceState {
                role_sent: false,
                finished: false,
                think,
                tools: Vec::new(),
                last_tool: None,
            });
        }
        &mut self.t.choices[i]
    }

    fn emit(&mut self, index: u32, mut delta: Delta, finish: Option<FinishReason>) {
        let c = self.choice(index);
        if !c.role_sent {
            c.role_sent = true;
            delta.role = Some(Role::Assistant);
        }
        if finish.is_some() {
            c.finished = true;
        }
        self.out.push(StreamItem::Choice(ChunkChoice {
            index,
            delta,
            logprobs: None,
            finish_reason: finish,
        }));
    }

    /// Counts one generated token (for estimated usage).
    pub(crate) fn count_token(&mut self) {
        self.t.generated += 1;
    }

    /// Generated answer text (reasoning split applied).
    pub(crate) fn text(&mut self, index: u32, text: &str) {
        if text.is_empty() {
            return;
        }
        let c = self.choice(index);
        if c.finished {
            return;
        }
        match c.think.take() {
            None => self.emit(
                index,
                Delta {
                    content: Some(text.to_owned()),
                    ..Delta::default()
                },
                None,
            ),
            Some(mut think) => {
                think.push(text, &mut |part, s| self.part(index, part, s));
                self.choice(index).think = Some(think);
            }
        }
    }

    fn part(&mut self, index: u32, part: Part, s: &str) {
        let delta = match part {
            Part::Content => Delta {
                content: Some(s.to_owned()),
                ..Delta::default()
            },
            Part::Reasoning => Delta {
                reasoning_content: Some(s.to_owned()),
                ..Delta::default()
            },
        };
        self.emit(index, delta, None);
    }

    /// Reasoning text the upstream already separated.
    pub(crate) fn reasoning(&mut self, index: u32, text: &str) {
        if text.is_empty() || self.choice(index).finished {
            return;
        }
        self.emit(
            index,
            Delta {
                reasoning_content: Some(text.to_owned()),
                ..Delta::default()
            },
            None,
        );
    }

    /// Refusal text.
    pub(crate) fn refusal(&mut self, index: u32, text: &str) {
        if text.is_empty() || self.choice(index).finished {
            return;
        }
        self.emit(
            index,
            Delta {
                refusal: Some(text.to_owned()),
                ..Delta::default()
            },
            None,
        );
    }

    /// A tool-call fragment. `key` identifies the call upstream (its index, or
    /// its id when the upstream sends no index); `None` continues the last one.
    pub(crate) fn tool_call(
        &mut self,
        index: u32,
        key: Option<ToolKey>,
        id: Option<&str>,
        name: Option<&str>,
        arguments: Option<&str>,
    ) {
        let c = self.choice(index);
        if c.finished {
            return;
        }
        let existing = match &key {
            Some(k) => c.tools.iter().find(|(kk, _)| kk == k).map(|(_, d)| *d),
            None => c.last_tool,
        };
        let (dense, first) = match existing {
            Some(d) => (d, false),
            None => {
                let d = c.tools.len() as u32;
                let k = key.unwrap_or(ToolKey::Index(u32::MAX - d));
                c.tools.push((k, d));
                (d, true)
            }
        };
        c.last_tool = Some(dense);
        let call = ToolCallChunk {
            index: dense,
            id: id.map(str::to_owned).or_else(|| {
                first.then(|| {
                    format!(
                        "call_{}_{}",
                        self.t.id.trim_start_matches("chatcmpl-"),
                        dense
                    )
                })
            }),
            kind: first.then_some(FunctionType),
            function: Some(FunctionCallChunk {
                name: name.map(str::to_owned),
                arguments: arguments
                    .map(str::to_owned)
                    .or_else(|| first.then(String::new)),
            }),
        };
        self.emit(
            index,
            Delta {
                tool_calls: Some(vec![call]),
                ..Delta::default()
            },
            None,
        );
    }

    /// The choice is complete.
    pub(crate) fn finish(&mut self, index: u32, reason: FinishReason) {
        let c = self.choice(index);
        if c.finished {
            return;
        }
        if let Some(mut think) = c.think.take() {
            think.finish(&mut |part, s| self.part(index, part, s));
        }
        self.emit(index, Delta::default(), Some(reason));
    }

    /// Usage reported by the upstream.
    pub(crate) fn usage(&mut self, usage: Usage) {
        self.t.upstream_usage = Some(usage);
    }

    /// The raw bytes were `[DONE]`-equivalent for this dialect.
    pub(crate) fn done(&mut self) {
        self.t.closed = true;
    }
}

/// Maps the finish reasons upstreams use to OpenAI's. `None` for `"error"`.
pub(crate) fn map_finish_reason(s: &str) -> Option<FinishReason> {
    Some(match s {
        "length" | "max_tokens" | "model_length" => FinishReason::Length,
        "tool_calls" | "tool_use" => FinishReason::ToolCalls,
        "function_call" => FinishReason::FunctionCall,
        "content_filter" | "guardrail_intervened" => FinishReason::ContentFilter,
        "error" => return None,
        // stop, eos, eos_token, stop_sequence, end_turn, and anything new.
        _ => FinishReason::Stop,
    })
}
