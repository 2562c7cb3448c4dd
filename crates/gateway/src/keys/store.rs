//! The keys' tables (portable SQL for SQLite and PostgreSQL through sqlx's
//! `Any` driver) and the usage writer.

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use serde::Deserialize;
use sha2::Digest;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::{KeyStore, StoredKey, Used};

const COLUMNS: &str = "id, hash, name, prefix, owner, models, upstreams, expires_at, disabled, quota_tokens, used_tokens, rpm, tpm, max_concurrent, ip_allow, created_at, updated_at, quota_micro_usd, used_micro_usd, guardrail";

/// Adds usage to keys in one transaction, under a new usage version (so a
/// reader that sees the version sees every row it stamped).
async fn add_usage(pool: &AnyPool, owed: &HashMap<String, Used>) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    let seq: i64 = sqlx::query(
        "UPDATE gateway_keys_version SET version = version + 1 WHERE id = 2 RETURNING version",
    )
    .fetch_one(&mut *tx)
    .await?
    .try_get(0)?;
    for (id, n) in owed {
        sqlx::query(
            "UPDATE gateway_keys SET used_tokens = used_tokens + $1, used_micro_usd = used_micro_usd + $2, usage_seq = $3 WHERE id = $4",
        )
        .bind(n.tokens)
        .bind(n.micro_usd)
        .bind(seq)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

async fn bump(pool: &AnyPool) -> anyhow::Result<()> {
    sqlx::query("UPDATE gateway_keys_version SET version = version + 1 WHERE id = 1")
        .execute(pool)
        .await?;
    Ok(())
}

/// A guardrail as the store keeps it (JSON), `NULL` for none.
fn guardrail_json(g: Option<&crate::config::GuardrailSettings>) -> Option<String> {
    g.and_then(|g| serde_json::to_string(g).ok())
}

fn list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn key_of(r: &AnyRow) -> Result<([u8; 32], StoredKey), sqlx::Error> {
    let hash: String = r.try_get("hash")?;
    let mut h = [0u8; 32];
    for (i, b) in h.iter_mut().enumerate() {
        *b = u8::from_str_radix(hash.get(i * 2..i * 2 + 2).unwrap_or("00"), 16).unwrap_or(0);
    }
    let k = StoredKey {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        owner: r.try_get("owner")?,
        models: list(&r.try_get::<String, _>("models")?),
        upstreams: list(&r.try_get::<String, _>("upstreams")?),
        expires_at: r.try_get("expires_at")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        quota_tokens: r.try_get("quota_tokens")?,
        used_tokens: r.try_get("used_tokens")?,
        quota_micro_usd: r.try_get("quota_micro_usd")?,
        used_micro_usd: r.try_get("used_micro_usd")?,
        rpm: r.try_get("rpm")?,
        tpm: r.try_get("tpm")?,
        max_concurrent: r.try_get("max_concurrent")?,
        ip_allow: list(&r.try_get::<String, _>("ip_allow")?),
        guardrail: r
            .try_get::<Option<String>, _>("guardrail")?
            .and_then(|g| serde_json::from_str(&g).ok())
            .map(std::sync::Arc::new),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    };
    Ok((h, k))
}

pub(super) async fn load(pool: &AnyPool) -> anyhow::Result<Vec<([u8; 32], StoredKey)>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM gateway_keys"
    )))
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(key_of).collect::<Result<_, _>>()?)
}

/// A key to create.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// A name for people.
    pub name: String,
    /// Owner or group label.
    #[serde(default)]
    pub owner: Option<String>,
    /// Model globs (empty: any).
    #[serde(default)]
    pub models: Vec<String>,
    /// Upstream names (empty: any).
    #[serde(default)]
    pub upstreams: Vec<String>,
    /// Expiry, Unix milliseconds.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Quota in tokens.
    #[serde(default)]
    pub quota_tokens: Option<i64>,
    /// Quota in cost, millionths of a US dollar.
    #[serde(default)]
    pub quota_micro_usd: Option<i64>,
    /// Requests per minute.
    #[serde(default)]
    pub rpm: Option<i64>,
    /// Tokens per minute.
    #[serde(default)]
    pub tpm: Option<i64>,
    /// Requests at once.
    #[serde(default)]
    pub max_concurrent: Option<i64>,
    /// Client CIDRs (empty: any).
    #[serde(default)]
    pub ip_allow: Vec<String>,
    /// A guardrail on the key's chat calls (where the model has none).
    #[serde(default)]
    pub guardrail: Option<crate::config::GuardrailSettings>,
}

