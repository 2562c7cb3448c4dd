//! The [`wire`] types to and from `aws-sdk-bedrockruntime`'s (feature
//! `aws-sdk`): a [`wire::ConverseRequest`] as the parts of the SDK's
//! `Converse` / `ConverseStream` builders ([`to_sdk`]), and the SDK's
//! answer and stream events back as [`wire`] types
//! ([`from_sdk_message`], [`from_sdk_usage`], [`from_sdk_event`]), so
//! the translation to and from OpenAI's types runs on an SDK client:
//!
//! ```no_run
//! # async fn run(client: aws_sdk_bedrockruntime::Client, chat: openai_types::chat::ChatCompletionRequest) -> Result<(), Box<dyn std::error::Error>> {
//! use bedrock_converse::{RequestOptions, ReasoningStyle, sdk};
//!
//! let opts = RequestOptions {
//!     model_id: "anthropic.claude-3-haiku-20240307-v1:0".into(),
//!     reasoning: ReasoningStyle::Auto,
//!     default_max_tokens: None,
//!     // Cache points for a long conversation, placed by the gateway.
//!     prompt_cache: Some(bedrock_converse::cache::AutoCache::for_model(
//!         "anthropic.claude-3-haiku-20240307-v1:0",
//!     )),
//!     guardrail: None,
//! };
//! let converse = bedrock_converse::to_converse(&chat, &opts, &Default::default())?;
//! let r = sdk::to_sdk(converse)?;
//! let out = client
//!     .converse()
//!     .model_id(&opts.model_id)
//!     .set_messages(Some(r.messages))
//!     .set_system(r.system)
//!     .set_inference_config(r.inference)
//!     .set_tool_config(r.tools)
//!     .set_additional_model_request_fields(r.extra)
//!     .send()
//!     .await?;
//! let answer = sdk::from_sdk_response(out).ok_or("no message")?;
//! # let _ = answer; Ok(()) }
//! ```

use aws_sdk_bedrockruntime::types as sdk;
use aws_smithy_types::{Blob, Document, Number};
use serde_json::Value;

use crate::wire::{self, BlockDelta, StreamEvent};

/// A Converse request as the SDK builders' parts.
#[derive(Debug)]
#[non_exhaustive]
pub struct SdkRequest {
    /// `messages`.
    pub messages: Vec<sdk::Message>,
    /// `system`.
    pub system: Option<Vec<sdk::SystemContentBlock>>,
    /// `inferenceConfig`.
    pub inference: Option<sdk::InferenceConfiguration>,
    /// `toolConfig`.
    pub tools: Option<sdk::ToolConfiguration>,
    /// `additionalModelRequestFields`.
    pub extra: Option<Document>,
    /// `outputConfig`.
    pub output: Option<sdk::OutputConfig>,
    /// `guardrailConfig` (set with [`guardrail`] or [`guardrail_stream`]:
    /// the two operations take different types).
    pub guardrail: Option<wire::GuardrailConfig>,
}

/// A guardrail as `Converse` takes it.
pub fn guardrail(g: &wire::GuardrailConfig) -> sdk::GuardrailConfiguration {
    sdk::GuardrailConfiguration::builder()
        .guardrail_identifier(&g.guardrail_identifier)
        .guardrail_version(&g.guardrail_version)
        .set_trace(g.trace.as_deref().map(sdk::GuardrailTrace::from))
        .build()
}

/// A guardrail as `ConverseStream` takes it (with its processing mode).
pub fn guardrail_stream(g: &wire::GuardrailConfig) -> sdk::GuardrailStreamConfiguration {
    sdk::GuardrailStreamConfiguration::builder()
        .guardrail_identifier(&g.guardrail_identifier)
        .guardrail_version(&g.guardrail_version)
        .set_trace(g.trace.as_deref().map(sdk::GuardrailTrace::from))
        .set_stream_processing_mode(
            g.stream_processing_mode
                .as_deref()
                .map(sdk::GuardrailStreamProcessingMode::from),
        )
        .build()
}

/// An SDK builder refused a value (a required field missing).
#[derive(Debug, thiserror::Error)]
#[error("could not build the Bedrock request: {0}")]
pub struct BuildError(String);

fn build_err(e: aws_smithy_types::error::operation::BuildError) -> BuildError {
    BuildError(e.to_string())
}

