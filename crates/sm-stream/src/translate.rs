//! Layer 4: the per-stream translator that turns records into OpenAI chunks.

use openai_types::Usage;
use openai_types::chat::FinishReason;
use openai_types::stream::{OutputShape, SseWriter, StreamItem};

use crate::Error;
use crate::dialect::{DialectKind, DialectState};
pub use crate::emit::ReasoningMode;
use crate::emit::{Emitter, Generation};
use crate::frame::{FrameDecoder, SmEvent};
use crate::record::{Record, RecordReader};

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
    generation: Generation,
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
            generation: Generation::new(&cfg.id, cfg.reasoning),
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
        match &self.generation.upstream_usage {
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
                let mut u = Usage::new(self.cfg.prompt_tokens_estimate, self.generation.generated);
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
        if self.ended || self.generation.closed {
            return;
        }
        self.push_payload_bytes(bytes::Bytes::copy_from_slice(bytes), out);
    }

    /// Feeds `PayloadPart` bytes without copying them (the AWS SDK hands out
    /// [`bytes::Bytes`] in its `Blob`s).
    pub fn push_payload_bytes(&mut self, bytes: bytes::Bytes, out: &mut Vec<StreamItem>) {
        if self.ended || self.generation.closed {
            return;
        }
        self.records.push_bytes(bytes);
        loop {
            match self.records.next_record() {
                Ok(Some(r)) => {
                    if let Err(e) = self.record(r, out) {
                        return self.fail(e, out);
                    }
                    if self.generation.closed {
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
        if !self.generation.closed {
            match self.records.finish() {
                Ok(records) => {
                    for r in records {
                        if let Err(e) = self.record(r, out) {
                            return self.fail(e, out);
                        }
                        if self.generation.closed {
                            break;
                        }
                    }
                }
                Err(e) => return self.fail(e, out),
            }
        }
        if !self.generation.closed {
            let mut dialect = std::mem::take(&mut self.dialect);
            dialect.on_end(&mut Emitter::new(&mut self.generation, out));
            self.dialect = dialect;
        }
        if !self.generation.closed {
            let unfinished = self.generation.choices.is_empty()
                || self.generation.choices.iter().any(|c| !c.finished);
            if unfinished {
                return self.fail(Error::Truncated("no finish reason received".into()), out);
            }
        }
        self.close(out);
    }

    fn record(&mut self, record: Record, out: &mut Vec<StreamItem>) -> Result<(), Error> {
        match record {
            Record::Done => {
                self.generation.closed = true;
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
                    &mut Emitter::new(&mut self.generation, out),
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
        self.generation.closed = true;
    }

    /// Finishes every open choice, then usage and `[DONE]`.
    fn close(&mut self, out: &mut Vec<StreamItem>) {
        if self.ended {
            return;
        }
        self.generation.closed = true;
        for i in 0..self.generation.choices.len() {
            if !self.generation.choices[i].finished {
                let reason = if self.generation.choices[i].tools.is_empty() {
                    FinishReason::Stop
                } else {
                    FinishReason::ToolCalls
                };
                Emitter::new(&mut self.generation, out).finish(i as u32, reason);
            }
        }
        if self.generation.choices.is_empty() {
            // An empty but complete answer still gets its role and finish.
            Emitter::new(&mut self.generation, out).finish(0, FinishReason::Stop);
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

/// What a [`Translator`] is fed through [`StreamTranslate`](openai_types::stream::StreamTranslate): bytes as the
/// transport hands them over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    /// Payload bytes already taken out of their frames (the AWS SDK's
    /// `PayloadPart`s, or an OpenAI-style upstream's SSE body).
    Payload(bytes::Bytes),
    /// Raw `application/vnd.amazon.eventstream` bytes.
    EventStream(bytes::Bytes),
}

impl openai_types::stream::StreamTranslate for Translator {
    type Input = Feed;
    type Error = Error;

    fn push(&mut self, input: Feed, out: &mut Vec<StreamItem>) {
        match input {
            Feed::Payload(b) => self.push_payload_bytes(b, out),
            Feed::EventStream(b) => self.push_event_stream(&b, out),
        }
    }

    fn fail(&mut self, error: Error, out: &mut Vec<StreamItem>) {
        self.push_error(error, out);
    }

    fn finish(&mut self, out: &mut Vec<StreamItem>) {
        Translator::finish(self, out);
    }

    fn is_finished(&self) -> bool {
        Translator::is_finished(self)
    }

    fn failure(&self) -> Option<&Error> {
        self.error()
    }
}
