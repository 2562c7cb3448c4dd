//! What types cannot check, with the exact key at fault: each section
//! checks itself ([`Section::validate`]), and [`Config::validate`] checks
//! what spans sections (a model source exists, names are unique, the
//! default model is one of them, a key source exists).

use std::collections::HashSet;
use std::net::SocketAddr;

use sm_stream::DialectKind;

use super::{
    AlertSink, AuthConfig, Backend, BedrockConfig, Config, ConfigError, ModelConfig, RecordsConfig,
    RoutingConfig, SinkKind, UpstreamConfig, err,
};

/// A section of the configuration that checks itself. `at` is its key
/// (`upstreams[2]`, `routing`), for the error.
trait Section {
    fn validate(&self, at: &str) -> Result<(), ConfigError>;
}

impl Config {
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
            if !upstream_names.insert(u.name.as_str()) {
                return Err(err(
                    format!("upstreams[{i}].name"),
                    format!("'{}' is empty or used twice", u.name),
                ));
            }
            u.validate(&format!("upstreams[{i}]"))?;
        }
        self.records.validate("records")?;
        for (i, a) in self.alerts.iter().enumerate() {
            a.validate(&format!("alerts[{i}]"))?;
        }
        self.routing.validate("routing")?;
        let mut names = HashSet::new();
        for (i, m) in self.models.iter().enumerate() {
            if m.name.is_empty() {
                return Err(err(format!("models[{i}].name"), "must not be empty"));
            }
            for n in std::iter::once(&m.name).chain(&m.aliases) {
                if !names.insert(n.clone()) && !self.is_region_replica(i) {
                    return Err(err(
                        format!("models[{i}]"),
                        format!("model name or alias '{n}' is used twice"),
                    ));
                }
            }
            m.validate(&format!("models[{i}]"))?;
        }
        for (i, m) in self.models.iter().enumerate() {
            if m.fallbacks.len() > 8 {
                return Err(err(format!("models[{i}].fallbacks"), "at most 8 fallbacks"));
            }
            for f in &m.fallbacks {
                if f == &m.name || f.is_empty() {
                    return Err(err(
                        format!("models[{i}].fallbacks"),
                        format!("'{f}' cannot be a fallback of '{}'", m.name),
                    ));
                }
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
        self.bedrock.validate("bedrock")?;
        self.auth.validate("auth")?;
        self.limits()
    }

    /// Whether `models[i]` is one more region of a Bedrock model named
    /// before it: every entry of that name is Bedrock, each in a region of
    /// its own (the entries are the name's candidates).
    fn is_region_replica(&self, i: usize) -> bool {
        let m = &self.models[i];
        let earlier: Vec<&ModelConfig> = self.models[..i]
            .iter()
            .filter(|o| o.name == m.name)
            .collect();
        let bedrock_in = |o: &ModelConfig| o.backend == Backend::Bedrock && o.region.is_some();
        m.aliases.is_empty()
            && bedrock_in(m)
            && !earlier.is_empty()
            && earlier
                .iter()
                .all(|o| bedrock_in(o) && o.region != m.region)
    }

    /// The request limits.
    fn limits(&self) -> Result<(), ConfigError> {
        for (key, v) in [
            ("body_timeout_secs", self.body_timeout_secs),
            ("body_min_bytes_per_sec", self.body_min_bytes_per_sec),
            ("max_body_bytes", self.max_body_bytes as u64),
        ] {
            if v == 0 {
                return Err(err(key, "must be above 0"));
            }
        }
        if !(1..=128).contains(&self.max_choices) {
            return Err(err("max_choices", "must be between 1 and 128"));
        }
        Ok(())
    }
}

impl Section for UpstreamConfig {
    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        if let Some(g) = &self.guardrail {
            check_guardrail(&format!("{at}.guardrail"), g)?;
        }
        if self.name.is_empty() {
            return Err(err(
                format!("{at}.name"),
                format!("'{}' is empty or used twice", self.name),
            ));
        }
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err(err(
                format!("{at}.base_url"),
                format!("'{}' is not an http(s) URL", self.base_url),
            ));
        }
        if self.api_key.is_some() && self.forward_client_key {
            return Err(err(
                format!("{at}.api_key"),
                "set api_key or forward_client_key, not both",
            ));
        }
        Ok(())
    }
}

impl Section for RecordsConfig {
    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        if self.enabled
            && !(self.url.0.starts_with("sqlite:")
                || self.url.0.starts_with("postgres://")
                || self.url.0.starts_with("postgresql://"))
        {
            return Err(err(
                format!("{at}.url"),
                "must be a sqlite: or postgres:// URL",
            ));
        }
        Ok(())
    }
}

