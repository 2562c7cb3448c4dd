//! Reading request bodies under a size limit and a deadline.
//!
//! Header reads already time out in actix (408 after 5 s); a body has its
//! own deadline, as HAProxy's `timeout http-request`: `body_timeout_secs`
//! for the first `passthrough_replay_bytes`, plus one second per
//! `body_min_bytes_per_sec` past them. A client that trickles a body is
//! answered 408 and its connection closed.

use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::config::Config;
use crate::error::ApiError;

/// When a body must have arrived, as a function of what has arrived.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    start: Instant,
    base: Duration,
    free_bytes: usize,
    min_rate: u64,
}

impl Deadline {
    /// The deadline of a body that starts now.
    pub(crate) fn new(cfg: &Config) -> Self {
        Self {
            start: Instant::now(),
            base: Duration::from_secs(cfg.body_timeout_secs),
            free_bytes: cfg.passthrough_replay_bytes,
            min_rate: cfg.body_min_bytes_per_sec.max(1),
        }
    }

    /// The instant by which the next chunk must come, `received` bytes in.
    pub(crate) fn at(&self, received: usize) -> Instant {
        let extra = received.saturating_sub(self.free_bytes) as u64;
        self.start + self.base + Duration::from_secs(extra / self.min_rate)
    }

    /// The next chunk of `payload`, or 408 when it comes too late.
    pub(crate) async fn next(
        &self,
        payload: &mut web::Payload,
        received: usize,
    ) -> Result<Option<Bytes>, ApiError> {
        match tokio::time::timeout_at(self.at(received), payload.next()).await {
            Err(_) => Err(ApiError::body_timeout()),
            Ok(None) => Ok(None),
            Ok(Some(Ok(b))) => Ok(Some(b)),
            Ok(Some(Err(e))) => Err(ApiError::invalid(format!(
                "could not read the request body: {e}"
            ))),
        }
    }
}

/// The declared `Content-Length`, if any.
pub(crate) fn declared_len(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Reads a whole body within `limit` (413 beyond) and its deadline (408).
pub(crate) async fn read(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    cfg: &Config,
) -> Result<Bytes, ApiError> {
    let declared = declared_len(req);
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let deadline = Deadline::new(cfg);
    // The declared size at once (growing by doubling would hold up to
    // twice the body).
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = deadline.next(&mut payload, body.len()).await? {
        if body.len() + chunk.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_grows_only_past_the_free_bytes() {
        let cfg = Config {
            body_timeout_secs: 30,
            passthrough_replay_bytes: 1000,
            body_min_bytes_per_sec: 100,
            ..Config::default()
        };
        let d = Deadline::new(&cfg);
        assert_eq!(d.at(0) - d.start, Duration::from_secs(30));
        assert_eq!(d.at(1000) - d.start, Duration::from_secs(30));
        assert_eq!(d.at(2000) - d.start, Duration::from_secs(40));
    }
}
