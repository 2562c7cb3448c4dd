//! Typed configuration: defaults, then the TOML file, then environment
//! variables (the seed's names work unchanged), then `validate()`.
//!
//! * this module: the configuration's types and defaults;
//! * `load`: reading the file and the environment;
//! * `validate`: what types cannot check;
//! * [`upstream`] and [`model`]: the upstream and model sections.

mod load;
pub mod model;
#[cfg(test)]
mod tests;
pub mod upstream;
mod validate;

use serde::Deserialize;

pub use load::redact_values;
pub use model::{Backend, GuardrailSettings, ModelConfig, PromptCache, Reasoning};
pub use upstream::{
    AffinityMode, RoutingConfig, Strategy, UpstreamConfig, UpstreamKind, UpstreamTimeouts, glob,
};

/// A configuration error: the exact key and the reason.
#[derive(Debug, thiserror::Error)]
#[error("config: {key}: {reason}")]
pub struct ConfigError {
    /// The key at fault (`models[0].dialect`, `API_KEY_CACHE_TTL`, …).
    pub key: String,
    /// Why.
    pub reason: String,
}

pub(crate) fn err(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        reason: reason.into(),
    }
}

/// A secret value: prints as `*****`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("*****")
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on (`PORT` sets the port on 0.0.0.0).
    pub listen: String,
    /// HTTP worker threads (default: one per core).
    pub workers: Option<usize>,
    /// Largest request body, bytes (SageMaker's own limit: 5 MiB).
    pub max_body_bytes: usize,
    /// The most choices (`n`) served by SageMaker and Bedrock models, which
    /// generate one a call: that many parallel calls (default 4; OpenAI-style
    /// upstreams take `n` themselves).
    pub max_choices: u32,
    /// Largest body passed through to an upstream (100 MiB: an Uploads API
    /// part of 64 MB with its multipart framing, above audio's 25 MB and an
    /// image edit's 50 MB; whole files above that go through the Uploads
    /// API, or raise this).
    pub max_passthrough_body_bytes: usize,
    /// Pass-through bodies up to this size are held, so the request can
    /// fail over; larger ones are streamed to one upstream as they arrive.
    pub passthrough_replay_bytes: usize,
    /// A request body must arrive within this time (408 and the connection
    /// closed otherwise), plus `body_min_bytes_per_sec` for every byte past
    /// `passthrough_replay_bytes`.
    pub body_timeout_secs: u64,
    /// The slowest upload accepted past the first `passthrough_replay_bytes`.
    pub body_min_bytes_per_sec: u64,
    /// On SIGTERM, how long in-flight requests may take to finish.
    pub shutdown_timeout_secs: u64,
    /// Upper bound of a non-streaming upstream call.
    pub request_timeout_secs: u64,
    /// Upper bound on waiting for a stream's first event.
    pub first_byte_timeout_secs: u64,
    /// A stream silent this long ends with an error event.
    pub stream_idle_timeout_secs: u64,
    /// Model used when a request names an unknown model.
    pub default_model: Option<String>,
    /// `json` (default) or `text`.
    pub log_format: LogFormat,
    /// AWS settings.
    pub aws: AwsConfig,
    /// Client authentication.
    pub auth: AuthConfig,
    /// Bedrock settings.
    pub bedrock: BedrockConfig,
    /// The models served by SageMaker or Bedrock.
    pub models: Vec<ModelConfig>,
    /// OpenAI-compatible upstreams (OpenAI, vLLM, llama.cpp, Ollama, One API,
    /// another gateway).
    pub upstreams: Vec<UpstreamConfig>,
    /// How a model's candidates are ordered and retried.
    pub routing: RoutingConfig,
    /// The admin API.
    pub admin: AdminConfig,
    /// A bearer token for `/metrics` (open when unset).
    pub metrics_token: Option<Secret>,
    /// Request records (stored keys live in the same database).
    pub records: RecordsConfig,
    /// Stored keys' per-minute limits.
    pub rate_limits: RateLimitsConfig,
    /// Alert webhooks.
    pub alerts: Vec<AlertSink>,
    /// Prices per model, for stored keys' cost quotas (first match wins).
    pub prices: Vec<Price>,
}

