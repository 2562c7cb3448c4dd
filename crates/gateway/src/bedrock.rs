//! The Bedrock backend: `Converse`, `ConverseStream` and `InvokeModel`
//! through `aws-sdk-bedrockruntime`, the translation by `bedrock-converse`,
//! model discovery through `aws-sdk-bedrock`, and remote images fetched under
//! an SSRF guard.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::http::StatusCode;
use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::types as sdk;
use aws_smithy_types::{Blob, Document, Number};
use bedrock_converse::embeddings;
use bedrock_converse::wire::{self, BlockDelta, StreamEvent};
use bedrock_converse::{
    RequestOptions, ResponseMeta, StreamConfig, StreamTranslator, exception_mapping,
};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use openai_types::chat::ChatCompletion;
use openai_types::embeddings::{EmbeddingRequest, EmbeddingResponse};
use serde_json::Value;

use crate::config::{BedrockConfig, ModelConfig};
use crate::error::ApiError;
use crate::images::ImageFetcher;
use crate::provider::{ChatCall, ItemStream, Provider};
use crate::state::Model;

/// Sets a translated request on either Converse builder (the two builders
/// are distinct types with the same setters).
macro_rules! converse_input {
    ($builder:expr, $m:expr, $r:expr) => {{
        let r: SdkRequest = $r;
        $builder
            .model_id($m.bedrock_model_id())
            .set_messages(Some(r.messages))
            .set_system(r.system)
            .set_inference_config(r.inference)
            .set_tool_config(r.tools)
            .set_additional_model_request_fields(r.extra)
    }};
}

/// The Bedrock runtime client with the gateway's settings.
#[derive(Debug, Clone)]
pub struct Bedrock {
    client: Client,
    request_timeout: Duration,
    first_byte_timeout: Duration,
    images: Option<ImageFetcher>,
    max_images: usize,
    default_max_tokens: Option<u32>,
}

impl Bedrock {
    /// Wraps a client.
    pub fn new(
        client: Client,
        cfg: &BedrockConfig,
        request_timeout: Duration,
        first_byte_timeout: Duration,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client,
            request_timeout,
            first_byte_timeout,
            images: if cfg.image_fetch.enabled {
                Some(ImageFetcher::new(&cfg.image_fetch)?)
            } else {
                None
            },
            max_images: cfg.image_fetch.max_images,
            default_max_tokens: cfg.default_max_tokens,
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
        let images = match &self.images {
            Some(f) if !urls.is_empty() => f.fetch_all(&urls).await?,
            _ => HashMap::new(),
        };
        let opts = RequestOptions {
            model_id: m.bedrock_model_id().to_owned(),
            reasoning: m.reasoning_style,
            default_max_tokens: self.default_max_tokens,
        };
        Ok(bedrock_converse::to_converse(&call.req, &opts, &images)?)
    }

    async fn chat(&self, model: &Model, call: ChatCall) -> Result<ChatCompletion, ApiError> {
        let m = &model.cfg;
        let r = to_sdk(self.converse_request(m, &call).await?)?;
        let req = converse_input!(self.client.converse(), m, r);
        let out = tokio::time::timeout(self.request_timeout, req.send())
            .await
            .map_err(|_| timeout(self.request_timeout))?
            .map_err(|e| map_sdk_error(&e))?;
        let response = wire::ConverseResponse {
            output: match out.output {
                Some(sdk::ConverseOutput::Message(msg)) => {
                    wire::ConverseOutput::Message(from_sdk_message(msg))
                }
                _ => {
                    return Err(ApiError::upstream(
                        StatusCode::BAD_GATEWAY,
                        "bad_upstream_response",
                        "Bedrock's Converse response held no message",
                    )
                    .code("bad_upstream_response"));
                }
            },
            stop_reason: out.stop_reason.as_str().to_owned(),
            usage: out.usage.as_ref().map(from_sdk_usage).unwrap_or_default(),
            additional_model_response_fields: None,
        };
        Ok(bedrock_converse::to_chat_completion(
            response,
            ResponseMeta {
                id: call.id,
                model: call.req.model,
                created: call.created,
            },
            m.reasoning_output,
        ))
    }

