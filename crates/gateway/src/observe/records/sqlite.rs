//! The SQLite file's writer: each batch bound straight to SQLite's own
//! prepared statement (rusqlite over the same C library sqlx links), one
//! transaction a batch, on a blocking thread. Through sqlx's `Any` driver
//! each value was encoded as an `Any` value, converted to SQLite's, and
//! each statement was a round trip to sqlx's connection thread: 21.7k
//! instructions a record, a seventh of a proxied request (BENCHMARKS.md,
//! "Session of 2026-12-08"). The schema, the readers and PostgreSQL stay
//! on sqlx.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, params};

use super::Record;

/// The records file, open for writing.
pub(super) struct File(Arc<Mutex<Connection>>);

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("records::File")
    }
}

impl File {
    /// Opens the file an sqlx SQLite URL names (the schema is in place:
    /// `connect` ran first). `None` for an in-memory store, where each
    /// connection has a database of its own.
    pub(super) fn open(url: &str) -> anyhow::Result<Option<Self>> {
        let opts: sqlx::sqlite::SqliteConnectOptions = url.parse()?;
        let path = opts.get_filename();
        if url.contains(":memory:") || url.contains("mode=memory") || path.as_os_str().is_empty() {
            return Ok(None);
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // As sqlx's connection has it: WAL (readers never wait on this
        // writer), no fsync a commit, and a wait for the other writers
        // (the key store's usage) rather than a failure.
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(Some(Self(Arc::new(Mutex::new(conn)))))
    }

    /// Writes `batch[from..]`, all or nothing, and hands the batch back.
    pub(super) async fn write(
        &self,
        batch: Vec<Record>,
        from: usize,
    ) -> (Vec<Record>, Result<(), String>) {
        let conn = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || {
            let r = insert(&conn, batch.get(from..).unwrap_or_default());
            (batch, r.map_err(|e| e.to_string()))
        })
        .await
        // The closure does not panic; if it did, the batch went with it.
        .unwrap_or_else(|e| (Vec::new(), Err(e.to_string())))
    }
}

fn insert(conn: &Mutex<Connection>, rows: &[Record]) -> rusqlite::Result<()> {
    let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
    let tx = conn.transaction()?;
    {
        let mut st = tx.prepare(super::write::insert_sql(true, 1))?;
        for r in rows {
            st.execute(params![
                r.request_id,
                r.ts_ms,
                r.key_id,
                r.client_ip,
                r.route,
                r.model,
                r.upstream,
                r.status,
                i64::from(r.stream),
                r.ttft_ms,
                r.duration_ms,
                r.prompt_tokens,
                r.completion_tokens,
                i64::from(r.tokens_estimated),
                r.error,
                i64::from(r.interrupted),
                r.request_body,
                r.request_headers,
                r.cache_read_tokens,
                r.cache_write_tokens,
                r.requested_model,
                r.finish_reason,
                r.affinity,
            ])?;
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the file's writer writes reads back through sqlx as it was,
    /// every column; a failed batch writes nothing; memory stores are
    /// left to sqlx (each connection would see its own database).
    #[tokio::test]
    async fn a_batch_reads_back_through_sqlx_column_for_column() {
        assert!(File::open("sqlite::memory:").unwrap().is_none());
        let dir = std::env::temp_dir().join(format!("records-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("r.db").display());
        let pool = super::super::connect(&url).await.unwrap();
        let file = File::open(&url).unwrap().expect("a file store");
        let full = Record {
            request_id: "req-1".into(),
            ts_ms: 1_796_690_978_000,
            key_id: Some("k\"1".into()),
            client_ip: Some("127.0.0.1".into()),
            route: "chat".into(),
            model: Some("m".into()),
            upstream: Some("up".into()),
            status: 200,
            stream: true,
            ttft_ms: Some(3),
            duration_ms: 7,
            prompt_tokens: Some(12),
            completion_tokens: Some(20),
            tokens_estimated: true,
            error: Some("e".into()),
            interrupted: true,
            request_body: Some("{}".into()),
            request_headers: Some("{\"a\":\"b\"}".into()),
            cache_read_tokens: Some(4),
            cache_write_tokens: Some(5),
            requested_model: Some("rm".into()),
            finish_reason: Some("stop".into()),
            affinity: Some("hit".into()),
        };
        let bare = Record {
            request_id: "req-2".into(),
            ts_ms: full.ts_ms + 1,
            route: "embeddings".into(),
            status: 400,
            ..Record::default()
        };
        let skipped = Record {
            request_id: "req-0".into(),
            ..bare.clone()
        };
        // From the second row on, as a retry after one written row would.
        let (back, r) = file
            .write(vec![skipped, full.clone(), bare.clone()], 1)
            .await;
        r.unwrap();
        assert_eq!(back.len(), 3);
        let q = super::super::Query {
            limit: 10,
            ..Default::default()
        };
        let mut got = super::super::query(&pool, &q).await.unwrap();
        got.reverse();
        assert_eq!(got, vec![full.clone(), bare]);
        // An empty route is still a value (`NOT NULL` holds).
        let (_, r) = file
            .write(
                vec![
                    full,
                    Record {
                        route: String::new(),
                        ..Record::default()
                    },
                ],
                0,
            )
            .await;
        assert!(r.is_ok(), "an empty route is still a value");
        // A row that breaks a constraint fails its whole batch.
        let n = super::super::query(&pool, &q).await.unwrap().len();
        sqlx::query("CREATE TRIGGER no_e BEFORE INSERT ON gateway_requests WHEN NEW.error = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END")
            .execute(&pool)
            .await
            .unwrap();
        let boom = Record {
            error: Some("boom".into()),
            ..Record::default()
        };
        let (_, r) = file.write(vec![Record::default(), boom], 0).await;
        assert!(r.unwrap_err().contains("boom"));
        assert_eq!(super::super::query(&pool, &q).await.unwrap().len(), n);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
