//! Admission and settlement under a stored key. [`KeyStore::verify`] finds
//! a presented key (401 for a disabled or expired one, saying which);
//! [`KeyStore::admit`] checks the client's address, the quota, the
//! concurrency and the rate windows, and reserves the request's estimated
//! prompt; the [`Ticket`] it returns is settled once by the request's
//! outcome with the tokens really used (dropped unsettled, it releases its
//! reservation). A quota is overshot by at most the requests in flight.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::StatusCode;
use sha2::Digest;

use super::limits::{Quota, QuotaCheck, duration_text};
use super::{KeyStore, Live, StoredKey};
use crate::config::PriceConfig;
use crate::error::ApiError;

fn now_ms() -> i64 {
    i64::try_from(crate::ids::now_ms()).unwrap_or(i64::MAX)
}

impl KeyStore {
    /// The stored key `secret` is, if it is one, with its id: `Err` (401)
    /// when it is disabled or expired. Memory only.
    pub fn verify(&self, secret: &str) -> Result<Option<keyauth::KeyId>, ApiError> {
        // Found by its whole SHA-256 (a digest's equality tells nothing
        // about the secret).
        let hash: [u8; 32] = sha2::Sha256::digest(secret.as_bytes()).into();
        let Some(k) = self.find(&hash) else {
            return Ok(None);
        };
        let id = keyauth::KeyId::from_digest(&hash);
        // Disabled or expired (usage is the admission's business).
        match k.status(now_ms(), super::Used::default()) {
            "disabled" => Err(ApiError::unauthorized(
                "This API key has been disabled. Ask the gateway's operator to enable it.",
            )
            .code("key_disabled")),
            "expired" => Err(ApiError::unauthorized(format!(
                "This API key expired at {} (Unix ms).",
                k.expires_at.unwrap_or_default()
            ))
            .code("key_expired")),
            _ => Ok(Some(id)),
        }
    }

