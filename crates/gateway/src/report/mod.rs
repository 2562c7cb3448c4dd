//! The subcommands: `gateway records` (request records queried and
//! printed, as a table or JSON lines, or usage summed per model and key)
//! and `gateway keys` ([`keys`]).

pub mod keys;

use crate::config::Config;

/// A subcommand.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Query request records (the store of `records.url` / `RECORDS_URL`).
    Records(RecordsArgs),
    /// Manage stored API keys (in the same store).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

/// Runs a subcommand.
pub async fn command(cfg: &Config, cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Records(args) => run(cfg, args).await,
        Command::Keys(k) => keys::run(cfg, k).await,
    }
}

/// What `gateway records` takes.
#[derive(Debug, clap::Args)]
pub struct RecordsArgs {
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
}

/// Prints what `args` asks of the store in `cfg.records.url`.
pub async fn run(cfg: &Config, args: RecordsArgs) -> anyhow::Result<()> {
    let RecordsArgs {
        since_secs,
        model,
        key_id,
        status,
        limit,
        json,
        summary,
    } = args;
    let pool = crate::observe::records::connect(&cfg.records.url.0).await?;
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    let since_ms = since_secs.map(|s| now_ms - i64::try_from(s).unwrap_or(i64::MAX / 1000) * 1000);
    if summary {
        let rows = crate::observe::records::summary(&pool, since_ms.unwrap_or(0)).await?;
        if json {
            for r in rows {
                println!("{}", serde_json::to_string(&r)?);
            }
        } else {
            println!(
                "{:<32} {:<14} {:>8} {:>7} {:>12} {:>12} {:>12} {:>12} {:>10} {:>10} {:>9} {:>9}",
                "model",
                "key_id",
                "requests",
                "errors",
                "prompt",
                "completion",
                "cache read",
                "cache write",
                "cost US$",
                "saved US$",
                "filtered",
                "fallbacks"
            );
            let usd = |m: i64| format!("{:.4}", m as f64 / 1e6);
            for r in rows {
                let c = r.cost(cfg.price_of(&r.model));
                println!(
                    "{:<32} {:<14} {:>8} {:>7} {:>12} {:>12} {:>12} {:>12} {:>10} {:>10} {:>9} {:>9}",
                    r.model,
                    r.key_id,
                    r.requests,
                    r.errors,
                    r.prompt_tokens,
                    r.completion_tokens,
                    r.cache_read_tokens,
                    r.cache_write_tokens,
                    usd(c.cost_micro_usd),
                    usd(c.saved_micro_usd),
                    r.interventions,
                    r.fallbacks
                );
            }
        }
        return Ok(());
    }
    let q = crate::observe::records::Query {
        since_ms,
        model,
        key_id,
        status,
        limit,
    };
    let rows = crate::observe::records::query(&pool, &q).await?;
    if json {
        for r in rows {
            println!("{}", serde_json::to_string(&r)?);
        }
        return Ok(());
    }
    println!(
        "{:<13} {:<24} {:<22} {:<20} {:<12} {:>4} {:>8} {:>7} {:>7}  error",
        "ts_ms", "request_id", "route", "model", "upstream", "st", "ms", "in", "out"
    );
    let num = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
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
            num(r.prompt_tokens),
            num(r.completion_tokens),
            r.error.unwrap_or_default()
        );
    }
    Ok(())
}
