//! Requests and tokens per minute, per key: a sliding window (the current
//! minute's count plus the previous minute's, weighted by how much of it
//! is still inside the window). Local to this replica, or shared by every
//! replica through Redis (one Lua script per check, both limits at once);
//! a Redis that fails or is slow degrades to the local windows, with a
//! warning and a counter, never to refusing traffic.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// The window.
const WINDOW_MS: i64 = 60_000;

/// One counter over a sliding minute.
#[derive(Debug, Default, Clone)]
pub struct Window {
    start_ms: i64,
    prev: f64,
    curr: f64,
}

impl Window {
    fn roll(&mut self, now_ms: i64) {
        let start = now_ms - now_ms.rem_euclid(WINDOW_MS);
        if start == self.start_ms {
            return;
        }
        self.prev = if start - self.start_ms == WINDOW_MS {
            self.curr
        } else {
            0.0
        };
        self.curr = 0.0;
        self.start_ms = start;
    }

    /// The count over the last minute.
    fn count(&mut self, now_ms: i64) -> f64 {
        self.roll(now_ms);
        let into = (now_ms - self.start_ms) as f64 / WINDOW_MS as f64;
        self.prev * (1.0 - into) + self.curr
    }

    /// Adds `n` if the count stays within `limit`; else how long until it
    /// would (ms).
    fn take(&mut self, now_ms: i64, n: f64, limit: f64) -> Result<f64, i64> {
        let used = self.count(now_ms);
        if used + n <= limit || (used == 0.0 && n > limit) {
            self.curr += n;
            return Ok((limit - used - n).max(0.0));
        }
        // The previous minute's share shrinks linearly; past it, the current
        // one starts over.
        Err(wait(self.curr, self.prev, now_ms - self.start_ms, n, limit))
    }

    /// Changes the count by `n` (a settled request's real tokens against
    /// its estimate).
    pub fn adjust(&mut self, now_ms: i64, n: f64) {
        self.roll(now_ms);
        self.curr = (self.curr + n).max(0.0);
    }

    fn reset_ms(&self, now_ms: i64) -> i64 {
        WINDOW_MS - (now_ms - self.start_ms)
    }
}

/// A key's two windows.
#[derive(Debug, Default)]
pub struct Windows {
    /// Requests.
    pub requests: Window,
    /// Tokens.
    pub tokens: Window,
}

/// What a limit check found, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Quota {
    /// `requests` or `tokens`.
    pub kind: &'static str,
    /// The limit per minute.
    pub limit: i64,
    /// What is left of it.
    pub remaining: i64,
    /// Until the window frees what was used (ms).
    pub reset_ms: i64,
}

/// A refused request: which limit, and how long to wait.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// The limit that refused.
    pub quota: Quota,
    /// Until a retry can pass (ms).
    pub retry_ms: i64,
}

/// Checks that fell back from Redis to the local windows.
pub(crate) static REDIS_FALLBACKS: AtomicU64 = AtomicU64::new(0);

/// The rate limiter.
#[derive(Debug, Clone, Default)]
pub struct Limiter {
    redis: Option<Arc<Shared>>,
}

/// Redis, shared by replicas.
struct Shared {
    conn: tokio::sync::Mutex<Option<redis::aio::ConnectionManager>>,
    client: redis::Client,
    script: redis::Script,
    /// [`QUOTA_SCRIPT`], its digest computed once.
    quota_script: redis::Script,
    warned_ms: AtomicI64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redis")
    }
}

/// How long a Redis check may take before the local windows decide.
const REDIS_DEADLINE: Duration = Duration::from_millis(250);

/// How long an answer is still read once nobody waits for it, and how long
/// a background adjustment may take: a reservation Redis made after its
/// check's deadline is given back, and an adjustment is not dropped by a
/// moment's stall.
const REDIS_LATE: Duration = Duration::from_secs(5);

/// Both limits in one atomic step: KEYS are the requests' and tokens'
/// current and previous windows; ARGV the two limits (-1: none), the
/// tokens, the previous window's weight (parts per million) and the keys'
/// lifetime. Returns {allowed, refused kind (0 requests, 1 tokens), used
/// requests, used tokens, previous requests, previous tokens} before this
/// request.
const SCRIPT: &str = r"
local function used(cur, prev)
  local c = tonumber(redis.call('GET', cur) or '0')
  local p = tonumber(redis.call('GET', prev) or '0')
  return c + math.floor(p * tonumber(ARGV[4]) / 1000000), p
