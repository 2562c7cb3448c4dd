//! OpenAI `chat.completion.chunk` records (SSE or JSON lines).

use std::borrow::Cow;

use serde::Deserialize;

use super::{Dialect, error_value, invalid};
use crate::Error;
use crate::emit::{Emitter, ToolKey, map_finish_reason};
use openai_types::Usage;

#[derive(Debug, Default)]
pub(crate) struct OpenAiChat;

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    // Boxed: rare, and large values make every move of the parsed chunk
    // costly (a third of the parse time before they were boxed).
    #[serde(default)]
    usage: Option<Box<Usage>>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
    #[serde(default, borrow)]
    object: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: u32,
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    /// A whole message (some LMI versions send one instead of a delta).
    #[serde(default, borrow)]
    message: Option<Box<Delta<'a>>>,
    /// Legacy-completions style text.
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow, alias = "reasoning")]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

impl Dialect for OpenAiChat {
    fn record(&mut self, bytes: &[u8], em: &mut Emitter<'_>) -> Result<(), Error> {
        let chunk: Chunk<'_> = serde_json::from_slice(bytes).map_err(|e| invalid(e, bytes))?;
        if chunk.error.is_some() || chunk.object.as_deref() == Some("error") {
            return Err(error_value(bytes).unwrap_or_else(|| Error::Upstream {
                kind: "model_error".into(),
                message: "upstream error".into(),
                code: None,
            }));
        }
        for ch in chunk.choices {
            let idx = ch.index;
            let mut produced = false;
            if let Some(d) = ch.delta.or(ch.message.map(|m| *m)) {
                if let Some(r) = d.reasoning_content.as_deref().filter(|r| !r.is_empty()) {
                    em.reasoning(idx, r);
                    produced = true;
                }
                if let Some(c) = d.content.as_deref().filter(|c| !c.is_empty()) {
                    em.text(idx, c);
                    produced = true;
                }
                if let Some(r) = d.refusal.as_deref().filter(|r| !r.is_empty()) {
                    em.refusal(idx, r);
                    produced = true;
                }
                for tc in d.tool_calls.into_iter().flatten() {
                    let key = match (tc.index, &tc.id) {
                        (Some(i), _) => Some(ToolKey::Index(i)),
                        (None, Some(id)) => Some(ToolKey::Id(id.to_string())),
                        (None, None) => None,
                    };
                    let (name, args) = match &tc.function {
                        Some(f) => (f.name.as_deref(), f.arguments.as_deref()),
                        None => (None, None),
                    };
                    em.tool_call(idx, key, tc.id.as_deref(), name, args);
                    produced = true;
                }
            }
            if let Some(t) = ch.text.as_deref().filter(|t| !t.is_empty()) {
                em.text(idx, t);
                produced = true;
            }
            if produced {
                em.count_token();
            }
            if let Some(fr) = ch.finish_reason.as_deref() {
                match map_finish_reason(fr) {
                    Some(r) => em.finish(idx, r),
                    None => {
                        return Err(Error::Upstream {
                            kind: "model_error".into(),
                            message: "the model server ended the generation with an error".into(),
                            code: None,
                        });
                    }
                }
            }
        }
        if let Some(u) = chunk.usage {
            em.usage(*u);
        }
        Ok(())
    }
}
