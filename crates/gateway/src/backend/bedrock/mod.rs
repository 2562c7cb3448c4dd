//! The Bedrock backend: `Converse`, `ConverseStream` and `InvokeModel`
//! through `aws-sdk-bedrockruntime`, the translation by `bedrock-converse`,
//! model discovery through `aws-sdk-bedrock`, and remote images fetched under
//! an SSRF guard.

mod apply;
mod discovery;
pub(crate) mod images;

use bedrock_converse::sdk::{SdkRequest, from_sdk_event};
use bedrock_converse::stream::Feed;

/// The request in the SDK's types: a builder's refusal is ours (500).
fn to_sdk(r: bedrock_converse::wire::ConverseRequest) -> Result<SdkRequest, ApiError> {
    bedrock_converse::sdk::to_sdk(r).map_err(|e| ApiError::internal(e.to_string()))
}
pub(crate) use discovery::Catalog;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::StatusCode;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::types as sdk;
use aws_smithy_types::Blob;
use bedrock_converse::embeddings;
use bedrock_converse::request::structured_output_fallback;
use bedrock_converse::wire;
use bedrock_converse::{
    RequestOptions, ResponseMeta, StreamConfig, StreamTranslator, exception_mapping,
};
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use openai_types::chat::ChatCompletion;
use openai_types::embeddings::{EmbeddingRequest, EmbeddingResponse};

use crate::backend::aws::OnDemand;
use crate::backend::bedrock::images::ImageFetcher;
use crate::backend::provider::{ChatCall, ItemStream, Provider};
use crate::backend::pump::pump;
use crate::config::{BedrockConfig, GuardrailSettings, ModelConfig};
use crate::error::ApiError;

/// Sets a translated request on either Converse builder (the two builders
/// are distinct types with the same setters).
macro_rules! converse_input {
    ($builder:expr, $m:expr, $r:expr) => {{
        let r: SdkRequest = $r;
        $builder
            .model_id($m.clone())
            .set_messages(Some(r.messages))
            .set_system(r.system)
            .set_inference_config(r.inference)
            .set_tool_config(r.tools)
            .set_additional_model_request_fields(r.extra)
            .set_output_config(r.output)
    }};
}

/// InvokeModel calls one embeddings request may make (Titan embeds one
/// input a call; OpenAI takes at most 2048 inputs).
const MAX_EMBEDDING_CALLS: usize = 2048;

/// InvokeModel calls of one embeddings request under way at once.
const EMBEDDING_CONCURRENCY: usize = 8;

/// The Bedrock runtime client with the gateway's settings.
#[derive(Debug, Clone)]
pub struct Bedrock {
    client: OnDemand<Client>,
    images: Option<ImageFetcher>,
    max_images: usize,
    default_max_tokens: Option<u32>,
    /// Model ids that refused `outputConfig` (shared by every worker).
    no_output_config: Arc<Mutex<HashSet<String>>>,
    /// Bare model ids Bedrock serves only through an inference profile:
    /// the profile that worked (shared by every worker).
    profile_for: Arc<Mutex<HashMap<String, String>>>,
    /// The client's region (which geography's profiles to try).
    region: String,
    /// Clients of models with a region or endpoint of their own, by
    /// (region, endpoint URL): this worker's.
    regional: Regional,
}

/// Clients by (region, endpoint URL).
type Regional = Arc<Mutex<HashMap<(Option<String>, Option<String>), Client>>>;

impl Bedrock {
    /// Calls through a client built on first use.
    pub fn new(client: OnDemand<Client>, cfg: &BedrockConfig) -> anyhow::Result<Self> {
        Ok(Self {
            images: if cfg.image_fetch.enabled {
                Some(ImageFetcher::new(&cfg.image_fetch)?)
            } else {
                None
            },
            max_images: cfg.image_fetch.max_images,
            default_max_tokens: cfg.default_max_tokens,
            no_output_config: Arc::default(),
            profile_for: Arc::default(),
            region: client
                .sdk()
                .region()
                .map(|r| r.to_string())
                .unwrap_or_default(),
            client,
            regional: Arc::default(),
        })
    }

    /// The same settings over another client (one per HTTP worker).
    pub fn with_client(&self, client: OnDemand<Client>) -> Self {
        Self {
            client,
            regional: Arc::default(),
            ..self.clone()
        }
    }