/// Changes to a key: a field left out stays; `null` clears a limit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    /// A new name.
    #[serde(default)]
    pub name: Option<String>,
    /// A new owner.
    #[serde(default, with = "double")]
    pub owner: Option<Option<String>>,
    /// New model globs.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// New upstream names.
    #[serde(default)]
    pub upstreams: Option<Vec<String>>,
    /// New expiry (`null`: none).
    #[serde(default, with = "double")]
    pub expires_at: Option<Option<i64>>,
    /// On or off.
    #[serde(default)]
    pub disabled: Option<bool>,
    /// New quota (`null`: none).
    #[serde(default, with = "double")]
    pub quota_tokens: Option<Option<i64>>,
    /// Usage reset to this (e.g. 0 with a new quota period).
    #[serde(default)]
    pub used_tokens: Option<i64>,
    /// New cost quota, millionths of a US dollar (`null`: none).
    #[serde(default, with = "double")]
    pub quota_micro_usd: Option<Option<i64>>,
    /// Cost reset to this.
    #[serde(default)]
    pub used_micro_usd: Option<i64>,
    /// New requests per minute (`null`: none).
    #[serde(default, with = "double")]
    pub rpm: Option<Option<i64>>,
    /// New tokens per minute (`null`: none).
    #[serde(default, with = "double")]
    pub tpm: Option<Option<i64>>,
    /// New concurrency limit (`null`: none).
    #[serde(default, with = "double")]
    pub max_concurrent: Option<Option<i64>>,
    /// New client CIDRs.
    #[serde(default)]
    pub ip_allow: Option<Vec<String>>,
    /// A new guardrail (`null`: none).
    #[serde(default, with = "double")]
    pub guardrail: Option<Option<crate::config::GuardrailSettings>>,
}

/// `Option<Option<T>>` from JSON: absent is `None`, `null` is `Some(None)`.
mod double {
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

fn now_ms() -> i64 {
    i64::try_from(crate::ids::now_ms()).unwrap_or(i64::MAX)
}

/// What an operator sent, to check: texts, limits, lists and CIDRs.
pub(super) struct Sent<'a> {
    pub(super) name: Option<&'a str>,
    pub(super) owner: Option<&'a str>,
    pub(super) limits: &'a [(&'a str, Option<i64>)],
    pub(super) lists: &'a [(&'a str, Option<&'a [String]>)],
    pub(super) ip_allow: Option<&'a [String]>,
    pub(super) guardrail: Option<&'a crate::config::GuardrailSettings>,
}

/// The most entries in a key's lists (models, upstreams, CIDRs).
const MAX_LIST: usize = 256;
/// The longest name, owner or list entry.
const MAX_TEXT: usize = 200;

/// Checks what an operator sent: names, owners, limits, lists and CIDRs
/// (a prefix is a number within the address's bits).
pub(super) fn check(s: &Sent<'_>) -> Result<(), String> {
    if let Some(n) = s.name
        && (n.trim().is_empty() || n.chars().count() > MAX_TEXT)
    {
        return Err(format!("name must hold 1 to {MAX_TEXT} characters"));
    }
    if s.owner.is_some_and(|o| o.chars().count() > MAX_TEXT) {
        return Err(format!("owner must hold at most {MAX_TEXT} characters"));
    }
    for (field, v) in s.limits {
        if v.is_some_and(|v| v < 0) {
            return Err(format!("{field} must not be negative"));
        }
    }
    let ip = ("ip_allow", s.ip_allow);
    for (field, list) in s.lists.iter().chain(std::iter::once(&ip)) {
        let list = list.unwrap_or_default();
        if list.len() > MAX_LIST {
            return Err(format!("{field} may hold at most {MAX_LIST} entries"));
        }
        if list
            .iter()
            .any(|e| e.is_empty() || e.chars().count() > MAX_TEXT)
        {
            return Err(format!(
                "{field}: entries must hold 1 to {MAX_TEXT} characters"
            ));
        }
    }
    if let Some(g) = s.guardrail {
        g.check().map_err(|e| format!("guardrail {e}"))?;
    }
    for c in s.ip_allow.into_iter().flatten() {
        let (addr, bits) = match c.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (c.as_str(), None),
        };
        let max = match addr.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => 32,
            Ok(std::net::IpAddr::V6(_)) => 128,
            Err(_) => return Err(format!("ip_allow: '{c}' is not an address or CIDR")),
        };
        if let Some(b) = bits
            && !(b.bytes().all(|d| d.is_ascii_digit()) && b.parse::<u32>().is_ok_and(|b| b <= max))
        {
            return Err(format!(
                "ip_allow: '{c}' has a prefix length that is not a number from 0 to {max}"
            ));
        }
    }
    Ok(())
}