/// A Converse request as the SDK builders' parts.
pub fn to_sdk(r: wire::ConverseRequest) -> Result<SdkRequest, BuildError> {
    let messages = r
        .messages
        .into_iter()
        .map(|m| {
            let content = m
                .content
                .into_iter()
                .map(block_to_sdk)
                .collect::<Result<Vec<_>, _>>()?;
            sdk::Message::builder()
                .role(match m.role {
                    wire::Role::User => sdk::ConversationRole::User,
                    wire::Role::Assistant => sdk::ConversationRole::Assistant,
                })
                .set_content(Some(content))
                .build()
                .map_err(build_err)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let system = if r.system.is_empty() {
        None
    } else {
        Some(
            r.system
                .into_iter()
                .map(|b| {
                    Ok(match b {
                        wire::SystemBlock::Text(t) => sdk::SystemContentBlock::Text(t),
                        wire::SystemBlock::CachePoint(c) => {
                            sdk::SystemContentBlock::CachePoint(cache_point(c)?)
                        }
                    })
                })
                .collect::<Result<Vec<_>, BuildError>>()?,
        )
    };
    let inference = r.inference_config.map(|i| {
        sdk::InferenceConfiguration::builder()
            .set_max_tokens(i.max_tokens.map(|v| v.min(i32::MAX as u32) as i32))
            .set_temperature(i.temperature.map(|v| v as f32))
            .set_top_p(i.top_p.map(|v| v as f32))
            .set_stop_sequences((!i.stop_sequences.is_empty()).then_some(i.stop_sequences))
            .build()
    });
    let tools = match r.tool_config {
        None => None,
        Some(tc) => {
            let tools = tc
                .tools
                .into_iter()
                .map(|t| match t {
                    wire::Tool::ToolSpec(s) => {
                        let wire::InputSchema::Json(schema) = s.input_schema;
                        sdk::ToolSpecification::builder()
                            .name(s.name)
                            .set_description(s.description)
                            .input_schema(sdk::ToolInputSchema::Json(to_document(schema)))
                            .set_strict(s.strict)
                            .build()
                            .map(sdk::Tool::ToolSpec)
                            .map_err(build_err)
                    }
                    wire::Tool::CachePoint(c) => cache_point(c).map(sdk::Tool::CachePoint),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let choice = match tc.tool_choice {
                None => None,
                Some(wire::ToolChoice::Auto(_)) => Some(sdk::ToolChoice::Auto(
                    sdk::AutoToolChoice::builder().build(),
                )),
                Some(wire::ToolChoice::Any(_)) => {
                    Some(sdk::ToolChoice::Any(sdk::AnyToolChoice::builder().build()))
                }
                Some(wire::ToolChoice::Tool(n)) => Some(sdk::ToolChoice::Tool(
                    sdk::SpecificToolChoice::builder()
                        .name(n.name)
                        .build()
                        .map_err(build_err)?,
                )),
            };
            Some(
                sdk::ToolConfiguration::builder()
                    .set_tools(Some(tools))
                    .set_tool_choice(choice)
                    .build()
                    .map_err(build_err)?,
            )
        }
    };
    let output = match r.output_config {
        None => None,
        Some(o) => {
            let wire::OutputStructure::JsonSchema(d) = o.text_format.structure;
            let def = sdk::JsonSchemaDefinition::builder()
                .schema(d.schema)
                .set_name(d.name)
                .set_description(d.description)
                .build()
                .map_err(build_err)?;
            Some(
                sdk::OutputConfig::builder()
                    .text_format(
                        sdk::OutputFormat::builder()
                            .r#type(sdk::OutputFormatType::from(o.text_format.kind.as_str()))
                            .structure(sdk::OutputFormatStructure::JsonSchema(def))
                            .build()
                            .map_err(build_err)?,
                    )
                    .build(),
            )
        }
    };
    Ok(SdkRequest {
        messages,
        system,
        inference,
        tools,
        output,
        guardrail: r.guardrail_config,
        extra: r
            .additional_model_request_fields
            .map(|m| to_document(Value::Object(m))),
    })
}

/// An image block as the SDK's.
pub fn image_to_sdk(i: wire::ImageBlock) -> Result<sdk::ImageBlock, BuildError> {
    let wire::ImageSource::Bytes(bytes) = i.source;
    sdk::ImageBlock::builder()
        .format(sdk::ImageFormat::from(i.format.as_str()))
        .source(sdk::ImageSource::Bytes(Blob::new(bytes)))
        .build()
        .map_err(build_err)
}

/// A content block as the SDK's.
pub fn block_to_sdk(b: wire::ContentBlock) -> Result<sdk::ContentBlock, BuildError> {
    Ok(match b {
        wire::ContentBlock::Text(t) => sdk::ContentBlock::Text(t),
        wire::ContentBlock::Image(i) => sdk::ContentBlock::Image(image_to_sdk(i)?),
        wire::ContentBlock::ToolUse(t) => sdk::ContentBlock::ToolUse(
            sdk::ToolUseBlock::builder()
                .tool_use_id(t.tool_use_id)
                .name(t.name)
                .input(to_document(t.input))
                .build()
                .map_err(build_err)?,
        ),
        wire::ContentBlock::ToolResult(r) => {
            let content = r
                .content
                .into_iter()
                .map(|c| {
                    Ok(match c {
                        wire::ToolResultContent::Text(t) => sdk::ToolResultContentBlock::Text(t),
                        wire::ToolResultContent::Json(v) => {
                            sdk::ToolResultContentBlock::Json(to_document(v))
                        }
                        wire::ToolResultContent::Image(i) => {
                            sdk::ToolResultContentBlock::Image(image_to_sdk(i)?)
                        }
                    })
                })
                .collect::<Result<Vec<_>, BuildError>>()?;
            sdk::ContentBlock::ToolResult(
                sdk::ToolResultBlock::builder()
                    .tool_use_id(r.tool_use_id)
                    .set_content(Some(content))
                    .set_status(r.status.map(|s| sdk::ToolResultStatus::from(s.as_str())))
                    .build()
                    .map_err(build_err)?,
            )
        }
        wire::ContentBlock::ReasoningContent(wire::ReasoningContent::ReasoningText(t)) => {
            sdk::ContentBlock::ReasoningContent(sdk::ReasoningContentBlock::ReasoningText(
                sdk::ReasoningTextBlock::builder()
                    .text(t.text)
                    .set_signature(t.signature)
                    .build()
                    .map_err(build_err)?,
            ))
        }
        wire::ContentBlock::ReasoningContent(wire::ReasoningContent::RedactedContent(b)) => {
            sdk::ContentBlock::ReasoningContent(sdk::ReasoningContentBlock::RedactedContent(
                Blob::new(b),
            ))
        }
        wire::ContentBlock::CachePoint(c) => sdk::ContentBlock::CachePoint(cache_point(c)?),
        wire::ContentBlock::Document(d) => {
            let wire::DocumentSource::Bytes(bytes) = d.source;
            sdk::ContentBlock::Document(
                sdk::DocumentBlock::builder()
                    .format(sdk::DocumentFormat::from(d.format.as_str()))
                    .name(d.name)
                    .source(sdk::DocumentSource::Bytes(Blob::new(bytes)))
                    .build()
                    .map_err(build_err)?,
            )
        }
    })
}

/// A cache point as the SDK's.
fn cache_point(c: wire::CachePoint) -> Result<sdk::CachePointBlock, BuildError> {
    sdk::CachePointBlock::builder()
        .r#type(sdk::CachePointType::from(c.kind.as_str()))
        .set_ttl(c.ttl.as_deref().map(sdk::CacheTtl::from))
        .build()
        .map_err(build_err)
}

/// The SDK's answer message as the wire's (the blocks the translation
/// reads: text, tool use, reasoning text).
pub fn from_sdk_message(m: sdk::Message) -> wire::Message {
    let content = m
        .content
        .into_iter()
        .filter_map(|b| match b {
            sdk::ContentBlock::Text(t) => Some(wire::ContentBlock::Text(t)),
            sdk::ContentBlock::ToolUse(t) => Some(wire::ContentBlock::ToolUse(wire::ToolUse {
                tool_use_id: t.tool_use_id,
                name: t.name,
                input: from_document(t.input),
            })),
            sdk::ContentBlock::ReasoningContent(sdk::ReasoningContentBlock::ReasoningText(t)) => {
                Some(wire::ContentBlock::ReasoningContent(
                    wire::ReasoningContent::ReasoningText(wire::ReasoningText {
                        text: t.text,
                        signature: t.signature,
                    }),
                ))
            }
            sdk::ContentBlock::ReasoningContent(sdk::ReasoningContentBlock::RedactedContent(b)) => {
                Some(wire::ContentBlock::ReasoningContent(
                    wire::ReasoningContent::RedactedContent(b.into_inner()),
                ))
            }
            _ => None,
        })
        .collect();
    wire::Message {
        role: wire::Role::Assistant,
        content,
    }
}

fn count(v: i32) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The SDK's `Converse` answer as the wire's, for
/// [`crate::to_chat_completion`]: `None` when it holds no message.
pub fn from_sdk_response(
    out: aws_sdk_bedrockruntime::operation::converse::ConverseOutput,
) -> Option<wire::ConverseResponse> {
    let message = match out.output {
        Some(sdk::ConverseOutput::Message(m)) => from_sdk_message(m),
        _ => return None,
    };
    Some(wire::ConverseResponse {
        output: wire::ConverseOutput::Message(message),
        stop_reason: out.stop_reason.as_str().to_owned(),
        usage: out.usage.as_ref().map(from_sdk_usage).unwrap_or_default(),
        additional_model_response_fields: None,
    })
}

/// The SDK's token usage as the wire's.
pub fn from_sdk_usage(u: &sdk::TokenUsage) -> wire::TokenUsage {
    wire::TokenUsage {
        input_tokens: count(u.input_tokens),
        output_tokens: count(u.output_tokens),
        total_tokens: count(u.total_tokens),
        cache_read_input_tokens: u.cache_read_input_tokens.map(count),
        cache_write_input_tokens: u.cache_write_input_tokens.map(count),
    }
}

fn index(i: i32) -> u32 {
    u32::try_from(i).unwrap_or(0)
}

/// An SDK stream event as the library's event.
pub fn from_sdk_event(e: sdk::ConverseStreamOutput) -> StreamEvent {
    use sdk::ConverseStreamOutput as O;
    match e {
        O::MessageStart(_) => StreamEvent::MessageStart {
            role: wire::Role::Assistant,
        },
        O::ContentBlockStart(s) => StreamEvent::ContentBlockStart {
            index: index(s.content_block_index),
            tool_use: match s.start {
                Some(sdk::ContentBlockStart::ToolUse(t)) => Some(wire::ToolUseStart {
                    tool_use_id: t.tool_use_id,
                    name: t.name,
                }),
                _ => None,
            },
        },
        O::ContentBlockDelta(d) => StreamEvent::ContentBlockDelta {
            index: index(d.content_block_index),
            delta: match d.delta {
                Some(sdk::ContentBlockDelta::Text(t)) => BlockDelta::Text(t),
                Some(sdk::ContentBlockDelta::ToolUse(t)) => BlockDelta::ToolUseInput(t.input),
                Some(sdk::ContentBlockDelta::ReasoningContent(r)) => match r {
                    sdk::ReasoningContentBlockDelta::Text(t) => BlockDelta::ReasoningText(t),
                    sdk::ReasoningContentBlockDelta::Signature(s) => {
                        BlockDelta::ReasoningSignature(s)
                    }
                    sdk::ReasoningContentBlockDelta::RedactedContent(_) => {
                        BlockDelta::ReasoningRedacted
                    }
                    _ => BlockDelta::Other,
                },
                _ => BlockDelta::Other,
            },
        },
        O::ContentBlockStop(s) => StreamEvent::ContentBlockStop {
            index: index(s.content_block_index),
        },
        O::MessageStop(s) => StreamEvent::MessageStop {
            stop_reason: s.stop_reason.as_str().to_owned(),
        },
        O::Metadata(m) => StreamEvent::Metadata {
            usage: m.usage.as_ref().map(from_sdk_usage),
        },
        other => StreamEvent::Unknown(format!("{other:?}")),
    }
}

/// JSON to a Smithy document.
pub fn to_document(v: Value) -> Document {
    match v {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(b),
        Value::Number(n) => Document::Number(if let Some(u) = n.as_u64() {
            Number::PosInt(u)
        } else if let Some(i) = n.as_i64() {
            Number::NegInt(i)
        } else {
            Number::Float(n.as_f64().unwrap_or(0.0))
        }),
        Value::String(s) => Document::String(s),
        Value::Array(a) => Document::Array(a.into_iter().map(to_document).collect()),
        Value::Object(o) => {
            Document::Object(o.into_iter().map(|(k, v)| (k, to_document(v))).collect())
        }
    }
}

/// A Smithy document to JSON.
pub fn from_document(d: Document) -> Value {
    match d {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(b),
        Document::Number(Number::PosInt(u)) => Value::from(u),
        Document::Number(Number::NegInt(i)) => Value::from(i),
        Document::Number(Number::Float(f)) => Value::from(f),
        Document::String(s) => Value::String(s),
        Document::Array(a) => Value::Array(a.into_iter().map(from_document).collect()),
        Document::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, from_document(v))).collect())
        }
    }
}