/// What a model's tokens cost, in US dollars per million.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    /// Prompt tokens.
    pub prompt: f64,
    /// Completion tokens.
    pub completion: f64,
    /// Prompt tokens read from a cache (default: the prompt price).
    #[serde(default)]
    pub cached_prompt: Option<f64>,
    /// Prompt tokens written to a cache (default: the prompt price; Claude
    /// on Bedrock charges 1.25× the prompt price for a 5-minute cache).
    #[serde(default)]
    pub cache_write_prompt: Option<f64>,
}

/// A price for the models a glob matches.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Model glob (`gpt-4o*`, `claude-*`, `*`).
    pub model: String,
    /// The price.
    #[serde(flatten)]
    pub per_million: PriceConfig,
}

impl Config {
    /// The settings bound at start that differ in `next` (each section
    /// says what of it is bound: the listener, the workers, the AWS
    /// clients, the Secrets Manager source and turning auth off, Bedrock's
    /// clients and discovery). A reload logs them and keeps the running
    /// values. Compared by value: a secret prints as `*****`, so text would
    /// hide a change.
    pub fn restart_only_changes(&self, next: &Config) -> Vec<&'static str> {
        [
            ("listen", self.listen != next.listen),
            ("workers", self.workers != next.workers),
            // AWS is set up at start only when something needs it.
            (
                "aws",
                self.aws != next.aws || (!self.needs_aws() && next.needs_aws()),
            ),
            (
                "auth",
                self.auth.bound_at_start() != next.auth.bound_at_start(),
            ),
            ("bedrock", self.bedrock != next.bedrock),
        ]
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
    }
}

impl AuthConfig {
    /// What of the key sources is bound at start: the Secrets Manager
    /// source and its cache, and whether authentication is on.
    fn bound_at_start(&self) -> (Option<&String>, u64, u64, bool) {
        (
            self.secret_id.as_ref(),
            self.cache_ttl_secs,
            self.refresh_min_interval_secs,
            self.disabled,
        )
    }
}

impl Config {
    /// Whether anything configured calls AWS: a SageMaker or Bedrock model,
    /// Secrets Manager keys, or Bedrock model discovery. Without, the AWS
    /// configuration is not loaded at all (its region and credential
    /// chains probe the instance metadata service and build a TLS client:
    /// a third of the start's CPU and its memory, for nothing).
    pub fn needs_aws(&self) -> bool {
        self.auth.secret_id.is_some()
            || self.bedrock.discover_models
            || self
                .models
                .iter()
                .any(|m| matches!(m.backend, Backend::Sagemaker | Backend::Bedrock))
            || self.upstreams.iter().any(|u| u.guardrail.is_some())
    }

    /// The price of `model`'s tokens, if one is configured.
    pub fn price_of(&self, model: &str) -> Option<PriceConfig> {
        self.prices
            .iter()
            .find(|p| glob(&p.model, model))
            .map(|p| p.per_million)
    }
}

/// Stored keys' per-minute limits.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsConfig {
    /// `redis://…` (`REDIS_URL`): limits shared by every replica; without
    /// it (or while it fails) each replica counts on its own.
    pub redis_url: Option<Secret>,
}

/// Request records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordsConfig {
    /// Keep records (`RECORDS_ENABLED`).
    pub enabled: bool,
    /// `sqlite://FILE?mode=rwc` (the default, an embedded file) or
    /// `postgres://…` (`RECORDS_URL`).
    pub url: Secret,
    /// Records queued for writing at most; beyond, they are dropped and
    /// counted.
    pub queue: usize,
    /// Keep request bodies and headers (secrets redacted) for these route
    /// patterns (`/v1/chat/completions`)…
    pub bodies_routes: Vec<String>,
    /// …and for these key ids (as in records and logs).
    pub bodies_key_ids: Vec<String>,
    /// Longest body kept, bytes.
    pub body_max_bytes: usize,
}