end
local ur, pr = used(KEYS[1], KEYS[2])
local ut, pt = used(KEYS[3], KEYS[4])
local rpm, tpm, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if rpm >= 0 and ur + 1 > rpm and not (ur == 0 and 1 > rpm) then
  return {0, 0, ur, ut, pr, pt}
end
if tpm >= 0 and ut + n > tpm and not (ut == 0 and n > tpm) then
  return {0, 1, ur, ut, pr, pt}
end
redis.call('INCRBY', KEYS[1], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if n > 0 then
  redis.call('INCRBY', KEYS[3], n)
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
end
return {1, 0, ur, ut, pr, pt}
";

impl Limiter {
    /// Limits local to this replica.
    pub fn local() -> Self {
        Self::default()
    }

    /// Limits shared through the Redis at `url` (connected in the
    /// background; until it answers, the local windows decide).
    pub fn redis(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        Ok(Self {
            redis: Some(Arc::new(Shared {
                conn: tokio::sync::Mutex::new(None),
                client,
                script: redis::Script::new(SCRIPT),
                quota_script: redis::Script::new(QUOTA_SCRIPT),
                warned_ms: AtomicI64::new(0),
            })),
        })
    }

    /// Takes one request and `tokens` of key `id` under `rpm` and `tpm`:
    /// the headers' values, or the limit that refused (nothing is taken
    /// then).
    pub async fn check(
        &self,
        id: &str,
        windows: &std::sync::Mutex<Windows>,
        now_ms: i64,
        (rpm, tpm): (Option<i64>, Option<i64>),
        tokens: i64,
    ) -> Result<Vec<Quota>, Refused> {
        if rpm.is_none() && tpm.is_none() {
            return Ok(Vec::new());
        }
        if let Some(r) = &self.redis {
            match tokio::time::timeout(REDIS_DEADLINE, r.check(id, now_ms, rpm, tpm, tokens)).await
            {
                Ok(Ok(out)) => return out,
                Ok(Err(e)) => r.degraded(now_ms, &e.to_string()),
                Err(_) => r.degraded(now_ms, "no answer within 250 ms"),
            }
        }
        let mut w = windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        take(&mut w, now_ms, rpm, tpm, tokens)
    }

    /// Corrects key `id`'s token count by `delta` (real usage against the
    /// estimate taken at admission).
    pub fn adjust(&self, id: &str, windows: &std::sync::Mutex<Windows>, now_ms: i64, delta: i64) {
        if delta == 0 {
            return;
        }
        windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .tokens
            .adjust(now_ms, delta as f64);
        self.redis_incr(window_key(id, 't', start_of(now_ms)), delta);
    }
}

/// A quota counter shared by replicas, reconciled with the store on every
/// check: the larger of Redis' count and the store's total as this replica
/// knows it (usage settled while Redis was away reaches the store, never
/// Redis, so after a stall the store's figure wins) (KEYS[1]; ARGV: the
/// store's total, the quota, what to reserve). Returns {allowed, used
/// before}.
const QUOTA_SCRIPT: &str = r"
local cur = redis.call('GET', KEYS[1])
local used = cur and tonumber(cur) or 0
local seed = tonumber(ARGV[1])
if seed > used then
  used = seed
  redis.call('SET', KEYS[1], seed, 'EX', 86400)
end
if used >= tonumber(ARGV[2]) then
  return {0, used}
end
redis.call('INCRBY', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], 86400)
return {1, used}
";

/// What a quota check in Redis found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaCheck {
    /// Reserved in Redis (settle there too).
    Reserved,
    /// Used up (what Redis counts as used).
    Exhausted(i64),
    /// No Redis, or it failed: the replica's own count decides.
    Local,
}

