//! Token usage (`CompletionUsage`).

use serde::{Deserialize, Serialize};

/// Token counts of one completion. The three counts are required by the spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Sum of the two.
    pub total_tokens: u64,
    /// Breakdown of the prompt tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// Breakdown of the completion tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
    /// Our extension: `true` when the counts were estimated by the gateway
    /// because the upstream reported none. Left out otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

impl Usage {
    /// Usage from prompt and completion counts, with the total filled in.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            ..Self::default()
        }
    }

    /// Adds another completion's counts (several upstream calls answering
    /// one request): every count and detail summed, estimated if either was.
    pub fn accumulate(&mut self, other: &Usage) {
        fn sum(a: &mut Option<u64>, b: Option<u64>) {
            if let Some(b) = b {
                *a = Some(a.unwrap_or(0) + b);
            }
        }
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
        self.estimated |= other.estimated;
        if let Some(o) = &other.prompt_tokens_details {
            let d = self
                .prompt_tokens_details
                .get_or_insert_with(Default::default);
            sum(&mut d.cached_tokens, o.cached_tokens);
            sum(&mut d.audio_tokens, o.audio_tokens);
            sum(&mut d.cache_write_tokens, o.cache_write_tokens);
        }
        if let Some(o) = &other.completion_tokens_details {
            let d = self
                .completion_tokens_details
                .get_or_insert_with(Default::default);
            sum(&mut d.reasoning_tokens, o.reasoning_tokens);
            sum(&mut d.audio_tokens, o.audio_tokens);
            sum(
                &mut d.accepted_prediction_tokens,
                o.accepted_prediction_tokens,
            );
            sum(
                &mut d.rejected_prediction_tokens,
                o.rejected_prediction_tokens,
            );
        }
    }
}

/// `prompt_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    /// Tokens read from a prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Audio input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_tokens: Option<u64>,
    /// Our extension: prompt tokens written to the provider's prompt cache
    /// (Bedrock's `cacheWriteInputTokens`, Anthropic's
    /// `cache_creation_input_tokens`); they are part of `prompt_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
}

/// `completion_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    /// Tokens spent on reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Audio output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_tokens: Option<u64>,
    /// Predicted-output tokens that appeared in the completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_prediction_tokens: Option<u64>,
    /// Predicted-output tokens that did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_prediction_tokens: Option<u64>,
}
