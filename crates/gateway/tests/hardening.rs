//! What an adversarial run with a valid key found, each as a regression
//! test: pass-through traversal, scoped keys after a reload, secrets echoed
//! by upstreams or quoted from a broken config, image fan-out, held and
//! slow bodies, the upstream connection pool, and plain error messages.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mock_upstreams::{FakeOpenAi, OpenAiFault};
use openai_types::contract::check_error;
use serde_json::{Value, json};

use crate::support::{Gateway, KEY, client, config, get_json, post, start, status_kib};

const ADMIN: &str = "sk-admin-canary-hard";
const UPSTREAM_KEY: &str = "sk-upstream-canary-hard";

/// Two upstreams: `a` with its own key, `b` forwarding the client's.
fn two_upstreams(a: &FakeOpenAi, b: &FakeOpenAi, extra: &str) -> String {
    config(&format!(
        r#"
[routing]
max_attempts = 2
breaker_failures = 100

[admin]
key = "{ADMIN}"

[[upstreams]]
name = "a"
base_url = "{}"
api_key = "{UPSTREAM_KEY}"
models_allow = ["gpt-*", "whisper-*"]

[[upstreams]]
name = "b"
base_url = "{}"
forward_client_key = true
priority = 1
models_allow = ["gpt-*"]
{extra}
"#,
        a.base_url(),
        b.base_url()
    ))
    .replacen(
        "log_format = \"json\"",
        "log_format = \"json\"\nbody_timeout_secs = 2\npassthrough_replay_bytes = 1048576\nmax_passthrough_body_bytes = 67108864",
        1,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn pass_through_refuses_every_path_that_could_climb_out() {
    let a = FakeOpenAi::start("a").await.unwrap();
    let b = FakeOpenAi::start("b").await.unwrap();
    let gw = start("http://127.0.0.1:9", &two_upstreams(&a, &b, ""), &[]);
    for path in [
        "/v1/%2e%2e/internal/secret",
        "/v1/../x",
        "/v1/%2E%2E/%2e%2e/x",
        "/v1/./../x",
        "/v1/%2e%2E/x",
        "/v1/%252e%252e/internal/secret",
        "/v1/a%2f..%2f..%2fx",
        "/v1/a%5c..%5cx",
        "/v1/.%2e/x",
    ] {
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nConnection: close\r\n\r\n"
        );
        let (status, body) = tokio::task::spawn_blocking({
            let (gw_port, head) = (gw.port, head.clone());
            move || {
                let g = GatewayPort(gw_port);
                g.raw(&head)
            }
        })
        .await
        .unwrap();
        assert_eq!(status, 400, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: {body}"));
        check_error(&v);
        assert_eq!(v["error"]["code"], "invalid_path", "{path}");
    }
    assert_eq!(a.count() + b.count(), 0, "{:?}", a.requests());
    // An ordinary path still passes.
    let r = client()
        .get(format!("{}/v1/models/gpt-4o", gw.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 400);
}

/// A port to send raw requests to from a blocking task.
struct GatewayPort(u16);

impl GatewayPort {
    fn raw(&self, head: &str) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.0)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // The gateway may answer and close before it has read everything.
        let _ = s.write_all(head.as_bytes());
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }
}

/// Rewrites the config file and sends SIGHUP; waits for the reload line.
async fn reload(gw: &Gateway, text: &str) {
    let before = gw.logs().matches("configuration reloaded").count();
    std::fs::write(gw.config_path(), text).unwrap();
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &gw.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(8);
    while gw.logs().matches("configuration reloaded").count() == before {
        assert!(Instant::now() < deadline, "no reload: {}", gw.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn chat_as(gw: &Gateway, key: &str, model: &str) -> u16 {
    client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn scoped_keys_follow_the_file_on_reload() {
    let a = FakeOpenAi::start("a").await.unwrap();
    let b = FakeOpenAi::start("b").await.unwrap();
    let scoped = |key: &str, models: &str| {
        format!("\n[[auth.scoped_keys]]\nkey = \"{key}\"\nmodels = [{models}]\n")
    };
    let text = two_upstreams(&a, &b, &scoped("sk-scoped-one", "\"gpt-*\""));
    let gw = start("http://127.0.0.1:9", &text, &[]);
    assert_eq!(chat_as(&gw, "sk-scoped-one", "gpt-4o").await, 200);
    assert_eq!(chat_as(&gw, "sk-scoped-one", "chat").await, 403);

    // Narrowed: the new scope applies to the next request.
    reload(
        &gw,
        &two_upstreams(&a, &b, &scoped("sk-scoped-one", "\"gpt-4o\"")),
    )
    .await;
    assert_eq!(chat_as(&gw, "sk-scoped-one", "gpt-4o").await, 200);
    assert_eq!(chat_as(&gw, "sk-scoped-one", "gpt-4.1").await, 403);

    // Changed: the old value is refused, the new one works, still scoped.
    reload(
        &gw,
        &two_upstreams(&a, &b, &scoped("sk-scoped-two", "\"gpt-4o\"")),
    )
    .await;
    assert_eq!(chat_as(&gw, "sk-scoped-one", "gpt-4o").await, 401);
    assert_eq!(chat_as(&gw, "sk-scoped-two", "gpt-4o").await, 200);
    assert_eq!(chat_as(&gw, "sk-scoped-two", "chat").await, 403);

    // Removed: refused at once, not let through unrestricted.
    reload(&gw, &two_upstreams(&a, &b, "")).await;
    assert_eq!(chat_as(&gw, "sk-scoped-two", "gpt-4o").await, 401);
    assert_eq!(chat_as(&gw, "sk-scoped-two", "chat").await, 401);
    assert_eq!(chat_as(&gw, KEY, "gpt-4o").await, 200);

    // A plain key changed in the file: the old value stops working.
    let text = two_upstreams(&a, &b, "").replace(KEY, "sk-rotated-plain-key");
    reload(&gw, &text).await;
    assert_eq!(chat_as(&gw, KEY, "chat").await, 401);
    assert_eq!(chat_as(&gw, "sk-rotated-plain-key", "gpt-4o").await, 200);
    assert!(!gw.logs().contains("sk-scoped"), "no key in the logs");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_config_is_never_quoted_at_start_or_on_reload() {
    let a = FakeOpenAi::start("a").await.unwrap();
    let b = FakeOpenAi::start("b").await.unwrap();
    let good = two_upstreams(&a, &b, "");
    let gw = start("http://127.0.0.1:9", &good, &[]);
    // A syntax error on a line holding a key, then a key where a number
    // belongs.
    for broken in [
        good.replacen(
            "[auth]",
            "[auth]\nextra = [\"sk-broken-canary-1\" \"x\"]",
            1,
        ),
        good.replacen(
            "[routing]",
            "[routing]\nmax_attempts = \"sk-broken-canary-2\"",
            1,
        ),
    ] {
        std::fs::write(gw.config_path(), &broken).unwrap();
        let before = gw.logs().matches("configuration reload refused").count();
        std::process::Command::new("kill")
            .args(["-HUP", &gw.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(8);
        while gw.logs().matches("configuration reload refused").count() == before {
            assert!(Instant::now() < deadline, "{}", gw.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let logs = gw.logs();
    assert!(
        logs.contains("line "),
        "a syntax error names its line: {logs}"
    );
    assert!(!logs.contains("sk-broken-canary"), "{logs}");
    drop(gw);
    // At start: the process exits with the key and reason, no snippet.
    let broken = good.replacen(
        "[auth]",
        "[auth]\nextra = [\"sk-broken-canary-3\" \"x\"]",
        1,
    );
    let dir = std::env::temp_dir().join(format!("gw-broken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.toml");
    std::fs::write(&path, broken).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("--config")
        .arg(&path)
        .env_clear()
        .env("RECORDS_ENABLED", "false")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("line "), "{all}");
    assert!(!all.contains("sk-broken-canary"), "{all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_echoed_by_upstreams_reach_no_log_record_metric_admin_view_alert_or_client() {
    let a = FakeOpenAi::start("a").await.unwrap();
    let b = FakeOpenAi::start("b").await.unwrap();
    let hook = FakeOpenAi::start("hook").await.unwrap();
    let extra = format!(
        r#"
[[alerts]]
kind = "json"
url = "{}/json"
"#,
        hook.base_url()
    );
    let text = two_upstreams(&a, &b, &extra).replace(
        "breaker_failures = 100",
        "breaker_failures = 1\nbreaker_cooldown_secs = 60",
    );
    let gw = start("http://127.0.0.1:9", &text, &[]);
    // a echoes its own key, b echoes the client's (forwarded): both fail,
    // the client gets b's error.
    a.set_fault(OpenAiFault::EchoAuth(500));
    b.set_fault(OpenAiFault::EchoAuth(400));
    let ask = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let r = post(&gw, "/v1/chat/completions", ask.clone()).await;
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(body.contains("Invalid Authorization header"), "{body}");
    // A streamed request and a pass-through error answer too.
    let mut s = ask.clone();
    s["stream"] = true.into();
    let streamed = post(&gw, "/v1/chat/completions", s)
        .await
        .text()
        .await
        .unwrap();
    let passed = post(
        &gw,
        "/v1/responses",
        json!({"model": "gpt-4o", "input": "x"}),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(passed.contains("Invalid Authorization header"), "{passed}");
    // The breaker of a opened: an alert went out.
    let deadline = Instant::now() + Duration::from_secs(5);
    while hook.requests().is_empty() {
        assert!(Instant::now() < deadline, "no alert");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let admin = get_json(&gw.url, "/admin/upstreams", Some(ADMIN)).await;
    assert!(
        admin.to_string().contains("Invalid Authorization header"),
        "{admin}"
    );
    let metrics = client()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let health = get_json(&gw.url, "/health", None).await.to_string();
    let alerts: String = hook
        .requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    // Records: flushed on SIGTERM, then the database file read raw.
    let records = std::fs::read_dir(gw.config_path().parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("records.db"))
        .map(|e| e.path())
        .collect::<Vec<_>>();
    let mut gw = gw;
    std::process::Command::new("kill")
        .args(["-TERM", &gw.child.id().to_string()])
        .status()
        .unwrap();
    let _ = gw.child.wait();
    let db: String = records
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect();
    let logs = gw.logs();
    for (place, text) in [
        ("client body", &body),
        ("stream", &streamed),
        ("pass-through body", &passed),
        ("admin", &admin.to_string()),
        ("metrics", &metrics),
        ("health", &health),
        ("alerts", &alerts),
        ("records", &db),
        ("logs", &logs),
    ] {
        for canary in [KEY, UPSTREAM_KEY, ADMIN] {
            assert!(!text.contains(canary), "{canary} in {place}: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn large_pass_through_bodies_are_streamed_not_held() {
    let a = FakeOpenAi::start("a").await.unwrap();
    let b = FakeOpenAi::start("b").await.unwrap();
    let gw = start("http://127.0.0.1:9", &two_upstreams(&a, &b, ""), &[]);
    // Warm up (connection pools, allocator).
    let r = post(
        &gw,
        "/v1/responses",
        json!({"model": "gpt-4o", "input": "x"}),
    )
    .await;
    assert_eq!(r.status(), 200, "the fake's native /responses answers");
    let before = rss_kib(&gw);
    const MIB: usize = 1024 * 1024;
    let size = 64 * MIB;
    let send = |_| {
        let url = format!("{}/v1/responses", gw.url);
        async move {
            let head = br#"{"model": "gpt-4o", "input": ""#.to_vec();
            let chunk = vec![b'x'; MIB];
            let n = size - head.len() - 2;
            let body = futures_util::stream::iter(
                std::iter::once(head)
                    .chain((0..n / MIB).map(move |_| chunk.clone()))
                    .chain(std::iter::once(vec![b'x'; n % MIB]))
                    .chain(std::iter::once(b"\"}".to_vec()))
                    .map(Ok::<_, std::io::Error>),
            );
            client()
                .post(url)
                .bearer_auth(KEY)
                .header("content-type", "application/json")
                .header("content-length", size.to_string())
                .body(reqwest::Body::wrap_stream(body))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let statuses = futures_util::future::join_all((0..8).map(send)).await;
    let grew = peak_rss_kib(&gw).saturating_sub(before);
    assert!(statuses.iter().all(|s| s.as_u16() == 200), "{statuses:?}");
    let got: Vec<usize> = a
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/responses")
        .map(|r| r.body_len)
        .collect();
    assert_eq!(got.iter().filter(|n| **n == size).count(), 8, "{got:?}");
    eprintln!("8 x 64 MiB pass-through bodies: peak RSS +{grew} KiB");
    assert!(grew < 32 * 1024, "peak RSS grew {grew} KiB");
    // Over the limit: 413 before anything is sent.
    let r = client()
        .post(format!("{}/v1/responses", gw.url))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(vec![b' '; 64 * MIB + 1])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = format!("{:?}", r.headers());
    let text = r.text().await.unwrap_or_default();
    assert_eq!(
        status,
        413,
        "{headers}\n{text}\n{}",
        gw.logs()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn rss_kib(gw: &Gateway) -> u64 {
    status_kib(gw, "VmRSS:")
}

fn peak_rss_kib(gw: &Gateway) -> u64 {
    status_kib(gw, "VmHWM:")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_trickles_is_cut_off_with_408() {
    let a = FakeOpenAi::start("a").await.unwrap();
    let b = FakeOpenAi::start("b").await.unwrap();
    let gw = start("http://127.0.0.1:9", &two_upstreams(&a, &b, ""), &[]);
    for path in ["/v1/chat/completions", "/v1/responses"] {
        let port = gw.port;
        let path = path.to_owned();
        let (status, body, took) = tokio::task::spawn_blocking(move || {
            let t0 = Instant::now();
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
            );
            s.write_all(head.as_bytes()).unwrap();
            // One byte a second, while the gateway keeps reading.
            let mut w = s.try_clone().unwrap();
            let trickle = std::thread::spawn(move || {
                for _ in 0..20 {
                    std::thread::sleep(Duration::from_secs(1));
                    if w.write_all(b" ").is_err() {
                        break;
                    }
                }
            });
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            let took = t0.elapsed();
            drop(s);
            let _ = trickle.join();
            let text = String::from_utf8_lossy(&out).into_owned();
            let status: u16 = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
            (status, text, took)
        })
        .await
        .unwrap();
        assert_eq!(status, 408, "{body}");
        assert!(body.contains("request_timeout"), "{body}");
        assert!(took < Duration::from_secs(8), "closed after {took:?}");
    }
    assert_eq!(a.count(), 0);
}

/// The gateway's established TCP connections to `port`.
fn connections_to(gw: &Gateway, port: u16) -> usize {
    let pid = gw.child.id();
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_string_lossy()
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .map(str::to_owned)
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap();
    let remote = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 9 && f[2].ends_with(&remote) && f[3] == "01" && inodes.contains(f[9])
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_upstream_connections_are_capped_after_bursts() {
    let a = FakeOpenAi::start("a").await.unwrap();
    let b = FakeOpenAi::start("b").await.unwrap();
    let text = two_upstreams(&a, &b, "").replace(
        "models_allow = [\"gpt-*\", \"whisper-*\"]",
        "models_allow = [\"gpt-*\", \"whisper-*\"]\nmax_idle_connections = 8",
    );
    let gw = start("http://127.0.0.1:9", &text, &[]);
    let port: u16 = a
        .base_url()
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches("/v1").parse().ok())
        .unwrap();
    a.set_token_delay(Duration::from_millis(20));
    for _ in 0..2 {
        let burst = (0..256).map(|_| async {
            let mut body = json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi there"}]});
            body["stream"] = true.into();
            let r = post(&gw, "/v1/chat/completions", body).await;
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
        });
        futures_util::future::join_all(burst).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let open = connections_to(&gw, port);
    eprintln!("after two bursts of 256 streams: {open} connections to the upstream");
    assert!(open <= 8, "{open} idle upstream connections kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn transport_errors_read_plainly_and_a_cut_answer_is_an_upstream_error() {
    let a = FakeOpenAi::start("a").await.unwrap();
    let b = FakeOpenAi::start("b").await.unwrap();
    // SageMaker at a closed port: a dispatch failure.
    let gw = start("http://127.0.0.1:9", &two_upstreams(&a, &b, ""), &[]);
    let r = post(
        &gw,
        "/v1/chat/completions",
        json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    check_error(&v);
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.starts_with("Could not reach SageMaker"), "{m}");
    for debug in ["DispatchFailure", "ConnectorError", "Some(", "{ "] {
        assert!(!m.contains(debug), "{m}");
    }
    // An answer cut after its head: upstream_error, and the next candidate.
    a.set_fault(OpenAiFault::CutBody);
    b.set_fault(OpenAiFault::CutBody);
    let r = post(
        &gw,
        "/v1/chat/completions",
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_error", "{v}");
    assert_eq!(a.count() + b.count(), 2, "failed over once");
}

#[test]
fn raw_helper_reads_a_whole_answer() {
    // Keeps `raw` honest for the tests above: a closed port reads nothing.
    let gw_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = gw_port.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = gw_port.accept().unwrap();
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
        s.write_all(b"HTTP/1.1 418 I'm a teapot\r\ncontent-length: 2\r\n\r\n{}")
            .unwrap();
    });
    let (status, body) = GatewayPort(port).raw("GET / HTTP/1.1\r\n\r\n");
    t.join().unwrap();
    assert_eq!((status, body.as_str()), (418, "{}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_actix_answers_itself_carry_the_openai_envelope() {
    let a = FakeOpenAi::start("a").await.unwrap();
    let b = FakeOpenAi::start("b").await.unwrap();
    let gw = start("http://127.0.0.1:9", &two_upstreams(&a, &b, ""), &[]);
    let port = gw.port;
    let answers = tokio::task::spawn_blocking(move || {
        let g = GatewayPort(port);
        let garbage = g.raw("GARBAGE\x01 / HTTP/1.1\r\n\r\n");
        let huge = g.raw(&format!(
            "GET /ping HTTP/1.1\r\nHost: x\r\nx-big: {}\r\n\r\n",
            "a".repeat(140 * 1024)
        ));
        // A head that never ends: actix's 5 s head timeout.
        let slow = g.raw("GET /ping HTTP/1.1\r\nHost: x\r\n");
        [(400, garbage), (431, huge), (408, slow)]
    })
    .await
    .unwrap();
    for (want, (status, body)) in answers {
        assert_eq!(status, want, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{want}: {body:?}"));
        check_error(&v);
    }
    // Ordinary answers are untouched.
    let r = client()
        .get(format!("{}/ping", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"status":"ok"}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_changes_the_aws_backends_deadlines_too() {
    use mock_upstreams::{ContainerDialect, Endpoint, Fault};
    let f = crate::support::fake().await;
    let mut hang = Endpoint::echo(ContainerDialect::OpenAi);
    hang.fault = Fault::HangBeforeHeaders;
    f.add("hang", hang);
    let text = config("[[models]]\nname = \"hang\"\n");
    let gw = start(&f.url(), &text, &[]);
    let ask = json!({"model": "hang", "messages": [{"role": "user", "content": "hi"}]});
    let t0 = Instant::now();
    let r = post(&gw, "/v1/chat/completions", ask.clone()).await;
    assert_eq!(r.status(), 504);
    let before = t0.elapsed();
    assert!(before >= Duration::from_millis(1900), "{before:?}");
    reload(
        &gw,
        &text.replace("request_timeout_secs = 2", "request_timeout_secs = 1"),
    )
    .await;
    let t0 = Instant::now();
    let r = post(&gw, "/v1/chat/completions", ask).await;
    assert_eq!(r.status(), 504);
    let after = t0.elapsed();
    assert!(
        after < Duration::from_millis(1700),
        "still the old deadline: {after:?}"
    );
}
