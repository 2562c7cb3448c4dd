//! Building the state and the app, and running the server.

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, web};
use anyhow::Context;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use keyauth::{KeyAuth, KeyAuthConfig, SecretsManagerKeys};

use crate::backend::{Backends, aws};
use crate::config::Config;
use crate::http;
use std::path::PathBuf;

use crate::routing::state::{AppState, Handle};

/// The AWS configuration: loaded (region and credential chains) only when
/// something configured calls AWS; otherwise a bare one, whose clients fail
/// at their first call (a reload that adds the first AWS model says it
/// needs a restart).
async fn aws_config(config: &Config) -> aws_config::SdkConfig {
    if !config.needs_aws() {
        return aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(aws::https_client())
            .build();
    }
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(aws::https_client())
        // Streams have the gateway's own first-byte and idle timeouts, which
        // end them with an error event; the SDK's throughput monitor would
        // only add a timer to every request.
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .retry_config(RetryConfig::standard().with_max_attempts(config.aws.max_attempts.max(1)))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(config.aws.connect_timeout_secs))
                .build(),
        );
    if let Some(r) = &config.aws.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(u) = &config.aws.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    loader.load().await
}

/// Builds the AWS clients, the key cache (loading keys once) and the model
/// registry.
pub async fn build_state(config: Config) -> anyhow::Result<(Handle, aws_config::SdkConfig)> {
    let sdk = aws_config(&config).await;
    let workers = config
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let backends = Backends::from_config(&sdk, &config, workers)?;
    if config.auth.disabled {
        tracing::warn!("authentication is disabled (AUTH_DISABLED): every request is served");
    }
    // Keys from the file are checked by `Access`, rebuilt on reload; only
    // Secrets Manager's keys need a cache that lives across reloads.
    let auth = match (&config.auth.secret_id, config.auth.disabled) {
        (Some(id), false) => {
            let auth = Arc::new(KeyAuth::new(
                SecretsManagerKeys::new(aws_sdk_secretsmanager::Client::new(&sdk), id.clone()),
                KeyAuthConfig {
                    ttl: Duration::from_secs(config.auth.cache_ttl_secs),
                    min_refresh_interval: Duration::from_secs(
                        config.auth.refresh_min_interval_secs,
                    ),
                },
            ));
            if let Err(e) = auth.load().await {
                tracing::error!(error = %e, "API keys could not be loaded; /health reports unavailable until they are");
            }
            Some(auth)
        }
        _ => None,
    };
    let discover = config
        .bedrock
        .discover_models
        .then(|| Duration::from_secs(config.bedrock.discovery_ttl_secs.max(1)));
    let recorder = if config.records.enabled {
        let r =
            crate::observe::records::Recorder::start(&config.records.url.0, config.records.queue)
                .await
                .context("opening the request-record store (records.url)")?;
        Some(r)
    } else {
        None
    };
    let alerts = crate::observe::alerts::Alerter::start(config.alerts.clone());
    if let (Some(a), Some(k)) = (&alerts, &auth) {
        // Key-source failures: checked every 15 s, alerted once per interval.
        let (a, k) = (a.clone(), Arc::clone(k));
        tokio::spawn(async move {
            let mut seen = k.status().failures;
            loop {
                tokio::time::sleep(Duration::from_secs(15)).await;
                let s = k.status();
                if s.failures > seen {
                    a.emit(
                        "key_source_failed",
                        &s.source,
                        s.last_error
                            .clone()
                            .unwrap_or_else(|| "fetch failed".into()),
                    );
                }
                seen = s.failures;
            }
        });
    }
    let limiter = match &config.rate_limits.redis_url {
        Some(url) => crate::keys::limits::Limiter::redis(&url.0)
            .context("rate_limits.redis_url is not a Redis URL")?,
        None => crate::keys::limits::Limiter::local(),
    };
    let stored = match &recorder {
        Some(r) => Some(
            crate::keys::KeyStore::open(r.pool.clone(), limiter)
                .await
                .context("opening the key store (records.url)")?,
        ),
        None => None,
    };
    let sources = crate::routing::state::KeySources {
        secrets: auth,
        stored,
    };
    let state = AppState::new(config, sources, alerts)?;
    if let Some(ttl) = discover {
        // Listed now and every TTL in the background: never on the request path.
        state
            .catalog
            .spawn_refresh(aws_sdk_bedrock::Client::new(&sdk), ttl);
    }
    Ok((Handle::new(state, backends, recorder), sdk))
}

/// The application: the same function serves `main` and the tests.
pub fn app(
    state: web::Data<Handle>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .wrap(actix_web::middleware::from_fn(observe))
        .configure(http::configure)
        .default_service(web::to(http::fallback))
}

/// A request id: the client's `x-request-id` when it is a sane token,
/// else a new one.
fn request_id_of(req: &ServiceRequest) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| crate::ids::new_id("req"))
}

/// Every request: its id (kept in the extensions, on the log span and in the
/// `x-request-id` response header) and the HTTP metrics by route pattern.
type Observed =
    actix_web::body::EitherBody<crate::observe::records::RecordingBody, actix_web::body::BoxBody>;

