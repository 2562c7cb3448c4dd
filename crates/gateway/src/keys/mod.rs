//! Stored API keys: created, scoped, limited and revoked at run time, kept in
//! the records database (SQLite, or PostgreSQL shared by replicas) as
//! hashes only. The request path never waits on the database: every key is
//! held in memory ([`KeyStore::find`]), reloaded when the store's version
//! changes (checked every 250 ms, so a revoked key is refused within a
//! second on every replica), and usage is written back off the path in
//! batches. Admission and settlement are in [`ticket`], rate windows in
//! [`limits`].

pub(crate) mod limits;
#[cfg(test)]
mod quota_tests;
mod schema;
mod store;

pub(crate) use schema::begin_migration;
pub(crate) mod ticket;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

pub(crate) use store::NewKey;
pub(crate) use ticket::{Spent, Ticket};

/// A stored key as the gateway holds it (its secret is never held: only
/// its SHA-256).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredKey {
    /// The key's id: the first 8 bytes of its SHA-256 in hex, as request
    /// records and logs name it.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// The first characters of the secret, for recognising it (`sk-gw-AbC…`).
    pub prefix: String,
    /// Owner or group label.
    pub owner: Option<String>,
    /// Model globs it may use (empty: any).
    pub models: Vec<String>,
    /// Upstream names it may use (empty: any).
    pub upstreams: Vec<String>,
    /// Expiry, Unix milliseconds.
    pub expires_at: Option<i64>,
    /// Turned off by an operator.
    pub disabled: bool,
    /// Quota in tokens (prompt + completion).
    pub quota_tokens: Option<i64>,
    /// Tokens used so far (as last read from the store).
    pub used_tokens: i64,
    /// Quota in cost, millionths of a US dollar (priced by `[[prices]]`).
    pub quota_micro_usd: Option<i64>,
    /// Cost so far, millionths of a US dollar (as last read).
    pub used_micro_usd: i64,
    /// Requests per minute.
    pub rpm: Option<i64>,
    /// Tokens per minute.
    pub tpm: Option<i64>,
    /// Requests at once.
    pub max_concurrent: Option<i64>,
    /// Client networks allowed (CIDRs; empty: any).
    pub ip_allow: Vec<String>,
    /// A Bedrock guardrail on every chat call the key makes, where the
    /// model has none of its own.
    #[serde(default)]
    pub guardrail: Option<Arc<crate::config::GuardrailSettings>>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

impl StoredKey {
    /// `active`, `disabled`, `expired` or `exhausted`, at `now_ms`, with
    /// `used` tokens and cost.
    pub fn status(&self, now_ms: i64, used: Used) -> &'static str {
        if self.disabled {
            "disabled"
        } else if self.expires_at.is_some_and(|e| e <= now_ms) {
            "expired"
        } else if self.quota_tokens.is_some_and(|q| used.tokens >= q)
            || self.quota_micro_usd.is_some_and(|q| used.micro_usd >= q)
        {
            "exhausted"
        } else {
            "active"
        }
    }

    /// Whether `ip` may use the key.
    pub fn ip_allowed(&self, ip: Option<IpAddr>) -> bool {
        if self.ip_allow.is_empty() {
            return true;
        }
        ip.is_some_and(|ip| self.ip_allow.iter().any(|c| cidr_contains(c, ip)))
    }
}

/// Whether `cidr` (`10.0.0.0/8`, `::1/128`, or a bare address) holds `ip`.
pub(crate) fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let (addr, bits) = match cidr.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let Ok(net) = addr.trim().parse::<IpAddr>() else {
        return false;
    };
    // IPv4 clients may arrive as IPv4-mapped IPv6 addresses.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let b = bits.unwrap_or(32).min(32);
            let mask = if b == 0 { 0 } else { u32::MAX << (32 - b) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let b = bits.unwrap_or(128).min(128);
            let mask = if b == 0 { 0 } else { u128::MAX << (128 - b) };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// Tokens and cost (millionths of a US dollar).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Used {
    /// Tokens.
    pub tokens: i64,
    /// Cost.
    pub micro_usd: i64,
}

