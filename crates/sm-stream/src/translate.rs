//! Layer 4: the per-stream translator that turns records into OpenAI chunks.

use openai_types::Usage;
use openai_types::chat::{
    ChunkChoice, Delta, FinishReason, FunctionCallChunk, FunctionType, Role, ToolCallChunk,
};
use openai_types::stream::{OutputShape, SseWriter, StreamItem};

use crate::Error;
use crate::dialect::{DialectKind, DialectState};
use crate::frame::{FrameDecoder, SmEvent};
use crate::record::{Record, RecordReader};
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

/// Per-stream settings.
#[derive(Debug, Clone)]
pub struct TranslatorConfig {
    /// The `id` of every chunk (e.g. `chatcmpl-…`).
    pub id: String,
    /// The `model` of every chunk.
    pub model: String,
    /// The `created` of every chunk, Unix seconds.
    pub created: u64,
    /// The container's dialect, or [`DialectKind::Auto`] to detect it from the
    /// first record.
    pub dialect: DialectKind,
    /// Reasoning split.
    pub reasoning: ReasoningMode,
    /// Emit a final usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Prompt tokens to report when the upstream reports none (an estimate
    /// made by the caller; `usage.estimated` is then set).
    pub prompt_tokens_estimate: u64,
    /// Limit on one record, in bytes.
    pub max_record_bytes: usize,
}

impl Default for TranslatorConfig {
    fn default() -> Self {
        Self {
            id: "chatcmpl-0".into(),
            model: String::new(),
            created: 0,
            dialect: DialectKind::Auto,
            reasoning: ReasoningMode::Off,
            include_usage: false,
            prompt_tokens_estimate: 0,
            max_record_bytes: crate::record::DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// Upstream said `[DONE]` or the end came: no more input is read.
    Closed,
}

#[derive(Debug)]
struct ChoiceState {
    role_sent: bool,
    finished: bool,
    think: Option<ThinkSplitter>,
    /// (upstream key, dense index) of tool calls seen.
    tools: Vec<(ToolKey, u32)>,
    last_tool: Option<u32>,
}

/// How an upstream identifies a tool call across fragments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToolKey {
    Index(u32),
    Id(String),
}

/// A stream translator: one instance per response stream.
///
/// Feed it event-stream bytes ([`Translator::push_event_stream`]) or payload
/// bytes already decoded by the AWS SDK ([`Translator::push_payload`]), then
/// call [`Translator::finish`] at end of input. Output items are appended to
/// the `out` vector of each call. After an [`StreamItem::Error`] or
/// [`StreamItem::Done`] the translator ignores further input.
#[derive(Debug)]
pub struct Translator {
    cfg: TranslatorConfig,
    frames: FrameDecoder,
    records: RecordReader,
    dialect: DialectState,
    choices: Vec<ChoiceState>,
    upstream_usage: Option<Usage>,
    generated: u64,
    phase: Phase,
    ended: bool,
    error: Option<Error>,
}

impl Translator {
    /// A translator for one stream.
    pub fn new(cfg: TranslatorConfig) -> Self {
        Self {
            frames: FrameDecoder::new(),
            records: RecordReader::new(cfg.max_record_bytes),
            dialect: DialectState::new(cfg.dialect),
            choices: Vec::new(),
            upstream_usage: None,
            generated: 0,
            phase: Phase::Open,
            ended: false,
            error: None,
            cfg,
        }
    }

    /// The stream's settings (id, model, created…).
    pub fn config(&self) -> &TranslatorConfig {
        &self.cfg
    }

    /// An SSE writer for this stream's id, model and `created`.
    pub fn sse_writer(&self, shape: OutputShape) -> SseWriter {
        SseWriter::new(&self.cfg.id, &self.cfg.model, self.cfg.created, shape)
    }

    /// Whether the last item ([`StreamItem::Done`] or [`StreamItem::Error`])
    /// has been emitted.
    pub fn is_finished(&self) -> bool {
        self.ended
    }

    /// The error that ended the stream, if one did.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The dialect in use (after detection).
    pub fn dialect(&self) -> DialectKind {
        self.dialect.kind()
    }

    /// Usage so far: the upstream's where it reported any, else counted
    /// (`estimated` set).
    pub fn usage(&self) -> Usage {
        match &self.upstream_usage {
            Some(u) => {
                let mut u = u.clone();
                if u.prompt_tokens == 0 {
                    u.prompt_tokens = self.cfg.prompt_tokens_estimate;
                    u.estimated = true;
                }
                u.total_tokens = u.prompt_tokens + u.completion_tokens;
                u
            }
            None => {
                let mut u = Usage::new(self.cfg.prompt_tokens_estimate, self.generated);
                u.estimated = true;
                u
            }
        }
    }