async fn observe(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<Observed>, actix_web::Error> {
    use actix_web::HttpMessage;
    use tracing::Instrument;
    let rid = request_id_of(&req);
    req.extensions_mut()
        .insert(http::extract::RequestId(rid.clone()));
    let t0 = std::time::Instant::now();
    let path = req.path();
    let recorder = req
        .app_data::<web::Data<Handle>>()
        .and_then(|h| h.recorder.clone())
        .filter(|_| {
            (path.starts_with("/v1/") || path.starts_with("/admin/")) && path != "/v1/metrics"
        });
    let patch = recorder.as_ref().map(|_| {
        let p = crate::observe::records::RecPatch(std::rc::Rc::new(std::cell::RefCell::new(
            crate::observe::records::Record {
                request_id: rid.clone(),
                ts_ms: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
                    .unwrap_or(0),
                client_ip: req.peer_addr().map(|a| a.ip().to_string()),
                ..Default::default()
            },
        )));
        req.extensions_mut().insert(p.clone());
        p
    });
    let span = tracing::info_span!("http", request_id = %rid);
    // Dropped unanswered when the client leaves first (the dispatcher drops
    // the request's future on the connection's EOF: half-closed
    // connections are not allowed): the request is still counted,
    // recorded and logged, as 499.
    let mut abandoned = Abandoned {
        route: Some(route_label(req.path())),
        rid: rid.clone(),
        t0,
        record: recorder.clone().zip(patch.clone()),
    };
    let res = next.call(req).instrument(span).await;
    abandoned.route = None;
    let mut res = res?;
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&rid) {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-request-id"),
            v,
        );
    }
    let route = res.request().match_pattern().unwrap_or_else(|| {
        if res.request().path().starts_with("/v1/") {
            "passthrough".into()
        } else {
            "unmatched".into()
        }
    });
    let m = &*crate::observe::metrics::METRICS;
    m.http_requests
        .with_label_values(&[
            route.as_str(),
            crate::observe::metrics::class(res.status().as_u16()),
        ])
        .inc();
    m.http_duration
        .with_label_values(&[route.as_str()])
        .observe(t0.elapsed().as_secs_f64());
    let (Some(recorder), Some(patch)) = (recorder, patch) else {
        return Ok(res.map_into_boxed_body().map_into_right_body());
    };
    {
        let mut r = patch.0.borrow_mut();
        r.route = route;
        r.status = i64::from(res.status().as_u16());
        if r.error.is_none()
            && let Some(e) = res.response().error()
        {
            r.error = Some(
                e.as_error::<crate::error::ApiError>()
                    .map_or("error", |a| a.label)
                    .to_owned(),
            );
        }
    }
    Ok(res
        .map_into_boxed_body()
        .map_body(|_, b| crate::observe::records::RecordingBody::new(b, patch, recorder, t0))
        .map_into_left_body())
}

/// A request whose future may be dropped before it has an answer.
struct Abandoned {
    /// The request's route as a label (`None` once answered). The request
    /// itself cannot be kept: actix requires it unshared while routing.
    route: Option<&'static str>,
    rid: String,
    t0: std::time::Instant,
    record: Option<(
        crate::observe::records::Recorder,
        crate::observe::records::RecPatch,
    )>,
}

/// A request path as a bounded label: the API routes by name, other
/// `/v1/*` paths as `passthrough`, anything else `other`.
fn route_label(path: &str) -> &'static str {
    const ROUTES: &[&str] = &[
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/rerank",
        "/v1/responses",
        "/v1/models",
    ];
    match ROUTES.iter().find(|r| **r == path) {
        Some(r) => r,
        None if path.starts_with("/v1/") => "passthrough",
        None => "other",
    }
}

/// nginx's status for a client that closed the connection first.
const CLIENT_CLOSED: u16 = 499;

impl Drop for Abandoned {
    fn drop(&mut self) {
        let Some(route) = self.route.take() else {
            return;
        };
        let m = &*crate::observe::metrics::METRICS;
        m.http_requests
            .with_label_values(&[route, crate::observe::metrics::class(CLIENT_CLOSED)])
            .inc();
        m.http_duration
            .with_label_values(&[route])
            .observe(self.t0.elapsed().as_secs_f64());
        tracing::info!(
            request_id = %self.rid,
            route = %route,
            status = CLIENT_CLOSED,
            duration_ms = self.t0.elapsed().as_millis() as u64,
            "client left before the answer; upstream call dropped"
        );
        if let Some((recorder, patch)) = self.record.take() {
            // Sent once, here: moved out of its cell, not copied.
            let mut r = std::mem::take(&mut *patch.0.borrow_mut());
            r.route = route.to_owned();
            r.status = i64::from(CLIENT_CLOSED);
            r.interrupted = true;
            r.error.get_or_insert_with(|| "client_closed".to_owned());
            r.duration_ms = i64::try_from(self.t0.elapsed().as_millis()).unwrap_or(i64::MAX);
            recorder.record(r);
        }
    }
}

