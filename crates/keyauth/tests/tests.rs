//! keyauth: TTL, refresh on unknown keys, rate limiting of refreshes, and
//! serving the last good keys while the source fails. Time is tokio's,
//! paused and advanced: no test sleeps.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyauth::{BoxFuture, Error, KeyAuth, KeyAuthConfig, KeySource};

/// A source whose keys and failure the test changes, counting fetches.
#[derive(Debug, Clone, Default)]
struct Scripted {
    inner: Arc<Mutex<(Vec<String>, bool, u32)>>,
}

impl Scripted {
    fn set(&self, keys: &[&str]) {
        self.inner.lock().unwrap().0 = keys.iter().map(|s| s.to_string()).collect();
    }
    fn fail(&self, fail: bool) {
        self.inner.lock().unwrap().1 = fail;
    }
    fn fetches(&self) -> u32 {
        self.inner.lock().unwrap().2
    }
}

impl KeySource for Scripted {
    fn fetch(&self) -> BoxFuture<'_, Result<Vec<String>, Error>> {
        let mut g = self.inner.lock().unwrap();
        g.2 += 1;
        let r = if g.1 {
            Err(Error::Source("ServiceUnavailable".into()))
        } else {
            Ok(g.0.clone())
        };
        Box::pin(async move { r })
    }
    fn describe(&self) -> String {
        "scripted".into()
    }
}

fn cfg() -> KeyAuthConfig {
    KeyAuthConfig {
        ttl: Duration::from_secs(3600),
        min_refresh_interval: Duration::from_secs(10),
    }
}

#[tokio::test(start_paused = true)]
async fn ttl_expiry_refetches() {
    let src = Scripted::default();
    src.set(&["k1"]);
    let auth = KeyAuth::new(src.clone(), cfg());
    auth.verify("k1").await.unwrap();
    auth.verify("k1").await.unwrap();
    assert_eq!(src.fetches(), 1, "cached within the TTL");
    tokio::time::advance(Duration::from_secs(3601)).await;
    src.set(&["k2"]);
    assert_eq!(auth.verify("k1").await, Err(Error::Invalid));
    auth.verify("k2").await.unwrap();
    assert_eq!(src.fetches(), 2);
}

#[tokio::test(start_paused = true)]
async fn rotated_key_works_without_restart_but_bad_keys_cannot_hammer() {
    let src = Scripted::default();
    src.set(&["old"]);
    let auth = KeyAuth::new(src.clone(), cfg());
    auth.verify("old").await.unwrap();
    tokio::time::advance(Duration::from_secs(11)).await;
    src.set(&["old", "new"]);
    // The new key is unknown to the cache: one refresh finds it.
    auth.verify("new").await.unwrap();
    assert_eq!(src.fetches(), 2);
    // A flood of bad keys: at most one fetch per interval.
    for _ in 0..1000 {
        assert_eq!(auth.verify("bad").await, Err(Error::Invalid));
    }
    assert_eq!(src.fetches(), 2);
    tokio::time::advance(Duration::from_secs(10)).await;
    for _ in 0..1000 {
        assert_eq!(auth.verify("bad").await, Err(Error::Invalid));
    }
    assert_eq!(src.fetches(), 3);
}

#[tokio::test(start_paused = true)]
async fn source_failure_keeps_last_good_keys_and_reports_it() {
    let src = Scripted::default();
    src.set(&["k1"]);
    let auth = KeyAuth::new(src.clone(), cfg());
    auth.load().await.unwrap();
    src.fail(true);
    tokio::time::advance(Duration::from_secs(4000)).await;
    auth.verify("k1").await.unwrap();
    let st = auth.status();
    assert!(st.loaded);
    assert_eq!(st.key_count, 1);
    assert!(
        st.last_error
            .as_deref()
            .unwrap()
            .contains("ServiceUnavailable")
    );
    assert_eq!(st.failures, 1);
    // Still failing: requests keep working, fetches stay rate-limited.
    for _ in 0..100 {
        auth.verify("k1").await.unwrap();
    }
    assert_eq!(src.fetches(), 2);
    src.fail(false);
    tokio::time::advance(Duration::from_secs(10)).await;
    auth.verify("k1").await.unwrap();
    assert_eq!(auth.status().last_error, None);
}

#[tokio::test(start_paused = true)]
async fn never_loaded_is_unavailable_not_invalid() {
    let src = Scripted::default();
    src.fail(true);
    let auth = KeyAuth::new(src.clone(), cfg());
    assert!(matches!(auth.verify("k").await, Err(Error::Unavailable(_))));
    assert!(!auth.status().loaded);
}

#[tokio::test(start_paused = true)]
async fn header_parsing() {
    let src = Scripted::default();
    src.set(&["sk-1"]);
    let auth = KeyAuth::new(src, cfg());
    assert!(auth.verify_header(Some("Bearer sk-1")).await.is_ok());
    assert!(auth.verify_header(Some("bearer   sk-1 ")).await.is_ok());
    assert_eq!(
        auth.verify_header(Some("Basic sk-1")).await,
        Err(Error::Missing)
    );
    assert_eq!(
        auth.verify_header(Some("Bearer ")).await,
        Err(Error::Missing)
    );
    assert_eq!(auth.verify_header(None).await, Err(Error::Missing));
}

#[tokio::test(start_paused = true)]
async fn concurrent_unknown_keys_fetch_once() {
    let src = Scripted::default();
    src.set(&["k"]);
    let auth = Arc::new(KeyAuth::new(src.clone(), cfg()));
    auth.load().await.unwrap();
    tokio::time::advance(Duration::from_secs(11)).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let a = Arc::clone(&auth);
            tokio::spawn(async move { a.verify("nope").await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Err(Error::Invalid));
    }
    assert_eq!(src.fetches(), 2);
}

#[test]
fn key_id_is_a_hash_not_the_key() {
    let id = keyauth::KeyId::of("sk-secret-canary");
    assert_eq!(id.as_str().len(), 16);
    assert!(!id.as_str().contains("canary"));
    assert_eq!(id, keyauth::KeyId::of("sk-secret-canary"));
}
