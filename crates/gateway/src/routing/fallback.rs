//! Fallback chains: when every candidate of a model fails in a way another
//! model may not (the prompt is longer than its context window, or its
//! provider's content policy refused it), the model's `fallbacks` are
//! tried in order before the client sees the error.
//!
//! Which failures qualify is read from the backend's own words, by a table
//! of each backend's real wording (the tests hold one sample of each).

use crate::error::ApiError;

/// Why a failure moves a request on to a fallback model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// The prompt does not fit the model's context window.
    ContextWindow,
    /// The provider's content policy refused the request.
    ContentPolicy,
}

impl Reason {
    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::ContextWindow => "context_window",
            Self::ContentPolicy => "content_policy",
        }
    }
}

/// Error codes that name the failure outright (OpenAI's, Azure's,
/// llama.cpp's error type).
const CODES: &[(&str, Reason)] = &[
    ("context_length_exceeded", Reason::ContextWindow),
    ("exceed_context_size_error", Reason::ContextWindow),
    ("string_above_max_length", Reason::ContextWindow),
    ("content_filter", Reason::ContentPolicy),
    ("content_policy_violation", Reason::ContentPolicy),
    ("ResponsibleAIPolicyViolation", Reason::ContentPolicy),
];

/// Phrases of the messages, lower case, with whose backend says them.
const PHRASES: &[(&str, Reason)] = &[
    // Bedrock (Converse, InvokeModel): "Input is too long for requested
    // model." and Nova's "Input Tokens Exceeded".
    ("input is too long", Reason::ContextWindow),
    ("input tokens exceeded", Reason::ContextWindow),
    // Anthropic and Claude on Bedrock: "prompt is too long: 210000 tokens
    // > 200000 maximum".
    ("prompt is too long", Reason::ContextWindow),
    // OpenAI and vLLM: "This model's maximum context length is 4096
    // tokens. However, you requested 5000 tokens …".
    ("maximum context length", Reason::ContextWindow),
    // vLLM (newer): "The decoder prompt (length 5000) is longer than the
    // maximum model length of 4096."
    (
        "longer than the maximum model length",
        Reason::ContextWindow,
    ),
    // SGLang: "The input (5000 tokens) is longer than the model's context
    // length (4096 tokens)."
    (
        "longer than the model's context length",
        Reason::ContextWindow,
    ),
    // llama.cpp: "the request exceeds the available context size, try
    // increasing it".
    ("exceeds the available context size", Reason::ContextWindow),
    // TGI: "Input validation error: `inputs` tokens + `max_new_tokens`
    // must be <= 4096."
    (
        "tokens + `max_new_tokens` must be <=",
        Reason::ContextWindow,
    ),
    // OpenAI's and Azure's content filters.
    ("content management policy", Reason::ContentPolicy),
    (
        "flagged as potentially violating our usage policy",
        Reason::ContentPolicy,
    ),
];

/// Why `e` moves a request on to a fallback model, if it does: a client
/// error (400, 413, 422) or an upstream's answer whose code or words say
/// the context window was exceeded or a content policy refused.
pub(crate) fn reason(e: &ApiError) -> Option<Reason> {
    let status = e.upstream_status.unwrap_or(e.status.as_u16());
    if !matches!(status, 400 | 403 | 413 | 422) {
        return None;
    }
    let body = &e.body.error;
    if let Some(code) = body.code.as_deref()
        && let Some((_, r)) = CODES.iter().find(|(c, _)| *c == code)
    {
        return Some(*r);
    }
    let m = body.message.to_lowercase();
    PHRASES
        .iter()
        .find(|(p, _)| m.contains(&p.to_lowercase()))
        .map(|(_, r)| *r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::StatusCode;

    fn upstream(status: u16, code: Option<&str>, message: &str) -> ApiError {
        let mut e = ApiError::upstream(
            StatusCode::from_u16(status).unwrap(),
            "invalid_request_error",
            message.to_owned(),
        );
        if let Some(c) = code {
            e = e.code(c);
        }
        e.upstream_status = Some(status);
        e
    }

    #[test]
    fn each_backends_wording_is_read() {
        let ctx = Some(Reason::ContextWindow);
        for (status, code, message) in [
            (400, None, "Input is too long for requested model."),
            (
                400,
                None,
                "Input Tokens Exceeded: Number of input tokens exceeds maximum length. Please update the input to a shorter value.",
            ),
            (
                400,
                None,
                "prompt is too long: 215031 tokens > 200000 maximum",
            ),
            (
                400,
                Some("context_length_exceeded"),
                "This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens. Please reduce the length of the messages.",
            ),
            (
                400,
                None,
                "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.",
            ),
            (
                400,
                None,
                "The decoder prompt (length 5000) is longer than the maximum model length of 4096. Make sure that `max_model_len` is no smaller than the number of text tokens.",
            ),
            (
                400,
                None,
                "The input (5000 tokens) is longer than the model's context length (4096 tokens).",
            ),
            (
                400,
                Some("exceed_context_size_error"),
                "the request exceeds the available context size, try increasing it",
            ),
            (
                422,
                None,
                "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 500 `max_new_tokens`",
            ),
        ] {
            assert_eq!(reason(&upstream(status, code, message)), ctx, "{message}");
        }
        let policy = Some(Reason::ContentPolicy);
        assert_eq!(
            reason(&upstream(
                400,
                Some("content_filter"),
                "The response was filtered due to the prompt triggering Azure OpenAI's content management policy."
            )),
            policy
        );
        assert_eq!(
            reason(&upstream(
                400,
                Some("content_policy_violation"),
                "Your request was rejected as a result of our safety system."
            )),
            policy
        );
    }

    #[test]
    fn other_failures_are_not_fallback_reasons() {
        for e in [
            upstream(400, None, "messages: roles must alternate"),
            upstream(
                429,
                None,
                "Too many tokens, please wait before trying again.",
            ),
            upstream(503, None, "maximum context length service unavailable"),
            ApiError::invalid("max_tokens must be at least 1"),
        ] {
            assert_eq!(reason(&e), None, "{}", e.body.error.message);
        }
    }
}
