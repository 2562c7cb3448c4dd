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
        finish_reason: r.try_get("finish_reason")?,
        affinity: r.try_get("affinity")?,
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

/// Per model and key: requests, errors, tokens, prompt-cache tokens,
/// guardrail interventions, fallbacks and cache-affine routing.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Usage {
    /// Model (the one that answered).
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
    /// Prompt tokens read from a prompt cache (of `prompt_tokens`).
    pub cache_read_tokens: i64,
    /// Prompt tokens written to a prompt cache (of `prompt_tokens`).
    pub cache_write_tokens: i64,
    /// Answers a content filter ended (a guardrail's intervention).
    pub interventions: i64,
    /// Requests this model answered in place of the one asked for (a
    /// fallback).
    pub fallbacks: i64,
    /// Requests served by the candidate their conversation prefers.
    pub affinity_hits: i64,
    /// Requests that affinity had to move to another candidate.
    pub affinity_moves: i64,
}

/// The usage summary since `since_ms`: API requests (those that name a
/// model; the admin API's and the console's own are left out).
pub async fn summary(pool: &AnyPool, since_ms: i64) -> Result<Vec<Usage>, sqlx::Error> {
    let sql = "SELECT COALESCE(model, '-') AS model, COALESCE(key_id, '-') AS key_id, CAST(COUNT(*) AS BIGINT) AS requests, \
               CAST(SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS BIGINT) AS errors, \
               CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens, CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens, \
               CAST(COALESCE(SUM(cache_read_tokens), 0) AS BIGINT) AS cache_read_tokens, CAST(COALESCE(SUM(cache_write_tokens), 0) AS BIGINT) AS cache_write_tokens, \
               CAST(SUM(CASE WHEN finish_reason = 'content_filter' THEN 1 ELSE 0 END) AS BIGINT) AS interventions, \
               CAST(SUM(CASE WHEN requested_model IS NOT NULL AND model IS NOT NULL AND requested_model <> model THEN 1 ELSE 0 END) AS BIGINT) AS fallbacks, \
               CAST(SUM(CASE WHEN affinity = 'hit' THEN 1 ELSE 0 END) AS BIGINT) AS affinity_hits, \
               CAST(SUM(CASE WHEN affinity = 'move' THEN 1 ELSE 0 END) AS BIGINT) AS affinity_moves \
               FROM gateway_requests WHERE ts_ms >= $1 AND model IS NOT NULL GROUP BY COALESCE(model, '-'), COALESCE(key_id, '-') ORDER BY requests DESC";
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
                cache_read_tokens: r.try_get("cache_read_tokens")?,
                cache_write_tokens: r.try_get("cache_write_tokens")?,
                interventions: r.try_get("interventions")?,
                fallbacks: r.try_get("fallbacks")?,
                affinity_hits: r.try_get("affinity_hits")?,
                affinity_moves: r.try_get("affinity_moves")?,
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
    /// Prompt tokens read from a prompt cache.
    pub cache_read_tokens: i64,
    /// Prompt tokens written to a prompt cache.
    pub cache_write_tokens: i64,
}

/// Usage per day and model since `since_ms`, of one key if `key_id` is set.
pub async fn daily(
    pool: &AnyPool,
    since_ms: i64,
    key_id: Option<&str>,
) -> Result<Vec<Daily>, sqlx::Error> {
    let sql = "SELECT CAST(ts_ms / 86400000 AS BIGINT) AS day, COALESCE(model, '-') AS model, CAST(COUNT(*) AS BIGINT) AS requests, \
               CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens, CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens, \
               CAST(COALESCE(SUM(cache_read_tokens), 0) AS BIGINT) AS cache_read_tokens, CAST(COALESCE(SUM(cache_write_tokens), 0) AS BIGINT) AS cache_write_tokens \
               FROM gateway_requests WHERE ts_ms >= $1 AND model IS NOT NULL AND ($2 = '' OR key_id = $2) \
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
                cache_read_tokens: r.try_get("cache_read_tokens")?,
                cache_write_tokens: r.try_get("cache_write_tokens")?,
            })
        })
        .collect()
}

/// What tokens cost and what the prompt cache saved, millionths of a US
/// dollar, at a `[[prices]]` price (both zero without one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Cost {
    /// What was paid: cache reads and writes at their own prices.
    pub cost_micro_usd: i64,
    /// The same tokens without a cache, less what was paid (negative when
    /// cache writes cost more than their reads saved).
    pub saved_micro_usd: i64,
}

impl Cost {
    /// The cost of `prompt` tokens (of them `cache` = read, written) and
    /// `completion` tokens at `price`.
    pub fn of(
        price: Option<crate::config::PriceConfig>,
        prompt: i64,
        cache: (i64, i64),
        completion: i64,
    ) -> Self {
        let paid = crate::keys::ticket::cost(price, prompt, cache, completion);
        let uncached = crate::keys::ticket::cost(price, prompt, (0, 0), completion);
        Self {
            cost_micro_usd: paid,
            saved_micro_usd: uncached - paid,
        }
    }
}

/// `cost` for the usage rows, which all carry the same token columns.
macro_rules! priced {
    ($($row:ty),*) => {$(
        impl $row {
            /// This row's cost at `price`.
            pub fn cost(&self, price: Option<crate::config::PriceConfig>) -> Cost {
                Cost::of(
                    price,
                    self.prompt_tokens,
                    (self.cache_read_tokens, self.cache_write_tokens),
                    self.completion_tokens,
                )
            }
        }
    )*};
}

priced!(Usage, Daily);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PriceConfig;

    #[test]
    fn the_cache_saves_what_reads_save_less_what_writes_add() {
        // Claude Sonnet 4 on Bedrock: 3, 15, cache read 0.30, write 3.75.
        let price = Some(PriceConfig {
            prompt: 3.0,
            completion: 15.0,
            cached_prompt: Some(0.3),
            cache_write_prompt: Some(3.75),
        });
        let u = Usage {
            prompt_tokens: 10_000,
            completion_tokens: 100,
            cache_read_tokens: 8_000,
            cache_write_tokens: 1_000,
            ..Usage::default()
        };
        // Paid: 1,000 fresh × 3 + 8,000 × 0.3 + 1,000 × 3.75 + 100 × 15.
        let c = u.cost(price);
        assert_eq!(c.cost_micro_usd, 3_000 + 2_400 + 3_750 + 1_500);
        // Without the cache: 10,000 × 3 + 100 × 15.
        assert_eq!(c.saved_micro_usd, 31_500 - c.cost_micro_usd);
        // Writes alone cost more than no cache.
        let w = Usage {
            cache_read_tokens: 0,
            ..u.clone()
        };
        assert!(w.cost(price).saved_micro_usd < 0);
        assert_eq!(u.cost(None), Cost::default());
    }
}
