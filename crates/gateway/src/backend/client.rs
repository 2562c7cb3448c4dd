//! The upstream HTTP client: HTTP/1.1 over hyper's pooled client, TLS by
//! rustls (ring, the Mozilla roots), one per worker that uses it.
//!
//! It replaced `reqwest` on the request path (OpenAI-style upstreams,
//! pass-through, the signed SageMaker transport): a profile of the chat
//! path at saturation put 12 % of the gateway's CPU in reqwest's own layers
//! above hyper (the URL parsed again, with IDNA, by the client and by its
//! redirect layer on every request, the connector and the pool cloned, the
//! retry and redirect futures), for features a proxy's hop does not use (it
//! neither follows redirects nor retries: failover does). Requests here go
//! straight to `hyper_util`'s pool with a `Uri` the caller parsed once.
//!
//! Proxies: when the environment names one (`HTTPS_PROXY`, `HTTP_PROXY`,
//! `ALL_PROXY`, either case) the client is a `reqwest` one, which honours
//! them with `NO_PROXY` exactly as before; the types are the same either way.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};
use http_body::Body as _;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt as _;

/// How a client connects and pools.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The TCP connect deadline.
    pub connect_timeout: Duration,
    /// Idle connections kept per host.
    pub max_idle_per_host: usize,
}

impl Settings {
    /// One of `workers` clients' settings: each keeps its share (at least
    /// one) of `max_idle` idle connections, the whole cap.
    pub fn share(connect_timeout: Duration, max_idle: usize, workers: usize) -> Self {
        Self {
            connect_timeout,
            max_idle_per_host: max_idle.div_ceil(workers.max(1)).max(1),
        }
    }
}

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// An HTTP client (cheap to clone: clones share the pool).
#[derive(Clone, Debug)]
pub struct Client(Transport);

#[derive(Clone, Debug)]
enum Transport {
    /// Shared: a clone is one count (hyper's client is ~340 bytes of
    /// handles).
    Direct(std::sync::Arc<hyper_util::client::legacy::Client<Connector, Body>>),
    /// The environment names a proxy.
    Proxied(reqwest::Client),
}

/// Whether the environment names a proxy for any scheme.
fn proxy_in_env() -> bool {
    [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
}

/// TLS settings shared by every client: ring, TLS 1.2 and 1.3, the Mozilla
/// roots (what `reqwest`'s `rustls-tls` used).
fn tls() -> Result<rustls::ClientConfig, Error> {
    static CONFIG: std::sync::OnceLock<Result<rustls::ClientConfig, String>> =
        std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| Error::new(Kind::Build, e))
}

impl Client {
    /// A client with `s`.
    pub fn new(s: Settings) -> Result<Self, Error> {
        if proxy_in_env() {
            return reqwest::Client::builder()
                .tcp_nodelay(true)
                .redirect(reqwest::redirect::Policy::none())
                .retry(reqwest::retry::never().max_retries_per_request(0))
                .connect_timeout(s.connect_timeout)
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(s.max_idle_per_host)
                .build()
                .map(|c| Self(Transport::Proxied(c)))
                .map_err(|e| Error::new(Kind::Build, e));
        }
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_connect_timeout(Some(s.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls()?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .pool_max_idle_per_host(s.max_idle_per_host)
                .build(https);
        Ok(Self(Transport::Direct(std::sync::Arc::new(client))))
    }

    /// A request to `uri`.
    pub fn request(&self, method: Method, uri: Uri) -> RequestBuilder {
        RequestBuilder {
            client: self.clone(),
            method,
            uri,
            headers: HeaderMap::new(),
            body: Body::Empty,
            timeout: None,
            error: None,
        }
    }
}

/// A request being built; errors surface at [`RequestBuilder::send`].
#[derive(Debug)]
pub struct RequestBuilder {
    client: Client,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    timeout: Option<Duration>,
    error: Option<Error>,
}

impl RequestBuilder {
    /// Adds a header (a second value for a name already set).
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        HeaderValue: TryFrom<V>,
    {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(n), Ok(v)) => {
                self.headers.append(n, v);
            }
            _ => self.fail("a header name or value is not valid"),
        }
        self
    }

