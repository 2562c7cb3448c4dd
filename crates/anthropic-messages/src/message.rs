//! What the API answers: a whole [`Message`], its content blocks, why it
//! stopped and its [`Usage`]. Required fields are always sent (`null`
//! where the API allows it).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A whole answer (`"type": "message"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `msg_…`.
    pub id: String,
    /// Always `"message"`.
    #[serde(rename = "type")]
    pub kind: MessageTag,
    /// Always `"assistant"`.
    pub role: AssistantTag,
    /// What the model produced, in order.
    pub content: Vec<ContentBlock>,
    /// The model that answered.
    pub model: String,
    /// Why it stopped (`null` in `message_start`).
    pub stop_reason: Option<StopReason>,
    /// The stop sequence that ended it, if one did.
    pub stop_sequence: Option<String>,
    /// Token counts.
    pub usage: Usage,
}

impl Message {
    /// An empty message (as `message_start` carries it).
    pub fn empty(id: &str, model: &str, usage: Usage) -> Self {
        Self {
            id: id.to_owned(),
            kind: MessageTag,
            role: AssistantTag,
            content: Vec::new(),
            model: model.to_owned(),
            stop_reason: None,
            stop_sequence: None,
            usage,
        }
    }
}

/// One block of an answer, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// Thinking, with its signature.
    Thinking {
        /// The thinking.
        thinking: String,
        /// Its signature (empty when the backend gave none).
        signature: String,
    },
    /// Encrypted thinking.
    RedactedThinking {
        /// The encrypted data.
        data: String,
    },
    /// A tool call.
    ToolUse {
        /// The call's id (`toolu_…`).
        id: String,
        /// The tool.
        name: String,
        /// Its input (a JSON object; the raw text when a backend's
        /// arguments were not JSON).
        input: Value,
    },
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A natural end.
    EndTurn,
    /// `max_tokens` reached.
    MaxTokens,
    /// One of `stop_sequences`.
    StopSequence,
    /// It called tools.
    ToolUse,
    /// A long turn paused (server tools).
    PauseTurn,
    /// It refused (a content filter or guardrail).
    Refusal,
}

/// Token counts. `input_tokens` excludes the cached ones: the prompt is
/// `input_tokens + cache_creation_input_tokens + cache_read_input_tokens`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens read neither from nor into the cache.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Prompt tokens written to the cache.
    pub cache_creation_input_tokens: Option<u64>,
    /// Prompt tokens read from the cache.
    pub cache_read_input_tokens: Option<u64>,
}

impl Usage {
    /// Usage as OpenAI counts it: `prompt_tokens` includes the cache reads
    /// (`prompt_tokens_details.cached_tokens`) and writes (our extension
    /// `cache_write_tokens`).
    pub fn from_openai(u: &openai_types::Usage) -> Self {
        let d = u.prompt_tokens_details.as_ref();
        let cached = d
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0)
            .min(u.prompt_tokens);
        let written = d
            .and_then(|d| d.cache_write_tokens)
            .unwrap_or(0)
            .min(u.prompt_tokens - cached);
        Self {
            input_tokens: u.prompt_tokens - cached - written,
            output_tokens: u.completion_tokens,
            cache_creation_input_tokens: Some(written),
            cache_read_input_tokens: Some(cached),
        }
    }
}

/// The chat finish reason of a stop reason.
pub fn finish_reason(s: StopReason) -> openai_types::chat::FinishReason {
    match s {
        StopReason::EndTurn | StopReason::StopSequence | StopReason::PauseTurn => {
            openai_types::chat::FinishReason::Stop
        }
        StopReason::MaxTokens => openai_types::chat::FinishReason::Length,
        StopReason::ToolUse => openai_types::chat::FinishReason::ToolCalls,
        StopReason::Refusal => openai_types::chat::FinishReason::ContentFilter,
    }
}

/// Usage as OpenAI counts it: the prompt is every input token, cached or
/// not; `cached_tokens` the cache reads.
pub fn openai_usage(u: &Usage) -> openai_types::Usage {
    let read = u.cache_read_input_tokens.unwrap_or(0);
    let write = u.cache_creation_input_tokens.unwrap_or(0);
    let mut out = openai_types::Usage::new(u.input_tokens + read + write, u.output_tokens);
    if read > 0 || write > 0 {
        out.prompt_tokens_details = Some(openai_types::usage::PromptTokensDetails {
            cached_tokens: Some(read),
            audio_tokens: None,
            cache_write_tokens: (write > 0).then_some(write),
        });
    }
    out
}

macro_rules! tag {
    ($name:ident, $value:literal) => {
        #[doc = concat!("The fixed value `\"", $value, "\"`.")]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name;

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($value)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                if s == $value {
                    Ok($name)
                } else {
                    Err(serde::de::Error::custom(format!(
                        "expected \"{}\", found \"{s}\"",
                        $value
                    )))
                }
            }
        }
    };
}

tag!(MessageTag, "message");
tag!(AssistantTag, "assistant");