impl RecordsConfig {
    /// Whether the body policy asks for this request's body.
    pub fn wants_body(&self, route: &str, key_id: Option<&str>) -> bool {
        self.bodies_routes.iter().any(|r| r == route)
            || key_id.is_some_and(|k| self.bodies_key_ids.iter().any(|x| x == k))
    }
}

impl Default for RecordsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            url: Secret("sqlite://gateway-records.db?mode=rwc".into()),
            queue: 10_000,
            bodies_routes: Vec::new(),
            bodies_key_ids: Vec::new(),
            body_max_bytes: 64 * 1024,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
            workers: None,
            max_body_bytes: 5 * 1024 * 1024,
            max_choices: 4,
            max_passthrough_body_bytes: 100 * 1024 * 1024,
            passthrough_replay_bytes: 1024 * 1024,
            body_timeout_secs: 30,
            body_min_bytes_per_sec: 16 * 1024,
            shutdown_timeout_secs: 30,
            request_timeout_secs: 120,
            first_byte_timeout_secs: 120,
            stream_idle_timeout_secs: 120,
            default_model: None,
            log_format: LogFormat::Json,
            aws: AwsConfig::default(),
            auth: AuthConfig::default(),
            bedrock: BedrockConfig::default(),
            models: Vec::new(),
            upstreams: Vec::new(),
            routing: RoutingConfig::default(),
            admin: AdminConfig::default(),
            metrics_token: None,
            records: RecordsConfig::default(),
            rate_limits: RateLimitsConfig::default(),
            alerts: Vec::new(),
            prices: Vec::new(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object a line.
    Json,
    /// Human-readable.
    Text,
}

/// AWS settings. Credentials come from the SDK's standard chain.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// Region (`AWS_REGION`); China regions use the aws-cn partition.
    pub region: Option<String>,
    /// Endpoint override for every service (the SDK also reads
    /// `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME` and
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER`).
    pub endpoint_url: Option<String>,
    /// Attempts per AWS call, retries included (`AWS_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// TCP connect timeout.
    pub connect_timeout_secs: u64,
    /// How SageMaker is called (`AWS_SAGEMAKER_CLIENT`): `signed`, the lean
    /// transport (requests signed with `aws-sigv4`, a connection pool per
    /// worker), or `sdk`, `aws-sdk-sagemakerruntime` (its endpoint rules,
    /// FIPS and dual-stack endpoints, profile-configured endpoints). Where
    /// the lean transport cannot resolve the endpoint, the SDK serves.
    pub sagemaker_client: SageMakerClient,
}

/// The SageMaker transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SageMakerClient {
    /// Signed with `aws-sigv4`, sent with `reqwest`.
    #[default]
    Signed,
    /// `aws-sdk-sagemakerruntime`.
    Sdk,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            max_attempts: 3,
            connect_timeout_secs: 5,
            sagemaker_client: SageMakerClient::default(),
        }
    }
}

/// Client authentication.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Static keys (`API_KEY`, comma-separated).
    pub keys: Vec<Secret>,
    /// Secrets Manager secret holding the keys (`AUTH_SECRET_ID`).
    pub secret_id: Option<String>,
    /// How long fetched keys are cached (`API_KEY_CACHE_TTL`).
    pub cache_ttl_secs: u64,
    /// Least time between two fetches of the secret.
    pub refresh_min_interval_secs: u64,
    /// Serve without authentication (`AUTH_DISABLED=true`). Explicit only.
    pub disabled: bool,
    /// Keys limited to some upstreams and models (they authenticate as
    /// static keys do).
    pub scoped_keys: Vec<ScopedKey>,
}

