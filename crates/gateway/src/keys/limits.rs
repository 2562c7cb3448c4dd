//! Requests and tokens per minute, per key: a sliding window (the current
//! minute's count plus the previous minute's, weighted by how much of it
//! is still inside the window), local to this replica.

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
        let over = used + n - limit;
        let wait = if self.prev > 0.0 {
            (over / self.prev * WINDOW_MS as f64).ceil() as i64
        } else {
            WINDOW_MS - (now_ms - self.start_ms)
        };
        Err(wait.clamp(1, WINDOW_MS))
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

/// The rate limiter (this replica's windows).
#[derive(Debug, Clone, Default)]
pub struct Limiter;

impl Limiter {
    /// Takes one request and `tokens` from `w` under `rpm` and `tpm`:
    /// the headers' values, or the limit that refused (nothing is taken
    /// then).
    pub fn take(
        &self,
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
}

/// `6m0s`, `1.5s`, `20ms`: OpenAI's `x-ratelimit-reset-*` format.
pub fn duration_text(ms: i64) -> String {
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
mod tests {
    use super::*;

    #[test]
    fn a_minute_holds_the_limit_and_slides() {
        let l = Limiter;
        let mut w = Windows::default();
        let t0 = 600_000;
        for i in 0..5 {
            let q = l.take(&mut w, t0 + i, Some(5), None, 0).unwrap();
            assert_eq!(q[0].remaining, 4 - i);
        }
        let r = l.take(&mut w, t0 + 10, Some(5), None, 0).unwrap_err();
        assert_eq!(r.quota.kind, "requests");
        assert!(r.retry_ms > 50_000, "{r:?}");
        // Half way into the next minute, half of the last one (2.5) still
        // counts: two more pass, the third does not.
        assert!(l.take(&mut w, t0 + 90_000, Some(5), None, 0).is_ok());
        assert!(l.take(&mut w, t0 + 90_001, Some(5), None, 0).is_ok());
        assert!(l.take(&mut w, t0 + 90_002, Some(5), None, 0).is_err());
    }

    #[test]
    fn a_refusal_takes_nothing_and_tokens_settle() {
        let l = Limiter;
        let mut w = Windows::default();
        let t = 1_200_000;
        l.take(&mut w, t, Some(10), Some(100), 90).unwrap();
        let r = l.take(&mut w, t, Some(10), Some(100), 20).unwrap_err();
        assert_eq!(r.quota.kind, "tokens");
        assert_eq!(w.requests.count(t), 1.0, "the refused request took nothing");
        w.tokens.adjust(t, -80.0);
        assert!(l.take(&mut w, t, Some(10), Some(100), 20).is_ok());
    }

    #[test]
    fn reset_durations_read_like_openais() {
        assert_eq!(duration_text(20), "20ms");
        assert_eq!(duration_text(1500), "1.5s");
        assert_eq!(duration_text(360_000), "6m0s");
    }
}
