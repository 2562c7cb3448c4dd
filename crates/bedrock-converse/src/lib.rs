//! Sans-I/O translation between OpenAI's chat and embeddings APIs and Amazon
//! Bedrock's Converse API and embedding models.
//!
//! * [`request`]: an OpenAI chat request to a Converse request (system and
//!   developer prompts, images, tool calls and results, merged turns, sampling,
//!   stop, tools and `tool_choice`, `reasoning_effort` per model family, extra
//!   fields to `additionalModelRequestFields`);
//! * [`response`]: a Converse response to a `chat.completion`;
//! * [`stream`]: `converse-stream` events (or their raw event-stream bytes,
//!   cut anywhere) to OpenAI stream items, with dense tool-call indices and one
//!   error item for an exception;
//! * [`embeddings`]: `InvokeModel` bodies for Titan, Cohere and Nova
//!   embedding models and their answers in OpenAI's shape;
//! * [`cache`]: prompt cache points placed for clients that cannot place
//!   them (the OpenAI SDKs);
//! * [`document`]: `file` parts (inline PDF, text and office files) as
//!   document blocks, names cleaned to Bedrock's rules, bounded;
//! * [`rerank`]: `InvokeModel` bodies of Bedrock's rerank models and their
//!   scores;
//! * [`model`]: model ids, inference profile ids and ARNs (and the
//!   profiles to try for a model served only through one);
//! * [`wire`]: the Converse JSON shapes, for any transport;
//! * `sdk` (feature `aws-sdk`): the [`wire`] types to and from
//!   `aws-sdk-bedrockruntime`'s, so the translation runs on an SDK client.
//!
//! Event-stream frames are read by the `event-frames` crate. The crate
//! does no I/O. Remote image URLs are listed by
//! [`request::remote_image_urls`] for the caller to fetch under its own policy.
//!
//! ```
//! use bedrock_converse::{StreamConfig, StreamTranslator, wire::{StreamEvent, BlockDelta, Role}};
//! use bytes::BytesMut;
//!
//! let mut t = StreamTranslator::new(StreamConfig {
//!     id: "chatcmpl-1".into(),
//!     model: "claude".into(),
//!     created: 1_700_000_000,
//!     ..StreamConfig::default()
//! });
//! let mut items = Vec::new();
//! t.push_event(StreamEvent::MessageStart { role: Role::Assistant }, &mut items);
//! t.push_event(StreamEvent::ContentBlockDelta { index: 0, delta: BlockDelta::Text("你好".into()) }, &mut items);
//! t.push_event(StreamEvent::MessageStop { stop_reason: "end_turn".into() }, &mut items);
//! t.finish(&mut items);
//! let mut out = BytesMut::new();
//! t.sse_writer().write_all(&items, &mut out);
//! let text = std::str::from_utf8(&out).unwrap();
//! assert!(text.contains(r#""delta":{"content":"你好"}"#));
//! assert!(text.contains(r#""finish_reason":"stop""#));
//! assert!(text.ends_with("data: [DONE]\n\n"));
//! ```

#![deny(missing_docs)]

pub mod cache;
pub mod document;
pub mod embeddings;
mod error;
pub mod event;
#[doc(hidden)]
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod guardrail;
pub mod model;
pub mod request;
pub mod rerank;
pub mod response;
#[cfg(feature = "aws-sdk")]
pub mod sdk;
pub mod stream;
mod structured;
pub mod wire;

pub use error::{Error, HttpMapping, exception_mapping};
pub use model::{ModelRef, ReasoningStyle};
pub use request::{RequestOptions, to_converse};
pub use response::{ReasoningOutput, ResponseMeta, to_chat_completion};
pub use stream::{StreamConfig, StreamTranslator};