    /// `authorization: Bearer <token>`, marked sensitive.
    pub fn bearer_auth(mut self, token: &str) -> Self {
        match HeaderValue::from_str(&format!("Bearer {token}")) {
            Ok(mut v) => {
                v.set_sensitive(true);
                self.headers.insert(http::header::AUTHORIZATION, v);
            }
            Err(_) => self.fail("the upstream's key is not a valid header value"),
        }
        self
    }

    /// Every name in `map` replaces that name's values set so far.
    pub fn headers(mut self, map: HeaderMap) -> Self {
        let mut last: Option<HeaderName> = None;
        for (name, value) in map {
            match name {
                Some(n) => {
                    self.headers.insert(n.clone(), value);
                    last = Some(n);
                }
                None => {
                    if let Some(n) = &last {
                        self.headers.append(n.clone(), value);
                    }
                }
            }
        }
        self
    }

    /// A JSON body (`content-type: application/json` unless set).
    pub fn json<T: serde::Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(v) => {
                self.headers
                    .entry(CONTENT_TYPE)
                    .or_insert(HeaderValue::from_static("application/json"));
                self.body = Body::Full(Some(Bytes::from(v)));
            }
            Err(e) => self.error = Some(Error::new(Kind::Request, e)),
        }
        self
    }

    /// The body.
    pub fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }

    /// A deadline for the answer's head.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    fn fail(&mut self, why: &'static str) {
        self.error.get_or_insert(Error::new(Kind::Request, why));
    }

    /// Sends it: the answer's head, its body to read.
    pub async fn send(self) -> Result<Response, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let sent = self
            .client
            .send(self.method, self.uri, self.headers, self.body);
        match self.timeout {
            None => sent.await,
            Some(d) => tokio::time::timeout(d, sent)
                .await
                .unwrap_or_else(|_| Err(Error::new(Kind::Timeout, "no answer in time"))),
        }
    }
}

impl Client {
    async fn send(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Response, Error> {
        match &self.0 {
            Transport::Direct(c) => {
                let mut req = http::Request::new(body);
                *req.method_mut() = method;
                *req.uri_mut() = uri;
                *req.headers_mut() = headers;
                let resp = c.request(req).await.map_err(|e| {
                    let kind = if e.is_connect() {
                        Kind::Connect
                    } else {
                        Kind::Request
                    };
                    Error::new(kind, e)
                })?;
                let (parts, body) = resp.into_parts();
                Ok(Response {
                    status: parts.status,
                    headers: parts.headers,
                    body: RespBody::Direct(body),
                })
            }
            Transport::Proxied(c) => {
                let url = reqwest::Url::parse(&uri.to_string())
                    .map_err(|e| Error::new(Kind::Request, e))?;
                let mut r = c.request(method, url).headers(headers);
                match body {
                    Body::Empty => {}
                    Body::Full(b) => r = r.body(b.unwrap_or_default()),
                    Body::Stream(s) => r = r.body(reqwest::Body::wrap_stream(s)),
                }
                let resp = r.send().await.map_err(Error::from_reqwest)?;
                Ok(Response {
                    status: resp.status(),
                    headers: resp.headers().clone(),
                    body: RespBody::Proxied(resp),
                })
            }
        }
    }
}

/// A request body.
pub enum Body {
    /// None.
    Empty,
    /// Whole (taken when sent).
    Full(Option<Bytes>),
    /// Streamed as it comes (sent chunked unless a `content-length` is set).
    Stream(BoxStream<'static, Result<Bytes, std::io::Error>>),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("Empty"),
            Self::Full(b) => write!(f, "Full({} bytes)", b.as_ref().map_or(0, Bytes::len)),
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Self::Full(Some(b))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            Self::Empty => Poll::Ready(None),
            Self::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Self::Stream(s) => s.poll_next_unpin(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Empty | Self::Full(None) => true,
            Self::Full(Some(_)) | Self::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Empty | Self::Full(None) => SizeHint::with_exact(0),
            Self::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Self::Stream(_) => SizeHint::default(),
        }
    }
}

/// An answer: its head read, its body to come.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: RespBody,
}

