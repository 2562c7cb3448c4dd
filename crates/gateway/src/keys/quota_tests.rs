//! Quotas shared through a real Redis: the count Redis keeps is the usage,
//! exactly, whatever this replica's own bookkeeping looks like at the moment
//! of a check, and whether or not Redis answers in time.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::limits::{Limiter, QuotaCheck};
use super::ticket::Spent;
use super::{KeyStore, NewKey};

const REDIS: &str = "redis://127.0.0.1:6379/";

/// One test at a time: one of them holds Redis still.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A real Redis, or `None` (skip) off CI.
async fn redis() -> Option<redis::aio::MultiplexedConnection> {
    let c = match redis::Client::open(REDIS) {
        Ok(c) => c.get_multiplexed_async_connection().await.ok(),
        Err(_) => None,
    };
    if c.is_none() {
        assert!(std::env::var_os("CI").is_none(), "Redis is required in CI");
        eprintln!("SKIP: needs Redis at {REDIS}");
    }
    c
}

async fn count(c: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("GET")
        .arg(key)
        .query_async::<Option<i64>>(c)
        .await
        .unwrap()
        .unwrap_or(0)
}

/// Waits (bounded) for Redis' count at `key` to read `want`: the
/// adjustments are sent in the background.
async fn settles_at(c: &mut redis::aio::MultiplexedConnection, key: &str, want: i64) -> i64 {
    let mut got = count(c, key).await;
    for _ in 0..100 {
        if got == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        got = count(c, key).await;
    }
    // And stays there: nothing else is still on its way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    count(c, key).await
}

fn spent(tokens: u64) -> Spent {
    Spent {
        prompt: tokens - 8,
        completion: 8,
        ..Spent::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_counts_each_token_once() {
    let _one = SERIAL.lock().await;
    let Some(mut c) = redis().await else { return };
    let pool = crate::observe::records::connect("sqlite::memory:")
        .await
        .unwrap();
    let ks = KeyStore::open(pool, Limiter::redis(REDIS).unwrap())
        .await
        .unwrap();
    let (_, k) = ks
        .create(NewKey {
            name: "quota".into(),
            quota_tokens: Some(1_000),
            ..NewKey::default()
        })
        .await
        .unwrap();
    let k = ks.get(&k.id).unwrap();
    let key = format!("gw:q:{}:t", k.id);

    // One request, 13 tokens against an estimate of 5.
    let t = ks.admit(&k, None, 5, None).await.unwrap();
    t.settle(spent(13));
    assert_eq!(settles_at(&mut c, &key, 13).await, 13);

    // The usage writer puts the 13 tokens in the store and reads them
    // back; held at the moment before it drops them from this replica's
    // own count, which then holds them too.
    let live = ks.live(&k.id);
    for _ in 0..100 {
        if k.stored_with(&live).tokens == 13 && live.pending.load(Relaxed) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(k.stored_with(&live).tokens, 13, "written and read back");
    live.pending.fetch_add(13, Relaxed);
    assert_eq!(k.used_with(&live).tokens, 26, "counted twice, here");

    // A second request then: Redis must not take the doubled figure.
    let t = ks.admit(&k, None, 5, None).await.unwrap();
    t.settle(spent(13));
    assert_eq!(
        settles_at(&mut c, &key, 26).await,
        26,
        "Redis holds the usage, once"
    );
    drop(ks);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_redis_answer_gives_its_reservation_back() {
    let _one = SERIAL.lock().await;
    let Some(mut c) = redis().await else { return };
    let limiter = Limiter::redis(REDIS).unwrap();
    let id = format!("late-{}", crate::ids::now_ms());
    let key = format!("gw:q:{id}:t");
    // Connected, and the counter seeded at 100.
    assert_eq!(
        limiter.quota_take(&id, 't', 100, 1_000, 0).await,
        QuotaCheck::Reserved
    );
    // Redis holds every other client for 600 ms: the check misses its
    // 250 ms deadline, the local count decides, and the script runs later.
    let mut pauser = redis::Client::open(REDIS)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(600)
        .arg("ALL")
        .query_async(&mut pauser)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let late = limiter.quota_take(&id, 't', 100, 1_000, 5).await;
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(late, QuotaCheck::Local, "decided without Redis");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        settles_at(&mut c, &key, 100).await,
        100,
        "the late reservation was given back"
    );
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
}
