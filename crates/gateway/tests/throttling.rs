//! Throttling stays throttling: a 429 moves the request
//! on but never opens a breaker; with no other candidate the client gets
//! the 429 and the upstream's `Retry-After`; an open breaker on the only
//! candidate answers 503 with `Retry-After`.

use mock_upstreams::OpenAiFault;

use crate::support::post;
use crate::upstreams::{hi, setup};

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_passed_on_and_never_opens_a_breaker() {
    let s = setup("").await;
    // "big" has one candidate (a); breaker_failures = 2 in this config.
    s.a.set_fault(OpenAiFault::Status(429));
    for stream in [false, true, false, true, false, false] {
        let r = post(&s.gw, "/v1/chat/completions", hi("big", stream)).await;
        assert_eq!(r.status(), 429, "stream={stream}");
        assert_eq!(
            r.headers()["retry-after"],
            "7",
            "the upstream's Retry-After"
        );
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "rate_limit_exceeded", "{v}");
    }
    // Six 429s later the breaker is still closed: the next answer is served.
    s.a.set_fault(OpenAiFault::None);
    let r = post(&s.gw, "/v1/chat/completions", hi("big", false)).await;
    assert_eq!(r.status(), 200);
    // With two candidates a 429 moves on to the next one.
    s.a.set_fault(OpenAiFault::Status(429));
    let r = post(&s.gw, "/v1/chat/completions", hi("gpt-4.1", false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-oai-upstream"], "b");
    // Real failures still open it; then the only candidate's open breaker
    // answers 503 with the remaining cool-down (1 s here) as Retry-After.
    s.a.set_fault(OpenAiFault::Status(500));
    for _ in 0..2 {
        let r = post(&s.gw, "/v1/chat/completions", hi("big", false)).await;
        assert_eq!(r.status(), 502);
    }
    let r = post(&s.gw, "/v1/chat/completions", hi("big", false)).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "no_upstream_available", "{v}");
    assert!(s.b.count() >= 1);
}
