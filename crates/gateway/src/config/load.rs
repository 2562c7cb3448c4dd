//! Reading the configuration: the TOML file, then the environment.

use std::ops::Range;
use std::path::Path;
use std::path::PathBuf;

use toml::de::{DeTable, DeValue};

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

/// The path (`models[0].dialect`) of the deepest key or value of a TOML
/// text whose span holds `at`, the span a deserializer error names: found
/// in the text's parse tree once a file has failed, so that a file that
/// loads pays nothing for it. `None` at the top.
fn path_at(text: &str, at: &Range<usize>) -> Option<String> {
    let doc = DeTable::parse(text).ok()?;
    table(doc.get_ref(), "", at)
}

/// Whether span `s` holds span `at`.
fn holds(s: &Range<usize>, at: &Range<usize>) -> bool {
    s.start <= at.start && at.end <= s.end
}

/// [`path_at`] within a table whose path is `path`.
fn table(t: &DeTable<'_>, path: &str, at: &Range<usize>) -> Option<String> {
    t.iter().find_map(|(k, v)| {
        let here = if path.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{path}.{}", k.get_ref())
        };
        value(v.get_ref(), &here, at)
            .or_else(|| (holds(&k.span(), at) || holds(&v.span(), at)).then_some(here))
    })
}

/// [`path_at`] within a value whose path is `path` (only tables and arrays
/// hold deeper paths).
fn value(v: &DeValue<'_>, path: &str, at: &Range<usize>) -> Option<String> {
    match v {
        DeValue::Table(t) => table(t, path, at),
        DeValue::Array(a) => a.iter().enumerate().find_map(|(i, v)| {
            let here = format!("{path}[{i}]");
            value(v.get_ref(), &here, at).or_else(|| holds(&v.span(), at).then_some(here))
        }),
        _ => None,
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
        serde::Deserialize::deserialize(de).map_err(|e: toml::de::Error| {
            let path = e.span().and_then(|at| path_at(text, &at));
            err(
                path.unwrap_or_else(|| ".".to_owned()),
                redact_values(e.message()),
            )
        })
    }

    /// Environment variables over the file, in the order of the `ENV` table.
    pub fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for (name, set) in ENV {
            if let Some(v) = env(name) {
                set(self, &v, env)?;
            }
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

/// Sets what one environment variable says (the variable's value, and the
/// environment for the variables it reads with it).
type Setter = fn(&mut Config, &str, &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError>;

/// Every environment variable the gateway reads, in the order they apply
/// (a later one wins: `LISTEN` over `PORT`, `AWS_REGION` over
/// `AWS_DEFAULT_REGION`, `DEFAULT_MODEL` over the one-endpoint mode's).
const ENV: &[(&str, Setter)] = &[
    ("PORT", |c, v, _| {
        c.listen = format!("0.0.0.0:{}", num::<u16>("PORT", v)?);
        Ok(())
    }),
    ("LISTEN", |c, v, _| {
        c.listen = v.to_owned();
        Ok(())
    }),
    ("AWS_DEFAULT_REGION", |c, v, _| {
        c.aws.region = Some(v.to_owned());
        Ok(())
    }),
    ("AWS_REGION", |c, v, _| {
        c.aws.region = Some(v.to_owned());
        Ok(())
    }),
    ("AWS_MAX_ATTEMPTS", |c, v, _| {
        c.aws.max_attempts = num("AWS_MAX_ATTEMPTS", v)?;
        Ok(())
    }),
    ("AWS_SAGEMAKER_CLIENT", |c, v, _| {
        c.aws.sagemaker_client = match v.to_ascii_lowercase().as_str() {
            "signed" => super::SageMakerClient::Signed,
            "sdk" => super::SageMakerClient::Sdk,
            _ => {
                return Err(err(
                    "AWS_SAGEMAKER_CLIENT",
                    format!("'{v}' is not `signed` or `sdk`"),
                ));
            }
        };
        Ok(())
    }),
    ("AUTH_SECRET_ID", |c, v, _| {
        if !v.is_empty() {
            c.auth.secret_id = Some(v.to_owned());
        }
        Ok(())
    }),
    ("API_KEY_CACHE_TTL", |c, v, _| {
        c.auth.cache_ttl_secs = num("API_KEY_CACHE_TTL", v)?;
        Ok(())
    }),
    ("API_KEY", |c, v, _| {
        c.auth.keys.extend(
            v.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| Secret(k.to_owned())),
        );
        Ok(())
    }),
    ("AUTH_DISABLED", |c, v, _| {
        c.auth.disabled = flag("AUTH_DISABLED", v)?;
        Ok(())
    }),
    ("MAX_BODY_BYTES", |c, v, _| {
        c.max_body_bytes = num("MAX_BODY_BYTES", v)?;
        Ok(())
    }),
    ("LOG_FORMAT", |c, v, _| {
        c.log_format = match v {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            _ => return Err(err("LOG_FORMAT", format!("'{v}' is not json or text"))),
        };
        Ok(())
    }),
    ("SAGEMAKER_ENDPOINT_NAME", one_endpoint),
    ("SAGEMAKER_ENDPOINTS", |c, v, _| {
        // Several endpoints, each served under its own name (the
        // CloudFormation template's parameter).
        for ep in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !c.models.iter().any(|m| m.name == ep) {
                c.models.push(ModelConfig::for_endpoint(ep));
            }
        }
        Ok(())
    }),
    ("SHUTDOWN_TIMEOUT_SECS", |c, v, _| {
        c.shutdown_timeout_secs = num("SHUTDOWN_TIMEOUT_SECS", v)?;
        Ok(())
    }),
    ("BEDROCK_MODELS", |c, v, _| {
        for id in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !c.models.iter().any(|m| m.name == id) {
                c.models.push(ModelConfig::for_bedrock(id));
            }
        }
        Ok(())
    }),
    ("BEDROCK_DISCOVER_MODELS", |c, v, _| {
        c.bedrock.discover_models = flag("BEDROCK_DISCOVER_MODELS", v)?;
        Ok(())
    }),
    ("BEDROCK_IMAGE_FETCH", |c, v, _| {
        c.bedrock.image_fetch.enabled = flag("BEDROCK_IMAGE_FETCH", v)?;
        Ok(())
    }),
    ("RECORDS_URL", |c, v, _| {
        if !v.is_empty() {
            c.records.url = Secret(v.to_owned());
        }
        Ok(())
    }),
    ("REDIS_URL", |c, v, _| {
        if !v.is_empty() {
            c.rate_limits.redis_url = Some(Secret(v.to_owned()));
        }
        Ok(())
    }),
    ("RECORDS_ENABLED", |c, v, _| {
        c.records.enabled = flag("RECORDS_ENABLED", v)?;
        Ok(())
    }),
    ("ADMIN_KEY", |c, v, _| {
        if !v.is_empty() {
            c.admin.key = Some(Secret(v.to_owned()));
        }
        Ok(())
    }),
    ("DEFAULT_MODEL", |c, v, _| {
        if !v.is_empty() {
            c.default_model = Some(v.to_owned());
        }
        Ok(())
    }),
];

/// One-endpoint mode: every model name reaches it (its dialect, reasoning
/// and chat template from `SAGEMAKER_DIALECT`, `SAGEMAKER_REASONING`,
/// `SAGEMAKER_CHAT_TEMPLATE_FILE`).
fn one_endpoint(
    c: &mut Config,
    ep: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    if ep.is_empty() {
        return Ok(());
    }
    if !c.models.iter().any(|m| m.name == ep) {
        let mut m = ModelConfig::for_endpoint(ep);
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
        c.models.push(m);
    }
    if c.default_model.is_none() {
        c.default_model = Some(ep.to_owned());
    }
    Ok(())
}

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
