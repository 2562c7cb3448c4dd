//! An OpenAI chat request to a Converse request.
//!
//! Remote images are the one input that needs I/O. The translation is split in
//! two so the crate stays sans-I/O: [`remote_image_urls`] lists what to fetch,
//! the caller fetches (with its own SSRF policy) and passes the results to
//! [`to_converse`].

use std::collections::HashMap;

use base64::Engine as _;
use openai_types::chat::{
    AssistantMessage, ChatCompletionRequest, ChatMessage, ContentPart, MessageContent,
    ResponseFormat, ThinkingBlock, ToolChoice, ToolChoiceMode,
};
use serde_json::{Map, Value};

use crate::Error;
use crate::model::{ReasoningStyle, reasoning_style};
#[cfg(test)]
use crate::structured::Closed;
use crate::structured::output_config;
pub use crate::structured::{
    ANSWER_TOOL, close_objects, refuses_output_config, structured_output_fallback,
};
use crate::wire::{
    CachePoint, ContentBlock, ConverseRequest, Empty, ImageBlock, ImageFormat, ImageSource,
    InferenceConfig, InputSchema, Message, NamedTool, ReasoningContent, ReasoningText, Role,
    SystemBlock, Tool, ToolChoice as BrToolChoice, ToolConfig, ToolResult, ToolResultContent,
    ToolSpec, ToolUse,
};

/// Settings of the model a request goes to.
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    /// The Bedrock model id, inference profile id or ARN.
    pub model_id: String,
    /// How `reasoning_effort` is expressed (`Auto` detects it from
    /// `model_id`).
    pub reasoning: ReasoningStyle,
    /// `maxTokens` when the client sets none and one is needed (reasoning
    /// budgets are a share of it).
    pub default_max_tokens: Option<u32>,
    /// Automatic cache points for requests whose client placed none
    /// (see [`crate::cache`]).
    pub prompt_cache: Option<crate::cache::AutoCache>,
    /// The model's guardrail. A request's own `guardrailConfig` applies
    /// only where the model has none: it can add a guardrail, never
    /// replace or remove the operator's.
    pub guardrail: Option<crate::wire::GuardrailConfig>,
}

/// Request fields that are OpenAI's own: never passed to the model as
/// `additionalModelRequestFields`.
const OPENAI_ONLY: &[&str] = &[
    "store",
    "modalities",
    "prediction",
    "audio",
    "service_tier",
    "web_search_options",
    "verbosity",
    "prompt_cache_key",
    "safety_identifier",
    "guardrailConfig",
    "guardrail_config",
    "functions",
    "function_call",
];

/// How many image parts a request carries (data URLs and remote ones): the
/// caller bounds it (Bedrock takes at most 20 images a request).
pub fn image_count(req: &ChatCompletionRequest) -> usize {
    req.messages
        .iter()
        .filter_map(|m| match m {
            ChatMessage::User(u) => match &u.content {
                MessageContent::Parts(parts) => Some(parts),
                MessageContent::Text(_) => None,
            },
            _ => None,
        })
        .flatten()
        .filter(|p| matches!(p, ContentPart::ImageUrl { .. }))
        .count()
}

/// The `http(s)` image URLs of a request, which the caller must fetch.
pub fn remote_image_urls(req: &ChatCompletionRequest) -> Vec<&str> {
    let mut out = Vec::new();
    for m in &req.messages {
        if let ChatMessage::User(u) = m
            && let MessageContent::Parts(parts) = &u.content
        {
            for p in parts {
                if let ContentPart::ImageUrl { image_url } = p
                    && !image_url.url.starts_with("data:")
                    && !out.contains(&image_url.url.as_str())
                {
                    out.push(image_url.url.as_str());
                }
            }
        }
    }
    out
}

