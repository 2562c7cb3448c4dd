//! The attempt loop on its own: fake attempts that answer from a table, a
//! paused clock for deadlines, real breakers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::StatusCode;

use super::*;
use crate::backend::Model;
use crate::config::{ModelConfig, RoutingConfig};
use crate::error::ApiError;
use crate::routing::admission::Admitted;

/// What a fake attempt does on one candidate.
#[derive(Clone)]
enum Act {
    Ok,
    Fail(ApiError),
    /// Answers after this long.
    Slow(Duration),
}

fn model(name: &str) -> Arc<Model> {
    Arc::new(Model::configured(ModelConfig::for_endpoint(name), 0).unwrap())
}

fn router(max_attempts: usize, names: &[&str]) -> Router {
    Router::new(
        RoutingConfig {
            max_attempts,
            breaker_failures: 1,
            breaker_cooldown_secs: 3600,
            ..RoutingConfig::default()
        },
        names.iter().map(|n| (format!("models/{n}"), false)),
    )
}

/// Runs the loop over `acts` (one per candidate, in order) and returns the
/// result and which candidates were tried (with the `more` flag each got).
async fn walk(
    router: &Router,
    acts: &[(&str, Act)],
    rules: Rules,
) -> (Result<String, ApiError>, Vec<(String, bool)>) {
    let redactor = Redactor::new(Vec::<String>::new());
    let cands = acts.iter().map(|(n, _)| model(n)).collect();
    let admitted = Admitted::for_tests(cands);
    let tried = Arc::new(Mutex::new(Vec::new()));
    let table: Vec<(String, Act)> = acts
        .iter()
        .map(|(n, a)| ((*n).to_owned(), a.clone()))
        .collect();
    let log = Arc::clone(&tried);
    let mut attempt =
        move |m: Arc<Model>, more: bool| -> BoxFuture<'static, Result<String, ApiError>> {
            log.lock().unwrap().push((m.cfg.name.clone(), more));
            let act = table
                .iter()
                .find(|(n, _)| *n == m.cfg.name)
                .map(|(_, a)| a.clone())
                .unwrap();
            let name = m.cfg.name.clone();
            Box::pin(async move {
                match act {
                    Act::Ok => Ok(name),
                    Act::Fail(e) => Err(e),
                    Act::Slow(d) => {
                        tokio::time::sleep(d).await;
                        Ok(name)
                    }
                }
            })
        };
    let walk = Walk {
        router,
        redactor: &redactor,
    };
    let r = run(walk, &admitted, "m", rules, &mut attempt)
        .await
        .map(|s| s.value);
    let tried = tried.lock().unwrap().clone();
    (r, tried)
}

