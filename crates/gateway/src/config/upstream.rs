//! The `[[upstreams]]` and `[routing]` sections.

use serde::Deserialize;

use super::Secret;

/// The API an upstream speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamKind {
    /// OpenAI's (OpenAI, vLLM, llama.cpp, One API, …).
    #[default]
    Openai,
    /// Anthropic's Messages API (Anthropic, or any Messages-compatible
    /// server): its key as `x-api-key`, chat translated to `/messages`,
    /// `/v1/messages` passed through.
    Anthropic,
}

/// An upstream: OpenAI-compatible, or (`kind = "anthropic"`) a Messages API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Its name (in logs, the `x-oai-upstream` header and the admin API).
    pub name: String,
    /// The API it speaks (default `openai`).
    #[serde(default)]
    pub kind: UpstreamKind,
    /// Base URL up to and including `/v1` (e.g. `https://api.openai.com/v1`).
    pub base_url: String,
    /// Its API key (sent as `Authorization: Bearer`).
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Send the client's own `Authorization` header instead.
    #[serde(default)]
    pub forward_client_key: bool,
    /// Extra request headers.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Models it serves (`*` matches any run of characters); empty: all.
    /// Checked before `models_deny`.
    #[serde(default)]
    pub models_allow: Vec<String>,
    /// Models it must not serve.
    #[serde(default)]
    pub models_deny: Vec<String>,
    /// Model names sent upstream instead of the client's.
    #[serde(default)]
    pub rename: std::collections::BTreeMap<String, String>,
    /// Share of traffic within its priority (weighted strategy).
    #[serde(default = "one")]
    pub weight: u32,
    /// Lower goes first.
    #[serde(default)]
    pub priority: i32,
    /// Out of rotation until enabled (config or admin API).
    #[serde(default)]
    pub disabled: bool,
    /// Its timeouts.
    #[serde(default)]
    pub timeouts: UpstreamTimeouts,
    /// Idle connections kept open to it, at most (after a burst the rest
    /// close at once instead of lingering for 90 s).
    #[serde(default = "idle_connections")]
    pub max_idle_connections: usize,
    /// A Bedrock guardrail screening this upstream's chat input and
    /// answers (through `ApplyGuardrail`; needs AWS credentials).
    #[serde(default)]
    pub guardrail: Option<super::GuardrailSettings>,
}

pub(crate) fn one() -> u32 {
    1
}

fn idle_connections() -> usize {
    256
}

/// An upstream's timeouts, in seconds.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamTimeouts {
    /// TCP (and TLS) connect.
    pub connect_secs: u64,
    /// Response head of a non-streaming request.
    pub first_byte_secs: u64,
    /// First chunk of a streaming request.
    pub stream_first_byte_secs: u64,
    /// Silence between chunks of a stream.
    pub idle_secs: u64,
    /// The whole request.
    pub total_secs: u64,
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        Self {
            connect_secs: 5,
            first_byte_secs: 120,
            stream_first_byte_secs: 10,
            idle_secs: 60,
            total_secs: 600,
        }
    }
}

impl UpstreamConfig {
    /// Whether it serves `model`: the allow list (empty allows all), then the
    /// deny list.
    pub fn admits(&self, model: &str) -> bool {
        let allowed =
            self.models_allow.is_empty() || self.models_allow.iter().any(|p| glob(p, model));
        allowed && !self.models_deny.iter().any(|p| glob(p, model))
    }

    /// The allow-list pattern that admits `model` (`*` with an empty list):
    /// a metric label bounded by the configuration, whatever names clients
    /// send.
    pub fn admitting_pattern<'a>(&'a self, model: &str) -> &'a str {
        self.models_allow
            .iter()
            .find(|p| glob(p, model))
            .map_or("*", String::as_str)
    }

    /// The model name sent upstream.
    pub fn upstream_model<'a>(&'a self, model: &'a str) -> &'a str {
        self.rename.get(model).map_or(model, String::as_str)
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, s: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return s.is_empty();
    };
    let Some(mut rest) = s.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for m in middle {
        match rest.find(m) {
            Some(i) => rest = &rest[i + m.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Candidate ordering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// By priority, then configuration order.
    #[default]
    Priority,
    /// By priority, weighted random within one priority.
    Weighted,
    /// Power of two choices over each candidate's time-to-first-byte EWMA.
    LeastLatency,
}

/// What a conversation is recognised by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AffinityMode {
    /// No affinity: the strategy alone orders candidates.
    #[default]
    Off,
    /// The session header, else the conversation's prefix (model, tools,
    /// system prompt, first user turn).
    Prefix,
    /// The session header, else the client key.
    Key,
}

/// Routing, retries and the circuit breaker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// How candidates are ordered.
    pub strategy: Strategy,
    /// Most candidates tried for one request (the retry budget).
    pub max_attempts: usize,
    /// Upstream statuses that move on to the next candidate (connect errors
    /// and timeouts before the first byte always do).
    pub retry_on_status: Vec<u16>,
    /// Consecutive failures that open a breaker.
    pub breaker_failures: u32,
    /// Error rate over the last `breaker_window` outcomes that opens it.
    pub breaker_error_rate: f64,
    /// Outcomes in the window (the rate is judged once it is full).
    pub breaker_window: usize,
    /// How long an open breaker waits before one half-open probe.
    pub breaker_cooldown_secs: u64,
    /// Cache-affine routing (`off`, `prefix`, `key`): one conversation's
    /// requests go to the same candidate while it is healthy, so its
    /// prompt cache is read there (weighted and least-latency strategies).
    pub affinity: AffinityMode,
    /// The request header that names a session (it wins over the prefix
    /// or key when present).
    pub affinity_header: String,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::Priority,
            max_attempts: 3,
            retry_on_status: vec![429, 500, 502, 503, 504],
            breaker_failures: 5,
            breaker_error_rate: 0.5,
            breaker_window: 20,
            breaker_cooldown_secs: 30,
            affinity: Default::default(),
            affinity_header: "x-session-id".into(),
        }
    }
}
