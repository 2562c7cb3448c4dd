//! Sans-I/O translation of SageMaker `InvokeEndpointWithResponseStream` bodies
//! into OpenAI `chat.completion.chunk`s and server-sent events.
//!
//! The crate does no I/O: it takes bytes and returns chunks. The layers, one
//! module each:
//!
//! 1. [`frame`]: `application/vnd.amazon.eventstream` frames (CRC-checked, by
//!    `event-frames`) to `PayloadPart` bytes or exception events;
//! 2. [`record`]: payload bytes, cut anywhere, re-framed into whole SSE events
//!    or JSON lines (UTF-8 is decoded only once a record is whole);
//! 3. `dialect`: the container's format (OpenAI chunks, TGI
//!    `generate_stream`, LMI rolling batch), detected from the first record;
//! 4. [`Translator`]: one instance per stream, with one id, one `created`, the
//!    role sent once, dense tool-call indices, optional `<think>` splitting and
//!    usage;
//! 5. [`SseWriter`] (from `openai-types`, shared with the other backends): `data: {…}\n\n` bytes ending in `data: [DONE]\n\n`.
//!
//! ```
//! use bytes::BytesMut;
//! use sm_stream::{OutputShape, SseWriter, Translator, TranslatorConfig};
//!
//! let mut t = Translator::new(TranslatorConfig {
//!     id: "chatcmpl-1".into(),
//!     model: "my-endpoint".into(),
//!     created: 1_700_000_000,
//!     ..TranslatorConfig::default()
//! });
//! let sse = t.sse_writer(OutputShape::Chat);
//! let mut items = Vec::new();
//! // TGI generate_stream records, cut in the middle of "你".
//! let body = "data:{\"token\":{\"text\":\"你好\",\"special\":false}}\n\n\
//!             data:{\"token\":{\"text\":\"\",\"special\":true},\"details\":{\"finish_reason\":\"eos_token\",\"generated_tokens\":2}}\n\n";
//! let (a, b) = body.as_bytes().split_at(22);
//! t.push_payload(a, &mut items);
//! t.push_payload(b, &mut items);
//! t.finish(&mut items);
//! let mut out = BytesMut::new();
//! sse.write_all(&items, &mut out);
//! let text = std::str::from_utf8(&out).unwrap();
//! assert!(text.contains(r#""delta":{"role":"assistant","content":"你好"}"#));
//! assert!(text.ends_with("data: [DONE]\n\n"));
//! ```

#![deny(missing_docs)]

pub mod complete;
mod dialect;
mod emit;
mod error;
pub mod frame;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod record;
pub mod think;
mod translate;

pub use dialect::DialectKind;
pub use error::Error;
pub use frame::{FrameDecoder, SmEvent};
pub use openai_types::stream::{OutputShape, SseWriter, StreamItem};
pub use translate::{Feed, ReasoningMode, Translator, TranslatorConfig};
