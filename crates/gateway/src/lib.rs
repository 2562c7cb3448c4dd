//! The gateway: an OpenAI-compatible HTTP API in front of Amazon SageMaker
//! endpoints. The only crate of the workspace that knows actix-web.
//!
//! `main` only loads the [`config::Config`], sets up logging and calls
//! [`server::run`]; tests build the same app with [`server::app`].

pub mod alerts;
pub mod bedrock;
pub mod config;
pub mod error;
pub mod images;
pub mod metrics;
pub mod openai;
pub mod passthrough;
pub mod provider;
pub mod records;
pub mod router;
pub mod routes;
pub mod sagemaker;
pub mod server;
pub mod shape;
pub mod state;
pub mod template;

use config::LogFormat;

/// Installs the tracing subscriber (JSON or text, filtered by `RUST_LOG`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// `GET /ping` on `127.0.0.1:port` with plain std I/O; `Ok` on a 200.
pub fn healthcheck(port: u16, timeout: std::time::Duration) -> Result<(), String> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).map_err(|e| e.to_string())?;
    if head.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!(
            "unexpected answer: {}",
            String::from_utf8_lossy(&head)
        ))
    }
}
