//! OpenAI-compatible upstreams (OpenAI, vLLM, llama.cpp, Ollama, One API,
//! another gateway): chat and embeddings translated through our types, with
//! the upstream's own key, headers, renames and timeouts. Upstream streams go
//! through `sm-stream`'s OpenAI dialect, so their chunks are normalized like
//! any other backend's (one id, role once, dense tool indices, usage).

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use http::{Method, Uri};

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use openai_types::chat::ChatCompletion;
use openai_types::completions::Completion;
use openai_types::completions::CompletionRequest;
use openai_types::embeddings::{EmbeddingRequest, EmbeddingResponse};
use openai_types::{ErrorResponse, Extra, StreamOptions};
use sm_stream::{DialectKind, Feed, Translator, TranslatorConfig};

use crate::backend::client::{self, Client, RequestBuilder};
use crate::backend::provider::{Caller, ChatCall, CompletionCall, ItemStream, Provider};
use crate::backend::pump::pump;
use crate::config::{ModelConfig, UpstreamConfig, UpstreamKind};
use crate::error::ApiError;
use crate::observe::redact::Redactor;

/// One upstream: its settings and its HTTP clients (its connect timeout,
/// its connection pools).
#[derive(Debug)]
pub struct Upstream {
    /// Settings.
    pub cfg: UpstreamConfig,
    /// One client per thread that uses it: an actix worker's upstream
    /// connections are then driven by that worker's own runtime, so reading
    /// a stream never wakes another thread per event.
    clients: std::sync::Mutex<Vec<(std::thread::ThreadId, Client)>>,
    /// `base_url`, parsed: every request URL must stay under its path.
    base: reqwest::Url,
    /// The URLs of the inference routes, checked and parsed once (a parse
    /// per request was ~2 % of a request's CPU).
    fixed: Vec<(&'static str, Uri)>,
    /// Masks keys in what it says back.
    redactor: Arc<Redactor>,
}

impl Upstream {
    /// Checks the settings (the first client is built here, so a bad one
    /// fails at load, not on a request).
    pub fn new(cfg: UpstreamConfig, redactor: Arc<Redactor>) -> anyhow::Result<Self> {
        let client = build_client(&cfg)?;
        let base = reqwest::Url::parse(cfg.base_url.trim_end_matches('/'))?;
        let mut up = Self {
            cfg,
            clients: std::sync::Mutex::new(vec![(std::thread::current().id(), client)]),
            base,
            fixed: Vec::new(),
            redactor,
        };
        up.fixed = FIXED_PATHS
            .iter()
            .filter_map(|p| Some((*p, up.parse_url(p).ok()?)))
            .collect();
        Ok(up)
    }

    /// This thread's client.
    pub fn client(&self) -> Client {
        let me = std::thread::current().id();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = clients.iter().find(|(t, _)| *t == me) {
            return c.clone();
        }
        // Settings were checked in `new`; the fallback shares a client.
        let c = build_client(&self.cfg).unwrap_or_else(|_| clients[0].1.clone());
        clients.push((me, c.clone()));
        c
    }

    /// `base_url` + `path` (`path` starts with `/` and was checked by
    /// [`openai_types::path::check`] if a client chose it). The URL
    /// parser resolves dot segments, so the result is checked again: it must
    /// keep the base's origin and stay under its path, or the request is
    /// refused.
    pub fn url(&self, path: &str) -> Result<Uri, ApiError> {
        match self.fixed.iter().find(|(p, _)| *p == path) {
            Some((_, u)) => Ok(u.clone()),
            None => self.parse_url(path),
        }
    }

    fn parse_url(&self, path: &str) -> Result<Uri, ApiError> {
        let refused = || ApiError::invalid("The request path is not allowed").code("invalid_path");
        let url = reqwest::Url::parse(&format!(
            "{}{path}",
            self.base.as_str().trim_end_matches('/')
        ))
        .map_err(|_| refused())?;
        let base_path = self.base.path().trim_end_matches('/');
        let under = url
            .path()
            .strip_prefix(base_path)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
        if url.origin() != self.base.origin() || !under {
            return Err(refused());
        }
        Uri::try_from(url.as_str()).map_err(|_| refused())
    }