#[derive(Debug)]
enum RespBody {
    Direct(hyper::body::Incoming),
    Proxied(reqwest::Response),
}

impl Response {
    /// Its status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Its headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The next piece of its body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        match &mut self.body {
            RespBody::Direct(b) => std::future::poll_fn(|cx| poll_data(b, cx))
                .await
                .transpose(),
            RespBody::Proxied(r) => r.chunk().await.map_err(Error::from_reqwest),
        }
    }

    /// Its whole body.
    pub async fn bytes(self) -> Result<Bytes, Error> {
        match self.body {
            RespBody::Direct(b) => b
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes)
                .map_err(|e| Error::new(Kind::Body, e)),
            RespBody::Proxied(r) => r.bytes().await.map_err(Error::from_reqwest),
        }
    }

    /// Its body as a stream of pieces (ends after an error).
    pub fn bytes_stream(self) -> BodyStream {
        BodyStream(match self.body {
            RespBody::Direct(b) => Pieces::Direct(Some(b)),
            RespBody::Proxied(r) => Pieces::Proxied(r.bytes_stream().boxed()),
        })
    }
}

/// The next data frame of `body` (trailers skipped); `None` at its end.
fn poll_data(
    body: &mut hyper::body::Incoming,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Bytes, Error>>> {
    loop {
        match std::task::ready!(Pin::new(&mut *body).poll_frame(cx)) {
            None => return Poll::Ready(None),
            Some(Err(e)) => return Poll::Ready(Some(Err(Error::new(Kind::Body, e)))),
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    return Poll::Ready(Some(Ok(d)));
                }
            }
        }
    }
}

/// A response body's pieces, as they come.
pub struct BodyStream(Pieces);

enum Pieces {
    Direct(Option<hyper::body::Incoming>),
    Proxied(BoxStream<'static, reqwest::Result<Bytes>>),
}

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyStream")
    }
}

impl Stream for BodyStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut self.get_mut().0 {
            Pieces::Direct(slot) => {
                let Some(body) = slot else {
                    return Poll::Ready(None);
                };
                let next = std::task::ready!(poll_data(body, cx));
                // Nothing follows an error or the end.
                if !matches!(next, Some(Ok(_))) {
                    *slot = None;
                }
                Poll::Ready(next)
            }
            Pieces::Proxied(s) => s
                .poll_next_unpin(cx)
                .map(|o| o.map(|r| r.map_err(Error::from_reqwest))),
        }
    }
}

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Build,
    Connect,
    Timeout,
    Request,
    Body,
}

/// A request that failed before or while its answer was read.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl Error {
    fn new(kind: Kind, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind,
            source: source.into(),
        }
    }

    fn from_reqwest(e: reqwest::Error) -> Self {
        let kind = if e.is_timeout() {
            Kind::Timeout
        } else if e.is_connect() {
            Kind::Connect
        } else if e.is_body() || e.is_decode() {
            Kind::Body
        } else {
            Kind::Request
        };
        Self::new(kind, e)
    }

    /// A deadline passed.
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::Timeout
    }

    /// No connection could be made.
    pub fn is_connect(&self) -> bool {
        self.kind == Kind::Connect
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.kind {
            Kind::Build => "building the HTTP client failed",
            Kind::Connect => "connecting failed",
            Kind::Timeout => "timed out",
            Kind::Request => "sending the request failed",
            Kind::Body => "reading the answer failed",
        })
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
