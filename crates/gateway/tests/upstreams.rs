//! OpenAI-compatible upstreams: routing, renames, keys, failover, the
//! circuit breaker, timeouts and the admin API, against fake upstreams with
//! fault modes.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mock_upstreams::{FakeOpenAi, OpenAiFault};
use openai_types::contract::{check_chat_completion, check_chat_sse, check_error};
use serde_json::{Value, json};

use crate::support::{Gateway, KEY, client, config, content, post, sse_events, start};

const ADMIN: &str = "sk-admin-canary-77";
const UPSTREAM_KEY: &str = "sk-upstream-a-canary";

/// Tight timeouts: the failover tests wait them out.
const TIGHT: &str = "timeouts = { connect_secs = 1, first_byte_secs = 1, stream_first_byte_secs = 1, idle_secs = 1, total_secs = 4 }";

fn upstreams(a: &str, b: &str, extra: &str) -> String {
    upstreams_timed(a, b, extra, TIGHT)
}

fn upstreams_timed(a: &str, b: &str, extra: &str, t: &str) -> String {
    format!(
        r#"
[routing]
max_attempts = 3
breaker_failures = 2
breaker_cooldown_secs = 1

[admin]
key = "{ADMIN}"

[[upstreams]]
name = "a"
base_url = "{a}"
api_key = "{UPSTREAM_KEY}"
priority = 0
models_allow = ["gpt-*", "text-embedding-*", "whisper-*", "big", "moderations"]
models_deny = ["gpt-4o-private"]
rename = {{ "gpt-4o-mini" = "qwen2.5-7b-instruct" }}
headers = {{ "x-tenant" = "t1" }}
{t}

[[upstreams]]
name = "b"
base_url = "{b}"
forward_client_key = true
priority = 1
models_allow = ["gpt-*", "text-embedding-*"]
{t}
{extra}
"#
    )
}

pub(crate) struct Setup {
    pub(crate) a: FakeOpenAi,
    pub(crate) b: FakeOpenAi,
    pub(crate) gw: Gateway,
}

pub(crate) async fn setup(extra: &str) -> Setup {
    setup_timed(extra, TIGHT).await
}

async fn setup_timed(extra: &str, timeouts: &str) -> Setup {
    let a = FakeOpenAi::start("a").await.unwrap();
    let b = FakeOpenAi::start("b").await.unwrap();
    let gw = start(
        "http://127.0.0.1:9",
        &config(&upstreams_timed(
            &a.base_url(),
            &b.base_url(),
            extra,
            timeouts,
        )),
        &[],
    );
    Setup { a, b, gw }
}

pub(crate) fn hi(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi there"}]})
}