    /// `text` with every key the gateway knows, and the caller's own, masked.
    pub fn scrub(&self, text: &str, caller: Option<&Caller>) -> String {
        self.redactor
            .scrub(text, caller.and_then(|c| c.auth.as_deref()))
            .into_owned()
    }

    /// An operator's test: the upstream answers its model list (`GET
    /// /models`) within 10 s. Its status, or the error a request would
    /// have seen.
    pub(crate) async fn probe(&self, caller: &Caller) -> Result<u16, ApiError> {
        let sent = self
            .request(Method::GET, "/models", caller)?
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
            Ok(r) => Err(error_from(self, r, caller).await),
            Err(e) => Err(transport(self, &e)),
        }
    }

    /// A request with the upstream's key (or the client's, forwarded) and
    /// its extra headers.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        caller: &Caller,
    ) -> Result<RequestBuilder, ApiError> {
        let mut r = self.client().request(method, self.url(path)?);
        if self.cfg.kind == UpstreamKind::Anthropic {
            r = r.header("anthropic-version", ANTHROPIC_VERSION);
        }
        if let Some(k) = &self.cfg.api_key {
            r = match self.cfg.kind {
                UpstreamKind::Openai => r.bearer_auth(&k.0),
                UpstreamKind::Anthropic => r.header("x-api-key", &k.0),
            };
        } else if self.cfg.forward_client_key
            && let Some(a) = &caller.auth
        {
            r = r.header(http::header::AUTHORIZATION, a.as_str());
        }
        if !caller.request_id.is_empty() {
            r = r.header("x-request-id", caller.request_id.as_str());
        }
        for (k, v) in &self.cfg.headers {
            r = r.header(k.as_str(), v.as_str());
        }
        Ok(r)
    }
}

/// The Messages API version sent to `anthropic` upstreams (a client's own
/// `anthropic-version` replaces it on pass-through).
pub(crate) const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The paths of the routes the gateway calls itself.
const FIXED_PATHS: [&str; 5] = [
    "/messages",
    "/chat/completions",
    "/completions",
    "/embeddings",
    "/models",
];

/// The provider for upstream-served models (the upstream is the target).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OpenAi;

/// A client with the upstream's settings. `max_idle_connections` is the
/// upstream's whole cap: each worker's client keeps its share.
fn build_client(cfg: &UpstreamConfig) -> Result<Client, client::Error> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    Client::new(client::Settings::share(
        Duration::from_secs(cfg.timeouts.connect_secs),
        cfg.max_idle_connections,
        workers,
    ))
}

/// A transport failure: connect errors and timeouts are marked so the router
/// moves on.
pub(crate) fn transport(up: &Upstream, e: &client::Error) -> ApiError {
    if e.is_timeout() {
        return timeout(up, "answer");
    }
    let s = up.scrub(&crate::error::error_chain(e), None);
    ApiError::unreachable(format!("Could not reach upstream '{}': {s}", up.cfg.name))
}

/// The answer's body broke off after its head: the upstream's fault, not a
/// connection that never opened.
fn cut(up: &Upstream, e: &client::Error) -> ApiError {
    if e.is_timeout() {
        return timeout(up, "answer");
    }
    ApiError::upstream(
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        format!("Upstream '{}' broke off its answer", up.cfg.name),
    )
    .code("upstream_error")
}

fn timeout(up: &Upstream, what: &str) -> ApiError {
    ApiError::upstream_timeout(format!("Upstream '{}' did not {what} in time", up.cfg.name))
}