    /// The client that calls `m`: the shared one, or one for the model's
    /// own region or endpoint (made once per worker).
    fn client_for(&self, m: &ModelConfig) -> Client {
        if m.region.is_none() && m.endpoint_url.is_none() {
            return self.client.get().clone();
        }
        let key = (m.region.clone(), m.endpoint_url.clone());
        lock(&self.regional)
            .entry(key)
            .or_insert_with(|| {
                let mut b = self.client.get().config().to_builder();
                if let Some(r) = &m.region {
                    b = b.region(aws_sdk_bedrockruntime::config::Region::new(r.clone()));
                }
                if let Some(u) = &m.endpoint_url {
                    b = b.endpoint_url(u);
                }
                Client::from_conf(b.build())
            })
            .clone()
    }

    /// Translates a chat request, fetching remote images first.
    async fn converse_request(
        &self,
        m: &ModelConfig,
        call: &ChatCall,
    ) -> Result<wire::ConverseRequest, ApiError> {
        let n = bedrock_converse::request::image_count(&call.req);
        if n > self.max_images {
            return Err(ApiError::invalid(format!(
                "A request may carry at most {} images; this one has {n}",
                self.max_images
            ))
            .param("messages")
            .code("too_many_images"));
        }
        let urls = bedrock_converse::request::remote_image_urls(&call.req);
        let none = HashMap::new();
        let images = match &self.images {
            // Once per request: the `n` calls and failover share them.
            Some(f) if !urls.is_empty() => {
                call.images.get_or_try_init(|| f.fetch_all(&urls)).await?
            }
            _ => &none,
        };
        let opts = RequestOptions {
            model_id: m.bedrock_model_id().to_owned(),
            reasoning: m.reasoning_style,
            default_max_tokens: self.default_max_tokens,
            prompt_cache: m.auto_cache(),
            // The model's guardrail, else the key's; a request's own only
            // where neither is set.
            guardrail: m
                .guardrail
                .as_ref()
                .or(call.key_guardrail.as_deref())
                .map(GuardrailSettings::to_wire),
        };
        Ok(bedrock_converse::to_converse(&call.req, &opts, images)?)
    }

    /// The id a model is called by: the inference profile found for it
    /// earlier (see [`Self::send_converse`]), else its configured id.
    fn routed_id(&self, m: &ModelConfig) -> String {
        let id = m.bedrock_model_id();
        lock(&self.profile_for)
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    }

    /// Sends a translated request through `send` (Converse or
    /// ConverseStream), by model id. Two refusals are mended and
    /// remembered (shared by every worker), so the next request goes the
    /// right way at once:
    /// - a model that refuses `outputConfig` is asked again with the schema
    ///   as one forced tool;
    /// - a bare foundation model id that Bedrock refuses for on-demand
    ///   throughput is asked again through the inference profiles that
    ///   carry it in this region's geography (`us.`, `eu.`, `apac.`, …,
    ///   then `global.`), the first Bedrock accepts kept.
    ///
    /// Returns the answer and the tool standing in for structured output,
    /// if one does. The request is made again from the call for a second
    /// attempt (no copy of a large request is held meanwhile; remote images
    /// are fetched once per call).
    async fn send_converse<T, F>(
        &self,
        m: &ModelConfig,
        call: &ChatCall,
        send: F,
    ) -> Result<(T, Option<String>), ApiError>
    where
        F: Fn(String, SdkRequest) -> BoxFuture<'static, Result<T, ApiError>>,
    {
        if call.req.reasoning_effort.is_some() && bedrock_converse::request::forces_tool(&call.req)
        {
            tracing::debug!(model = %call.req.model, "reasoning_effort dropped: tool_choice forces a tool, which excludes thinking");
        }
        let configured = m.bedrock_model_id();
        let mut model_id = self.routed_id(m);
        let mut profiles: Option<std::vec::IntoIter<String>> = None;
        let mut first_refusal = None;
        loop {
            let mut r = self.converse_request(m, call).await?;
            let mut answer_tool = None;
            if r.output_config.is_some() && lock(&self.no_output_config).contains(configured) {
                answer_tool = structured_output_fallback(&mut r);
            }
            let structured = r.output_config.is_some();
            let e = match send(model_id.clone(), to_sdk(r)?).await {
                Ok(out) => {
                    if model_id != configured && profiles.is_some() {
                        tracing::warn!(model = %configured, profile = %model_id, "Bedrock serves this model only through an inference profile: it is called through the profile from now on (set model_id to the profile to skip the first refusal)");
                        lock(&self.profile_for).insert(configured.to_owned(), model_id);
                    }
                    return Ok((out, answer_tool));
                }
                Err(e) => e,
            };
            if structured && refuses_output_config(&e) {
                tracing::info!(model = %configured, "the model refuses outputConfig: structured output through a forced tool");
                lock(&self.no_output_config).insert(configured.to_owned());
                continue;
            }
            let next = match &mut profiles {
                None if needs_inference_profile(&e) => {
                    let region = m.region.as_deref().unwrap_or(&self.region);
                    let ids = bedrock_converse::model::inference_profile_ids(configured, region);
                    first_refusal = Some(e);
                    profiles.insert(ids.into_iter()).next()
                }
                // A profile this region's account does not have: the next.
                Some(rest) if e.status == StatusCode::BAD_REQUEST => rest.next(),
                _ => return Err(e),
            };
            match (next, first_refusal.take()) {
                (Some(p), refusal) => {
                    model_id = p;
                    first_refusal = refusal;
                }
                // Every profile refused: the model's own refusal says why.
                (None, refusal) => {
                    return Err(refusal
                        .unwrap_or_else(|| ApiError::internal("no inference profile to try")));
                }
            }
        }
    }