/// A key's state on this replica: requests in flight, tokens and cost
/// reserved, and settled but not yet written to the store; its rate
/// windows.
#[derive(Debug, Default)]
pub struct Live {
    inflight: std::sync::atomic::AtomicI64,
    reserved: std::sync::atomic::AtomicI64,
    reserved_cost: std::sync::atomic::AtomicI64,
    pending: std::sync::atomic::AtomicI64,
    pending_cost: std::sync::atomic::AtomicI64,
    /// Settled here and not yet sent to the store (the writer takes it).
    unwritten: std::sync::atomic::AtomicI64,
    unwritten_cost: std::sync::atomic::AtomicI64,
    /// The store's usage figures, read since the last full load (usage is
    /// not configuration: it is read row by row, never by reloading every
    /// key).
    stored: std::sync::atomic::AtomicI64,
    stored_cost: std::sync::atomic::AtomicI64,
    stored_fresh: std::sync::atomic::AtomicBool,
    windows: Mutex<limits::Windows>,
}

impl StoredKey {
    /// What the store holds of the key's usage, as this replica last read
    /// it.
    pub fn stored_with(&self, live: &Live) -> Used {
        use std::sync::atomic::Ordering::Relaxed;
        if live.stored_fresh.load(Relaxed) {
            Used {
                tokens: live.stored.load(Relaxed),
                micro_usd: live.stored_cost.load(Relaxed),
            }
        } else {
            Used {
                tokens: self.used_tokens,
                micro_usd: self.used_micro_usd,
            }
        }
    }

    /// What the key has used: the store's count plus what `live` (this
    /// replica) settled and the store does not show yet. For a moment after
    /// a write both hold the same usage (counted twice, never zero times):
    /// right for this replica's own decision, never a figure to hand on.
    pub fn used_with(&self, live: &Live) -> Used {
        use std::sync::atomic::Ordering::Relaxed;
        let stored = self.stored_with(live);
        Used {
            tokens: stored.tokens + live.pending.load(Relaxed),
            micro_usd: stored.micro_usd + live.pending_cost.load(Relaxed),
        }
    }
}

/// Every stored key, by hash, as last read.
#[derive(Debug, Default)]
struct Snapshot {
    /// The definitions' version.
    version: i64,
    by_hash: HashMap<[u8; 32], Arc<StoredKey>>,
    by_id: HashMap<String, Arc<StoredKey>>,
}

/// The stored keys of one process (shared by workers, kept across config
/// reloads).
#[derive(Debug)]
pub struct KeyStore {
    pool: AnyPool,
    snapshot: RwLock<Arc<Snapshot>>,
    live: Mutex<HashMap<String, Arc<Live>>>,
    /// The usage version whose rows this replica has read.
    usage_seen: std::sync::atomic::AtomicI64,
    /// The console's session generation, as last read.
    console_gen: std::sync::atomic::AtomicI64,
    limiter: limits::Limiter,
}

