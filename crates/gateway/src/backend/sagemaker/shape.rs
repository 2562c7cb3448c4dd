//! Request shaping: what each container dialect is sent.

use openai_types::chat::{ChatCompletionRequest, ChatMessage, MessageContent, UserMessage};
use openai_types::completions::{CompletionRequest, Prompt};
use openai_types::{Extra, StreamOptions};
use serde_json::{Value, json};
use sm_stream::DialectKind;

use crate::backend::sagemaker::template::ChatTemplate;
use crate::config::ModelConfig;
use crate::error::ApiError;

/// The one text prompt a SageMaker endpoint is sent for a legacy
/// completion: it generates one choice a call (`n` and `best_of` of 1) and
/// takes text, one prompt a request.
pub(crate) fn one_prompt(r: &CompletionRequest) -> Result<&str, ApiError> {
    if r.n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid(
            "SageMaker models serve legacy completions with n = 1; use /v1/chat/completions for more choices",
        )
        .param("n"));
    }
    if r.best_of.is_some_and(|b| b > 1) {
        return Err(ApiError::invalid(
            "SageMaker models serve legacy completions with best_of = 1",
        )
        .param("best_of"));
    }
    match &r.prompt {
        Prompt::String(s) => Ok(s),
        Prompt::Strings(v) if v.len() == 1 => Ok(&v[0]),
        Prompt::Strings(_) => {
            Err(ApiError::invalid("SageMaker models take one prompt per request").param("prompt"))
        }
        Prompt::Tokens(_) | Prompt::TokenLists(_) => Err(ApiError::invalid(
            "SageMaker models take text prompts, not token ids",
        )
        .param("prompt")),
    }
}

/// The body sent upstream for a chat request.
pub(crate) fn chat_body(
    cfg: &ModelConfig,
    template: Option<&ChatTemplate>,
    r: ChatCompletionRequest,
    stream: bool,
) -> Result<Vec<u8>, ApiError> {
    let v = match cfg.dialect {
        DialectKind::Tgi | DialectKind::Lmi => {
            let tpl =
                template.ok_or_else(|| ApiError::internal("no chat template for this model"))?;
            let prompt = tpl.render(&r.messages, r.tools.as_deref())?;
            let stop = r.stop.as_ref().map(|s| s.as_slice().to_vec());
            generate_body(
                cfg,
                prompt,
                stream,
                Params {
                    max_tokens: r.max_output_tokens(),
                    temperature: r.temperature,
                    top_p: r.top_p,
                    stop,
                    seed: r.seed,
                    frequency_penalty: r.frequency_penalty,
                },
            )
        }
        _ => {
            let mut up = r;
            up.stream = Some(stream);
            // Ask for usage so it can be reported and recorded; the client's
            // own include_usage decides what it is sent.
            up.stream_options = stream.then(|| StreamOptions {
                include_usage: Some(true),
                extra: Extra::new(),
            });
            if let Some(m) = &cfg.upstream_model {
                up.model = m.clone();
            }
            // Serialized straight to bytes: no intermediate JSON tree.
            return serde_json::to_vec(&up).map_err(|e| ApiError::internal(e.to_string()));
        }
    };
    serde_json::to_vec(&v).map_err(|e| ApiError::internal(e.to_string()))
}

/// The body sent upstream for a legacy completion request.
pub(crate) fn completion_body(
    cfg: &ModelConfig,
    template: Option<&ChatTemplate>,
    r: &CompletionRequest,
    stream: bool,
) -> Result<Vec<u8>, ApiError> {
    let prompt = one_prompt(r)?.to_owned();
    match cfg.dialect {
        DialectKind::Tgi | DialectKind::Lmi => {
            let v = generate_body(
                cfg,
                prompt,
                stream,
                Params {
                    max_tokens: r.max_tokens,
                    temperature: r.temperature,
                    top_p: r.top_p,
                    stop: r.stop.as_ref().map(|s| s.as_slice().to_vec()),
                    seed: r.seed,
                    frequency_penalty: r.frequency_penalty,
                },
            );
            serde_json::to_vec(&v).map_err(|e| ApiError::internal(e.to_string()))
        }
        _ => {
            // OpenAI-schema containers on SageMaker take chat requests: the
            // prompt becomes one user message.
            let chat = ChatCompletionRequest {
                model: r.model.clone(),
                messages: vec![ChatMessage::User(UserMessage {
                    content: MessageContent::Text(prompt),
                    name: None,
                    extra: Extra::new(),
                })],
                max_tokens: r.max_tokens,
                temperature: r.temperature,
                top_p: r.top_p,
                stop: r.stop.clone(),
                seed: r.seed,
                presence_penalty: r.presence_penalty,
                frequency_penalty: r.frequency_penalty,
                user: r.user.clone(),
                ..ChatCompletionRequest::default()
            };
            chat_body(cfg, template, chat, stream)
        }
    }
}

struct Params {
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop: Option<Vec<String>>,
    seed: Option<i64>,
    frequency_penalty: Option<f64>,
}

