//! Guardrails for models Bedrock does not serve (SageMaker endpoints,
//! OpenAI-style and Anthropic upstreams), through Bedrock's
//! `ApplyGuardrail`: the prompt (the last user turn) is screened before
//! the call; a whole answer after it; a stream in windows of
//! `window_chars` characters of answer text (default 300), each window
//! screened with the end of the one before it (so a phrase cut by a window
//! edge is still seen). In `sync` mode (the default) a window's chunks are
//! held until it passes, so nothing blocked reaches the client; in `async`
//! mode they go at once and the stream is cut when a window fails. An
//! intervention answers the guardrail's message with `finish_reason:
//! "content_filter"`, ends the upstream call and is counted.

use futures_util::StreamExt;
use openai_types::chat::{
    ChatCompletion, ChatCompletionRequest, ChatMessage, ChunkChoice, Delta, FinishReason, Role,
};
use openai_types::stream::StreamItem;

use crate::backend::bedrock::Bedrock;
use crate::backend::provider::ItemStream;
use crate::config::GuardrailSettings;
use crate::error::ApiError;

/// Text kept from one window for the next (a phrase across the edge).
const OVERLAP: usize = 64;

/// The prompt a guardrail screens: the last user turn's text.
pub(crate) fn prompt_text(req: &ChatCompletionRequest) -> String {
    req.messages
        .iter()
        .rev()
        .find_map(|m| match m {
            ChatMessage::User(u) => Some(u.content.text().into_owned()),
            _ => None,
        })
        .unwrap_or_default()
}

/// A whole answer that is the guardrail's message.
pub(crate) fn refusal(id: &str, model: &str, created: u64, message: &str) -> ChatCompletion {
    let v = serde_json::json!({
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": message,
            "refusal": null}, "logprobs": null, "finish_reason": "content_filter"}],
        "usage": null,
    });
    // A fixed, valid shape: the parse cannot fail.
    serde_json::from_value(v).unwrap_or_else(|_| unreachable_completion())
}

#[cold]
fn unreachable_completion() -> ChatCompletion {
    ChatCompletion {
        id: String::new(),
        object: openai_types::chat::ChatCompletionObject,
        created: 0,
        model: String::new(),
        choices: Vec::new(),
        usage: None,
        system_fingerprint: None,
        service_tier: None,
    }
}

/// A stream that is the guardrail's message (the prompt was blocked).
pub(crate) fn refusal_stream(message: String) -> ItemStream {
    let items = vec![
        StreamItem::Choice(ChunkChoice {
            index: 0,
            delta: Delta {
                role: Some(Role::Assistant),
                content: Some(message),
                ..Default::default()
            },
            logprobs: None,
            finish_reason: None,
        }),
        filtered(None),
        StreamItem::Done,
    ];
    Box::pin(futures_util::stream::once(async move { items }))
}

/// The chunk that ends a blocked stream: `content_filter`, with the
/// guardrail's message when it is given here.
fn filtered(message: Option<String>) -> StreamItem {
    StreamItem::Choice(ChunkChoice {
        index: 0,
        delta: Delta {
            content: message,
            ..Default::default()
        },
        logprobs: None,
        finish_reason: Some(FinishReason::ContentFilter),
    })
}

/// Counts an intervention.
pub(crate) fn intervened(model: &str) {
    crate::observe::metrics::METRICS
        .guardrail_interventions
        .with_label_values(&[model])
        .inc();
}

/// Screens each choice of a whole answer; a blocked one becomes the
/// guardrail's message with `content_filter`.
pub(crate) async fn screen_answer(
    bedrock: &Bedrock,
    g: &GuardrailSettings,
    mut out: ChatCompletion,
) -> Result<ChatCompletion, ApiError> {
    for c in &mut out.choices {
        let text = c.message.content.clone().unwrap_or_default();
        if text.is_empty() {
            continue;
        }
        if let Some(msg) = bedrock.apply_guardrail(g, true, text).await? {
            intervened(&out.model);
            c.message.content = Some(msg);
            c.message.tool_calls = None;
            c.finish_reason = FinishReason::ContentFilter;
        }
    }
    Ok(out)
}

/// A stream screened in windows (see the module's text).
pub(crate) fn screen_stream(
    bedrock: Bedrock,
    g: GuardrailSettings,
    model: String,
    mut inner: ItemStream,
) -> ItemStream {
    let window = g.window_chars.unwrap_or(300).max(1);
    let hold = g.stream_processing_mode.as_deref() != Some("async");
    Box::pin(async_stream::stream! {
        let mut held: Vec<StreamItem> = Vec::new();
        let mut text = String::new();
        let mut fresh = 0usize;
        let mut ended = false;
        while !ended {
            let batch = match inner.next().await {
                Some(b) => b,
                None => break,
            };
            let mut check = false;
            for item in batch {
                if let StreamItem::Choice(c) = &item {
                    if let Some(t) = &c.delta.content {
                        text.push_str(t);
                        fresh += t.chars().count();
                    }
                    check |= c.finish_reason.is_some();
                }
                if matches!(item, StreamItem::Done | StreamItem::Error(_)) {
                    check = true;
                    ended = true;
                }
                held.push(item);
            }
            if !hold {
                yield std::mem::take(&mut held);
            }
            if fresh >= window || (check && fresh > 0) {
                match bedrock.apply_guardrail(&g, true, text.clone()).await {
                    Ok(None) => {
                        let keep = text.chars().count().saturating_sub(OVERLAP);
                        text = text.chars().skip(keep).collect();
                        fresh = 0;
                    }
                    Ok(Some(msg)) => {
                        intervened(&model);
                        // What was held is dropped; the upstream call ends
                        // with this stream.
                        let msg = if hold { msg } else { format!("\n{msg}") };
                        yield vec![filtered(Some(msg)), StreamItem::Done];
                        return;
                    }
                    Err(e) => {
                        yield vec![StreamItem::Error(e.body.as_ref().clone())];
                        return;
                    }
                }
            }
            if hold && !held.is_empty() && fresh == 0 {
                yield std::mem::take(&mut held);
            }
        }
        // An upstream that stopped without its end (the pump adds one; a
        // guard never trusts that): what is still unscreened is screened.
        if fresh > 0 {
            match bedrock.apply_guardrail(&g, true, text).await {
                Ok(None) => {}
                Ok(Some(msg)) => {
                    intervened(&model);
                    yield vec![filtered(Some(msg)), StreamItem::Done];
                    return;
                }
                Err(e) => {
                    yield vec![StreamItem::Error(e.body.as_ref().clone())];
                    return;
                }
            }
        }
        if !held.is_empty() {
            yield held;
        }
    })
}
