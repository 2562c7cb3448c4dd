//! Alerts: webhooks on circuit breakers opening and closing, upstream
//! failure bursts and key-source failures, in Feishu/Lark, Matrix,
//! Slack-compatible or plain JSON form. Events go through a bounded queue to
//! one sender task (a full queue drops, never blocks a request); the same
//! event for the same subject is sent at most once per `min_interval_secs`,
//! with the count of those suppressed in the next message.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::mpsc;

use crate::config::{AlertSink, SinkKind};

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// `breaker_opened`, `breaker_closed`, `failure_burst`,
    /// `key_source_failed`.
    pub kind: &'static str,
    /// The upstream (or key source) concerned.
    pub subject: String,
    /// A sentence for people (no secret: error messages only).
    pub message: String,
}

/// The sending side (cheap to clone).
#[derive(Debug, Clone)]
pub struct Alerter {
    tx: mpsc::Sender<Event>,
}

impl Alerter {
    /// Starts the sender task; `None` without sinks.
    pub fn start(sinks: Vec<AlertSink>) -> Option<Self> {
        if sinks.is_empty() {
            return None;
        }
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(send_loop(sinks, rx));
        Some(Self { tx })
    }

    /// Queues an event; never waits.
    pub fn emit(&self, kind: &'static str, subject: &str, message: impl Into<String>) {
        let _ = self.tx.try_send(Event {
            kind,
            subject: subject.to_owned(),
            message: message.into(),
        });
    }
}

async fn send_loop(sinks: Vec<AlertSink>, mut rx: mpsc::Receiver<Event>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "alerts disabled: no HTTP client");
            return;
        }
    };
    // (sink, event kind, subject) -> (last sent, suppressed since)
    let mut last: HashMap<(usize, &'static str, String), (Instant, u64)> = HashMap::new();
    let mut txn = 0u64;
    while let Some(e) = rx.recv().await {
        for (i, sink) in sinks.iter().enumerate() {
            let key = (i, e.kind, e.subject.clone());
            let now = Instant::now();
            let interval = Duration::from_secs(sink.min_interval_secs);
            let suppressed = match last.get_mut(&key) {
                Some((at, n)) if now.duration_since(*at) < interval => {
                    *n += 1;
                    continue;
                }
                Some((_, n)) => std::mem::take(n),
                None => 0,
            };
            last.insert(key, (now, 0));
            let mut text = format!("[oai-gateway] {}: {} — {}", e.kind, e.subject, e.message);
            if suppressed > 0 {
                text.push_str(&format!(" ({suppressed} similar alerts suppressed)"));
            }
            txn += 1;
            let req = match sink.kind {
                SinkKind::Feishu => client
                    .post(&sink.url)
                    .json(&json!({"msg_type": "text", "content": {"text": text}})),
                SinkKind::Slack => client.post(&sink.url).json(&json!({ "text": text })),
                SinkKind::Json => client.post(&sink.url).json(&json!({
                    "event": e.kind,
                    "subject": e.subject,
                    "message": e.message,
                    "suppressed": suppressed,
                    "ts": std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0),
                })),
                SinkKind::Matrix => {
                    let room = sink.room.as_deref().unwrap_or_default();
                    let url = format!(
                        "{}/_matrix/client/v3/rooms/{}/send/m.room.message/oai-gateway-{}-{txn}",
                        sink.url.trim_end_matches('/'),
                        encode(room),
                        std::process::id()
                    );
                    let mut r = client
                        .put(url)
                        .json(&json!({"msgtype": "m.text", "body": text}));
                    if let Some(t) = &sink.token {
                        r = r.bearer_auth(&t.0);
                    }
                    r
                }
            };
            match req.send().await {
                Ok(resp) if resp.status().is_success() => {}
                Ok(resp) => tracing::warn!(
                    sink = i,
                    status = resp.status().as_u16(),
                    "alert webhook refused"
                ),
                Err(err) => tracing::warn!(sink = i, error = %err, "alert webhook failed"),
            }
        }
    }
}

/// Percent-encodes a path segment.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn room_ids_are_encoded() {
        assert_eq!(super::encode("!abc:example.org"), "%21abc%3Aexample.org");
    }
}
