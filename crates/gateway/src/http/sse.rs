//! The SSE response: a provider's items written as server-sent events,
//! each batch in one write, the stream's idle timeout, usage forwarded only
//! when asked, and the outcome told when it ends or the client leaves.

use std::sync::Arc;

use actix_web::HttpResponse;
use actix_web::http::header;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use openai_types::responses::chat::EventWriter;
use openai_types::stream::{SseWriter, StreamItem};

use crate::observe::metrics::METRICS;
use crate::observe::outcome::{Outcome, note};
use crate::routing::failover::{Opened, Served};
use crate::routing::state::AppState;

/// How items are written: chat (or legacy completion) chunks, or the
/// Responses API's events.
#[derive(Debug)]
pub(crate) enum Writer {
    /// `chat.completion.chunk` / `text_completion` events and `[DONE]`.
    Chat(SseWriter),
    /// `response.*` events.
    Responses(Box<EventWriter>),
    /// Anthropic's Messages events.
    Messages(Box<anthropic_messages::events::EventWriter>),
    /// Anthropic's Messages events in Bedrock's event-stream frames.
    Bedrock(Box<super::bedrock_frames::Framer>),
}

impl Writer {
    fn write(&mut self, item: &StreamItem, out: &mut BytesMut) {
        match self {
            Self::Chat(w) => w.write(item, out),
            Self::Responses(w) => w.write(item, out),
            Self::Messages(w) => w.write(item, out),
            Self::Bedrock(w) => w.write(item, out),
        }
    }

    /// Whether usage items go to the writer whatever the client asked
    /// (a response and a message carry their usage).
    fn wants_usage(&self) -> bool {
        matches!(
            self,
            Self::Responses(_) | Self::Messages(_) | Self::Bedrock(_)
        )
    }

    /// The response's content type.
    fn content_type(&self) -> &'static str {
        match self {
            Self::Bedrock(_) => "application/vnd.amazon.eventstream",
            _ => "text/event-stream",
        }
    }
}

/// Streams a provider's items as SSE: each batch written and flushed as it
/// comes, a stream silent for its idle limit or past its total time ended
/// with an error event, the usage chunk forwarded only when the client
/// asked for it.
///
/// A stream's idle and total timers are here and nowhere else (its first
/// batch's deadline is failover's, which already holds that batch).
pub(crate) fn response(
    state: &AppState,
    outcome: Outcome,
    served: Served<Opened>,
    mut writer: Writer,
    include_usage: bool,
) -> HttpResponse {
    let include_usage = include_usage || writer.wants_usage();
    let content_type = writer.content_type();
    let limits = served.model.stream_limits(std::time::Duration::from_secs(
        state.config.stream_idle_timeout_secs,
    ));
    // The total time counts the wait for the first batch too.
    let deadline = limits.total.map(|t| {
        (
            tokio::time::Instant::now() + t.saturating_sub(served.took),
            t,
        )
    });
    let Opened { first, rest } = served.value;
    let mut items = Box::pin(futures_util::stream::once(async move { first }).chain(rest));
    let idle = limits.idle;
    let redactor = Arc::clone(&state.redactor);
    METRICS.active_streams.inc();
    let mut guard = StreamGuard {
        outcome,
        done: false,
        sent: openai_types::tokens::TokenCounter::default(),
    };
    let s = async_stream::stream! {
        let mut out = BytesMut::new();
        let mut usage = None;
        loop {
            let next_idle = tokio::time::Instant::now() + idle;
            let wait = deadline.map_or(next_idle, |(d, _)| d.min(next_idle));
            let mut batch = match tokio::time::timeout_at(wait, items.next()).await {
                Ok(Some(b)) => b,
                Ok(None) => vec![StreamItem::Error(
                    openai_types::ErrorResponse::new("the upstream stream ended without a result", "server_error")
                        .with_code("upstream_truncated"),
                )],
                Err(_) => vec![StreamItem::Error(
                    openai_types::ErrorResponse::new(
                        match deadline {
                            Some((d, total)) if wait == d => {
                                format!("the upstream exceeded its total time of {} s", total.as_secs())
                            }
                            _ => format!("the model sent nothing for {} s", idle.as_secs()),
                        },
                        "server_error",
                    )
                    .with_code("upstream_idle_timeout"),
                )],
            };
            let mut last = false;
            for item in &mut batch {
                match item {
                    StreamItem::Usage(u) => {
                        usage = Some(u.clone());
                        if !include_usage {
                            continue;
                        }
                    }
                    StreamItem::Done => last = true,
                    StreamItem::Error(e) => {
                        last = true;
                        // The upstream's words: no key of ours goes out in them.
                        if let std::borrow::Cow::Owned(clean) = redactor.scrub(&e.error.message, None) {
                            e.error.message = clean;
                        }
                        let kind = e.error.code.clone().unwrap_or_else(|| "stream_error".into());
                        note(&guard.outcome.patch, |p| p.error = Some(kind));
                    }
                    StreamItem::Choice(c) => {
                        if let Some(r) = c.finish_reason {
                            guard.outcome.ended(r);
                        }
                        for t in [&c.delta.content, &c.delta.reasoning_content].into_iter().flatten() {
                            guard.sent.add(t);
                        }
                    }
                }
                writer.write(item, &mut out);
                if last {
                    break;
                }
            }
            if !out.is_empty() {
                yield Ok::<Bytes, actix_web::Error>(out.split().freeze());
            }
            if last {
                guard.done = true;
                guard.outcome.finish(200, usage.as_ref(), true);
                break;
            }
        }
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(s)
}

/// Tells a stream's outcome if the client left before it ended (dropping
/// the generator drops the upstream stream, which closes its connection).
struct StreamGuard {
    outcome: Outcome,
    done: bool,
    /// Tokens sent, estimated, for an interrupted stream's record.
    sent: openai_types::tokens::TokenCounter,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        METRICS.active_streams.dec();
        if !self.done {
            self.outcome.interrupted(self.sent.tokens());
        }
    }
}