/// `{"inputs": …, "parameters": {…}, "stream": …}` for TGI and LMI.
fn generate_body(cfg: &ModelConfig, prompt: String, stream: bool, p: Params) -> Value {
    let mut params = serde_json::Map::new();
    params.insert(
        "max_new_tokens".into(),
        json!(p.max_tokens.unwrap_or(cfg.default_max_tokens)),
    );
    match p.temperature {
        // Greedy: TGI refuses temperature 0.
        Some(0.0) => {
            params.insert("do_sample".into(), json!(false));
        }
        Some(t) => {
            params.insert("do_sample".into(), json!(true));
            params.insert("temperature".into(), json!(t));
        }
        None => {}
    }
    if let Some(t) = p.top_p.filter(|t| *t > 0.0 && *t < 1.0) {
        params.insert("top_p".into(), json!(t));
    }
    if let Some(stop) = p.stop.filter(|s| !s.is_empty()) {
        let key = if cfg.dialect == DialectKind::Lmi {
            "stop_sequences"
        } else {
            "stop"
        };
        params.insert(key.into(), json!(stop));
    }
    if let Some(s) = p.seed {
        params.insert("seed".into(), json!(s));
    }
    if let Some(f) = p.frequency_penalty.filter(|f| *f != 0.0) {
        params.insert("frequency_penalty".into(), json!(f));
    }
    params.insert("details".into(), json!(true));
    if cfg.dialect == DialectKind::Tgi {
        params.insert("return_full_text".into(), json!(false));
    }
    json!({"inputs": prompt, "parameters": params, "stream": stream})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::sagemaker::template::CHATML;

    fn model(dialect: DialectKind) -> (ModelConfig, ChatTemplate) {
        let mut cfg = ModelConfig::for_endpoint("ep");
        cfg.dialect = dialect;
        cfg.upstream_model = Some("served-name".into());
        let t = ChatTemplate::new(CHATML.into(), String::new(), String::new()).unwrap();
        (cfg, t)
    }

    fn req(extra: serde_json::Value) -> ChatCompletionRequest {
        let mut v = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    fn body(m: &(ModelConfig, ChatTemplate), r: ChatCompletionRequest, stream: bool) -> Value {
        serde_json::from_slice(&chat_body(&m.0, Some(&m.1), r, stream).unwrap()).unwrap()
    }

    #[test]
    fn tgi_parameters() {
        let b = body(
            &model(DialectKind::Tgi),
            req(
                json!({"max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "stop": ["\n"], "seed": 3}),
            ),
            true,
        );
        assert_eq!(
            b["inputs"],
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(b["stream"], true);
        let p = &b["parameters"];
        assert_eq!(p["max_new_tokens"], 7);
        assert_eq!(
            (p["do_sample"].clone(), p["temperature"].clone()),
            (json!(true), json!(0.5))
        );
        assert_eq!(p["top_p"], 0.9);
        assert_eq!(p["stop"], json!(["\n"]));
        assert_eq!(p["seed"], 3);
        assert_eq!(p["details"], true);
        assert_eq!(p["return_full_text"], false);
    }

    #[test]
    fn greedy_and_out_of_range_values_become_what_tgi_accepts() {
        let b = body(
            &model(DialectKind::Tgi),
            req(json!({"temperature": 0, "top_p": 1})),
            false,
        );
        let p = b["parameters"].as_object().unwrap();
        assert_eq!(p["do_sample"], false);
        assert!(!p.contains_key("temperature") && !p.contains_key("top_p"));
        assert_eq!(p["max_new_tokens"], 1024, "the model's default limit");
    }

    #[test]
    fn lmi_uses_stop_sequences() {
        let b = body(&model(DialectKind::Lmi), req(json!({"stop": "END"})), false);
        assert_eq!(b["parameters"]["stop_sequences"], json!(["END"]));
        assert!(b["parameters"].get("return_full_text").is_none());
    }

    #[test]
    fn openai_containers_get_the_request_with_usage_asked_for() {
        let b = body(
            &model(DialectKind::OpenAiChat),
            req(
                json!({"stream": true, "stream_options": {"include_usage": false}, "x-vendor": {"a": 1}}),
            ),
            true,
        );
        assert_eq!(b["model"], "served-name");
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["x-vendor"]["a"], 1, "unknown fields pass through");
        let b = body(&model(DialectKind::OpenAiChat), req(json!({})), false);
        assert!(b.get("stream_options").is_none());
        assert_eq!(b["stream"], false);
    }

    #[test]
    fn endpoints_take_one_text_prompt_with_one_choice() {
        let r = |v: serde_json::Value| -> CompletionRequest {
            let mut b = json!({"model": "m", "prompt": "hi"});
            for (k, x) in v.as_object().unwrap() {
                b[k] = x.clone();
            }
            serde_json::from_value(b).unwrap()
        };
        assert_eq!(one_prompt(&r(json!({}))).unwrap(), "hi");
        assert_eq!(one_prompt(&r(json!({"prompt": ["one"]}))).unwrap(), "one");
        for (extra, param) in [
            (json!({"prompt": ["a", "b"]}), "prompt"),
            (json!({"prompt": [1, 2]}), "prompt"),
            (json!({"best_of": 2}), "best_of"),
            (json!({"n": 2}), "n"),
        ] {
            let e = one_prompt(&r(extra)).unwrap_err();
            assert_eq!(e.body.error.param.as_deref(), Some(param));
            assert_eq!(e.status.as_u16(), 400);
        }
    }
}
