//! Request records: exactly one row per request after SIGTERM, on SQLite and
//! on the PostgreSQL of this machine; no secret stored; `gateway records`.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::support::{Gateway, KEY, client, config, fake, start};

/// Sends a mix of requests, each with an `x-request-id` of `prefix`; returns
/// how many.
async fn traffic(gw: &Gateway, prefix: &str) -> usize {
    let mut n = 0;
    let mut send = |body: Value, key: &'static str, path: &'static str| {
        n += 1;
        let id = format!("{prefix}-{n}");
        client()
            .post(format!("{}{path}", gw.url))
            .bearer_auth(key)
            .header("x-request-id", id)
            .json(&body)
            .send()
    };
    let hi = json!({"model": "chat", "messages": [{"role": "user", "content": "hello records"}]});
    for _ in 0..5 {
        assert_eq!(
            send(hi.clone(), KEY, "/v1/chat/completions")
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let mut s = hi.clone();
    s["stream"] = true.into();
    s["stream_options"] = json!({"include_usage": true});
    for _ in 0..3 {
        let r = send(s.clone(), KEY, "/v1/chat/completions").await.unwrap();
        r.bytes().await.unwrap();
    }
    assert_eq!(
        send(hi.clone(), "sk-wrong", "/v1/chat/completions")
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        send(
            json!({"model": "nope", "messages": []}),
            KEY,
            "/v1/chat/completions"
        )
        .await
        .unwrap()
        .status(),
        400
    );
    assert_eq!(
        send(
            json!({"model": "missing", "messages": [{"role": "user", "content": "x"}]}),
            KEY,
            "/v1/chat/completions"
        )
        .await
        .unwrap()
        .status(),
        400
    );
    // A stream the client leaves.
    let mut endless = s.clone();
    endless["model"] = "slow".into();
    let r = send(endless, KEY, "/v1/chat/completions").await.unwrap();
    let mut body = r.bytes_stream();
    body.next().await.unwrap().unwrap();
    drop(body);
    n
}

const SLOW: &str = "\n[[models]]\nname = \"slow\"\n";

async fn fake_with_slow() -> mock_upstreams::FakeSageMaker {
    let f = fake().await;
    let mut slow = mock_upstreams::Endpoint::echo(mock_upstreams::ContainerDialect::OpenAi);
    slow.reply = mock_upstreams::Reply::Endless;
    slow.token_delay = Duration::from_millis(20);
    f.add("slow", slow);
    f
}

fn stop(gw: &mut Gateway) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &gw.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = gw.child.wait().unwrap();
    assert!(status.success(), "{status}: {}", gw.logs());
}

async fn check_rows(url: &str, prefix: &str, n: usize) {
    let pool = gateway::observe::records::connect(url).await.unwrap();
    let rows = gateway::observe::records::query(
        &pool,
        &gateway::observe::records::Query {
            limit: 100_000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mine: Vec<_> = rows
        .into_iter()
        .filter(|r| r.request_id.starts_with(&format!("{prefix}-")))
        .collect();
    assert_eq!(mine.len(), n, "exactly one record per request: {mine:#?}");
    let text = serde_json::to_string(&mine).unwrap();
    assert!(
        !text.contains(KEY) && !text.contains("sk-wrong"),
        "no key stored"
    );
    assert!(!text.contains("hello records"), "no prompt stored");
    let ok = mine
        .iter()
        .filter(|r| r.status == 200 && r.model.as_deref() == Some("chat"));
    assert!(ok.clone().count() >= 8);
    for r in ok {
        assert!(r.key_id.as_deref().is_some_and(|k| !k.is_empty()));
        assert!(r.completion_tokens.unwrap_or(0) > 0, "{r:?}");
        assert_eq!(r.upstream.as_deref(), Some("models/chat"));
        assert!(r.client_ip.as_deref() == Some("127.0.0.1"));
    }
    assert!(
        mine.iter()
            .any(|r| r.stream && r.ttft_ms.is_some() && !r.interrupted)
    );
    assert!(mine.iter().any(|r| r.status == 401 && r.key_id.is_none()));
    let cut = mine
        .iter()
        .find(|r| r.interrupted)
        .expect("the abandoned stream");
    assert_eq!(cut.model.as_deref(), Some("slow"));
    assert!(cut.completion_tokens.is_some() && cut.tokens_estimated);
    assert!(mine.iter().any(|r| r.status == 400 && r.error.is_some()));
    // Answers keep why they ended.
    assert!(
        mine.iter()
            .filter(|r| r.status == 200 && r.route == "/v1/chat/completions" && !r.interrupted)
            .all(|r| r.finish_reason.is_some()),
        "{mine:#?}"
    );
    // The usage views read this store (the same SQL on SQLite and
    // PostgreSQL): API requests only, per model and key, per day.
    let usage = gateway::observe::records::summary(&pool, 0).await.unwrap();
    assert!(usage.iter().all(|u| u.model != "-"), "{usage:?}");
    let chat: i64 = usage
        .iter()
        .filter(|u| u.model == "chat")
        .map(|u| u.requests)
        .sum();
    assert!(chat >= 8, "{usage:?}");
    let daily = gateway::observe::records::daily(&pool, 0, None)
        .await
        .unwrap();
    assert!(
        daily
            .iter()
            .any(|d| d.model == "chat" && d.prompt_tokens > 0),
        "{daily:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_records_every_request_and_sigterm_flushes() {
    let f = fake_with_slow().await;
    let policy = "\n[records]\nbodies_routes = [\"/v1/completions\"]\n";
    let mut gw = start(&f.url(), &config(&format!("{SLOW}{policy}")), &[]);
    let url = format!(
        "sqlite://{}?mode=rwc",
        gw.config_path().with_file_name("records.db").display()
    );
    let prefix = format!("sq{}", std::process::id());
    let mut n = traffic(&gw, &prefix).await;
    // The body policy covers legacy completions: body and headers kept,
    // secrets redacted.
    let r = client()
        .post(format!("{}/v1/completions", gw.url))
        .bearer_auth(KEY)
        .header("x-request-id", format!("{prefix}-body"))
        .json(&json!({"model": "chat", "prompt": "kept by policy", "api_key": "sk-body-canary"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    n += 1;
    // Give the abandoned stream's close a moment to reach the gateway.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop(&mut gw);
    check_rows(&url, &prefix, n).await;
    let pool = gateway::observe::records::connect(&url).await.unwrap();
    let rows = gateway::observe::records::query(
        &pool,
        &gateway::observe::records::Query {
            limit: 1000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let kept = rows
        .iter()
        .find(|r| r.request_id == format!("{prefix}-body"))
        .unwrap();
    let body = kept.request_body.as_deref().unwrap();
    assert!(
        body.contains("kept by policy")
            && body.contains("[redacted]")
            && !body.contains("sk-body-canary"),
        "{body}"
    );
    let headers = kept.request_headers.as_deref().unwrap();
    assert!(
        headers.contains("x-request-id") && !headers.contains(KEY),
        "{headers}"
    );
    assert!(
        rows.iter()
            .filter(|r| r.route == "/v1/chat/completions")
            .all(|r| r.request_body.is_none())
    );

    // `gateway records`: JSON lines and the usage summary.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["--config"])
        .arg(gw.config_path())
        .args(["records", "--json", "--model", "chat", "--status", "200"])
        .env("RECORDS_URL", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 9, "8 chat requests and the legacy completion");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["--config"])
        .arg(gw.config_path())
        .args(["records", "--summary"])
        .env("RECORDS_URL", &url)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("chat") && text.contains("requests"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_records_every_request_and_sigterm_flushes() {
    let url = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if gateway::observe::records::connect(&url).await.is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "PostgreSQL at {url} is required in CI"
        );
        eprintln!("SKIP: no PostgreSQL at {url}");
        return;
    }
    let f = fake_with_slow().await;
    let mut gw = start(&f.url(), &config(SLOW), &[("RECORDS_URL", &url)]);
    let prefix = format!("pg{}-{}", std::process::id(), gw.port);
    let n = traffic(&gw, &prefix).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop(&mut gw);
    check_rows(&url, &prefix, n).await;
}