impl Section for AlertSink {
    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(err(format!("{at}.url"), "must be an http(s) URL"));
        }
        if self.kind == SinkKind::Matrix && (self.room.is_none() || self.token.is_none()) {
            return Err(err(at, "a matrix sink needs room and token"));
        }
        Ok(())
    }
}

impl Section for RoutingConfig {
    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(err(format!("{at}.max_attempts"), "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.breaker_error_rate) {
            return Err(err(
                format!("{at}.breaker_error_rate"),
                "must be between 0 and 1",
            ));
        }
        Ok(())
    }
}

/// A guardrail's settings: an id, a version (`DRAFT` or a number), known
/// trace and stream modes.
fn check_guardrail(at: &str, g: &super::GuardrailSettings) -> Result<(), ConfigError> {
    g.check().map_err(|e| err(at, e))
}

impl Section for ModelConfig {
    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            return Err(err(format!("{at}.name"), "must not be empty"));
        }
        if let Some(f) = &self.embedding_family
            && bedrock_converse::embeddings::Family::from_name(f).is_none()
        {
            return Err(err(
                format!("{at}.embedding_family"),
                format!("'{f}' is not titan-v1, titan-v2, cohere-v3, cohere-v4 or nova"),
            ));
        }
        match self.backend {
            Backend::Openai => {
                return Err(err(
                    format!("{at}.backend"),
                    "OpenAI-compatible upstreams are configured under [[upstreams]]",
                ));
            }
            Backend::Sagemaker => self.validate_sagemaker(at)?,
            Backend::Bedrock => {}
        }
        if let Some(g) = &self.guardrail {
            check_guardrail(&format!("{at}.guardrail"), g)?;
        }
        if let Some(r) = &self.region
            && (r.is_empty() || !r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(err(
                format!("{at}.region"),
                format!("'{r}' is not a region name"),
            ));
        }
        if let Some(u) = &self.endpoint_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(err(
                format!("{at}.endpoint_url"),
                format!("'{u}' is not an http(s) URL"),
            ));
        }
        if (self.region.is_some() || self.endpoint_url.is_some())
            && self.backend != Backend::Bedrock
        {
            return Err(err(
                format!("{at}.region"),
                "region and endpoint_url are Bedrock settings (a SageMaker endpoint's region is aws.region)",
            ));
        }
        if self.chat_template.is_some() && self.chat_template_file.is_some() {
            return Err(err(
                format!("{at}.chat_template"),
                "set chat_template or chat_template_file, not both",
            ));
        }
        Ok(())
    }
}

impl ModelConfig {
    /// A SageMaker model's own rules.
    fn validate_sagemaker(&self, at: &str) -> Result<(), ConfigError> {
        if self.dialect == DialectKind::Auto {
            return Err(err(
                format!("{at}.dialect"),
                "'auto' cannot shape requests: choose openai_chat, tgi or lmi",
            ));
        }
        // These build the request's path and headers: SageMaker's own name
        // pattern, so nothing can add a segment.
        let fields = [
            ("endpoint", Some(self.endpoint_name())),
            ("inference_component", self.inference_component.as_deref()),
            ("target_variant", self.target_variant.as_deref()),
        ];
        for (key, v) in fields {
            if let Some(v) = v.filter(|v| !sagemaker_name(v)) {
                return Err(err(
                    format!("{at}.{key}"),
                    format!(
                        "'{v}' is not a SageMaker name (letters, digits and inner hyphens, at most 63)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Section for BedrockConfig {
    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let f = &self.image_fetch;
        for (key, v) in [
            ("per_request_concurrency", f.per_request_concurrency),
            ("max_concurrent", f.max_concurrent),
            ("max_total_bytes", f.max_total_bytes),
        ] {
            if v == 0 {
                return Err(err(format!("{at}.image_fetch.{key}"), "must be above 0"));
            }
        }
        if f.enabled && f.max_bytes == 0 {
            return Err(err(
                format!("{at}.image_fetch.max_bytes"),
                "must be above 0",
            ));
        }
        Ok(())
    }
}

impl Section for AuthConfig {
    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        for (i, k) in self.scoped_keys.iter().enumerate() {
            if let Some(g) = &k.guardrail {
                check_guardrail(&format!("{at}.scoped_keys[{i}].guardrail"), g)?;
            }
        }
        if !self.disabled
            && self.keys.is_empty()
            && self.scoped_keys.is_empty()
            && self.secret_id.is_none()
        {
            return Err(err(
                at,
                "no API key source: set API_KEY or AUTH_SECRET_ID (auth.keys / auth.secret_id), \
                 or AUTH_DISABLED=true to serve without authentication",
            ));
        }
        Ok(())
    }
}

/// SageMaker's pattern for endpoint, variant and inference component names:
/// `^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`.
fn sagemaker_name(v: &str) -> bool {
    let b = v.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}
