//! The one attempt loop, for whole answers, streams and pass-through alike:
//! candidates in order, each at most once, within the retry budget, skipped
//! while their breaker is open; moved past on an error the router calls
//! retryable, stopped at any other. It owns the first-byte timeout of a
//! stream and returns what the winning attempt produced (an answer, an
//! opened stream, an upstream response), never an HTTP response.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use openai_types::stream::StreamItem;

use crate::backend::{ItemStream, Model};
use crate::error::ApiError;
use crate::observe::metrics::METRICS;
use crate::observe::redact::Redactor;
use crate::routing::admission::Admitted;
use crate::routing::breaker::Router;
use crate::routing::state::AppState;

/// What an attempt produced, and who produced it.
#[derive(Debug)]
pub(crate) struct Served<T> {
    /// The attempt's result.
    pub value: T,
    /// The candidate that served.
    pub model: Arc<Model>,
    /// How long its attempt took (for a stream: to its first batch).
    pub took: Duration,
}

/// A stream opened on a candidate: its first batch in hand (so nothing was
/// sent to the client before the candidate was committed), the rest to come.
pub(crate) struct Opened {
    /// The first batch of items.
    pub first: Vec<StreamItem>,
    /// The rest.
    pub rest: ItemStream,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("first", &self.first.len())
            .finish_non_exhaustive()
    }
}

/// An attempt on one candidate (`more`: another may follow, so the request
/// must be kept), whose future may borrow for `'f`.
pub(crate) type Attempt<'s, 'f, T> =
    dyn FnMut(Arc<Model>, bool) -> BoxFuture<'f, Result<T, ApiError>> + Send + 's;

/// How the loop runs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rules {
    /// Attempts at most (default: the routing budget). A request whose body
    /// cannot be replayed gets one.
    pub attempts: Option<usize>,
    /// Each attempt's deadline, per candidate (`None`: the backend's own
    /// deadline for a whole answer applies).
    pub first_byte: Option<FirstByte>,
}

/// What an attempt's deadline covers, with the gateway's default for
/// candidates that set none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstByte {
    /// A stream's first batch: an upstream's `stream_first_byte_secs`.
    Stream(Duration),
    /// A passed-through response's head: an upstream's `first_byte_secs`.
    Head(Duration),
}

impl FirstByte {
    /// The deadline for `m`.
    pub(crate) fn limit(self, m: &Model) -> Duration {
        match self {
            Self::Stream(d) => m.stream_first_byte(d),
            Self::Head(d) => m.head_first_byte(d),
        }
    }
}

/// What the loop consults and tells: the breakers, and the redactor that
/// scrubs an upstream's words before a breaker keeps them.
#[derive(Debug, Clone, Copy)]
pub struct Walk<'a> {
    /// The breakers and the retry policy.
    pub router: &'a Router,
    /// Scrubs keys out of failure texts.
    pub redactor: &'a Redactor,
}

impl AppState {
    /// The failover loop's view of this state.
    pub fn walk(&self) -> Walk<'_> {
        Walk {
            router: &self.router,
            redactor: &self.redactor,
        }
    }
}

