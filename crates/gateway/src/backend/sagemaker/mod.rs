//! The SageMaker backend: `InvokeEndpoint` and
//! `InvokeEndpointWithResponseStream`, sent by the lean signed transport
//! ([`signed`], the default) or `aws-sdk-sagemakerruntime`
//! (`aws.sagemaker_client = "sdk"`), and the mapping of their errors to HTTP.

mod embed;
pub(crate) mod shape;
pub mod signed;
pub mod sigv4;
pub(crate) mod template;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use aws_sdk_sagemakerruntime::Client;
use aws_sdk_sagemakerruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemakerruntime::operation::invoke_endpoint::InvokeEndpointError;
use aws_sdk_sagemakerruntime::operation::invoke_endpoint_with_response_stream::InvokeEndpointWithResponseStreamError;
use aws_sdk_sagemakerruntime::primitives::event_stream::EventReceiver;
use aws_sdk_sagemakerruntime::types::ResponseStream;
use aws_sdk_sagemakerruntime::types::error::ResponseStreamError;
use aws_smithy_types::Blob;
use bytes::Bytes;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use openai_types::chat::ChatCompletion;
use openai_types::completions::{Completion, CompletionChoice, CompletionRequest};
use sm_stream::{DialectKind, Feed, Translator, TranslatorConfig};

use crate::backend::aws::OnDemand;
use crate::backend::provider::{ChatCall, CompletionCall, ItemStream, Provider};
use crate::backend::pump::pump;
use crate::backend::sagemaker::template::ChatTemplate;
use crate::config::ModelConfig;
use crate::error::ApiError;

/// Sets the endpoint, body and the model's optional routing fields on either
/// operation's builder (the two builders are distinct types with the same
/// setters).
macro_rules! target {
    ($builder:expr, $m:expr, $body:expr) => {{
        let m: &ModelConfig = $m;
        $builder
            .endpoint_name(m.endpoint_name())
            .content_type(&m.content_type)
            .accept("application/json")
            .body(Blob::new($body))
            .set_custom_attributes(m.custom_attributes.clone())
            .set_inference_component_name(m.inference_component.clone())
            .set_target_variant(m.target_variant.clone())
    }};
}

/// An upstream event stream: decoded by the SDK, or raw frames.
pub enum UpstreamStream {
    /// The SDK's receiver.
    Sdk(EventReceiver<ResponseStream, ResponseStreamError>),
    /// The lean transport's response, frames decoded by the translator.
    Raw(crate::backend::client::Response),
}

impl std::fmt::Debug for UpstreamStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sdk(_) => "UpstreamStream::Sdk",
            Self::Raw(_) => "UpstreamStream::Raw",
        })
    }
}

/// How SageMaker is called.
#[derive(Debug, Clone)]
enum Transport {
    Sdk(OnDemand<Client>),
    Signed(signed::Signed),
}

/// The SageMaker runtime client with the gateway's timeouts.
#[derive(Debug, Clone)]
pub struct SageMaker {
    transport: Transport,
    /// The lean transport's shared part, when it is used.
    lean: Option<Arc<signed::Shared>>,
    workers: usize,
}

impl SageMaker {
    /// The lean transport when `lean` is given, else the SDK client of
    /// `sdk`.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        lean: Option<Arc<signed::Shared>>,
        workers: usize,
    ) -> Self {
        let transport = match &lean {
            Some(shared) => match signed::Signed::new(Arc::clone(shared), workers) {
                Ok(s) => Transport::Signed(s),
                Err(e) => {
                    tracing::warn!(error = %e, "the lean SageMaker client could not be built; using the SDK");
                    Transport::Sdk(OnDemand::new(sdk, Client::new))
                }
            },
            None => Transport::Sdk(OnDemand::new(sdk, Client::new)),
        };
        Self {
            transport,
            lean,
            workers,
        }
    }

    /// The same settings over another connection pool (each HTTP worker
    /// gets its own, so upstream connections are driven by the worker that
    /// uses them).
    pub fn for_worker(&self, sdk: &aws_config::SdkConfig) -> Self {
        Self::new(sdk, self.lean.clone(), self.workers)
    }

    /// Which transport serves calls (`"signed"` or `"sdk"`).
    pub fn transport(&self) -> &'static str {
        match self.transport {
            Transport::Sdk(_) => "sdk",
            Transport::Signed(_) => "signed",
        }
    }

    /// `InvokeEndpoint`: the whole response body.
    pub async fn invoke(
        &self,
        m: &ModelConfig,
        body: Vec<u8>,
        limit: Duration,
    ) -> Result<Bytes, ApiError> {
        let call = async {
            match &self.transport {
                Transport::Sdk(client) => {
                    let out = target!(client.get().invoke_endpoint(), m, body)
                        .send()
                        .await
                        .map_err(|e| map_invoke_error(&e))?;
                    Ok(out
                        .body
                        .map(|b| Bytes::from(b.into_inner()))
                        .unwrap_or_default())
                }
                Transport::Signed(s) => signed::body(s.send(m, false, body).await?).await,
            }
        };
        tokio::time::timeout(limit, call)
            .await
            .map_err(|_| timeout(limit))?
    }

    /// `InvokeEndpointWithResponseStream`: waits for the response head and
    /// returns the event stream. Its deadline is the caller's: failover's
    /// first-byte deadline covers the head and the first event together.
    pub async fn invoke_stream(
        &self,
        m: &ModelConfig,
        body: Vec<u8>,
    ) -> Result<UpstreamStream, ApiError> {
        match &self.transport {
            Transport::Sdk(client) => {
                let out = target!(client.get().invoke_endpoint_with_response_stream(), m, body)
                    .send()
                    .await
                    .map_err(|e| map_stream_error(&e))?;
                Ok(UpstreamStream::Sdk(out.body))
            }
            Transport::Signed(s) => Ok(UpstreamStream::Raw(s.send(m, true, body).await?)),
        }
    }
}

