//! Request records: one row per API request, written off the request path in
//! batches to SQLite (the default, an embedded file: through SQLite's own
//! statements, `records::sqlite`) or PostgreSQL (several replicas, one store:
//! through `sqlx`'s `Any` driver, as every read is). The queue is bounded:
//! when it is full a record is dropped and counted, never waited for.
//! Shutdown flushes everything queued.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

mod read;
mod sqlite;
mod write;

pub use read::{Cost, Daily, Query, Usage, daily, query, summary};

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use crate::observe::metrics::METRICS;
use write::write;

/// Records gathered into one write at most (written in statements of up
/// to `write::CHUNK` rows).
const BATCH: usize = 1000;

/// How long the writer gathers records before a write.
const GATHER: Duration = Duration::from_millis(50);

/// The columns, in the order they are bound.
const COLUMNS: &str = "request_id, ts_ms, key_id, client_ip, route, model, upstream, status, stream, ttft_ms, duration_ms, prompt_tokens, completion_tokens, tokens_estimated, error, interrupted, request_body, request_headers, cache_read_tokens, cache_write_tokens, requested_model, finish_reason, affinity";
const NCOLS: usize = 23;

/// One request, as stored. Holds no key (only its id) and no body.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Record {
    /// The request id (`x-request-id`).
    pub request_id: String,
    /// When it arrived, Unix milliseconds.
    pub ts_ms: i64,
    /// The key's id (a hash prefix), never the key.
    pub key_id: Option<String>,
    /// The client's address.
    pub client_ip: Option<String>,
    /// The route pattern (`/v1/chat/completions`).
    pub route: String,
    /// The model asked for.
    pub model: Option<String>,
    /// The candidate that served it.
    pub upstream: Option<String>,
    /// HTTP status.
    pub status: i64,
    /// Streamed.
    pub stream: bool,
    /// Time to the first token, ms.
    pub ttft_ms: Option<i64>,
    /// Total time, ms (to the end of a stream).
    pub duration_ms: i64,
    /// Prompt tokens.
    pub prompt_tokens: Option<i64>,
    /// Completion tokens (for an interrupted stream: those sent).
    pub completion_tokens: Option<i64>,
    /// Token counts are the gateway's estimate, not the upstream's.
    pub tokens_estimated: bool,
    /// The error kind, if it failed.
    pub error: Option<String>,
    /// The client left a stream before its end.
    pub interrupted: bool,
    /// The request body, when the body policy asks (secrets redacted).
    pub request_body: Option<String>,
    /// The request headers as JSON, when the body policy asks (secrets
    /// redacted).
    pub request_headers: Option<String>,
    /// Prompt tokens read from a prompt cache (of `prompt_tokens`).
    pub cache_read_tokens: Option<i64>,
    /// Prompt tokens written to a prompt cache (of `prompt_tokens`).
    pub cache_write_tokens: Option<i64>,
    /// The model the client named (`model` is the one that answered: they
    /// differ when a fallback model served).
    pub requested_model: Option<String>,
    /// Why the answer ended (the first `finish_reason` of its choices:
    /// `stop`, `length`, `tool_calls`; `content_filter`, a guardrail's or
    /// the upstream's filter, on any choice wins).
    pub finish_reason: Option<String>,
    /// With cache-affine routing: `hit` (served by the candidate the
    /// conversation prefers) or `move` (another: the preferred one failed
    /// or was not allowed).
    pub affinity: Option<String>,
}

enum Msg {
    Rec(Box<Record>),
    Flush(oneshot::Sender<()>),
}

/// The sending side, cloned into every worker.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Msg>,
    queued: Arc<AtomicI64>,
    /// The store's connection pool (the stored keys live there too).
    pub pool: AnyPool,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS gateway_schema (version BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS gateway_requests (
        request_id TEXT NOT NULL,
        ts_ms BIGINT NOT NULL,
        key_id TEXT,
        client_ip TEXT,
        route TEXT NOT NULL,
        model TEXT,
        upstream TEXT,
        status BIGINT NOT NULL,
        stream BIGINT NOT NULL,
        ttft_ms BIGINT,
        duration_ms BIGINT NOT NULL,
        prompt_tokens BIGINT,
        completion_tokens BIGINT,
        tokens_estimated BIGINT NOT NULL,
        error TEXT,
        interrupted BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS gateway_requests_ts ON gateway_requests (ts_ms)",
];

/// Migrations after the first schema, by version.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        2,
        "ALTER TABLE gateway_requests ADD COLUMN request_body TEXT",
    ),
    (
        3,
        "ALTER TABLE gateway_requests ADD COLUMN request_headers TEXT",
    ),
    (
        4,
        "ALTER TABLE gateway_requests ADD COLUMN cache_read_tokens BIGINT",
    ),
    (
        5,
        "ALTER TABLE gateway_requests ADD COLUMN cache_write_tokens BIGINT",
    ),
    (
        6,
        "ALTER TABLE gateway_requests ADD COLUMN requested_model TEXT",
    ),
    (
        7,
        "ALTER TABLE gateway_requests ADD COLUMN finish_reason TEXT",
    ),
    (8, "ALTER TABLE gateway_requests ADD COLUMN affinity TEXT"),
];

