//! Chat over a Messages upstream (Anthropic's API, or any server that
//! speaks it): a chat request as a [`MessagesRequest`] ([`to_messages`]),
//! a [`Message`] as a `chat.completion` ([`to_chat_completion`]), and the
//! upstream's event stream as chat stream items
//! ([`crate::upstream_stream::ChatTranslator`]).

use openai_types::chat::{
    ChatCompletion, ChatCompletionRequest, ChatMessage, Choice, ContentPart, FinishReason,
    FunctionCall, FunctionType, MessageContent, ResponseMessage, ThinkingBlock, ToolCall,
    ToolChoice as ChatToolChoice, ToolChoiceMode,
};
use openai_types::validate::Invalid;
use serde_json::{Map, Value, json};

use crate::message::{ContentBlock, Message, finish_reason, openai_usage};
use crate::request::{
    Block, Content, InputMessage, MessagesRequest, Metadata, Role, Source, System, Thinking, Tool,
    ToolChoice,
};

fn invalid(message: impl Into<String>, param: impl Into<String>) -> Invalid {
    Invalid {
        message: message.into(),
        param: param.into(),
    }
}

/// `max_tokens` when a chat request sets none (the Messages API requires
/// one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The Messages request that serves chat request `r`, sent as model
/// `model`: system and developer messages as the system prompt (text parts
/// keep their `cache_control`), parts as blocks (data-URL images base64,
/// others by URL; PDF files as documents), an assistant's `thinking_blocks`
/// first and its tool calls as `tool_use`, tool messages as `tool_result`
/// blocks of one user turn, consecutive turns of one role merged; tools,
/// `tool_choice`, `parallel_tool_calls: false`, `reasoning_effort` as a
/// thinking budget. Refused: `n > 1`, audio parts.
pub fn to_messages(r: &ChatCompletionRequest, model: &str) -> Result<MessagesRequest, Invalid> {
    if r.n.is_some_and(|n| n != 1) {
        return Err(invalid("this model generates one choice: n must be 1", "n"));
    }
    let mut system = Vec::new();
    let mut turns: Vec<InputMessage> = Vec::new();
    for (i, m) in r.messages.iter().enumerate() {
        let (role, blocks) = match m {
            ChatMessage::System(s) | ChatMessage::Developer(s) => {
                system.extend(blocks_of(&s.content, i)?);
                continue;
            }
            ChatMessage::User(u) => (Role::User, blocks_of(&u.content, i)?),
            ChatMessage::Assistant(a) => {
                let mut blocks = Vec::new();
                if let Some(v) = a.extra.get("thinking_blocks") {
                    let signed: Vec<ThinkingBlock> =
                        serde_json::from_value(v.clone()).map_err(|e| {
                            invalid(e.to_string(), format!("messages[{i}].thinking_blocks"))
                        })?;
                    for b in signed {
                        blocks.push(match b {
                            ThinkingBlock::Thinking {
                                thinking,
                                signature,
                            } => Block::Thinking {
                                thinking,
                                signature: signature.unwrap_or_default(),
                            },
                            ThinkingBlock::RedactedThinking { data } => {
                                Block::RedactedThinking { data }
                            }
                        });
                    }
                }
                if let Some(c) = &a.content {
                    blocks.extend(blocks_of(c, i)?);
                }
                for call in a.tool_calls.iter().flatten() {
                    let input = match serde_json::from_str::<Value>(&call.function.arguments) {
                        Ok(v @ Value::Object(_)) => v,
                        _ if call.function.arguments.trim().is_empty() => json!({}),
                        // Not an object: kept whole rather than refused.
                        _ => json!({ "arguments": call.function.arguments }),
                    };
                    blocks.push(Block::ToolUse {
                        id: call.id.clone(),
                        name: call.function.name.clone(),
                        input,
                        extra: Map::new(),
                    });
                }
                (Role::Assistant, blocks)
            }
            ChatMessage::Tool(t) => (
                Role::User,
                vec![Block::ToolResult {
                    tool_use_id: t.tool_call_id.clone(),
                    content: Some(Content::Text(t.content.text().into_owned())),
                    is_error: None,
                    extra: Map::new(),
                }],
            ),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(InputMessage {
                role: last,
                content: Content::Blocks(b),
            }) if *last == role => b.extend(blocks),
            _ => turns.push(InputMessage {
                role,
                content: Content::Blocks(blocks),
            }),
        }
    }
    let max_tokens = r.max_output_tokens().unwrap_or(DEFAULT_MAX_TOKENS);
    let thinking = match r.reasoning_effort.as_deref() {
        None | Some("none") => None,
        Some(effort) => {
            let share = match effort {
                "minimal" | "low" => 0.25,
                "medium" => 0.5,
                _ => 0.8,
            };
            let budget = ((f64::from(max_tokens) * share) as u32).max(1024);
            Some(Thinking {
                kind: "enabled".into(),
                budget_tokens: Some(budget),
                extra: Map::new(),
            })
        }
    };
    // The thinking budget is part of max_tokens: keep room for the answer.
    let max_tokens = match &thinking {
        Some(t) if t.budget_tokens.unwrap_or(0) >= max_tokens => {
            t.budget_tokens.unwrap_or(0) + max_tokens
        }
        _ => max_tokens,
    };
    let disable = r.parallel_tool_calls.map(|p| !p);
    Ok(MessagesRequest {
        model: model.to_owned(),
        messages: turns,
        max_tokens,
        system: (!system.is_empty()).then_some(System::Blocks(system)),
        stop_sequences: r.stop.as_ref().map(|s| s.as_slice().to_vec()),
        stream: r.stream,
        // The Messages API's temperature is 0 to 1.
        temperature: r.temperature.map(|t| t.min(1.0)),
        top_p: r.top_p,
        top_k: r
            .extra
            .get("top_k")
            .and_then(Value::as_u64)
            .map(|k| k as u32),
        tools: r.tools.as_ref().map(|tools| {
            tools
                .iter()
                .map(|t| Tool {
                    name: t.function.name.clone(),
                    description: t.function.description.clone().filter(|d| !d.is_empty()),
                    input_schema: Some(
                        t.function
                            .parameters
                            .clone()
                            .unwrap_or_else(|| json!({"type": "object"})),
                    ),
                    kind: None,
                    // A chat tool's cache breakpoint, as Anthropic takes it.
                    extra: t
                        .cache_control
                        .iter()
                        .map(|c| ("cache_control".to_owned(), c.clone()))
                        .collect(),
                })
                .collect()
        }),
        tool_choice: r.tool_choice.as_ref().map(|c| match c {
            ChatToolChoice::Mode(ToolChoiceMode::None) => ToolChoice::None,
            ChatToolChoice::Mode(ToolChoiceMode::Auto) => ToolChoice::Auto {
                disable_parallel_tool_use: disable,
            },
            ChatToolChoice::Mode(ToolChoiceMode::Required) => ToolChoice::Any {
                disable_parallel_tool_use: disable,
            },
            ChatToolChoice::Named(n) => ToolChoice::Tool {
                name: n.function.name.clone(),
                disable_parallel_tool_use: disable,
            },
        }),
        thinking,
        metadata: r.user.as_ref().map(|u| Metadata {
            user_id: Some(u.clone()),
            extra: Map::new(),
        }),
        extra: Map::new(),
    })
}

