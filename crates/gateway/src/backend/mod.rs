//! The backends: SageMaker endpoints, Bedrock models and OpenAI-style
//! upstreams behind one [`Provider`] interface. Only this module knows
//! which backend serves a model: [`Model::target`] says, and [`Backends`]
//! dispatches on it. Adding a backend is a folder, a [`Target`] variant and
//! a config variant.

pub(crate) mod anthropic;
pub(crate) mod aws;
pub(crate) mod bedrock;
pub(crate) mod call;
pub mod client;
pub(crate) mod fanout;
pub(crate) mod guard;
pub(crate) mod openai;
pub(crate) mod provider;
pub(crate) mod pump;
pub(crate) mod relay;
pub mod sagemaker;
pub(crate) mod token_ids;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use openai_types::chat::ChatCompletion;
use openai_types::completions::{Completion, CompletionRequest};
use openai_types::embeddings::{EmbeddingRequest, EmbeddingResponse};

pub use provider::{Caller, ChatCall, CompletionCall, Deadlines, ItemStream, Provider, chat_only};

use crate::backend::anthropic::Anthropic;
use crate::backend::bedrock::Bedrock;
use crate::backend::openai::{OpenAi, Upstream};
use crate::backend::sagemaker::{Endpoint, SageMaker};
use crate::config::{Backend, ModelConfig, UpstreamKind};
use crate::error::ApiError;

/// What serves a model.
#[derive(Debug)]
pub enum Target {
    /// A SageMaker endpoint (with its chat template, for `tgi`/`lmi`).
    SageMaker(Box<Endpoint>),
    /// A Bedrock model, inference profile or ARN.
    Bedrock,
    /// An OpenAI-compatible upstream.
    Upstream(Arc<Upstream>),
}

/// One served model.
#[derive(Debug)]
pub struct Model {
    /// Its configuration (for an upstream: the name the client asked for).
    pub cfg: ModelConfig,
    /// `created` in `/v1/models`: when the gateway loaded it.
    pub created: u64,
    /// What serves it.
    pub target: Target,
}

impl Model {
    /// A configured SageMaker or Bedrock model; compiles its chat template
    /// (the error names what is wrong with it).
    pub fn configured(cfg: ModelConfig, created: u64) -> Result<Self, String> {
        let target = match cfg.backend {
            Backend::Sagemaker => Target::SageMaker(Box::new(Endpoint::new(&cfg)?)),
            Backend::Bedrock => Target::Bedrock,
            Backend::Openai => {
                return Err("an OpenAI-kind model is served by [[upstreams]]".into());
            }
        };
        Ok(Self {
            cfg,
            created,
            target,
        })
    }

    /// A model name as an upstream serves it.
    pub fn upstream(name: &str, up: &Arc<Upstream>, created: u64) -> Self {
        let mut cfg = ModelConfig::for_endpoint(name);
        cfg.backend = Backend::Openai;
        Self {
            cfg,
            created,
            target: Target::Upstream(Arc::clone(up)),
        }
    }

    /// A discovered Bedrock model, served by its id.
    pub fn discovered(id: &str, created: u64) -> Self {
        Self {
            cfg: ModelConfig::for_bedrock(id),
            created,
            target: Target::Bedrock,
        }
    }

    /// The names its own backend knows it by (an endpoint's name, a Bedrock
    /// model id), besides its configured name.
    pub fn native_id(&self) -> Option<&str> {
        match &self.target {
            Target::SageMaker(_) => Some(self.cfg.endpoint_name()),
            Target::Bedrock => Some(self.cfg.bedrock_model_id()),
            Target::Upstream(_) => None,
        }
    }

    /// The upstream serving it, if it is an upstream's.
    pub fn served_by(&self) -> Option<&Arc<Upstream>> {
        match &self.target {
            Target::Upstream(u) => Some(u),
            _ => None,
        }
    }

