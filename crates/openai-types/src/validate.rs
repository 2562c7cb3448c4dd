//! The OpenAI spec's range checks on a request, and the prompt-token
//! estimate used when an upstream reports no usage. Sans I/O, and the same
//! for every backend: what only one backend refuses (a SageMaker endpoint
//! takes one text prompt) is that backend's business, not this module's.
//!
//! ```
//! use openai_types::chat::ChatCompletionRequest;
//!
//! let r: ChatCompletionRequest =
//!     serde_json::from_str(r#"{"model":"m","messages":[],"n":0}"#).unwrap();
//! let e = openai_types::validate::chat(&r).unwrap_err();
//! assert_eq!(e.param, "messages");
//! ```

use crate::chat::{ChatCompletionRequest, ChatMessage};
use crate::completions::{CompletionRequest, Prompt};
use crate::tokens::estimate_tokens;

/// A request that breaks the contract: what is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The message.
    pub message: String,
    /// The parameter's path (`input[2].type`).
    pub param: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.param)
    }
}

impl std::error::Error for Invalid {}

pub(crate) fn invalid(message: impl Into<String>, param: impl Into<String>) -> Invalid {
    Invalid {
        message: message.into(),
        param: param.into(),
    }
}

/// A chat request within the spec's ranges: at least one message, `n` in
/// 1..=128, `temperature` in 0..=2, `top_p` in 0..=1, a token limit of at
/// least 1, at most 4 stop sequences, penalties in -2..=2.
pub fn chat(r: &ChatCompletionRequest) -> Result<(), Invalid> {
    if r.messages.is_empty() {
        return Err(invalid(
            "'messages' must contain at least one message",
            "messages",
        ));
    }
    common(&Sampling {
        n: r.n,
        temperature: r.temperature,
        top_p: r.top_p,
        max_tokens: r.max_output_tokens(),
        stops: r.stop.as_ref().map(|s| s.as_slice().len()),
    })?;
    penalties(r.presence_penalty, r.frequency_penalty)
}

/// A legacy completion request within the spec's ranges: those of
/// [`chat`] that apply, `best_of` in 0..=20 and not below `n`, a prompt
/// that is not an empty list.
pub fn completion(r: &CompletionRequest) -> Result<(), Invalid> {
    common(&Sampling {
        n: r.n,
        temperature: r.temperature,
        top_p: r.top_p,
        max_tokens: r.max_tokens,
        stops: r.stop.as_ref().map(|s| s.as_slice().len()),
    })?;
    if let Some(b) = r.best_of {
        if b > 20 {
            return Err(invalid("'best_of' must be between 0 and 20", "best_of"));
        }
        if b < r.n.unwrap_or(1) {
            return Err(invalid("'best_of' must be at least 'n'", "best_of"));
        }
    }
    let empty = match &r.prompt {
        Prompt::String(_) => false,
        Prompt::Strings(v) => v.is_empty(),
        Prompt::Tokens(v) => v.is_empty(),
        Prompt::TokenLists(v) => v.is_empty() || v.iter().any(Vec::is_empty),
    };
    if empty {
        return Err(invalid("'prompt' must not be an empty list", "prompt"));
    }
    penalties(r.presence_penalty, r.frequency_penalty)
}

struct Sampling {
    n: Option<u32>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_tokens: Option<u32>,
    stops: Option<usize>,
}

fn common(s: &Sampling) -> Result<(), Invalid> {
    if s.n.is_some_and(|n| !(1..=128).contains(&n)) {
        return Err(invalid("'n' must be between 1 and 128", "n"));
    }
    if s.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
        return Err(invalid(
            "'temperature' must be between 0 and 2",
            "temperature",
        ));
    }
    if s.top_p.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
        return Err(invalid("'top_p' must be between 0 and 1", "top_p"));
    }
    if s.max_tokens == Some(0) {
        return Err(invalid("the token limit must be at least 1", "max_tokens"));
    }
    if s.stops.is_some_and(|n| n > 4) {
        return Err(invalid("'stop' takes at most 4 sequences", "stop"));
    }
    Ok(())
}

fn penalties(presence: Option<f64>, frequency: Option<f64>) -> Result<(), Invalid> {
    for (name, v) in [
        ("presence_penalty", presence),
        ("frequency_penalty", frequency),
    ] {
        if v.is_some_and(|v| !(-2.0..=2.0).contains(&v)) {
            return Err(invalid(format!("'{name}' must be between -2 and 2"), name));
        }
    }
    Ok(())
}

