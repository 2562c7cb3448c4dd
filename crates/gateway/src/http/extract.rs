//! What every request brings, extracted once: the key (checked), the
//! caller, the request id, the body (under its limits and deadline, parsed)
//! and the record the middleware opened.

use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, web};
use openai_types::chat::ChatCompletionRequest;
use openai_types::completions::CompletionRequest;
use openai_types::embeddings::EmbeddingRequest;
use serde::de::DeserializeOwned;

use crate::backend::{Caller, Deadlines};
use crate::error::ApiError;
use crate::observe::outcome::{Outcome, note};
use crate::observe::records::RecPatch;
use crate::routing::admission::{Admitted, Ask};
use crate::routing::state::AppState;

/// The client's `Authorization` header, the one place it is read (the API
/// key, the admin key, the metrics token, an upstream's forwarded key).
pub(crate) fn authorization(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// Checks the client's key: its id, `None` when authentication is off.
/// The key is `Authorization: Bearer …`, or, when that header is absent,
/// Anthropic's `x-api-key` (one header read, never both).
pub(crate) async fn authorize(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<keyauth::KeyId>, ApiError> {
    match authorization(req) {
        Some(h) => state.access.verify_header(Some(h)).await,
        None => {
            let key = req.headers().get("x-api-key").and_then(|v| v.to_str().ok());
            state.access.verify_key(key).await
        }
    }
}

/// A JSON body as `T`: 400 with the path of a bad field. Parsed once
/// plainly; only a body that fails is parsed again, tracking the path
/// (which costs on every field).
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid(
            "the request body is empty: send a JSON object",
        ));
    }
    if let Ok(v) = serde_json::from_slice(body) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let v: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::invalid(format!(
                "We could not parse the JSON body of your request: {inner}"
            ))
        } else {
            let err = ApiError::invalid(format!("Invalid request: {inner}"));
            if path == "." { err } else { err.param(path) }
        }
    })?;
    de.end().map_err(|e| {
        ApiError::invalid(format!(
            "We could not parse the JSON body of your request: {e}"
        ))
    })?;
    Ok(v)
}

/// A request's `model`, for its record.
pub(crate) trait Named {
    fn model_name(&self) -> &str;
}

impl Named for ChatCompletionRequest {
    fn model_name(&self) -> &str {
        &self.model
    }
}

impl Named for CompletionRequest {
    fn model_name(&self) -> &str {
        &self.model
    }
}

impl Named for openai_types::responses::CreateResponse {
    fn model_name(&self) -> &str {
        &self.model
    }
}

impl Named for openai_types::rerank::RerankRequest {
    fn model_name(&self) -> &str {
        &self.model
    }
}

impl Named for EmbeddingRequest {
    fn model_name(&self) -> &str {
        &self.model
    }
}

/// An accepted request: checked key, parsed body, its id and record.
#[derive(Debug)]
pub(crate) struct Accepted<T> {
    /// Who asked, when, and the request's record.
    pub meta: RequestMeta,
    /// The parsed body.
    pub r: T,
}

/// What every request brings besides its body, read once: when it
/// arrived, the checked key, the request id, the record the middleware
/// opened, the caller (for upstreams that forward the key, and its
/// deadlines) and the client's address.
#[derive(Debug)]
pub(crate) struct RequestMeta {
    /// When it arrived.
    pub started: Instant,
    /// The client key's id.
    pub key: Option<keyauth::KeyId>,
    /// The request id.
    pub rid: String,
    /// The request's record.
    pub patch: Option<RecPatch>,
    /// Who asked (for upstreams that forward the key).
    pub caller: Caller,
    /// The client's address.
    pub ip: Option<std::net::IpAddr>,
    /// The session the client names (`routing.affinity_header`), when
    /// affinity is on.
    pub session: Option<String>,
}

impl RequestMeta {
    /// The request's meta: arrived at `started`, its key `key` checked.
    pub(crate) fn of(
        req: &HttpRequest,
        state: &AppState,
        started: Instant,
        key: Option<keyauth::KeyId>,
    ) -> Self {
        Self {
            started,
            key,
            rid: request_id(req),
            patch: patch_of(req),
            caller: client_auth(req, state),
            ip: req.peer_addr().map(|a| a.ip()),
            session: session_of(req, state),
        }
    }

    /// What admission needs of it, for `model` with `estimate` prompt
    /// tokens.
    pub(crate) fn ask<'a>(&'a self, model: &'a str, estimate: u64) -> Ask<'a> {
        Ask {
            key: self.key.as_ref(),
            ip: self.ip,
            model,
            estimate,
            affinity: None,
        }
    }

    /// The request's outcome, on `route`, before any candidate serves it.
    pub(crate) fn outcome(&self, route: &'static str, admitted: &Admitted) -> Outcome {
        Outcome {
            key_id: self.key.as_ref().map(|k| k.as_str().to_owned()),
            started: self.started,
            route,
            request_id: self.rid.clone(),
            served: None,
            upstream_time: None,
            patch: self.patch.clone(),
            ticket: admitted.ticket(),
            finish_reason: None,
            affinity: admitted.affinity(),
        }
    }
}

