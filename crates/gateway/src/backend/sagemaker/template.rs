//! Chat templates: rendering OpenAI messages into a prompt for containers
//! that take `inputs` (TGI `generate`, LMI), with the model's own Jinja
//! template from its `tokenizer_config.json`.

use std::path::Path;

use minijinja::{Environment, ErrorKind, Value};
use openai_types::chat::{ChatMessage, MessageContent, Tool};
use serde_json::json;

use crate::error::ApiError;

/// ChatML, used when a `tgi`/`lmi` model names no template (a warning is
/// logged at start-up: configure the model's own).
pub(crate) const CHATML: &str = "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// A compiled chat template.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
}

impl ChatTemplate {
    /// Compiles a template source.
    pub fn new(source: String, bos: String, eos: String) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<Value, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_function("strftime_now", |_fmt: String| today());
        env.add_template_owned("chat", source)
            .map_err(|e| format!("chat template does not compile: {e}"))?;
        Ok(Self { env, bos, eos })
    }

    /// From a `tokenizer_config.json` (its `chat_template`, `bos_token`,
    /// `eos_token`) or a plain `.jinja` file.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if path.extension().is_some_and(|e| e == "json") {
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let tpl = match &v["chat_template"] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(list) => list
                    .iter()
                    .find(|t| t["name"] == "default")
                    .or_else(|| list.first())
                    .and_then(|t| t["template"].as_str())
                    .ok_or("chat_template list has no template")?
                    .to_owned(),
                _ => return Err(format!("{}: no chat_template", path.display())),
            };
            let token = |k: &str| match &v[k] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Object(o) => o
                    .get("content")
                    .and_then(|c| c.as_str())
                    .unwrap_or_default()
                    .to_owned(),
                _ => String::new(),
            };
            Self::new(tpl, token("bos_token"), token("eos_token"))
        } else {
            Self::new(text, String::new(), String::new())
        }
    }

    /// Renders the conversation with the generation prompt appended.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        tools: Option<&[Tool]>,
    ) -> Result<String, ApiError> {
        let mut msgs = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            let text = |c: &MessageContent| -> Result<String, ApiError> {
                if c.has_non_text() {
                    return Err(ApiError::invalid(
                        "this model takes text only: image, audio and file parts are not supported",
                    )
                    .param(format!("messages[{i}].content")));
                }
                Ok(c.text().into_owned())
            };
            msgs.push(match m {
                ChatMessage::System(s) | ChatMessage::Developer(s) => {
                    json!({"role": "system", "content": text(&s.content)?})
                }
                ChatMessage::User(u) => json!({"role": "user", "content": text(&u.content)?}),
                ChatMessage::Assistant(a) => {
                    let content = match &a.content {
                        Some(c) => text(c)?,
                        None => String::new(),
                    };
                    let mut v = json!({"role": "assistant", "content": content});
                    if let Some(tc) = &a.tool_calls {
                        v["tool_calls"] = serde_json::to_value(tc).unwrap_or_default();
                    }
                    v
                }
                ChatMessage::Tool(t) => json!({
                    "role": "tool", "content": text(&t.content)?, "tool_call_id": t.tool_call_id
                }),
            });
        }
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| ApiError::internal(format!("chat template: {e}")))?;
        let ctx = minijinja::context! {
            messages => Value::from_serialize(&msgs),
            tools => tools.map(Value::from_serialize),
            add_generation_prompt => true,
            bos_token => self.bos.clone(),
            eos_token => self.eos.clone(),
        };
        tmpl.render(ctx).map_err(|e| {
            // A template's raise_exception speaks about the conversation.
            if e.kind() == ErrorKind::InvalidOperation {
                ApiError::invalid(format!(
                    "the model's chat template refused the messages: {e}"
                ))
                .param("messages")
            } else {
                ApiError::internal(format!("chat template failed: {e}"))
            }
        })
    }
}

/// Today as `26 Jul 2024` (what Llama 3.x templates ask `strftime_now` for).
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = crate::ids::civil(secs / 86_400);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!("{d:02} {} {y}", MONTHS[(m - 1) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(v: serde_json::Value) -> Vec<ChatMessage> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn renders_chatml() {
        let t = ChatTemplate::new(CHATML.into(), String::new(), String::new()).unwrap();
        let out = t
            .render(
                &msgs(json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "你好"}])),
                None,
            )
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn hf_style_template_with_python_methods_and_raise() {
        let src = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'tool' %}{{ raise_exception('no tools') }}{% endif %}[{{ m['role'].upper() }}] {{ m['content'].strip() }}\n{% endfor %}[ASSISTANT]";
        let t = ChatTemplate::new(src.into(), "<s>".into(), "</s>".into()).unwrap();
        let out = t
            .render(&msgs(json!([{"role": "user", "content": "  hi  "}])), None)
            .unwrap();
        assert_eq!(out, "<s>[USER] hi\n[ASSISTANT]");
        let e = t
            .render(
                &msgs(json!([{"role": "tool", "content": "x", "tool_call_id": "c"}])),
                None,
            )
            .unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
    }

    #[test]
    fn images_are_refused_for_text_templates() {
        let t = ChatTemplate::new(CHATML.into(), String::new(), String::new()).unwrap();
        let e = t
            .render(
                &msgs(json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}])),
                None,
            )
            .unwrap_err();
        assert_eq!(e.body.error.param.as_deref(), Some("messages[0].content"));
    }

    #[test]
    fn deepseek_r1_tokenizer_config() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("test_data/tokenizer_config.json");
        let t = ChatTemplate::from_file(&path).unwrap();
        let out = t
            .render(
                &msgs(json!([
                    {"role": "system", "content": "Be kind."},
                    {"role": "user", "content": "Hello!"},
                    {"role": "assistant", "content": "Hi."},
                    {"role": "user", "content": "你好"}
                ])),
                None,
            )
            .unwrap();
        assert_eq!(
            out,
            "<｜begin▁of▁sentence｜>Be kind.<｜User｜>Hello!<｜Assistant｜>Hi.<｜end▁of▁sentence｜><｜User｜>你好<｜Assistant｜><think>\n"
        );
    }

    #[test]
    fn today_is_a_date() {
        let d = today();
        assert_eq!(d.len(), 11, "{d}");
    }
}