/// A rough prompt-token estimate of a chat request, for usage when the
/// upstream reports none: each message's text, plus ~4 tokens of role and
/// separators.
pub fn chat_prompt_tokens(r: &ChatCompletionRequest) -> u64 {
    r.messages
        .iter()
        .map(|m| {
            let text = match m {
                ChatMessage::System(s) | ChatMessage::Developer(s) => s.content.text(),
                ChatMessage::User(u) => u.content.text(),
                ChatMessage::Assistant(a) => {
                    a.content.as_ref().map(|c| c.text()).unwrap_or_default()
                }
                ChatMessage::Tool(t) => t.content.text(),
            };
            estimate_tokens(&text) + 4
        })
        .sum()
}

/// A rough prompt-token estimate of a legacy completion request: the text
/// prompts' estimate, token-id prompts counted exactly.
pub fn completion_prompt_tokens(r: &CompletionRequest) -> u64 {
    match &r.prompt {
        Prompt::String(s) => estimate_tokens(s),
        Prompt::Strings(v) => v.iter().map(|s| estimate_tokens(s)).sum(),
        Prompt::Tokens(v) => v.len() as u64,
        Prompt::TokenLists(v) => v.iter().map(|p| p.len() as u64).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion_req(extra: serde_json::Value) -> CompletionRequest {
        let mut v = serde_json::json!({"model": "m", "prompt": "hi"});
        for (k, x) in extra.as_object().into_iter().flatten() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn completions_take_what_the_spec_allows_whatever_the_backend() {
        for ok in [
            serde_json::json!({"prompt": ["a", "b"]}),
            serde_json::json!({"prompt": [1, 2, 3]}),
            serde_json::json!({"prompt": [[1], [2, 3]]}),
            serde_json::json!({"best_of": 3, "n": 2}),
        ] {
            assert_eq!(completion(&completion_req(ok.clone())), Ok(()), "{ok}");
        }
        for (bad, param) in [
            (serde_json::json!({"prompt": []}), "prompt"),
            (serde_json::json!({"prompt": [[]]}), "prompt"),
            (serde_json::json!({"best_of": 1, "n": 2}), "best_of"),
            (serde_json::json!({"best_of": 21}), "best_of"),
            (serde_json::json!({"temperature": 2.5}), "temperature"),
            (
                serde_json::json!({"stop": ["a", "b", "c", "d", "e"]}),
                "stop",
            ),
            (
                serde_json::json!({"frequency_penalty": -3}),
                "frequency_penalty",
            ),
        ] {
            assert_eq!(
                completion(&completion_req(bad.clone())).unwrap_err().param,
                param,
                "{bad}"
            );
        }
    }

    #[test]
    fn chat_ranges_name_the_param() {
        let req = |extra: serde_json::Value| -> ChatCompletionRequest {
            let mut v =
                serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
            for (k, x) in extra.as_object().into_iter().flatten() {
                v[k] = x.clone();
            }
            serde_json::from_value(v).unwrap()
        };
        for (extra, param) in [
            (serde_json::json!({"n": 0}), "n"),
            (serde_json::json!({"n": 129}), "n"),
            (serde_json::json!({"temperature": 2.5}), "temperature"),
            (serde_json::json!({"top_p": -0.1}), "top_p"),
            (serde_json::json!({"max_tokens": 0}), "max_tokens"),
            (
                serde_json::json!({"stop": ["a", "b", "c", "d", "e"]}),
                "stop",
            ),
            (
                serde_json::json!({"presence_penalty": 3}),
                "presence_penalty",
            ),
            (serde_json::json!({"messages": []}), "messages"),
        ] {
            assert_eq!(
                chat(&req(extra.clone())).unwrap_err().param,
                param,
                "{extra}"
            );
        }
        assert_eq!(
            chat(&req(serde_json::json!({"temperature": 2, "top_p": 1}))),
            Ok(())
        );
    }

    #[test]
    fn prompt_estimates_count_every_prompt() {
        let one =
            completion_prompt_tokens(&completion_req(serde_json::json!({"prompt": "abcdefgh"})));
        let two = completion_prompt_tokens(&completion_req(
            serde_json::json!({"prompt": ["abcdefgh", "abcdefgh"]}),
        ));
        assert_eq!(two, 2 * one);
        let ids = completion_prompt_tokens(&completion_req(
            serde_json::json!({"prompt": [[1, 2], [3]]}),
        ));
        assert_eq!(ids, 3);
    }
}
