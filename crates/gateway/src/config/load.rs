//! Reading the configuration: the TOML file, then the environment.

use std::path::Path;

use std::path::PathBuf;

use super::{Config, ConfigError, LogFormat, ModelConfig, Reasoning, Secret, err};

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
        if let Some(v) = env("AWS_SAGEMAKER_CLIENT") {
            self.aws.sagemaker_client = match v.to_ascii_lowercase().as_str() {
                "signed" => super::SageMakerClient::Signed,
                "sdk" => super::SageMakerClient::Sdk,
                _ => {
                    return Err(err(
                        "AWS_SAGEMAKER_CLIENT",
                        format!("'{v}' is not `signed` or `sdk`"),
                    ));
                }
            };
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
            // One-endpoint mode: every model name reaches it.
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
        if let Some(v) = env("SAGEMAKER_ENDPOINTS") {
            // Several endpoints, each served under its own name (the
            // CloudFormation template's parameter).
            for ep in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if !self.models.iter().any(|m| m.name == ep) {
                    self.models.push(ModelConfig::for_endpoint(ep));
                }
            }
        }
        if let Some(v) = env("SHUTDOWN_TIMEOUT_SECS") {
            self.shutdown_timeout_secs = num("SHUTDOWN_TIMEOUT_SECS", &v)?;
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
        if let Some(v) = env("REDIS_URL").filter(|v| !v.is_empty()) {
            self.rate_limits.redis_url = Some(Secret(v));
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
            .chain(self.alerts.iter().filter_map(|a| a.token.as_ref()))
            .chain(self.rate_limits.redis_url.as_ref())
            .map(|s| s.0.clone())
            .chain(
                self.upstreams
                    .iter()
                    .flat_map(|u| u.headers.values().cloned()),
            )
            .collect()
    }
}