impl SageMaker {
    /// A whole response, translated.
    pub async fn complete(
        &self,
        m: &ModelConfig,
        up: Vec<u8>,
        tcfg: TranslatorConfig,
        limit: Duration,
    ) -> Result<ChatCompletion, ApiError> {
        let body = self.invoke(m, up, limit).await?;
        sm_stream::complete::translate_response(&body, tcfg).map_err(|e| {
            let err = ApiError::upstream(
                StatusCode::BAD_GATEWAY,
                e.label(),
                format!("The model's response could not be used: {e}"),
            );
            match e.to_openai().error.code {
                Some(c) => err.code(c),
                None => err,
            }
        })
    }

    /// A stream of items (the translator always emits usage; see
    /// [`ItemStream`]).
    pub async fn stream_items(
        &self,
        m: &ModelConfig,
        up: Vec<u8>,
        mut tcfg: TranslatorConfig,
    ) -> Result<ItemStream, ApiError> {
        let upstream = self.invoke_stream(m, up).await?;
        tcfg.include_usage = true;
        let t = Translator::new(tcfg);
        Ok(match upstream {
            UpstreamStream::Sdk(rx) => pump(
                futures_util::stream::unfold(rx, |mut rx| async move {
                    let piece = match rx.recv().await {
                        Ok(Some(ResponseStream::PayloadPart(p))) => Ok(Feed::Payload(
                            p.bytes.map(|b| Bytes::from(b.into_inner())).unwrap_or_default(),
                        )),
                        // Another event: nothing to feed.
                        Ok(Some(_)) => Ok(Feed::Payload(Bytes::new())),
                        Ok(None) => return None,
                        Err(e) => Err(stream_event_error(&e)),
                    };
                    Some((piece, rx))
                })
                .boxed(),
                t,
                "sagemaker",
            ),
            UpstreamStream::Raw(resp) => pump(
                resp.bytes_stream()
                    .map(|r| match r {
                        Ok(b) => Ok(Feed::EventStream(b)),
                        Err(e) => {
                            tracing::warn!(error = %crate::error::error_chain(&e), "SageMaker stream failed");
                            Err(sm_stream::Error::Truncated(
                                "the SageMaker stream failed; the gateway's log has the details".into(),
                            ))
                        }
                    })
                    .boxed(),
                t,
                "sagemaker",
            ),
        })
    }
}

/// What a SageMaker model carries besides its configuration.
#[derive(Debug, Default)]
pub struct Endpoint {
    /// The chat template (`tgi`/`lmi` only).
    pub template: Option<ChatTemplate>,
}

impl Endpoint {
    /// Compiles the model's chat template, where its dialect needs one
    /// (ChatML, with a warning, when none is configured).
    pub fn new(cfg: &ModelConfig) -> Result<Self, String> {
        if !matches!(cfg.dialect, DialectKind::Tgi | DialectKind::Lmi) {
            return Ok(Self::default());
        }
        let t = match (&cfg.chat_template, &cfg.chat_template_file) {
            (Some(src), _) => ChatTemplate::new(src.clone(), String::new(), String::new()),
            (None, Some(path)) => ChatTemplate::from_file(path),
            (None, None) => {
                tracing::warn!(
                    model = %cfg.name,
                    "no chat_template for a tgi/lmi model: using ChatML; set chat_template_file to the model's tokenizer_config.json"
                );
                ChatTemplate::new(template::CHATML.into(), String::new(), String::new())
            }
        }?;
        Ok(Self { template: Some(t) })
    }
}

