//! Tests of `limits`.
use super::*;

#[test]
fn a_minute_holds_the_limit_and_slides() {
    let mut w = Windows::default();
    let t0 = 600_000;
    for i in 0..5 {
        let q = take(&mut w, t0 + i, Some(5), None, 0).unwrap();
        assert_eq!(q[0].remaining, 4 - i);
    }
    let r = take(&mut w, t0 + 10, Some(5), None, 0).unwrap_err();
    assert_eq!(r.quota.kind, "requests");
    assert!(r.retry_ms > 50_000, "{r:?}");
    // Half way into the next minute, half of the last one (2.5) still
    // counts: two more pass, the third does not.
    assert!(take(&mut w, t0 + 90_000, Some(5), None, 0).is_ok());
    assert!(take(&mut w, t0 + 90_001, Some(5), None, 0).is_ok());
    assert!(take(&mut w, t0 + 90_002, Some(5), None, 0).is_err());
}

#[test]
fn a_refusal_takes_nothing_and_tokens_settle() {
    let mut w = Windows::default();
    let t = 1_200_000;
    take(&mut w, t, Some(10), Some(100), 90).unwrap();
    let r = take(&mut w, t, Some(10), Some(100), 20).unwrap_err();
    assert_eq!(r.quota.kind, "tokens");
    assert_eq!(w.requests.count(t), 1.0, "the refused request took nothing");
    w.tokens.adjust(t, -80.0);
    assert!(take(&mut w, t, Some(10), Some(100), 20).is_ok());
}

/// A refusal's wait is a time after which the same request passes, for
/// any state of the window (a retry at Retry-After +
/// 0.3 s was refused again, the minute just ended still counted).
#[test]
fn a_refused_request_passes_once_its_wait_is_over() {
    let mut checked = 0;
    for limit in [1i64, 2, 5, 60, 1000] {
        for prev_n in [0i64, 1, 3, 5, 60, 999] {
            for curr_n in [0i64, 1, 2, 5, 59, 1000] {
                for into in [0i64, 1, 999, 15_000, 30_000, 59_000, 59_999] {
                    for n in [1i64, 7] {
                        let base = 600_000;
                        let mut w = Window::default();
                        w.roll(base - WINDOW_MS);
                        w.curr = prev_n as f64;
                        w.roll(base);
                        w.curr = curr_n as f64;
                        let now = base + into;
                        let Err(ms) = w.clone().take(now, n as f64, limit as f64) else {
                            continue;
                        };
                        checked += 1;
                        assert!(
                            w.clone().take(now + ms, n as f64, limit as f64).is_ok(),
                            "limit {limit} prev {prev_n} curr {curr_n} into {into} n {n}: still refused after {ms} ms"
                        );
                        // And not much sooner than needed.
                        if ms > 1_000 {
                            assert!(
                                w.clone()
                                    .take(now + ms - 1_000, n as f64, limit as f64)
                                    .is_err(),
                                "limit {limit} prev {prev_n} curr {curr_n} into {into} n {n}: {ms} ms is too long"
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn reset_durations_read_like_openais() {
    assert_eq!(duration_text(20), "20ms");
    assert_eq!(duration_text(1500), "1.5s");
    assert_eq!(duration_text(360_000), "6m0s");
}
