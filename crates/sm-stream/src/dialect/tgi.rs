//! TGI `generate_stream` records.

use std::borrow::Cow;

use serde::Deserialize;

use super::{Dialect, error_value, invalid};
use crate::Error;
use crate::emit::{Emitter, map_finish_reason};
use openai_types::Usage;

#[derive(Debug, Default)]
pub(crate) struct Tgi;

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default, borrow)]
    token: Option<Token<'a>>,
    #[serde(default)]
    details: Option<Details>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Token<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
    #[serde(default)]
    special: bool,
}

#[derive(Deserialize)]
pub(super) struct Details {
    #[serde(default)]
    pub(super) finish_reason: Option<String>,
    #[serde(default)]
    pub(super) generated_tokens: Option<u64>,
    #[serde(default)]
    pub(super) prefill: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    pub(super) input_length: Option<u64>,
}

impl Dialect for Tgi {
    fn record(&mut self, bytes: &[u8], em: &mut Emitter<'_>) -> Result<(), Error> {
        let r: Record<'_> = serde_json::from_slice(bytes).map_err(|e| invalid(e, bytes))?;
        if r.error.is_some() {
            return Err(error_value(bytes).unwrap_or_else(|| Error::Upstream {
                kind: "model_error".into(),
                message: "upstream error".into(),
                code: None,
            }));
        }
        // TGI numbers the sequences of `best_of`/`n` from 1 in `index` of
        // some versions; choices are numbered from 0.
        let idx = 0;
        let _ = r.index;
        if let Some(t) = r.token.as_ref().filter(|t| !t.special) {
            em.text(idx, &t.text);
            em.count_token();
        }
        if let Some(d) = r.details {
            apply_details(&d, idx, em)?;
        }
        Ok(())
    }
}

/// Applies a final `details` object: usage and the finish reason.
pub(super) fn apply_details(d: &Details, idx: u32, em: &mut Emitter<'_>) -> Result<(), Error> {
    if let Some(n) = d.generated_tokens {
        let prompt = d
            .input_length
            .or_else(|| {
                d.prefill
                    .as_ref()
                    .map(|p| p.len() as u64)
                    .filter(|n| *n > 0)
            })
            .unwrap_or(0);
        em.usage(Usage::new(prompt, n));
    }
    match d.finish_reason.as_deref() {
        Some(fr) => match map_finish_reason(fr) {
            Some(r) => em.finish(idx, r),
            None => {
                return Err(Error::Upstream {
                    kind: "model_error".into(),
                    message: "the model server ended the generation with finish_reason 'error'"
                        .into(),
                    code: None,
                });
            }
        },
        None => em.finish(idx, openai_types::chat::FinishReason::Stop),
    }
    Ok(())
}
