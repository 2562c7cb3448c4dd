//! Messages over chat completions: a [`MessagesRequest`] as a chat request
//! ([`to_chat`]), a `chat.completion` as a [`Message`] ([`from_chat`]),
//! and the prompt-token estimate of `count_tokens` ([`prompt_tokens`]).
//!
//! What has no chat equivalent travels in chat's extension fields, so a
//! backend that understands them keeps it: a block's `cache_control` in
//! the text part's extra fields, earlier thinking blocks with their
//! signatures as `thinking_blocks` on the assistant message (LiteLLM's
//! convention), `top_k` as an extra field.

use openai_types::chat::{
    AssistantMessage, ChatCompletion, ChatCompletionRequest, ChatMessage, ContentPart,
    FinishReason, FunctionCall, FunctionDefinition, FunctionName, FunctionType, ImageUrl,
    MessageContent, NamedToolChoice, SystemMessage, ThinkingBlock, Tool as ChatTool, ToolCall,
    ToolChoice as ChatToolChoice, ToolChoiceMode, ToolMessage, UserMessage,
};
use openai_types::validate::Invalid;
use openai_types::{StreamOptions, StringOrArray};
use serde_json::{Map, Value, json};

use crate::message::{AssistantTag, ContentBlock, Message, MessageTag, StopReason, Usage};
use crate::request::{Block, Content, MessagesRequest, Role, Source, System, Tool, ToolChoice};

fn invalid(message: impl Into<String>, param: impl Into<String>) -> Invalid {
    Invalid {
        message: message.into(),
        param: param.into(),
    }
}

/// The chat request that serves `r`: the system prompt first, each turn's
/// blocks as chat content parts, an assistant turn's `tool_use` blocks as
/// its `tool_calls`, a user turn's `tool_result` blocks as tool messages
/// (before the rest of the turn; images in a result follow as a user
/// message), tools and `tool_choice`, `thinking` as `reasoning_effort`
/// (its share of `max_tokens`). A stream always asks for usage.
///
/// Refused: server tools (a tool with a `type` other than `custom`) and a
/// block that cannot stand where it is (`tool_use` in a user turn,
/// `tool_result` in an assistant turn).
pub fn to_chat(r: &MessagesRequest) -> Result<ChatCompletionRequest, Invalid> {
    let mut messages = Vec::with_capacity(r.messages.len() + 1);
    if let Some(s) = &r.system {
        let content = match s {
            System::Text(t) => Content::Text(t.clone()),
            System::Blocks(b) => Content::Blocks(b.clone()),
        };
        messages.push(system(&content, "system")?);
    }
    for (i, m) in r.messages.iter().enumerate() {
        match (m.role, &m.content) {
            (Role::System, content) => messages.push(system(content, &format!("messages.{i}"))?),
            (Role::User, Content::Text(t)) => messages.push(user(MessageContent::Text(t.clone()))),
            (Role::Assistant, Content::Text(t)) => {
                messages.push(ChatMessage::Assistant(AssistantMessage {
                    content: Some(MessageContent::Text(t.clone())),
                    ..AssistantMessage::default()
                }))
            }
            (Role::User, Content::Blocks(blocks)) => user_turn(i, blocks, &mut messages)?,
            (Role::Assistant, Content::Blocks(blocks)) => {
                messages.push(assistant_turn(i, blocks)?);
            }
        }
    }
    let mut extra = Map::new();
    if let Some(k) = r.top_k {
        extra.insert("top_k".into(), k.into());
    }
    let (tool_choice, parallel) = match &r.tool_choice {
        None => (None, None),
        Some(c) => chat_tool_choice(c),
    };
    Ok(ChatCompletionRequest {
        model: r.model.clone(),
        messages,
        stream: r.stream,
        stream_options: r.is_stream().then(|| StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        }),
        tools: r.tools.as_deref().map(chat_tools).transpose()?,
        tool_choice,
        parallel_tool_calls: parallel,
        stop: r
            .stop_sequences
            .clone()
            .filter(|s| !s.is_empty())
            .map(StringOrArray::Array),
        max_tokens: Some(r.max_tokens),
        temperature: r.temperature,
        top_p: r.top_p,
        user: r.metadata.as_ref().and_then(|m| m.user_id.clone()),
        reasoning_effort: effort(r),
        extra,
        ..ChatCompletionRequest::default()
    })
}

