//! Shared state: the model registry, authentication and the backend.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use keyauth::KeyAuth;
use sm_stream::DialectKind;

use crate::config::{Config, ModelConfig};
use crate::error::ApiError;
use crate::sagemaker::SageMaker;
use crate::template::{CHATML, ChatTemplate};

/// One served model.
#[derive(Debug)]
pub struct Model {
    /// Its configuration.
    pub cfg: ModelConfig,
    /// The chat template (`tgi`/`lmi` only).
    pub template: Option<ChatTemplate>,
    /// `created` in `/v1/models`: when the gateway loaded it.
    pub created: u64,
}

/// Everything a handler needs. Cloned once per HTTP worker (the model
/// registry and key cache are shared behind `Arc`s).
#[derive(Debug, Clone)]
pub struct AppState {
    /// The configuration.
    pub config: Config,
    /// Models by name and alias.
    pub models: HashMap<String, Arc<Model>>,
    /// Model names in configuration order.
    pub order: Vec<String>,
    /// API-key verification (`None` when auth is disabled).
    pub auth: Option<Arc<KeyAuth>>,
    /// The SageMaker backend.
    pub sagemaker: SageMaker,
}

impl AppState {
    /// Builds the registry; compiles chat templates.
    pub fn new(
        config: Config,
        auth: Option<Arc<KeyAuth>>,
        sagemaker: SageMaker,
    ) -> Result<Self, crate::config::ConfigError> {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut models = HashMap::new();
        let mut order = Vec::new();
        for (i, m) in config.models.iter().enumerate() {
            let template = match m.dialect {
                DialectKind::Tgi | DialectKind::Lmi => Some(
                    match (&m.chat_template, &m.chat_template_file) {
                        (Some(src), _) => ChatTemplate::new(src.clone(), String::new(), String::new()),
                        (None, Some(path)) => ChatTemplate::from_file(path),
                        (None, None) => {
                            tracing::warn!(
                                model = %m.name,
                                "no chat_template for a tgi/lmi model: using ChatML; set chat_template_file to the model's tokenizer_config.json"
                            );
                            ChatTemplate::new(CHATML.into(), String::new(), String::new())
                        }
                    }
                    .map_err(|reason| crate::config::ConfigError {
                        key: format!("models[{i}].chat_template"),
                        reason,
                    })?,
                ),
                _ => None,
            };
            let model = Arc::new(Model {
                cfg: m.clone(),
                template,
                created,
            });
            order.push(m.name.clone());
            for n in std::iter::once(&m.name).chain(&m.aliases) {
                models.insert(n.clone(), Arc::clone(&model));
            }
        }
        // An endpoint's own name reaches its model too, unless that name is
        // taken by a configured model or alias.
        for name in &order {
            let m = Arc::clone(&models[name]);
            models.entry(m.cfg.endpoint_name().to_owned()).or_insert(m);
        }
        Ok(Self {
            config,
            models,
            order,
            auth,
            sagemaker,
        })
    }

    /// The model a request names, or the default model, or 404.
    pub fn resolve(&self, name: &str) -> Result<Arc<Model>, ApiError> {
        if let Some(m) = self.models.get(name) {
            return Ok(Arc::clone(m));
        }
        if let Some(m) = self
            .config
            .default_model
            .as_ref()
            .and_then(|d| self.models.get(d))
        {
            return Ok(Arc::clone(m));
        }
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            format!(
                "The model '{name}' does not exist. Available models: {}",
                self.order.join(", ")
            ),
        )
        .param("model")
        .code("model_not_found"))
    }
}
