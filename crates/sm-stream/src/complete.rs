//! Whole (non-streaming) responses: a container's `InvokeEndpoint` body to an
//! OpenAI `chat.completion`, through the same dialects and reasoning split as
//! streams; and [`Aggregator`], which folds stream items into one response.

use openai_types::Usage;
use openai_types::chat::{
    ChatCompletion, Choice, FinishReason, FunctionCall, FunctionType, ResponseMessage, ToolCall,
};
use serde_json::{Value, json};

use crate::{DialectKind, Error, StreamItem, Translator, TranslatorConfig};

/// Folds [`StreamItem`]s into a `chat.completion`.
#[derive(Debug, Default)]
pub struct Aggregator {
    choices: Vec<Acc>,
    usage: Option<Usage>,
    error: Option<openai_types::ErrorResponse>,
}

#[derive(Debug, Default)]
struct Acc {
    content: Option<String>,
    reasoning: Option<String>,
    refusal: Option<String>,
    tools: Vec<(String, String, String)>,
    finish: Option<FinishReason>,
}

impl Aggregator {
    /// Adds items in order.
    pub fn push(&mut self, items: &[StreamItem]) {
        for item in items {
            match item {
                StreamItem::Choice(c) => {
                    let i = c.index as usize;
                    if self.choices.len() <= i {
                        self.choices.resize_with(i + 1, Acc::default);
                    }
                    let a = &mut self.choices[i];
                    let d = &c.delta;
                    if let Some(t) = &d.content {
                        a.content.get_or_insert_with(String::new).push_str(t);
                    }
                    if let Some(t) = &d.reasoning_content {
                        a.reasoning.get_or_insert_with(String::new).push_str(t);
                    }
                    if let Some(t) = &d.refusal {
                        a.refusal.get_or_insert_with(String::new).push_str(t);
                    }
                    for tc in d.tool_calls.iter().flatten() {
                        let k = tc.index as usize;
                        if a.tools.len() <= k {
                            a.tools.resize_with(k + 1, Default::default);
                        }
                        let t = &mut a.tools[k];
                        if let Some(id) = &tc.id {
                            t.0 = id.clone();
                        }
                        if let Some(f) = &tc.function {
                            if let Some(n) = &f.name {
                                t.1.push_str(n);
                            }
                            if let Some(args) = &f.arguments {
                                t.2.push_str(args);
                            }
                        }
                    }
                    if c.finish_reason.is_some() {
                        a.finish = c.finish_reason;
                    }
                }
                StreamItem::Usage(u) => self.usage = Some(u.clone()),
                StreamItem::Error(e) => self.error = Some(e.clone()),
                StreamItem::Done => {}
            }
        }
    }

    /// The error item seen, if any.
    pub fn error(&self) -> Option<&openai_types::ErrorResponse> {
        self.error.as_ref()
    }

    /// The response.
    pub fn finish(self, id: &str, model: &str, created: u64) -> ChatCompletion {
        let choices = self
            .choices
            .into_iter()
            .enumerate()
            .map(|(i, a)| Choice {
                index: i as u32,
                message: ResponseMessage {
                    role: Default::default(),
                    content: match (&a.content, a.tools.is_empty()) {
                        (None, true) => Some(String::new()),
                        _ => a.content,
                    },
                    refusal: a.refusal,
                    reasoning_content: a.reasoning,
                    thinking_blocks: None,
                    tool_calls: (!a.tools.is_empty()).then(|| {
                        a.tools
                            .into_iter()
                            .map(|(id, name, arguments)| ToolCall {
                                id,
                                kind: FunctionType,
                                function: FunctionCall { name, arguments },
                            })
                            .collect()
                    }),
                },
                logprobs: None,
                finish_reason: a.finish.unwrap_or(FinishReason::Stop),
            })
            .collect();
        ChatCompletion {
            id: id.to_owned(),
            object: Default::default(),
            created,
            model: model.to_owned(),
            choices,
            usage: self.usage,
            system_fingerprint: None,
            service_tier: None,
        }
    }
}