    async fn chat_stream(&self, model: &Model, call: ChatCall) -> Result<ItemStream, ApiError> {
        let m = &model.cfg;
        let r = to_sdk(self.converse_request(m, &call).await?)?;
        let req = converse_input!(self.client.converse_stream(), m, r);
        let out = tokio::time::timeout(self.first_byte_timeout, req.send())
            .await
            .map_err(|_| timeout(self.first_byte_timeout))?
            .map_err(|e| map_sdk_error(&e))?;
        let mut upstream = out.stream;
        let mut t = StreamTranslator::new(StreamConfig {
            id: call.id,
            model: call.req.model,
            created: call.created,
            // Always: the route logs usage and drops the chunk unless asked.
            include_usage: true,
            reasoning: m.reasoning_output,
            prompt_tokens_estimate: call.prompt_estimate,
        });
        Ok(Box::pin(async_stream::stream! {
            loop {
                let mut items = Vec::new();
                match upstream.recv().await {
                    Ok(Some(e)) => t.push_event(from_sdk_event(e), &mut items),
                    Ok(None) => t.finish(&mut items),
                    Err(e) => t.push_error(stream_error(&e), &mut items),
                }
                if !items.is_empty() {
                    yield items;
                }
                if t.is_finished() {
                    if let Some(e) = t.error() {
                        tracing::warn!(error = %e, "Bedrock stream ended with an error");
                    }
                    break;
                }
            }
        }))
    }

    async fn embeddings(
        &self,
        model: &Model,
        req: EmbeddingRequest,
    ) -> Result<EmbeddingResponse, ApiError> {
        let m = &model.cfg;
        let family = m.embedding_family().ok_or_else(|| {
            ApiError::invalid(format!(
                "'{}' is not an embedding model; embeddings are served for Titan, Cohere and Nova embedding models",
                req.model
            ))
            .param("model")
            .code("model_not_supported")
        })?;
        let plan = embeddings::plan(&req, family)?;
        let calls = plan.bodies.iter().map(|body| {
            let call = self
                .client
                .invoke_model()
                .model_id(m.bedrock_model_id())
                .content_type("application/json")
                .accept("application/json")
                .body(Blob::new(body.clone()))
                .send();
            async move {
                let out = tokio::time::timeout(self.request_timeout, call)
                    .await
                    .map_err(|_| timeout(self.request_timeout))?
                    .map_err(|e| map_sdk_error(&e))?;
                Ok::<_, ApiError>(embeddings::parse(family, out.body.as_ref())?)
            }
        });
        let results = futures_util::future::try_join_all(calls).await?;
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
    fn chat<'a>(
        &'a self,
        model: &'a Model,
        call: ChatCall,
    ) -> BoxFuture<'a, Result<ChatCompletion, ApiError>> {
        Bedrock::chat(self, model, call).boxed()
    }

    fn chat_stream<'a>(
        &'a self,
        model: &'a Model,
        call: ChatCall,
    ) -> BoxFuture<'a, Result<ItemStream, ApiError>> {
        Bedrock::chat_stream(self, model, call).boxed()
    }

    fn embeddings<'a>(
        &'a self,
        model: &'a Model,
        req: EmbeddingRequest,
        _client_auth: crate::provider::Caller,
    ) -> BoxFuture<'a, Result<EmbeddingResponse, ApiError>> {
        Bedrock::embeddings(self, model, req).boxed()
    }
}

impl From<bedrock_converse::Error> for ApiError {
    fn from(e: bedrock_converse::Error) -> Self {
        let body = e.to_openai();
        let h = e.http();
        ApiError {
            status: StatusCode::from_u16(h.status).unwrap_or(StatusCode::BAD_GATEWAY),
            body: Box::new(body),
            label: h.code,
            upstream_status: None,
            retry_after: None,
            close: false,
        }
    }
}

fn timeout(d: Duration) -> ApiError {
    ApiError::upstream(
        StatusCode::GATEWAY_TIMEOUT,
        "upstream_timeout",
        format!("Bedrock did not answer within {} s", d.as_secs()),
    )
    .code("upstream_timeout")
}