pub(super) async fn create(pool: &AnyPool, k: NewKey) -> anyhow::Result<(String, StoredKey)> {
    check(&Sent {
        name: Some(&k.name),
        owner: k.owner.as_deref(),
        limits: &[
            ("quota_tokens", k.quota_tokens),
            ("quota_micro_usd", k.quota_micro_usd),
            ("rpm", k.rpm),
            ("tpm", k.tpm),
            ("max_concurrent", k.max_concurrent),
        ],
        lists: &[
            ("models", Some(&k.models)),
            ("upstreams", Some(&k.upstreams)),
        ],
        ip_allow: Some(&k.ip_allow),
        guardrail: k.guardrail.as_ref(),
    })
    .map_err(anyhow::Error::msg)?;
    let secret = new_secret()?;
    let hash = sha2::Sha256::digest(secret.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    let id = keyauth::KeyId::of(&secret).as_str().to_owned();
    let now = now_ms();
    let stored = StoredKey {
        id,
        name: k.name,
        prefix: secret[..10].to_owned(),
        owner: k.owner,
        models: k.models,
        upstreams: k.upstreams,
        expires_at: k.expires_at,
        disabled: false,
        quota_tokens: k.quota_tokens,
        used_tokens: 0,
        quota_micro_usd: k.quota_micro_usd,
        used_micro_usd: 0,
        rpm: k.rpm,
        tpm: k.tpm,
        max_concurrent: k.max_concurrent,
        ip_allow: k.ip_allow,
        guardrail: k.guardrail.map(std::sync::Arc::new),
        created_at: now,
        updated_at: now,
    };
    let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO gateway_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
    )))
    .bind(&stored.id)
    .bind(hex)
    .bind(&stored.name)
    .bind(&stored.prefix)
    .bind(&stored.owner)
    .bind(json(&stored.models))
    .bind(json(&stored.upstreams))
    .bind(stored.expires_at)
    .bind(0i64)
    .bind(stored.quota_tokens)
    .bind(0i64)
    .bind(stored.rpm)
    .bind(stored.tpm)
    .bind(stored.max_concurrent)
    .bind(json(&stored.ip_allow))
    .bind(now)
    .bind(now)
    .bind(stored.quota_micro_usd)
    .bind(0i64)
    .bind(guardrail_json(stored.guardrail.as_deref()))
    .execute(pool)
    .await?;
    bump(pool).await?;
    Ok((secret, stored))
}

