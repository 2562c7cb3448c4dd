//! A Converse response to a `chat.completion`.

use base64::Engine as _;
use openai_types::Usage;
use openai_types::chat::{
    ChatCompletion, Choice, FinishReason, FunctionCall, FunctionType, ResponseMessage,
    ThinkingBlock, ToolCall,
};
use openai_types::usage::PromptTokensDetails;

use crate::wire::{ContentBlock, ConverseOutput, ConverseResponse, ReasoningContent, TokenUsage};

/// Bedrock's `stopReason` as an OpenAI `finish_reason`.
pub fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "content_filtered" | "guardrail_intervened" => FinishReason::ContentFilter,
        // end_turn, stop_sequence and anything new.
        _ => FinishReason::Stop,
    }
}

/// Bedrock's token counts as OpenAI usage. OpenAI's `prompt_tokens` counts
/// cached tokens too; Bedrock's `inputTokens` does not.
pub fn usage(u: &TokenUsage) -> Usage {
    let read = u.cache_read_input_tokens.unwrap_or(0);
    let write = u.cache_write_input_tokens.unwrap_or(0);
    let mut out = Usage::new(u.input_tokens + read + write, u.output_tokens);
    if u.cache_read_input_tokens.is_some() || u.cache_write_input_tokens.is_some() {
        out.prompt_tokens_details = Some(PromptTokensDetails {
            cached_tokens: Some(read),
            audio_tokens: None,
            cache_write_tokens: (write > 0).then_some(write),
        });
    }
    out
}

/// Where the model's reasoning goes in the output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningOutput {
    /// `reasoning_content` (the DeepSeek-style field most clients read).
    #[default]
    Field,
    /// Inline in `content` as `<think>…</think>`, for clients that only show
    /// content.
    InlineThink,
    /// Left out.
    Drop,
}

/// What the response is labelled with.
#[derive(Debug, Clone)]
pub struct ResponseMeta {
    /// `chatcmpl-…`.
    pub id: String,
    /// The model name the client used.
    pub model: String,
    /// Unix seconds.
    pub created: u64,
    /// The tool standing in for structured output
    /// ([`crate::request::structured_output_fallback`]): its input becomes
    /// the message's content, and the model's other text is dropped.
    pub answer_tool: Option<String>,
}

/// A Converse response as a `chat.completion`.
pub fn to_chat_completion(
    r: ConverseResponse,
    meta: ResponseMeta,
    reasoning: ReasoningOutput,
) -> ChatCompletion {
    let ConverseOutput::Message(message) = r.output;
    let mut text = String::new();
    let mut thinking = String::new();
    let mut signed = Vec::new();
    let mut calls = Vec::new();
    for block in message.content {
        match block {
            ContentBlock::Text(_) if meta.answer_tool.is_some() => {}
            ContentBlock::Text(t) => text.push_str(&t),
            ContentBlock::ToolUse(t) if meta.answer_tool.as_ref() == Some(&t.name) => {
                text = t.input.to_string();
            }
            ContentBlock::ReasoningContent(ReasoningContent::ReasoningText(t)) => {
                thinking.push_str(&t.text);
                if t.signature.is_some() {
                    signed.push(ThinkingBlock::Thinking {
                        thinking: t.text,
                        signature: t.signature,
                    });
                }
            }
            ContentBlock::ReasoningContent(ReasoningContent::RedactedContent(data)) => {
                signed.push(ThinkingBlock::RedactedThinking {
                    data: base64::engine::general_purpose::STANDARD.encode(data),
                });
            }
            ContentBlock::ToolUse(t) => calls.push(ToolCall {
                id: t.tool_use_id,
                kind: FunctionType,
                function: FunctionCall {
                    name: t.name,
                    arguments: if t.input.is_null() {
                        "{}".into()
                    } else {
                        t.input.to_string()
                    },
                },
            }),
            ContentBlock::Image(_)
            | ContentBlock::ToolResult(_)
            | ContentBlock::CachePoint(_)
            | ContentBlock::Document(_) => {}
        }
    }
    let mut reason = finish_reason(&r.stop_reason);
    if reason == FinishReason::ToolCalls && calls.is_empty() {
        reason = FinishReason::Stop;
    }
    let (content, reasoning_content) = match reasoning {
        ReasoningOutput::Field => (text, (!thinking.is_empty()).then_some(thinking)),
        ReasoningOutput::InlineThink if !thinking.is_empty() => {
            (format!("<think>\n{thinking}\n</think>\n\n{text}"), None)
        }
        ReasoningOutput::InlineThink | ReasoningOutput::Drop => (text, None),
    };
    ChatCompletion {
        id: meta.id,
        object: Default::default(),
        created: meta.created,
        model: meta.model,
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: Default::default(),
                // A reply that is only tool calls has null content, as OpenAI's.
                content: if content.is_empty() && !calls.is_empty() {
                    None
                } else {
                    Some(content)
                },
                refusal: None,
                reasoning_content,
                // Signed reasoning only where the reasoning is shown.
                thinking_blocks: (reasoning == ReasoningOutput::Field && !signed.is_empty())
                    .then_some(signed),
                tool_calls: (!calls.is_empty()).then_some(calls),
            },
            logprobs: None,
            finish_reason: reason,
        }],
        usage: Some(usage(&r.usage)),
        system_fingerprint: None,
        service_tier: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_map() {
        assert_eq!(finish_reason("end_turn"), FinishReason::Stop);
        assert_eq!(finish_reason("stop_sequence"), FinishReason::Stop);
        assert_eq!(finish_reason("max_tokens"), FinishReason::Length);
        assert_eq!(finish_reason("tool_use"), FinishReason::ToolCalls);
        assert_eq!(
            finish_reason("guardrail_intervened"),
            FinishReason::ContentFilter
        );
        assert_eq!(
            finish_reason("content_filtered"),
            FinishReason::ContentFilter
        );
    }

    #[test]
    fn cached_tokens_count_in_the_prompt() {
        let u = usage(&TokenUsage {
            input_tokens: 10,
            output_tokens: 5,
            total_tokens: 115,
            cache_read_input_tokens: Some(100),
            cache_write_input_tokens: None,
        });
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (110, 5, 115)
        );
        assert_eq!(
            u.prompt_tokens_details.and_then(|d| d.cached_tokens),
            Some(100)
        );
    }
}
