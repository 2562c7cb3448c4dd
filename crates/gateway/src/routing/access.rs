//! Who may call and what they may use: the client keys and their scopes as
//! one value, built from one configuration and swapped whole on reload, so a
//! key removed from the file is refused on the next request and a narrowed
//! scope applies at once. Keys from Secrets Manager live in a [`KeyAuth`]
//! cache that is carried over reloads (its TTL and refresh policy go on).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::http::StatusCode;
use keyauth::{KeyAuth, KeyId, KeySet};

use crate::backend::Model;
use crate::config::{AuthConfig, ScopedKey};
use crate::error::ApiError;
use crate::keys::{KeyStore, Ticket};

/// Verifications answered by a configured key (kept across reloads).
static STATIC_HITS: AtomicU64 = AtomicU64::new(0);
/// Verifications of an unknown key where no Secrets Manager cache exists.
static STATIC_MISSES: AtomicU64 = AtomicU64::new(0);

/// The client keys and their scopes.
#[derive(Debug)]
pub struct Access {
    /// `auth.disabled`: every request is served.
    disabled: bool,
    /// Keys from the file or `API_KEY`, scoped keys included.
    keys: KeySet,
    /// Keys from Secrets Manager (carried over reloads).
    secrets: Option<Arc<KeyAuth>>,
    /// Scoped keys' limits, by key id.
    scopes: HashMap<KeyId, ScopedKey>,
    /// Keys created at run time (kept across reloads).
    stored: Option<Arc<KeyStore>>,
}

impl Access {
    /// The keys and scopes of `cfg`, with the Secrets Manager cache (if a
    /// secret is configured).
    pub fn new(
        cfg: &AuthConfig,
        secrets: Option<Arc<KeyAuth>>,
        stored: Option<Arc<KeyStore>>,
    ) -> Self {
        let keys = KeySet::new(
            cfg.keys
                .iter()
                .chain(cfg.scoped_keys.iter().map(|s| &s.key))
                .map(|k| k.0.as_str()),
        );
        let scopes = cfg
            .scoped_keys
            .iter()
            .map(|s| (KeyId::of(&s.key.0), s.clone()))
            .collect();
        Self {
            disabled: cfg.disabled,
            keys,
            secrets,
            scopes,
            stored,
        }
    }

    /// Names for key ids: scoped keys' `name`s and stored keys' names.
    pub fn key_names(&self) -> HashMap<String, String> {
        let scoped = self
            .scopes
            .iter()
            .filter_map(|(id, s)| Some((id.as_str().to_owned(), s.name.clone()?)));
        let stored = self
            .stored
            .iter()
            .flat_map(|s| s.list())
            .map(|k| (k.id.clone(), k.name.clone()));
        scoped.chain(stored).collect()
    }

    /// A key's guardrail, if it has one: a scoped key's from the file, a
    /// stored key's from the store.
    pub fn guardrail_of(
        &self,
        key: Option<&KeyId>,
    ) -> Option<Arc<crate::config::GuardrailSettings>> {
        let key = key?;
        if let Some(s) = self.scopes.get(key) {
            return s.guardrail.clone();
        }
        self.stored.as_ref()?.get(key.as_str())?.guardrail.clone()
    }

    /// The stored keys, for the next configuration and the admin API.
    pub fn stored(&self) -> Option<Arc<KeyStore>> {
        self.stored.clone()
    }

    /// The Secrets Manager cache, for the next configuration.
    pub fn secrets(&self) -> Option<Arc<KeyAuth>> {
        self.secrets.clone()
    }

    /// Checks an `Authorization` header: the id of the key, `None` when
    /// authentication is off. Configured keys are checked first (constant
    /// time over all of them), then Secrets Manager's.
    pub async fn verify_header(&self, header: Option<&str>) -> Result<Option<KeyId>, ApiError> {
        self.verify_key(header.and_then(keyauth::parse_bearer))
            .await
    }