impl Limiter {
    /// Reserves `n` of key `id`'s quota `kind` (`t` tokens, `c` cost) in
    /// Redis, seeded with `seed` (the store's total as last read), so
    /// replicas share one count between their batched writes. A check that
    /// misses its deadline is left to finish: if Redis reserved after all,
    /// the reservation is given back (the local count decided instead).
    pub async fn quota_take(
        &self,
        id: &str,
        kind: char,
        seed: i64,
        quota: i64,
        n: i64,
    ) -> QuotaCheck {
        let Some(r) = &self.redis else {
            return QuotaCheck::Local;
        };
        let key = format!("gw:q:{id}:{kind}");
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let shared = Arc::clone(r);
        let late = self.clone();
        tokio::spawn(async move {
            let out = async {
                let mut c = shared.connection().await?;
                shared
                    .quota_script
                    .key(&key)
                    .arg(seed)
                    .arg(quota)
                    .arg(n)
                    .invoke_async::<Vec<i64>>(&mut c)
                    .await
            }
            .await;
            // Nobody waits any more: a reservation made late is returned.
            if let Err(Ok(v)) = tx.send(out)
                && v.first() == Some(&1)
            {
                late.redis_incr(key, -n);
            }
        });
        let answer = match tokio::time::timeout(REDIS_DEADLINE, &mut rx).await {
            Ok(a) => a.ok(),
            // Closed first, so an answer is either here now or returned by
            // the task, never lost between the two.
            Err(_) => {
                rx.close();
                rx.try_recv().ok()
            }
        };
        match answer {
            Some(Ok(v)) if v.first() == Some(&1) => QuotaCheck::Reserved,
            Some(Ok(v)) => QuotaCheck::Exhausted(v.get(1).copied().unwrap_or(quota)),
            Some(Err(e)) => {
                r.degraded(crate::ids::now_ms() as i64, &e.to_string());
                QuotaCheck::Local
            }
            None => {
                r.degraded(crate::ids::now_ms() as i64, "no answer within 250 ms");
                QuotaCheck::Local
            }
        }
    }

    /// Corrects a quota counter reserved in Redis by `delta`.
    pub fn quota_adjust(&self, id: &str, kind: char, delta: i64) {
        self.redis_incr(format!("gw:q:{id}:{kind}"), delta);
    }

    /// Forgets key `id`'s quota counters (its usage was reset).
    pub fn quota_reset(&self, id: &str) {
        if let Some(r) = &self.redis {
            let (r, keys) = (
                Arc::clone(r),
                [format!("gw:q:{id}:t"), format!("gw:q:{id}:c")],
            );
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Ok(mut c) = r.connection().await {
                        let _ = tokio::time::timeout(
                            REDIS_LATE,
                            redis::cmd("DEL").arg(&keys).exec_async(&mut c),
                        )
                        .await;
                    }
                });
            }
        }
    }

    /// `INCRBY key delta` in the background (an adjustment never waits).
    fn redis_incr(&self, key: String, delta: i64) {
        let Some(r) = &self.redis else { return };
        if delta == 0 {
            return;
        }
        let r = Arc::clone(r);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Ok(mut c) = r.connection().await {
                    let _ = tokio::time::timeout(
                        REDIS_LATE,
                        redis::cmd("INCRBY").arg(&key).arg(delta).exec_async(&mut c),
                    )
                    .await;
                }
            });
        }
    }
}

fn start_of(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(WINDOW_MS)
}

fn window_key(id: &str, kind: char, start: i64) -> String {
    format!("gw:rl:{id}:{kind}:{start}")
}

impl Shared {
    async fn connection(&self) -> redis::RedisResult<redis::aio::ConnectionManager> {
        let mut g = self.conn.lock().await;
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_DEADLINE))
            .set_response_timeout(Some(REDIS_LATE))
            .set_number_of_retries(1);
        let c = redis::aio::ConnectionManager::new_with_config(self.client.clone(), cfg).await?;
        *g = Some(c.clone());
        Ok(c)
    }

    async fn check(
        &self,
        id: &str,
        now_ms: i64,
        rpm: Option<i64>,
        tpm: Option<i64>,
        tokens: i64,
    ) -> redis::RedisResult<Result<Vec<Quota>, Refused>> {
        let mut c = self.connection().await?;
        let start = start_of(now_ms);
        let into = now_ms - start;
        let weight = (WINDOW_MS - into) * 1_000_000 / WINDOW_MS;
        let v: Vec<i64> = self
            .script
            .key(window_key(id, 'r', start))
            .key(window_key(id, 'r', start - WINDOW_MS))
            .key(window_key(id, 't', start))
            .key(window_key(id, 't', start - WINDOW_MS))
            .arg(rpm.unwrap_or(-1))
            .arg(tpm.unwrap_or(-1))
            .arg(tokens)
            .arg(weight)
            .arg(2 * WINDOW_MS)
            .invoke_async(&mut c)
            .await?;
        let [allowed, kind, ur, ut, pr, pt] = v[..] else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "the rate-limit script answered oddly",
            )));
        };
        let reset = WINDOW_MS - into;
        let quota = |kind, limit: i64, used: i64, n: i64| Quota {
            kind,
            limit,
            remaining: (limit - used - n).max(0),
            reset_ms: reset,
        };
        if allowed == 1 {
            let mut out = Vec::new();
            if let Some(l) = rpm {
                out.push(quota("requests", l, ur, 1));
            }
            if let Some(l) = tpm {
                out.push(quota("tokens", l, ut, tokens));
            }
            return Ok(Ok(out));
        }
        let (kind, limit, used, n, prev) = if kind == 0 {
            ("requests", rpm.unwrap_or(0), ur, 1, pr)
        } else {
            ("tokens", tpm.unwrap_or(0), ut, tokens, pt)
        };
        // This minute's own count (the script adds the previous minute's
        // share to it).
        let curr = used - prev * weight / 1_000_000;
        let retry_ms = wait(curr as f64, prev as f64, into, n as f64, limit as f64);
        Ok(Err(Refused {
            quota: Quota {
                kind,
                limit,
                remaining: (limit - used).max(0),
                reset_ms: retry_ms,
            },
            retry_ms,
        }))
    }

    fn degraded(&self, now_ms: i64, why: &str) {
        REDIS_FALLBACKS.fetch_add(1, Ordering::Relaxed);
        let last = self.warned_ms.load(Ordering::Relaxed);
        if now_ms - last > 30_000
            && self
                .warned_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                error = why,
                "Redis rate limits unavailable: this replica's own limits apply until it answers"
            );
        }
    }
}