/// An upstream's error answer: its OpenAI envelope kept where it sent one,
/// its status kept for 4xx (the client's fault) and 429, 502 for 5xx.
/// Every key the gateway knows, and the caller's, is masked in what the
/// upstream said.
pub(crate) async fn error_from(up: &Upstream, resp: client::Response, caller: &Caller) -> ApiError {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.bytes().await.unwrap_or_default();
    let parsed: Option<ErrorResponse> =
        serde_json::from_slice(&body)
            .ok()
            .map(|mut p: ErrorResponse| {
                p.error.message = up.scrub(&p.error.message, Some(caller));
                for f in [&mut p.error.param, &mut p.error.code]
                    .into_iter()
                    .flatten()
                {
                    *f = up.scrub(f, Some(caller));
                }
                p
            });
    let http = if (400..500).contains(&status) {
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY)
    } else {
        StatusCode::BAD_GATEWAY
    };
    let mut e = match parsed {
        Some(p) => ApiError::from_upstream(http, p, "upstream_error"),
        None => ApiError::new(
            http,
            if status == 429 {
                "rate_limit_error"
            } else if status < 500 {
                "invalid_request_error"
            } else {
                "server_error"
            },
            "upstream_error",
            format!(
                "Upstream '{}' answered {status}: {}",
                up.cfg.name,
                up.scrub(
                    &String::from_utf8_lossy(&body[..body.len().min(512)]),
                    Some(caller)
                )
            ),
        )
        .code(if status == 429 {
            "rate_limit_exceeded"
        } else {
            "upstream_error"
        }),
    };
    e.upstream_status = Some(status);
    e.retry_after = retry_after;
    e
}

/// POSTs JSON and reads the JSON answer: transport errors, error statuses
/// and unreadable answers mapped for the router.
async fn post_json<T: serde::de::DeserializeOwned, B: serde::Serialize + ?Sized>(
    up: &Upstream,
    path: &str,
    body: &B,
    caller: &Caller,
) -> Result<T, ApiError> {
    let resp = up
        .request(Method::POST, path, caller)?
        .json(body)
        .send()
        .await
        .map_err(|e| transport(up, &e))?;
    if !resp.status().is_success() {
        return Err(error_from(up, resp, caller).await);
    }
    let bytes = resp.bytes().await.map_err(|e| cut(up, &e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::upstream(
            StatusCode::BAD_GATEWAY,
            "bad_upstream_response",
            format!(
                "Upstream '{}' sent an unreadable answer to {path}: {e}",
                up.cfg.name
            ),
        )
        .code("bad_upstream_response")
    })
}

/// A chat or legacy completion request, as its upstream takes it.
trait Streamable {
    /// Its model, `stream` and `stream_options`.
    fn parts(&mut self) -> (&mut String, &mut Option<bool>, &mut Option<StreamOptions>);
}

impl Streamable for openai_types::chat::ChatCompletionRequest {
    fn parts(&mut self) -> (&mut String, &mut Option<bool>, &mut Option<StreamOptions>) {
        (&mut self.model, &mut self.stream, &mut self.stream_options)
    }
}

impl Streamable for CompletionRequest {
    fn parts(&mut self) -> (&mut String, &mut Option<bool>, &mut Option<StreamOptions>) {
        (&mut self.model, &mut self.stream, &mut self.stream_options)
    }
}

/// `req` readied for the upstream in place (serialized as it is, with no
/// `serde_json::Value` tree in between): the upstream's name for its model,
/// and streamed with usage always asked for (the route forwards usage only
/// when the client asked), or not streamed. Returns the client's model name.
fn ready<R: Streamable>(up: &Upstream, req: &mut R, stream: bool) -> String {
    let (model, streamed, options) = req.parts();
    let renamed = up.cfg.upstream_model(model).to_owned();
    let client_model = std::mem::replace(model, renamed);
    if stream {
        *streamed = Some(true);
        *options = Some(StreamOptions {
            include_usage: Some(true),
            extra: Extra::new(),
        });
    } else {
        *streamed = None;
        *options = None;
    }
    client_model
}