/// Connects and runs the schema migrations.
pub async fn connect(url: &str) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let sqlite = url.starts_with("sqlite");
    let pool = AnyPoolOptions::new()
        .max_connections(if sqlite { 1 } else { 4 })
        // A file's connection does not go stale: no ping (a round trip to
        // SQLite's thread) before every use. A server's may.
        .test_before_acquire(!sqlite)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    // WAL: writers do not block readers (`gateway records`),
                    // and a commit costs no fsync of the whole journal.
                    sqlx::query("PRAGMA journal_mode=WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA synchronous=NORMAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout=5000")
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await?;
    // One replica at a time, all or nothing (see `begin_migration`).
    let (mut tx, _) = crate::keys::begin_migration(&pool).await?;
    for stmt in SCHEMA {
        // Constant statements of this module.
        sqlx::query(sqlx::AssertSqlSafe(*stmt))
            .execute(&mut *tx)
            .await?;
    }
    let v: Option<i64> = sqlx::query("SELECT MAX(version) FROM gateway_schema")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    if v.is_none() {
        sqlx::query("INSERT INTO gateway_schema (version) VALUES (1)")
            .execute(&mut *tx)
            .await?;
    }
    let mut version = v.unwrap_or(1);
    for (to, stmt) in MIGRATIONS {
        if version < *to {
            // Constant statements of this module.
            sqlx::query(sqlx::AssertSqlSafe(*stmt))
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE gateway_schema SET version = $1")
                .bind(*to)
                .execute(&mut *tx)
                .await?;
            version = *to;
        }
    }
    tx.commit().await?;
    Ok(pool)
}

impl Recorder {
    /// Opens the store and starts the writer task.
    pub async fn start(url: &str, capacity: usize) -> anyhow::Result<Self> {
        let pool = connect(url).await?;
        let sqlite = url.starts_with("sqlite");
        let file = if sqlite {
            sqlite::File::open(url)?
        } else {
            None
        };
        let store = match file {
            Some(file) => Store::File(file),
            None => Store::Pool(pool.clone(), sqlite),
        };
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let queued = Arc::new(AtomicI64::new(0));
        tokio::spawn(writer(store, rx, Arc::clone(&queued)));
        Ok(Self { tx, queued, pool })
    }

    /// Queues a record; a full queue drops it (counted), never blocks.
    pub fn record(&self, r: Record) {
        match self.tx.try_send(Msg::Rec(Box::new(r))) {
            Ok(()) => {
                let q = self.queued.fetch_add(1, Ordering::Relaxed) + 1;
                METRICS.records_queue.set(q);
            }
            Err(_) => METRICS.records_dropped.inc(),
        }
    }

    /// Waits until everything queued so far is written.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Where the writer writes: a SQLite file through SQLite's own statements,
/// or anything else (PostgreSQL, an in-memory SQLite) through sqlx.
#[derive(Debug)]
enum Store {
    File(sqlite::File),
    /// The pool, and whether it is SQLite.
    Pool(AnyPool, bool),
}

impl Store {
    /// Writes `batch[from..]` and hands the batch back; on a failure, how
    /// many of those rows were written before it.
    async fn write(
        &self,
        batch: Vec<Record>,
        from: usize,
    ) -> (Vec<Record>, Result<(), (usize, String)>) {
        match self {
            Self::File(f) => {
                let (batch, r) = f.write(batch, from).await;
                (batch, r.map_err(|e| (0, e)))
            }
            Self::Pool(pool, sqlite) => {
                let r = write(pool, *sqlite, &batch[from..]).await;
                (batch, r.map_err(|(n, e)| (n, e.to_string())))
            }
        }
    }
}

async fn writer(store: Store, mut rx: mpsc::Receiver<Msg>, queued: Arc<AtomicI64>) {
    let mut batch: Vec<Record> = Vec::with_capacity(BATCH);
    let mut backlog = false;
    while let Some(first) = rx.recv().await {
        let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
        let push = |m: Msg, batch: &mut Vec<Record>, flushes: &mut Vec<oneshot::Sender<()>>| match m
        {
            Msg::Rec(r) => batch.push(*r),
            Msg::Flush(done) => flushes.push(done),
        };
        push(first, &mut batch, &mut flushes);
        // Gather for a moment without listening: records queued meanwhile
        // wake nobody (one wake-up a batch, not one a request), and the
        // batch is written in a few statements (one per bit of its size).
        if flushes.is_empty() && !backlog {
            tokio::time::sleep(GATHER).await;
        }
        // Whatever else is already queued goes in too.
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => push(m, &mut batch, &mut flushes),
                Err(_) => break,
            }
        }
        backlog = batch.len() >= BATCH;
        if !batch.is_empty() {
            let n = batch.len() as i64;
            // A failed write is retried a few times: records are not dropped
            // for a blip of the database.
            // A statement is all or nothing, so a retry starts at the
            // first row not written: none lost, none written twice.
            let (mut tries, mut done) = (0, 0);
            loop {
                let (back, r) = store.write(std::mem::take(&mut batch), done).await;
                batch = back;
                match r {
                    Ok(()) => {
                        METRICS.records_written.add(n);
                        break;
                    }
                    // (An empty batch back: it was lost with its thread.)
                    Err((written, e)) if tries < 5 && !batch.is_empty() => {
                        done += written;
                        tries += 1;
                        tracing::warn!(error = %e, tries, "writing request records failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                    }
                    Err((written, e)) => {
                        let lost = n - (done + written) as i64;
                        tracing::error!(error = %e, rows = lost, "request records lost after retries");
                        METRICS.records_written.add(n - lost);
                        METRICS.records_dropped.add(lost);
                        break;
                    }
                }
            }
            let q = queued.fetch_sub(n, Ordering::Relaxed) - n;
            METRICS.records_queue.set(q.max(0));
            batch.clear();
        }
        for f in flushes {
            let _ = f.send(());
        }
    }
}

/// The record being built for one request: created by the middleware, filled
/// by the handler, sent when the response body ends (or is dropped).
#[derive(Debug, Clone)]
pub struct RecPatch(pub std::rc::Rc<std::cell::RefCell<Record>>);

/// A response body that sends its request's record when it ends or is
/// dropped (a client that leaves mid-stream), so every request gets exactly
/// one record with its full duration.
pub struct RecordingBody {
    inner: actix_web::body::BoxBody,
    patch: RecPatch,
    recorder: Recorder,
    started: std::time::Instant,
    ended: bool,
}

impl std::fmt::Debug for RecordingBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordingBody")
    }
}

