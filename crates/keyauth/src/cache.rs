//! The TTL key cache and constant-time verification.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::{Error, KeyId, KeySet, KeySource, parse_bearer};

/// The time source of the cache.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Now.
    fn now(&self) -> Instant;
}

/// tokio's clock: real time, or paused and advanced by tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Cache settings.
#[derive(Debug, Clone)]
pub struct KeyAuthConfig {
    /// How long fetched keys are used before they are fetched again
    /// (`API_KEY_CACHE_TTL`, default 3600 s).
    pub ttl: Duration,
    /// The least time between two fetches, whatever triggers them (an unknown
    /// key, an expired TTL after a failed fetch). Default 10 s.
    pub min_refresh_interval: Duration,
}

impl Default for KeyAuthConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3600),
            min_refresh_interval: Duration::from_secs(10),
        }
    }
}

/// What `/health` shows of the key cache. Holds no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    /// The source, described.
    pub source: String,
    /// Whether keys were ever loaded.
    pub loaded: bool,
    /// How many keys are in use.
    pub key_count: usize,
    /// Seconds since the keys in use were fetched.
    pub age_secs: Option<u64>,
    /// The last fetch failed: its error (keys in use are older ones).
    pub last_error: Option<String>,
    /// Successful fetches.
    pub refreshes: u64,
    /// Failed fetches.
    pub failures: u64,
    /// Verifications answered from the cache.
    pub hits: u64,
    /// Verifications whose key was not in the cache at first look.
    pub misses: u64,
}

#[derive(Default)]
struct State {
    keys: Arc<KeySet>,
    loaded_at: Option<Instant>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
    refreshes: u64,
    failures: u64,
}

/// Verifies API keys against a cached key set. Share it behind an `Arc`.
pub struct KeyAuth {
    source: Box<dyn KeySource>,
    cfg: KeyAuthConfig,
    clock: Box<dyn Clock>,
    state: RwLock<State>,
    refresh: tokio::sync::Mutex<()>,
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for KeyAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyAuth")
            .field("source", &self.source.describe())
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Why {
    Expired,
    UnknownKey,
}

impl KeyAuth {
    /// A cache over `source`, on tokio's clock.
    pub fn new(source: impl KeySource, cfg: KeyAuthConfig) -> Self {
        Self::with_clock(source, cfg, TokioClock)
    }

    /// A cache over `source` on the given clock.
    pub fn with_clock(source: impl KeySource, cfg: KeyAuthConfig, clock: impl Clock) -> Self {
        Self {
            source: Box::new(source),
            cfg,
            clock: Box::new(clock),
            state: RwLock::new(State::default()),
            refresh: tokio::sync::Mutex::new(()),
            hits: Default::default(),
            misses: Default::default(),
        }
    }

    /// Fetches keys now (at start-up). The error is also kept for
    /// [`KeyAuth::status`]; requests are served once a fetch succeeds.
    pub async fn load(&self) -> Result<usize, Error> {
        let _guard = self.refresh.lock().await;
        self.fetch(self.clock.now()).await
    }

    /// Verifies an `Authorization` header value.
    pub async fn verify_header(&self, header: Option<&str>) -> Result<KeyId, Error> {
        let key = header.and_then(parse_bearer).ok_or(Error::Missing)?;
        self.verify(key).await
    }

    /// Verifies a key. Comparison is constant-time over every cached key.
    pub async fn verify(&self, key: &str) -> Result<KeyId, Error> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        if self.due(Why::Expired, self.clock.now()) {
            self.refresh(Why::Expired).await;
        }
        if let Some(id) = self.lookup(&digest) {
            self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(id);
        }
        self.misses
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.due(Why::UnknownKey, self.clock.now()) {
            self.refresh(Why::UnknownKey).await;
            if let Some(id) = self.lookup(&digest) {
                return Ok(id);
            }
        }
        let s = self.read();
        if s.loaded_at.is_none() {
            return Err(Error::Unavailable(
                s.last_error
                    .clone()
                    .unwrap_or_else(|| "not loaded yet".into()),
            ));
        }
        Err(Error::Invalid)
    }

    /// The cache's state, for health checks. Holds no key.
    pub fn status(&self) -> KeyStatus {
        let now = self.clock.now();
        let s = self.read();
        KeyStatus {
            source: self.source.describe(),
            loaded: s.loaded_at.is_some(),
            key_count: s.keys.len(),
            age_secs: s
                .loaded_at
                .map(|t| now.saturating_duration_since(t).as_secs()),
            last_error: s.last_error.clone(),
            refreshes: s.refreshes,
            failures: s.failures,
            hits: self.hits.load(std::sync::atomic::Ordering::Relaxed),
            misses: self.misses.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the state is plain data.
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn lookup(&self, digest: &[u8; 32]) -> Option<KeyId> {
        let keys = Arc::clone(&self.read().keys);
        keys.lookup(digest)
    }

    /// Whether a fetch is due for this reason now.
    fn due(&self, why: Why, now: Instant) -> bool {
        let s = self.read();
        let interval_passed = s
            .last_attempt
            .is_none_or(|t| now.saturating_duration_since(t) >= self.cfg.min_refresh_interval);
        match why {
            Why::Expired => {
                let expired = s
                    .loaded_at
                    .is_none_or(|t| now.saturating_duration_since(t) >= self.cfg.ttl);
                expired && interval_passed
            }
            Why::UnknownKey => interval_passed,
        }
    }

    /// One fetch at a time; a caller that waited for another's fetch does
    /// not fetch again.
    async fn refresh(&self, why: Why) {
        let _guard = self.refresh.lock().await;
        if !self.due(why, self.clock.now()) {
            return;
        }
        let _ = self.fetch(self.clock.now()).await;
    }

    async fn fetch(&self, now: Instant) -> Result<usize, Error> {
        self.write().last_attempt = Some(now);
        match self.source.fetch().await {
            Ok(keys) if keys.is_empty() => {
                let e = Error::BadSecret("the key source returned no key".into());
                self.failed(&e);
                Err(e)
            }
            Ok(keys) => {
                let set = KeySet::new(&keys);
                let n = set.len();
                let mut s = self.write();
                s.keys = Arc::new(set);
                s.loaded_at = Some(now);
                s.last_error = None;
                s.refreshes += 1;
                drop(s);
                tracing::info!(source = %self.source.describe(), keys = n, "API keys loaded");
                Ok(n)
            }
            Err(e) => {
                self.failed(&e);
                Err(e)
            }
        }
    }

    fn failed(&self, e: &Error) {
        let mut s = self.write();
        s.last_error = Some(e.to_string());
        s.failures += 1;
        let serving = s.keys.len();
        drop(s);
        tracing::warn!(
            source = %self.source.describe(),
            error = %e,
            serving_last_good_keys = serving,
            "API key refresh failed"
        );
    }
}