/// A row: its name, the candidates and what each does, the budget, the
/// winner or the error status, the candidates tried.
type Case = (
    &'static str,
    Vec<(&'static str, Act)>,
    usize,
    Result<&'static str, u16>,
    Vec<&'static str>,
);

fn status(code: u16) -> ApiError {
    ApiError::upstream(
        StatusCode::from_u16(code).unwrap(),
        "upstream_error",
        "boom",
    )
}

#[tokio::test(start_paused = true)]
async fn walks_the_table() {
    let unreachable = ApiError::unreachable("refused");
    let bad_request = ApiError::invalid("no");
    let mut throttled = status(429);
    throttled.retry_after = Some("7".into());
    // (candidates and what each does, budget, winner or error status,
    // candidates tried)
    let cases: Vec<Case> = vec![
        (
            "first answers",
            vec![("a", Act::Ok), ("b", Act::Ok)],
            3,
            Ok("a"),
            vec!["a"],
        ),
        (
            "a retryable status moves on",
            vec![("a", Act::Fail(status(503))), ("b", Act::Ok)],
            3,
            Ok("b"),
            vec!["a", "b"],
        ),
        (
            "no connection always moves on",
            vec![("a", Act::Fail(unreachable.clone())), ("b", Act::Ok)],
            3,
            Ok("b"),
            vec!["a", "b"],
        ),
        (
            "a client error stops",
            vec![("a", Act::Fail(bad_request.clone())), ("b", Act::Ok)],
            3,
            Err(400),
            vec!["a"],
        ),
        (
            "a status outside retry_on_status stops",
            vec![("a", Act::Fail(status(501))), ("b", Act::Ok)],
            3,
            Err(501),
            vec!["a"],
        ),
        (
            "the budget bounds the walk",
            vec![
                ("a", Act::Fail(status(500))),
                ("b", Act::Fail(status(500))),
                ("c", Act::Ok),
            ],
            2,
            Err(500),
            vec!["a", "b"],
        ),
        (
            "429 everywhere keeps its status and Retry-After",
            vec![
                ("a", Act::Fail(throttled.clone())),
                ("b", Act::Fail(status(429))),
            ],
            3,
            Err(429),
            vec!["a", "b"],
        ),
    ];
    for (name, acts, budget, want, want_tried) in cases {
        let names: Vec<&str> = acts.iter().map(|(n, _)| *n).collect();
        let r = router(budget, &names);
        let (got, tried) = walk(&r, &acts, Rules::default()).await;
        match (&got, want) {
            (Ok(w), Ok(x)) => assert_eq!(w, x, "{name}"),
            (Err(e), Err(x)) => assert_eq!(e.status.as_u16(), x, "{name}"),
            _ => panic!("{name}: got {got:?}"),
        }
        let tried: Vec<&str> = tried.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(tried, want_tried, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_last_attempt_takes_the_request() {
    let r = router(2, &["a", "b", "c"]);
    let acts = [
        ("a", Act::Fail(status(500))),
        ("b", Act::Fail(status(500))),
        ("c", Act::Ok),
    ];
    let (_, tried) = walk(&r, &acts, Rules::default()).await;
    assert_eq!(tried, vec![("a".into(), true), ("b".into(), false)]);
}

#[tokio::test(start_paused = true)]
async fn a_throttled_candidate_gets_the_last_retry_after_or_one_second() {
    let r = router(3, &["a"]);
    let (got, _) = walk(&r, &[("a", Act::Fail(status(429)))], Rules::default()).await;
    assert_eq!(got.unwrap_err().retry_after.as_deref(), Some("1"));
    let mut e = status(429);
    e.retry_after = Some("7".into());
    let (got, _) = walk(&r, &[("a", Act::Fail(e))], Rules::default()).await;
    assert_eq!(got.unwrap_err().retry_after.as_deref(), Some("7"));
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_is_skipped_and_none_left_is_503_with_its_cool_down() {
    let r = router(3, &["a", "b"]);
    // One failure opens a breaker here (`breaker_failures = 1`); a 429
    // does not.
    let _ = walk(
        &r,
        &[("a", Act::Fail(status(429))), ("b", Act::Ok)],
        Rules::default(),
    )
    .await;
    assert!(r.admit("models/a"), "429 is not a failure of the upstream");
    r.release("models/a");
    let _ = walk(
        &r,
        &[("a", Act::Fail(status(500))), ("b", Act::Ok)],
        Rules::default(),
    )
    .await;
    let (got, tried) = walk(&r, &[("a", Act::Ok), ("b", Act::Ok)], Rules::default()).await;
    assert_eq!(got.unwrap(), "b");
    assert_eq!(tried.len(), 1, "a is skipped while open: {tried:?}");
    let _ = walk(&r, &[("b", Act::Fail(status(502)))], Rules::default()).await;
    let (got, tried) = walk(&r, &[("a", Act::Ok), ("b", Act::Ok)], Rules::default()).await;
    let e = got.unwrap_err();
    assert_eq!(e.status.as_u16(), 503);
    assert!(tried.is_empty());
    let after: u64 = e.retry_after.unwrap().parse().unwrap();
    assert!((3599..=3600).contains(&after), "{after}");
}

#[tokio::test(start_paused = true)]
async fn the_first_byte_deadline_moves_on_and_is_per_candidate() {
    let r = router(3, &["a", "b"]);
    let rules = Rules {
        first_byte: Some(FirstByte::Stream(Duration::from_secs(2))),
        ..Rules::default()
    };
    let acts = [
        ("a", Act::Slow(Duration::from_secs(5))),
        ("b", Act::Slow(Duration::from_secs(1))),
    ];
    let t0 = tokio::time::Instant::now();
    let (got, tried) = walk(&r, &acts, rules).await;
    assert_eq!(got.unwrap(), "b");
    assert_eq!(tried.len(), 2);
    // 2 s waiting on a, then b's 1 s: the clock is paused, so exactly.
    assert_eq!(t0.elapsed(), Duration::from_secs(3));
    // Without a first-byte rule, a slow answer is awaited (the backend
    // owns a whole answer's deadline).
    let r = router(3, &["a", "b"]);
    let (got, _) = walk(&r, &acts, Rules::default()).await;
    assert_eq!(got.unwrap(), "a");
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_first_byte_is_a_504_naming_the_candidate() {
    let r = router(1, &["a"]);
    let rules = Rules {
        first_byte: Some(FirstByte::Stream(Duration::from_secs(2))),
        ..Rules::default()
    };
    let (got, _) = walk(&r, &[("a", Act::Slow(Duration::from_secs(9)))], rules).await;
    let e = got.unwrap_err();
    assert_eq!(e.status.as_u16(), 504);
    assert!(
        e.body.error.message.contains("models/a"),
        "{}",
        e.body.error.message
    );
}