/// Decodes a `data:image/…;base64,…` URL.
pub fn decode_data_url(url: &str) -> Result<ImageBlock, String> {
    let rest = url
        .strip_prefix("data:")
        .ok_or_else(|| "not a data URL".to_owned())?;
    let (head, data) = rest
        .split_once(',')
        .ok_or_else(|| "a data URL needs a ',' before its data".to_owned())?;
    let Some(mime) = head.strip_suffix(";base64") else {
        return Err("only base64 data URLs are supported".into());
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| format!("the image's base64 is invalid: {e}"))?;
    let format = ImageFormat::from_mime(mime)
        .or_else(|| ImageFormat::sniff(&bytes))
        .ok_or_else(|| {
            format!("image type '{mime}' is not supported: send png, jpeg, gif or webp")
        })?;
    Ok(ImageBlock {
        format,
        source: ImageSource::Bytes(bytes),
    })
}

/// Translates a chat request. `images` holds the fetched remote images by
/// URL (see [`remote_image_urls`]); a remote URL missing from it is refused.
pub fn to_converse(
    req: &ChatCompletionRequest,
    opts: &RequestOptions,
    images: &HashMap<String, ImageBlock>,
) -> Result<ConverseRequest, Error> {
    if req.n.is_some_and(|n| n != 1) {
        return Err(Error::invalid(
            "Bedrock models generate one choice: n must be 1",
            "n",
        ));
    }
    let mut system = Vec::new();
    let mut messages: Vec<Message> = Vec::new();
    let mut used_tools: Vec<String> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let (role, blocks) = match m {
            ChatMessage::System(s) | ChatMessage::Developer(s) => {
                match &s.content {
                    // Cache points where the client marked them.
                    MessageContent::Parts(parts)
                        if parts.iter().any(|p| cache_point(p).is_some()) =>
                    {
                        for p in parts {
                            if let ContentPart::Text { text, .. } = p {
                                system.push(SystemBlock::Text(text.clone()));
                            }
                            if let Some(c) = cache_point(p) {
                                system.push(SystemBlock::CachePoint(c));
                            }
                        }
                    }
                    content => {
                        let t = text_only(content, i)?;
                        if !t.is_empty() {
                            system.push(SystemBlock::Text(t));
                        }
                    }
                }
                continue;
            }
            ChatMessage::User(u) => (Role::User, user_blocks(&u.content, i, images)?),
            ChatMessage::Assistant(a) => {
                let mut blocks = signed_reasoning(a, i)?;
                if let Some(c) = &a.content {
                    let t = text_only(c, i)?;
                    if !t.trim().is_empty() {
                        blocks.push(ContentBlock::Text(t));
                    }
                    blocks.extend(last_cache_point(c).map(ContentBlock::CachePoint));
                }
                for call in a.tool_calls.iter().flatten() {
                    let args = call.function.arguments.trim();
                    // A past call whose arguments a model wrote as broken
                    // JSON goes on as a JSON string (a Converse `input` is
                    // any JSON value): refusing it would dead-end the
                    // conversation, which repeats it every turn.
                    let input: Value = if args.is_empty() {
                        Value::Object(Map::new())
                    } else {
                        serde_json::from_str(args)
                            .unwrap_or_else(|_| Value::String(call.function.arguments.clone()))
                    };
                    if !used_tools.contains(&call.function.name) {
                        used_tools.push(call.function.name.clone());
                    }
                    blocks.push(ContentBlock::ToolUse(ToolUse {
                        tool_use_id: call.id.clone(),
                        name: call.function.name.clone(),
                        input,
                    }));
                }
                if blocks.is_empty() {
                    continue;
                }
                (Role::Assistant, blocks)
            }
            ChatMessage::Tool(t) => {
                let text = text_only(&t.content, i)?;
                let mut blocks = vec![ContentBlock::ToolResult(ToolResult {
                    tool_use_id: t.tool_call_id.clone(),
                    content: vec![ToolResultContent::Text(text)],
                    status: None,
                })];
                blocks.extend(last_cache_point(&t.content).map(ContentBlock::CachePoint));
                (Role::User, blocks)
            }
        };
        // Converse wants alternating turns: same-role messages merge, and a
        // tool result joins the user turn after it.
        match messages.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => messages.push(Message {
                role,
                content: blocks,
            }),
        }
    }
    if messages.is_empty() {
        return Err(Error::invalid(
            "messages must hold at least one user, assistant or tool message",
            "messages",
        ));
    }
    if let Some(ResponseFormat::JsonObject) = &req.response_format {
        system.push(SystemBlock::Text(
            "Respond with a single valid JSON object and nothing else.".into(),
        ));
    }
    let output_config = match &req.response_format {
        Some(ResponseFormat::JsonSchema { json_schema }) => Some(output_config(json_schema)),
        _ => None,
    };
    let mut inference = InferenceConfig {
        max_tokens: req.max_completion_tokens.or(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: req
            .stop
            .as_ref()
            .map(|s| s.as_slice().to_vec())
            .unwrap_or_default(),
    };
    let mut extra = additional_fields(req);
    if let Some(effort) = req.reasoning_effort.as_deref() {
        reasoning(effort, opts, forces_tool(req), &mut inference, &mut extra)?;
    }
    let tool_config = tool_config(req, &used_tools)?;
    crate::document::check(&mut messages).map_err(|m| Error::invalid(m, "messages"))?;
    let guardrail_config = match &opts.guardrail {
        Some(g) => Some(g.clone()),
        None => crate::guardrail::requested(req)?,
    };
    let mut out = ConverseRequest {
        messages,
        system,
        inference_config: (!inference.is_empty()).then_some(inference),
        tool_config,
        additional_model_request_fields: (!extra.is_empty()).then_some(extra),
        output_config,
        guardrail_config,
    };
    let points = crate::cache::count_points(&out);
    if points > MAX_CACHE_POINTS {
        return Err(Error::invalid(
            format!(
                "{points} cache_control breakpoints were sent (tools, system and messages); Bedrock takes at most {MAX_CACHE_POINTS} a request"
            ),
            "messages",
        ));
    }
    if let Some(auto) = &opts.prompt_cache {
        crate::cache::place(&mut out, auto);
    }
    Ok(out)
}

