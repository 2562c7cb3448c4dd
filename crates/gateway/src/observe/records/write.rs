//! Writing a batch of records: multi-row inserts of power-of-two sizes,
//! each statement cached per store and committed on its own.

use sqlx::AnyPool;

use super::{COLUMNS, NCOLS, Record};

/// Rows an insert statement carries at most (23 parameters a row: 5,888,
/// under SQLite's 32,766 and PostgreSQL's 65,535).
const CHUNK: usize = 256;

/// The insert of `rows` rows (a power of two up to [`CHUNK`]), with the
/// placeholders of the store: SQLite binds `?` by position (its `$N` are
/// names, looked up one by one per parameter, which made large batches
/// quadratic), PostgreSQL `$N`. Built once per size and kept (nine sizes
/// a store), so the driver's statement cache keeps each prepared: a batch
/// is never parsed again.
pub(super) fn insert_sql(sqlite: bool, rows: usize) -> &'static str {
    static CACHE: std::sync::OnceLock<[Vec<String>; 2]> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        let build = |sqlite: bool, rows: usize| {
            let mut sql = format!("INSERT INTO gateway_requests ({COLUMNS}) VALUES ");
            for r in 0..rows {
                sql.push_str(if r == 0 { "(" } else { ",(" });
                for c in 0..NCOLS {
                    if c > 0 {
                        sql.push(',');
                    }
                    if sqlite {
                        sql.push('?');
                    } else {
                        sql.push_str(&format!("${}", r * NCOLS + c + 1));
                    }
                }
                sql.push(')');
            }
            sql
        };
        let sizes = || (0..=CHUNK.trailing_zeros()).map(|b| 1usize << b);
        [
            sizes().map(|n| build(true, n)).collect(),
            sizes().map(|n| build(false, n)).collect(),
        ]
    });
    let table = &cache[usize::from(!sqlite)];
    table[rows.clamp(1, CHUNK).trailing_zeros() as usize].as_str()
}

/// A batch cut into statements of power-of-two sizes, largest first: full
/// [`CHUNK`]s, then one statement per bit of the rest (a batch of 100 is
/// 64 + 32 + 4).
fn statements(batch: &[Record]) -> impl Iterator<Item = &[Record]> {
    let mut rest = batch;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = if rest.len() >= CHUNK {
            CHUNK
        } else {
            1 << rest.len().ilog2()
        };
        let (now, later) = rest.split_at(n);
        rest = later;
        Some(now)
    })
}

/// Binds `rows` to their cached insert.
fn insert<'q>(
    sqlite: bool,
    rows: &'q [Record],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    // A constant statement of this module.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(insert_sql(sqlite, rows.len())));
    for r in rows {
        q = q
            .bind(r.request_id.as_str())
            .bind(r.ts_ms)
            .bind(r.key_id.as_deref())
            .bind(r.client_ip.as_deref())
            .bind(r.route.as_str())
            .bind(r.model.as_deref())
            .bind(r.upstream.as_deref())
            .bind(r.status)
            .bind(i64::from(r.stream))
            .bind(r.ttft_ms)
            .bind(r.duration_ms)
            .bind(r.prompt_tokens)
            .bind(r.completion_tokens)
            .bind(i64::from(r.tokens_estimated))
            .bind(r.error.as_deref())
            .bind(i64::from(r.interrupted))
            .bind(r.request_body.as_deref())
            .bind(r.request_headers.as_deref())
            .bind(r.cache_read_tokens)
            .bind(r.cache_write_tokens)
            .bind(r.requested_model.as_deref())
            .bind(r.finish_reason.as_deref())
            .bind(r.affinity.as_deref());
    }
    q
}

/// A batch written in statements of power-of-two sizes, each committed on
/// its own (no transaction: a batch of 100 is three round trips to the
/// store, where `BEGIN`, the inserts and `COMMIT` were five). On a failure,
/// how many rows were written before it.
pub(super) async fn write(
    pool: &AnyPool,
    sqlite: bool,
    batch: &[Record],
) -> Result<(), (usize, sqlx::Error)> {
    let mut written = 0;
    for rows in statements(batch) {
        insert(sqlite, rows)
            .execute(pool)
            .await
            .map_err(|e| (written, e))?;
        written += rows.len();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_cut_into_power_of_two_statements() {
        let rec = Record::default();
        for n in [0, 1, 2, 3, 100, 255, 256, 257, 1000] {
            let batch = vec![rec.clone(); n];
            let sizes: Vec<usize> = statements(&batch).map(<[Record]>::len).collect();
            assert_eq!(sizes.iter().sum::<usize>(), n, "{sizes:?}");
            assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= CHUNK));
            assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
            // At most the full chunks and one statement per bit of the rest.
            assert!(sizes.len() <= n / CHUNK + (n % CHUNK).count_ones() as usize);
            for s in sizes {
                let sql = insert_sql(true, s);
                assert_eq!(sql.matches('?').count(), s * NCOLS);
            }
        }
        assert_eq!(insert_sql(false, 2).matches('$').count(), 2 * NCOLS);
    }
}
