//! The Converse API's JSON shapes (`POST /model/{modelId}/converse`,
//! `converse-stream` event payloads), as Bedrock's REST JSON protocol writes
//! them: camelCase names, unions as one-key objects, blobs as base64.
//!
//! These are the library's own types, so the crate works with any transport:
//! the gateway converts them to `aws-sdk-bedrockruntime` types, a raw HTTP
//! caller serializes them as they are.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A Converse request body (the model id is in the path).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseRequest {
    /// The conversation, alternating user and assistant, starting with user.
    pub messages: Vec<Message>,
    /// System prompts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<SystemBlock>,
    /// Sampling settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_config: Option<InferenceConfig>,
    /// Tools offered to the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
    /// Model-specific fields (e.g. Claude's `thinking`, `top_k`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_model_request_fields: Option<serde_json::Map<String, Value>>,
    /// Structured output (`outputConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<OutputConfig>,
    /// The guardrail that screens the input and the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrail_config: Option<GuardrailConfig>,
}

/// `guardrailConfig`: a Bedrock guardrail applied to the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardrailConfig {
    /// The guardrail's id or ARN.
    pub guardrail_identifier: String,
    /// Its version (`DRAFT` or a number).
    pub guardrail_version: String,
    /// `enabled`, `enabled_full` or `disabled` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Streams: `sync` (each chunk screened before it is sent; the
    /// default) or `async` (sent at once, screened beside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_processing_mode: Option<String>,
}

/// `outputConfig`: what the model's text must look like.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputConfig {
    /// The text's format.
    pub text_format: OutputFormat,
}

/// `outputConfig.textFormat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputFormat {
    /// Always `json_schema`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The structure (a union).
    pub structure: OutputStructure,
}

/// `OutputFormatStructure` (a one-key union).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OutputStructure {
    /// A JSON Schema the text must satisfy.
    JsonSchema(JsonSchemaDefinition),
}

/// `JsonSchemaDefinition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSchemaDefinition {
    /// The schema, as a JSON **string**.
    pub schema: String,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What it describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `user` or `assistant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user (also carries tool results).
    User,
    /// The model.
    Assistant,
}

/// One turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What they say.
    pub content: Vec<ContentBlock>,
}

/// A system prompt block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SystemBlock {
    /// Text.
    Text(String),
    /// The prompt up to here is cached.
    CachePoint(CachePoint),
}

/// A cache point: the prompt before it is cached (Claude and Nova).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachePoint {
    /// Always `default`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `5m` or `1h` (where the model takes a TTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

impl CachePoint {
    /// A cache point with `ttl`.
    pub fn new(ttl: Option<String>) -> Self {
        Self {
            kind: "default".into(),
            ttl,
        }
    }
}

/// A content block (a one-key object on the wire).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ContentBlock {
    /// Text.
    Text(String),
    /// An image.
    Image(ImageBlock),
    /// A tool call by the model.
    ToolUse(ToolUse),
    /// A tool's answer.
    ToolResult(ToolResult),
    /// The model's reasoning.
    ReasoningContent(ReasoningContent),
    /// The conversation up to here is cached.
    CachePoint(CachePoint),
    /// A document (PDF, text, office formats).
    Document(DocumentBlock),
}

/// A document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentBlock {
    /// `pdf`, `csv`, `doc`, `docx`, `xls`, `xlsx`, `html`, `txt` or `md`.
    pub format: String,
    /// Its name (letters, digits, single spaces, hyphens, parentheses,
    /// square brackets; distinct within a request).
    pub name: String,
    /// The bytes.
    pub source: DocumentSource,
}

/// Where a document's bytes are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DocumentSource {
    /// Inline bytes (base64 on the wire).
    Bytes(#[serde(with = "b64")] Vec<u8>),
}

/// An image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageBlock {
    /// `png`, `jpeg`, `gif` or `webp`.
    pub format: ImageFormat,
    /// The bytes.
    pub source: ImageSource,
}

/// The image formats Converse takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// GIF.
    Gif,
    /// WebP.
    Webp,
}

impl ImageFormat {
    /// From a media type (`image/png`…).
    pub fn from_mime(mime: &str) -> Option<Self> {
        let m = mime.split(';').next().unwrap_or("").trim();
        match m.to_ascii_lowercase().as_str() {
            "image/png" => Some(Self::Png),
            "image/jpeg" | "image/jpg" => Some(Self::Jpeg),
            "image/gif" => Some(Self::Gif),
            "image/webp" => Some(Self::Webp),
            _ => None,
        }
    }

    /// From the first bytes of the file.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Self::Gif)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else {
            None
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpeg",
            Self::Gif => "gif",
            Self::Webp => "webp",
        }
    }
}

/// Where an image's bytes are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ImageSource {
    /// Inline bytes (base64 on the wire).
    Bytes(#[serde(with = "b64")] Vec<u8>),
}

/// A tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse {
    /// The call's id (`tooluse_…`).
    pub tool_use_id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, a JSON object.
    pub input: Value,
}

/// A tool's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    /// The call answered.
    pub tool_use_id: String,
    /// The answer.
    pub content: Vec<ToolResultContent>,
    /// `success` or `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Part of a tool's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolResultContent {
    /// Text.
    Text(String),
    /// A JSON value.
    Json(Value),
    /// An image.
    Image(ImageBlock),
}