/// Translates a container's whole `InvokeEndpoint` response into a
/// `chat.completion` (id, model and `created` from `cfg`; usage always set,
/// estimated where the container gave none).
///
/// Accepted bodies: an OpenAI `chat.completion` (vLLM, TGI Messages API, LMI),
/// TGI's `[{"generated_text": …, "details": …}]`, LMI's
/// `{"generated_text": …}`, and error objects (returned as `Err`).
pub fn translate_response(body: &[u8], cfg: TranslatorConfig) -> Result<ChatCompletion, Error> {
    /// Just enough of the body to tell its shape (one pass that skips the
    /// content; the translator then parses the one record it needs).
    #[derive(serde::Deserialize)]
    struct Shape {
        #[serde(default)]
        choices: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        generated_text: Option<String>,
        #[serde(default)]
        details: Option<Value>,
        #[serde(default)]
        error: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        object: Option<String>,
    }
    let is_list = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let first: Shape = if is_list {
        let mut list: Vec<Shape> =
            serde_json::from_slice(body).map_err(|e| crate::dialect::invalid(e, body))?;
        if list.is_empty() {
            return Err(Error::InvalidRecord("empty response list".into()));
        }
        list.swap_remove(0)
    } else {
        serde_json::from_slice(body).map_err(|e| crate::dialect::invalid(e, body))?
    };
    if first.error.is_some() || first.object.as_deref() == Some("error") {
        return Err(
            crate::dialect::error_value(body).unwrap_or_else(|| Error::Upstream {
                kind: "model_error".into(),
                message: "upstream error".into(),
                code: None,
            }),
        );
    }
    let has_generated_tokens = first
        .details
        .as_ref()
        .is_some_and(|d| d["generated_tokens"].is_u64());
    let (dialect, record) = if first.choices.is_some() && !is_list {
        // The translator reads records a line each: a pretty-printed body is
        // made compact first (containers send compact JSON, so this is rare).
        let record = if body.contains(&b'\n') {
            let v: Value =
                serde_json::from_slice(body).map_err(|e| crate::dialect::invalid(e, body))?;
            serde_json::to_vec(&v).map_err(|e| crate::dialect::invalid(e, body))?
        } else {
            body.to_vec()
        };
        (DialectKind::OpenAiChat, record)
    } else if let Some(text) = first.generated_text {
        let details = first
            .details
            .filter(|d| d.is_object())
            .unwrap_or_else(|| json!({"finish_reason": "stop"}));
        let rec = json!({"token": {"text": text, "special": false}, "details": details});
        (DialectKind::Tgi, rec.to_string().into_bytes())
    } else {
        return Err(crate::dialect::unreadable(
            "unrecognized response body: expected choices or generated_text",
            body,
        ));
    };
    let (id, model, created) = (cfg.id.clone(), cfg.model.clone(), cfg.created);
    let mut t = Translator::new(TranslatorConfig {
        dialect,
        include_usage: true,
        ..cfg
    });
    let mut items = Vec::new();
    let mut line = record;
    line.push(b'\n');
    t.push_payload(&line, &mut items);
    t.finish(&mut items);
    if let Some(e) = t.error() {
        return Err(e.clone());
    }
    let mut agg = Aggregator::default();
    agg.push(&items);
    let mut c = agg.finish(&id, &model, created);
    let one_record = dialect == DialectKind::Tgi && !has_generated_tokens;
    let text_tokens = c
        .choices
        .first()
        .and_then(|ch| ch.message.content.as_deref())
        .map(estimate_tokens)
        .unwrap_or(0);
    if let Some(u) = c.usage.as_mut().filter(|u| u.estimated && one_record) {
        // One record stood for the whole text: estimate from its length.
        u.completion_tokens = text_tokens;
        u.total_tokens = u.prompt_tokens + u.completion_tokens;
    }
    Ok(c)
}

pub use openai_types::tokens::{TokenCounter, estimate_tokens};

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> TranslatorConfig {
        TranslatorConfig {
            id: "chatcmpl-x".into(),
            model: "m".into(),
            created: 7,
            prompt_tokens_estimate: 3,
            ..TranslatorConfig::default()
        }
    }

    #[test]
    fn openai_body() {
        let body = r#"{"id":"u","object":"chat.completion","created":1,"model":"up","choices":[{"index":0,"message":{"role":"assistant","content":"Hi 你好","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;
        let c = translate_response(body.as_bytes(), cfg()).unwrap();
        assert_eq!(c.id, "chatcmpl-x");
        assert_eq!(c.model, "m");
        assert_eq!(c.choices[0].message.content.as_deref(), Some("Hi 你好"));
        assert_eq!(c.choices[0].finish_reason, FinishReason::ToolCalls);
        let tc = c.choices[0].message.tool_calls.as_ref().unwrap();
        assert_eq!(
            (tc[0].id.as_str(), tc[0].function.name.as_str()),
            ("call_1", "f")
        );
        assert_eq!(c.usage.unwrap().total_tokens, 7);
    }

    #[test]
    fn pretty_printed_openai_body() {
        let body = "{\n  \"choices\": [\n    {\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": \"a\\nb\"}, \"finish_reason\": \"stop\"}\n  ]\n}\n";
        let c = translate_response(body.as_bytes(), cfg()).unwrap();
        assert_eq!(c.choices[0].message.content.as_deref(), Some("a\nb"));
    }

    #[test]
    fn tgi_and_lmi_bodies() {
        let c = translate_response(
            br#"[{"generated_text":"Bonjour","details":{"finish_reason":"length","generated_tokens":2}}]"#,
            cfg(),
        )
        .unwrap();
        assert_eq!(c.choices[0].message.content.as_deref(), Some("Bonjour"));
        assert_eq!(c.choices[0].finish_reason, FinishReason::Length);
        let u = c.usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.estimated),
            (3, 2, true)
        );
        let c = translate_response(br#"{"generated_text":"abcdefgh"}"#, cfg()).unwrap();
        assert_eq!(c.usage.unwrap().completion_tokens, 2);
    }

    #[test]
    fn reasoning_split_applies_to_whole_bodies() {
        let c = translate_response(
            br#"{"generated_text":"<think>hmm</think>\n\nYes."}"#,
            TranslatorConfig {
                reasoning: crate::ReasoningMode::Tags,
                ..cfg()
            },
        )
        .unwrap();
        assert_eq!(
            c.choices[0].message.reasoning_content.as_deref(),
            Some("hmm")
        );
        assert_eq!(c.choices[0].message.content.as_deref(), Some("Yes."));
    }

    #[test]
    fn error_bodies_are_errors() {
        assert!(translate_response(br#"{"error":"boom","error_type":"x"}"#, cfg()).is_err());
        assert!(translate_response(b"not json", cfg()).is_err());
        assert!(translate_response(br#"{"foo":1}"#, cfg()).is_err());
    }
}
