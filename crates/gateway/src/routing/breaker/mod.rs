//! Candidate ordering and per-candidate health: the circuit breakers, the
//! time-to-first-byte EWMA, manual disable. Shared by every worker.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyauth::{Clock, TokioClock};
use tokio::time::Instant;

use crate::backend::Model;
use crate::config::{RoutingConfig, Strategy};
use crate::error::{ApiError, Retry};

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Taking traffic.
    Closed,
    /// Failing: skipped until the cool-down ends.
    Open,
    /// One probe request is allowed through.
    HalfOpen,
    /// Out of rotation by configuration or the admin API.
    Disabled,
}

impl BreakerState {
    /// The state as the `gateway_breaker_state` gauge shows it.
    pub fn gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
            Self::Disabled => 3,
        }
    }
}

#[derive(Debug)]
struct Health {
    state: BreakerState,
    consecutive: u32,
    window: VecDeque<bool>,
    open_until: Option<Instant>,
    probing: bool,
    ewma_ttfb_ms: Option<f64>,
    requests: u64,
    failures: u64,
    last_error: Option<String>,
    opened: u64,
    /// The admin API's last word (disabled or not), kept across reloads.
    admin: Option<bool>,
}

impl Health {
    fn new(disabled: bool) -> Self {
        Self {
            state: if disabled {
                BreakerState::Disabled
            } else {
                BreakerState::Closed
            },
            consecutive: 0,
            window: VecDeque::new(),
            open_until: None,
            probing: false,
            ewma_ttfb_ms: None,
            requests: 0,
            failures: 0,
            last_error: None,
            opened: 0,
            admin: None,
        }
    }

    fn error_rate(&self) -> f64 {
        if self.window.is_empty() {
            return 0.0;
        }
        self.window.iter().filter(|ok| !**ok).count() as f64 / self.window.len() as f64
    }
}

/// What the admin API shows of one candidate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HealthView {
    /// Upstream name, or `models/<name>` for a SageMaker or Bedrock model.
    pub name: String,
    /// Breaker state.
    pub state: BreakerState,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Share of failures over the recent window.
    pub error_rate: f64,
    /// Outcomes in the window.
    pub window: usize,
    /// Time-to-first-byte EWMA, ms.
    pub ewma_ttfb_ms: Option<f64>,
    /// Requests since start.
    pub requests: u64,
    /// Failures since start.
    pub failures: u64,
    /// Times the breaker opened.
    pub opened: u64,
    /// The last failure's reason (no secrets: an error message).
    pub last_error: Option<String>,
}

/// Routing state shared by every worker.
#[derive(Debug)]
pub struct Router {
    alerts: Option<crate::observe::alerts::Alerter>,
    clock: Arc<dyn Clock>,
    cfg: RoutingConfig,
    health: Mutex<HashMap<String, Health>>,
    rng: Mutex<u64>,
}

impl Router {
    /// A router for these candidates (name, disabled at start).
    pub fn new(cfg: RoutingConfig, names: impl IntoIterator<Item = (String, bool)>) -> Self {
        let health = names
            .into_iter()
            .map(|(n, disabled)| (n, Health::new(disabled)))
            .collect();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            | 1;
        Self {
            alerts: None,
            clock: Arc::new(TokioClock),
            cfg,
            health: Mutex::new(health),
            rng: Mutex::new(seed),
        }
    }

    /// Sends breaker and failure-burst events to `alerts`.
    #[must_use]
    pub fn with_alerts(mut self, alerts: Option<crate::observe::alerts::Alerter>) -> Self {
        self.alerts = alerts;
        self
    }

    /// Reads time from `clock` (tests drive it by hand).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The alert sender, if any.
    pub fn alerts(&self) -> Option<crate::observe::alerts::Alerter> {
        self.alerts.clone()
    }