    async fn chat(&self, m: &ModelConfig, call: ChatCall) -> Result<ChatCompletion, ApiError> {
        let limit = call.client_auth.deadlines.request;
        let client = self.client_for(m);
        let (out, answer_tool) = self
            .send_converse(m, &call, |model_id, r| {
                let g = r.guardrail.as_ref().map(bedrock_converse::sdk::guardrail);
                let req = converse_input!(client.converse(), model_id, r).set_guardrail_config(g);
                Box::pin(async move {
                    tokio::time::timeout(limit, req.send())
                        .await
                        .map_err(|_| timeout(limit))?
                        .map_err(|e| map_sdk_error(&e))
                })
            })
            .await?;
        let response = bedrock_converse::sdk::from_sdk_response(out).ok_or_else(|| {
            ApiError::upstream(
                StatusCode::BAD_GATEWAY,
                "bad_upstream_response",
                "Bedrock's Converse response held no message",
            )
            .code("bad_upstream_response")
        })?;
        let guarded = response.stop_reason == "guardrail_intervened";
        let out = bedrock_converse::to_chat_completion(
            response,
            ResponseMeta {
                id: call.id,
                model: call.req.model,
                created: call.created,
                answer_tool,
            },
            m.reasoning_output,
        );
        if guarded {
            guardrail_intervened(&out.model);
        }
        Ok(out)
    }

    async fn chat_stream(&self, m: &ModelConfig, call: ChatCall) -> Result<ItemStream, ApiError> {
        // The head's deadline is failover's first-byte deadline.
        let client = self.client_for(m);
        let (out, answer_tool) = self
            .send_converse(m, &call, |model_id, r| {
                let g = r
                    .guardrail
                    .as_ref()
                    .map(bedrock_converse::sdk::guardrail_stream);
                let req =
                    converse_input!(client.converse_stream(), model_id, r).set_guardrail_config(g);
                Box::pin(async move { req.send().await.map_err(|e| map_sdk_error(&e)) })
            })
            .await?;
        let call_model = call.req.model.clone();
        let t = StreamTranslator::new(StreamConfig {
            id: call.id,
            model: call.req.model,
            created: call.created,
            // Always: the route logs usage and drops the chunk unless asked.
            include_usage: true,
            reasoning: m.reasoning_output,
            prompt_tokens_estimate: call.prompt_estimate,
            answer_tool,
        });
        let events = futures_util::stream::unfold(out.stream, |mut rx| async move {
            let piece = match rx.recv().await {
                Ok(Some(e)) => Ok(Feed::Event(from_sdk_event(e))),
                Ok(None) => return None,
                Err(e) => Err(stream_error(&e)),
            };
            Some((piece, rx))
        });
        let model = call_model;
        Ok(pump(events.boxed(), t, "bedrock")
            .inspect(move |batch| {
                let filtered = batch.iter().any(|i| {
                    matches!(i, openai_types::stream::StreamItem::Choice(c)
                        if c.finish_reason == Some(openai_types::chat::FinishReason::ContentFilter))
                });
                if filtered {
                    guardrail_intervened(&model);
                }
            })
            .boxed())
    }

