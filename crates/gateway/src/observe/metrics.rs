//! Prometheus metrics (the `prometheus` crate's registry and text encoder).
//! Labels are low-cardinality: route patterns, configured model names,
//! candidate names, status classes and error kinds. Never a key.

use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Latency buckets, seconds: 1 ms to 5 min.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

/// Every metric the gateway exports.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// HTTP requests by route pattern and status class.
    pub http_requests: IntCounterVec,
    /// Time to the response head, by route pattern.
    pub http_duration: HistogramVec,
    /// Model requests by route, model, upstream and status class.
    pub requests: IntCounterVec,
    /// Total latency of model requests (stream end for streams).
    pub duration: HistogramVec,
    /// Time to the first token (the first chunk of a stream; the whole
    /// answer otherwise).
    pub ttft: HistogramVec,
    /// Latency the gateway itself adds (total minus the serving upstream
    /// call).
    pub added: HistogramVec,
    /// Tokens by model and kind (`prompt`, `completion`).
    pub tokens: IntCounterVec,
    /// Streams open now.
    pub active_streams: IntGauge,
    /// Upstream failures by candidate and kind.
    pub upstream_errors: IntCounterVec,
    /// Requests moved on from a candidate to the next.
    pub failovers: IntCounterVec,
    /// Answers a guardrail stopped (`content_filter`), per model.
    pub guardrail_interventions: IntCounterVec,
    /// Requests moved on to a fallback model: from, to, reason.
    pub fallbacks: IntCounterVec,
    /// Affine requests served by their preferred candidate (`hit`) or
    /// another (`move`), per model.
    pub affinity: IntCounterVec,
    /// Breaker state per candidate: 0 closed, 1 half-open, 2 open, 3 disabled.
    pub breaker: IntGaugeVec,
    /// Key cache counters (`hits`, `misses`, `refreshes`, `refresh_failures`).
    pub key_cache: IntGaugeVec,
    /// Request records waiting to be written.
    pub records_queue: IntGauge,
    /// Request records dropped because the queue was full.
    pub records_dropped: IntGauge,
    /// Request records written.
    pub records_written: IntGauge,
    /// Rate-limit checks that fell back from Redis to local windows.
    pub ratelimit_fallbacks: IntGauge,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|_| unreachable_metric(name));
    let _ = r.register(Box::new(c.clone()));
    c
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
        labels,
    )
    .unwrap_or_else(|_| unreachable_metric(name));
    let _ = r.register(Box::new(h.clone()));
    h
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|_| unreachable_metric(name));
    let _ = r.register(Box::new(g.clone()));
    g
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|_| unreachable_metric(name));
    let _ = r.register(Box::new(g.clone()));
    g
}

/// Metric definitions are constants: a bad one is a programming error caught
/// by the first test that scrapes.
#[allow(
    clippy::panic,
    reason = "constant metric definitions; covered by tests"
)]
fn unreachable_metric(name: &str) -> ! {
    panic!("invalid metric definition {name}")
}

/// The process's metrics.
pub(crate) static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let r = Registry::new();
    Metrics {
        http_requests: counter(
            &r,
            "gateway_http_requests_total",
            "HTTP requests by route pattern and status class",
            &["route", "status"],
        ),
        http_duration: histogram(
            &r,
            "gateway_http_response_head_seconds",
            "Time to the response head",
            &["route"],
        ),
        requests: counter(
            &r,
            "gateway_requests_total",
            "Model requests by route, model, upstream and status class",
            &["route", "model", "upstream", "status"],
        ),
        duration: histogram(
            &r,
            "gateway_request_duration_seconds",
            "Total latency of model requests (to the end of a stream)",
            &["route", "stream"],
        ),
        ttft: histogram(
            &r,
            "gateway_time_to_first_token_seconds",
            "Time to the first token",
            &["route", "stream"],
        ),
        added: histogram(
            &r,
            "gateway_added_latency_seconds",
            "Latency the gateway adds to the serving upstream call",
            &["route"],
        ),
        tokens: counter(
            &r,
            "gateway_tokens_total",
            "Tokens by model and kind",
            &["model", "kind"],
        ),
        active_streams: gauge(&r, "gateway_active_streams", "Streams open now"),
        upstream_errors: counter(
            &r,
            "gateway_upstream_errors_total",
            "Upstream failures by candidate and kind",
            &["upstream", "kind"],
        ),
        failovers: counter(
            &r,
            "gateway_failovers_total",
            "Requests moved on from a candidate to the next",
            &["upstream"],
        ),
        guardrail_interventions: counter(
            &r,
            "gateway_guardrail_interventions_total",
            "Answers a Bedrock guardrail stopped (finish_reason content_filter)",
            &["model"],
        ),
        fallbacks: counter(
            &r,
            "gateway_fallbacks_total",
            "Requests moved on to a fallback model (every candidate failed for its context window or a content policy)",
            &["from", "to", "reason"],
        ),
        affinity: counter(
            &r,
            "gateway_affinity_total",
            "Cache-affine requests served by their preferred candidate (hit) or another (move)",
            &["model", "result"],
        ),
        breaker: gauge_vec(
            &r,
            "gateway_breaker_state",
            "Breaker state: 0 closed, 1 half-open, 2 open, 3 disabled",
            &["upstream"],
        ),
        key_cache: gauge_vec(
            &r,
            "gateway_key_cache",
            "API-key cache counters since start",
            &["event"],
        ),
        ratelimit_fallbacks: gauge(
            &r,
            "gateway_ratelimit_redis_fallbacks",
            "Rate-limit checks Redis did not answer, decided by this replica's own windows (since start)",
        ),
        records_queue: gauge(
            &r,
            "gateway_records_queue",
            "Request records waiting to be written",
        ),
        records_dropped: gauge(
            &r,
            "gateway_records_dropped",
            "Request records dropped because the queue was full (since start)",
        ),
        records_written: gauge(
            &r,
            "gateway_records_written",
            "Request records written (since start)",
        ),
        registry: r,
    }
});

/// `2xx`, `4xx`, …
pub(crate) fn class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The text exposition, with the gauges read at scrape time refreshed:
/// each breaker's state (0 closed, 1 half-open, 2 open, 3 disabled) and the
/// key-check counters.
pub(crate) fn render<'a>(
    breakers: impl IntoIterator<Item = (&'a str, i64)>,
    key_checks: impl IntoIterator<Item = (&'static str, u64)>,
) -> Vec<u8> {
    let m = &*METRICS;
    for (name, state) in breakers {
        m.breaker.with_label_values(&[name]).set(state);
    }
    for (k, v) in key_checks {
        m.key_cache
            .with_label_values(&[k])
            .set(i64::try_from(v).unwrap_or(i64::MAX));
    }
    m.ratelimit_fallbacks.set(
        i64::try_from(
            crate::keys::limits::REDIS_FALLBACKS.load(std::sync::atomic::Ordering::Relaxed),
        )
        .unwrap_or(i64::MAX),
    );
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&m.registry.gather(), &mut out);
    out
}