    /// Its name in the router: the upstream's name, `models/<name>`, or
    /// `models/<name>@<region>` for a Bedrock model in a region of its own.
    pub fn key(&self) -> String {
        match (self.served_by(), &self.cfg.region) {
            (Some(u), _) => u.cfg.name.clone(),
            (None, Some(r)) if self.cfg.backend == crate::config::Backend::Bedrock => {
                format!("models/{}@{r}", self.cfg.name)
            }
            (None, _) => format!("models/{}", self.cfg.name),
        }
    }

    /// Whether a scope's candidate name means it: its key, or
    /// `models/<name>` for each region of a Bedrock model.
    pub fn named(&self, scope: &str) -> bool {
        let key = self.key();
        scope == key
            || (self.served_by().is_none()
                && scope.strip_prefix("models/") == Some(self.cfg.name.as_str()))
    }

    /// The guardrail applied through `ApplyGuardrail` to its calls: a
    /// SageMaker model's or an upstream's (a Bedrock model's goes in its
    /// Converse request).
    /// `key`: the client key's guardrail, applied where the model has
    /// none.
    pub fn applied_guardrail(
        &self,
        key: Option<&std::sync::Arc<crate::config::GuardrailSettings>>,
    ) -> Option<std::sync::Arc<crate::config::GuardrailSettings>> {
        let own = match &self.target {
            Target::SageMaker(_) => self.cfg.guardrail.as_ref(),
            Target::Upstream(u) => u.cfg.guardrail.as_ref(),
            Target::Bedrock => return None,
        };
        own.map(|g| std::sync::Arc::new(g.clone()))
            .or_else(|| key.cloned())
    }

    /// What the logs call its upstream: the endpoint, the Bedrock model id
    /// or the upstream's name.
    pub fn upstream_label(&self) -> String {
        match &self.target {
            Target::SageMaker(_) => self.cfg.endpoint_name().to_owned(),
            Target::Bedrock => self.cfg.bedrock_model_id().to_owned(),
            Target::Upstream(u) => u.cfg.name.clone(),
        }
    }

    /// Its backend, for logs.
    pub fn backend(&self) -> &'static str {
        match &self.target {
            Target::SageMaker(_) => "sagemaker",
            Target::Bedrock => "bedrock",
            Target::Upstream(_) => "openai",
        }
    }

    /// Its backend as people write it, for messages.
    pub fn backend_title(&self) -> &'static str {
        match &self.target {
            Target::SageMaker(_) => "SageMaker",
            Target::Bedrock => "Bedrock",
            Target::Upstream(_) => "OpenAI-style upstream",
        }
    }

    /// Its name as a metric label: the configured name, or for an upstream
    /// the allow-list pattern that admitted it (clients choose the names an
    /// upstream sees; labels must stay few).
    pub fn metric_name(&self) -> &str {
        match self.served_by() {
            Some(u) => u.cfg.admitting_pattern(&self.cfg.name),
            None => &self.cfg.name,
        }
    }

    /// Its priority among candidates (lower first).
    pub fn priority(&self) -> i32 {
        self.served_by()
            .map_or(self.cfg.priority, |u| u.cfg.priority)
    }

    /// Its weight within a priority.
    pub fn weight(&self) -> u32 {
        self.served_by().map_or(self.cfg.weight, |u| u.cfg.weight)
    }

    /// How long a stream from it may stay silent, and take in all, given
    /// the gateway's idle limit: an upstream's own limits where it has
    /// them (the shorter idle limit wins).
    pub fn stream_limits(&self, idle: Duration) -> StreamLimits {
        match self.served_by() {
            Some(u) => StreamLimits {
                idle: idle.min(Duration::from_secs(u.cfg.timeouts.idle_secs)),
                total: Some(Duration::from_secs(u.cfg.timeouts.total_secs)),
            },
            None => StreamLimits { idle, total: None },
        }
    }

    /// How long a passed-through response may take to send its head.
    pub fn head_first_byte(&self, default: Duration) -> Duration {
        self.served_by().map_or(default, |u| {
            Duration::from_secs(u.cfg.timeouts.first_byte_secs)
        })
    }

    /// How long a stream may take to send its first chunk.
    pub fn stream_first_byte(&self, default: Duration) -> Duration {
        self.served_by().map_or(default, |u| {
            Duration::from_secs(u.cfg.timeouts.stream_first_byte_secs)
        })
    }
}

