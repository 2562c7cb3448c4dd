//! What types cannot check, with the exact key at fault.

use std::collections::HashSet;
use std::net::SocketAddr;

use sm_stream::DialectKind;

use super::{Backend, Config, ConfigError, err};

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
            if a.kind == super::SinkKind::Matrix && (a.room.is_none() || a.token.is_none()) {
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
            if m.backend == Backend::Sagemaker {
                // These build the request's path and headers: SageMaker's
                // own name pattern, so nothing can add a segment.
                let fields = [
                    ("endpoint", Some(m.endpoint_name())),
                    ("inference_component", m.inference_component.as_deref()),
                    ("target_variant", m.target_variant.as_deref()),
                ];
                for (key, v) in fields {
                    if let Some(v) = v.filter(|v| !sagemaker_name(v)) {
                        return Err(err(
                            format!("models[{i}].{key}"),
                            format!(
                                "'{v}' is not a SageMaker name (letters, digits and inner hyphens, at most 63)"
                            ),
                        ));
                    }
                }
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
        if !(1..=128).contains(&self.max_choices) {
            return Err(err("max_choices", "must be between 1 and 128"));
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