/// A chat message's content as blocks.
fn blocks_of(c: &MessageContent, i: usize) -> Result<Vec<Block>, Invalid> {
    let parts = match c {
        MessageContent::Text(t) if t.is_empty() => return Ok(Vec::new()),
        MessageContent::Text(t) => {
            return Ok(vec![Block::Text {
                text: t.clone(),
                extra: Map::new(),
            }]);
        }
        MessageContent::Parts(p) => p,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        out.push(match p {
            ContentPart::Text { text, extra } => Block::Text {
                text: text.clone(),
                extra: extra
                    .iter()
                    .filter(|(k, _)| *k == "cache_control")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            },
            ContentPart::Refusal { refusal } => Block::Text {
                text: refusal.clone(),
                extra: Map::new(),
            },
            ContentPart::ImageUrl { image_url } => Block::Image {
                source: source_of(&image_url.url),
                extra: Map::new(),
            },
            ContentPart::File { file } => {
                let data = file
                    .get("file_data")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        invalid(
                            "only inline files (file_data) can be sent to this model",
                            format!("messages[{i}].content[{j}].file"),
                        )
                    })?;
                Block::Document {
                    source: source_of(data),
                    title: file
                        .get("filename")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    extra: Map::new(),
                }
            }
            ContentPart::InputAudio { .. } => {
                return Err(invalid(
                    "audio input is not supported by this model",
                    format!("messages[{i}].content[{j}].type"),
                ));
            }
        });
    }
    Ok(out)
}

/// A data URL as base64 bytes, anything else by URL.
fn source_of(url: &str) -> Source {
    match url
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(";base64,"))
    {
        Some((media_type, data)) => Source::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        },
        None => Source::Url {
            url: url.to_owned(),
        },
    }
}

/// A message as a `chat.completion` `id` of `model`: text joined, thinking
/// as `reasoning_content` (and, signed, `thinking_blocks`), `tool_use` as
/// tool calls.
pub fn to_chat_completion(m: &Message, id: &str, model: &str, created: u64) -> ChatCompletion {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut signed = Vec::new();
    let mut calls = Vec::new();
    for b in &m.content {
        match b {
            ContentBlock::Text { text: t } => text.push_str(t),
            ContentBlock::Thinking {
                thinking,
                signature,
            } => {
                reasoning.push_str(thinking);
                signed.push(ThinkingBlock::Thinking {
                    thinking: thinking.clone(),
                    signature: Some(signature.clone()).filter(|s| !s.is_empty()),
                });
            }
            ContentBlock::RedactedThinking { data } => {
                signed.push(ThinkingBlock::RedactedThinking { data: data.clone() });
            }
            ContentBlock::ToolUse { id, name, input } => calls.push(ToolCall {
                id: id.clone(),
                kind: FunctionType,
                function: FunctionCall {
                    name: name.clone(),
                    arguments: input.to_string(),
                },
            }),
        }
    }
    ChatCompletion {
        id: id.to_owned(),
        object: Default::default(),
        created,
        model: model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: Default::default(),
                content: (!text.is_empty() || calls.is_empty()).then_some(text),
                refusal: None,
                reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
                tool_calls: (!calls.is_empty()).then_some(calls),
                thinking_blocks: (!signed.is_empty()).then_some(signed),
            },
            logprobs: None,
            finish_reason: m.stop_reason.map_or(FinishReason::Stop, finish_reason),
        }],
        usage: Some(openai_usage(&m.usage)),
        system_fingerprint: None,
        service_tier: None,
    }
}
