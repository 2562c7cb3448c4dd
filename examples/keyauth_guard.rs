//! Any handler guarded by an API key kept in AWS Secrets Manager, with
//! `keyauth`: the key set is cached for `KEY_TTL_SECS` (default 300), a
//! rotated key works at once (an unknown key triggers one refresh, at most
//! once per `min_refresh_interval`), and a Secrets Manager outage keeps the
//! last good keys serving. Plain hyper here; the guard is one call.
//!
//! ```text
//! SECRET_ID=prod/api-key AWS_REGION=us-east-1 cargo run --example keyauth_guard
//! curl -H 'Authorization: Bearer <key>' localhost:8080/hello
//! ```
//!
//! `LISTEN` sets the address (default `127.0.0.1:8080`); the first line on
//! stdout names the address it listens on. The secret holds one key, a
//! JSON list of keys, or a JSON object whose values are keys.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use keyauth::{KeyAuth, KeyAuthConfig, SecretsManagerKeys};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret_id = std::env::var("SECRET_ID")?;
    let ttl = std::env::var("KEY_TTL_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let auth = Arc::new(KeyAuth::new(
        SecretsManagerKeys::new(aws_sdk_secretsmanager::Client::new(&aws), secret_id),
        KeyAuthConfig {
            ttl: Duration::from_secs(ttl),
            ..KeyAuthConfig::default()
        },
    ));
    let addr = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let auth = Arc::clone(&auth);
        tokio::spawn(async move {
            let svc = service_fn(move |req| guarded(Arc::clone(&auth), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

/// The guard: a missing or wrong key is 401, and the handler never runs.
async fn guarded(
    auth: Arc<KeyAuth>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth.verify_header(header).await {
        // Only the key's id (a hash prefix) is ever shown or logged.
        Ok(id) => Ok(hello(id.as_str())),
        Err(e) => {
            let mut resp = Response::new(Full::new(Bytes::from(format!("{e}\n"))));
            *resp.status_mut() = StatusCode::UNAUTHORIZED;
            Ok(resp)
        }
    }
}

/// The handler being guarded.
fn hello(key_id: &str) -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from(format!("hello, key {key_id}\n"))))
}
