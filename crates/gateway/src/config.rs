//! Typed configuration: defaults, then the TOML file, then environment
//! variables (the seed's names work unchanged), then `validate()`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sm_stream::{DialectKind, ReasoningMode};

/// A configuration error: the exact key and the reason.
#[derive(Debug, thiserror::Error)]
#[error("config: {key}: {reason}")]
pub struct ConfigError {
    /// The key at fault (`models[0].dialect`, `API_KEY_CACHE_TTL`, …).
    pub key: String,
    /// Why.
    pub reason: String,
}

/// A parser message with every value it quotes from the file replaced by
/// `*****`: serde says `invalid type: string "…"` and `unknown variant `…``,
/// and the value may be a key. Names of fields and variants the parser
/// expects are kept.
pub fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some((i, close)) = [("string \"", '"'), ("variant `", '`'), ("value `", '`')]
        .iter()
        .filter_map(|(p, c)| rest.find(p).map(|i| (i + p.len(), *c)))
        .min_by_key(|(i, _)| *i)
    {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        match rest.find(close) {
            Some(end) => {
                out.push_str("*****");
                rest = &rest[end..];
            }
            None => {
                out.push_str("*****");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn err(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
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
    /// Request records.
    pub records: RecordsConfig,
    /// Alert webhooks.
    pub alerts: Vec<crate::alerts::AlertSink>,
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
            alerts: Vec::new(),
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
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            max_attempts: 3,
            connect_timeout_secs: 5,
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
    /// Candidates it may use: upstream names, or `models/<name>` for
    /// SageMaker and Bedrock models; empty: all.
    #[serde(default)]
    pub upstreams: Vec<String>,
    /// Models it may ask for (`*` globs); empty: all.
    #[serde(default)]
    pub models: Vec<String>,
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

/// An OpenAI-compatible upstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Its name (in logs, the `x-oai-upstream` header and the admin API).
    pub name: String,
    /// Base URL up to and including `/v1` (e.g. `https://api.openai.com/v1`).
    pub base_url: String,
    /// Its API key (sent as `Authorization: Bearer`).
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Send the client's own `Authorization` header instead.
    #[serde(default)]
    pub forward_client_key: bool,
    /// Extra request headers.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Models it serves (`*` matches any run of characters); empty: all.
    /// Checked before `models_deny`.
    #[serde(default)]
    pub models_allow: Vec<String>,
    /// Models it must not serve.
    #[serde(default)]
    pub models_deny: Vec<String>,
    /// Model names sent upstream instead of the client's.
    #[serde(default)]
    pub rename: std::collections::BTreeMap<String, String>,
    /// Share of traffic within its priority (weighted strategy).
    #[serde(default = "one")]
    pub weight: u32,
    /// Lower goes first.
    #[serde(default)]
    pub priority: i32,
    /// Out of rotation until enabled (config or admin API).
    #[serde(default)]
    pub disabled: bool,
    /// Its timeouts.
    #[serde(default)]
    pub timeouts: UpstreamTimeouts,
    /// Idle connections kept open to it, at most (after a burst the rest
    /// close at once instead of lingering for 90 s).
    #[serde(default = "idle_connections")]
    pub max_idle_connections: usize,
}

fn one() -> u32 {
    1
}

fn idle_connections() -> usize {
    32
}

/// An upstream's timeouts, in seconds.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamTimeouts {
    /// TCP (and TLS) connect.
    pub connect_secs: u64,
    /// Response head of a non-streaming request.
    pub first_byte_secs: u64,
    /// First chunk of a streaming request.
    pub stream_first_byte_secs: u64,
    /// Silence between chunks of a stream.
    pub idle_secs: u64,
    /// The whole request.
    pub total_secs: u64,
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        Self {
            connect_secs: 5,
            first_byte_secs: 120,
            stream_first_byte_secs: 10,
            idle_secs: 60,
            total_secs: 600,
        }
    }
}

impl UpstreamConfig {
    /// Whether it serves `model`: the allow list (empty allows all), then the
    /// deny list.
    pub fn admits(&self, model: &str) -> bool {
        let allowed =
            self.models_allow.is_empty() || self.models_allow.iter().any(|p| glob(p, model));
        allowed && !self.models_deny.iter().any(|p| glob(p, model))
    }

    /// The allow-list pattern that admits `model` (`*` with an empty list):
    /// a metric label bounded by the configuration, whatever names clients
    /// send.
    pub fn admitting_pattern<'a>(&'a self, model: &str) -> &'a str {
        self.models_allow
            .iter()
            .find(|p| glob(p, model))
            .map_or("*", String::as_str)
    }

    /// The model name sent upstream.
    pub fn upstream_model<'a>(&'a self, model: &'a str) -> &'a str {
        self.rename.get(model).map_or(model, String::as_str)
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, s: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return s.is_empty();
    };
    let Some(mut rest) = s.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for m in middle {
        match rest.find(m) {
            Some(i) => rest = &rest[i + m.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Candidate ordering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// By priority, then configuration order.
    #[default]
    Priority,
    /// By priority, weighted random within one priority.
    Weighted,
    /// Power of two choices over each candidate's time-to-first-byte EWMA.
    LeastLatency,
}

/// Routing, retries and the circuit breaker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// How candidates are ordered.
    pub strategy: Strategy,
    /// Most candidates tried for one request (the retry budget).
    pub max_attempts: usize,
    /// Upstream statuses that move on to the next candidate (connect errors
    /// and timeouts before the first byte always do).
    pub retry_on_status: Vec<u16>,
    /// Consecutive failures that open a breaker.
    pub breaker_failures: u32,
    /// Error rate over the last `breaker_window` outcomes that opens it.
    pub breaker_error_rate: f64,
    /// Outcomes in the window (the rate is judged once it is full).
    pub breaker_window: usize,
    /// How long an open breaker waits before one half-open probe.
    pub breaker_cooldown_secs: u64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::Priority,
            max_attempts: 3,
            retry_on_status: vec![429, 500, 502, 503, 504],
            breaker_failures: 5,
            breaker_error_rate: 0.5,
            breaker_window: 20,
            breaker_cooldown_secs: 30,
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

/// Which backend serves a model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A SageMaker endpoint.
    #[default]
    Sagemaker,
    /// A Bedrock model, inference profile or ARN.
    Bedrock,
    /// An OpenAI-compatible upstream (made per request from `[[upstreams]]`).
    Openai,
}

/// One served model: a SageMaker endpoint or a Bedrock model, and how to
/// talk to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The model id clients send.
    pub name: String,
    /// `sagemaker` (default) or `bedrock`.
    #[serde(default)]
    pub backend: Backend,
    /// Its place among the model's candidates (lower first).
    #[serde(default)]
    pub priority: i32,
    /// Its share within its priority (weighted strategy).
    #[serde(default = "one")]
    pub weight: u32,
    /// Bedrock: the model id, inference profile id (`us.…`) or ARN (default:
    /// `name`).
    #[serde(default)]
    pub model_id: Option<String>,
    /// Bedrock: how `reasoning_effort` is passed (`auto`, `claude_thinking`,
    /// `reasoning_config`, `reasoning_effort`, `none`).
    #[serde(default)]
    pub reasoning_style: bedrock_converse::ReasoningStyle,
    /// Bedrock: where reasoning goes in responses (`field` =
    /// `reasoning_content`, `inline_think`, `drop`).
    #[serde(default)]
    pub reasoning_output: bedrock_converse::ReasoningOutput,
    /// Bedrock: the embedding family when the id does not tell (an
    /// application inference profile ARN): `titan-v1`, `titan-v2`,
    /// `cohere-v3`, `cohere-v4`, `nova`.
    #[serde(default)]
    pub embedding_family: Option<String>,
    /// The endpoint (default: `name`).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Other ids that reach this model.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The container's payload format: `openai_chat` (default), `tgi`,
    /// `lmi`.
    #[serde(default = "default_dialect")]
    pub dialect: DialectKind,
    /// Inference component of a multi-model endpoint.
    #[serde(default)]
    pub inference_component: Option<String>,
    /// Production variant to target.
    #[serde(default)]
    pub target_variant: Option<String>,
    /// `X-Amzn-SageMaker-Custom-Attributes`.
    #[serde(default)]
    pub custom_attributes: Option<String>,
    /// Request content type.
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// The `model` sent upstream in OpenAI-dialect requests (default: the
    /// client's value).
    #[serde(default)]
    pub upstream_model: Option<String>,
    /// `off` (default), `tags`, `start_in_reasoning`.
    #[serde(default)]
    pub reasoning: Reasoning,
    /// Chat template (Jinja) for `tgi`/`lmi` containers, inline.
    #[serde(default)]
    pub chat_template: Option<String>,
    /// Chat template from a file: a model's `tokenizer_config.json` or a
    /// `.jinja` file.
    #[serde(default)]
    pub chat_template_file: Option<PathBuf>,
    /// `max_new_tokens` when the request sets no limit (`tgi`/`lmi`).
    #[serde(default = "default_max_new_tokens")]
    pub default_max_tokens: u32,
    /// `owned_by` in `/v1/models` (default: `sagemaker`, or the Bedrock
    /// model's provider).
    #[serde(default)]
    pub owned_by: Option<String>,
}

