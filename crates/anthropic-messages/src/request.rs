//! What a client sends: `POST /v1/messages` ([`MessagesRequest`]) and
//! `POST /v1/messages/count_tokens` ([`CountTokensRequest`]), with their
//! content blocks, tools and settings. Fields not modelled are kept in
//! `extra`, so a request passed on loses nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Unmodelled JSON fields, kept.
pub type Extra = Map<String, Value>;

/// A `POST /v1/messages` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// The model.
    pub model: String,
    /// The conversation, alternating `user` and `assistant` turns.
    pub messages: Vec<InputMessage>,
    /// The most tokens to generate (required by the API).
    pub max_tokens: u32,
    /// System prompt: text, or text blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<System>,
    /// Texts that end generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Stream the answer as server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Sampling temperature (0 to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// How the model picks tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Extended thinking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    /// Request metadata (`user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Every field not modelled above.
    #[serde(flatten)]
    pub extra: Extra,
}

impl MessagesRequest {
    /// Whether the client asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }
}

/// A `POST /v1/messages/count_tokens` body: a messages request without
/// its generation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountTokensRequest {
    /// The model.
    pub model: String,
    /// The conversation.
    pub messages: Vec<InputMessage>,
    /// System prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<System>,
    /// Tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// Tool choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Extended thinking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    /// Every field not modelled above.
    #[serde(flatten)]
    pub extra: Extra,
}

impl CountTokensRequest {
    /// The messages request it stands for (one token to generate).
    pub fn into_messages(self) -> MessagesRequest {
        MessagesRequest {
            model: self.model,
            messages: self.messages,
            max_tokens: 1,
            system: self.system,
            stop_sequences: None,
            stream: None,
            temperature: None,
            top_p: None,
            top_k: None,
            tools: self.tools,
            tool_choice: self.tool_choice,
            thinking: self.thinking,
            metadata: None,
            extra: self.extra,
        }
    }
}

/// The answer of `count_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCount {
    /// Tokens in the prompt (system, messages and tools).
    pub input_tokens: u64,
}

/// Who speaks a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user (and tool results).
    User,
    /// The model.
    Assistant,
    /// Instructions given mid-conversation (Claude Code sends them).
    System,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputMessage {
    /// Whose turn.
    pub role: Role,
    /// Text, or content blocks.
    pub content: Content,
}

/// A turn's content: a string, or blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Typed blocks.
    Blocks(Vec<Block>),
}

/// The system prompt: a string, or text blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum System {
    /// Plain text.
    Text(String),
    /// Text blocks (each may carry `cache_control`).
    Blocks(Vec<Block>),
}

/// One content block, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// `cache_control`, citations and other unmodelled fields.
        #[serde(flatten)]
        extra: Extra,
    },
    /// An image.
    Image {
        /// Where its bytes are.
        source: Source,
        /// Unmodelled fields.
        #[serde(flatten)]
        extra: Extra,
    },
    /// A document (PDF or plain text).
    Document {
        /// Where its content is.
        source: Source,
        /// Its title.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// Unmodelled fields.
        #[serde(flatten)]
        extra: Extra,
    },
    /// A tool call of an earlier assistant turn.
    ToolUse {
        /// The call's id.
        id: String,
        /// The tool.
        name: String,
        /// Its input, a JSON object.
        input: Value,
        /// Unmodelled fields.
        #[serde(flatten)]
        extra: Extra,
    },
    /// A tool's result, in a user turn.
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// Its content: text or blocks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Content>,
        /// Whether the tool failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        /// Unmodelled fields.
        #[serde(flatten)]
        extra: Extra,
    },
    /// The model's thinking in an earlier turn, with its signature.
    Thinking {
        /// The thinking.
        thinking: String,
        /// Its signature (sent back unchanged).
        #[serde(default)]
        signature: String,
    },
    /// Thinking the provider encrypted.
    RedactedThinking {
        /// The encrypted data.
        data: String,
    },
}

/// Where an image's or a document's content is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Source {
    /// Inline, base64.
    Base64 {
        /// `image/png`, `application/pdf`, ….
        media_type: String,
        /// The bytes, base64.
        data: String,
    },
    /// By URL.
    Url {
        /// The URL.
        url: String,
    },
    /// Plain text (documents).
    Text {
        /// `text/plain`.
        media_type: String,
        /// The text.
        data: String,
    },
    /// Content blocks (documents).
    Content {
        /// The blocks.
        content: Content,
    },
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Its name.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its input's JSON schema (absent for server tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// `custom`, or a server tool's versioned type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `cache_control` and other unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// How the model picks tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto {
        /// At most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// Some tool must be called.
    Any {
        /// At most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// This tool must be called.
    Tool {
        /// The tool.
        name: String,
        /// At most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// No tool may be called.
    None,
}

/// Extended thinking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thinking {
    /// `enabled`, `adaptive` (the model decides; `output_config.effort`
    /// says how hard) or `disabled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Tokens it may think with (`enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u32>,
    /// Unmodelled fields (`display`).
    #[serde(flatten)]
    pub extra: Extra,
}

/// Request metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// An opaque id of the end user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Unmodelled fields.
    #[serde(flatten)]
    pub extra: Extra,
}