/// An earlier answer's signed reasoning (LiteLLM's `thinking_blocks` on
/// the assistant message), sent back first as Claude requires when
/// thinking spans a tool call; unsigned reasoning is not sent back.
fn signed_reasoning(a: &AssistantMessage, i: usize) -> Result<Vec<ContentBlock>, Error> {
    let Some(v) = a.extra.get("thinking_blocks") else {
        return Ok(Vec::new());
    };
    let at = format!("messages[{i}].thinking_blocks");
    let blocks: Vec<ThinkingBlock> = serde_json::from_value(v.clone())
        .map_err(|e| Error::invalid(format!("thinking_blocks: {e}"), at.clone()))?;
    let mut out = Vec::with_capacity(blocks.len());
    for b in blocks {
        out.push(ContentBlock::ReasoningContent(match b {
            ThinkingBlock::Thinking {
                signature: None, ..
            } => continue,
            ThinkingBlock::Thinking {
                thinking,
                signature,
            } => ReasoningContent::ReasoningText(ReasoningText {
                text: thinking,
                signature,
            }),
            ThinkingBlock::RedactedThinking { data } => ReasoningContent::RedactedContent(
                base64::engine::general_purpose::STANDARD
                    .decode(data.as_bytes())
                    .map_err(|e| Error::invalid(format!("redacted thinking: {e}"), at.clone()))?,
            ),
        }));
    }
    Ok(out)
}

/// Whether `tool_choice` forces a tool (`required` or a named function).
pub fn forces_tool(req: &ChatCompletionRequest) -> bool {
    matches!(
        req.tool_choice,
        Some(ToolChoice::Mode(ToolChoiceMode::Required) | ToolChoice::Named(_))
    )
}

