//! Shared state: the model registry, authentication and the backend.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use keyauth::KeyAuth;
use sm_stream::DialectKind;

use crate::bedrock::{Bedrock, Catalog};
use crate::config::{Backend, Config, ConfigError, ModelConfig};
use crate::error::ApiError;
use crate::openai::{OpenAi, Upstream};
use crate::provider::Provider;
use crate::router::Router;
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
    /// The OpenAI-compatible upstream serving it (`Backend::Openai`).
    pub upstream: Option<Arc<Upstream>>,
}

impl Model {
    /// Its name in the router: the upstream's name, or `models/<name>`.
    pub fn key(&self) -> String {
        match &self.upstream {
            Some(u) => u.cfg.name.clone(),
            None => format!("models/{}", self.cfg.name),
        }
    }

    /// Its name as a metric label: the configured name, or for an upstream
    /// the allow-list pattern that admitted it (clients choose the names an
    /// upstream sees; labels must stay few).
    pub fn metric_name(&self) -> &str {
        match &self.upstream {
            Some(u) => u.cfg.admitting_pattern(&self.cfg.name),
            None => &self.cfg.name,
        }
    }

    /// Its priority among candidates (lower first).
    pub fn priority(&self) -> i32 {
        self.upstream
            .as_ref()
            .map_or(self.cfg.priority, |u| u.cfg.priority)
    }

    /// Its weight within a priority.
    pub fn weight(&self) -> u32 {
        self.upstream
            .as_ref()
            .map_or(self.cfg.weight, |u| u.cfg.weight)
    }
}

/// Everything a handler reads, built from one configuration: swapped whole
/// on reload (requests in flight keep the one they started with).
#[derive(Debug)]
pub struct AppState {
    /// The configuration.
    pub config: Config,
    /// Models by name and alias.
    pub models: HashMap<String, Arc<Model>>,
    /// Model names in configuration order.
    pub order: Vec<String>,
    /// Client keys and their scopes, swapped with the rest on reload.
    pub access: crate::access::Access,
    /// Bedrock models found by discovery (empty unless enabled).
    pub catalog: Catalog,
    /// OpenAI-compatible upstreams, in configuration order.
    pub upstreams: Arc<Vec<Arc<Upstream>>>,
    /// Candidate ordering and health.
    pub router: Arc<Router>,
    /// The admin API's key check (`None`: the admin API is off).
    pub admin: Option<Arc<KeyAuth>>,
    /// The metrics endpoint's token check (`None`: open).
    pub metrics_auth: Option<Arc<KeyAuth>>,
    /// Masks every configured secret in text from elsewhere.
    pub redactor: Arc<crate::redact::Redactor>,
}

impl AppState {
    /// Builds the registry; compiles chat templates.
    pub fn new(
        config: Config,
        secrets: Option<Arc<KeyAuth>>,
        alerts: Option<crate::alerts::Alerter>,
    ) -> Result<Self, crate::config::ConfigError> {
        let created = crate::routes::now();
        let mut models = HashMap::new();
        let mut order = Vec::new();
        for (i, m) in config.models.iter().enumerate() {
            let template = match (m.backend, m.dialect) {
                (Backend::Sagemaker, DialectKind::Tgi | DialectKind::Lmi) => Some(
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
                upstream: None,
            });
            order.push(m.name.clone());
            for n in std::iter::once(&m.name).chain(&m.aliases) {
                models.insert(n.clone(), Arc::clone(&model));
            }
        }
        // An endpoint's or Bedrock model's own id reaches its model too,
        // unless that id is taken by a configured model or alias.
        for name in &order {
            let m = Arc::clone(&models[name]);
            let id = match m.cfg.backend {
                Backend::Sagemaker => m.cfg.endpoint_name().to_owned(),
                Backend::Bedrock => m.cfg.bedrock_model_id().to_owned(),
                Backend::Openai => continue,
            };
            models.entry(id).or_insert(m);
        }
        let redactor = Arc::new(crate::redact::Redactor::new(config.secrets()));
        let mut upstreams = Vec::new();
        for (i, u) in config.upstreams.iter().enumerate() {
            upstreams.push(Arc::new(
                Upstream::new(u.clone(), Arc::clone(&redactor)).map_err(|e| {
                    crate::config::ConfigError {
                        key: format!("upstreams[{i}]"),
                        reason: e.to_string(),
                    }
                })?,
            ));
        }
        let names = order.iter().map(|n| (format!("models/{n}"), false)).chain(
            upstreams
                .iter()
                .map(|u| (u.cfg.name.clone(), u.cfg.disabled)),
        );
        let router = Arc::new(Router::new(config.routing.clone(), names).with_alerts(alerts));
        let admin = config.admin.key.as_ref().map(|k| {
            Arc::new(KeyAuth::new(
                keyauth::StaticKeys::new([k.0.clone()]),
                keyauth::KeyAuthConfig::default(),
            ))
        });
        let access = crate::access::Access::new(&config.auth, secrets);
        let metrics_auth = config.metrics_token.as_ref().map(|k| {
            Arc::new(KeyAuth::new(
                keyauth::StaticKeys::new([k.0.clone()]),
                keyauth::KeyAuthConfig::default(),
            ))
        });
        Ok(Self {
            metrics_auth,
            redactor,
            access,
            config,
            models,
            order,
            catalog: Catalog::default(),
            upstreams: Arc::new(upstreams),
            router,
            admin,
        })
    }