fn default_dialect() -> DialectKind {
    DialectKind::OpenAiChat
}
fn default_content_type() -> String {
    "application/json".into()
}
fn default_max_new_tokens() -> u32 {
    1024
}

impl ModelConfig {
    /// A model for an endpoint, with defaults.
    pub fn for_endpoint(endpoint: &str) -> Self {
        Self {
            name: endpoint.to_owned(),
            backend: Backend::Sagemaker,
            priority: 0,
            weight: 1,
            model_id: None,
            reasoning_style: Default::default(),
            reasoning_output: Default::default(),
            embedding_family: None,
            endpoint: None,
            aliases: Vec::new(),
            dialect: default_dialect(),
            inference_component: None,
            target_variant: None,
            custom_attributes: None,
            content_type: default_content_type(),
            upstream_model: None,
            reasoning: Reasoning::Off,
            chat_template: None,
            chat_template_file: None,
            default_max_tokens: default_max_new_tokens(),
            owned_by: None,
        }
    }

    /// A Bedrock model by id, with defaults.
    pub fn for_bedrock(model_id: &str) -> Self {
        Self {
            backend: Backend::Bedrock,
            ..Self::for_endpoint(model_id)
        }
    }

    /// The Bedrock model id, profile id or ARN.
    pub fn bedrock_model_id(&self) -> &str {
        self.model_id.as_deref().unwrap_or(&self.name)
    }

