//! `n > 1` for backends that generate one choice a call (SageMaker
//! endpoints, Bedrock models): `n` concurrent calls merged into one answer.
//! Choices are numbered 0..n-1 in call order, usage is the sum of the calls
//! (each call processed the prompt), and a stream interleaves the calls'
//! chunks with their choice index, then one usage item and one `Done`.
//! Any call failing fails the request (before the first byte: as the HTTP
//! error; after: as the stream's error item).

use futures_util::future::try_join_all;
use futures_util::stream::{SelectAll, StreamExt};
use openai_types::Usage;
use openai_types::chat::ChatCompletion;
use openai_types::stream::StreamItem;

use crate::backend::{Backends, ChatCall, ItemStream, Model};
use crate::error::ApiError;

/// How many choices `call` asks for, refused above `max` with a message
/// naming the backend.
pub(crate) fn choices(m: &Model, call: &ChatCall, max: u32) -> Result<u32, ApiError> {
    let n = call.req.n.unwrap_or(1);
    if n > max {
        return Err(ApiError::invalid(format!(
            "{} models generate one choice a call; this gateway serves n up to {max} as parallel calls (asked: {n})",
            m.backend_title()
        ))
        .param("n"));
    }
    Ok(n.max(1))
}

/// The `n` single-choice calls of `call`.
fn singles(call: &ChatCall, n: u32) -> impl Iterator<Item = ChatCall> + '_ {
    (0..n).map(|_| {
        let mut c = call.clone();
        c.req.n = None;
        c
    })
}

/// `n` whole answers merged into one.
pub(crate) async fn chat(
    b: &Backends,
    m: &Model,
    call: ChatCall,
    n: u32,
) -> Result<ChatCompletion, ApiError> {
    let answers = try_join_all(singles(&call, n).map(|c| b.chat_one(m, c))).await?;
    let mut merged: Option<ChatCompletion> = None;
    let mut usage: Option<Usage> = None;
    for (i, mut a) in answers.into_iter().enumerate() {
        if let Some(u) = &a.usage {
            usage.get_or_insert_with(Usage::default).accumulate(u);
        }
        let choices = std::mem::take(&mut a.choices);
        let out = merged.get_or_insert(a);
        out.choices.extend(choices.into_iter().map(|mut c| {
            c.index = i as u32;
            c
        }));
    }
    let mut out = merged.ok_or_else(|| ApiError::internal("no choices were asked for"))?;
    out.usage = usage;
    Ok(out)
}

/// `n` streams opened together and merged.
pub(crate) async fn chat_stream(
    b: &Backends,
    m: &Model,
    call: ChatCall,
    n: u32,
) -> Result<ItemStream, ApiError> {
    let opened = try_join_all(singles(&call, n).map(|c| b.chat_stream_one(m, c))).await?;
    let mut all: SelectAll<_> = futures_util::stream::select_all(
        opened
            .into_iter()
            .enumerate()
            .map(|(i, s)| s.map(move |batch| (i as u32, batch))),
    );
    Ok(Box::pin(async_stream::stream! {
        let mut usage = Usage::default();
        let mut done = 0;
        while let Some((index, batch)) = all.next().await {
            let mut out = Vec::with_capacity(batch.len());
            for item in batch {
                match item {
                    StreamItem::Choice(mut c) => {
                        c.index = index;
                        out.push(StreamItem::Choice(c));
                    }
                    StreamItem::Usage(u) => usage.accumulate(&u),
                    StreamItem::Done => done += 1,
                    StreamItem::Error(e) => {
                        // One failed call ends the whole answer (dropping
                        // the others cancels them).
                        out.push(StreamItem::Error(e));
                        yield out;
                        return;
                    }
                }
            }
            if done == n {
                out.push(StreamItem::Usage(usage.clone()));
                out.push(StreamItem::Done);
                yield out;
                return;
            }
            if !out.is_empty() {
                yield out;
            }
        }
        // Every stream ends with Done or Error; reaching here means one
        // ended without either.
        yield vec![StreamItem::Error(
            ApiError::upstream(
                actix_web::http::StatusCode::BAD_GATEWAY,
                "truncated",
                "an upstream stream ended early",
            )
            .body
            .as_ref()
            .clone(),
        )];
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;

    fn call(n: Option<u32>) -> ChatCall {
        let mut req: openai_types::chat::ChatCompletionRequest = serde_json::from_value(
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap();
        req.n = n;
        ChatCall {
            req,
            id: "chatcmpl-1".into(),
            created: 0,
            prompt_estimate: 1,
            client_auth: Default::default(),
            max_choices: 8,
            images: Default::default(),
            key_guardrail: None,
        }
    }

    #[test]
    fn choices_are_bounded_and_the_refusal_names_the_backend() {
        let sm = Model::configured(ModelConfig::for_endpoint("ep"), 0).unwrap();
        let br = Model::configured(ModelConfig::for_bedrock("anthropic.claude"), 0).unwrap();
        for (n, max, want) in [
            (None, 8, Ok(1)),
            (Some(1), 8, Ok(1)),
            (Some(8), 8, Ok(8)),
            (Some(9), 8, Err(())),
        ] {
            for m in [&sm, &br] {
                let got = choices(m, &call(n), max);
                match want {
                    Ok(x) => assert_eq!(got.unwrap(), x),
                    Err(()) => {
                        let e = got.unwrap_err();
                        assert_eq!(e.body.error.param.as_deref(), Some("n"));
                        assert!(
                            e.body.error.message.starts_with(m.backend_title()),
                            "{}",
                            e.body.error.message
                        );
                    }
                }
            }
        }
    }
}