impl<T: Named> Accepted<T> {
    /// What admission needs of it, with `estimate` prompt tokens.
    pub(crate) fn ask(&self, estimate: u64) -> Ask<'_> {
        self.meta.ask(self.r.model_name(), estimate)
    }
}

impl<T> Accepted<T> {
    /// The request's outcome, on `route`, before any candidate serves it.
    pub(crate) fn outcome(&self, route: &'static str, admitted: &Admitted) -> Outcome {
        self.meta.outcome(route, admitted)
    }
}

/// The session a request names, when affinity is on: the configured
/// header's value, bounded (its hash is all that is kept).
fn session_of(req: &HttpRequest, state: &AppState) -> Option<String> {
    let r = &state.config.routing;
    if r.affinity == crate::routing::affinity::AffinityMode::Off {
        return None;
    }
    let v = req
        .headers()
        .get(r.affinity_header.as_str())?
        .to_str()
        .ok()?;
    let v = v.trim();
    (!v.is_empty() && v.len() <= 256).then(|| v.to_owned())
}

/// The first steps of every inference route: the clock starts, the key is
/// checked, the body is read within its limit and parsed, the record notes
/// the key id and model (and the body, when the policy asks).
pub(crate) async fn accept<T: DeserializeOwned + Named>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Accepted<T>, ApiError> {
    receive(req, payload, state).await?.parse()
}

/// A request whose key is checked and whose body is read, not yet parsed
/// (a route that may pass the body on as it came).
#[derive(Debug)]
pub(crate) struct Received {
    /// Who asked, when, and the request's record.
    pub meta: RequestMeta,
    /// The body.
    pub body: bytes::Bytes,
}

/// The key checked and the body read (see [`accept`]).
pub(crate) async fn receive(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Received, ApiError> {
    let started = Instant::now();
    let key = authorize(req, state).await?;
    let body = super::body::read(req, payload, state.config.max_body_bytes, &state.config).await?;
    Ok(received(req, state, started, key, body))
}

/// A request whose body its route read: the record notes the body when the
/// policy asks.
pub(crate) fn received(
    req: &HttpRequest,
    state: &AppState,
    started: Instant,
    key: Option<keyauth::KeyId>,
    body: bytes::Bytes,
) -> Received {
    let meta = RequestMeta::of(req, state, started, key);
    let rc = &state.config.records;
    if let Some(p) = &meta.patch
        && rc.wants_body(
            req.match_pattern().as_deref().unwrap_or(""),
            meta.key.as_ref().map(|k| k.as_str()),
        )
    {
        let mut p = p.0.borrow_mut();
        p.request_body = Some(crate::observe::records::redact_body(
            &body,
            rc.body_max_bytes,
        ));
        p.request_headers = Some(crate::observe::records::redact_headers(
            req.headers()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_bytes())),
        ));
    }
    Received { meta, body }
}

impl Received {
    /// The body parsed as `T`; the record notes the key id and model.
    pub(crate) fn parse<T: DeserializeOwned + Named>(self) -> Result<Accepted<T>, ApiError> {
        let r: T = parse(&self.body)?;
        Ok(self.with(r))
    }

    /// The request as `r`, parsed from its body by the caller.
    pub(crate) fn with<T: Named>(self, r: T) -> Accepted<T> {
        note(&self.meta.patch, |p| {
            p.key_id = self.meta.key.as_ref().map(|k| k.as_str().to_owned());
            p.model = Some(r.model_name().to_owned());
            p.requested_model = Some(r.model_name().to_owned());
        });
        Accepted { meta: self.meta, r }
    }
}

/// The model a request names, standing in for the request once
/// [`Accepted::split`] has taken it out.
#[derive(Debug, Clone)]
pub(crate) struct ModelName(pub String);

impl Named for ModelName {
    fn model_name(&self) -> &str {
        &self.0
    }
}

impl<T: Named> Accepted<T> {
    /// Takes the request out without copying it (a body can be megabytes):
    /// what stays carries the model's name.
    pub(crate) fn split(self) -> (Accepted<ModelName>, T) {
        let name = ModelName(self.r.model_name().to_owned());
        (
            Accepted {
                meta: self.meta,
                r: name,
            },
            self.r,
        )
    }
}

/// The request id the middleware assigned (from `x-request-id` or new).
pub(crate) fn request_id(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

/// The request's record, if records are on.
pub(crate) fn patch_of(req: &HttpRequest) -> Option<RecPatch> {
    req.extensions().get::<RecPatch>().cloned()
}

/// A request's id, in its extensions.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub String);

/// The client's `Authorization` header, for upstreams that forward it.
pub(crate) fn client_auth(req: &HttpRequest, state: &AppState) -> Caller {
    Caller {
        auth: authorization(req).map(str::to_owned),
        request_id: request_id(req),
        deadlines: Deadlines {
            request: Duration::from_secs(state.config.request_timeout_secs),
        },
    }
}