    /// The embedding family of a Bedrock model, if it is an embedding model.
    pub fn embedding_family(&self) -> Option<bedrock_converse::embeddings::Family> {
        use bedrock_converse::embeddings::Family;
        if self.backend != Backend::Bedrock {
            return None;
        }
        self.embedding_family
            .as_deref()
            .and_then(Family::from_name)
            .or_else(|| Family::detect(self.bedrock_model_id()))
    }

    /// `owned_by` in `/v1/models`.
    pub fn owner(&self) -> String {
        if let Some(o) = &self.owned_by {
            return o.clone();
        }
        match self.backend {
            Backend::Sagemaker => "sagemaker".into(),
            Backend::Bedrock => bedrock_converse::ModelRef::parse(self.bedrock_model_id())
                .provider()
                .unwrap_or("bedrock")
                .to_owned(),
            Backend::Openai => "openai".into(),
        }
    }

    /// The SageMaker endpoint name.
    pub fn endpoint_name(&self) -> &str {
        self.endpoint.as_deref().unwrap_or(&self.name)
    }
}

/// Reasoning split, as configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reasoning {
    /// Leave `<think>` in the content.
    #[default]
    Off,
    /// Split `<think>…</think>` into `reasoning_content`.
    Tags,
    /// As `tags`, the output starting inside the reasoning.
    StartInReasoning,
}

impl From<Reasoning> for ReasoningMode {
    fn from(r: Reasoning) -> Self {
        match r {
            Reasoning::Off => Self::Off,
            Reasoning::Tags => Self::Tags,
            Reasoning::StartInReasoning => Self::TagsStartInReasoning,
        }
    }
}

