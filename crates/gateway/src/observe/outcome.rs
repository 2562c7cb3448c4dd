//! The outcome of every API request, the one place it is told: the request
//! metrics, the request record, the log line and a stored key's usage
//! (its [`crate::keys::Ticket`] settled), from one value, so every path ends
//! here: whole answers, streams that end or are left, failures,
//! pass-through.

use std::time::{Duration, Instant};

use openai_types::Usage;
use openai_types::chat::FinishReason;

use crate::observe::metrics::{self, METRICS};
use crate::observe::records::{RecPatch, Record};

/// Who served a request, as the outcome tells it (plain names: this layer
/// knows no backend types).
#[derive(Debug, Clone, Default)]
pub(crate) struct ServedBy {
    /// The model name the client asked for, as configured.
    pub model: String,
    /// The model as a metric label (bounded: configured names and
    /// allow-list patterns).
    pub metric_model: String,
    /// The candidate: an upstream's name or `models/<name>`.
    pub candidate: String,
    /// `sagemaker`, `bedrock` or `openai`.
    pub backend: &'static str,
    /// The endpoint, Bedrock model id or upstream name.
    pub upstream: String,
}

/// A request on its way to its outcome. Never holds a key or a prompt.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The client key's id.
    pub key_id: Option<String>,
    /// When the request arrived.
    pub started: Instant,
    /// `chat`, `completions`, `embeddings`, `passthrough`.
    pub route: &'static str,
    /// The request id.
    pub request_id: String,
    /// Who served it (unset until a candidate was committed).
    pub served: Option<ServedBy>,
    /// How long the serving upstream call took (whole answers).
    pub upstream_time: Option<Duration>,
    /// The request's record, filled here.
    pub patch: Option<RecPatch>,
    /// A stored key's admission, settled here with the tokens used.
    pub ticket: Option<std::sync::Arc<crate::keys::Ticket>>,
    /// Why the answer ended (see [`Outcome::ended`]).
    pub finish_reason: Option<FinishReason>,
    /// Cache-affine routing's result: `hit` or `move`.
    pub affinity: Option<&'static str>,
}

/// Fills a request's record, if records are on.
pub(crate) fn note(patch: &Option<RecPatch>, f: impl FnOnce(&mut Record)) {
    if let Some(p) = patch {
        f(&mut p.0.borrow_mut());
    }
}

/// The reason a record keeps of the choices' `reasons`: the first, unless
/// one is a content filter (a guardrail's intervention), which wins.
pub(crate) fn reason_of(reasons: impl Iterator<Item = FinishReason>) -> Option<FinishReason> {
    reasons.fold(None, |kept, r| match kept {
        Some(k) if r != FinishReason::ContentFilter => Some(k),
        _ => Some(r),
    })
}

/// Prompt tokens a usage reports read from and written to a prompt cache
/// (both part of `prompt_tokens`).
fn cache_tokens(u: &Usage) -> (u64, u64) {
    u.prompt_tokens_details.as_ref().map_or((0, 0), |d| {
        (
            d.cached_tokens.unwrap_or(0),
            d.cache_write_tokens.unwrap_or(0),
        )
    })
}

impl Outcome {
    /// A choice ended for `reason`: the first reason is the record's,
    /// except that a content filter (a guardrail's intervention) on any
    /// choice is what the record keeps.
    pub(crate) fn ended(&mut self, reason: FinishReason) {
        self.finish_reason = reason_of(self.finish_reason.into_iter().chain([reason]));
    }

