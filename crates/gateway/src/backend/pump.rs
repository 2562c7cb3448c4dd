//! The one loop that drives a stream translator: an upstream's input, as a
//! stream of pieces or failures, through any
//! [`StreamTranslate`](openai_types::stream::StreamTranslate) (SageMaker's,
//! Bedrock's, an OpenAI-style upstream's), out as an [`ItemStream`] of one
//! batch per piece. Dropping the stream drops the source, which cancels
//! the upstream call. It sets no timer: a stream's deadlines are owned by
//! failover (the first batch) and the SSE response (silences, total time).

use futures_util::{Stream, StreamExt};
use openai_types::stream::StreamTranslate;

use super::ItemStream;

/// Drives `t` with `source` until its last item; `backend` names it in the
/// log line of a stream that ended in an error.
pub(crate) fn pump<T, S>(mut source: S, mut t: T, backend: &'static str) -> ItemStream
where
    T: StreamTranslate + 'static,
    S: Stream<Item = Result<T::Input, T::Error>> + Send + Unpin + 'static,
{
    Box::pin(async_stream::stream! {
        loop {
            let mut items = Vec::new();
            match source.next().await {
                Some(Ok(piece)) => t.push(piece, &mut items),
                Some(Err(e)) => t.fail(e, &mut items),
                None => t.finish(&mut items),
            }
            if !items.is_empty() {
                yield items;
            }
            if t.is_finished() {
                if let Some(e) = t.failure() {
                    tracing::warn!(error = %e, backend, "stream ended with an error");
                }
                break;
            }
        }
    })
}