/// The translator settings of a call to a model.
fn translator(cfg: &ModelConfig, call: &impl Translated) -> TranslatorConfig {
    let Identity {
        id,
        model,
        created,
        prompt_estimate,
        include_usage,
    } = call.identity();
    TranslatorConfig {
        id: id.to_owned(),
        model: model.to_owned(),
        created,
        // The configuration decides the request's body; the response speaks
        // for itself (a container may answer an OpenAI request in TGI's or
        // LMI's stream format).
        dialect: DialectKind::Auto,
        reasoning: if call.text_only() {
            // Legacy completions carry text only: reasoning stays inline.
            sm_stream::ReasoningMode::Off
        } else {
            cfg.reasoning.into()
        },
        include_usage,
        prompt_tokens_estimate: prompt_estimate,
        ..TranslatorConfig::default()
    }
}

/// What a translated call carries: id, model, created, prompt estimate,
/// whether the client asked for usage.
/// What a call's stream is labelled with.
struct Identity<'a> {
    id: &'a str,
    model: &'a str,
    created: u64,
    prompt_estimate: u64,
    include_usage: bool,
}

/// A call whose answer the translator labels.
trait Translated {
    fn identity(&self) -> Identity<'_>;
    /// Legacy completions carry text only.
    fn text_only(&self) -> bool;
}

/// The calls the SageMaker provider serves, labelled alike.
macro_rules! translated {
    ($call:ty, text_only: $text_only:expr) => {
        impl Translated for $call {
            fn identity(&self) -> Identity<'_> {
                Identity {
                    id: &self.id,
                    model: &self.req.model,
                    created: self.created,
                    prompt_estimate: self.prompt_estimate,
                    include_usage: self.req.include_usage(),
                }
            }

            fn text_only(&self) -> bool {
                $text_only
            }
        }
    };
}

translated!(ChatCall, text_only: false);
translated!(CompletionCall, text_only: true);

impl Provider for SageMaker {
    type Target = Endpoint;

    /// Embeddings on Text Embeddings Inference and Hugging Face toolkit
    /// containers (`{"inputs": [texts]}`).
    fn embeddings<'a>(
        &'a self,
        cfg: &'a ModelConfig,
        _: &'a Endpoint,
        req: openai_types::embeddings::EmbeddingRequest,
        client_auth: crate::backend::provider::Caller,
    ) -> BoxFuture<'a, Result<openai_types::embeddings::EmbeddingResponse, ApiError>> {
        self.embed(cfg, req, client_auth.deadlines.request).boxed()
    }

    /// Rerank on a Text Embeddings Inference container (see `embed`).
    fn rerank<'a>(
        &'a self,
        cfg: &'a ModelConfig,
        _: &'a Endpoint,
        call: crate::backend::provider::RerankCall,
    ) -> crate::backend::provider::RerankAnswer<'a> {
        self.rerank_tei(cfg, call).boxed()
    }

    fn chat<'a>(
        &'a self,
        cfg: &'a ModelConfig,
        ep: &'a Endpoint,
        call: ChatCall,
    ) -> BoxFuture<'a, Result<ChatCompletion, ApiError>> {
        async move {
            let tcfg = translator(cfg, &call);
            let up = shape::chat_body(cfg, ep.template.as_ref(), call.req, false)?;
            self.complete(cfg, up, tcfg, call.client_auth.deadlines.request)
                .await
        }
        .boxed()
    }

    fn chat_stream<'a>(
        &'a self,
        cfg: &'a ModelConfig,
        ep: &'a Endpoint,
        call: ChatCall,
    ) -> BoxFuture<'a, Result<ItemStream, ApiError>> {
        async move {
            let tcfg = translator(cfg, &call);
            let up = shape::chat_body(cfg, ep.template.as_ref(), call.req, true)?;
            self.stream_items(cfg, up, tcfg).await
        }
        .boxed()
    }

    fn takes_completion(&self, req: &CompletionRequest) -> Result<(), ApiError> {
        shape::one_prompt(req).map(drop)
    }

    fn completion<'a>(
        &'a self,
        cfg: &'a ModelConfig,
        ep: &'a Endpoint,
        call: CompletionCall,
    ) -> BoxFuture<'a, Result<Completion, ApiError>> {
        async move {
            let tcfg = translator(cfg, &call);
            let body = shape::completion_body(cfg, ep.template.as_ref(), &call.req, false)?;
            let c = self
                .complete(cfg, body, tcfg.clone(), call.client_auth.deadlines.request)
                .await?;
            Ok(Completion {
                id: tcfg.id,
                object: Default::default(),
                created: tcfg.created,
                model: c.model,
                choices: c
                    .choices
                    .into_iter()
                    .map(|ch| CompletionChoice {
                        text: ch.message.content.unwrap_or_default(),
                        index: ch.index,
                        logprobs: None,
                        finish_reason: Some(ch.finish_reason),
                    })
                    .collect(),
                usage: c.usage,
                system_fingerprint: None,
            })
        }
        .boxed()
    }

    fn completion_stream<'a>(
        &'a self,
        cfg: &'a ModelConfig,
        ep: &'a Endpoint,
        call: CompletionCall,
    ) -> BoxFuture<'a, Result<ItemStream, ApiError>> {
        async move {
            let tcfg = translator(cfg, &call);
            let body = shape::completion_body(cfg, ep.template.as_ref(), &call.req, true)?;
            self.stream_items(cfg, body, tcfg).await
        }
        .boxed()
    }
}