/// `sk-gw-` and 43 characters of base64url (256 random bits).
fn new_secret() -> anyhow::Result<String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(format!(
        "sk-gw-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

pub(super) async fn update(pool: &AnyPool, id: &str, p: KeyPatch) -> anyhow::Result<bool> {
    let flat = |v: &Option<Option<i64>>| v.flatten();
    check(&Sent {
        name: p.name.as_deref(),
        owner: p.owner.as_ref().and_then(|o| o.as_deref()),
        limits: &[
            ("quota_tokens", flat(&p.quota_tokens)),
            ("quota_micro_usd", flat(&p.quota_micro_usd)),
            ("used_micro_usd", p.used_micro_usd),
            ("rpm", flat(&p.rpm)),
            ("tpm", flat(&p.tpm)),
            ("max_concurrent", flat(&p.max_concurrent)),
            ("used_tokens", p.used_tokens),
        ],
        lists: &[
            ("models", p.models.as_deref()),
            ("upstreams", p.upstreams.as_deref()),
        ],
        ip_allow: p.ip_allow.as_deref(),
        guardrail: p.guardrail.as_ref().and_then(Option::as_ref),
    })
    .map_err(anyhow::Error::msg)?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM gateway_keys WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let (_, mut k) = key_of(&row)?;
    if let Some(v) = p.name {
        k.name = v;
    }
    if let Some(v) = p.owner {
        k.owner = v;
    }
    if let Some(v) = p.models {
        k.models = v;
    }
    if let Some(v) = p.upstreams {
        k.upstreams = v;
    }
    if let Some(v) = p.expires_at {
        k.expires_at = v;
    }
    if let Some(v) = p.disabled {
        k.disabled = v;
    }
    if let Some(v) = p.quota_tokens {
        k.quota_tokens = v;
    }
    if let Some(v) = p.quota_micro_usd {
        k.quota_micro_usd = v;
    }
    for (slot, v) in [
        (&mut k.rpm, p.rpm),
        (&mut k.tpm, p.tpm),
        (&mut k.max_concurrent, p.max_concurrent),
    ] {
        if let Some(v) = v {
            *slot = v;
        }
    }
    if let Some(v) = p.ip_allow {
        k.ip_allow = v;
    }
    if let Some(v) = p.guardrail {
        k.guardrail = v.map(std::sync::Arc::new);
    }
    let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    // used_tokens is only ever added to here (replicas add concurrently),
    // unless an operator resets it.
    let used_sql = if p.used_tokens.is_some() {
        "used_tokens = $13"
    } else {
        "used_tokens = used_tokens + $13"
    };
    let cost_sql = if p.used_micro_usd.is_some() {
        "used_micro_usd = $16"
    } else {
        "used_micro_usd = used_micro_usd + $16"
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE gateway_keys SET name = $2, owner = $3, models = $4, upstreams = $5, expires_at = $6, disabled = $7, quota_tokens = $8, rpm = $9, tpm = $10, max_concurrent = $11, ip_allow = $12, {used_sql}, updated_at = $14, quota_micro_usd = $15, {cost_sql}, guardrail = $17 WHERE id = $1"
    )))
    .bind(id)
    .bind(&k.name)
    .bind(&k.owner)
    .bind(json(&k.models))
    .bind(json(&k.upstreams))
    .bind(k.expires_at)
    .bind(i64::from(k.disabled))
    .bind(k.quota_tokens)
    .bind(k.rpm)
    .bind(k.tpm)
    .bind(k.max_concurrent)
    .bind(json(&k.ip_allow))
    .bind(p.used_tokens.unwrap_or(0))
    .bind(now_ms())
    .bind(k.quota_micro_usd)
    .bind(p.used_micro_usd.unwrap_or(0))
    .bind(guardrail_json(k.guardrail.as_deref()))
    .execute(pool)
    .await?;
    bump(pool).await?;
    Ok(true)
}

pub(super) async fn delete(pool: &AnyPool, id: &str) -> anyhow::Result<bool> {
    let n = sqlx::query("DELETE FROM gateway_keys WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected();
    bump(pool).await?;
    Ok(n > 0)
}

/// Writes settled usage every 200 ms: what each key settled here since the
/// last write, added to what the store holds (so replicas add up); a write
/// bumps the version so every replica reads the new totals. A failed write
/// is kept and tried again.
pub(super) async fn write_usage(ks: Weak<KeyStore>) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut owed: HashMap<String, Used> = HashMap::new();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Some(ks) = ks.upgrade() else { return };
        for (id, l) in ks.lives() {
            let (t, c) = (
                l.unwritten.swap(0, Relaxed),
                l.unwritten_cost.swap(0, Relaxed),
            );
            if t != 0 || c != 0 {
                let o = owed.entry(id).or_default();
                o.tokens += t;
                o.micro_usd += c;
            }
        }
        if owed.is_empty() {
            continue;
        }
        let wrote = std::mem::take(&mut owed);
        if let Err(e) = add_usage(&ks.pool, &wrote).await {
            tracing::warn!(error = %e, "key usage not written yet; retrying");
            owed = wrote;
            continue;
        }
        if let Err(e) = ks.refresh().await {
            tracing::warn!(error = %e, "stored keys could not be refreshed");
        }
        // Only now (the store's totals read back) is this replica's own
        // count dropped: for a moment usage counts twice, never zero times.
        for (id, n) in wrote {
            let l = ks.live(&id);
            l.pending.fetch_sub(n.tokens, Relaxed);
            l.pending_cost.fetch_sub(n.micro_usd, Relaxed);
        }
    }
}
