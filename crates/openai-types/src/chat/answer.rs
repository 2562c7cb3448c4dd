//! What a chat completion answers: the whole response and the streaming
//! chunk.

use super::*;

/// `POST /v1/chat/completions` response when not streaming.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// Completion id.
    pub id: String,
    /// Always `"chat.completion"`.
    pub object: ChatCompletionObject,
    /// Unix seconds.
    pub created: u64,
    /// Model that answered.
    pub model: String,
    /// The choices.
    pub choices: Vec<Choice>,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Backend fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// Service tier used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
}

/// One choice of a non-streaming response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Index of the choice.
    pub index: u32,
    /// The message.
    pub message: ResponseMessage,
    /// Required and nullable: always serialized.
    pub logprobs: Option<Value>,
    /// Why it stopped. Required.
    pub finish_reason: FinishReason,
}

/// The assistant message of a response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseMessage {
    /// Always `"assistant"`.
    pub role: AssistantRole,
    /// Required and nullable: `null` when only tools were called.
    pub content: Option<String>,
    /// Required and nullable.
    pub refusal: Option<String>,
    /// Reasoning text (DeepSeek style extension), when split out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// The reasoning as signed blocks (LiteLLM's extension), when the
    /// backend signs it (Claude): what a client sends back, on the
    /// assistant message, so the model accepts its own thinking across a
    /// tool call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_blocks: Option<Vec<ThinkingBlock>>,
}

/// A signed reasoning block (LiteLLM's `thinking_blocks` convention).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ThinkingBlock {
    /// Readable reasoning and its signature.
    Thinking {
        /// The reasoning (empty in a stream's signature piece).
        #[serde(default)]
        thinking: String,
        /// The provider's signature over it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// Reasoning the provider encrypted, base64.
    RedactedThinking {
        /// The encrypted data.
        data: String,
    },
}

// ---------------------------------------------------------------- chunk

/// One `chat.completion.chunk` of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    /// Same for every chunk of a stream.
    pub id: String,
    /// Always `"chat.completion.chunk"`.
    pub object: ChunkObject,
    /// Same for every chunk of a stream.
    pub created: u64,
    /// Model.
    pub model: String,
    /// Choices; empty in the final usage chunk.
    pub choices: Vec<ChunkChoice>,
    /// Usage, in the final chunk only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Backend fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// Service tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
}

/// One choice of a chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// Index of the choice.
    pub index: u32,
    /// What this chunk adds.
    pub delta: Delta,
    /// Log probabilities, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
    /// Required and nullable: `null` on every chunk but the last of a choice.
    pub finish_reason: Option<FinishReason>,
}

/// The role in a delta (only `assistant` is ever sent by us, but upstreams vary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// System.
    System,
    /// Developer.
    Developer,
    /// User.
    User,
    /// Assistant.
    Assistant,
    /// Tool.
    Tool,
}

/// `ChatCompletionStreamResponseDelta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// Sent once, in the first chunk of a choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Reasoning text (DeepSeek-style extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Refusal text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Tool-call fragments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallChunk>>,
    /// Signed reasoning pieces (see [`ResponseMessage::thinking_blocks`]):
    /// a signature once its reasoning is whole, a redacted block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_blocks: Option<Vec<ThinkingBlock>>,
}

impl Delta {
    /// Whether the delta carries nothing.
    pub fn is_empty(&self) -> bool {
        self.role.is_none()
            && self.content.is_none()
            && self.reasoning_content.is_none()
            && self.refusal.is_none()
            && self.tool_calls.is_none()
            && self.thinking_blocks.is_none()
    }
}

/// A fragment of a tool call in a stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCallChunk {
    /// Dense index of the call within the choice, from 0.
    pub index: u32,
    /// Call id, in the first fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `"function"`, in the first fragment.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FunctionType>,
    /// Name and argument fragments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallChunk>,
}

/// Name (first fragment) and a piece of the arguments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallChunk {
    /// Function name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A piece of the arguments string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}
