//! The keys' tables: their schema, created and migrated under the
//! migration lock, and the versions replicas poll (definitions, usage, the
//! console's session generation).

use sqlx::{AnyPool, Row};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS gateway_keys (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        prefix TEXT NOT NULL,
        owner TEXT,
        models TEXT NOT NULL,
        upstreams TEXT NOT NULL,
        expires_at BIGINT,
        disabled BIGINT NOT NULL,
        quota_tokens BIGINT,
        used_tokens BIGINT NOT NULL,
        quota_micro_usd BIGINT,
        used_micro_usd BIGINT NOT NULL,
        rpm BIGINT,
        tpm BIGINT,
        max_concurrent BIGINT,
        ip_allow TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS gateway_keys_version (id BIGINT PRIMARY KEY, version BIGINT NOT NULL)",
    "INSERT INTO gateway_keys_version (id, version) SELECT 1, 0 WHERE NOT EXISTS (SELECT 1 FROM gateway_keys_version WHERE id = 1)",
    // Usage has a version of its own: a usage write never reloads keys.
    "INSERT INTO gateway_keys_version (id, version) SELECT 2, 0 WHERE NOT EXISTS (SELECT 1 FROM gateway_keys_version WHERE id = 2)",
    // The console's session generation: a logout ends every session.
    "INSERT INTO gateway_keys_version (id, version) SELECT 3, 0 WHERE NOT EXISTS (SELECT 1 FROM gateway_keys_version WHERE id = 3)",
];

/// Columns added after the table's first form: (column, its definition).
const ADDED: &[(&str, &str)] = &[
    ("quota_micro_usd", "BIGINT"),
    ("used_micro_usd", "BIGINT NOT NULL DEFAULT 0"),
    // The usage version that last changed the row's usage.
    ("usage_seq", "BIGINT NOT NULL DEFAULT 0"),
    // A guardrail's settings as JSON.
    ("guardrail", "TEXT"),
];

/// Whether `gateway_keys` has `column` (asked of the catalog, which never
/// fails a transaction as a failed `SELECT` would on PostgreSQL).
async fn has_column(conn: &mut sqlx::AnyConnection, pg: bool, column: &str) -> sqlx::Result<bool> {
    let q = if pg {
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'gateway_keys' AND column_name = $1"
    } else {
        "SELECT 1 FROM pragma_table_info('gateway_keys') WHERE name = $1"
    };
    Ok(sqlx::query(q)
        .bind(column)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// The key every gateway migration holds on PostgreSQL (a transaction's
/// advisory lock): replicas starting together migrate one at a time, and
/// the lock goes with the transaction, whatever happens to it.
pub(crate) const MIGRATION_LOCK: i64 = 0x6761_7465_7761_7900;

/// Begins a migration: a transaction holding [`MIGRATION_LOCK`] on
/// PostgreSQL (SQLite's file lock serializes its writers). Returns it and
/// whether the database is PostgreSQL.
pub(crate) async fn begin_migration(
    pool: &AnyPool,
) -> sqlx::Result<(sqlx::Transaction<'static, sqlx::Any>, bool)> {
    let pg = pool.acquire().await?.backend_name() == "PostgreSQL";
    // SQLite: the write lock first. A deferred transaction that reads the
    // schema and then writes fails at once (SQLITE_BUSY_SNAPSHOT, no busy
    // wait) when the gateway wrote in between, as `gateway keys` beside a
    // running gateway did.
    let mut tx = if pg {
        pool.begin().await?
    } else {
        pool.begin_with("BEGIN IMMEDIATE").await?
    };
    if pg {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
    }
    Ok((tx, pg))
}

/// Creates the keys' tables and adds the columns an older store lacks, in
/// one transaction under the migration lock.
pub(super) async fn migrate(pool: &AnyPool) -> anyhow::Result<()> {
    let (mut tx, pg) = begin_migration(pool).await?;
    for stmt in SCHEMA {
        // Constant statements of this module.
        sqlx::query(sqlx::AssertSqlSafe(*stmt))
            .execute(&mut *tx)
            .await?;
    }
    for (column, def) in ADDED {
        if !has_column(&mut tx, pg, column).await? {
            // Constant names of this module.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "ALTER TABLE gateway_keys ADD COLUMN {column} {def}"
            )))
            .execute(&mut *tx)
            .await?;
        }
    }
    // Replicas read the rows a usage write changed by this column.
    sqlx::query("CREATE INDEX IF NOT EXISTS gateway_keys_usage_seq ON gateway_keys (usage_seq)")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The store's versions, read together.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Versions {
    /// The keys' definitions.
    pub(super) defs: i64,
    /// Their usage.
    pub(super) usage: i64,
    /// The console's session generation.
    pub(super) console: i64,
}

pub(super) async fn versions(pool: &AnyPool) -> anyhow::Result<Versions> {
    let rows = sqlx::query("SELECT id, version FROM gateway_keys_version")
        .fetch_all(pool)
        .await?;
    let mut v = Versions::default();
    for r in rows {
        let (id, n): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
        match id {
            1 => v.defs = n,
            2 => v.usage = n,
            3 => v.console = n,
            _ => {}
        }
    }
    Ok(v)
}

/// Ends every console session (a new generation).
pub(super) async fn end_console_sessions(pool: &AnyPool) -> anyhow::Result<()> {
    sqlx::query("UPDATE gateway_keys_version SET version = version + 1 WHERE id = 3")
        .execute(pool)
        .await?;
    Ok(())
}

/// The usage of the keys whose usage changed after usage version `seen`:
/// (id, tokens, micro-dollars).
pub(super) async fn usage_since(
    pool: &AnyPool,
    seen: i64,
) -> anyhow::Result<Vec<(String, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT id, used_tokens, used_micro_usd FROM gateway_keys WHERE usage_seq > $1",
    )
    .bind(seen)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<_, sqlx::Error>>()?)
}