impl Config {
    /// Defaults, the file (if any), then `env`.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut cfg = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| err(p.display().to_string(), e.to_string()))?;
                Self::from_toml(&text)?
            }
            None => Self::default(),
        };
        cfg.apply_env(env)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML; unknown keys are refused with their path.
    ///
    /// Errors never quote the file: a syntax error names its line and
    /// column, a bad value its key, and any value the parser's message
    /// would repeat is replaced by `*****` (the line may hold a key).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| {
            let at = e.span().map_or_else(String::new, |s| {
                let before = &text[..s.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(" at line {line}, column {col}")
            });
            err(
                "config file",
                format!("TOML syntax error{at}: {}", redact_values(e.message())),
            )
        })?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            err(path, redact_values(e.into_inner().message()))
        })
    }

    /// Environment variables over the file.
    pub fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(k: &str, v: &str) -> Result<T, ConfigError> {
            v.trim()
                .parse()
                .map_err(|_| err(k, format!("'{v}' is not a valid number")))
        }
        fn flag(k: &str, v: &str) -> Result<bool, ConfigError> {
            match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" | "" => Ok(false),
                _ => Err(err(k, format!("'{v}' is not true or false"))),
            }
        }
        if let Some(v) = env("PORT") {
            let port: u16 = num("PORT", &v)?;
            self.listen = format!("0.0.0.0:{port}");
        }
        if let Some(v) = env("LISTEN") {
            self.listen = v;
        }
        if let Some(v) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
            self.aws.region = Some(v);
        }
        if let Some(v) = env("AWS_MAX_ATTEMPTS") {
            self.aws.max_attempts = num("AWS_MAX_ATTEMPTS", &v)?;
        }
        if let Some(v) = env("AUTH_SECRET_ID").filter(|v| !v.is_empty()) {
            self.auth.secret_id = Some(v);
        }
        if let Some(v) = env("API_KEY_CACHE_TTL") {
            self.auth.cache_ttl_secs = num("API_KEY_CACHE_TTL", &v)?;
        }
        if let Some(v) = env("API_KEY") {
            self.auth.keys.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(|k| Secret(k.to_owned())),
            );
        }
        if let Some(v) = env("AUTH_DISABLED") {
            self.auth.disabled = flag("AUTH_DISABLED", &v)?;
        }
        if let Some(v) = env("MAX_BODY_BYTES") {
            self.max_body_bytes = num("MAX_BODY_BYTES", &v)?;
        }
        if let Some(v) = env("LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                _ => return Err(err("LOG_FORMAT", format!("'{v}' is not json or text"))),
            };
        }
        if let Some(ep) = env("SAGEMAKER_ENDPOINT_NAME").filter(|v| !v.is_empty()) {
            // One-endpoint mode (seed 000/001): every model name reaches it.
            if !self.models.iter().any(|m| m.name == ep) {
                let mut m = ModelConfig::for_endpoint(&ep);
                if let Some(d) = env("SAGEMAKER_DIALECT") {
                    m.dialect = d.parse().map_err(|e| err("SAGEMAKER_DIALECT", e))?;
                }
                if let Some(r) = env("SAGEMAKER_REASONING") {
                    m.reasoning = match r.as_str() {
                        "off" => Reasoning::Off,
                        "tags" => Reasoning::Tags,
                        "start_in_reasoning" => Reasoning::StartInReasoning,
                        _ => {
                            return Err(err(
                                "SAGEMAKER_REASONING",
                                format!("'{r}' is not off, tags or start_in_reasoning"),
                            ));
                        }
                    };
                }
                if let Some(t) = env("SAGEMAKER_CHAT_TEMPLATE_FILE") {
                    m.chat_template_file = Some(PathBuf::from(t));
                }
                self.models.push(m);
            }
            if self.default_model.is_none() {
                self.default_model = Some(ep);
            }
        }
        if let Some(v) = env("BEDROCK_MODELS") {
            for id in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if !self.models.iter().any(|m| m.name == id) {
                    self.models.push(ModelConfig::for_bedrock(id));
                }
            }
        }
        if let Some(v) = env("BEDROCK_DISCOVER_MODELS") {
            self.bedrock.discover_models = flag("BEDROCK_DISCOVER_MODELS", &v)?;
        }
        if let Some(v) = env("BEDROCK_IMAGE_FETCH") {
            self.bedrock.image_fetch.enabled = flag("BEDROCK_IMAGE_FETCH", &v)?;
        }
        if let Some(v) = env("RECORDS_URL").filter(|v| !v.is_empty()) {
            self.records.url = Secret(v);
        }
        if let Some(v) = env("RECORDS_ENABLED") {
            self.records.enabled = flag("RECORDS_ENABLED", &v)?;
        }
        if let Some(v) = env("ADMIN_KEY").filter(|v| !v.is_empty()) {
            self.admin.key = Some(Secret(v));
        }
        if let Some(v) = env("DEFAULT_MODEL").filter(|v| !v.is_empty()) {
            self.default_model = Some(v);
        }
        Ok(())
    }

    /// Every secret value in the configuration: client keys, upstream keys
    /// and extra header values, the admin and metrics tokens. For masking
    /// text from elsewhere.
    pub fn secrets(&self) -> Vec<String> {
        let a = &self.auth;
        a.keys
            .iter()
            .chain(a.scoped_keys.iter().map(|s| &s.key))
            .chain(self.upstreams.iter().filter_map(|u| u.api_key.as_ref()))
            .chain(self.admin.key.as_ref())
            .chain(self.metrics_token.as_ref())
            .map(|s| s.0.clone())
            .chain(
                self.upstreams
                    .iter()
                    .flat_map(|u| u.headers.values().cloned()),
            )
            .collect()
    }

    /// Checks what types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen.parse::<SocketAddr>().map_err(|_| {
            err(
                "listen",
                format!("'{}' is not an address like 0.0.0.0:8080", self.listen),
            )
        })?;
        if self.models.is_empty() && self.upstreams.is_empty() && !self.bedrock.discover_models {
            return Err(err(
                "models",
                "no model configured: set SAGEMAKER_ENDPOINT_NAME or BEDROCK_MODELS, or add [[models]] or [[upstreams]]",
            ));
        }
        let mut upstream_names = HashSet::new();
        for (i, u) in self.upstreams.iter().enumerate() {
            if !upstream_names.insert(u.name.as_str()) || u.name.is_empty() {
                return Err(err(
                    format!("upstreams[{i}].name"),
                    format!("'{}' is empty or used twice", u.name),
                ));
            }
            if !(u.base_url.starts_with("http://") || u.base_url.starts_with("https://")) {
                return Err(err(
                    format!("upstreams[{i}].base_url"),
                    format!("'{}' is not an http(s) URL", u.base_url),
                ));
            }
            if u.api_key.is_some() && u.forward_client_key {
                return Err(err(
                    format!("upstreams[{i}].api_key"),
                    "set api_key or forward_client_key, not both",
                ));
            }
        }
        if self.records.enabled
            && !(self.records.url.0.starts_with("sqlite:")
                || self.records.url.0.starts_with("postgres://")
                || self.records.url.0.starts_with("postgresql://"))
        {
            return Err(err("records.url", "must be a sqlite: or postgres:// URL"));
        }
        for (i, a) in self.alerts.iter().enumerate() {
            if !(a.url.starts_with("http://") || a.url.starts_with("https://")) {
                return Err(err(format!("alerts[{i}].url"), "must be an http(s) URL"));
            }
            if a.kind == crate::alerts::SinkKind::Matrix && (a.room.is_none() || a.token.is_none())
            {
                return Err(err(
                    format!("alerts[{i}]"),
                    "a matrix sink needs room and token",
                ));
            }
        }
        if self.routing.max_attempts == 0 {
            return Err(err("routing.max_attempts", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.routing.breaker_error_rate) {
            return Err(err("routing.breaker_error_rate", "must be between 0 and 1"));
        }
        let mut names = HashSet::new();
        for (i, m) in self.models.iter().enumerate() {
            if m.name.is_empty() {
                return Err(err(format!("models[{i}].name"), "must not be empty"));
            }
            for n in std::iter::once(&m.name).chain(&m.aliases) {
                if !names.insert(n.clone()) {
                    return Err(err(
                        format!("models[{i}]"),
                        format!("model name or alias '{n}' is used twice"),
                    ));
                }
            }
            if let Some(f) = &m.embedding_family
                && bedrock_converse::embeddings::Family::from_name(f).is_none()
            {
                return Err(err(
                    format!("models[{i}].embedding_family"),
                    format!("'{f}' is not titan-v1, titan-v2, cohere-v3, cohere-v4 or nova"),
                ));
            }
            if m.backend == Backend::Openai {
                return Err(err(
                    format!("models[{i}].backend"),
                    "OpenAI-compatible upstreams are configured under [[upstreams]]",
                ));
            }
            if m.backend == Backend::Sagemaker && m.dialect == DialectKind::Auto {
                return Err(err(
                    format!("models[{i}].dialect"),
                    "'auto' cannot shape requests: choose openai_chat, tgi or lmi",
                ));
            }
            if m.chat_template.is_some() && m.chat_template_file.is_some() {
                return Err(err(
                    format!("models[{i}].chat_template"),
                    "set chat_template or chat_template_file, not both",
                ));
            }
        }
        if let Some(d) = &self.default_model
            && !names.contains(d)
        {
            return Err(err(
                "default_model",
                format!("'{d}' is not a configured model"),
            ));
        }
        let f = &self.bedrock.image_fetch;
        for (key, v) in [
            ("per_request_concurrency", f.per_request_concurrency),
            ("max_concurrent", f.max_concurrent),
            ("max_total_bytes", f.max_total_bytes),
        ] {
            if v == 0 {
                return Err(err(format!("bedrock.image_fetch.{key}"), "must be above 0"));
            }
        }
        if self.bedrock.image_fetch.enabled && self.bedrock.image_fetch.max_bytes == 0 {
            return Err(err("bedrock.image_fetch.max_bytes", "must be above 0"));
        }
        if !self.auth.disabled
            && self.auth.keys.is_empty()
            && self.auth.scoped_keys.is_empty()
            && self.auth.secret_id.is_none()
        {
            return Err(err(
                "auth",
                "no API key source: set API_KEY or AUTH_SECRET_ID (auth.keys / auth.secret_id), \
                 or AUTH_DISABLED=true to serve without authentication",
            ));
        }
        if self.body_timeout_secs == 0 {
            return Err(err("body_timeout_secs", "must be above 0"));
        }
        if self.body_min_bytes_per_sec == 0 {
            return Err(err("body_min_bytes_per_sec", "must be above 0"));
        }
        if self.max_body_bytes == 0 {
            return Err(err("max_body_bytes", "must be above 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn seed_variables_work_unchanged() {
        let cfg = Config::load(
            None,
            &env_of(&[
                ("SAGEMAKER_ENDPOINT_NAME", "deepseek-r1-distill"),
                ("AUTH_SECRET_ID", "prod/api-key"),
                ("API_KEY_CACHE_TTL", "600"),
                ("AWS_REGION", "cn-north-1"),
                ("PORT", "9000"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.listen, "0.0.0.0:9000");
        assert_eq!(cfg.models[0].endpoint_name(), "deepseek-r1-distill");
        assert_eq!(cfg.default_model.as_deref(), Some("deepseek-r1-distill"));
        assert_eq!(cfg.auth.secret_id.as_deref(), Some("prod/api-key"));
        assert_eq!(cfg.auth.cache_ttl_secs, 600);
        assert_eq!(cfg.aws.region.as_deref(), Some("cn-north-1"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = Config::load(
            None,
            &env_of(&[
                ("SAGEMAKER_ENDPOINT_NAME", "x"),
                ("API_KEY", "k"),
                ("API_KEY_CACHE_TTL", "1h"),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.key, "API_KEY_CACHE_TTL");
        let e = Config::from_toml("[[models]]\nname = \"a\"\ndialectt = \"tgi\"\n").unwrap_err();
        assert!(e.key.starts_with("models[0]"), "{e}");
        assert!(e.reason.contains("dialectt"), "{e}");
        let e = Config::from_toml("[[models]]\nname = \"a\"\ndialect = \"vllm\"\n").unwrap_err();
        assert_eq!(e.key, "models[0].dialect", "{e}");
        let e = Config::load(None, &env_of(&[("SAGEMAKER_ENDPOINT_NAME", "x")])).unwrap_err();
        assert_eq!(e.key, "auth");
        let e = Config::load(None, &env_of(&[("API_KEY", "k")])).unwrap_err();
        assert_eq!(e.key, "models");
    }

    #[test]
    fn bedrock_models_from_env_and_file() {
        let cfg = Config::load(
            None,
            &env_of(&[
                (
                    "BEDROCK_MODELS",
                    "us.anthropic.claude-3-7-sonnet-20250219-v1:0, amazon.titan-embed-text-v2:0",
                ),
                ("BEDROCK_IMAGE_FETCH", "true"),
                ("API_KEY", "k"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.models.len(), 2);
        assert!(cfg.models.iter().all(|m| m.backend == Backend::Bedrock));
        assert_eq!(cfg.models[0].owner(), "anthropic");
        assert!(cfg.models[0].embedding_family().is_none());
        assert!(cfg.models[1].embedding_family().is_some());
        assert!(cfg.bedrock.image_fetch.enabled);
        // Discovery alone is a valid setup.
        Config::load(
            None,
            &env_of(&[("BEDROCK_DISCOVER_MODELS", "1"), ("API_KEY", "k")]),
        )
        .unwrap();
        let cfg = Config::from_toml(
            "[[models]]\nname = \"x\"\nbackend = \"bedrock\"\nmodel_id = \"arn:aws:bedrock:us-east-1:1:application-inference-profile/p\"\nembedding_family = \"cohere-v3\"\nreasoning_output = \"inline_think\"\n",
        )
        .unwrap();
        assert!(cfg.models[0].embedding_family().is_some());
        assert_eq!(cfg.models[0].owner(), "bedrock");
        let e = Config::from_toml(
            "[[models]]\nname = \"x\"\nbackend = \"bedrock\"\nreasoning_output = \"loud\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "models[0].reasoning_output", "{e}");
        let mut cfg = Config::from_toml(
            "[auth]\nkeys = [\"k\"]\n[[models]]\nname = \"x\"\nbackend = \"bedrock\"\nembedding_family = \"bert\"\n",
        )
        .unwrap();
        assert_eq!(
            cfg.validate().unwrap_err().key,
            "models[0].embedding_family"
        );
        cfg.models.clear();
        assert_eq!(cfg.validate().unwrap_err().key, "models");
    }

    #[test]
    fn secrets_do_not_print() {
        let mut cfg = Config::default();
        cfg.auth.keys.push(Secret("sk-canary-123".into()));
        assert!(!format!("{cfg:?}").contains("canary"));
    }

    #[test]
    fn config_errors_never_quote_the_file() {
        for (text, key) in [
            // A syntax error on a line holding a key.
            ("[auth]\nkeys = [\"sk-canary-1\" \"x\"]\n", "config file"),
            ("[auth]\nkeys = [\"sk-canary-2\n", "config file"),
            ("metrics_token = sk-canary-3\n", "config file"),
            // A key where a number, a flag or a variant belongs.
            ("max_body_bytes = \"sk-canary-4\"\n", "max_body_bytes"),
            ("[auth]\ndisabled = \"sk-canary-5\"\n", "auth.disabled"),
            ("log_format = \"sk-canary-6\"\n", "log_format"),
        ] {
            let e = Config::from_toml(text).unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("canary"), "{text:?} -> {shown}");
            assert_eq!(e.key, key, "{shown}");
        }
        let e =
            Config::from_toml("listen = \"x\"\n[auth]\nkeys = [\"sk-canary\" 1]\n").unwrap_err();
        assert!(e.reason.contains("line 3"), "{e}");
    }

    #[test]
    fn redaction_keeps_names_and_hides_values() {
        assert_eq!(
            redact_values("invalid type: string \"sk-1\", expected u64"),
            "invalid type: string \"*****\", expected u64"
        );
        assert_eq!(
            redact_values("unknown variant `sk-2`, expected one of `json`, `text`"),
            "unknown variant `*****`, expected one of `json`, `text`"
        );
        assert_eq!(
            redact_values("invalid type: string \"cut"),
            "invalid type: string \"*****"
        );
        assert_eq!(redact_values("missing field `key`"), "missing field `key`");
    }
}