    /// Admits one request of key `k` from `ip` with `estimate` prompt
    /// tokens: 403 for an address outside its allow-list, 429
    /// `insufficient_quota` when its quota is used up, 429
    /// `rate_limit_exceeded` (with `Retry-After` and `x-ratelimit-*`) over a
    /// rate or concurrency limit.
    pub async fn admit(
        self: &Arc<Self>,
        k: &Arc<StoredKey>,
        ip: Option<IpAddr>,
        estimate: i64,
        price: Option<PriceConfig>,
    ) -> Result<Ticket, ApiError> {
        if !k.ip_allowed(ip) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "permission_error",
                "ip_not_allowed",
                "This API key may not be used from your address.",
            )
            .code("ip_not_allowed"));
        }
        let live = self.live(&k.id);
        let used = k.used_with(&live);
        // Redis is seeded with the store's figure alone: every settlement
        // reaches Redis at once and the store later, so the store's figure
        // only passes Redis' when Redis missed usage (a restart, or an
        // outage longer than a settlement waits to reach it).
        // This replica's unwritten usage must not seed it: for a moment
        // after each write it is counted twice, and Redis would keep that.
        let stored = k.stored_with(&live);
        let over = |what: String| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                "insufficient_quota",
                format!("You exceeded your current quota: this API key's {what} are used up."),
            )
            .code("insufficient_quota")
        };
        let estimate_cost = cost(price, estimate, (0, 0), 0);
        if k.quota_micro_usd.is_some() && price.is_none() {
            tracing::debug!(key_id = %k.id, "a cost quota, but no [[prices]] entry for this model: its cost counts as 0");
        }
        // Each quota: in Redis when there is one (one count for every
        // replica), else this replica's view of the store plus what it has
        // reserved.
        let mut shared = Vec::new();
        for (kind, quota, seed, mine, reserved, n) in [
            (
                't',
                k.quota_tokens,
                stored.tokens,
                used.tokens,
                &live.reserved,
                estimate,
            ),
            (
                'c',
                k.quota_micro_usd,
                stored.micro_usd,
                used.micro_usd,
                &live.reserved_cost,
                estimate_cost,
            ),
        ] {
            let Some(q) = quota else { continue };
            let exhausted = match self.limiter().quota_take(&k.id, kind, seed, q, n).await {
                QuotaCheck::Reserved => {
                    shared.push((kind, n));
                    false
                }
                QuotaCheck::Exhausted(_) => true,
                QuotaCheck::Local => {
                    // Nothing reserved in Redis: the whole usage goes there
                    // at settlement (applied once Redis answers again).
                    shared.push((kind, 0));
                    mine + reserved.load(Ordering::Relaxed) >= q
                }
            };
            if exhausted {
                self.release(&k.id, &shared);
                return Err(over(if kind == 't' {
                    format!("{q} tokens")
                } else {
                    format!("US${:.2}", q as f64 / 1e6)
                }));
            }
        }
        let inflight = live.inflight.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(max) = k.max_concurrent
            && inflight > max
        {
            live.inflight.fetch_sub(1, Ordering::Relaxed);
            self.release(&k.id, &shared);
            let mut e = limited(format!(
                "Rate limit reached: this API key may run {max} requests at once."
            ));
            e.retry_after = Some("1".into());
            return Err(e);
        }
        let now = now_ms();
        let taken = self
            .limiter()
            .check(&k.id, &live.windows, now, (k.rpm, k.tpm), estimate)
            .await;
        match taken {
            Ok(_) => {}
            Err(r) => {
                live.inflight.fetch_sub(1, Ordering::Relaxed);
                self.release(&k.id, &shared);
                let q = &r.quota;
                let mut e = limited(format!(
                    "Rate limit reached for this API key on {} per min: limit {}, remaining {}. Please try again in {}.",
                    q.kind,
                    q.limit,
                    q.remaining,
                    duration_text(r.retry_ms)
                ));
                e.body.error.kind = q.kind.into();
                e.retry_after = Some(((r.retry_ms + 999) / 1000).max(1).to_string());
                e.headers = headers(std::slice::from_ref(q));
                return Err(e);
            }
        }
        live.reserved.fetch_add(estimate, Ordering::Relaxed);
        live.reserved_cost
            .fetch_add(estimate_cost, Ordering::Relaxed);
        Ok(Ticket {
            store: Arc::clone(self),
            id: k.id.clone(),
            live,
            estimate,
            estimate_cost,
            price,
            shared,
            settled: AtomicBool::new(false),
        })
    }
}

impl KeyStore {
    /// Gives back quota reserved in Redis for a request that was refused.
    fn release(&self, id: &str, shared: &[(char, i64)]) {
        for &(kind, n) in shared {
            self.limiter().quota_adjust(id, kind, -n);
        }
    }
}

fn limited(message: String) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "requests",
        "rate_limited",
        message,
    )
    .code("rate_limit_exceeded")
}

/// OpenAI's `x-ratelimit-*` headers for these limits.
fn headers(quotas: &[Quota]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for q in quotas {
        let (l, r, t) = if q.kind == "requests" {
            (
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            )
        } else {
            (
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens",
            )
        };
        out.push((l, q.limit.to_string()));
        out.push((r, q.remaining.to_string()));
        out.push((t, duration_text(q.reset_ms)));
    }
    out
}

/// A request admitted under a stored key.
#[derive(Debug)]
pub struct Ticket {
    store: Arc<KeyStore>,
    id: String,
    live: Arc<Live>,
    estimate: i64,
    estimate_cost: i64,
    price: Option<PriceConfig>,
    /// Quotas counted in Redis: (kind, amount reserved there; 0 when this
    /// replica decided alone). Settlement adds the difference to the real
    /// usage, so Redis counts every request once, whoever decided it.
    shared: Vec<(char, i64)>,
    settled: AtomicBool,
}

impl Ticket {
    /// The prompt tokens reserved at admission.
    pub fn estimate(&self) -> i64 {
        self.estimate
    }