/// How long a stream may stay silent, and last in all (from its first
/// byte's request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// The longest gap between two events.
    pub idle: Duration,
    /// The longest a whole stream may take, its wait for the first batch
    /// included.
    pub total: Option<Duration>,
}

/// Every backend, as one worker holds them (its own AWS clients).
#[derive(Debug, Clone)]
pub struct Backends {
    /// The SageMaker runtime.
    pub sagemaker: SageMaker,
    /// The Bedrock runtime.
    pub bedrock: Bedrock,
}

impl Backends {
    /// Every backend's client, from the AWS configuration and the
    /// gateway's (`workers` sizes the SageMaker connection pools).
    pub fn from_config(
        sdk: &aws_config::SdkConfig,
        config: &crate::config::Config,
        workers: usize,
    ) -> anyhow::Result<Self> {
        let lean = sagemaker::signed::Shared::for_config(sdk, &config.aws);
        Ok(Self {
            sagemaker: SageMaker::new(sdk, lean, workers),
            bedrock: Bedrock::new(
                aws::OnDemand::new(sdk, aws_sdk_bedrockruntime::Client::new),
                &config.bedrock,
            )?,
        })
    }

    /// The same backends with a worker's own clients, over an AWS HTTP
    /// client of its own ([`aws::with_own_client`]): its upstream
    /// connections are then driven by its own runtime.
    pub fn for_worker(&self, sdk: &aws_config::SdkConfig) -> Self {
        let sdk = &aws::with_own_client(sdk);
        Self {
            sagemaker: self.sagemaker.for_worker(sdk),
            bedrock: self
                .bedrock
                .with_client(aws::OnDemand::new(sdk, aws_sdk_bedrockruntime::Client::new)),
        }
    }
}

/// Whether `call` asks `m` for more choices than one call gives: upstreams
/// take `n` themselves.
fn fans_out(m: &Model, call: &ChatCall) -> bool {
    call.req.n.is_some_and(|n| n > 1) && !matches!(m.target, Target::Upstream(_))
}

/// Calls `$method` on the backend that serves `$m`.
macro_rules! dispatch {
    ($self:ident, $m:expr, $method:ident ( $($arg:expr),* )) => {
        match &$m.target {
            Target::SageMaker(e) => $self.sagemaker.$method(&$m.cfg, e, $($arg),*),
            Target::Bedrock => $self.bedrock.$method(&$m.cfg, &(), $($arg),*),
            Target::Upstream(u) if u.cfg.kind == UpstreamKind::Anthropic => {
                Anthropic.$method(&$m.cfg, u, $($arg),*)
            }
            Target::Upstream(u) => OpenAi.$method(&$m.cfg, u, $($arg),*),
        }
    };
}