/// Tries the admitted candidates in order under `rules`.
pub(crate) async fn run<'f, T>(
    state: Walk<'_>,
    admitted: &Admitted,
    model_name: &str,
    rules: Rules,
    attempt: &mut Attempt<'_, 'f, T>,
) -> Result<Served<T>, ApiError> {
    let budget = rules
        .attempts
        .unwrap_or(state.router.config().max_attempts)
        .min(state.router.config().max_attempts);
    let cands = admitted.candidates();
    let n = cands.len();
    let mut tried = 0;
    let mut last = None;
    // The soonest an open breaker lets a probe through.
    let mut reopens: Option<Duration> = None;
    for (i, m) in cands.iter().enumerate() {
        if tried >= budget {
            break;
        }
        let key = m.key();
        if !state.router.admit(&key) {
            if let Some(d) = state.router.retry_in(&key) {
                reopens = Some(reopens.map_or(d, |r| r.min(d)));
            }
            continue;
        }
        tried += 1;
        let more = i + 1 < n && tried < budget;
        let t0 = Instant::now();
        let fut = attempt(Arc::clone(m), more);
        let result = match rules.first_byte.map(|f| f.limit(m)) {
            Some(limit) => tokio::time::timeout(limit, fut)
                .await
                .unwrap_or_else(|_| Err(ApiError::first_byte_timeout(&key, limit))),
            None => fut.await,
        };
        match result {
            Ok(value) => {
                let took = t0.elapsed();
                state.router.success(&key, took);
                admitted.served_by(m);
                return Ok(Served {
                    value,
                    model: Arc::clone(m),
                    took,
                });
            }
            Err(e) if state.router.retryable(&e) => {
                attempt_failed(state, &key, &e);
                last = Some(e);
            }
            Err(e) => {
                state.router.release(&key);
                return Err(e);
            }
        }
    }
    Err(exhausted(last, model_name, reopens))
}

/// A 429 from the upstream (HTTP, or an AWS throttling error mapped to it).
fn throttled(e: &ApiError) -> bool {
    e.status == StatusCode::TOO_MANY_REQUESTS || e.upstream_status == Some(429)
}

/// Opens a stream and waits for its first batch: a stream that fails before
/// it sends anything is a failed attempt (the next candidate gets the
/// request), one that sends anything is committed.
pub(crate) async fn first_batch(mut items: ItemStream) -> Result<Opened, ApiError> {
    match items.next().await {
        Some(batch) if !matches!(batch.first(), Some(StreamItem::Error(_))) => Ok(Opened {
            first: batch,
            rest: items,
        }),
        other => {
            let message = match other.as_deref() {
                Some([StreamItem::Error(e), ..]) => e.error.message.clone(),
                _ => "the stream ended before its first chunk".into(),
            };
            Err(
                ApiError::upstream(StatusCode::BAD_GATEWAY, "upstream_error", message)
                    .code("upstream_error"),
            )
        }
    }
}

/// A candidate failed before the client had a byte: logged, counted, and
/// reported to its breaker (its text scrubbed of keys); the caller moves on.
/// Throttling (429) is counted too but is not a failure of the upstream:
/// the breaker only gets its probe slot back.
pub(crate) fn attempt_failed(state: Walk<'_>, key: &str, e: &ApiError) {
    METRICS
        .upstream_errors
        .with_label_values(&[key, e.label])
        .inc();
    METRICS.failovers.with_label_values(&[key]).inc();
    if throttled(e) {
        tracing::info!(upstream = %key, "attempt throttled (429); trying the next candidate");
        state.router.release(key);
        return;
    }
    tracing::warn!(upstream = %key, status = e.status.as_u16(), error = e.label, blame = ?e.blame, "attempt failed before the first byte; trying the next candidate");
    state
        .router
        .failure(key, &state.redactor.scrub(&e.body.error.message, None));
}

/// The answer when no candidate could serve: the last failure (a 429 keeps
/// its status and gets a `Retry-After`: the upstream's, else 1 s), or 503
/// `no_upstream_available` with a `Retry-After` of the soonest breaker's
/// remaining cool-down when every candidate's breaker was open.
pub(crate) fn exhausted(
    last: Option<ApiError>,
    model: &str,
    reopens: Option<Duration>,
) -> ApiError {
    match last {
        Some(mut e) => {
            if throttled(&e) && e.retry_after.is_none() {
                e.retry_after = Some("1".into());
            }
            e
        }
        None => {
            let mut e = ApiError::no_upstream(model);
            e.retry_after = reopens.map(|d| d.as_secs_f64().ceil().max(1.0).to_string());
            e
        }
    }
}

#[cfg(test)]
#[path = "failover_tests.rs"]
mod tests;
