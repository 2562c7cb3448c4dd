//! The gateway: an OpenAI-compatible HTTP API in front of Amazon SageMaker
//! endpoints. The only crate of the workspace that knows actix-web.
//!
//! `main` only loads the [`config::Config`], sets up logging and calls
//! [`server::run`]; tests build the same app with [`server::app`].

pub mod config;
pub mod error;
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
