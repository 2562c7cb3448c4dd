//! The Responses API (`POST /v1/responses`): the request, the `response`
//! object and its output items, as `openapi.yaml` defines them
//! (`CreateResponse`, `Response`, `OutputMessage`, `FunctionToolCall`,
//! `ReasoningItem`, `ResponseUsage`), and a sans-I/O translation to and from
//! chat completions ([`chat`]) for backends without a native Responses API.
//!
//! The request keeps `input`, `tools`, `tool_choice`, `text` and `reasoning`
//! as JSON: their unions are wide, and [`chat::to_chat`] reads the members
//! a chat backend can serve and refuses the rest by path.

pub mod chat;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Extra;

/// `CreateResponse`: what a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateResponse {
    /// The model.
    pub model: String,
    /// A string, or a list of input items (read under
    /// [`crate::schema::bounded_input`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::schema::bounded_input"
    )]
    pub input: Option<Value>,
    /// A system (developer) message put first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Tools the model may call (read under
    /// [`crate::schema::bounded_list`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::schema::bounded_list"
    )]
    pub tools: Option<Vec<Value>>,
    /// `auto`, `none`, `required` or `{"type":"function","name":…}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// `{"format": {…}}`: text, JSON object or JSON schema (read under
    /// [`crate::schema::bounded`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::schema::bounded"
    )]
    pub text: Option<Value>,
    /// `{"effort": …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Value>,
    /// Output token limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Stream events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Keep the response for later (needs a response store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// Continue a stored response (needs a response store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    /// Run tool calls in parallel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Key-value pairs echoed in the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Extra>,
    /// End-user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Everything else (`include`, `truncation`, `conversation`…).
    #[serde(flatten)]
    pub extra: Extra,
}

impl CreateResponse {
    /// Whether the client asked for events.
    pub fn is_stream(&self) -> bool {
        self.stream == Some(true)
    }
}

/// The `response` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// `resp_…`.
    pub id: String,
    /// Always `response`.
    pub object: String,
    /// Unix seconds.
    pub created_at: u64,
    /// `in_progress`, `completed`, `incomplete` or `failed`.
    pub status: String,
    /// Required, nullable.
    pub error: Option<ResponseError>,
    /// Required, nullable: why the answer stopped short.
    pub incomplete_details: Option<IncompleteDetails>,
    /// Required, nullable: the request's instructions.
    pub instructions: Option<String>,
    /// The model the client named.
    pub model: String,
    /// What the model produced.
    pub output: Vec<OutputItem>,
    /// Required.
    pub parallel_tool_calls: bool,
    /// Required, nullable.
    pub metadata: Option<Extra>,
    /// Required: the request's (default `auto`).
    pub tool_choice: Value,
    /// Required: the request's tools.
    pub tools: Vec<Value>,
    /// Required, nullable.
    pub temperature: Option<f64>,
    /// Required, nullable.
    pub top_p: Option<f64>,
    /// The request's limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// The request's reasoning settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Value>,
    /// The request's text settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Value>,
    /// Token counts (once finished).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ResponseUsage>,
}

/// `ResponseError`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseError {
    /// One of `ResponseErrorCode` (`server_error`, `rate_limit_exceeded`…).
    pub code: String,
    /// What went wrong.
    pub message: String,
}

/// `incomplete_details`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncompleteDetails {
    /// `max_output_tokens` or `content_filter`.
    pub reason: String,
}

/// An output item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    /// `OutputMessage`.
    Message {
        /// `msg_…`.
        id: String,
        /// `in_progress`, `completed` or `incomplete`.
        status: String,
        /// Always `assistant`.
        role: String,
        /// Its parts.
        content: Vec<OutputContent>,
    },
    /// `FunctionToolCall`.
    FunctionCall {
        /// `fc_…`.
        id: String,
        /// The id a `function_call_output` answers.
        call_id: String,
        /// The function.
        name: String,
        /// Its arguments, a JSON text.
        arguments: String,
        /// `in_progress` or `completed`.
        status: String,
    },
    /// `ReasoningItem`.
    Reasoning {
        /// `rs_…`.
        id: String,
        /// Required; empty (no summaries are made).
        summary: Vec<Value>,
        /// The reasoning text.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        content: Vec<ReasoningText>,
    },
}

/// A part of an output message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputContent {
    /// `OutputTextContent`.
    OutputText {
        /// The text.
        text: String,
        /// Required (none are made).
        annotations: Vec<Value>,
        /// Required (none are made).
        logprobs: Vec<Value>,
    },
    /// `RefusalContent`.
    Refusal {
        /// Why the model refused.
        refusal: String,
    },
}

/// `ReasoningTextContent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasoningText {
    /// Always `reasoning_text`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text.
    pub text: String,
}

/// `ResponseUsage`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseUsage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Required breakdown.
    pub input_tokens_details: InputTokensDetails,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Required breakdown.
    pub output_tokens_details: OutputTokensDetails,
    /// Their sum.
    pub total_tokens: u64,
}

/// `input_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    /// Read from a prompt cache.
    pub cached_tokens: u64,
    /// Written to a prompt cache.
    pub cache_write_tokens: u64,
}

/// `output_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    /// Spent reasoning.
    pub reasoning_tokens: u64,
}

impl From<&crate::Usage> for ResponseUsage {
    fn from(u: &crate::Usage) -> Self {
        Self {
            input_tokens: u.prompt_tokens,
            input_tokens_details: InputTokensDetails {
                cached_tokens: u
                    .prompt_tokens_details
                    .as_ref()
                    .and_then(|d| d.cached_tokens)
                    .unwrap_or(0),
                cache_write_tokens: 0,
            },
            output_tokens: u.completion_tokens,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: u
                    .completion_tokens_details
                    .as_ref()
                    .and_then(|d| d.reasoning_tokens)
                    .unwrap_or(0),
            },
            total_tokens: u.total_tokens,
        }
    }
}
