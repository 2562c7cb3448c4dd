//! `gateway [--config FILE]`: serve the OpenAI API in front of SageMaker.

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(
    version,
    about = "OpenAI-compatible gateway in front of Amazon SageMaker endpoints"
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
}

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if cli.healthcheck {
        let port = std::env::var("PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(8080);
        return match gateway::healthcheck(port, std::time::Duration::from_secs(3)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("healthcheck: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let config =
        match gateway::config::Config::load(cli.config.as_deref(), &|k| std::env::var(k).ok()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return std::process::ExitCode::from(2);
            }
        };
    if cli.check {
        println!("config ok: {} model(s)", config.models.len());
        return std::process::ExitCode::SUCCESS;
    }
    gateway::init_logging(config.log_format);
    match gateway::server::run(config, cli.config.clone()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "gateway failed");
            eprintln!("gateway: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