    async fn embeddings(
        &self,
        m: &ModelConfig,
        mut req: EmbeddingRequest,
        limit: Duration,
    ) -> Result<EmbeddingResponse, ApiError> {
        let family = m.embedding_family().ok_or_else(|| {
            ApiError::invalid(format!(
                "'{}' is not an embedding model; embeddings are served for Titan, Cohere and Nova embedding models",
                req.model
            ))
            .param("model")
            .code("model_not_supported")
        })?;
        crate::backend::token_ids::decode_input(&mut req)?;
        let mut plan = embeddings::plan(&req, family)?;
        // The bodies hold the text now: neither is kept twice.
        req.input = openai_types::embeddings::EmbeddingInput::Strings(Vec::new());
        if plan.bodies.len() > MAX_EMBEDDING_CALLS {
            return Err(ApiError::invalid(format!(
                "'input' takes at most {MAX_EMBEDDING_CALLS} items for this model"
            ))
            .param("input"));
        }
        let calls: Vec<_> = std::mem::take(&mut plan.bodies)
            .into_iter()
            .map(|body| {
                let call = self
                    .client_for(m)
                    .invoke_model()
                    .model_id(m.bedrock_model_id())
                    .content_type("application/json")
                    .accept("application/json")
                    .body(Blob::new(body))
                    .send();
                async move {
                    let out = tokio::time::timeout(limit, call)
                        .await
                        .map_err(|_| timeout(limit))?
                        .map_err(|e| map_sdk_error(&e))?;
                    Ok::<_, ApiError>(embeddings::parse(family, out.body.as_ref())?)
                }
            })
            .collect();
        // A few calls at a time: a request's fan-out is bounded.
        let results: Vec<_> = futures_util::stream::iter(calls)
            .buffered(EMBEDDING_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, ApiError>>()?;
        let mut vectors = Vec::new();
        let mut tokens = Some(0u64);
        for (v, t) in results {
            vectors.extend(v);
            tokens = tokens.zip(t).map(|(a, b)| a + b);
        }
        let format = req.encoding_format.unwrap_or_default();
        Ok(embeddings::assemble(
            req.model, vectors, tokens, &plan, format,
        ))
    }
}

impl Provider for Bedrock {
    /// A Bedrock model is all configuration.
    type Target = ();

    /// Rerank on Bedrock's rerank models through `InvokeModel`.
    fn rerank<'a>(
        &'a self,
        cfg: &'a ModelConfig,
        _: &'a (),
        call: crate::backend::provider::RerankCall,
    ) -> crate::backend::provider::RerankAnswer<'a> {
        async move {
            let id = cfg.bedrock_model_id();
            if !bedrock_converse::rerank::is_rerank_model(id) {
                return Err(ApiError::invalid(format!(
                    "'{}' is not a rerank model; rerank is served by Cohere Rerank and Amazon Rerank",
                    call.req.model
                ))
                .param("model")
                .code("model_not_supported"));
            }
            let limit = call.caller.deadlines.request;
            let send = self
                .client_for(cfg)
                .invoke_model()
                .model_id(id)
                .content_type("application/json")
                .accept("application/json")
                .body(Blob::new(bedrock_converse::rerank::body(id, &call.req)))
                .send();
            let out = tokio::time::timeout(limit, send)
                .await
                .map_err(|_| timeout(limit))?
                .map_err(|e| map_sdk_error(&e))?;
            let scores = bedrock_converse::rerank::parse(out.body.as_ref())?;
            let usage = Some(serde_json::json!({"search_units": 1}));
            Ok(openai_types::rerank::assemble(call.id, &call.req, scores, usage))
        }
        .boxed()
    }

    fn chat<'a>(
        &'a self,
        cfg: &'a ModelConfig,
        _: &'a (),
        call: ChatCall,
    ) -> BoxFuture<'a, Result<ChatCompletion, ApiError>> {
        Bedrock::chat(self, cfg, call).boxed()
    }

    fn chat_stream<'a>(
        &'a self,
        cfg: &'a ModelConfig,
        _: &'a (),
        call: ChatCall,
    ) -> BoxFuture<'a, Result<ItemStream, ApiError>> {
        Bedrock::chat_stream(self, cfg, call).boxed()
    }

    fn embeddings<'a>(
        &'a self,
        cfg: &'a ModelConfig,
        _: &'a (),
        req: EmbeddingRequest,
        caller: crate::backend::provider::Caller,
    ) -> BoxFuture<'a, Result<EmbeddingResponse, ApiError>> {
        Bedrock::embeddings(self, cfg, req, caller.deadlines.request).boxed()
    }
}