    /// The request ended with `status` (for a stream: it ended, done or
    /// with an error event), with `usage` where known.
    pub(crate) fn finish(&self, status: u16, usage: Option<&Usage>, stream: bool) {
        if let Some(t) = &self.ticket {
            // What the upstream reports (else the gateway's count); a
            // refused request costs nothing.
            t.settle(usage.map_or_else(Default::default, |u| {
                let (cached, written) = cache_tokens(u);
                crate::keys::Spent {
                    prompt: u.prompt_tokens,
                    cached,
                    written,
                    completion: u.completion_tokens,
                }
            }));
        }
        let m = &*METRICS;
        let total = self.started.elapsed();
        let stream_label = if stream { "true" } else { "false" };
        m.duration
            .with_label_values(&[self.route, stream_label])
            .observe(total.as_secs_f64());
        let Some(s) = &self.served else {
            return;
        };
        m.requests
            .with_label_values(&[
                self.route,
                s.metric_model.as_str(),
                s.candidate.as_str(),
                metrics::class(status),
            ])
            .inc();
        if !stream && status < 400 {
            m.ttft
                .with_label_values(&[self.route, stream_label])
                .observe(total.as_secs_f64());
            if let Some(u) = self.upstream_time {
                m.added
                    .with_label_values(&[self.route])
                    .observe(total.saturating_sub(u).as_secs_f64());
            }
        }
        if let Some(u) = usage {
            m.tokens
                .with_label_values(&[s.metric_model.as_str(), "prompt"])
                .inc_by(u.prompt_tokens);
            m.tokens
                .with_label_values(&[s.metric_model.as_str(), "completion"])
                .inc_by(u.completion_tokens);
            let (read, written) = cache_tokens(u);
            for (kind, n) in [("cache_read", read), ("cache_write", written)] {
                if n > 0 {
                    m.tokens
                        .with_label_values(&[s.metric_model.as_str(), kind])
                        .inc_by(n);
                }
            }
        }
        note(&self.patch, |p| {
            p.key_id.clone_from(&self.key_id);
            p.model = Some(s.model.clone());
            p.upstream = Some(s.candidate.clone());
            p.stream = stream;
            p.finish_reason = self.finish_reason.map(|r| r.as_str().to_owned());
            p.affinity = self.affinity.map(str::to_owned);
            if let Some(u) = usage {
                p.prompt_tokens = i64::try_from(u.prompt_tokens).ok();
                p.completion_tokens = i64::try_from(u.completion_tokens).ok();
                p.tokens_estimated = u.estimated;
                if u.prompt_tokens_details.is_some() {
                    let (read, written) = cache_tokens(u);
                    p.cache_read_tokens = i64::try_from(read).ok();
                    p.cache_write_tokens = i64::try_from(written).ok();
                }
            }
            if !stream && status < 400 {
                p.ttft_ms = i64::try_from(total.as_millis()).ok();
            }
        });
        // Strings as `&str`: recorded as they are, not through `Display`.
        tracing::info!(
            request_id = self.request_id.as_str(),
            route = self.route,
            model = s.model.as_str(),
            backend = s.backend,
            upstream = s.upstream.as_str(),
            key_id = self.key_id.as_deref().unwrap_or("-"),
            status,
            stream,
            duration_ms = total.as_millis() as u64,
            prompt_tokens = usage.map(|u| u.prompt_tokens),
            completion_tokens = usage.map(|u| u.completion_tokens),
            "request"
        );
    }

    /// A stream's first content is in hand (`attempt`: how long the serving
    /// attempt took to get it): time to first token, the gateway's added
    /// latency before that attempt, and the record's stream fields.
    pub(crate) fn first_token(&self, attempt: Duration) {
        let m = &*METRICS;
        let ttft = self.started.elapsed();
        m.ttft
            .with_label_values(&[self.route, "true"])
            .observe(ttft.as_secs_f64());
        m.added
            .with_label_values(&[self.route])
            .observe(ttft.saturating_sub(attempt).as_secs_f64());
        let candidate = self.served.as_ref().map(|s| s.candidate.clone());
        note(&self.patch, |p| {
            p.stream = true;
            p.upstream = candidate;
            p.ttft_ms = i64::try_from(ttft.as_millis()).ok();
        });
    }

    /// The request failed before any candidate was committed (every one
    /// failed, or none was allowed).
    pub(crate) fn failed(&self, model: &str, e: &crate::error::ApiError) {
        if let Some(t) = &self.ticket {
            t.settle(crate::keys::Spent::default());
        }
        METRICS
            .duration
            .with_label_values(&[self.route, "false"])
            .observe(self.started.elapsed().as_secs_f64());
        tracing::info!(
            request_id = self.request_id.as_str(),
            route = self.route,
            model,
            status = e.status.as_u16(),
            error = e.label,
            blame = ?e.blame,
            "request failed"
        );
    }

    /// A stream the client left before it ended: recorded as interrupted,
    /// with the tokens it was sent (estimated).
    pub(crate) fn interrupted(&self, sent_tokens: u64) {
        if let Some(t) = &self.ticket {
            // The prompt (estimated) and what was sent.
            t.settle(crate::keys::Spent {
                prompt: u64::try_from(t.estimate()).unwrap_or(0),
                cached: 0,
                written: 0,
                completion: sent_tokens,
            });
        }
        let sent = i64::try_from(sent_tokens).unwrap_or(i64::MAX);
        note(&self.patch, |p| {
            p.stream = true;
            if let Some(s) = &self.served {
                p.model = Some(s.model.clone());
                p.upstream = Some(s.candidate.clone());
            }
            p.completion_tokens = Some(sent);
            p.tokens_estimated = true;
            p.interrupted = true;
            p.error = Some("client_disconnected".into());
        });
        tracing::info!(
            request_id = self.request_id.as_str(),
            route = self.route,
            model = self.served.as_ref().map_or("-", |s| s.model.as_str()),
            duration_ms = self.started.elapsed().as_millis() as u64,
            "client disconnected mid-stream; upstream stream dropped"
        );
    }
}
