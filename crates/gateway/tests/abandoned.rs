//! A client that leaves before the first byte takes its
//! upstream calls with it: whole and streamed chat, the Responses API and
//! every call of an `n > 1` fan-out are closed within 100 ms, nothing fails
//! over to the next candidate, no breaker counts it, and the request is
//! still recorded (499).

use std::time::{Duration, Instant};

use mock_upstreams::{ContainerDialect, Endpoint, FakeOpenAi, Fault};
use serde_json::{Value, json};

use crate::support::{KEY, client, config, fake, start};

const ADMIN: &str = "sk-admin-abandoned";

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_before_the_first_byte_ends_its_upstream_calls() {
    let f = fake().await;
    f.add(
        "hang",
        Endpoint {
            fault: Fault::HangBeforeHeaders,
            ..Endpoint::echo(ContainerDialect::OpenAi)
        },
    );
    // A second candidate for the same name, which must never be tried for
    // a client that left.
    let up = FakeOpenAi::start("next").await.unwrap();
    let text = config(&format!(
        r#"
[admin]
key = "{ADMIN}"

[[models]]
name = "hang"
endpoint = "hang"

[[upstreams]]
name = "next"
base_url = "{}"
priority = 1
models_allow = ["hang"]
"#,
        up.base_url()
    ))
    // Long deadlines: only the client's leaving may end these calls.
    .replace(
        "first_byte_timeout_secs = 2",
        "first_byte_timeout_secs = 60",
    )
    .replace("request_timeout_secs = 2", "request_timeout_secs = 60");
    let gw = start(&f.url(), &text, &[]);
    let chat = |stream: bool, n: u32| {
        json!({"model": "hang", "stream": stream, "n": n,
               "messages": [{"role": "user", "content": "hi"}]})
    };
    let cases: Vec<(&str, &str, Value, usize)> = vec![
        ("whole chat", "/v1/chat/completions", chat(false, 1), 1),
        ("streamed chat", "/v1/chat/completions", chat(true, 1), 1),
        ("fan-out n=3", "/v1/chat/completions", chat(true, 3), 3),
        (
            "whole fan-out n=2",
            "/v1/chat/completions",
            chat(false, 2),
            2,
        ),
        (
            "responses",
            "/v1/responses",
            json!({"model": "hang", "input": "hi"}),
            1,
        ),
        (
            "streamed responses",
            "/v1/responses",
            json!({"model": "hang", "input": "hi", "stream": true}),
            1,
        ),
    ];
    let mut lags = Vec::new();
    let mut asked = 0;
    for (what, path, body, calls) in &cases {
        for trial in 0..5 {
            let before = f.hangs().len();
            let sent = client()
                .post(format!("{}{path}", gw.url))
                .bearer_auth(KEY)
                .json(body)
                .send();
            // Leave once every call is waiting upstream.
            let waited = tokio::time::timeout(Duration::from_secs(10), async {
                let mut sent = Box::pin(sent);
                loop {
                    tokio::select! {
                        r = &mut sent => panic!("{what}: answered {:?}", r.map(|r| r.status())),
                        () = tokio::time::sleep(Duration::from_millis(5)) => {}
                    }
                    if f.hangs().len() >= before + calls {
                        break;
                    }
                }
            })
            .await;
            assert!(waited.is_ok(), "{what}: the calls never reached the fake");
            let left = Instant::now();
            asked += 1;
            let deadline = left + Duration::from_secs(5);
            loop {
                let hangs = f.hangs();
                let mine = &hangs[before..before + calls];
                if mine.iter().all(|h| h.closed.is_some()) {
                    let worst = mine
                        .iter()
                        .filter_map(|h| h.closed)
                        .max()
                        .unwrap()
                        .saturating_duration_since(left);
                    lags.push((worst, *what, trial));
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{what} #{trial}: an upstream call outlived its client"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    lags.sort();
    let worst = lags.last().unwrap();
    eprintln!(
        "upstream closed after the client left: median {:?}, worst {:?}",
        lags[lags.len() / 2].0,
        worst
    );
    assert!(worst.0 <= Duration::from_millis(100), "{worst:?}");
    // Nothing failed over, nothing counted against the breaker.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(up.requests().is_empty(), "failover for a client that left");
    let r = client()
        .get(format!("{}/admin/upstreams", gw.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let me = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().is_some_and(|n| n.contains("hang")))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        me["failures"].as_u64().unwrap_or(0),
        0,
        "the breaker counted a client's leaving: {me}"
    );
    // Log lines are written within 50 ms of being logged.
    let deadline = Instant::now() + Duration::from_secs(5);
    while gw.logs().matches("client left before the answer").count() < asked
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let logs = gw.logs();
    assert!(!logs.contains("attempt failed"), "{logs}");
    assert_eq!(
        logs.matches("client left before the answer").count(),
        asked,
        "{logs}"
    );
    // Recorded as 499.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = client()
        .get(format!("{}/admin/requests?limit=100", gw.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let closed = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == 499)
        .count();
    assert_eq!(closed, asked, "{v}");
}
