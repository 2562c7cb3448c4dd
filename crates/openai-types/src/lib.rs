//! Serde wire types for the OpenAI API surface the gateway serves.
//!
//! The types follow OpenAI's published OpenAPI document (`openai/openai-openapi`,
//! `openapi.yaml`) with three rules:
//!
//! * a field the spec lists as **required** is always serialized, as `null` where
//!   the spec allows null (a chunk's `finish_reason`, a response's `logprobs` and
//!   `message.refusal`, an error's `param` and `code`);
//! * an **optional** field we have no value for is left out, never sent as `null`;
//! * fields we do not model are **kept** in an `extra` map, so a request passed
//!   through to an upstream loses nothing the client sent.
//!
//! Fixed tags such as `"chat.completion.chunk"` are zero-sized types that can only
//! serialize to their one value and refuse any other on input.
//!
//! ```
//! use openai_types::chat::{ChatCompletionRequest, ChatMessage, MessageContent};
//!
//! let req: ChatCompletionRequest = serde_json::from_str(
//!     r#"{"model":"m","messages":[{"role":"user","content":"你好"}],"stream":true,"x-vendor":1}"#,
//! ).unwrap();
//! assert!(req.is_stream());
//! assert!(matches!(&req.messages[0], ChatMessage::User(u) if matches!(&u.content, MessageContent::Text(t) if t == "你好")));
//! // The unknown field survives a round trip.
//! assert_eq!(serde_json::to_value(&req).unwrap()["x-vendor"], 1);
//! ```

#![deny(missing_docs)]

pub mod chat;
pub mod completions;
#[cfg(feature = "contract")]
pub mod contract;
pub mod embeddings;
pub mod error;
pub mod form;
#[doc(hidden)]
pub mod fuzzing;
pub mod models;
pub mod path;
pub mod rerank;
pub mod responses;
pub mod schema;
pub mod stream;
mod tag;
pub mod tokens;
pub mod top_level;
pub mod usage;
pub mod validate;

pub use error::{ErrorBody, ErrorResponse};
pub use usage::Usage;

/// Extra, unmodelled JSON fields kept for pass-through.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// `"x"` or `["x", "y"]`: the spec's string-or-array fields (`stop`, `prompt`, `input`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum StringOrArray {
    /// A single string.
    String(String),
    /// A list of strings.
    Array(Vec<String>),
}

impl StringOrArray {
    /// All the strings, in order.
    pub fn as_slice(&self) -> &[String] {
        match self {
            Self::String(s) => std::slice::from_ref(s),
            Self::Array(v) => v,
        }
    }
}

/// `stream_options` of chat and legacy completions.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StreamOptions {
    /// Send one last chunk with `usage` and an empty `choices` list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    /// Unmodelled fields (e.g. `include_obfuscation`).
    #[serde(flatten)]
    pub extra: Extra,
}