/// How long until a request of `n` fits under `limit` (ms), from a
/// window holding `curr` this minute and `prev` the minute before, `into_ms`
/// into this minute: the previous minute's share shrinks linearly until
/// this minute ends; then this minute's count is the previous one and
/// shrinks in turn. A retry after that long is admitted (if nothing else
/// was taken meanwhile).
fn wait(curr: f64, prev: f64, into_ms: i64, n: f64, limit: f64) -> i64 {
    let x = into_ms as f64 / WINDOW_MS as f64;
    let room = limit - n;
    // One millisecond more than exact: the count is a float.
    let ms = |t: f64| ((t * WINDOW_MS as f64).ceil() as i64 + 1).clamp(1, 2 * WINDOW_MS);
    // Within this minute, as the previous one's share shrinks.
    if room >= curr {
        if prev <= 0.0 {
            return 1;
        }
        let t = ((1.0 - x) - (room - curr) / prev).max(0.0);
        if t < 1.0 - x {
            return ms(t);
        }
    }
    // In the next minute, as this one's count shrinks; past that, nothing
    // is counted.
    if room >= 0.0 && curr > 0.0 {
        ms((1.0 - x) + (1.0 - room / curr).max(0.0))
    } else if room >= 0.0 || curr <= 0.0 {
        ms(1.0 - x)
    } else {
        ms(2.0 - x)
    }
}

/// Takes one request and `tokens` from the local windows `w`.
fn take(
    w: &mut Windows,
    now_ms: i64,
    rpm: Option<i64>,
    tpm: Option<i64>,
    tokens: i64,
) -> Result<Vec<Quota>, Refused> {
    let mut out = Vec::new();
    let before = (w.requests.clone(), w.tokens.clone());
    for (kind, limit, n) in [("requests", rpm, 1), ("tokens", tpm, tokens)] {
        let Some(limit) = limit else { continue };
        let win = if kind == "requests" {
            &mut w.requests
        } else {
            &mut w.tokens
        };
        match win.take(now_ms, n as f64, limit as f64) {
            Ok(left) => out.push(Quota {
                kind,
                limit,
                remaining: left.floor() as i64,
                reset_ms: win.reset_ms(now_ms),
            }),
            Err(retry_ms) => {
                let used = win.count(now_ms);
                (w.requests, w.tokens) = before;
                return Err(Refused {
                    quota: Quota {
                        kind,
                        limit,
                        remaining: (limit as f64 - used).max(0.0).floor() as i64,
                        reset_ms: retry_ms,
                    },
                    retry_ms,
                });
            }
        }
    }
    Ok(out)
}

/// `6m0s`, `1.5s`, `20ms`: OpenAI's `x-ratelimit-reset-*` format.
pub(crate) fn duration_text(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (m, s) = (ms / 60_000, (ms % 60_000) as f64 / 1000.0);
    let s = if s.fract() == 0.0 {
        format!("{}s", s as i64)
    } else {
        format!("{s:.1}s")
    };
    if m > 0 { format!("{m}m{s}") } else { s }
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