/// A system prompt (text blocks keep their `cache_control`).
fn system(content: &Content, at: &str) -> Result<ChatMessage, Invalid> {
    let content = match content {
        Content::Text(t) => MessageContent::Text(t.clone()),
        Content::Blocks(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.iter().enumerate() {
                let Block::Text { text, extra } = b else {
                    return Err(invalid(
                        "system blocks must be text blocks",
                        format!("{at}.{i}.type"),
                    ));
                };
                parts.push(ContentPart::Text {
                    text: text.clone(),
                    extra: extra.clone(),
                });
            }
            MessageContent::Parts(parts)
        }
    };
    Ok(ChatMessage::System(SystemMessage {
        content,
        name: None,
        extra: Map::new(),
    }))
}

fn user(content: MessageContent) -> ChatMessage {
    ChatMessage::User(UserMessage {
        content,
        name: None,
        extra: Map::new(),
    })
}

/// A user turn's blocks: tool results as tool messages (first), the rest
/// as one user message.
fn user_turn(i: usize, blocks: &[Block], out: &mut Vec<ChatMessage>) -> Result<(), Invalid> {
    let mut parts = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let at = || format!("messages.{i}.content.{j}");
        match b {
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
                extra,
            } => {
                let (text, images) = result_content(content.as_ref(), &at)?;
                let text = if *is_error == Some(true) {
                    format!("Error: {text}")
                } else {
                    text
                };
                // A cache breakpoint on the result stays on its text.
                let content = match extra.get("cache_control") {
                    Some(c) => {
                        let mut keep = Map::new();
                        keep.insert("cache_control".into(), c.clone());
                        MessageContent::Parts(vec![ContentPart::Text { text, extra: keep }])
                    }
                    None => MessageContent::Text(text),
                };
                out.push(ChatMessage::Tool(ToolMessage {
                    content,
                    tool_call_id: tool_use_id.clone(),
                    extra: Map::new(),
                }));
                if !images.is_empty() {
                    out.push(user(MessageContent::Parts(images)));
                }
            }
            Block::ToolUse { .. } => {
                return Err(invalid(
                    "tool_use blocks belong in assistant turns",
                    format!("{}.type", at()),
                ));
            }
            other => parts.extend(part(other, &at)?),
        }
    }
    if !parts.is_empty() {
        out.push(user(MessageContent::Parts(parts)));
    }
    Ok(())
}

/// A `tool_result`'s content: its text (blocks joined by newlines) and its
/// images.
fn result_content(
    content: Option<&Content>,
    at: &dyn Fn() -> String,
) -> Result<(String, Vec<ContentPart>), Invalid> {
    let mut text = String::new();
    let mut images = Vec::new();
    match content {
        None => {}
        Some(Content::Text(t)) => text.push_str(t),
        Some(Content::Blocks(blocks)) => {
            for b in blocks {
                match b {
                    Block::Text { text: t, .. } => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(t);
                    }
                    other => images.extend(part(other, at)?),
                }
            }
        }
    }
    Ok((text, images))
}

/// A user-side block as a chat content part (`None`: nothing to send).
fn part(b: &Block, at: &dyn Fn() -> String) -> Result<Option<ContentPart>, Invalid> {
    Ok(Some(match b {
        Block::Text { text, extra } => ContentPart::Text {
            text: text.clone(),
            extra: extra.clone(),
        },
        Block::Image { source, .. } => ContentPart::ImageUrl {
            image_url: ImageUrl {
                url: match source {
                    Source::Base64 { media_type, data } => {
                        format!("data:{media_type};base64,{data}")
                    }
                    Source::Url { url } => url.clone(),
                    _ => {
                        return Err(invalid(
                            "an image's source is base64 or url",
                            format!("{}.source.type", at()),
                        ));
                    }
                },
                detail: None,
            },
        },
        Block::Document { source, title, .. } => match source {
            Source::Base64 { media_type, data } => {
                let mut file = Map::new();
                file.insert(
                    "file_data".into(),
                    format!("data:{media_type};base64,{data}").into(),
                );
                file.insert(
                    "filename".into(),
                    title.clone().unwrap_or_else(|| "document".into()).into(),
                );
                ContentPart::File { file }
            }
            Source::Text { data, .. } => ContentPart::Text {
                text: match title {
                    Some(t) => format!("{t}\n\n{data}"),
                    None => data.clone(),
                },
                extra: Map::new(),
            },
            Source::Content { content } => ContentPart::Text {
                text: content_text(content),
                extra: Map::new(),
            },
            Source::Url { url } => {
                let mut file = Map::new();
                file.insert("file_url".into(), url.clone().into());
                ContentPart::File { file }
            }
        },
        // Thinking belongs to assistant turns; a client that echoes it in a
        // user turn sends nothing a model should read.
        Block::Thinking { .. } | Block::RedactedThinking { .. } => return Ok(None),
        Block::ToolUse { .. } | Block::ToolResult { .. } => {
            return Err(invalid(
                "this block cannot stand here",
                format!("{}.type", at()),
            ));
        }
    }))
}