async fn served(gw: &Gateway, body: Value) -> (u16, String, Value) {
    let r = post(gw, "/v1/chat/completions", body).await;
    let status = r.status().as_u16();
    let by = r
        .headers()
        .get("x-oai-upstream")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let sse = r
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"));
    let v = if sse {
        Value::String(r.text().await.unwrap())
    } else {
        r.json().await.unwrap()
    };
    (status, by, v)
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_with_renames_keys_headers_and_model_lists() {
    let s = setup("").await;
    let (status, by, v) = served(&s.gw, hi("gpt-4o-mini", false)).await;
    assert_eq!((status, by.as_str()), (200, "a"), "{v}");
    check_chat_completion(&v);
    assert_eq!(v["choices"][0]["message"]["content"], "a says: hi there");
    assert_eq!(
        v["model"], "gpt-4o-mini",
        "the client's name, not the upstream's"
    );
    let r = s.a.requests().pop().unwrap();
    assert_eq!(r.json["model"], "qwen2.5-7b-instruct");
    assert_eq!(r.headers["authorization"], format!("Bearer {UPSTREAM_KEY}"));
    assert_eq!(r.headers["x-tenant"], "t1");

    // Streaming: normalized chunks, usage forwarded only when asked.
    let mut body = hi("gpt-4o-mini", true);
    body["stream_options"] = json!({"include_usage": true});
    let events = sse_events(post(&s.gw, "/v1/chat/completions", body).await).await;
    let sse: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    check_chat_sse(&sse);
    assert_eq!(content(&events), "a says: hi there");
    assert!(events[events.len() - 2].contains("\"usage\""));
    assert_eq!(
        s.a.requests().pop().unwrap().json["stream_options"]["include_usage"],
        true
    );

    // Denied on a: b serves, with the client's own key forwarded.
    let (status, by, _) = served(&s.gw, hi("gpt-4o-private", false)).await;
    assert_eq!((status, by.as_str()), (200, "b"));
    assert_eq!(
        s.b.requests().pop().unwrap().headers["authorization"],
        format!("Bearer {KEY}")
    );
    // Allowed nowhere: 404.
    let (status, _, v) = served(&s.gw, hi("llama-3", false)).await;
    assert_eq!(status, 404, "{v}");
    check_error(&v);

    // Embeddings go through the same routing.
    let r = post(
        &s.gw,
        "/v1/embeddings",
        json!({"model": "text-embedding-3-small", "input": ["abc", "de"]}),
    )
    .await;
    assert_eq!(r.headers()["x-oai-upstream"], "a");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"][1]["embedding"][0], 2.0);
    // Secrets stay out of the logs.
    let logs = s.gw.logs();
    assert!(
        !logs.contains(UPSTREAM_KEY) && !logs.contains(KEY),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fails_over_before_the_first_byte_and_never_after() {
    let s = setup("").await;
    for fault in [
        OpenAiFault::Status(500),
        OpenAiFault::Status(429),
        OpenAiFault::Status(503),
    ] {
        s.a.set_fault(fault.clone());
        for stream in [false, true] {
            let (status, by, v) = served(&s.gw, hi("gpt-4o-mini", stream)).await;
            assert_eq!(
                (status, by.as_str()),
                (200, "b"),
                "{fault:?} stream={stream}: {v:?}"
            );
        }
        s.a.set_fault(OpenAiFault::None);
        // Let the breaker close again (2 failures opened it).
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (_, by, _) = served(&s.gw, hi("gpt-4o-mini", false)).await;
        assert_eq!(by, "a", "probe after the cool-down closes the breaker");
    }

    // A client error is not retried: it is the client's.
    s.a.set_fault(OpenAiFault::Status(400));
    let before = s.b.count();
    let (status, _, v) = served(&s.gw, hi("gpt-4o-mini", false)).await;
    assert_eq!(status, 400, "{v}");
    check_error(&v);
    assert_eq!(s.b.count(), before);

    // Hanging before headers: the first-byte timeout (1 s) moves on.
    s.a.set_fault(OpenAiFault::HangBeforeHeaders);
    for stream in [false, true] {
        let t0 = Instant::now();
        let (status, by, _) = served(&s.gw, hi("gpt-4o-mini", stream)).await;
        assert_eq!((status, by.as_str()), (200, "b"));
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Malformed SSE: the first chunk is unusable, nothing reached the client yet.
    s.a.set_fault(OpenAiFault::MalformedSse);
    let (status, by, _) = served(&s.gw, hi("gpt-4o-mini", true)).await;
    assert_eq!((status, by.as_str()), (200, "b"));
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // After the first byte there is no retry: a hang mid-stream ends with the
    // idle timeout's error event; a reset ends with an error event.
    for fault in [OpenAiFault::HangMidStream(3), OpenAiFault::ResetMidBody(3)] {
        s.a.set_fault(OpenAiFault::None);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        s.a.set_fault(fault.clone());
        let before = s.b.count();
        let r = post(&s.gw, "/v1/chat/completions", hi("gpt-4o-mini", true)).await;
        assert_eq!(r.headers()["x-oai-upstream"], "a");
        let events = sse_events(r).await;
        let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
        check_error(&last);
        assert!(content(&events).starts_with("a says:"), "{fault:?}");
        assert_eq!(
            s.b.count(),
            before,
            "{fault:?}: no retry after the first byte"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_refused_moves_on_and_all_failing_is_a_clean_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let extra = format!(
        "[[upstreams]]\nname = \"dead\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\npriority = -1\nmodels_allow = [\"gpt-*\"]\n"
    );
    let s = setup(&extra).await;
    let (status, by, _) = served(&s.gw, hi("gpt-4o-mini", false)).await;
    assert_eq!((status, by.as_str()), (200, "a"));
    s.a.set_fault(OpenAiFault::Status(500));
    s.b.set_fault(OpenAiFault::Status(503));
    let (status, _, v) = served(&s.gw, hi("gpt-4o-mini", true)).await;
    assert_eq!(status, 502, "{v}");
    check_error(&v);
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_everywhere_pass_retry_after_and_total_timeout_ends_streams() {
    let s = setup("").await;
    s.a.set_fault(OpenAiFault::Status(429));
    s.b.set_fault(OpenAiFault::Status(429));
    let r = post(&s.gw, "/v1/chat/completions", hi("gpt-4o-mini", false)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let v: Value = r.json().await.unwrap();
    check_error(&v);
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");

    // The total timeout (4 s) ends a stream that keeps trickling.
    let a = FakeOpenAi::start("a").await.unwrap();
    let b = FakeOpenAi::start("b").await.unwrap();
    a.set_token_delay(Duration::from_millis(900));
    let gw = start(
        "http://127.0.0.1:9",
        &config(&upstreams(&a.base_url(), &b.base_url(), "")),
        &[],
    );
    let mut body = hi("gpt-4o-mini", true);
    body["messages"][0]["content"] = "one two three four five six seven eight".into();
    let t0 = Instant::now();
    let events = sse_events(post(&gw, "/v1/chat/completions", body).await).await;
    let took = t0.elapsed();
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    check_error(&last);
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("total time"),
        "{last}"
    );
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

async fn admin(gw: &Gateway, method: &str, path: &str, key: Option<&str>) -> (u16, Value) {
    let mut r = client().request(method.parse().unwrap(), format!("{}{path}", gw.url));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn state_of(v: &Value, name: &str) -> String {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .map(|u| u["state"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn breaker_opens_skips_and_recovers_and_admin_can_disable() {
    let s = setup("").await;
    s.a.set_fault(OpenAiFault::Status(500));
    for _ in 0..2 {
        assert_eq!(served(&s.gw, hi("gpt-4o-mini", false)).await.1, "b");
    }
    let (_, v) = admin(&s.gw, "GET", "/admin/upstreams", Some(ADMIN)).await;
    assert_eq!(state_of(&v, "a"), "open", "{v}");
    // Open: a is skipped without a request.
    let n = s.a.count();
    assert_eq!(served(&s.gw, hi("gpt-4o-mini", false)).await.1, "b");
    assert_eq!(s.a.count(), n);
    // After the cool-down one probe goes to a; it succeeds and closes it.
    s.a.set_fault(OpenAiFault::None);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(served(&s.gw, hi("gpt-4o-mini", false)).await.1, "a");
    let (_, v) = admin(&s.gw, "GET", "/admin/upstreams", Some(ADMIN)).await;
    assert_eq!(state_of(&v, "a"), "closed", "{v}");

    // The admin API: its own key, disable and enable.
    assert_eq!(admin(&s.gw, "GET", "/admin/upstreams", None).await.0, 401);
    assert_eq!(
        admin(&s.gw, "GET", "/admin/upstreams", Some(KEY)).await.0,
        401
    );
    let (st, v) = admin(&s.gw, "POST", "/admin/upstreams/disable/a", Some(ADMIN)).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("disabled")), "{v}");
    assert_eq!(served(&s.gw, hi("gpt-4o-mini", false)).await.1, "b");
    admin(&s.gw, "POST", "/admin/upstreams/enable/a", Some(ADMIN)).await;
    assert_eq!(served(&s.gw, hi("gpt-4o-mini", false)).await.1, "a");
    assert_eq!(
        admin(&s.gw, "POST", "/admin/upstreams/disable/zzz", Some(ADMIN))
            .await
            .0,
        404
    );
    // SageMaker models are candidates too, by `models/<name>`: the test
    // config's "chat" endpoint has the alias gpt-4o-mini and no SageMaker
    // behind it, so it failed over to the upstreams and its breaker opened.
    let (_, v) = admin(&s.gw, "GET", "/admin/upstreams", Some(ADMIN)).await;
    assert_eq!(state_of(&v, "models/chat"), "open", "{v}");
    assert_eq!(state_of(&v, "models/tgi"), "closed", "{v}");
    assert!(!s.gw.logs().contains(ADMIN));
}

#[tokio::test(flavor = "multi_thread")]
async fn weighted_and_least_latency_strategies_spread_and_prefer() {
    let s = setup("").await;
    drop(s);
    // Same priority, weighted: both get traffic.
    let a = FakeOpenAi::start("a").await.unwrap();
    let b = FakeOpenAi::start("b").await.unwrap();
    let cfg = upstreams(&a.base_url(), &b.base_url(), "")
        .replace(
            "max_attempts = 3",
            "max_attempts = 3\nstrategy = \"weighted\"",
        )
        .replace("priority = 1", "priority = 0");
    let gw = start("http://127.0.0.1:9", &config(&cfg), &[]);
    for _ in 0..40 {
        served(&gw, hi("gpt-4o-mini", false)).await;
    }
    assert!(
        a.count() >= 5 && b.count() >= 5,
        "a {} b {}",
        a.count(),
        b.count()
    );
    drop(gw);

    // Least latency: the slow one is mostly avoided once measured.
    let a = FakeOpenAi::start("a").await.unwrap();
    let b = FakeOpenAi::start("b").await.unwrap();
    a.set_fault(OpenAiFault::SlowFirstByte(Duration::from_millis(150)));
    let cfg = upstreams(&a.base_url(), &b.base_url(), "")
        .replace(
            "max_attempts = 3",
            "max_attempts = 3\nstrategy = \"least_latency\"",
        )
        .replace("priority = 1", "priority = 0");
    let gw = start("http://127.0.0.1:9", &config(&cfg), &[]);
    for _ in 0..30 {
        served(&gw, hi("gpt-4o-mini", false)).await;
    }
    assert!(b.count() > 3 * a.count(), "a {} b {}", a.count(), b.count());
    let mut s = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .json(&hi("gpt-4o-mini", true))
        .send()
        .await
        .unwrap()
        .bytes_stream();
    while s.next().await.is_some() {}
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_completions_through_an_upstream() {
    let s = setup("").await;
    let body = json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi"});
    let r = post(&s.gw, "/v1/completions", body.clone()).await;
    assert_eq!(r.headers()["x-oai-upstream"], "a");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], "a completes: Say hi");
    assert_eq!(v["model"], "gpt-3.5-turbo-instruct");
    let mut body = body;
    body["stream"] = true.into();
    let events = sse_events(post(&s.gw, "/v1/completions", body).await).await;
    assert_eq!(content(&events), "a completes: Say hi");
    assert_eq!(events.last().unwrap(), "[DONE]");
}

/// What the spec allows and only SageMaker endpoints refuse (a list of
/// prompts, token ids, `best_of`) reaches an upstream as sent; a SageMaker
/// model still refuses it by name.
#[tokio::test(flavor = "multi_thread")]
async fn upstreams_take_prompt_lists_token_ids_and_best_of() {
    let s = setup("").await;
    for prompt in [json!(["one", "two"]), json!([[1, 2], [3]])] {
        let body = json!({"model": "gpt-3.5-turbo-instruct", "prompt": prompt, "best_of": 2});
        let r = post(&s.gw, "/v1/completions", body).await;
        assert_eq!(r.status(), 200, "{prompt}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["choices"].as_array().unwrap().len(), 2, "{v}");
        let sent = s.a.requests().pop().unwrap().json;
        assert_eq!(sent["prompt"], prompt);
        assert_eq!(sent["best_of"], 2);
    }
    for (body, param) in [
        (json!({"model": "tgi", "prompt": ["one", "two"]}), "prompt"),
        (json!({"model": "tgi", "prompt": [1, 2]}), "prompt"),
        (
            json!({"model": "tgi", "prompt": "x", "best_of": 2}),
            "best_of",
        ),
        (
            json!({"model": "gpt-3.5-turbo-instruct", "prompt": "x", "best_of": 1, "n": 2}),
            "best_of",
        ),
        (
            json!({"model": "gpt-3.5-turbo-instruct", "prompt": []}),
            "prompt",
        ),
    ] {
        let r = post(&s.gw, "/v1/completions", body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["param"], param, "{v}");
    }
}

fn peak_rss_kib(gw: &Gateway) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", gw.child.id()))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn other_routes_pass_through_streaming_both_ways() {
    // A 64 MiB upload and a 256 MiB download through a debug build beside
    // the whole suite take seconds on two cores: the tight timeouts (a
    // 4-second total) ended them with a 504 there. Nothing here is about
    // a timeout.
    let s = setup_timed(
        "",
        "timeouts = { connect_secs = 5, first_byte_secs = 60, stream_first_byte_secs = 60, idle_secs = 60, total_secs = 300 }",
    )
    .await;
    // A JSON route: the upstream's answer (here its 404) comes back as is.
    let r = post(
        &s.gw,
        "/v1/moderations",
        json!({"model": "moderations", "input": "x"}),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-oai-upstream"], "a");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["message"], "unknown route");
    let up = s.a.requests().pop().unwrap();
    assert_eq!(up.path, "/v1/moderations");
    assert_eq!(
        up.headers["authorization"],
        format!("Bearer {UPSTREAM_KEY}")
    );
    // No key, no pass-through.
    let r = client()
        .post(format!("{}/v1/moderations", s.gw.url))
        .json(&json!({"model": "moderations"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A route no upstream serves.
    let r = post(
        &s.gw,
        "/v1/images/generations",
        json!({"model": "dall-e-3"}),
    )
    .await;
    assert_eq!(r.status(), 404);

    let before = peak_rss_kib(&s.gw);
    // A 64 MiB multipart upload, streamed: the model comes from its field.
    let file = vec![7u8; 64 * 1024 * 1024];
    let form = reqwest::multipart::Form::new()
        .text("model", "whisper-1")
        .part(
            "file",
            reqwest::multipart::Part::bytes(file).file_name("a.wav"),
        );
    let r = client()
        .post(format!("{}/v1/audio/transcriptions", s.gw.url))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with("a got 671") && text.ends_with("for whisper-1"),
        "{text}"
    );
    // A 256 MiB streamed download; the path stands in for the model.
    let r = client()
        .get(format!("{}/v1/big?mib=256", s.gw.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut n = 0usize;
    let mut body = r.bytes_stream();
    while let Some(c) = body.next().await {
        n += c.unwrap().len();
    }
    assert_eq!(n, 256 * 1024 * 1024);
    let grew = peak_rss_kib(&s.gw).saturating_sub(before);
    eprintln!(
        "pass-through of 64 MiB up and 256 MiB down: peak RSS {before} KiB before, +{grew} KiB"
    );
    assert!(
        grew < 24 * 1024,
        "peak RSS grew {grew} KiB passing 64 MiB up and 256 MiB down: not flat"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn config_reloads_on_file_change_and_sighup_without_touching_streams() {
    let s = setup("").await;
    assert_eq!(served(&s.gw, hi("gpt-4o-mini", false)).await.1, "a");
    // A stream in flight on a, slowed down.
    s.a.set_token_delay(Duration::from_millis(400));
    let gw_url = s.gw.url.clone();
    let in_flight = tokio::spawn(async move {
        let r = client()
            .post(format!("{gw_url}/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&hi("gpt-4o-mini", true))
            .send()
            .await
            .unwrap();
        sse_events(r).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The file changes: b now goes first.
    let path = s.gw.config_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let swapped = text.replacen("priority = 0", "priority = 5", 1);
    std::fs::write(&path, &swapped).unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        if served(&s.gw, hi("gpt-4o-mini", false)).await.1 == "b" {
            break;
        }
        assert!(Instant::now() < deadline, "no reload: {}", s.gw.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let events = in_flight.await.unwrap();
    assert_eq!(
        content(&events),
        "a says: hi there",
        "the stream in flight finished on a"
    );
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert!(s.gw.logs().contains("configuration reloaded"));

    // An invalid config by SIGHUP is refused; the running one stays.
    let bad = swapped.replacen("max_attempts = 3", "max_attempts = 0", 1);
    std::fs::write(&path, bad).unwrap();
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &s.gw.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(8);
    while !s.gw.logs().contains("configuration reload refused") {
        assert!(Instant::now() < deadline, "{}", s.gw.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(s.gw.logs().contains("routing.max_attempts"));
    assert_eq!(served(&s.gw, hi("gpt-4o-mini", false)).await.1, "b");
}

#[tokio::test(flavor = "multi_thread")]
async fn scoped_keys_reach_only_their_upstreams_and_models() {
    let extra = r#"
[[auth.scoped_keys]]
key = "sk-team-b-only"
upstreams = ["b"]
models = ["gpt-4o*"]
"#;
    let s = setup(extra).await;
    let ask = |model: &str| {
        client()
            .post(format!("{}/v1/chat/completions", s.gw.url))
            .bearer_auth("sk-team-b-only")
            .json(&hi(model, false))
            .send()
    };
    let r = ask("gpt-4o-mini").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-oai-upstream"],
        "b",
        "a is not in this key's scope"
    );
    let r = ask("gpt-3.5-turbo").await.unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    check_error(&v);
    assert_eq!(v["error"]["code"], "model_not_allowed");
    // The unscoped key still reaches a.
    assert_eq!(served(&s.gw, hi("gpt-4o-mini", false)).await.1, "a");
    assert!(!s.gw.logs().contains("sk-team-b-only"));
}
