//! Streaming output shared by every backend: the items a translator emits
//! ([`StreamItem`]) and their server-sent-event bytes ([`SseWriter`]).

use bytes::{BufMut, BytesMut};

use crate::chat::ChunkChoice;
use crate::{ErrorResponse, Usage};

/// One unit of streamed output, in order. Backend translators (SageMaker,
/// Bedrock, …) emit these; [`SseWriter`] turns them into bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// A chunk with one choice.
    Choice(ChunkChoice),
    /// The final usage chunk (`choices: []`).
    Usage(Usage),
    /// The stream failed; this is its last item.
    Error(ErrorResponse),
    /// The stream is complete (`[DONE]`); this is its last item.
    Done,
}

/// The shape of the chunks written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputShape {
    /// `chat.completion.chunk`.
    #[default]
    Chat,
    /// Legacy `text_completion` chunks (`choices[].text`); reasoning and tool
    /// calls are left out.
    Completion,
}

/// Writes [`StreamItem`]s as `data: {…}\n\n` events, ending with
/// `data: [DONE]\n\n`.
///
/// The part of every chunk before `choices` (id, object, created, model) is
/// the same for the whole stream, so it is serialized once.
#[derive(Debug, Clone)]
pub struct SseWriter {
    prefix: Vec<u8>,
    shape: OutputShape,
}

impl SseWriter {
    /// A writer for one stream.
    pub fn new(id: &str, model: &str, created: u64, shape: OutputShape) -> Self {
        let mut prefix = Vec::with_capacity(96 + id.len() + model.len());
        prefix.extend_from_slice(b"data: {\"id\":");
        prefix.extend_from_slice(&json_bytes(&id));
        prefix.extend_from_slice(match shape {
            OutputShape::Chat => b",\"object\":\"chat.completion.chunk\",\"created\":",
            OutputShape::Completion => b",\"object\":\"text_completion\",\"created\":",
        });
        prefix.extend_from_slice(created.to_string().as_bytes());
        prefix.extend_from_slice(b",\"model\":");
        prefix.extend_from_slice(&json_bytes(&model));
        prefix.extend_from_slice(b",\"choices\":[");
        Self { prefix, shape }
    }

    /// Appends the bytes of one item to `out`.
    pub fn write(&self, item: &StreamItem, out: &mut BytesMut) {
        match item {
            StreamItem::Choice(c) => match self.shape {
                OutputShape::Chat => {
                    out.extend_from_slice(&self.prefix);
                    write_json(out, c);
                    out.extend_from_slice(b"]}\n\n");
                }
                OutputShape::Completion => {
                    let Some(text) = completion_text(c) else {
                        return;
                    };
                    out.extend_from_slice(&self.prefix);
                    out.extend_from_slice(b"{\"text\":");
                    write_json(out, &text);
                    out.extend_from_slice(b",\"index\":");
                    out.extend_from_slice(c.index.to_string().as_bytes());
                    out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
                    write_json(out, &c.finish_reason);
                    out.extend_from_slice(b"}]}\n\n");
                }
            },
            StreamItem::Usage(u) => {
                out.extend_from_slice(&self.prefix);
                out.extend_from_slice(b"],\"usage\":");
                write_json(out, u);
                out.extend_from_slice(b"}\n\n");
            }
            StreamItem::Error(e) => {
                out.extend_from_slice(b"data: ");
                write_json(out, e);
                out.extend_from_slice(b"\n\n");
            }
            StreamItem::Done => out.extend_from_slice(b"data: [DONE]\n\n"),
        }
    }

    /// Appends all items.
    pub fn write_all(&self, items: &[StreamItem], out: &mut BytesMut) {
        for i in items {
            self.write(i, out);
        }
    }
}

fn completion_text(c: &ChunkChoice) -> Option<&str> {
    match (&c.delta.content, c.finish_reason) {
        (Some(t), _) => Some(t),
        (None, Some(_)) => Some(""),
        (None, None) => None,
    }
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut BytesMut, v: &T) {
    // Serializing our own types into memory cannot fail: no map has non-string
    // keys and the writer never errors.
    let _ = serde_json::to_writer(out.writer(), v);
}

fn json_bytes<T: serde::Serialize + ?Sized>(v: &T) -> Vec<u8> {
    // A string always serializes.
    serde_json::to_vec(v).unwrap_or_default()
}

/// A sans-I/O stream translator: an upstream's stream in, [`StreamItem`]s
/// out. Both libraries' translators implement it (`sm_stream::Translator`,
/// `bedrock_converse::StreamTranslator`), so a service drives any of them
/// with one loop:
///
/// ```
/// use openai_types::stream::{StreamItem, StreamTranslate};
///
/// fn drive<T: StreamTranslate>(t: &mut T, input: Vec<Result<T::Input, T::Error>>) -> Vec<StreamItem> {
///     let mut out = Vec::new();
///     for piece in input {
///         match piece {
///             Ok(x) => t.push(x, &mut out),
///             Err(e) => t.fail(e, &mut out),
///         }
///         if t.is_finished() {
///             return out;
///         }
///     }
///     t.finish(&mut out);
///     out
/// }
/// ```
///
/// Every implementation keeps the stream contract: the last item is
/// [`StreamItem::Done`] or [`StreamItem::Error`], once, and nothing
/// follows it.
pub trait StreamTranslate: Send {
    /// What it is fed: bytes as they arrive, or an upstream's decoded
    /// events.
    type Input;
    /// Why an upstream's stream failed, in the translator's terms.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Feeds one piece of input.
    fn push(&mut self, input: Self::Input, out: &mut Vec<StreamItem>);
    /// The input failed: the stream ends with one error item.
    fn fail(&mut self, error: Self::Error, out: &mut Vec<StreamItem>);
    /// The input ended: the stream ends (an unfinished one in an error).
    fn finish(&mut self, out: &mut Vec<StreamItem>);
    /// Whether the last item has been emitted.
    fn is_finished(&self) -> bool;
    /// The error that ended the stream, if one did.
    fn failure(&self) -> Option<&Self::Error>;
}