    /// Feeds raw `application/vnd.amazon.eventstream` bytes.
    pub fn push_event_stream(&mut self, bytes: &[u8], out: &mut Vec<StreamItem>) {
        if self.ended {
            return;
        }
        self.frames.push(bytes);
        loop {
            match self.frames.next_event() {
                Ok(Some(event)) => {
                    self.push_event(event, out);
                    if self.ended {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => return self.fail(e, out),
            }
        }
    }

    /// Feeds one decoded SageMaker event (from the AWS SDK or
    /// [`FrameDecoder`]).
    pub fn push_event(&mut self, event: SmEvent, out: &mut Vec<StreamItem>) {
        match event {
            SmEvent::PayloadPart(bytes) => self.push_payload_bytes(bytes, out),
            other => {
                if let Some(e) = other.as_error() {
                    self.fail(e, out);
                }
            }
        }
    }

    /// Feeds `PayloadPart` bytes.
    pub fn push_payload(&mut self, bytes: &[u8], out: &mut Vec<StreamItem>) {
        if self.ended || self.phase == Phase::Closed {
            return;
        }
        self.push_payload_bytes(bytes::Bytes::copy_from_slice(bytes), out);
    }

    /// Feeds `PayloadPart` bytes without copying them (the AWS SDK hands out
    /// [`bytes::Bytes`] in its `Blob`s).
    pub fn push_payload_bytes(&mut self, bytes: bytes::Bytes, out: &mut Vec<StreamItem>) {
        if self.ended || self.phase == Phase::Closed {
            return;
        }
        self.records.push_bytes(bytes);
        loop {
            match self.records.next_record() {
                Ok(Some(r)) => {
                    if let Err(e) = self.record(r, out) {
                        return self.fail(e, out);
                    }
                    if self.phase == Phase::Closed {
                        return self.close(out);
                    }
                }
                Ok(None) => return,
                Err(e) => return self.fail(e, out),
            }
        }
    }

    /// Reports an error that ended the upstream stream (e.g. a transport error
    /// of the AWS SDK). Emits the error item unless the stream already ended.
    pub fn push_error(&mut self, error: Error, out: &mut Vec<StreamItem>) {
        self.fail(error, out);
    }

    /// End of input. Emits whatever the last records hold, then the usage
    /// chunk (if asked for) and [`StreamItem::Done`], or an error item if the
    /// stream was cut short.
    pub fn finish(&mut self, out: &mut Vec<StreamItem>) {
        if self.ended {
            return;
        }
        if self.frames.has_partial() {
            return self.fail(Error::Truncated("partial event-stream frame".into()), out);
        }
        if self.phase == Phase::Open {
            match self.records.finish() {
                Ok(records) => {
                    for r in records {
                        if let Err(e) = self.record(r, out) {
                            return self.fail(e, out);
                        }
                        if self.phase == Phase::Closed {
                            break;
                        }
                    }
                }
                Err(e) => return self.fail(e, out),
            }
        }
        if self.phase == Phase::Open {
            let mut dialect = std::mem::take(&mut self.dialect);
            dialect.on_end(&mut Emitter { t: self, out });
            self.dialect = dialect;
        }
        if self.phase == Phase::Open {
            let unfinished = self.choices.is_empty() || self.choices.iter().any(|c| !c.finished);
            if unfinished {
                return self.fail(Error::Truncated("no finish reason received".into()), out);
            }
        }
        self.close(out);
    }

    fn record(&mut self, record: Record, out: &mut Vec<StreamItem>) -> Result<(), Error> {
        match record {
            Record::Done => {
                self.phase = Phase::Closed;
                Ok(())
            }
            Record::Data {
                bytes,
                framing,
                event,
            } => {
                let mut dialect = std::mem::take(&mut self.dialect);
                let r = dialect.record(
                    &bytes,
                    framing,
                    event.as_deref(),
                    &mut Emitter { t: self, out },
                );
                self.dialect = dialect;
                r
            }
        }
    }

    fn fail(&mut self, error: Error, out: &mut Vec<StreamItem>) {
        if self.ended {
            return;
        }
        out.push(StreamItem::Error(error.to_openai()));
        self.error = Some(error);
        self.ended = true;
        self.phase = Phase::Closed;
    }

    /// Finishes every open choice, then usage and `[DONE]`.
    fn close(&mut self, out: &mut Vec<StreamItem>) {
        if self.ended {
            return;
        }
        self.phase = Phase::Closed;
        for i in 0..self.choices.len() {
            if !self.choices[i].finished {
                let reason = if self.choices[i].tools.is_empty() {
                    FinishReason::Stop
                } else {
                    FinishReason::ToolCalls
                };
                Emitter { t: self, out }.finish(i as u32, reason);
            }
        }
        if self.choices.is_empty() {
            // An empty but complete answer still gets its role and finish.
            Emitter { t: self, out }.finish(0, FinishReason::Stop);
        }
        if self.cfg.include_usage {
            out.push(StreamItem::Usage(self.usage()));
        }
        out.push(StreamItem::Done);
        self.ended = true;
    }

    /// Builds the typed chunk an item stands for (`None` for `Done` and
    /// errors).
    pub fn to_chunk(&self, item: &StreamItem) -> Option<openai_types::chat::ChatCompletionChunk> {
        let (choices, usage) = match item {
            StreamItem::Choice(c) => (vec![c.clone()], None),
            StreamItem::Usage(u) => (Vec::new(), Some(u.clone())),
            StreamItem::Error(_) | StreamItem::Done => return None,
        };
        Some(openai_types::chat::ChatCompletionChunk {
            id: self.cfg.id.clone(),
            object: Default::default(),
            created: self.cfg.created,
            model: self.cfg.model.clone(),
            choices,
            usage,
            system_fingerprint: None,
            service_tier: None,
        })
    }
}

/// What dialects write to: normalized generation events.
#[derive(Debug)]
pub(crate) struct Emitter<'t> {
    t: &'t mut Translator,
    out: &'t mut Vec<StreamItem>,
}

impl Emitter<'_> {
    fn choice(&mut self, index: u32) -> &mut ChoiceState {
        let i = index as usize;
        while self.t.choices.len() <= i {
            let think = match self.t.cfg.reasoning {
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
                        self.t.cfg.id.trim_start_matches("chatcmpl-"),
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
        self.t.phase = Phase::Closed;
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
