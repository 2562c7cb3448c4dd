//! LMI / DJL Serving rolling-batch JSON lines.

use std::borrow::Cow;

use serde::Deserialize;

use super::tgi::{Details, apply_details};
use super::{Dialect, error_value, invalid};
use crate::Error;
use crate::emit::Emitter;

#[derive(Debug, Default)]
pub(crate) struct Lmi {
    /// The `{"outputs":[…]}` form has no finish marker: end of input ends it.
    outputs_form: bool,
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(default, borrow)]
    token: Option<Token<'a>>,
    #[serde(default, borrow)]
    outputs: Option<Vec<Cow<'a, str>>>,
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

impl Dialect for Lmi {
    fn record(&mut self, bytes: &[u8], em: &mut Emitter<'_>) -> Result<(), Error> {
        let r: Record<'_> = serde_json::from_slice(bytes).map_err(|e| invalid(e, bytes))?;
        if r.error.is_some() {
            return Err(error_value(bytes).unwrap_or_else(|| Error::Upstream {
                kind: "model_error".into(),
                message: "upstream error".into(),
                code: None,
            }));
        }
        if let Some(t) = r.token.as_ref().filter(|t| !t.special) {
            em.text(0, &t.text);
            em.count_token();
        }
        if let Some(outputs) = &r.outputs {
            self.outputs_form = true;
            for (i, o) in outputs.iter().enumerate() {
                em.text(i as u32, o);
            }
            em.count_token();
        }
        if let Some(d) = r.details {
            apply_details(&d, 0, em)?;
        }
        Ok(())
    }

    fn on_end(&mut self, em: &mut Emitter<'_>) {
        if self.outputs_form {
            em.done();
        }
    }
}
