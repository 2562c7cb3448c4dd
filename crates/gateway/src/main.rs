//! `gateway [--config FILE]`: serve the OpenAI API in front of SageMaker.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Query request records (the store of `records.url` / `RECORDS_URL`).
    Records {
        /// Only the last N seconds (e.g. 3600).
        #[arg(long)]
        since_secs: Option<u64>,
        /// Only this model.
        #[arg(long)]
        model: Option<String>,
        /// Only this key id.
        #[arg(long)]
        key_id: Option<String>,
        /// Only this HTTP status.
        #[arg(long)]
        status: Option<i64>,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        /// Usage per model and key instead of records.
        #[arg(long)]
        summary: bool,
    },
}

async fn records(cfg: &gateway::config::Config, cmd: Command) -> anyhow::Result<()> {
    let Command::Records {
        since_secs,
        model,
        key_id,
        status,
        limit,
        json,
        summary,
    } = cmd;
    let pool = gateway::records::connect(&cfg.records.url.0).await?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let since_ms = since_secs.map(|s| now_ms - (s as i64) * 1000);
    if summary {
        let rows = gateway::records::summary(&pool, since_ms.unwrap_or(0)).await?;
        if json {
            for r in rows {
                println!("{}", serde_json::to_string(&r)?);
            }
        } else {
            println!(
                "{:<32} {:<14} {:>8} {:>7} {:>12} {:>12}",
                "model", "key_id", "requests", "errors", "prompt", "completion"
            );
            for r in rows {
                println!(
                    "{:<32} {:<14} {:>8} {:>7} {:>12} {:>12}",
                    r.model, r.key_id, r.requests, r.errors, r.prompt_tokens, r.completion_tokens
                );
            }
        }
        return Ok(());
    }
    let q = gateway::records::Query {
        since_ms,
        model,
        key_id,
        status,
        limit,
    };
    let rows = gateway::records::query(&pool, &q).await?;
    if json {
        for r in rows {
            println!("{}", serde_json::to_string(&r)?);
        }
    } else {
        println!(
            "{:<13} {:<24} {:<22} {:<20} {:<12} {:>4} {:>8} {:>7} {:>7}  error",
            "ts_ms", "request_id", "route", "model", "upstream", "st", "ms", "in", "out"
        );
        for r in rows {
            println!(
                "{:<13} {:<24} {:<22} {:<20} {:<12} {:>4} {:>8} {:>7} {:>7}  {}",
                r.ts_ms,
                r.request_id,
                r.route,
                r.model.unwrap_or_default(),
                r.upstream.unwrap_or_default(),
                r.status,
                r.duration_ms,
                r.prompt_tokens.map(|v| v.to_string()).unwrap_or_default(),
                r.completion_tokens
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                r.error.unwrap_or_default()
            );
        }
    }
    Ok(())
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
    if let Some(cmd) = cli.command {
        return match records(&config, cmd).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("records: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    if cli.check {
        println!("config ok: {} model(s)", config.models.len());
        return std::process::ExitCode::SUCCESS;
    }
    // Flushes OTLP traces when main returns.
    let _telemetry = gateway::init_logging(config.log_format);
    match gateway::server::run(config, cli.config.clone()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "gateway failed");
            eprintln!("gateway: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