    /// The OpenAI-compatible upstreams that serve `name` (allow, then deny),
    /// as models.
    pub fn upstream_candidates(&self, name: &str) -> Vec<Arc<Model>> {
        self.upstreams
            .iter()
            .filter(|u| u.cfg.admits(name))
            .map(|u| {
                let mut cfg = ModelConfig::for_endpoint(name);
                cfg.backend = Backend::Openai;
                Arc::new(Model {
                    cfg,
                    template: None,
                    created: crate::routes::now(),
                    upstream: Some(Arc::clone(u)),
                })
            })
            .collect()
    }

    /// Every candidate for a model name: its configured SageMaker or Bedrock
    /// model (or a discovered one) and the upstreams that admit it; else the
    /// default model; else 404.
    pub fn candidates(&self, name: &str) -> Result<Vec<Arc<Model>>, ApiError> {
        let mut out = Vec::new();
        if let Some(m) = self.models.get(name) {
            out.push(Arc::clone(m));
        } else if self.catalog.contains(name) {
            out.push(self.resolve(name)?);
        }
        out.extend(self.upstream_candidates(name));
        if out.is_empty() {
            out.push(self.resolve(name)?);
        }
        Ok(out)
    }

    /// The model a request names (configured, else discovered on Bedrock),
    /// or the default model, or 404.
    pub fn resolve(&self, name: &str) -> Result<Arc<Model>, ApiError> {
        if let Some(m) = self.models.get(name) {
            return Ok(Arc::clone(m));
        }
        if self.catalog.contains(name) {
            return Ok(Arc::new(Model {
                cfg: ModelConfig::for_bedrock(name),
                template: None,
                created: crate::routes::now(),
                upstream: None,
            }));
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

/// A worker's view of the gateway: its own AWS clients (so its upstream
/// connections are driven by its own runtime) and the current [`AppState`],
/// shared by every worker and swapped atomically by [`Handle::reload`].
#[derive(Debug, Clone)]
pub struct Handle {
    live: Arc<std::sync::RwLock<Arc<AppState>>>,
    /// Request records (`None` when off).
    pub recorder: Option<crate::records::Recorder>,
    /// The SageMaker backend.
    pub sagemaker: SageMaker,
    /// The Bedrock backend.
    pub bedrock: Bedrock,
}

impl Handle {
    /// A handle over a first state.
    pub fn new(
        state: AppState,
        sagemaker: SageMaker,
        bedrock: Bedrock,
        recorder: Option<crate::records::Recorder>,
    ) -> Self {
        Self {
            recorder,
            live: Arc::new(std::sync::RwLock::new(Arc::new(state))),
            sagemaker,
            bedrock,
        }
    }

    /// The same state with other clients (one set per worker).
    pub fn with_clients(&self, sagemaker: SageMaker, bedrock: Bedrock) -> Self {
        Self {
            live: Arc::clone(&self.live),
            recorder: self.recorder.clone(),
            sagemaker,
            bedrock,
        }
    }

    /// The current state.
    pub fn state(&self) -> Arc<AppState> {
        match self.live.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// The backend that serves a model.
    pub fn provider(&self, m: &Model) -> &dyn Provider {
        match m.cfg.backend {
            Backend::Sagemaker => &self.sagemaker,
            Backend::Bedrock => &self.bedrock,
            Backend::Openai => &OpenAi,
        }
    }

    /// Builds a state from `config` and swaps it in. An invalid config is
    /// refused (the running one stays); the Secrets Manager key cache, the discovered models
    /// and each candidate's health carry over. Settings bound at start
    /// (listen address, workers, AWS, the Secrets Manager source and turning
    /// auth off, Bedrock settings)
    /// take a restart: a change to them is logged and otherwise ignored.
    pub fn reload(&self, config: Config) -> Result<(), ConfigError> {
        config.validate()?;
        let old = self.state();
        let o = &old.config;
        // Compared by value: a secret prints as `*****`, so text would hide
        // a change.
        let (a, b) = (&o.auth, &config.auth);
        let restart = [
            ("listen", o.listen != config.listen),
            ("workers", o.workers != config.workers),
            ("aws", o.aws != config.aws),
            (
                "auth",
                (
                    a.secret_id.as_ref(),
                    a.cache_ttl_secs,
                    a.refresh_min_interval_secs,
                    a.disabled,
                ) != (
                    b.secret_id.as_ref(),
                    b.cache_ttl_secs,
                    b.refresh_min_interval_secs,
                    b.disabled,
                ),
            ),
            ("bedrock", o.bedrock != config.bedrock),
        ];
        for (key, changed) in restart {
            if changed {
                tracing::warn!(key, "config reload: this setting changes only on restart");
            }
        }
        // Turning authentication off (or on) takes a restart too.
        let mut config = config;
        config.auth.disabled = o.auth.disabled;
        let mut next = AppState::new(config, old.access.secrets(), old.router.alerts())?;
        next.catalog = old.catalog.clone();
        next.router.adopt(&old.router);
        match self.live.write() {
            Ok(mut g) => *g = Arc::new(next),
            Err(p) => *p.into_inner() = Arc::new(next),
        }
        Ok(())
    }
}
