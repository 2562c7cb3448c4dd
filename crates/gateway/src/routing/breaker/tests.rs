use super::*;
use crate::backend::Model;

fn router(failures: u32, cooldown: u64) -> Router {
    Router::new(
        RoutingConfig {
            breaker_failures: failures,
            breaker_cooldown_secs: cooldown,
            breaker_window: 4,
            breaker_error_rate: 0.5,
            ..RoutingConfig::default()
        },
        [("a".to_owned(), false)],
    )
}

#[test]
fn opens_after_consecutive_failures_then_probes_once() {
    let r = router(3, 0);
    for _ in 0..2 {
        assert!(r.admit("a"));
        r.failure("a", "500");
    }
    assert_eq!(r.snapshot()[0].state, BreakerState::Closed);
    assert!(r.admit("a"));
    r.failure("a", "500");
    // Cool-down 0: the next request is the one half-open probe.
    assert!(r.admit("a"));
    assert!(!r.admit("a"), "one probe at a time");
    r.success("a", Duration::from_millis(5));
    assert_eq!(r.snapshot()[0].state, BreakerState::Closed);
    assert!(r.admit("a") && r.admit("a"));
}

#[test]
fn a_failed_probe_reopens_and_the_cool_down_holds() {
    let r = router(1, 3600);
    assert!(r.admit("a"));
    r.failure("a", "timeout");
    assert!(!r.admit("a"), "open during the cool-down");
    assert_eq!(r.snapshot()[0].opened, 1);
    assert_eq!(r.snapshot()[0].state, BreakerState::Open);
}

#[test]
fn error_rate_over_a_full_window_opens() {
    let r = router(100, 3600);
    for ok in [true, false, true, false, false] {
        assert!(r.admit("a"), "closed until the rate trips");
        if ok {
            r.success("a", Duration::from_millis(1));
        } else {
            r.failure("a", "429");
        }
    }
    assert!(!r.admit("a"));
}

#[test]
fn admin_disables_survive_a_reload() {
    let old = router(3, 0);
    assert!(old.set_disabled("a", true));
    let new = Router::new(RoutingConfig::default(), [("a".to_owned(), false)]);
    new.adopt(&old);
    assert!(!new.admit("a"), "still disabled after the reload");
    old.set_disabled("a", false);
    let cfg_disabled = Router::new(RoutingConfig::default(), [("a".to_owned(), true)]);
    cfg_disabled.adopt(&old);
    assert!(
        cfg_disabled.admit("a"),
        "the admin's enable wins over the file"
    );
}

#[test]
fn one_error_never_disables_for_good_and_admin_overrides() {
    let r = router(1, 0);
    r.failure("a", "x");
    assert!(
        r.admit("a"),
        "a cool-down, then a probe: never disabled forever"
    );
    assert!(r.set_disabled("a", true));
    assert!(!r.admit("a"));
    assert!(r.set_disabled("a", false));
    assert!(r.admit("a"));
    assert!(!r.set_disabled("nope", true));
}

/// A clock moved by hand.
#[derive(Debug)]
struct Manual(std::sync::Mutex<Instant>);

impl Clock for Manual {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
}

impl Manual {
    fn advance(&self, secs: u64) {
        *self.0.lock().unwrap() += Duration::from_secs(secs);
    }
}

/// A step of a breaker's life: seconds to move the clock, then what
/// happens, then what must hold.
#[derive(Debug, Clone, Copy)]
enum Step {
    Admit(bool),
    Fail,
    Succeed,
    Is(BreakerState),
    Wait(u64),
}

fn run(cfg: RoutingConfig, steps: &[Step]) {
    use Step::*;
    let clock = Arc::new(Manual(std::sync::Mutex::new(Instant::now())));
    let r = Router::new(cfg, [("a".to_owned(), false)]).with_clock(clock.clone());
    for (i, s) in steps.iter().enumerate() {
        match *s {
            Admit(want) => assert_eq!(r.admit("a"), want, "step {i}: {s:?}"),
            Fail => r.failure("a", "500"),
            Succeed => r.success("a", Duration::from_millis(3)),
            Is(state) => assert_eq!(r.snapshot()[0].state, state, "step {i}"),
            Wait(secs) => clock.advance(secs),
        }
    }
}

