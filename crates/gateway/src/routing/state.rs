//! Shared state: the model registry (candidates for a name), access, the
//! breakers; `Handle`, a worker's view (its backends, the live state), and
//! the reload that swaps the state.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use keyauth::KeyAuth;

use crate::backend::bedrock::Catalog;
use crate::backend::openai::Upstream;
use crate::backend::{Backends, Model};
use crate::config::{Config, ConfigError};
use crate::error::ApiError;
use crate::routing::breaker::Router;

/// The key sources that live longer than a configuration: Secrets
/// Manager's cache and the stored keys.
#[derive(Debug, Clone, Default)]
pub struct KeySources {
    /// Keys from Secrets Manager.
    pub secrets: Option<Arc<KeyAuth>>,
    /// Keys created at run time.
    pub stored: Option<Arc<crate::keys::KeyStore>>,
}

/// Everything a handler reads, built from one configuration: swapped whole
/// on reload (requests in flight keep the one they started with).
#[derive(Debug)]
pub struct AppState {
    /// The configuration.
    pub config: Config,
    /// Models by name and alias.
    pub models: HashMap<String, Arc<Model>>,
    /// A Bedrock model's further regions, by name (its candidates after
    /// the first).
    pub regions: HashMap<String, Vec<Arc<Model>>>,
    /// Model names in configuration order.
    pub order: Vec<String>,
    /// Client keys and their scopes, swapped with the rest on reload.
    pub access: crate::routing::access::Access,
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
    pub redactor: Arc<crate::observe::redact::Redactor>,
}

impl AppState {
    /// Builds the registry; compiles chat templates.
    pub fn new(
        config: Config,
        sources: KeySources,
        alerts: Option<crate::observe::alerts::Alerter>,
    ) -> Result<Self, crate::config::ConfigError> {
        let created = crate::ids::now();
        let mut models = HashMap::new();
        let mut regions: HashMap<String, Vec<Arc<Model>>> = HashMap::new();
        let mut order = Vec::new();
        let mut keys = Vec::new();
        for (i, m) in config.models.iter().enumerate() {
            let model = Arc::new(Model::configured(m.clone(), created).map_err(|reason| {
                crate::config::ConfigError {
                    key: format!("models[{i}].chat_template"),
                    reason,
                }
            })?);
            keys.push(model.key());
            if order.contains(&m.name) {
                // One more region of a model named before (validated).
                regions.entry(m.name.clone()).or_default().push(model);
                continue;
            }
            order.push(m.name.clone());
            for n in std::iter::once(&m.name).chain(&m.aliases) {
                models.insert(n.clone(), Arc::clone(&model));
            }
        }
        // An endpoint's or Bedrock model's own id reaches its model too,
        // unless that id is taken by a configured model or alias.
        for name in &order {
            let m = Arc::clone(&models[name]);
            if let Some(id) = m.native_id() {
                models.entry(id.to_owned()).or_insert(m);
            }
        }
        let redactor = Arc::new(crate::observe::redact::Redactor::new(config.secrets()));
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
        let names = keys.into_iter().map(|k| (k, false)).chain(
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
        let access =
            crate::routing::access::Access::new(&config.auth, sources.secrets, sources.stored);
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
            regions,
            order,
            catalog: Catalog::default(),
            upstreams: Arc::new(upstreams),
            router,
            admin,
        })
    }

    /// The fallback models of a model name (none for an unknown one).
    pub fn fallbacks_of(&self, name: &str) -> Vec<String> {
        self.models
            .get(name)
            .map(|m| m.cfg.fallbacks.clone())
            .unwrap_or_default()
    }

    /// The OpenAI-compatible upstreams that serve `name` (allow, then deny),
    /// as models.
    pub fn upstream_candidates(&self, name: &str) -> Vec<Arc<Model>> {
        self.upstreams
            .iter()
            .filter(|u| u.cfg.admits(name))
            .map(|u| Arc::new(Model::upstream(name, u, crate::ids::now())))
            .collect()
    }

    /// Every candidate for a model name: its configured SageMaker or Bedrock
    /// model (or a discovered one) and the upstreams that admit it; else the
    /// default model; else 404.
    pub fn candidates(&self, name: &str) -> Result<Vec<Arc<Model>>, ApiError> {
        let mut out = Vec::new();
        if let Some(m) = self.models.get(name) {
            out.push(Arc::clone(m));
            out.extend(self.regions.get(&m.cfg.name).into_iter().flatten().cloned());
        } else if self.catalog.contains(name) {
            out.push(self.resolve(name)?);
        }
        out.extend(self.upstream_candidates(name));
        if out.is_empty() {
            out.push(self.resolve(name)?);
        }
        Ok(out)
    }

    /// The candidates of a fallback model: as [`Self::candidates`], but
    /// never the default model (a fallback names a model that exists).
    pub fn fallback_candidates(&self, name: &str) -> Result<Vec<Arc<Model>>, ApiError> {
        if self.models.contains_key(name)
            || self.catalog.contains(name)
            || self.upstreams.iter().any(|u| u.cfg.admits(name))
        {
            self.candidates(name)
        } else {
            Err(ApiError::internal("no such fallback model"))
        }
    }

    /// The model a request names (configured, else discovered on Bedrock),
    /// or the default model, or 404.
    pub fn resolve(&self, name: &str) -> Result<Arc<Model>, ApiError> {
        if let Some(m) = self.models.get(name) {
            return Ok(Arc::clone(m));
        }
        if self.catalog.contains(name) {
            return Ok(Arc::new(Model::discovered(name, crate::ids::now())));
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
    pub recorder: Option<crate::observe::records::Recorder>,
    /// The backends, with this worker's clients.
    pub backends: Backends,
}

impl Handle {
    /// A handle over a first state.
    pub fn new(
        state: AppState,
        backends: Backends,
        recorder: Option<crate::observe::records::Recorder>,
    ) -> Self {
        Self {
            recorder,
            live: Arc::new(std::sync::RwLock::new(Arc::new(state))),
            backends,
        }
    }

    /// The same state with other clients (one set per worker).
    pub fn with_backends(&self, backends: Backends) -> Self {
        Self {
            live: Arc::clone(&self.live),
            recorder: self.recorder.clone(),
            backends,
        }
    }

    /// The current state.
    pub fn state(&self) -> Arc<AppState> {
        match self.live.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
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
        for key in o.restart_only_changes(&config) {
            tracing::warn!(key, "config reload: this setting changes only on restart");
        }
        // Turning authentication off (or on) takes a restart too.
        let mut config = config;
        config.auth.disabled = o.auth.disabled;
        let sources = KeySources {
            secrets: old.access.secrets(),
            stored: old.access.stored(),
        };
        let mut next = AppState::new(config, sources, old.router.alerts())?;
        next.catalog = old.catalog.clone();
        next.router.adopt(&old.router);
        match self.live.write() {
            Ok(mut g) => *g = Arc::new(next),
            Err(p) => *p.into_inner() = Arc::new(next),
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "candidates_tests.rs"]
mod tests;