/// Reasoning in a response (or in history, with its signature).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReasoningContent {
    /// Readable reasoning.
    ReasoningText(ReasoningText),
    /// Reasoning the provider encrypted.
    RedactedContent(#[serde(with = "b64")] Vec<u8>),
}

/// Readable reasoning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasoningText {
    /// The text.
    pub text: String,
    /// The provider's signature over it (needed to send it back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// `inferenceConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceConfig {
    /// Output token limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
}

impl InferenceConfig {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
    }
}

/// `toolConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    /// The tools.
    pub tools: Vec<Tool>,
    /// How the model must use them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
}

/// A tool (a one-key union on the wire).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Tool {
    /// A function.
    ToolSpec(ToolSpec),
    /// The tools up to here are cached.
    CachePoint(CachePoint),
}

impl Tool {
    /// The function, unless this is a cache point.
    pub fn spec(&self) -> Option<&ToolSpec> {
        match self {
            Self::ToolSpec(s) => Some(s),
            Self::CachePoint(_) => None,
        }
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpec {
    /// Name.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its arguments' JSON Schema.
    pub input_schema: InputSchema,
    /// Whether the input must satisfy the schema exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `inputSchema`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InputSchema {
    /// A JSON Schema.
    Json(Value),
}

/// `toolChoice`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolChoice {
    /// The model decides.
    Auto(Empty),
    /// The model must call some tool.
    Any(Empty),
    /// The model must call this tool.
    Tool(NamedTool),
}

/// `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `{"name": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedTool {
    /// The tool.
    pub name: String,
}

/// A Converse response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseResponse {
    /// The answer.
    pub output: ConverseOutput,
    /// Why generation stopped.
    pub stop_reason: String,
    /// Token counts.
    #[serde(default)]
    pub usage: TokenUsage,
    /// Model-specific response fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_model_response_fields: Option<Value>,
}

/// `output` (a union with one member).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConverseOutput {
    /// The assistant's message.
    Message(Message),
}

/// Token counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// Prompt tokens not read from or written to the cache.
    #[serde(default)]
    pub input_tokens: u64,
    /// Generated tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Sum as Bedrock reports it.
    #[serde(default)]
    pub total_tokens: u64,
    /// Prompt tokens read from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// Prompt tokens written to the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_input_tokens: Option<u64>,
}

/// One `converse-stream` event, named by its `:event-type` header.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// `messageStart`.
    MessageStart {
        /// Always assistant.
        role: Role,
    },
    /// `contentBlockStart` (tool calls only).
    ContentBlockStart {
        /// The block.
        index: u32,
        /// The call's id and name.
        tool_use: Option<ToolUseStart>,
    },
    /// `contentBlockDelta`.
    ContentBlockDelta {
        /// The block.
        index: u32,
        /// The fragment.
        delta: BlockDelta,
    },
    /// `contentBlockStop`.
    ContentBlockStop {
        /// The block.
        index: u32,
    },
    /// `messageStop`.
    MessageStop {
        /// Why generation stopped.
        stop_reason: String,
    },
    /// `metadata`: usage (after `messageStop`).
    Metadata {
        /// Token counts.
        usage: Option<TokenUsage>,
    },
    /// An exception event (`:message-type: exception`) or any event type not
    /// known here.
    Exception {
        /// `throttlingException`, `modelStreamErrorException`, …
        name: String,
        /// Its message.
        message: String,
    },
    /// An event type this crate does not know (ignored).
    Unknown(String),
}

/// A tool call's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUseStart {
    /// The call's id.
    pub tool_use_id: String,
    /// The tool.
    pub name: String,
}

/// A `contentBlockDelta` fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockDelta {
    /// Text.
    Text(String),
    /// A piece of a tool call's input JSON.
    ToolUseInput(String),
    /// Reasoning text.
    ReasoningText(String),
    /// The reasoning's signature (not shown to clients).
    ReasoningSignature(String),
    /// Encrypted reasoning (not shown to clients).
    ReasoningRedacted,
    /// A member this crate does not know.
    Other,
}

mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}
