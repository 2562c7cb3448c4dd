//! The Bedrock backend: `Converse`, `ConverseStream` and `InvokeModel`
//! through `aws-sdk-bedrockruntime`, the translation by `bedrock-converse`,
//! model discovery through `aws-sdk-bedrock`, and remote images fetched under
//! an SSRF guard.

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

use crate::backend::bedrock::images::ImageFetcher;
use crate::backend::provider::{ChatCall, ItemStream, Provider};
use crate::backend::pump::pump;
use crate::config::{BedrockConfig, ModelConfig};
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
    client: Client,
    images: Option<ImageFetcher>,
    max_images: usize,
    default_max_tokens: Option<u32>,
    /// Model ids that refused `outputConfig` (shared by every worker).
    no_output_config: Arc<Mutex<HashSet<String>>>,
}

impl Bedrock {
    /// Wraps a client.
    pub fn new(client: Client, cfg: &BedrockConfig) -> anyhow::Result<Self> {
        Ok(Self {
            client,
            images: if cfg.image_fetch.enabled {
                Some(ImageFetcher::new(&cfg.image_fetch)?)
            } else {
                None
            },
            max_images: cfg.image_fetch.max_images,
            default_max_tokens: cfg.default_max_tokens,
            no_output_config: Arc::default(),
        })
    }

    /// The same settings over another client (one per HTTP worker).
    pub fn with_client(&self, client: Client) -> Self {
        Self {
            client,
            ..self.clone()
        }
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
        };
        Ok(bedrock_converse::to_converse(&call.req, &opts, images)?)
    }

    /// Sends a translated request through `send` (Converse or
    /// ConverseStream). A model that refuses `outputConfig` is asked again
    /// with the schema as one forced tool, and remembered, so its next
    /// structured request goes that way at once. Returns the answer and the
    /// tool standing in for structured output, if one does.
    async fn send_converse<T, F>(
        &self,
        m: &ModelConfig,
        call: &ChatCall,
        send: F,
    ) -> Result<(T, Option<String>), ApiError>
    where
        F: Fn(SdkRequest) -> BoxFuture<'static, Result<T, ApiError>>,
    {
        let mut r = self.converse_request(m, call).await?;
        if call.req.reasoning_effort.is_some() && bedrock_converse::request::forces_tool(&call.req)
        {
            tracing::debug!(model = %call.req.model, "reasoning_effort dropped: tool_choice forces a tool, which excludes thinking");
        }
        let model_id = m.bedrock_model_id();
        let mut answer_tool = None;
        if r.output_config.is_some() && lock(&self.no_output_config).contains(model_id) {
            answer_tool = structured_output_fallback(&mut r);
        }
        // A refusal of outputConfig needs a second request: made again from
        // the call (no copy of a large request is held meanwhile; remote
        // images are fetched once per call).
        let structured = r.output_config.is_some();
        match send(to_sdk(r)?).await {
            Err(e) if structured && refuses_output_config(&e) => {
                tracing::info!(model = %model_id, "the model refuses outputConfig: structured output through a forced tool");
                lock(&self.no_output_config).insert(model_id.to_owned());
                let mut r = self.converse_request(m, call).await?;
                answer_tool = structured_output_fallback(&mut r);
                Ok((send(to_sdk(r)?).await?, answer_tool))
            }
            out => Ok((out?, answer_tool)),
        }
    }

    async fn chat(&self, m: &ModelConfig, call: ChatCall) -> Result<ChatCompletion, ApiError> {
        let limit = call.client_auth.deadlines.request;
        let (client, model_id) = (self.client.clone(), m.bedrock_model_id().to_owned());
        let (out, answer_tool) = self
            .send_converse(m, &call, |r| {
                let req = converse_input!(client.converse(), model_id, r);
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
        Ok(bedrock_converse::to_chat_completion(
            response,
            ResponseMeta {
                id: call.id,
                model: call.req.model,
                created: call.created,
                answer_tool,
            },
            m.reasoning_output,
        ))
    }

    async fn chat_stream(&self, m: &ModelConfig, call: ChatCall) -> Result<ItemStream, ApiError> {
        // The head's deadline is failover's first-byte deadline.
        let (client, model_id) = (self.client.clone(), m.bedrock_model_id().to_owned());
        let (out, answer_tool) = self
            .send_converse(m, &call, |r| {
                let req = converse_input!(client.converse_stream(), model_id, r);
                Box::pin(async move { req.send().await.map_err(|e| map_sdk_error(&e)) })
            })
            .await?;
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
        Ok(pump(events.boxed(), t, "bedrock"))
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
        crate::backend::token_ids::decode_input(&mut req).await?;
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
                    .client
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