    /// The routing settings.
    pub fn config(&self) -> &RoutingConfig {
        &self.cfg
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Health>> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn random(&self) -> u64 {
        let mut s = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        // xorshift64*
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        s.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The candidates in the order to try them, by the strategy; disabled
    /// ones left out, open ones last (they are only tried once their
    /// cool-down has passed).
    pub fn order(&self, cands: Vec<Arc<Model>>) -> Vec<Arc<Model>> {
        self.order_for(cands, None)
    }

    /// [`Self::order`], with the conversation's `affinity` (see
    /// [`crate::routing::affinity`]) in place of the strategy's draw when
    /// the strategy spreads requests (weighted, least latency): the same
    /// conversation gets the same order while its candidates are healthy.
    pub fn order_for(&self, mut cands: Vec<Arc<Model>>, affinity: Option<u64>) -> Vec<Arc<Model>> {
        {
            let h = self.lock();
            cands.retain(|m| {
                h.get(&m.key())
                    .is_none_or(|x| x.state != BreakerState::Disabled)
            });
        }
        match (self.cfg.strategy, affinity) {
            (Strategy::Priority, _) => cands.sort_by_key(|m| m.priority()),
            (_, Some(a)) => crate::routing::affinity::order(&mut cands, a),
            (Strategy::Weighted, None) => {
                // Weighted shuffle within each priority: key = u^(1/w).
                let mut keyed: Vec<(i32, f64, Arc<Model>)> = cands
                    .into_iter()
                    .map(|m| {
                        let u = (self.random() >> 11) as f64 / (1u64 << 53) as f64;
                        let w = f64::from(m.weight().max(1));
                        (m.priority(), -u.max(f64::MIN_POSITIVE).ln() / w, m)
                    })
                    .collect();
                keyed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
                cands = keyed.into_iter().map(|(_, _, m)| m).collect();
            }
            (Strategy::LeastLatency, None) => {
                let h = self.lock();
                let ewma =
                    |m: &Arc<Model>| h.get(&m.key()).and_then(|x| x.ewma_ttfb_ms).unwrap_or(0.0);
                cands.sort_by(|a, b| ewma(a).total_cmp(&ewma(b)));
                if cands.len() >= 2 {
                    // Power of two choices: two at random, the faster first.
                    let n = cands.len() as u64;
                    let i = (self.random() % n) as usize;
                    let mut j = (self.random() % (n - 1)) as usize;
                    if j >= i {
                        j += 1;
                    }
                    let best = if ewma(&cands[i]) <= ewma(&cands[j]) {
                        i
                    } else {
                        j
                    };
                    let pick = cands.remove(best);
                    cands.insert(0, pick);
                }
            }
        }
        // Open breakers still cooling down go last; one whose cool-down has
        // passed keeps its place, so its half-open probe happens.
        let h = self.lock();
        let now = self.clock.now();
        cands.sort_by_key(|m| {
            h.get(&m.key()).is_some_and(|x| {
                x.state == BreakerState::Open && x.open_until.is_none_or(|t| now < t)
            })
        });
        cands
    }

    /// Whether a request may go to `key` now: closed; or open with its
    /// cool-down over and no probe in flight (it becomes half-open and this
    /// request is the probe).
    pub fn admit(&self, key: &str) -> bool {
        let mut h = self.lock();
        let x = h
            .entry(key.to_owned())
            .or_insert_with(|| Health::new(false));
        match x.state {
            BreakerState::Closed => true,
            BreakerState::Disabled => false,
            BreakerState::HalfOpen => !std::mem::replace(&mut x.probing, true),
            BreakerState::Open => {
                if x.open_until.is_some_and(|t| self.clock.now() >= t) {
                    x.state = BreakerState::HalfOpen;
                    x.probing = true;
                    true
                } else {
                    false
                }
            }
        }
    }

    fn push(&self, x: &mut Health, ok: bool) {
        x.requests += 1;
        x.window.push_back(ok);
        while x.window.len() > self.cfg.breaker_window.max(1) {
            x.window.pop_front();
        }
    }

    /// A success: the breaker closes; the TTFB joins the EWMA.
    pub fn success(&self, key: &str, ttfb: Duration) {
        let mut h = self.lock();
        let x = h
            .entry(key.to_owned())
            .or_insert_with(|| Health::new(false));
        self.push(x, true);
        x.consecutive = 0;
        x.probing = false;
        if matches!(x.state, BreakerState::Open | BreakerState::HalfOpen)
            && let Some(a) = &self.alerts
        {
            a.emit("breaker_closed", key, "a probe succeeded; traffic resumes");
        }
        if x.state != BreakerState::Disabled {
            x.state = BreakerState::Closed;
        }
        let ms = ttfb.as_secs_f64() * 1000.0;
        x.ewma_ttfb_ms = Some(match x.ewma_ttfb_ms {
            Some(e) => 0.8 * e + 0.2 * ms,
            None => ms,
        });
    }

    /// A failure: the breaker opens after `breaker_failures` in a row, or
    /// when the window's error rate passes `breaker_error_rate`; a failed
    /// probe re-opens it for another cool-down.
    pub fn failure(&self, key: &str, reason: &str) {
        let mut h = self.lock();
        let x = h
            .entry(key.to_owned())
            .or_insert_with(|| Health::new(false));
        self.push(x, false);
        x.failures += 1;
        x.consecutive += 1;
        x.last_error = Some(reason.chars().take(300).collect());
        let was_probe = std::mem::replace(&mut x.probing, false);
        let full = x.window.len() >= self.cfg.breaker_window.max(1);
        let trip = was_probe
            || x.consecutive >= self.cfg.breaker_failures.max(1)
            || (full && x.error_rate() > self.cfg.breaker_error_rate);
        if x.consecutive == 3
            && let Some(a) = &self.alerts
        {
            a.emit(
                "failure_burst",
                key,
                format!(
                    "3 failures in a row; last: {}",
                    x.last_error.as_deref().unwrap_or("")
                ),
            );
        }
        if trip && x.state != BreakerState::Disabled {
            if x.state != BreakerState::Open {
                x.opened += 1;
                if let Some(a) = &self.alerts {
                    a.emit(
                        "breaker_opened",
                        key,
                        format!(
                            "skipped for {} s after: {}",
                            self.cfg.breaker_cooldown_secs,
                            x.last_error.as_deref().unwrap_or("")
                        ),
                    );
                }
            }
            x.state = BreakerState::Open;
            x.open_until =
                Some(self.clock.now() + Duration::from_secs(self.cfg.breaker_cooldown_secs));
        }
    }

    /// How long until an open breaker lets a probe through (`None`: not
    /// open, or its cool-down is over).
    pub fn retry_in(&self, key: &str) -> Option<Duration> {
        let h = self.lock();
        let x = h.get(key)?;
        let until = x.open_until.filter(|_| x.state == BreakerState::Open)?;
        until.checked_duration_since(self.clock.now())
    }

    /// A request that ended neither way (the client left before the first
    /// byte, or the upstream throttled it): releases a probe.
    pub fn release(&self, key: &str) {
        if let Some(x) = self.lock().get_mut(key) {
            x.probing = false;
        }
    }

    /// Takes over the health of the candidates `old` also knew (after a
    /// reload): the admin API's disable or enable wins, then this
    /// configuration's `disabled` flag.
    pub fn adopt(&self, old: &Router) {
        let old_h = old.lock();
        let mut h = self.lock();
        for (name, x) in h.iter_mut() {
            if let Some(o) = old_h.get(name) {
                let disabled = o.admin.unwrap_or(x.state == BreakerState::Disabled);
                *x = Health {
                    state: if disabled {
                        BreakerState::Disabled
                    } else if o.state == BreakerState::Disabled {
                        BreakerState::Closed
                    } else {
                        o.state
                    },
                    consecutive: o.consecutive,
                    window: o.window.clone(),
                    open_until: o.open_until,
                    probing: false,
                    ewma_ttfb_ms: o.ewma_ttfb_ms,
                    requests: o.requests,
                    failures: o.failures,
                    last_error: o.last_error.clone(),
                    opened: o.opened,
                    admin: o.admin,
                };
            }
        }
    }

    /// Manual disable or enable; `false` if no such candidate.
    pub fn set_disabled(&self, key: &str, disabled: bool) -> bool {
        let mut h = self.lock();
        let Some(x) = h.get_mut(key) else {
            return false;
        };
        x.admin = Some(disabled);
        x.state = if disabled {
            BreakerState::Disabled
        } else {
            x.consecutive = 0;
            x.window.clear();
            BreakerState::Closed
        };
        true
    }

    /// Every candidate's health, by name.
    pub fn snapshot(&self) -> Vec<HealthView> {
        let h = self.lock();
        let mut v: Vec<HealthView> = h
            .iter()
            .map(|(n, x)| HealthView {
                name: n.clone(),
                state: if x.state == BreakerState::Open
                    && x.open_until.is_some_and(|t| self.clock.now() >= t)
                {
                    BreakerState::HalfOpen
                } else {
                    x.state
                },
                consecutive_failures: x.consecutive,
                error_rate: x.error_rate(),
                window: x.window.len(),
                ewma_ttfb_ms: x.ewma_ttfb_ms,
                requests: x.requests,
                failures: x.failures,
                opened: x.opened,
                last_error: x.last_error.clone(),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Whether an error moves the request on to the next candidate:
    /// transport failures and timeouts before the first byte, and the
    /// configured statuses.
    pub fn retryable(&self, e: &ApiError) -> bool {
        match e.retry {
            Retry::Always => true,
            Retry::Never => false,
            Retry::ByStatus => self
                .cfg
                .retry_on_status
                .contains(&e.upstream_status.unwrap_or(e.status.as_u16())),
        }
    }
}

#[cfg(test)]
mod tests;
