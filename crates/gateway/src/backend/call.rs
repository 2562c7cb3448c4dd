//! What the one serve path asks of a request: answer it whole on a
//! candidate, or open its stream there. Chat, legacy completions and
//! embeddings implement [`Call`]; the routing layer's serve path runs any of
//! them through admission's candidates, so a new route served by backends
//! is a type and an impl, not a copy of the serve path.

use futures_util::future::BoxFuture;
use openai_types::chat::ChatCompletion;
use openai_types::completions::Completion;
use openai_types::embeddings::{EmbeddingRequest, EmbeddingResponse};

use super::{Backends, Caller, ChatCall, CompletionCall, ItemStream, Model};
use crate::error::ApiError;

/// A request one candidate at a time can serve. Cloned only while another
/// candidate may follow (the last attempt takes it).
pub(crate) trait Call: Clone + Send + Sync + 'static {
    /// Its whole answer.
    type Answer: Send + 'static;

    /// The model name the request names.
    fn model(&self) -> &str;

    /// Its whole answer from `m`.
    fn whole<'a>(
        self,
        backends: &'a Backends,
        m: &'a Model,
    ) -> BoxFuture<'a, Result<Self::Answer, ApiError>>;

    /// Its stream from `m` (errors before the first byte returned here).
    fn stream<'a>(
        self,
        backends: &'a Backends,
        m: &'a Model,
    ) -> BoxFuture<'a, Result<ItemStream, ApiError>>;
}

/// A call whose backends answer it through a whole and a streaming method
/// of [`Backends`].
macro_rules! call {
    ($call:ty, $answer:ty, $whole:ident, $stream:ident) => {
        impl Call for $call {
            type Answer = $answer;

            fn model(&self) -> &str {
                &self.req.model
            }

            fn whole<'a>(
                self,
                backends: &'a Backends,
                m: &'a Model,
            ) -> BoxFuture<'a, Result<$answer, ApiError>> {
                backends.$whole(m, self)
            }

            fn stream<'a>(
                self,
                backends: &'a Backends,
                m: &'a Model,
            ) -> BoxFuture<'a, Result<ItemStream, ApiError>> {
                backends.$stream(m, self)
            }
        }
    };
}

call!(ChatCall, ChatCompletion, chat, chat_stream);
call!(CompletionCall, Completion, completion, completion_stream);

/// An embeddings request and who asked.
#[derive(Debug, Clone)]
pub(crate) struct EmbeddingCall {
    /// The request.
    pub req: EmbeddingRequest,
    /// Who asked.
    pub caller: Caller,
}

pub(crate) use super::provider::RerankCall;

impl Call for RerankCall {
    type Answer = openai_types::rerank::RerankResponse;

    fn model(&self) -> &str {
        &self.req.model
    }

    fn whole<'a>(
        self,
        backends: &'a Backends,
        m: &'a Model,
    ) -> BoxFuture<'a, Result<Self::Answer, ApiError>> {
        backends.rerank(m, self)
    }

    fn stream<'a>(
        self,
        _: &'a Backends,
        _: &'a Model,
    ) -> BoxFuture<'a, Result<ItemStream, ApiError>> {
        Box::pin(async { Err(ApiError::invalid("rerank is not streamed").param("stream")) })
    }
}

impl Call for EmbeddingCall {
    type Answer = EmbeddingResponse;

    fn model(&self) -> &str {
        &self.req.model
    }

    fn whole<'a>(
        self,
        backends: &'a Backends,
        m: &'a Model,
    ) -> BoxFuture<'a, Result<EmbeddingResponse, ApiError>> {
        backends.embeddings(m, self.req, self.caller)
    }

    fn stream<'a>(
        self,
        _: &'a Backends,
        _: &'a Model,
    ) -> BoxFuture<'a, Result<ItemStream, ApiError>> {
        Box::pin(async { Err(ApiError::invalid("embeddings are not streamed").param("stream")) })
    }
}
