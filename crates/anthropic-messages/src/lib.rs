//! Anthropic's Messages API, sans I/O: the wire types of `POST /v1/messages`
//! and `POST /v1/messages/count_tokens` (requests, messages, stream events,
//! the error envelope), and their translation to and from
//! [`openai_types`]' chat completions, so a service that already speaks
//! OpenAI chat (or fronts backends that do) can answer Anthropic clients:
//!
//! * [`chat::to_chat`]: a [`MessagesRequest`](request::MessagesRequest) as
//!   a chat request (system, content blocks, `tool_use` → `tool_calls`,
//!   `tool_result` → tool messages, thinking, tools and `tool_choice`);
//! * [`chat::from_chat`]: a `chat.completion` as a
//!   [`Message`](message::Message) (stop reasons, usage with cache reads);
//! * [`events::EventWriter`]: chat stream items as the Messages event
//!   sequence (`message_start`, content blocks and their deltas,
//!   `message_delta` with usage, `message_stop`; a failure is one `error`
//!   event);
//! * [`events::Accumulator`]: the event sequence back into a whole
//!   [`Message`](message::Message), as the SDKs build it;
//! * the other way, chat over a Messages upstream:
//!   [`upstream::to_messages`], [`upstream::to_chat_completion`] and
//!   [`upstream_stream::ChatTranslator`] (the upstream's events as chat
//!   stream items).
//!
//! ```
//! use anthropic_messages::request::MessagesRequest;
//!
//! let r: MessagesRequest = serde_json::from_str(
//!     r#"{"model":"claude","max_tokens":64,"system":"Be brief.",
//!         "messages":[{"role":"user","content":"Hi"}]}"#,
//! ).unwrap();
//! let chat = anthropic_messages::chat::to_chat(&r).unwrap();
//! assert_eq!(chat.messages.len(), 2);
//! assert_eq!(chat.max_tokens, Some(64));
//! ```

#![deny(missing_docs)]

pub mod chat;
pub mod error;
pub mod events;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod message;
pub mod request;
pub mod upstream;
pub mod upstream_stream;

pub use error::{ErrorKind, ErrorResponse};
pub use message::{Message, StopReason, Usage};
pub use request::{CountTokensRequest, MessagesRequest};