    /// Checks a key presented as it is (Anthropic's `x-api-key`), as
    /// [`Access::verify_header`] does.
    pub async fn verify_key(&self, key: Option<&str>) -> Result<Option<KeyId>, ApiError> {
        if self.disabled {
            return Ok(None);
        }
        let key = key
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(keyauth::Error::Missing)?;
        if let Some(id) = self.keys.verify(key) {
            STATIC_HITS.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(id));
        }
        if let Some(id) = self
            .stored
            .as_ref()
            .map(|s| s.verify(key))
            .transpose()?
            .flatten()
        {
            STATIC_HITS.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(id));
        }
        match &self.secrets {
            Some(s) => Ok(Some(s.verify(key).await?)),
            None => {
                STATIC_MISSES.fetch_add(1, Ordering::Relaxed);
                Err(keyauth::Error::Invalid.into())
            }
        }
    }

    /// A scoped key's limits applied: the model must be allowed (403
    /// otherwise), and only the allowed candidates remain (403 if none).
    /// The first step of admission (`AppState::admit`).
    pub fn permit(
        &self,
        key: Option<&KeyId>,
        model: &str,
        cands: Vec<Arc<Model>>,
    ) -> Result<Vec<Arc<Model>>, ApiError> {
        let stored = key.and_then(|k| self.stored.as_ref()?.get(k.as_str()));
        let (models, upstreams) = match (key.and_then(|k| self.scopes.get(k)), &stored) {
            (Some(scope), _) => (&scope.models, &scope.upstreams),
            (None, Some(k)) => (&k.models, &k.upstreams),
            (None, None) => return Ok(cands),
        };
        let denied = |what: String| {
            ApiError::new(StatusCode::FORBIDDEN, "permission_error", "forbidden", what)
                .param("model")
                .code("model_not_allowed")
        };
        if !models.is_empty() && !models.iter().any(|p| crate::config::glob(p, model)) {
            return Err(denied(format!(
                "This API key may not use the model '{model}'"
            )));
        }
        let out: Vec<Arc<Model>> = cands
            .into_iter()
            .filter(|m| upstreams.is_empty() || upstreams.iter().any(|u| m.named(u)))
            .collect();
        if out.is_empty() {
            return Err(denied(format!(
                "This API key may not use any upstream that serves '{model}'"
            )));
        }
        Ok(out)
    }

    /// A stored key's admission: its address, quota and limits checked and
    /// the request's `estimate` of prompt tokens reserved. `None` for keys
    /// of other sources (no quota or limits).
    pub async fn reserve(
        &self,
        key: Option<&KeyId>,
        ip: Option<std::net::IpAddr>,
        estimate: u64,
        price: impl FnOnce() -> Option<crate::config::PriceConfig>,
    ) -> Result<Option<Arc<Ticket>>, ApiError> {
        let (Some(store), Some(key)) = (&self.stored, key) else {
            return Ok(None);
        };
        let Some(k) = store.get(key.as_str()) else {
            return Ok(None);
        };
        let estimate = i64::try_from(estimate).unwrap_or(i64::MAX);
        Ok(Some(Arc::new(
            store.admit(&k, ip, estimate, price()).await?,
        )))
    }

    /// Whether requests can be authenticated (keys loaded), and the state
    /// for `/health`. Holds no key.
    pub fn health(&self) -> (bool, serde_json::Value) {
        if self.disabled {
            return (true, serde_json::json!({"enabled": false}));
        }
        let configured = self.keys.len();
        let Some(s) = &self.secrets else {
            return (
                true,
                serde_json::json!({
                    "enabled": true,
                    "source": format!("{configured} static key(s)"),
                    "loaded": true,
                    "key_count": configured,
                }),
            );
        };
        let s = s.status();
        let source = if configured > 0 {
            format!("{configured} static key(s) + {}", s.source)
        } else {
            s.source
        };
        (
            s.loaded || configured > 0,
            serde_json::json!({
                "enabled": true,
                "source": source,
                "loaded": s.loaded,
                "key_count": configured + s.key_count,
                "age_secs": s.age_secs,
                "last_refresh_error": s.last_error,
                "refreshes": s.refreshes,
                "failures": s.failures,
            }),
        )
    }

    /// Key-check counters for `/metrics`: hits, misses, refreshes and
    /// refresh failures.
    pub fn counters(&self) -> [(&'static str, u64); 4] {
        let hits = STATIC_HITS.load(Ordering::Relaxed);
        match &self.secrets {
            Some(s) => {
                let s = s.status();
                [
                    ("hits", hits + s.hits),
                    ("misses", s.misses),
                    ("refreshes", s.refreshes),
                    ("refresh_failures", s.failures),
                ]
            }
            None => [
                ("hits", hits),
                ("misses", STATIC_MISSES.load(Ordering::Relaxed)),
                ("refreshes", 0),
                ("refresh_failures", 0),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn cfg(keys: &[&str], scoped: &[(&str, &[&str])]) -> AuthConfig {
        AuthConfig {
            keys: keys.iter().map(|k| Secret((*k).into())).collect(),
            scoped_keys: scoped
                .iter()
                .map(|(k, models)| ScopedKey {
                    key: Secret((*k).into()),
                    name: None,
                    upstreams: Vec::new(),
                    models: models.iter().map(|m| (*m).into()).collect(),
                    guardrail: None,
                })
                .collect(),
            ..AuthConfig::default()
        }
    }

    fn check(a: &Access, key: &str) -> Result<Option<KeyId>, u16> {
        let h = format!("Bearer {key}");
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(a.verify_header(Some(&h)))
            .map_err(|e| e.status.as_u16())
    }

    #[test]
    fn keys_and_scopes_are_one_value() {
        let before = Access::new(&cfg(&["sk-a"], &[("sk-s", &["gpt-*"])]), None, None);
        assert!(check(&before, "sk-a").is_ok());
        let id = check(&before, "sk-s").unwrap().unwrap();
        assert!(before.permit(Some(&id), "llama", Vec::new()).is_err());
        // The scoped key removed, the plain one changed: both old keys fail.
        let after = Access::new(&cfg(&["sk-a2"], &[]), None, None);
        assert_eq!(check(&after, "sk-s"), Err(401));
        assert_eq!(check(&after, "sk-a"), Err(401));
        assert!(check(&after, "sk-a2").is_ok());
        // Narrowed: the new scope applies.
        let narrowed = Access::new(&cfg(&[], &[("sk-s", &["gpt-4o"])]), None, None);
        assert!(
            narrowed
                .permit(Some(&id), "gpt-4o-mini", Vec::new())
                .is_err()
        );
    }

    #[test]
    fn disabled_serves_without_a_key_and_missing_keys_are_401() {
        let off = Access::new(
            &AuthConfig {
                disabled: true,
                ..AuthConfig::default()
            },
            None,
            None,
        );
        assert_eq!(check(&off, "anything"), Ok(None));
        let on = Access::new(&cfg(&["sk-a"], &[]), None, None);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = rt.block_on(on.verify_header(None)).unwrap_err();
        assert_eq!(e.status.as_u16(), 401);
    }
}