/// The request's unknown fields, minus OpenAI's own.
fn additional_fields(req: &ChatCompletionRequest) -> Map<String, Value> {
    req.extra
        .iter()
        .filter(|(k, _)| !OPENAI_ONLY.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `reasoning_effort` in the model family's own terms.
fn reasoning(
    effort: &str,
    opts: &RequestOptions,
    forced_tool: bool,
    inference: &mut InferenceConfig,
    extra: &mut Map<String, Value>,
) -> Result<(), Error> {
    let share = match effort {
        "none" => return Ok(()),
        "minimal" => 0.0,
        "low" => 0.25,
        "medium" => 0.5,
        "high" => 0.8,
        other => {
            return Err(Error::invalid(
                format!(
                    "reasoning_effort '{other}' is not one of none, minimal, low, medium, high"
                ),
                "reasoning_effort",
            ));
        }
    };
    match reasoning_style(opts.reasoning, &opts.model_id) {
        // Claude refuses thinking with a forced tool ("Thinking may not be
        // enabled when tool_choice forces tool use"): the tool wins.
        ReasoningStyle::ClaudeThinking if forced_tool => {}
        ReasoningStyle::ClaudeThinking => {
            let max = inference
                .max_tokens
                .or(opts.default_max_tokens)
                .unwrap_or(8192);
            let budget = ((f64::from(max) * share) as u32).max(1024);
            // The budget is part of max_tokens: keep room for the answer.
            if budget >= max {
                inference.max_tokens = Some(budget + max);
            } else {
                inference.max_tokens = Some(max);
            }
            // Claude's extended thinking refuses temperature and top_p changes.
            inference.temperature = None;
            inference.top_p = None;
            extra.insert(
                "thinking".into(),
                serde_json::json!({ "type": "enabled", "budget_tokens": budget }),
            );
        }
        ReasoningStyle::ReasoningConfig => {
            extra.insert("reasoning_config".into(), Value::String(effort.to_owned()));
        }
        ReasoningStyle::ReasoningEffort => {
            extra.insert("reasoning_effort".into(), Value::String(effort.to_owned()));
        }
        ReasoningStyle::None | ReasoningStyle::Auto => {}
    }
    Ok(())
}

fn tool_config(
    req: &ChatCompletionRequest,
    used_in_history: &[String],
) -> Result<Option<ToolConfig>, Error> {
    let mut tools: Vec<Tool> = Vec::new();
    for t in req.tools.iter().flatten() {
        tools.push(Tool::ToolSpec(ToolSpec {
            name: t.function.name.clone(),
            // An empty description is left out (some models refuse one).
            description: t
                .function
                .description
                .clone()
                .filter(|d| !d.trim().is_empty()),
            input_schema: InputSchema::Json(
                t.function
                    .parameters
                    .clone()
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            ),
            strict: t.function.strict,
        }));
        // `cache_control` on a tool: the tools up to it are cached.
        tools.extend(
            t.cache_control
                .as_ref()
                .and_then(cache_point_of)
                .map(Tool::CachePoint),
        );
    }
    // Bedrock refuses toolUse/toolResult blocks without a toolConfig: a
    // history that used tools the request no longer lists declares them.
    for name in used_in_history {
        if !tools.iter().filter_map(Tool::spec).any(|s| &s.name == name) {
            tools.push(Tool::ToolSpec(ToolSpec {
                name: name.clone(),
                description: None,
                input_schema: InputSchema::Json(serde_json::json!({"type": "object"})),
                strict: None,
            }));
        }
    }
    let choice = match &req.tool_choice {
        None | Some(ToolChoice::Mode(ToolChoiceMode::Auto)) => None,
        Some(ToolChoice::Mode(ToolChoiceMode::None)) => {
            // Not offered at all, unless the history needs them declared.
            if used_in_history.is_empty() {
                return Ok(None);
            }
            None
        }
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) => Some(BrToolChoice::Any(Empty {})),
        Some(ToolChoice::Named(n)) => {
            if !tools
                .iter()
                .filter_map(Tool::spec)
                .any(|s| s.name == n.function.name)
            {
                return Err(Error::invalid(
                    format!(
                        "tool_choice names '{}', which is not in tools",
                        n.function.name
                    ),
                    "tool_choice",
                ));
            }
            Some(BrToolChoice::Tool(NamedTool {
                name: n.function.name.clone(),
            }))
        }
    };
    if tools.is_empty() {
        if choice.is_some() {
            return Err(Error::invalid("tool_choice requires tools", "tool_choice"));
        }
        return Ok(None);
    }
    Ok(Some(ToolConfig {
        tools,
        tool_choice: choice,
    }))
}

/// The text of system, assistant and tool content (parts must be text).
/// The cache point a text part asks for (`cache_control: {type:
/// ephemeral, ttl?}`, the extension Anthropic-style clients send).
fn cache_point(p: &ContentPart) -> Option<CachePoint> {
    let ContentPart::Text { extra, .. } = p else {
        return None;
    };
    cache_point_of(extra.get("cache_control")?)
}

/// The cache point a `cache_control` value asks for.
fn cache_point_of(c: &Value) -> Option<CachePoint> {
    (c["type"] == "ephemeral").then(|| CachePoint::new(c["ttl"].as_str().map(str::to_owned)))
}

/// One cache point for a content whose parts ask for any (placed after it).
fn last_cache_point(c: &MessageContent) -> Option<CachePoint> {
    match c {
        MessageContent::Parts(parts) => parts.iter().rev().find_map(cache_point),
        MessageContent::Text(_) => None,
    }
}

/// Bedrock takes at most this many cache points a request.
pub const MAX_CACHE_POINTS: usize = 4;

fn text_only(c: &MessageContent, i: usize) -> Result<String, Error> {
    match c {
        MessageContent::Text(t) => Ok(t.clone()),
        MessageContent::Parts(parts) => {
            let mut out = String::new();
            for (j, p) in parts.iter().enumerate() {
                match p {
                    ContentPart::Text { text, .. } => out.push_str(text),
                    ContentPart::Refusal { refusal } => out.push_str(refusal),
                    _ => {
                        return Err(Error::invalid(
                            "only text parts are supported in this message's role",
                            format!("messages[{i}].content[{j}]"),
                        ));
                    }
                }
            }
            Ok(out)
        }
    }
}

fn user_blocks(
    c: &MessageContent,
    i: usize,
    images: &HashMap<String, ImageBlock>,
) -> Result<Vec<ContentBlock>, Error> {
    match c {
        MessageContent::Text(t) => Ok(vec![ContentBlock::Text(t.clone())]),
        MessageContent::Parts(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                let param = || format!("messages[{i}].content[{j}]");
                match p {
                    ContentPart::Text { text, .. } => {
                        out.push(ContentBlock::Text(text.clone()));
                        out.extend(cache_point(p).map(ContentBlock::CachePoint));
                    }
                    ContentPart::ImageUrl { image_url } => {
                        let url = image_url.url.as_str();
                        let block = if url.starts_with("data:") {
                            decode_data_url(url).map_err(|m| {
                                Error::invalid(m, format!("{}.image_url.url", param()))
                            })?
                        } else if let Some(b) = images.get(url) {
                            b.clone()
                        } else {
                            return Err(Error::invalid(
                                "image URLs are not fetched by this gateway: send the image as a base64 data URL",
                                format!("{}.image_url.url", param()),
                            ));
                        };
                        out.push(ContentBlock::Image(block));
                    }
                    ContentPart::File { file } => {
                        let d = crate::document::from_file_part(file)
                            .map_err(|m| Error::invalid(m, format!("{}.file", param())))?;
                        out.push(ContentBlock::Document(d));
                    }
                    ContentPart::InputAudio { .. } => {
                        return Err(Error::invalid(
                            "audio parts are not supported by Bedrock's Converse API",
                            param(),
                        ));
                    }
                    ContentPart::Refusal { refusal } => {
                        out.push(ContentBlock::Text(refusal.clone()))
                    }
                }
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