/// A streamed chat or legacy completion, its chunks labelled with `(id,
/// created, prompt estimate)` by the translator.
async fn streamed<R: Streamable + serde::Serialize + Send>(
    up: &Arc<Upstream>,
    path: &str,
    mut req: R,
    (id, created, estimate): (&str, u64, u64),
    caller: Caller,
) -> Result<ItemStream, ApiError> {
    let model = ready(up, &mut req, true);
    let tcfg = translator(id, &model, created, estimate);
    open_stream(Arc::clone(up), path, req, tcfg, caller).await
}

/// The JSON body sent upstream: the request with the upstream's model name.
fn body_for<T: serde::Serialize>(
    up: &Upstream,
    req: &T,
    model: &str,
    stream: Option<bool>,
) -> Result<serde_json::Value, ApiError> {
    let mut v = serde_json::to_value(req).map_err(|e| ApiError::internal(e.to_string()))?;
    v["model"] = up.cfg.upstream_model(model).into();
    match stream {
        Some(true) => {
            v["stream"] = true.into();
            // Usage is always asked for: the route forwards it only when the
            // client did.
            let mut opts = Extra::new();
            opts.insert("include_usage".into(), true.into());
            v["stream_options"] = serde_json::Value::Object(opts);
        }
        Some(false) => {
            if let Some(o) = v.as_object_mut() {
                o.remove("stream");
                o.remove("stream_options");
            }
        }
        None => {}
    }
    Ok(v)
}

impl OpenAi {
    async fn chat(&self, up: &Upstream, mut call: ChatCall) -> Result<ChatCompletion, ApiError> {
        let model = ready(up, &mut call.req, false);
        let mut c: ChatCompletion =
            whole(up, "/chat/completions", &call.req, &call.client_auth).await?;
        c.model = model;
        c.id = call.id;
        Ok(c)
    }

    async fn chat_stream(
        &self,
        up: &Arc<Upstream>,
        call: ChatCall,
    ) -> Result<ItemStream, ApiError> {
        let at = (call.id.as_str(), call.created, call.prompt_estimate);
        streamed(up, "/chat/completions", call.req, at, call.client_auth).await
    }

    async fn embeddings(
        &self,
        up: &Upstream,
        req: EmbeddingRequest,
        client_auth: Caller,
    ) -> Result<EmbeddingResponse, ApiError> {
        let body = body_for(up, &req, &req.model, None)?;
        let mut out: EmbeddingResponse = whole(up, "/embeddings", &body, &client_auth).await?;
        out.model = req.model;
        Ok(out)
    }

    /// A legacy completion, relabelled with the gateway's id and the
    /// client's model name.
    async fn completion(
        &self,
        up: &Upstream,
        mut call: CompletionCall,
    ) -> Result<Completion, ApiError> {
        let model = ready(up, &mut call.req, false);
        let mut c: Completion = whole(up, "/completions", &call.req, &call.client_auth).await?;
        c.id = call.id;
        c.model = model;
        Ok(c)
    }

    /// A streamed legacy completion, normalized by the translator.
    async fn completion_stream(
        &self,
        up: &Arc<Upstream>,
        call: CompletionCall,
    ) -> Result<ItemStream, ApiError> {
        let at = (call.id.as_str(), call.created, call.prompt_estimate);
        streamed(up, "/completions", call.req, at, call.client_auth).await
    }
}

/// A whole answer within the upstream's deadline for one.
pub(super) async fn whole<T: serde::de::DeserializeOwned, B: serde::Serialize + ?Sized>(
    up: &Upstream,
    path: &str,
    body: &B,
    caller: &Caller,
) -> Result<T, ApiError> {
    tokio::time::timeout(whole_answer(up), post_json(up, path, body, caller))
        .await
        .map_err(|_| timeout(up, "answer"))?
}

/// The translator of an upstream stream, labelled with the gateway's id.
fn translator(id: &str, model: &str, created: u64, prompt_estimate: u64) -> TranslatorConfig {
    TranslatorConfig {
        id: id.to_owned(),
        model: model.to_owned(),
        created,
        prompt_tokens_estimate: prompt_estimate,
        ..TranslatorConfig::default()
    }
}