impl From<bedrock_converse::Error> for ApiError {
    fn from(e: bedrock_converse::Error) -> Self {
        let body = e.to_openai();
        let h = e.http();
        ApiError::from_upstream(
            StatusCode::from_u16(h.status).unwrap_or(StatusCode::BAD_GATEWAY),
            body,
            h.code,
        )
    }
}

/// Counts a guardrail's intervention (a `content_filter` finish).
fn guardrail_intervened(model: &str) {
    crate::observe::metrics::METRICS
        .guardrail_interventions
        .with_label_values(&[model])
        .inc();
}

/// Whether Bedrock refused a bare model id for on-demand throughput ("…
/// with on-demand throughput isn't supported. Retry your request with the
/// ID or ARN of an inference profile that contains this model.").
fn needs_inference_profile(e: &ApiError) -> bool {
    e.status == StatusCode::BAD_REQUEST
        && bedrock_converse::model::needs_inference_profile(&e.body.error.message)
}

/// Whether Bedrock refused a request for its `outputConfig`.
fn refuses_output_config(e: &ApiError) -> bool {
    e.status == StatusCode::BAD_REQUEST
        && bedrock_converse::request::refuses_output_config(&e.body.error.message)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn timeout(d: Duration) -> ApiError {
    ApiError::upstream_timeout(format!("Bedrock did not answer within {} s", d.as_secs()))
}

/// Maps any Bedrock error: transport failures by kind, service exceptions by
/// name (ValidationException 400, AccessDenied 403, ResourceNotFound 404,
/// Throttling 429, ServiceUnavailable 503, ModelTimeout 504, …).
fn map_sdk_error<E, R>(e: &SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let Some(t) = crate::backend::aws::transport_error(e, "Bedrock") {
        return t;
    }
    let name = e.code().unwrap_or("Unknown");
    let message = e.message().unwrap_or("no message").to_owned();
    ApiError::from(bedrock_converse::Error::Upstream {
        name: name.to_owned(),
        message: if exception_mapping(name).code == "upstream_error" {
            format!("Bedrock error {name}: {message}")
        } else {
            message
        },
    })
}

/// A mid-stream failure: an exception event by name, else a transport error.
fn stream_error<R: std::fmt::Debug>(
    e: &SdkError<sdk::error::ConverseStreamOutputError, R>,
) -> bedrock_converse::Error {
    use sdk::error::ConverseStreamOutputError as E;
    let named = |name: &str, message: Option<&str>| bedrock_converse::Error::Upstream {
        name: name.to_owned(),
        message: message.unwrap_or(name).to_owned(),
    };
    match e.as_service_error() {
        Some(E::ThrottlingException(x)) => named("ThrottlingException", x.message()),
        Some(E::ValidationException(x)) => named("ValidationException", x.message()),
        Some(E::ServiceUnavailableException(x)) => {
            named("ServiceUnavailableException", x.message())
        }
        Some(E::ModelStreamErrorException(x)) => named("ModelStreamErrorException", x.message()),
        Some(E::InternalServerException(x)) => named("InternalServerException", x.message()),
        Some(other) => named(other.code().unwrap_or("UnknownException"), other.message()),
        None => {
            tracing::warn!(error = %aws_sdk_bedrockruntime::error::DisplayErrorContext(e), "Bedrock stream failed");
            bedrock_converse::Error::Truncated(
                "the Bedrock stream failed; the gateway's log has the details".into(),
            )
        }
    }
}
