//! Layer 5: OpenAI server-sent-event bytes.

use bytes::{BufMut, BytesMut};
use openai_types::chat::ChunkChoice;

use crate::StreamItem;

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
        write_json(&mut prefix, &id);
        prefix.extend_from_slice(match shape {
            OutputShape::Chat => b",\"object\":\"chat.completion.chunk\",\"created\":",
            OutputShape::Completion => b",\"object\":\"text_completion\",\"created\":",
        });
        prefix.extend_from_slice(created.to_string().as_bytes());
        prefix.extend_from_slice(b",\"model\":");
        write_json(&mut prefix, &model);
        prefix.extend_from_slice(b",\"choices\":[");
        Self { prefix, shape }
    }

    /// A writer for a translator's stream.
    pub fn for_config(cfg: &crate::TranslatorConfig, shape: OutputShape) -> Self {
        Self::new(&cfg.id, &cfg.model, cfg.created, shape)
    }

    /// Appends the bytes of one item to `out`.
    pub fn write(&self, item: &StreamItem, out: &mut BytesMut) {
        match item {
            StreamItem::Choice(c) => match self.shape {
                OutputShape::Chat => {
                    out.extend_from_slice(&self.prefix);
                    write_json(&mut out.writer_ref(), c);
                    out.extend_from_slice(b"]}\n\n");
                }
                OutputShape::Completion => {
                    let Some(text) = completion_text(c) else {
                        return;
                    };
                    out.extend_from_slice(&self.prefix);
                    out.extend_from_slice(b"{\"text\":");
                    write_json(&mut out.writer_ref(), &text);
                    out.extend_from_slice(b",\"index\":");
                    out.extend_from_slice(c.index.to_string().as_bytes());
                    out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
                    write_json(&mut out.writer_ref(), &c.finish_reason);
                    out.extend_from_slice(b"}]}\n\n");
                }
            },
            StreamItem::Usage(u) => {
                out.extend_from_slice(&self.prefix);
                out.extend_from_slice(b"],\"usage\":");
                write_json(&mut out.writer_ref(), u);
                out.extend_from_slice(b"}\n\n");
            }
            StreamItem::Error(e) => {
                out.extend_from_slice(b"data: ");
                write_json(&mut out.writer_ref(), e);
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

/// A `Write` over a `BytesMut` borrowed mutably.
trait WriterRef {
    fn writer_ref(&mut self) -> bytes::buf::Writer<&mut BytesMut>;
}

impl WriterRef for BytesMut {
    fn writer_ref(&mut self) -> bytes::buf::Writer<&mut BytesMut> {
        BufMut::writer(self)
    }
}

fn write_json<W: std::io::Write, T: serde::Serialize + ?Sized>(w: W, v: &T) {
    // Serializing our own types into memory cannot fail: no map has non-string
    // keys and the writer never errors.
    let _ = serde_json::to_writer(w, v);
}
