//! `gateway [--config FILE]`: serve the OpenAI API in front of SageMaker
//! endpoints, Bedrock models and OpenAI-style upstreams.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// mimalloc: glibc took an arena lock for each cross-thread free (records
/// freed by their writer), 3 % of the CPU under load (BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "OpenAI-compatible gateway in front of Amazon SageMaker endpoints, Amazon Bedrock models and OpenAI-style upstreams"
)]
struct Cli {
    /// TOML configuration file; environment variables override it.
    #[arg(long, env = "GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// Check the configuration and exit.
    #[arg(long)]
    check: bool,
    /// Probe `GET /ping` on 127.0.0.1:$PORT (default 8080) and exit 0 if it
    /// answers 200: the container HEALTHCHECK, with no curl in the image.
    #[arg(long)]
    healthcheck: bool,
    /// Sleep this many seconds and exit: a preStop hook in an image without
    /// a shell (the load balancer deregisters the pod meanwhile).
    #[arg(long, value_name = "SECS")]
    sleep: Option<u64>,
    #[command(subcommand)]
    command: Option<gateway::report::Command>,
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(secs) = cli.sleep {
        std::thread::sleep(std::time::Duration::from_secs(secs));
        return ExitCode::SUCCESS;
    }
    if cli.healthcheck {
        let port = std::env::var("PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(8080);
        return match gateway::healthcheck(port, std::time::Duration::from_secs(3)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("healthcheck: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config =
        match gateway::config::Config::load(cli.config.as_deref(), &|k| std::env::var(k).ok()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
    if let Some(cmd) = cli.command {
        return match gateway::report::command(&config, cmd).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gateway: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if cli.check {
        println!(
            "config ok: {} model(s), {} upstream(s)",
            config.models.len(),
            config.upstreams.len()
        );
        return ExitCode::SUCCESS;
    }
    // Flushes OTLP traces when main returns.
    let _telemetry = gateway::init_logging(config.log_format);
    match gateway::server::run(config, cli.config.clone()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "gateway failed");
            eprintln!("gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