/// How often the store's version is checked.
const REFRESH: Duration = Duration::from_millis(250);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl KeyStore {
    /// Opens the store on the records database (creating its tables), loads
    /// every key, and starts the refresh and usage-writer tasks.
    pub async fn open(pool: AnyPool, limiter: limits::Limiter) -> anyhow::Result<Arc<Self>> {
        schema::migrate(&pool).await?;
        let ks = Arc::new(Self {
            pool,
            snapshot: RwLock::new(Arc::new(Snapshot {
                version: -1,
                ..Snapshot::default()
            })),
            live: Mutex::new(HashMap::new()),
            usage_seen: std::sync::atomic::AtomicI64::new(0),
            console_gen: std::sync::atomic::AtomicI64::new(0),
            limiter,
        });
        ks.refresh().await?;
        tokio::spawn(store::write_usage(Arc::downgrade(&ks)));
        let weak = Arc::downgrade(&ks);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH).await;
                let Some(ks) = weak.upgrade() else { return };
                if let Err(e) = ks.refresh().await {
                    tracing::warn!(error = %e, "stored keys could not be refreshed; the last ones stay");
                }
            }
        });
        Ok(ks)
    }

    /// Reloads the keys if the store changed.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        let schema::Versions {
            defs: version,
            usage,
            console,
        } = schema::versions(&self.pool).await?;
        self.console_gen.store(console, Relaxed);
        if version == self.current().version {
            // Only usage changed: read the rows it changed.
            let seen = self.usage_seen.load(Relaxed);
            if usage > seen {
                for (id, tokens, cost) in schema::usage_since(&self.pool, seen).await? {
                    let l = self.live(&id);
                    l.stored.store(tokens, Relaxed);
                    l.stored_cost.store(cost, Relaxed);
                    l.stored_fresh.store(true, Relaxed);
                }
                self.usage_seen.fetch_max(usage, Relaxed);
            }
            return Ok(());
        }
        // Definitions changed: every key, usage included (as of `usage`).
        let keys = store::load(&self.pool).await?;
        let (mut by_hash, mut by_id) = (HashMap::new(), HashMap::new());
        for (hash, k) in keys {
            let k = Arc::new(k);
            by_id.insert(k.id.clone(), Arc::clone(&k));
            by_hash.insert(hash, k);
        }
        let next = Arc::new(Snapshot {
            version,
            by_hash,
            by_id,
        });
        match self.snapshot.write() {
            Ok(mut g) => *g = next,
            Err(p) => *p.into_inner() = next,
        }
        for (_, l) in self.lives() {
            l.stored_fresh.store(false, Relaxed);
        }
        self.usage_seen.store(usage, Relaxed);
        Ok(())
    }

    fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// The stored key whose secret hashes to `hash`, if any (memory only).
    pub fn find(&self, hash: &[u8; 32]) -> Option<Arc<StoredKey>> {
        self.current().by_hash.get(hash).cloned()
    }

    /// This replica's state of key `id`.
    pub fn live(&self, id: &str) -> Arc<Live> {
        let mut map = lock(&self.live);
        match map.get(id) {
            Some(l) => Arc::clone(l),
            None => Arc::clone(map.entry(id.to_owned()).or_default()),
        }
    }

    /// Every key's state on this replica.
    fn lives(&self) -> Vec<(String, Arc<Live>)> {
        lock(&self.live)
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    }

    /// What key `k` has used: the store's count plus what this replica
    /// settled and has not written yet.
    pub fn used(&self, k: &StoredKey) -> Used {
        let live = lock(&self.live).get(&k.id).cloned();
        match live {
            Some(l) => k.used_with(&l),
            None => Used {
                tokens: k.used_tokens,
                micro_usd: k.used_micro_usd,
            },
        }
    }

    /// Creates a key: its secret (shown this once) and what is stored.
    pub async fn create(&self, new: NewKey) -> anyhow::Result<(String, StoredKey)> {
        let out = store::create(&self.pool, new).await?;
        self.refresh().await?;
        Ok(out)
    }

    /// Every key, newest first.
    pub fn list(&self) -> Vec<Arc<StoredKey>> {
        let mut v: Vec<_> = self.current().by_hash.values().cloned().collect();
        v.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        v
    }

    /// The key with this id.
    pub fn get(&self, id: &str) -> Option<Arc<StoredKey>> {
        self.current().by_id.get(id).cloned()
    }

    /// Changes a key's settings (`None` leaves a field as it is); `false`
    /// when there is no such key.
    pub async fn update(&self, id: &str, patch: store::KeyPatch) -> anyhow::Result<bool> {
        let reset = patch.used_tokens.is_some() || patch.used_micro_usd.is_some();
        let found = store::update(&self.pool, id, patch).await?;
        if reset {
            self.limiter.quota_reset(id);
        }
        self.refresh().await?;
        Ok(found)
    }

    /// Deletes a key; `false` when there is no such key.
    pub async fn delete(&self, id: &str) -> anyhow::Result<bool> {
        let found = store::delete(&self.pool, id).await?;
        self.limiter.quota_reset(id);
        self.refresh().await?;
        Ok(found)
    }

    /// The console's session generation: a session minted under another
    /// one is over (every replica reads it within 250 ms).
    pub fn console_generation(&self) -> i64 {
        self.console_gen.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Ends every console session, on every replica.
    pub async fn end_console_sessions(&self) -> anyhow::Result<()> {
        schema::end_console_sessions(&self.pool).await?;
        self.refresh().await
    }

    /// The rate limiter (local, or Redis when configured).
    pub fn limiter(&self) -> &limits::Limiter {
        &self.limiter
    }
}

pub(crate) use store::KeyPatch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_hold_what_they_should() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(cidr_contains("10.0.0.0/8", ip("10.1.2.3")));
        assert!(!cidr_contains("10.0.0.0/8", ip("11.0.0.1")));
        assert!(cidr_contains("127.0.0.1", ip("127.0.0.1")));
        assert!(cidr_contains("127.0.0.0/8", ip("::ffff:127.0.0.9")));
        assert!(cidr_contains("::1/128", ip("::1")));
        assert!(cidr_contains("0.0.0.0/0", ip("8.8.8.8")));
        assert!(!cidr_contains("not-a-cidr", ip("8.8.8.8")));
    }
}
