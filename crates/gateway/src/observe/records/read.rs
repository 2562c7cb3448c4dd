//! Reading records back: the `gateway records` listing and the usage
//! summary (per model and key) the CLI and the admin API show.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::Record;

/// A query of stored records (the `gateway records` subcommand).
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only records at or after this time, Unix ms.
    pub since_ms: Option<i64>,
    /// Only this model.
    pub model: Option<String>,
    /// Only this key id.
    pub key_id: Option<String>,
    /// Only this status.
    pub status: Option<i64>,
    /// At most this many, newest first.
    pub limit: i64,
}

fn row(r: &AnyRow) -> Result<Record, sqlx::Error> {
    Ok(Record {
        request_id: r.try_get("request_id")?,
        ts_ms: r.try_get("ts_ms")?,
        key_id: r.try_get("key_id")?,
        client_ip: r.try_get("client_ip")?,
        route: r.try_get("route")?,
        model: r.try_get("model")?,
        upstream: r.try_get("upstream")?,
        status: r.try_get("status")?,
        stream: r.try_get::<i64, _>("stream")? != 0,
        ttft_ms: r.try_get("ttft_ms")?,
        duration_ms: r.try_get("duration_ms")?,
        prompt_tokens: r.try_get("prompt_tokens")?,
        completion_tokens: r.try_get("completion_tokens")?,
        tokens_estimated: r.try_get::<i64, _>("tokens_estimated")? != 0,
        error: r.try_get("error")?,
        interrupted: r.try_get::<i64, _>("interrupted")? != 0,
        request_body: r.try_get("request_body")?,
        request_headers: r.try_get("request_headers")?,
        cache_read_tokens: r.try_get("cache_read_tokens")?,
        cache_write_tokens: r.try_get("cache_write_tokens")?,
        requested_model: r.try_get("requested_model")?,
    })
}

/// Records matching `q`, newest first.
pub async fn query(pool: &AnyPool, q: &Query) -> Result<Vec<Record>, sqlx::Error> {
    let sql = "SELECT * FROM gateway_requests WHERE ts_ms >= $1 AND ($2 = '' OR model = $2) AND ($3 = '' OR key_id = $3) AND ($4 = 0 OR status = $4) ORDER BY ts_ms DESC LIMIT $5";
    let rows = sqlx::query(sql)
        .bind(q.since_ms.unwrap_or(0))
        .bind(q.model.clone().unwrap_or_default())
        .bind(q.key_id.clone().unwrap_or_default())
        .bind(q.status.unwrap_or(0))
        .bind(q.limit.max(1))
        .fetch_all(pool)
        .await?;
    rows.iter().map(row).collect()
}

/// Per model and key: requests, errors, tokens.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Usage {
    /// Model.
    pub model: String,
    /// Key id.
    pub key_id: String,
    /// Requests.
    pub requests: i64,
    /// Requests that failed (status ≥ 400).
    pub errors: i64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
}

/// The usage summary since `since_ms`.
pub async fn summary(pool: &AnyPool, since_ms: i64) -> Result<Vec<Usage>, sqlx::Error> {
    let sql = "SELECT COALESCE(model, '-') AS model, COALESCE(key_id, '-') AS key_id, CAST(COUNT(*) AS BIGINT) AS requests, \
               CAST(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS BIGINT) AS errors, \
               CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens, CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens \
               FROM gateway_requests WHERE ts_ms >= $1 GROUP BY COALESCE(model, '-'), COALESCE(key_id, '-') ORDER BY requests DESC";
    let rows = sqlx::query(sql).bind(since_ms).fetch_all(pool).await?;
    rows.iter()
        .map(|r| {
            Ok(Usage {
                model: r.try_get("model")?,
                key_id: r.try_get("key_id")?,
                requests: r.try_get("requests")?,
                errors: r.try_get("errors")?,
                prompt_tokens: r.try_get("prompt_tokens")?,
                completion_tokens: r.try_get("completion_tokens")?,
            })
        })
        .collect()
}

/// Per day (UTC) and model: requests and tokens.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Daily {
    /// Days since 1970-01-01.
    pub day: i64,
    /// Model.
    pub model: String,
    /// Requests.
    pub requests: i64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
}

/// Usage per day and model since `since_ms`, of one key if `key_id` is set.
pub async fn daily(
    pool: &AnyPool,
    since_ms: i64,
    key_id: Option<&str>,
) -> Result<Vec<Daily>, sqlx::Error> {
    let sql = "SELECT CAST(ts_ms / 86400000 AS BIGINT) AS day, COALESCE(model, '-') AS model, CAST(COUNT(*) AS BIGINT) AS requests, \
               CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens, CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens \
               FROM gateway_requests WHERE ts_ms >= $1 AND ($2 = '' OR key_id = $2) \
               GROUP BY CAST(ts_ms / 86400000 AS BIGINT), COALESCE(model, '-') ORDER BY day, model";
    let rows = sqlx::query(sql)
        .bind(since_ms)
        .bind(key_id.unwrap_or_default())
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Daily {
                day: r.try_get("day")?,
                model: r.try_get("model")?,
                requests: r.try_get("requests")?,
                prompt_tokens: r.try_get("prompt_tokens")?,
                completion_tokens: r.try_get("completion_tokens")?,
            })
        })
        .collect()
}