/// Maps any Bedrock error: transport failures by kind, service exceptions by
/// name (ValidationException 400, AccessDenied 403, ResourceNotFound 404,
/// Throttling 429, ServiceUnavailable 503, ModelTimeout 504, …).
fn map_sdk_error<E, R>(e: &SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let Some(t) = crate::sagemaker::transport_error(e, "Bedrock") {
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

// ---- wire types <-> SDK types -------------------------------------------

struct SdkRequest {
    messages: Vec<sdk::Message>,
    system: Option<Vec<sdk::SystemContentBlock>>,
    inference: Option<sdk::InferenceConfiguration>,
    tools: Option<sdk::ToolConfiguration>,
    extra: Option<Document>,
}

fn build_err(e: aws_smithy_types::error::operation::BuildError) -> ApiError {
    ApiError::internal(format!("could not build the Bedrock request: {e}"))
}

fn to_sdk(r: wire::ConverseRequest) -> Result<SdkRequest, ApiError> {
    let messages = r
        .messages
        .into_iter()
        .map(|m| {
            let content = m
                .content
                .into_iter()
                .map(block_to_sdk)
                .collect::<Result<Vec<_>, _>>()?;
            sdk::Message::builder()
                .role(match m.role {
                    wire::Role::User => sdk::ConversationRole::User,
                    wire::Role::Assistant => sdk::ConversationRole::Assistant,
                })
                .set_content(Some(content))
                .build()
                .map_err(build_err)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let system = (!r.system.is_empty()).then(|| {
        r.system
            .into_iter()
            .map(|wire::SystemBlock::Text(t)| sdk::SystemContentBlock::Text(t))
            .collect()
    });
    let inference = r.inference_config.map(|i| {
        sdk::InferenceConfiguration::builder()
            .set_max_tokens(i.max_tokens.map(|v| v.min(i32::MAX as u32) as i32))
            .set_temperature(i.temperature.map(|v| v as f32))
            .set_top_p(i.top_p.map(|v| v as f32))
            .set_stop_sequences((!i.stop_sequences.is_empty()).then_some(i.stop_sequences))
            .build()
    });
    let tools = match r.tool_config {
        None => None,
        Some(tc) => {
            let tools = tc
                .tools
                .into_iter()
                .map(|wire::Tool::ToolSpec(s)| {
                    let wire::InputSchema::Json(schema) = s.input_schema;
                    sdk::ToolSpecification::builder()
                        .name(s.name)
                        .set_description(s.description)
                        .input_schema(sdk::ToolInputSchema::Json(to_document(schema)))
                        .build()
                        .map(sdk::Tool::ToolSpec)
                        .map_err(build_err)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let choice = match tc.tool_choice {
                None => None,
                Some(wire::ToolChoice::Auto(_)) => Some(sdk::ToolChoice::Auto(
                    sdk::AutoToolChoice::builder().build(),
                )),
                Some(wire::ToolChoice::Any(_)) => {
                    Some(sdk::ToolChoice::Any(sdk::AnyToolChoice::builder().build()))
                }
                Some(wire::ToolChoice::Tool(n)) => Some(sdk::ToolChoice::Tool(
                    sdk::SpecificToolChoice::builder()
                        .name(n.name)
                        .build()
                        .map_err(build_err)?,
                )),
            };
            Some(
                sdk::ToolConfiguration::builder()
                    .set_tools(Some(tools))
                    .set_tool_choice(choice)
                    .build()
                    .map_err(build_err)?,
            )
        }
    };
    Ok(SdkRequest {
        messages,
        system,
        inference,
        tools,
        extra: r
            .additional_model_request_fields
            .map(|m| to_document(Value::Object(m))),
    })
}

fn image_to_sdk(i: wire::ImageBlock) -> Result<sdk::ImageBlock, ApiError> {
    let wire::ImageSource::Bytes(bytes) = i.source;
    sdk::ImageBlock::builder()
        .format(sdk::ImageFormat::from(i.format.as_str()))
        .source(sdk::ImageSource::Bytes(Blob::new(bytes)))
        .build()
        .map_err(build_err)
}

fn block_to_sdk(b: wire::ContentBlock) -> Result<sdk::ContentBlock, ApiError> {
    Ok(match b {
        wire::ContentBlock::Text(t) => sdk::ContentBlock::Text(t),
        wire::ContentBlock::Image(i) => sdk::ContentBlock::Image(image_to_sdk(i)?),
        wire::ContentBlock::ToolUse(t) => sdk::ContentBlock::ToolUse(
            sdk::ToolUseBlock::builder()
                .tool_use_id(t.tool_use_id)
                .name(t.name)
                .input(to_document(t.input))
                .build()
                .map_err(build_err)?,
        ),
        wire::ContentBlock::ToolResult(r) => {
            let content = r
                .content
                .into_iter()
                .map(|c| {
                    Ok(match c {
                        wire::ToolResultContent::Text(t) => sdk::ToolResultContentBlock::Text(t),
                        wire::ToolResultContent::Json(v) => {
                            sdk::ToolResultContentBlock::Json(to_document(v))
                        }
                        wire::ToolResultContent::Image(i) => {
                            sdk::ToolResultContentBlock::Image(image_to_sdk(i)?)
                        }
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            sdk::ContentBlock::ToolResult(
                sdk::ToolResultBlock::builder()
                    .tool_use_id(r.tool_use_id)
                    .set_content(Some(content))
                    .set_status(r.status.map(|s| sdk::ToolResultStatus::from(s.as_str())))
                    .build()
                    .map_err(build_err)?,
            )
        }
        wire::ContentBlock::ReasoningContent(wire::ReasoningContent::ReasoningText(t)) => {
            sdk::ContentBlock::ReasoningContent(sdk::ReasoningContentBlock::ReasoningText(
                sdk::ReasoningTextBlock::builder()
                    .text(t.text)
                    .set_signature(t.signature)
                    .build()
                    .map_err(build_err)?,
            ))
        }
        wire::ContentBlock::ReasoningContent(wire::ReasoningContent::RedactedContent(b)) => {
            sdk::ContentBlock::ReasoningContent(sdk::ReasoningContentBlock::RedactedContent(
                Blob::new(b),
            ))
        }
    })
}

fn from_sdk_message(m: sdk::Message) -> wire::Message {
    let content = m
        .content
        .into_iter()
        .filter_map(|b| match b {
            sdk::ContentBlock::Text(t) => Some(wire::ContentBlock::Text(t)),
            sdk::ContentBlock::ToolUse(t) => Some(wire::ContentBlock::ToolUse(wire::ToolUse {
                tool_use_id: t.tool_use_id,
                name: t.name,
                input: from_document(t.input),
            })),
            sdk::ContentBlock::ReasoningContent(sdk::ReasoningContentBlock::ReasoningText(t)) => {
                Some(wire::ContentBlock::ReasoningContent(
                    wire::ReasoningContent::ReasoningText(wire::ReasoningText {
                        text: t.text,
                        signature: t.signature,
                    }),
                ))
            }
            _ => None,
        })
        .collect();
    wire::Message {
        role: wire::Role::Assistant,
        content,
    }
}

fn count(v: i32) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn from_sdk_usage(u: &sdk::TokenUsage) -> wire::TokenUsage {
    wire::TokenUsage {
        input_tokens: count(u.input_tokens),
        output_tokens: count(u.output_tokens),
        total_tokens: count(u.total_tokens),
        cache_read_input_tokens: u.cache_read_input_tokens.map(count),
        cache_write_input_tokens: u.cache_write_input_tokens.map(count),
    }
}

fn index(i: i32) -> u32 {
    u32::try_from(i).unwrap_or(0)
}

/// An SDK stream event as the library's event.
fn from_sdk_event(e: sdk::ConverseStreamOutput) -> StreamEvent {
    use sdk::ConverseStreamOutput as O;
    match e {
        O::MessageStart(_) => StreamEvent::MessageStart {
            role: wire::Role::Assistant,
        },
        O::ContentBlockStart(s) => StreamEvent::ContentBlockStart {
            index: index(s.content_block_index),
            tool_use: match s.start {
                Some(sdk::ContentBlockStart::ToolUse(t)) => Some(wire::ToolUseStart {
                    tool_use_id: t.tool_use_id,
                    name: t.name,
                }),
                _ => None,
            },
        },
        O::ContentBlockDelta(d) => StreamEvent::ContentBlockDelta {
            index: index(d.content_block_index),
            delta: match d.delta {
                Some(sdk::ContentBlockDelta::Text(t)) => BlockDelta::Text(t),
                Some(sdk::ContentBlockDelta::ToolUse(t)) => BlockDelta::ToolUseInput(t.input),
                Some(sdk::ContentBlockDelta::ReasoningContent(r)) => match r {
                    sdk::ReasoningContentBlockDelta::Text(t) => BlockDelta::ReasoningText(t),
                    sdk::ReasoningContentBlockDelta::Signature(s) => {
                        BlockDelta::ReasoningSignature(s)
                    }
                    sdk::ReasoningContentBlockDelta::RedactedContent(_) => {
                        BlockDelta::ReasoningRedacted
                    }
                    _ => BlockDelta::Other,
                },
                _ => BlockDelta::Other,
            },
        },
        O::ContentBlockStop(s) => StreamEvent::ContentBlockStop {
            index: index(s.content_block_index),
        },
        O::MessageStop(s) => StreamEvent::MessageStop {
            stop_reason: s.stop_reason.as_str().to_owned(),
        },
        O::Metadata(m) => StreamEvent::Metadata {
            usage: m.usage.as_ref().map(from_sdk_usage),
        },
        other => StreamEvent::Unknown(format!("{other:?}")),
    }
}

/// JSON to a Smithy document.
pub fn to_document(v: Value) -> Document {
    match v {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(b),
        Value::Number(n) => Document::Number(if let Some(u) = n.as_u64() {
            Number::PosInt(u)
        } else if let Some(i) = n.as_i64() {
            Number::NegInt(i)
        } else {
            Number::Float(n.as_f64().unwrap_or(0.0))
        }),
        Value::String(s) => Document::String(s),
        Value::Array(a) => Document::Array(a.into_iter().map(to_document).collect()),
        Value::Object(o) => {
            Document::Object(o.into_iter().map(|(k, v)| (k, to_document(v))).collect())
        }
    }
}

/// A Smithy document to JSON.
pub fn from_document(d: Document) -> Value {
    match d {
        Document::Null => Value::Null,
        Document::Bool(b) => Value::Bool(b),
        Document::Number(Number::PosInt(u)) => Value::from(u),
        Document::Number(Number::NegInt(i)) => Value::from(i),
        Document::Number(Number::Float(f)) => Value::from(f),
        Document::String(s) => Value::String(s),
        Document::Array(a) => Value::Array(a.into_iter().map(from_document).collect()),
        Document::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, from_document(v))).collect())
        }
    }
}

// ---- model discovery --------------------------------------------------------

/// A model found by ListFoundationModels or ListInferenceProfiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// Model or inference profile id.
    pub id: String,
    /// Provider (`anthropic`, `amazon`…).
    pub owned_by: String,
}

/// Discovered models, refreshed in the background, read on the request path
/// without I/O.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    inner: Arc<RwLock<Vec<Discovered>>>,
}

impl Catalog {
    /// The models found by the last successful refresh.
    pub fn models(&self) -> Vec<Discovered> {
        self.inner
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Whether an id was discovered.
    pub fn contains(&self, id: &str) -> bool {
        let g = self.inner.read().unwrap_or_else(|p| p.into_inner());
        g.iter().any(|d| d.id == id)
    }

    /// Lists on-demand text and embedding models and active inference
    /// profiles, replacing the cache on success.
    pub async fn refresh(&self, client: &aws_sdk_bedrock::Client) -> anyhow::Result<usize> {
        use aws_sdk_bedrock::types::{InferenceType, ModelModality};
        let mut out = Vec::new();
        let fm =
            client.list_foundation_models().send().await.map_err(|e| {
                anyhow::anyhow!("{}", aws_sdk_bedrock::error::DisplayErrorContext(e))
            })?;
        for m in fm.model_summaries.unwrap_or_default() {
            let on_demand = m
                .inference_types_supported
                .as_ref()
                .is_some_and(|t| t.contains(&InferenceType::OnDemand));
            let useful = m.output_modalities.as_ref().is_some_and(|o| {
                o.contains(&ModelModality::Text) || o.contains(&ModelModality::Embedding)
            });
            if on_demand && useful {
                out.push(Discovered {
                    owned_by: m
                        .provider_name
                        .clone()
                        .unwrap_or_else(|| "bedrock".into())
                        .to_ascii_lowercase(),
                    id: m.model_id,
                });
            }
        }
        let mut pages = client.list_inference_profiles().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                anyhow::anyhow!("{}", aws_sdk_bedrock::error::DisplayErrorContext(e))
            })?;
            for p in page.inference_profile_summaries.unwrap_or_default() {
                if p.status == aws_sdk_bedrock::types::InferenceProfileStatus::Active {
                    let owned_by = bedrock_converse::ModelRef::parse(&p.inference_profile_id)
                        .provider()
                        .unwrap_or("bedrock")
                        .to_owned();
                    out.push(Discovered {
                        id: p.inference_profile_id,
                        owned_by,
                    });
                }
            }
        }
        let n = out.len();
        match self.inner.write() {
            Ok(mut g) => *g = out,
            Err(p) => *p.into_inner() = out,
        }
        Ok(n)
    }

    /// Refreshes now and then every `ttl`, in the background.
    pub fn spawn_refresh(&self, client: aws_sdk_bedrock::Client, ttl: Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                match this.refresh(&client).await {
                    Ok(n) => tracing::info!(models = n, "Bedrock models discovered"),
                    Err(e) => tracing::warn!(
                        error = format!("{e:#}"),
                        "Bedrock model discovery failed; keeping the last list"
                    ),
                }
                tokio::time::sleep(ttl).await;
            }
        });
    }
}