fn content_text(c: &Content) -> String {
    match c {
        Content::Text(t) => t.clone(),
        Content::Blocks(blocks) => blocks
            .iter()
            .filter_map(|b| match b {
                Block::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// An assistant turn: its text, its tool calls, its thinking (as
/// `reasoning_content`, and with signatures as `thinking_blocks`).
fn assistant_turn(i: usize, blocks: &[Block]) -> Result<ChatMessage, Invalid> {
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        match b {
            Block::Text { text: t, .. } => text.push_str(t),
            Block::ToolUse {
                id, name, input, ..
            } => calls.push(ToolCall {
                id: id.clone(),
                kind: FunctionType,
                function: FunctionCall {
                    name: name.clone(),
                    arguments: input.to_string(),
                },
            }),
            Block::Thinking {
                thinking,
                signature,
            } => {
                reasoning.push_str(thinking);
                thinking_blocks.push(
                    json!({"type": "thinking", "thinking": thinking, "signature": signature}),
                );
            }
            Block::RedactedThinking { data } => {
                thinking_blocks.push(json!({"type": "redacted_thinking", "data": data}));
            }
            _ => {
                return Err(invalid(
                    "assistant turns hold text, tool_use and thinking blocks",
                    format!("messages.{i}.content.{j}.type"),
                ));
            }
        }
    }
    let mut extra = Map::new();
    if !thinking_blocks.is_empty() {
        extra.insert("thinking_blocks".into(), Value::Array(thinking_blocks));
    }
    Ok(ChatMessage::Assistant(AssistantMessage {
        content: (!text.is_empty() || calls.is_empty()).then_some(MessageContent::Text(text)),
        tool_calls: (!calls.is_empty()).then_some(calls),
        reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
        extra,
        ..AssistantMessage::default()
    }))
}

fn chat_tools(tools: &[Tool]) -> Result<Vec<ChatTool>, Invalid> {
    tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.kind.as_deref().is_some_and(|k| k != "custom") {
                return Err(invalid(
                    format!(
                        "server tool '{}' is not available for this model: only custom tools are",
                        t.kind.as_deref().unwrap_or_default()
                    ),
                    format!("tools.{i}.type"),
                ));
            }
            Ok(ChatTool {
                kind: FunctionType,
                function: FunctionDefinition {
                    name: t.name.clone(),
                    description: t.description.clone().filter(|d| !d.is_empty()),
                    parameters: Some(
                        t.input_schema
                            .clone()
                            .unwrap_or_else(|| json!({"type": "object"})),
                    ),
                    strict: None,
                },
                // A tool's cache breakpoint reaches backends that cache.
                cache_control: t.extra.get("cache_control").cloned(),
            })
        })
        .collect()
}

fn chat_tool_choice(c: &ToolChoice) -> (Option<ChatToolChoice>, Option<bool>) {
    let parallel = |d: &Option<bool>| d.map(|d| !d);
    match c {
        ToolChoice::Auto {
            disable_parallel_tool_use: d,
        } => (
            Some(ChatToolChoice::Mode(ToolChoiceMode::Auto)),
            parallel(d),
        ),
        ToolChoice::Any {
            disable_parallel_tool_use: d,
        } => (
            Some(ChatToolChoice::Mode(ToolChoiceMode::Required)),
            parallel(d),
        ),
        ToolChoice::Tool {
            name,
            disable_parallel_tool_use: d,
        } => (
            Some(ChatToolChoice::Named(NamedToolChoice {
                kind: FunctionType,
                function: FunctionName { name: name.clone() },
            })),
            parallel(d),
        ),
        ToolChoice::None => (Some(ChatToolChoice::Mode(ToolChoiceMode::None)), None),
    }
}

/// `thinking` as `reasoning_effort`: an `enabled` budget by its share of
/// `max_tokens` (up to 0.3 low, 0.6 medium, above high); `adaptive` by
/// `output_config.effort` (medium when absent).
fn effort(r: &MessagesRequest) -> Option<String> {
    let t = r.thinking.as_ref()?;
    match t.kind.as_str() {
        "enabled" => {
            let share = f64::from(t.budget_tokens?) / f64::from(r.max_tokens.max(1));
            Some(
                if share <= 0.3 {
                    "low"
                } else if share <= 0.6 {
                    "medium"
                } else {
                    "high"
                }
                .to_owned(),
            )
        }
        "adaptive" => {
            let effort = r
                .extra
                .get("output_config")
                .and_then(|c| c["effort"].as_str());
            Some(match effort {
                Some(e @ ("low" | "medium" | "high")) => e.to_owned(),
                Some("max") => "high".to_owned(),
                _ => "medium".to_owned(),
            })
        }
        _ => None,
    }
}

/// The prompt-token estimate of `r` (what `count_tokens` answers when the
/// backend cannot count): the chat request's estimate plus its tools'
/// schemas.
pub fn prompt_tokens(chat: &ChatCompletionRequest) -> u64 {
    let tools: u64 = chat
        .tools
        .iter()
        .flatten()
        .map(|t| {
            openai_types::tokens::estimate_tokens(
                &serde_json::to_string(&t.function).unwrap_or_default(),
            )
        })
        .sum();
    openai_types::validate::chat_prompt_tokens(chat) + tools
}

/// The stop reason of a chat finish reason.
pub fn stop_reason(f: FinishReason) -> StopReason {
    match f {
        FinishReason::Stop => StopReason::EndTurn,
        FinishReason::Length => StopReason::MaxTokens,
        FinishReason::ToolCalls | FinishReason::FunctionCall => StopReason::ToolUse,
        FinishReason::ContentFilter => StopReason::Refusal,
    }
}

/// A tool call's arguments as a `tool_use` input: the JSON object, or the
/// raw text when a backend's arguments were not JSON (nothing dropped).
pub fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return Value::Object(Map::new());
    }
    serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.to_owned()))
}

