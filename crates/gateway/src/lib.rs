//! The gateway: an OpenAI-compatible HTTP API in front of Amazon SageMaker
//! endpoints, Amazon Bedrock models and OpenAI-style upstreams. The only
//! crate of the workspace that knows actix-web.
//!
//! `main` parses the command line (the `report` and `keys` subcommands,
//! `--check`, `--healthcheck`), loads the [`config::Config`], sets up
//! logging and calls [`server::run`]. Only what `main` and the tests use is
//! public; every other module is crate-private.

pub mod backend;
pub mod config;
pub mod error;
pub(crate) mod http;
pub mod ids;
pub(crate) mod keys;
pub mod observe;
pub mod report;
pub(crate) mod routing;
pub mod server;

use config::LogFormat;

/// What must outlive the server: the OTLP trace pipeline and the log
/// lines still gathered, both flushed on drop.
#[derive(Debug, Default)]
pub struct Telemetry {
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    logs: Option<observe::logwriter::LogGuard>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.traces.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("OTLP traces could not be flushed: {e}");
        }
        drop(self.logs.take());
    }
}

/// Installs the tracing subscriber (JSON or text, filtered by `RUST_LOG`)
/// and, when `OTEL_EXPORTER_OTLP_ENDPOINT` or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, OpenTelemetry traces over
/// OTLP/HTTP (protobuf): every request's span with its request id.
pub fn init_logging(format: LogFormat) -> Telemetry {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let otlp = [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()));
    let traces = if otlp {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
        {
            Ok(exporter) => Some(
                opentelemetry_sdk::trace::SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(
                        opentelemetry_sdk::Resource::builder()
                            .with_service_name("oai-gateway")
                            .build(),
                    )
                    .build(),
            ),
            Err(e) => {
                eprintln!("OTLP traces disabled: {e}");
                None
            }
        }
    } else {
        None
    };
    let otel = traces
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("oai-gateway")));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    // Lines gathered and written by a thread of their own (see
    // `observe::logwriter`): no system call per request.
    let (writer, guard) = observe::logwriter::start();
    let _ = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(observe::logformat::JsonLine)
                    .fmt_fields(observe::logformat::JsonFields)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(writer))
            .try_init(),
    };
    Telemetry {
        traces,
        logs: Some(guard),
    }
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
