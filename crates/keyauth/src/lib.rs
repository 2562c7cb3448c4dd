//! API-key authentication with pluggable key sources and a TTL key cache.
//!
//! * [`KeySource`]: where keys come from ([`StaticKeys`], or
//!   [`SecretsManagerKeys`] behind the default `secretsmanager` feature).
//! * [`KeyAuth`]: verifies a presented key against the cached set, in constant
//!   time. The cache is refreshed when its TTL runs out; an unknown key
//!   triggers at most one refresh per `min_refresh_interval`, so a rotated key
//!   works without a restart while a flood of bad keys cannot hammer the
//!   source. When a refresh fails, the last good keys keep serving and
//!   [`KeyAuth::status`] says so.
//! * Time comes from a [`Clock`] (tokio's by default, so tests pause and
//!   advance it).
//!
//! Keys are never logged; only their [`KeyId`] (a short SHA-256 prefix) is.
//!
//! ```
//! # tokio_test_block_on(async {
//! use std::time::Duration;
//! use keyauth::{KeyAuth, KeyAuthConfig, StaticKeys};
//!
//! let auth = KeyAuth::new(
//!     StaticKeys::new(["sk-alpha", "sk-beta"]),
//!     KeyAuthConfig { ttl: Duration::from_secs(3600), ..KeyAuthConfig::default() },
//! );
//! let id = auth.verify_header(Some("Bearer sk-beta")).await.unwrap();
//! assert_eq!(id.as_str().len(), 16);
//! assert!(auth.verify_header(Some("Bearer sk-wrong")).await.is_err());
//! assert!(auth.verify_header(None).await.is_err());
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
//! # }
//! ```

#![deny(missing_docs)]

mod cache;
mod secret;
#[cfg(feature = "secretsmanager")]
mod secretsmanager;
mod set;

use std::future::Future;
use std::pin::Pin;

pub use cache::{Clock, KeyAuth, KeyAuthConfig, KeyStatus, TokioClock};
pub use secret::parse_secret;
#[cfg(feature = "secretsmanager")]
pub use secretsmanager::SecretsManagerKeys;
pub use set::KeySet;

/// Why a request was not authenticated, or keys could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No `Authorization: Bearer …` header.
    #[error("missing API key: send it as 'Authorization: Bearer <key>'")]
    Missing,
    /// The key is not one of the valid keys.
    #[error("invalid API key")]
    Invalid,
    /// No keys could ever be loaded from the source.
    #[error("API keys are unavailable: {0}")]
    Unavailable(String),
    /// The key source failed (the message never contains a key).
    #[error("key source failed: {0}")]
    Source(String),
    /// The secret held no usable key.
    #[error("secret holds no API key: {0}")]
    BadSecret(String),
}

impl Error {
    /// Whether the client is at fault (401) rather than the server (503).
    pub fn is_client_error(&self) -> bool {
        matches!(self, Self::Missing | Self::Invalid)
    }
}

/// A boxed future, for object-safe async traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where keys come from.
pub trait KeySource: Send + Sync + std::fmt::Debug + 'static {
    /// Fetches the current set of valid keys.
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<String>, Error>>;

    /// A name for logs (never a secret).
    fn describe(&self) -> String;
}

/// A fixed list of keys (from config or the `API_KEY` variable).
#[derive(Clone)]
pub struct StaticKeys(Vec<String>);

impl std::fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StaticKeys({} keys)", self.0.len())
    }
}

impl StaticKeys {
    /// Keys as given.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(keys: I) -> Self {
        Self(keys.into_iter().map(Into::into).collect())
    }
}

impl KeySource for StaticKeys {
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<String>, Error>> {
        let keys = self.0.clone();
        Box::pin(async move { Ok(keys) })
    }

    fn describe(&self) -> String {
        format!("{} static key(s)", self.0.len())
    }
}

/// Several sources as one: the union of their keys. Fails only if every
/// source fails.
#[derive(Debug)]
pub struct AnyOf(pub Vec<Box<dyn KeySource>>);

impl KeySource for AnyOf {
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<String>, Error>> {
        Box::pin(async move {
            let mut keys = Vec::new();
            let mut errors = Vec::new();
            for s in &self.0 {
                match s.fetch().await {
                    Ok(k) => keys.extend(k),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            if keys.is_empty() && !errors.is_empty() {
                return Err(Error::Source(errors.join("; ")));
            }
            Ok(keys)
        })
    }

    fn describe(&self) -> String {
        self.0
            .iter()
            .map(|s| s.describe())
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

/// The id of a key for logs and records: the first 8 bytes of its SHA-256, in
/// hex. Never the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The id of a key.
    pub fn of(key: &str) -> Self {
        use sha2::Digest;
        Self::from_digest(&sha2::Sha256::digest(key.as_bytes()).into())
    }

    /// The id of the key whose SHA-256 is `digest` (for callers that hashed
    /// it already).
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        use std::fmt::Write as _;
        let mut s = String::with_capacity(16);
        for b in &digest[..8] {
            let _ = write!(s, "{b:02x}");
        }
        Self(s)
    }

    /// The hex id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key of an `Authorization: Bearer <key>` header value (scheme
/// case-insensitive). `None` if the header is not a bearer credential.
pub fn parse_bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let key = rest.trim();
    (!key.is_empty()).then_some(key)
}
