//! The guardrail a request asks for (`guardrailConfig`), read and checked.

use openai_types::chat::ChatCompletionRequest;
use serde_json::Value;

use crate::Error;

/// The guardrail a request asks for: Bedrock's own `guardrailConfig`
/// (`guardrailIdentifier`, `guardrailVersion`, `trace`,
/// `streamProcessingMode`), or the same in snake case.
pub(crate) fn requested(
    req: &ChatCompletionRequest,
) -> Result<Option<crate::wire::GuardrailConfig>, Error> {
    let Some((key, v)) = ["guardrailConfig", "guardrail_config"]
        .iter()
        .find_map(|k| req.extra.get(*k).map(|v| (*k, v)))
    else {
        return Ok(None);
    };
    let field = |camel: &str, snake: &str| {
        v.get(camel)
            .or_else(|| v.get(snake))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let id = field("guardrailIdentifier", "guardrail_identifier")
        .filter(|s| !s.is_empty() && s.len() <= 2048)
        .ok_or_else(|| Error::invalid("needs guardrailIdentifier", key))?;
    let version = field("guardrailVersion", "guardrail_version")
        .filter(|s| {
            s == "DRAFT" || (!s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_digit()))
        })
        .ok_or_else(|| Error::invalid("needs guardrailVersion: DRAFT or a version number", key))?;
    let trace = field("trace", "trace");
    if trace
        .as_deref()
        .is_some_and(|t| !matches!(t, "enabled" | "disabled" | "enabled_full"))
    {
        return Err(Error::invalid(
            "trace is enabled, enabled_full or disabled",
            key,
        ));
    }
    let mode = field("streamProcessingMode", "stream_processing_mode");
    if mode
        .as_deref()
        .is_some_and(|m| !matches!(m, "sync" | "async"))
    {
        return Err(Error::invalid("streamProcessingMode is sync or async", key));
    }
    Ok(Some(crate::wire::GuardrailConfig {
        guardrail_identifier: id,
        guardrail_version: version,
        trace,
        stream_processing_mode: mode,
    }))
}