impl RecordingBody {
    /// Wraps a body.
    pub fn new(
        inner: actix_web::body::BoxBody,
        patch: RecPatch,
        recorder: Recorder,
        started: std::time::Instant,
    ) -> Self {
        Self {
            inner,
            patch,
            recorder,
            started,
            ended: false,
        }
    }
}

impl actix_web::body::MessageBody for RecordingBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> actix_web::body::BodySize {
        self.inner.size()
    }

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<bytes::Bytes, Self::Error>>> {
        let p = std::pin::Pin::new(&mut self.inner).poll_next(cx);
        if let std::task::Poll::Ready(None) = p {
            self.ended = true;
        }
        p
    }
}

impl Drop for RecordingBody {
    fn drop(&mut self) {
        // The body first: a stream's own guard fills the record as it goes.
        drop(std::mem::replace(
            &mut self.inner,
            actix_web::body::BoxBody::new(()),
        ));
        // Sent once, here: moved out of its cell, not copied.
        let mut r = std::mem::take(&mut *self.patch.0.borrow_mut());
        r.duration_ms = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        if r.stream && !self.ended {
            r.interrupted = true;
        }
        self.recorder.record(r);
    }
}

/// Whether a header or JSON field name looks secret.
fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "key",
        "token",
        "secret",
        "password",
        "credential",
        "signature",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// Headers as a JSON object, secret ones redacted.
pub fn redact_headers<'a>(headers: impl Iterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut m = serde_json::Map::new();
    for (k, v) in headers {
        let v = if secret_name(k) {
            "[redacted]".to_owned()
        } else {
            String::from_utf8_lossy(v).into_owned()
        };
        m.insert(k.to_owned(), serde_json::Value::String(v));
    }
    serde_json::Value::Object(m).to_string()
}

/// A request body for the record: JSON with secret-looking fields redacted
/// (other bodies kept as text), cut at `max` bytes.
pub fn redact_body(body: &[u8], max: usize) -> String {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(o) => {
                for (k, x) in o.iter_mut() {
                    if secret_name(k) && !k.ends_with("_tokens") && k != "max_tokens" {
                        *x = serde_json::Value::String("[redacted]".into());
                    } else {
                        walk(x);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut v) => {
            walk(&mut v);
            v.to_string()
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_from_bodies_and_headers() {
        let b = redact_body(
            br#"{"model":"m","api_key":"sk-1","max_tokens":5,"nested":[{"access_token":"t"}],"messages":[]}"#,
            1000,
        );
        assert!(!b.contains("sk-1") && !b.contains("\"t\""), "{b}");
        assert!(b.contains("\"max_tokens\":5"));
        let h = redact_headers(
            [
                ("authorization", b"Bearer sk-2".as_slice()),
                ("content-type", b"application/json".as_slice()),
            ]
            .into_iter(),
        );
        assert!(!h.contains("sk-2") && h.contains("application/json"));
        assert_eq!(redact_body("日本語".as_bytes(), 4), "日");
    }
}