fn timeout(d: Duration) -> ApiError {
    ApiError::upstream_timeout(format!(
        "The SageMaker endpoint did not answer within {} s",
        d.as_secs()
    ))
}

fn map_invoke_error<R: std::fmt::Debug>(e: &SdkError<InvokeEndpointError, R>) -> ApiError {
    if let Some(InvokeEndpointError::ModelError(me)) = e.as_service_error() {
        return model_error(
            me.original_status_code(),
            me.original_message(),
            me.message(),
        );
    }
    map_sdk_error(e)
}

fn map_stream_error<R: std::fmt::Debug>(
    e: &SdkError<InvokeEndpointWithResponseStreamError, R>,
) -> ApiError {
    if let Some(InvokeEndpointWithResponseStreamError::ModelError(me)) = e.as_service_error() {
        return model_error(
            me.original_status_code(),
            me.original_message(),
            me.message(),
        );
    }
    map_sdk_error(e)
}

fn model_error(status: Option<i32>, original: Option<&str>, message: Option<&str>) -> ApiError {
    let text = match (status, original) {
        (Some(s), Some(o)) => format!("The model container returned status {s}: {o}"),
        (None, Some(o)) => format!("The model container failed: {o}"),
        _ => format!(
            "The model container failed: {}",
            message.unwrap_or("no message")
        ),
    };
    ApiError::new(
        StatusCode::FAILED_DEPENDENCY,
        "server_error",
        "model_error",
        text,
    )
    .code("model_error")
}

/// Maps any SageMaker error by its code.
fn map_sdk_error<E, R>(e: &SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let Some(t) = crate::backend::aws::transport_error(e, "SageMaker") {
        return t;
    }
    map_code(
        e.code().unwrap_or("Unknown"),
        e.message().unwrap_or("no message").to_owned(),
    )
}

/// Maps a SageMaker error code and message (either transport).
fn map_code(code: &str, message: String) -> ApiError {
    match code {
        "ValidationError" => ApiError::invalid(message).code("upstream_validation_error"),
        "ThrottlingException" => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "throttled",
            message,
        )
        .code("rate_limit_exceeded"),
        "ModelNotReadyException" => {
            ApiError::upstream(StatusCode::SERVICE_UNAVAILABLE, "model_not_ready", message)
                .code("model_not_ready")
        }
        "ServiceUnavailable" => ApiError::upstream(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_unavailable",
            message,
        )
        .code("service_unavailable"),
        "InternalFailure" | "InternalDependencyException" | "InternalStreamFailure" => {
            ApiError::upstream(StatusCode::BAD_GATEWAY, "upstream_error", message)
                .code("upstream_error")
        }
        "ModelStreamError" => ApiError::upstream(StatusCode::BAD_GATEWAY, "model_error", message)
            .code("model_stream_error"),
        other => ApiError::upstream(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!("SageMaker error {other}: {message}"),
        )
        .code("upstream_error"),
    }
}

/// A mid-stream error of the event stream, for the translator.
pub fn stream_event_error<R: std::fmt::Debug>(
    e: &SdkError<ResponseStreamError, R>,
) -> sm_stream::Error {
    match e.as_service_error() {
        Some(ResponseStreamError::ModelStreamError(m)) => sm_stream::Error::Upstream {
            kind: "model_stream_error".into(),
            message: m.message().unwrap_or("model stream error").to_owned(),
            code: m.error_code().map(str::to_owned),
        },
        Some(ResponseStreamError::InternalStreamFailure(f)) => sm_stream::Error::Upstream {
            kind: "internal_stream_failure".into(),
            message: f.message().unwrap_or("internal stream failure").to_owned(),
            code: None,
        },
        _ => {
            tracing::warn!(error = %aws_sdk_sagemakerruntime::error::DisplayErrorContext(e), "SageMaker stream failed");
            sm_stream::Error::Truncated(
                "the SageMaker stream failed; the gateway's log has the details".into(),
            )
        }
    }
}