impl Backends {
    /// A whole chat completion (`n > 1` fanned out where the backend
    /// generates one choice a call).
    pub fn chat<'a>(
        &'a self,
        m: &'a Model,
        call: ChatCall,
    ) -> BoxFuture<'a, Result<ChatCompletion, ApiError>> {
        if !fans_out(m, &call) {
            return self.chat_one(m, call);
        }
        Box::pin(async move {
            let n = fanout::choices(m, &call, call.max_choices)?;
            fanout::chat(self, m, call, n).await
        })
    }

    /// A streamed chat completion (`n > 1` as for [`Backends::chat`]).
    pub fn chat_stream<'a>(
        &'a self,
        m: &'a Model,
        call: ChatCall,
    ) -> BoxFuture<'a, Result<ItemStream, ApiError>> {
        if !fans_out(m, &call) {
            return self.chat_stream_one(m, call);
        }
        Box::pin(async move {
            let n = fanout::choices(m, &call, call.max_choices)?;
            fanout::chat_stream(self, m, call, n).await
        })
    }

    /// One call's whole chat completion (screened by the model's
    /// guardrail through `ApplyGuardrail` where Bedrock does not serve it).
    fn chat_one<'a>(
        &'a self,
        m: &'a Model,
        call: ChatCall,
    ) -> BoxFuture<'a, Result<ChatCompletion, ApiError>> {
        if let Some(g) = m.applied_guardrail(call.key_guardrail.as_ref()) {
            return Box::pin(async move {
                let g = &*g;
                if let Some(msg) = self
                    .bedrock
                    .apply_guardrail(g, false, guard::prompt_text(&call.req))
                    .await?
                {
                    guard::intervened(&call.req.model);
                    return Ok(guard::refusal(
                        &call.id,
                        &call.req.model,
                        call.created,
                        &msg,
                    ));
                }
                let out = dispatch!(self, m, chat(call)).await?;
                guard::screen_answer(&self.bedrock, g, out).await
            });
        }
        dispatch!(self, m, chat(call))
    }

    /// One call's streamed chat completion.
    fn chat_stream_one<'a>(
        &'a self,
        m: &'a Model,
        call: ChatCall,
    ) -> BoxFuture<'a, Result<ItemStream, ApiError>> {
        if let Some(g) = m.applied_guardrail(call.key_guardrail.as_ref()) {
            return Box::pin(async move {
                let g = &*g;
                let model = call.req.model.clone();
                if let Some(msg) = self
                    .bedrock
                    .apply_guardrail(g, false, guard::prompt_text(&call.req))
                    .await?
                {
                    guard::intervened(&model);
                    return Ok(guard::refusal_stream(msg));
                }
                let inner = dispatch!(self, m, chat_stream(call)).await?;
                Ok(guard::screen_stream(
                    self.bedrock.clone(),
                    g.clone(),
                    model,
                    inner,
                ))
            });
        }
        dispatch!(self, m, chat_stream(call))
    }

    /// Whether `m` serves this legacy completion request; the refusal says
    /// why not.
    pub fn takes_completion(&self, m: &Model, req: &CompletionRequest) -> Result<(), ApiError> {
        match &m.target {
            Target::SageMaker(_) => self.sagemaker.takes_completion(req),
            Target::Bedrock => self.bedrock.takes_completion(req),
            Target::Upstream(u) if u.cfg.kind == UpstreamKind::Anthropic => {
                Anthropic.takes_completion(req)
            }
            Target::Upstream(_) => OpenAi.takes_completion(req),
        }
    }

    /// A whole legacy completion.
    pub fn completion<'a>(
        &'a self,
        m: &'a Model,
        call: CompletionCall,
    ) -> BoxFuture<'a, Result<Completion, ApiError>> {
        dispatch!(self, m, completion(call))
    }

    /// A streamed legacy completion.
    pub fn completion_stream<'a>(
        &'a self,
        m: &'a Model,
        call: CompletionCall,
    ) -> BoxFuture<'a, Result<ItemStream, ApiError>> {
        dispatch!(self, m, completion_stream(call))
    }

    /// Embeddings.
    pub fn embeddings<'a>(
        &'a self,
        m: &'a Model,
        req: EmbeddingRequest,
        caller: Caller,
    ) -> BoxFuture<'a, Result<EmbeddingResponse, ApiError>> {
        dispatch!(self, m, embeddings(req, caller))
    }

    /// A rerank answer.
    pub fn rerank<'a>(
        &'a self,
        m: &'a Model,
        call: call::RerankCall,
    ) -> provider::RerankAnswer<'a> {
        dispatch!(self, m, rerank(call))
    }
}
