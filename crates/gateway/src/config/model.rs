//! The `[[models]]` section: one SageMaker endpoint or Bedrock model each.

use std::path::PathBuf;

use serde::Deserialize;
use sm_stream::{DialectKind, ReasoningMode};

use super::upstream::one;

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
    /// Bedrock: the guardrail that screens every call of this model (a
    /// request's own `guardrailConfig` applies only where none is set).
    #[serde(default)]
    pub guardrail: Option<GuardrailSettings>,
    /// Models tried in order when every candidate of this one fails for
    /// its context window or a content policy (names of other models; the
    /// client's key must be allowed them).
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Bedrock: the region to call (default: `aws.region`). Several
    /// `[[models]]` of one name, each in its own region, are that name's
    /// candidates (cross-region failover and cache-affine routing).
    #[serde(default)]
    pub region: Option<String>,
    /// Bedrock: the runtime endpoint to call (a VPC interface endpoint;
    /// default: the region's).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Bedrock: cache points the gateway places for clients that place
    /// none (`off`, the default, or `auto`; see `bedrock_converse::cache`).
    #[serde(default)]
    pub prompt_cache: PromptCache,
    /// Bedrock: the smallest prefix worth a cache point, in tokens
    /// (default: the model's documented minimum).
    #[serde(default)]
    pub prompt_cache_min_tokens: Option<u32>,
}

/// A Bedrock guardrail.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailSettings {
    /// Its id or ARN.
    pub id: String,
    /// Its version: `DRAFT` or a number.
    pub version: String,
    /// `enabled`, `enabled_full` or `disabled` (default).
    #[serde(default)]
    pub trace: Option<String>,
    /// Streams: `sync` (default) or `async`.
    #[serde(default)]
    pub stream_processing_mode: Option<String>,
    /// Models Bedrock does not serve: a stream's answer is screened in
    /// windows of this many characters (default 300).
    #[serde(default)]
    pub window_chars: Option<usize>,
}

impl GuardrailSettings {
    /// Checks the settings: an id, a version (`DRAFT` or a number), known
    /// trace and stream modes. The error says what is wrong.
    pub fn check(&self) -> Result<(), &'static str> {
        let version_ok = self.version == "DRAFT"
            || (!self.version.is_empty() && self.version.bytes().all(|b| b.is_ascii_digit()));
        if self.id.is_empty() || self.id.len() > 2048 || !version_ok {
            return Err("needs an id and a version (DRAFT or a number)");
        }
        if self
            .trace
            .as_deref()
            .is_some_and(|t| !matches!(t, "enabled" | "enabled_full" | "disabled"))
            || self
                .stream_processing_mode
                .as_deref()
                .is_some_and(|m| !matches!(m, "sync" | "async"))
        {
            return Err(
                "trace is enabled, enabled_full or disabled; stream_processing_mode is sync or async",
            );
        }
        if self
            .window_chars
            .is_some_and(|w| !(1..=100_000).contains(&w))
        {
            return Err("window_chars is from 1 to 100000");
        }
        Ok(())
    }

    /// As Converse takes it.
    pub fn to_wire(&self) -> bedrock_converse::wire::GuardrailConfig {
        bedrock_converse::wire::GuardrailConfig {
            guardrail_identifier: self.id.clone(),
            guardrail_version: self.version.clone(),
            trace: self.trace.clone(),
            stream_processing_mode: self.stream_processing_mode.clone(),
        }
    }
}

/// Whether the gateway places prompt cache points itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptCache {
    /// Only where the client asks (`cache_control`).
    #[default]
    Off,
    /// After tools and system and at the last turns, when the client asks
    /// for none and the prefix reaches the model's minimum.
    Auto,
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
            prompt_cache: PromptCache::Off,
            prompt_cache_min_tokens: None,
            region: None,
            endpoint_url: None,
            fallbacks: Vec::new(),
            guardrail: None,
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

    /// The automatic cache points of a Bedrock model, if it has them on.
    pub fn auto_cache(&self) -> Option<bedrock_converse::cache::AutoCache> {
        (self.prompt_cache == PromptCache::Auto).then(|| {
            let mut a = bedrock_converse::cache::AutoCache::for_model(self.bedrock_model_id());
            if let Some(n) = self.prompt_cache_min_tokens {
                a.min_tokens = n;
            }
            a
        })
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