/// Reloads on SIGHUP and when the config file changes (checked every 2 s):
/// an invalid config is refused with its error and the running one stays.
fn spawn_reload(handle: Handle, path: Option<PathBuf>) {
    // Installed now, before the listener opens: a SIGHUP that comes early
    // must not find the default action (exit).
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP reload unavailable");
            None
        }
    };
    tokio::spawn(async move {
        let mtime = |p: &Option<PathBuf>| {
            p.as_ref()
                .and_then(|p| std::fs::metadata(p).ok())
                .and_then(|m| m.modified().ok())
        };
        let mut seen = mtime(&path);
        loop {
            let why = tokio::select! {
                _ = async {
                    match hup.as_mut() {
                        Some(h) => { h.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => "SIGHUP",
                _ = tokio::time::sleep(Duration::from_secs(2)) => {
                    let now = mtime(&path);
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    "file change"
                }
            };
            let loaded = Config::load(path.as_deref(), &|k| std::env::var(k).ok());
            match loaded.and_then(|c| handle.reload(c)) {
                Ok(()) => tracing::info!(trigger = why, "configuration reloaded"),
                Err(e) => tracing::error!(
                    trigger = why,
                    key = %e.key,
                    reason = %e.reason,
                    "configuration reload refused; the running configuration stays"
                ),
            }
        }
    });
}

/// Connections waiting to be accepted, at most: a burst of new
/// connections queues instead of waiting out a SYN retry (a second and
/// more). std's `bind` listens with 128; nginx 511, actix's own 2048.
const BACKLOG: i32 = 2048;

/// The listener on `listen` (the first address it resolves to), with
/// [`BACKLOG`].
pub(crate) fn bind(listen: &str) -> std::io::Result<std::net::TcpListener> {
    use std::net::ToSocketAddrs;
    let addr = listen.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to listen on")
    })?;
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    Ok(s.into())
}

/// Binds and runs until SIGTERM or SIGINT; then stops accepting, lets
/// in-flight requests and streams finish for up to `shutdown_timeout_secs`,
/// and returns. `path` is the config file, watched for reloads.
pub async fn run(config: Config, path: Option<PathBuf>) -> anyhow::Result<()> {
    let listen = config.listen.clone();
    let workers = config.workers;
    let shutdown = config.shutdown_timeout_secs;
    let (handle, sdk) = build_state(config).await?;
    spawn_reload(handle.clone(), path);
    let recorder = handle.recorder.clone();
    let listener = bind(&listen).with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr().context("the listener's address")?;
    let mut builder = actix_server::Server::build().shutdown_timeout(shutdown);
    if let Some(w) = workers {
        builder = builder.workers(w);
    }
    let closing = builder.graceful_shutdown_signal();
    let server = builder
        .listen("gateway", listener, move || {
            // AWS clients per worker: a worker's upstream connections are
            // then driven by its own runtime, with no cross-thread wake-ups.
            let h = handle.with_backends(handle.backends.for_worker(&sdk));
            let closing = closing.clone();
            // What actix-web's `HttpServer` builds, over a connection that
            // gives actix's own bare error answers the OpenAI envelope.
            let http = actix_http::HttpService::build()
                .graceful_shutdown_signal(move || {
                    let closing = closing.clone();
                    async move { closing.notified().await }
                })
                .client_request_timeout(Duration::from_secs(5))
                .client_disconnect_timeout(Duration::from_secs(1))
                // A client's EOF ends the connection at once, dropping the
                // request's future and with it the upstream call (HTTP/1.1
                // clients do not half-close while awaiting an answer).
                .h1_allow_half_closed(false)
                .local_addr(addr)
                .finish(actix_service::map_config(
                    actix_service::IntoServiceFactory::into_factory(app(web::Data::new(h))),
                    |_| actix_web::dev::AppConfig::default(),
                ));
            use actix_service::ServiceFactoryExt as _;
            actix_service::fn_service(|io: actix_web::rt::net::TcpStream| async move {
                // One write per whole response: never held for a delayed ACK.
                let _ = io.set_nodelay(true);
                let peer = io.peer_addr().ok();
                Ok::<_, actix_http::error::DispatchError>((
                    crate::http::conn::Conn::new(io),
                    actix_http::Protocol::Http1,
                    peer,
                ))
            })
            .and_then(http)
        })
        .with_context(|| format!("serving {listen}"))?
        .run();
    tracing::info!(%listen, "gateway listening");
    server.await.context("server")?;
    if let Some(r) = recorder {
        // Every request finished above; write what they recorded.
        if tokio::time::timeout(Duration::from_secs(30), r.flush())
            .await
            .is_err()
        {
            tracing::error!("request records could not be flushed within 30 s");
        }
    }
    tracing::info!("gateway stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The listen queue holds a burst: 600 connections complete their
    /// handshake with nobody accepting (with std's 128 the rest would wait
    /// out SYN retries).
    #[test]
    fn the_listener_queues_a_burst_of_connections() {
        let listener = super::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let conns: Vec<std::net::TcpStream> = (0..600)
            .map(|i| {
                std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3))
                    .unwrap_or_else(|e| panic!("connection {i}: {e}"))
            })
            .collect();
        assert_eq!(conns.len(), 600);
    }
}