/// A client key allowed only some upstreams and models.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopedKey {
    /// The key.
    pub key: Secret,
    /// A name for people (the console and usage reports show it in place
    /// of the key's id).
    #[serde(default)]
    pub name: Option<String>,
    /// Candidates it may use: upstream names, or `models/<name>` for
    /// SageMaker and Bedrock models (every region of one;
    /// `models/<name>@<region>` for one region); empty: all.
    #[serde(default)]
    pub upstreams: Vec<String>,
    /// Models it may ask for (`*` globs); empty: all.
    #[serde(default)]
    pub models: Vec<String>,
    /// A guardrail on every chat call this key makes, where the model has
    /// none of its own.
    #[serde(default)]
    pub guardrail: Option<std::sync::Arc<GuardrailSettings>>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            secret_id: None,
            cache_ttl_secs: 3600,
            refresh_min_interval_secs: 10,
            disabled: false,
            scoped_keys: Vec::new(),
        }
    }
}

/// The admin API (`/admin/...`); off without a key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Its own bearer key (`ADMIN_KEY`).
    pub key: Option<Secret>,
}

/// Bedrock settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BedrockConfig {
    /// List the account's models (ListFoundationModels, ListInferenceProfiles)
    /// in `/v1/models` and serve them by id (`BEDROCK_DISCOVER_MODELS`).
    pub discover_models: bool,
    /// How often the discovered list is refreshed, in the background.
    pub discovery_ttl_secs: u64,
    /// `maxTokens` when a request sets none and one is needed (reasoning).
    pub default_max_tokens: Option<u32>,
    /// Fetching `http(s)` image URLs.
    pub image_fetch: ImageFetchConfig,
}

impl Default for BedrockConfig {
    fn default() -> Self {
        Self {
            discover_models: false,
            discovery_ttl_secs: 3600,
            default_max_tokens: None,
            image_fetch: ImageFetchConfig::default(),
        }
    }
}

/// Fetching remote images for vision requests (off by default: clients send
/// data URLs).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageFetchConfig {
    /// Fetch `http(s)` image URLs (`BEDROCK_IMAGE_FETCH`).
    pub enabled: bool,
    /// Largest image, bytes (Bedrock's own limit is 3.75 MB).
    pub max_bytes: usize,
    /// Whole-fetch timeout.
    pub timeout_secs: u64,
    /// Hosts exempt from the private-address refusal (an internal image
    /// store). Everything else that resolves to a loopback, private,
    /// link-local or otherwise special address is refused.
    pub allowed_hosts: Vec<String>,
    /// Images a request may carry, data URLs included (Bedrock's own
    /// limit: 20); more is a 400.
    pub max_images: usize,
    /// Fetches of one request under way at once.
    pub per_request_concurrency: usize,
    /// Fetches under way at once across the gateway.
    pub max_concurrent: usize,
    /// Bytes fetched for one request, all images together.
    pub max_total_bytes: usize,
}

impl Default for ImageFetchConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            max_bytes: 3_750_000,
            timeout_secs: 10,
            allowed_hosts: Vec::new(),
            max_images: 20,
            per_request_concurrency: 4,
            max_concurrent: 64,
            max_total_bytes: 24 * 1024 * 1024,
        }
    }
}

/// Where alerts go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSink {
    /// `feishu` (also Lark), `matrix`, `slack` or `json`.
    pub kind: SinkKind,
    /// The webhook URL; for Matrix the homeserver's base URL.
    pub url: String,
    /// Matrix: the room id (`!abc:example.org`).
    #[serde(default)]
    pub room: Option<String>,
    /// Matrix: the access token.
    #[serde(default)]
    pub token: Option<Secret>,
    /// The same event for the same subject at most this often.
    #[serde(default = "default_interval")]
    pub min_interval_secs: u64,
}

fn default_interval() -> u64 {
    300
}

/// A sink's message format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// Feishu/Lark custom bot: `{"msg_type":"text","content":{"text":…}}`.
    Feishu,
    /// Matrix client-server API `m.room.message`.
    Matrix,
    /// Slack-compatible incoming webhook: `{"text":…}`.
    Slack,
    /// `{"event","subject","message","ts"}`.
    Json,
}