/// How long a whole (non-streaming) answer may take: its first byte is its
/// last.
fn whole_answer(up: &Upstream) -> Duration {
    let t = &up.cfg.timeouts;
    Duration::from_secs(t.first_byte_secs.min(t.total_secs))
}

/// Sends a streaming request and translates its SSE. Its deadlines are
/// owned elsewhere: the head's by failover (the upstream's
/// `stream_first_byte_secs`), idle and total by the SSE response
/// ([`crate::backend::Model::stream_limits`]).
async fn open_stream<B: serde::Serialize>(
    up: Arc<Upstream>,
    path: &str,
    body: B,
    mut tcfg: TranslatorConfig,
    client_auth: Caller,
) -> Result<ItemStream, ApiError> {
    let resp = up
        .request(Method::POST, path, &client_auth)?
        .json(&body)
        .send()
        .await
        .map_err(|e| transport(&up, &e))?;
    if !resp.status().is_success() {
        return Err(error_from(&up, resp, &client_auth).await);
    }
    tcfg.dialect = DialectKind::OpenAiChat;
    tcfg.include_usage = true;
    let name = up.cfg.name.clone();
    let body = resp.bytes_stream().map(move |r| {
        r.map(Feed::Payload).map_err(|e| {
            sm_stream::Error::Truncated(format!("upstream '{name}' failed mid-stream: {e}"))
        })
    });
    Ok(pump(body.boxed(), Translator::new(tcfg), "openai"))
}

impl Provider for OpenAi {
    type Target = Arc<Upstream>;

    /// Rerank on an upstream that serves it (`POST {base}/rerank`, the
    /// Cohere/Jina shape), relabelled with the gateway's id and the
    /// client's model name.
    fn rerank<'a>(
        &'a self,
        _: &'a ModelConfig,
        up: &'a Arc<Upstream>,
        call: crate::backend::provider::RerankCall,
    ) -> crate::backend::provider::RerankAnswer<'a> {
        async move {
            let body = body_for(up, &call.req, &call.req.model, None)?;
            let mut out: openai_types::rerank::RerankResponse =
                whole(up, "/rerank", &body, &call.caller).await?;
            out.id = call.id;
            out.model = call.req.model;
            Ok(out)
        }
        .boxed()
    }

    fn chat<'a>(
        &'a self,
        _: &'a ModelConfig,
        up: &'a Arc<Upstream>,
        call: ChatCall,
    ) -> BoxFuture<'a, Result<ChatCompletion, ApiError>> {
        OpenAi::chat(self, up, call).boxed()
    }

    fn chat_stream<'a>(
        &'a self,
        _: &'a ModelConfig,
        up: &'a Arc<Upstream>,
        call: ChatCall,
    ) -> BoxFuture<'a, Result<ItemStream, ApiError>> {
        OpenAi::chat_stream(self, up, call).boxed()
    }

    fn takes_completion(&self, _: &CompletionRequest) -> Result<(), ApiError> {
        Ok(())
    }

    fn completion<'a>(
        &'a self,
        _: &'a ModelConfig,
        up: &'a Arc<Upstream>,
        call: CompletionCall,
    ) -> BoxFuture<'a, Result<Completion, ApiError>> {
        OpenAi::completion(self, up, call).boxed()
    }

    fn completion_stream<'a>(
        &'a self,
        _: &'a ModelConfig,
        up: &'a Arc<Upstream>,
        call: CompletionCall,
    ) -> BoxFuture<'a, Result<ItemStream, ApiError>> {
        OpenAi::completion_stream(self, up, call).boxed()
    }

    fn embeddings<'a>(
        &'a self,
        _: &'a ModelConfig,
        up: &'a Arc<Upstream>,
        req: EmbeddingRequest,
        client_auth: Caller,
    ) -> BoxFuture<'a, Result<EmbeddingResponse, ApiError>> {
        OpenAi::embeddings(self, up, req, client_auth).boxed()
    }
}
