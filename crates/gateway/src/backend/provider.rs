//! The interface every backend implements, and what a call carries.

use std::pin::Pin;

use futures_util::Stream;
use futures_util::future::BoxFuture;
use openai_types::chat::{ChatCompletion, ChatCompletionRequest};
use openai_types::completions::{Completion, CompletionRequest};
use openai_types::embeddings::{EmbeddingRequest, EmbeddingResponse};
use openai_types::stream::StreamItem;

use crate::config::ModelConfig;
use crate::error::ApiError;

/// A stream of output items, in batches (one batch per upstream event).
///
/// Invariants every provider keeps: the last item is [`StreamItem::Done`] or
/// [`StreamItem::Error`], and nothing follows it; a [`StreamItem::Usage`]
/// comes before `Done` whatever the client asked (the route logs it and
/// forwards it only when `stream_options.include_usage` is set); dropping
/// the stream cancels the upstream call.
pub type ItemStream = Pin<Box<dyn Stream<Item = Vec<StreamItem>> + Send>>;

/// A chat request with the identity its response carries.
#[derive(Clone)]
pub struct ChatCall {
    /// The validated request.
    pub req: ChatCompletionRequest,
    /// `chatcmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// Prompt tokens to report when the upstream reports none.
    pub prompt_estimate: u64,
    /// Who asked: the client's `Authorization` header (for upstreams that
    /// forward it; never logged) and the request id (sent upstream).
    pub client_auth: Caller,
    /// The most choices (`n`) a backend that generates one a call serves,
    /// as that many parallel calls.
    pub max_choices: u32,
    /// Remote images fetched for this request (Bedrock), shared by every
    /// copy of the call: fetched once, however many of the `n` calls or
    /// failover candidates need them.
    pub images: FetchedImages,
    /// The client key's guardrail (a scoped key's `guardrail`), applied
    /// where the model has none.
    pub key_guardrail: Option<std::sync::Arc<crate::config::GuardrailSettings>>,
}

/// Remote images of one request, fetched once (by URL).
pub(crate) type FetchedImages = std::sync::Arc<
    tokio::sync::OnceCell<std::collections::HashMap<String, bedrock_converse::wire::ImageBlock>>,
>;

/// How long a call may wait, from the configuration the request started
/// with (so a reload applies to the next request on every backend).
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// A whole (non-streaming) answer. A stream's deadlines are not here:
    /// its first batch is failover's, its idle and total time the SSE
    /// response's.
    pub request: std::time::Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            request: std::time::Duration::from_secs(120),
        }
    }
}

/// Who asked, as upstreams may need it, and how long they wait.
#[derive(Clone, Default)]
pub struct Caller {
    /// The client's `Authorization` header.
    pub auth: Option<String>,
    /// The request id (`x-request-id`).
    pub request_id: String,
    /// How long a whole answer may take.
    pub deadlines: Deadlines,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("auth", &self.auth.as_ref().map(|_| "*****"))
            .field("request_id", &self.request_id)
            .field("deadlines", &self.deadlines)
            .finish()
    }
}

impl std::fmt::Debug for ChatCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatCall")
            .field("model", &self.req.model)
            .field("id", &self.id)
            .field("caller", &self.client_auth)
            .finish_non_exhaustive()
    }
}

/// A legacy completion request with the identity its response carries.
#[derive(Clone)]
pub struct CompletionCall {
    /// The validated request.
    pub req: CompletionRequest,
    /// `cmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// Prompt tokens to report when the upstream reports none.
    pub prompt_estimate: u64,
    /// Who asked.
    pub client_auth: Caller,
}

impl std::fmt::Debug for CompletionCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompletionCall")
            .field("model", &self.req.model)
            .field("id", &self.id)
            .field("caller", &self.client_auth)
            .finish_non_exhaustive()
    }
}

/// A model backend. `Target` is what it needs of a model besides its
/// configuration: a SageMaker endpoint's chat template, an upstream.
pub trait Provider: Send + Sync {
    /// What a model served by this backend carries.
    type Target: Send + Sync + ?Sized;

    /// A whole chat completion.
    fn chat<'a>(
        &'a self,
        cfg: &'a ModelConfig,
        target: &'a Self::Target,
        call: ChatCall,
    ) -> BoxFuture<'a, Result<ChatCompletion, ApiError>>;

    /// A streamed chat completion. Errors before the first byte are returned
    /// here (and become an HTTP error); later ones are an error item.
    fn chat_stream<'a>(
        &'a self,
        cfg: &'a ModelConfig,
        target: &'a Self::Target,
        call: ChatCall,
    ) -> BoxFuture<'a, Result<ItemStream, ApiError>>;

    /// Whether it serves this legacy completion request (which is within
    /// the spec's ranges): the refusal says why not. Backends without
    /// legacy completions refuse every one.
    fn takes_completion(&self, req: &CompletionRequest) -> Result<(), ApiError> {
        Err(chat_only(&req.model))
    }

    /// A whole legacy completion.
    fn completion<'a>(
        &'a self,
        cfg: &'a ModelConfig,
        target: &'a Self::Target,
        call: CompletionCall,
    ) -> BoxFuture<'a, Result<Completion, ApiError>> {
        let _ = (cfg, target);
        Box::pin(async move { Err(chat_only(&call.req.model)) })
    }

    /// A streamed legacy completion.
    fn completion_stream<'a>(
        &'a self,
        cfg: &'a ModelConfig,
        target: &'a Self::Target,
        call: CompletionCall,
    ) -> BoxFuture<'a, Result<ItemStream, ApiError>> {
        let _ = (cfg, target);
        Box::pin(async move { Err(chat_only(&call.req.model)) })
    }

    /// Embeddings.
    fn embeddings<'a>(
        &'a self,
        cfg: &'a ModelConfig,
        target: &'a Self::Target,
        req: EmbeddingRequest,
        client_auth: Caller,
    ) -> BoxFuture<'a, Result<EmbeddingResponse, ApiError>> {
        let _ = (cfg, target, client_auth);
        Box::pin(async move {
            Err(
                ApiError::invalid(format!("'{}' does not serve embeddings", req.model))
                    .param("model")
                    .code("model_not_supported"),
            )
        })
    }

    /// Rerank (`POST /v1/rerank`): the `(index, score)` of each document
    /// or an upstream's whole answer.
    fn rerank<'a>(
        &'a self,
        cfg: &'a ModelConfig,
        target: &'a Self::Target,
        call: RerankCall,
    ) -> RerankAnswer<'a> {
        let _ = (cfg, target);
        Box::pin(async move {
            Err(
                ApiError::invalid(format!("'{}' does not serve rerank", call.req.model))
                    .param("model")
                    .code("model_not_supported"),
            )
        })
    }
}

/// A rerank request, its id, and who asked.
#[derive(Debug, Clone)]
pub struct RerankCall {
    /// The request.
    pub req: openai_types::rerank::RerankRequest,
    /// The answer's id.
    pub id: String,
    /// Who asked.
    pub caller: Caller,
}

/// The rerank call of a provider (see [`Provider::rerank`]).
pub(crate) type RerankAnswer<'a> =
    BoxFuture<'a, Result<openai_types::rerank::RerankResponse, ApiError>>;

/// The answer of a backend without legacy completions.
pub fn chat_only(model: &str) -> ApiError {
    ApiError::invalid(format!(
        "'{model}' is a chat model: use /v1/chat/completions"
    ))
    .param("model")
    .code("model_not_supported")
}
