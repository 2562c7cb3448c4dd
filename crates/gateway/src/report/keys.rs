//! `gateway keys`: stored keys managed from the shell, on the store of
//! `records.url` (the same the admin API uses; replicas see a change within
//! a second).

use crate::config::Config;
use crate::keys::{KeyPatch, KeyStore, NewKey, StoredKey, limits::Limiter};

/// What `gateway keys` does.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key; its secret is printed this once.
    Create(Box<CreateArgs>),
    /// List the keys (never their secrets).
    List {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Disable a key.
    Disable {
        /// Its id.
        id: String,
    },
    /// Enable a key.
    Enable {
        /// Its id.
        id: String,
    },
    /// Delete a key.
    Delete {
        /// Its id.
        id: String,
    },
}

/// What `gateway keys create` takes.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// A name for people.
    #[arg(long)]
    name: String,
    /// Owner or group label.
    #[arg(long)]
    owner: Option<String>,
    /// Model globs it may use (comma-separated; default any).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// Upstreams it may use (comma-separated; default any).
    #[arg(long, value_delimiter = ',')]
    upstreams: Vec<String>,
    /// Valid for this many seconds.
    #[arg(long)]
    expires_in_secs: Option<u64>,
    /// Quota in tokens.
    #[arg(long)]
    quota_tokens: Option<i64>,
    /// Quota in US dollars (priced by `[[prices]]`).
    #[arg(long)]
    quota_usd: Option<f64>,
    /// Requests per minute.
    #[arg(long)]
    rpm: Option<i64>,
    /// Tokens per minute.
    #[arg(long)]
    tpm: Option<i64>,
    /// Requests at once.
    #[arg(long)]
    max_concurrent: Option<i64>,
    /// Client CIDRs allowed (comma-separated; default any).
    #[arg(long, value_delimiter = ',')]
    ip_allow: Vec<String>,
    /// A Bedrock guardrail on the key's chat calls (where the model has
    /// none): its id or ARN.
    #[arg(long)]
    guardrail_id: Option<String>,
    /// The guardrail's version (`DRAFT` or a number).
    #[arg(long, default_value = "DRAFT", requires = "guardrail_id")]
    guardrail_version: String,
}

/// Runs `cmd` on the store of `cfg.records.url`.
pub async fn run(cfg: &Config, cmd: KeysCommand) -> anyhow::Result<()> {
    let pool = crate::observe::records::connect(&cfg.records.url.0).await?;
    let ks = KeyStore::open(pool, Limiter::local()).await?;
    let now = crate::ids::now_ms() as i64;
    let row = |k: &StoredKey| {
        let used = ks.used(k);
        format!(
            "{:<18} {:<20} {:<12} {:<10} {:>12} {:>12} {:>12}",
            k.id,
            k.name,
            k.prefix,
            k.status(now, used),
            used.tokens,
            k.quota_tokens.map(|q| q.to_string()).unwrap_or("-".into()),
            format!("{:.4}", used.micro_usd as f64 / 1e6)
        )
    };
    match cmd {
        KeysCommand::Create(args) => {
            let CreateArgs {
                name,
                owner,
                models,
                upstreams,
                expires_in_secs,
                quota_tokens,
                quota_usd,
                rpm,
                tpm,
                max_concurrent,
                ip_allow,
                guardrail_id,
                guardrail_version,
            } = *args;
            let expires_at = expires_in_secs
                .map(|s| now.saturating_add(i64::try_from(s).unwrap_or(i64::MAX / 1000) * 1000));
            let new = NewKey {
                name,
                owner,
                models,
                upstreams,
                expires_at,
                quota_tokens,
                quota_micro_usd: quota_usd.map(|d| (d * 1e6).round() as i64),
                rpm,
                tpm,
                max_concurrent,
                ip_allow,
                guardrail: guardrail_id.map(|id| crate::config::GuardrailSettings {
                    id,
                    version: guardrail_version,
                    trace: None,
                    stream_processing_mode: None,
                    window_chars: None,
                }),
            };
            let (secret, k) = ks.create(new).await?;
            println!(
                "id:  {}\nkey: {secret}\n(the key is shown this once: store it now)",
                k.id
            );
        }
        KeysCommand::List { json } => {
            if !json {
                println!(
                    "{:<18} {:<20} {:<12} {:<10} {:>12} {:>12} {:>12}",
                    "id", "name", "prefix", "status", "used", "quota", "cost US$"
                );
            }
            for k in ks.list() {
                if json {
                    println!("{}", serde_json::to_string(&*k)?);
                } else {
                    println!("{}", row(&k));
                }
            }
        }
        KeysCommand::Disable { id } => toggle(&ks, &id, true).await?,
        KeysCommand::Enable { id } => toggle(&ks, &id, false).await?,
        KeysCommand::Delete { id } => {
            if !ks.delete(&id).await? {
                anyhow::bail!("no key with id '{id}'");
            }
            println!("{id} deleted");
        }
    }
    Ok(())
}

async fn toggle(ks: &KeyStore, id: &str, disabled: bool) -> anyhow::Result<()> {
    let patch = KeyPatch {
        disabled: Some(disabled),
        ..KeyPatch::default()
    };
    if !ks.update(id, patch).await? {
        anyhow::bail!("no key with id '{id}'");
    }
    println!("{id} {}", if disabled { "disabled" } else { "enabled" });
    Ok(())
}