/// `c` (its first choice) as a message `id` of `model`: thinking, text and
/// tool calls as blocks in that order, the stop reason, usage with cache
/// reads split out (no usage: zeros).
pub fn from_chat(c: &ChatCompletion, id: &str, model: &str) -> Message {
    let mut content = Vec::new();
    let mut stop = StopReason::EndTurn;
    if let Some(choice) = c.choices.first() {
        let m = &choice.message;
        match &m.thinking_blocks {
            // Signed blocks, as the backend gave them.
            Some(blocks) => content.extend(blocks.iter().map(|b| match b {
                ThinkingBlock::Thinking {
                    thinking,
                    signature,
                } => ContentBlock::Thinking {
                    thinking: thinking.clone(),
                    signature: signature.clone().unwrap_or_default(),
                },
                ThinkingBlock::RedactedThinking { data } => {
                    ContentBlock::RedactedThinking { data: data.clone() }
                }
            })),
            None => {
                if let Some(r) = m.reasoning_content.as_deref().filter(|r| !r.is_empty()) {
                    content.push(ContentBlock::Thinking {
                        thinking: r.to_owned(),
                        signature: String::new(),
                    });
                }
            }
        }
        if let Some(t) = m.content.as_deref().filter(|t| !t.is_empty()) {
            content.push(ContentBlock::Text { text: t.to_owned() });
        }
        if let Some(r) = m.refusal.as_deref().filter(|t| !t.is_empty()) {
            content.push(ContentBlock::Text { text: r.to_owned() });
        }
        for call in m.tool_calls.iter().flatten() {
            content.push(ContentBlock::ToolUse {
                id: call.id.clone(),
                name: call.function.name.clone(),
                input: tool_input(&call.function.arguments),
            });
        }
        stop = stop_reason(choice.finish_reason);
    }
    Message {
        id: id.to_owned(),
        kind: MessageTag,
        role: AssistantTag,
        content,
        model: model.to_owned(),
        stop_reason: Some(stop),
        stop_sequence: None,
        usage: c.usage.as_ref().map(Usage::from_openai).unwrap_or_default(),
    }
}
