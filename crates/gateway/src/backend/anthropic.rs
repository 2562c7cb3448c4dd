//! Chat served by `anthropic`-kind upstreams (Anthropic's Messages API, or
//! any server that speaks it): the chat request as a Messages request
//! (`anthropic_messages::upstream::to_messages`), `POST /messages` with the
//! upstream's key as `x-api-key`, the message back as a `chat.completion`,
//! or its event stream through `ChatTranslator` and the one pump.

use std::sync::Arc;

use anthropic_messages::Message;
use anthropic_messages::upstream::{to_chat_completion, to_messages};
use anthropic_messages::upstream_stream::{ChatTranslator, StreamError};
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use openai_types::chat::ChatCompletion;

use super::openai::{Upstream, error_from, transport, whole};
use super::pump::pump;
use super::{ChatCall, ItemStream, Provider};
use crate::config::ModelConfig;
use crate::error::ApiError;

/// The provider for models of `anthropic` upstreams: chat only (legacy
/// completions and embeddings are refused by the trait's defaults).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Anthropic;

impl Provider for Anthropic {
    type Target = Arc<Upstream>;

    fn chat<'a>(
        &'a self,
        _: &'a ModelConfig,
        up: &'a Arc<Upstream>,
        call: ChatCall,
    ) -> BoxFuture<'a, Result<ChatCompletion, ApiError>> {
        chat(up, call).boxed()
    }

    fn chat_stream<'a>(
        &'a self,
        _: &'a ModelConfig,
        up: &'a Arc<Upstream>,
        call: ChatCall,
    ) -> BoxFuture<'a, Result<ItemStream, ApiError>> {
        chat_stream(up, call).boxed()
    }
}

/// The Messages body of `call`, streamed or not.
fn body(up: &Upstream, call: &ChatCall, stream: bool) -> Result<serde_json::Value, ApiError> {
    let mut m = to_messages(&call.req, up.cfg.upstream_model(&call.req.model))?;
    m.stream = Some(stream);
    serde_json::to_value(&m).map_err(|e| ApiError::internal(e.to_string()))
}

/// A whole answer, relabelled with the gateway's id and the client's model.
async fn chat(up: &Upstream, call: ChatCall) -> Result<ChatCompletion, ApiError> {
    let body = body(up, &call, false)?;
    let m: Message = whole(up, "/messages", &body, &call.client_auth).await?;
    Ok(to_chat_completion(
        &m,
        &call.id,
        &call.req.model,
        call.created,
    ))
}

/// A stream: the upstream's events as chat items.
async fn chat_stream(up: &Arc<Upstream>, call: ChatCall) -> Result<ItemStream, ApiError> {
    let body = body(up, &call, true)?;
    let resp = up
        .request(http::Method::POST, "/messages", &call.client_auth)?
        .json(&body)
        .send()
        .await
        .map_err(|e| transport(up, &e))?;
    if !resp.status().is_success() {
        return Err(error_from(up, resp, &call.client_auth).await);
    }
    let name = up.cfg.name.clone();
    let events = resp.bytes_stream().map(move |r| {
        r.map_err(|e| StreamError(format!("upstream '{name}' failed mid-stream: {e}")))
    });
    Ok(pump(events.boxed(), ChatTranslator::new(), "anthropic"))
}