    /// Settles the request with what it `spent` (once; later calls do
    /// nothing): the reservation released, the usage and its cost counted
    /// here at once and written to the store off the request path.
    pub fn settle(&self, spent: Spent) {
        if self.settled.swap(true, Ordering::AcqRel) {
            return;
        }
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let tokens = n(spent.prompt).saturating_add(n(spent.completion));
        let micro_usd = cost(
            self.price,
            n(spent.prompt),
            (n(spent.cached), n(spent.written)),
            n(spent.completion),
        );
        let l = &self.live;
        l.inflight.fetch_sub(1, Ordering::Relaxed);
        l.reserved.fetch_sub(self.estimate, Ordering::Relaxed);
        l.reserved_cost
            .fetch_sub(self.estimate_cost, Ordering::Relaxed);
        let limiter = self.store.limiter();
        limiter.adjust(&self.id, &l.windows, now_ms(), tokens - self.estimate);
        for &(kind, reserved) in &self.shared {
            let real = if kind == 't' { tokens } else { micro_usd };
            limiter.quota_adjust(&self.id, kind, real - reserved);
        }
        if tokens > 0 || micro_usd > 0 {
            // Counted at once; the writer collects what is unwritten.
            l.pending.fetch_add(tokens, Ordering::Relaxed);
            l.pending_cost.fetch_add(micro_usd, Ordering::Relaxed);
            l.unwritten.fetch_add(tokens, Ordering::Relaxed);
            l.unwritten_cost.fetch_add(micro_usd, Ordering::Relaxed);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.settle(Spent::default());
    }
}

/// What a request used: prompt tokens (of which `cached` were read from a
/// cache) and completion tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    /// Prompt tokens, cached ones included.
    pub prompt: u64,
    /// Prompt tokens read from a cache.
    pub cached: u64,
    /// Prompt tokens written to a cache.
    pub written: u64,
    /// Completion tokens.
    pub completion: u64,
}

/// The cost of tokens at `price`, millionths of a US dollar (prices are per
/// million tokens, so a token at US$1/M costs one micro-dollar). `cache`:
/// the prompt tokens (of `prompt`) read from and written to a cache.
pub(crate) fn cost(
    price: Option<PriceConfig>,
    prompt: i64,
    cache: (i64, i64),
    completion: i64,
) -> i64 {
    let Some(p) = price else { return 0 };
    let prompt = prompt.max(0);
    let read = cache.0.clamp(0, prompt);
    let written = cache.1.clamp(0, prompt - read);
    let fresh = prompt - read - written;
    let total = fresh as f64 * p.prompt
        + read as f64 * p.cached_prompt.unwrap_or(p.prompt)
        + written as f64 * p.cache_write_prompt.unwrap_or(p.prompt)
        + completion.max(0) as f64 * p.completion;
    total.ceil() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_the_price_per_million() {
        let p = PriceConfig {
            prompt: 2.5,
            completion: 10.0,
            cached_prompt: Some(1.25),
            cache_write_prompt: Some(5.0),
        };
        // 1000 prompt tokens (400 cached), 100 completion tokens.
        assert_eq!(
            cost(Some(p), 1000, (400, 0), 100),
            600 * 5 / 2 + 400 * 5 / 4 + 1000
        );
        // 200 of them written to the cache, at the write price.
        assert_eq!(
            cost(Some(p), 1000, (400, 200), 100),
            400 * 5 / 2 + 400 * 5 / 4 + 200 * 5 + 1000
        );
        assert_eq!(cost(None, 1000, (0, 0), 100), 0);
        let plain = PriceConfig {
            cached_prompt: None,
            cache_write_prompt: None,
            ..p
        };
        assert_eq!(cost(Some(plain), 10, (10, 0), 0), 25);
        // Counts past the prompt are clamped, never negative.
        assert_eq!(cost(Some(plain), 10, (8, 8), 0), 25);
    }
}