#[test]
fn breaker_transitions_on_a_clock_moved_by_hand() {
    use BreakerState::*;
    use Step::*;
    let cfg = |failures, cooldown| RoutingConfig {
        breaker_failures: failures,
        breaker_cooldown_secs: cooldown,
        breaker_window: 10,
        breaker_error_rate: 0.9,
        ..RoutingConfig::default()
    };
    for (name, c, steps) in [
        (
            "opens after 2 in a row, holds for the cool-down, one probe closes it",
            cfg(2, 30),
            vec![
                Admit(true),
                Fail,
                Is(Closed),
                Admit(true),
                Fail,
                Is(Open),
                Admit(false),
                Wait(29),
                Admit(false),
                Wait(1),
                Is(HalfOpen),
                Admit(true),
                Admit(false),
                Succeed,
                Is(Closed),
                Admit(true),
                Admit(true),
            ],
        ),
        (
            "a failed probe re-opens for another whole cool-down",
            cfg(1, 10),
            vec![
                Admit(true),
                Fail,
                Is(Open),
                Wait(10),
                Admit(true),
                Fail,
                Is(Open),
                Wait(9),
                Admit(false),
                Wait(1),
                Admit(true),
            ],
        ),
        (
            "a success resets the count of failures in a row",
            cfg(3, 10),
            vec![Fail, Fail, Succeed, Fail, Fail, Is(Closed), Fail, Is(Open)],
        ),
        (
            "no time passes, nothing reopens",
            cfg(1, 1),
            vec![Fail, Admit(false), Admit(false), Wait(1), Admit(true)],
        ),
    ] {
        eprintln!("{name}");
        run(c, &steps);
    }
}

fn model(name: &str, priority: i32) -> Arc<Model> {
    let mut cfg = crate::config::ModelConfig::for_endpoint(name);
    cfg.name = name.to_owned();
    cfg.priority = priority;
    Arc::new(Model::configured(cfg, 0).unwrap())
}

#[test]
fn candidates_are_ordered_by_priority_with_open_ones_last_and_disabled_out() {
    // (priorities, open, disabled, expected order)
    for (prios, open, disabled, want) in [
        (
            vec![("a", 1), ("b", 0), ("c", 2)],
            vec![],
            vec![],
            vec!["b", "a", "c"],
        ),
        (vec![("a", 0), ("b", 0)], vec![], vec![], vec!["a", "b"]),
        (vec![("a", 0), ("b", 1)], vec!["a"], vec![], vec!["b", "a"]),
        (
            vec![("a", 0), ("b", 1), ("c", 2)],
            vec![],
            vec!["b"],
            vec!["a", "c"],
        ),
        (
            vec![("a", 0), ("b", 1)],
            vec!["a", "b"],
            vec![],
            vec!["a", "b"],
        ),
    ] {
        let names = prios.iter().map(|(n, _)| (format!("models/{n}"), false));
        let r = Router::new(
            RoutingConfig {
                breaker_failures: 1,
                breaker_cooldown_secs: 60,
                ..RoutingConfig::default()
            },
            names,
        );
        for n in &open {
            r.failure(&format!("models/{n}"), "x");
        }
        for n in &disabled {
            r.set_disabled(&format!("models/{n}"), true);
        }
        let cands = prios.iter().map(|(n, p)| model(n, *p)).collect();
        let got: Vec<String> = r.order(cands).iter().map(|m| m.cfg.name.clone()).collect();
        assert_eq!(got, want, "{prios:?} open {open:?} disabled {disabled:?}");
    }
}

#[test]
fn failover_moves_on_by_the_error_s_own_retry_decision() {
    use actix_web::http::StatusCode;
    let r = Router::new(RoutingConfig::default(), []);
    let by = |status: u16| ApiError::new(StatusCode::from_u16(status).unwrap(), "x", "x", "x");
    let from_upstream = |status: u16| {
        let mut e = ApiError::upstream(StatusCode::BAD_GATEWAY, "upstream_error", "x");
        e.upstream_status = Some(status);
        e
    };
    for (e, want) in [
        (ApiError::unreachable("refused"), true),
        (ApiError::upstream_timeout("slow"), true),
        (ApiError::body_timeout(), false),
        (by(429), true),
        (by(503), true),
        (by(400), false),
        (by(404), false),
        (from_upstream(500), true),
        (from_upstream(501), false),
        (from_upstream(401), false),
        (ApiError::invalid("bad"), false),
        (ApiError::internal("bug"), false),
    ] {
        assert_eq!(r.retryable(&e), want, "{} {:?}", e.label, e.retry);
    }
}
