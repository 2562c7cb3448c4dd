//! Metrics scraped and parsed with a Prometheus text parser, request ids end
//! to end, and no secret anywhere.

use mock_upstreams::{FakeOpenAi, OpenAiFault};
use serde_json::json;

use crate::support::{KEY, client, config, fake, post, sse_events, start};

fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref h) => {
                h.iter().map(|b| b.count).fold(0.0, f64::max)
            }
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_cover_requests_tokens_streams_failovers_and_keys() {
    let f = fake().await;
    let a = FakeOpenAi::start("a").await.unwrap();
    let b = FakeOpenAi::start("b").await.unwrap();
    let extra = format!(
        "[[upstreams]]\nname = \"a\"\nbase_url = \"{}\"\nmodels_allow = [\"gpt-4.1\"]\n\n[[upstreams]]\nname = \"b\"\nbase_url = \"{}\"\nmodels_allow = [\"gpt-4.1\"]\npriority = 1\n",
        a.base_url(),
        b.base_url()
    );
    let gw = start(&f.url(), &config(&extra), &[]);
    let hi = json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        post(&gw, "/v1/chat/completions", hi.clone()).await.status(),
        200
    );
    let mut s = hi.clone();
    s["stream"] = true.into();
    sse_events(post(&gw, "/v1/chat/completions", s).await).await;
    let r = client()
        .get(format!("{}/v1/models", gw.url))
        .bearer_auth("sk-wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    a.set_fault(OpenAiFault::Status(500));
    let r = post(
        &gw,
        "/v1/chat/completions",
        json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(r.headers()["x-oai-upstream"], "b");

    let text = client()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains(KEY) && !text.contains("sk-wrong"));
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let chat_ok = [("route", "chat"), ("model", "chat"), ("status", "2xx")];
    assert_eq!(
        sample(&scrape, "gateway_requests_total", &chat_ok),
        2.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &scrape,
            "gateway_http_requests_total",
            &[("route", "/v1/models"), ("status", "4xx")]
        ),
        1.0
    );
    assert!(
        sample(
            &scrape,
            "gateway_tokens_total",
            &[("model", "chat"), ("kind", "completion")]
        ) > 0.0
    );
    assert_eq!(sample(&scrape, "gateway_active_streams", &[]), 0.0);
    assert_eq!(
        sample(&scrape, "gateway_failovers_total", &[("upstream", "a")]),
        1.0
    );
    assert_eq!(
        sample(
            &scrape,
            "gateway_upstream_errors_total",
            &[("upstream", "a"), ("kind", "upstream_error")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &scrape,
            "gateway_requests_total",
            &[("model", "gpt-4.1"), ("upstream", "b"), ("status", "2xx")]
        ),
        1.0
    );
    assert!(sample(&scrape, "gateway_key_cache", &[("event", "hits")]) >= 3.0);
    assert_eq!(
        sample(&scrape, "gateway_key_cache", &[("event", "misses")]),
        1.0
    );
    assert!(
        sample(
            &scrape,
            "gateway_time_to_first_token_seconds_count",
            &[("route", "chat"), ("stream", "true")]
        ) >= 1.0
    );
    assert!(
        sample(
            &scrape,
            "gateway_added_latency_seconds_count",
            &[("route", "chat")]
        ) >= 2.0
    );
    assert!(text.contains("gateway_breaker_state{upstream=\"a\"}"));
    dashboard_queries_exist(&text);
    // /v1/metrics too.
    let r = client()
        .get(format!("{}/v1/metrics", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_token_when_configured() {
    let f = fake().await;
    let cfg = format!("metrics_token = \"mt-secret-1\"\n{}", config(""));
    let gw = start(&f.url(), &cfg, &[]);
    let r = client()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .get(format!("{}/metrics", gw.url))
        .bearer_auth("mt-secret-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_ids_are_accepted_passed_upstream_returned_and_logged() {
    let f = fake().await;
    let a = FakeOpenAi::start("a").await.unwrap();
    let extra = format!(
        "[[upstreams]]\nname = \"a\"\nbase_url = \"{}\"\nmodels_allow = [\"gpt-4.1\"]\n",
        a.base_url()
    );
    let gw = start(&f.url(), &config(&extra), &[]);
    let r = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .header("x-request-id", "trace-abc-123")
        .json(&json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-abc-123");
    assert_eq!(
        a.requests().pop().unwrap().headers["x-request-id"],
        "trace-abc-123"
    );
    // A new one when the client sends none (or a bad one).
    let r = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .header("x-request-id", "bad id with spaces")
        .json(&json!({"model": "chat", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.starts_with("req-"), "{id}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let logs = gw.logs();
    assert!(
        logs.contains("trace-abc-123") && logs.contains(&id),
        "{logs}"
    );
    assert!(!logs.contains(KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_on_breakers_reach_feishu_matrix_slack_and_json_without_flooding() {
    use std::time::{Duration, Instant};
    let f = fake().await;
    let a = FakeOpenAi::start("a").await.unwrap();
    let b = FakeOpenAi::start("b").await.unwrap();
    // The receiver: a fake that records every request it gets.
    let hook = FakeOpenAi::start("hook").await.unwrap();
    let base = hook.base_url();
    let root = base.trim_end_matches("/v1");
    let extra = format!(
        r#"
[routing]
breaker_failures = 2
breaker_cooldown_secs = 1

[[alerts]]
kind = "feishu"
url = "{base}/feishu"
min_interval_secs = 60

[[alerts]]
kind = "matrix"
url = "{root}"
room = "!ops:example.org"
token = "mx-token-canary"

[[alerts]]
kind = "slack"
url = "{base}/slack"

[[alerts]]
kind = "json"
url = "{base}/json"

[[upstreams]]
name = "a"
base_url = "{}"
models_allow = ["gpt-4.1"]

[[upstreams]]
name = "b"
base_url = "{}"
models_allow = ["gpt-4.1"]
priority = 1
"#,
        a.base_url(),
        b.base_url()
    );
    let gw = start(&f.url(), &config(&extra), &[]);
    let ask = json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "x"}]});
    a.set_fault(OpenAiFault::Status(500));
    for _ in 0..30 {
        assert_eq!(
            post(&gw, "/v1/chat/completions", ask.clone())
                .await
                .status(),
            200
        );
    }
    // Recovery: after the cool-down the probe succeeds and closes it. The
    // cool-down runs from the last failed probe, which on a loaded machine
    // may come late in the loop above: ask until a serves (each request
    // before that is served by b), within a generous deadline.
    a.set_fault(OpenAiFault::None);
    let deadline = Instant::now() + Duration::from_secs(20);
    let r = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let r = post(&gw, "/v1/chat/completions", ask.clone()).await;
        if r.headers()["x-oai-upstream"] == "a" || Instant::now() > deadline {
            break r;
        }
    };
    assert_eq!(r.headers()["x-oai-upstream"], "a");
    let deadline = Instant::now() + Duration::from_secs(15);
    let got = loop {
        let got = hook.requests();
        if got.iter().filter(|r| r.path == "/v1/json").count() >= 2 {
            break got;
        }
        assert!(Instant::now() < deadline, "alerts: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let feishu: Vec<_> = got.iter().filter(|r| r.path == "/v1/feishu").collect();
    assert_eq!(feishu[0].json["msg_type"], "text");
    let text = feishu[0].json["content"]["text"].as_str().unwrap();
    assert!(
        text.contains("breaker_opened") && text.contains(": a"),
        "{text}"
    );
    let matrix: Vec<_> = got
        .iter()
        .filter(|r| {
            r.path
                .starts_with("/_matrix/client/v3/rooms/%21ops%3Aexample.org/send/m.room.message/")
        })
        .collect();
    assert!(!matrix.is_empty(), "{got:?}");
    assert_eq!(matrix[0].method, "PUT");
    assert_eq!(matrix[0].headers["authorization"], "Bearer mx-token-canary");
    assert_eq!(matrix[0].json["msgtype"], "m.text");
    let json: Vec<_> = got.iter().filter(|r| r.path == "/v1/json").collect();
    let events: Vec<&str> = json
        .iter()
        .map(|r| r.json["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"breaker_opened") && events.contains(&"breaker_closed"),
        "{events:?}"
    );
    assert!(
        got.iter()
            .any(|r| r.path == "/v1/slack" && r.json["text"].is_string())
    );
    // 30 failing requests, yet a handful of messages per sink.
    assert!(
        feishu.len() <= 3 && json.len() <= 4,
        "feishu {} json {}",
        feishu.len(),
        json.len()
    );
    assert!(!gw.logs().contains("mx-token-canary"));
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_traces_reach_a_collector_with_the_request_id() {
    use std::time::{Duration, Instant};
    let f = fake().await;
    let collector = FakeOpenAi::start("collector").await.unwrap();
    let root = collector.base_url().trim_end_matches("/v1").to_owned();
    let mut gw = start(
        &f.url(),
        &config(""),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &root)],
    );
    let r = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .header("x-request-id", "otlp-trace-42")
        .json(&json!({"model": "chat", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // SIGTERM: the gateway flushes its spans on the way out.
    std::process::Command::new("kill")
        .args(["-TERM", &gw.child.id().to_string()])
        .status()
        .unwrap();
    assert!(gw.child.wait().unwrap().success(), "{}", gw.logs());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got: Vec<_> = collector
            .requests()
            .into_iter()
            .filter(|r| r.path == "/v1/traces" && r.method == "POST")
            .collect();
        if let Some(t) = got.iter().find(|t| {
            t.body
                .windows(b"otlp-trace-42".len())
                .any(|w| w == b"otlp-trace-42")
        }) {
            assert_eq!(t.headers["content-type"], "application/x-protobuf");
            assert!(!t.body.windows(KEY.len()).any(|w| w == KEY.as_bytes()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no span with the request id: {} exports",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The Grafana dashboard of `deploy/`: well-formed, every panel
/// queries the provisioned data source, and every metric it queries is in
/// this real scrape (`# TYPE` lines: histograms by their family name).
fn dashboard_queries_exist(scrape: &str) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/dashboards/gateway.json"
    );
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let provisioned = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/provisioning/datasources/prometheus.yaml"
    ))
    .unwrap();
    let families: std::collections::HashSet<&str> = scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let panels = d["panels"].as_array().unwrap();
    assert!(panels.len() >= 10, "a panel per concern");
    let mut ids = std::collections::HashSet::new();
    let mut queried = std::collections::BTreeSet::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_i64().unwrap()), "duplicate panel id");
        let uid = p["datasource"]["uid"].as_str().unwrap();
        assert!(
            provisioned.contains(&format!("uid: {uid}")),
            "{uid} is provisioned"
        );
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{} has a query", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(i) = rest.find("gateway_") {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                let name = &tail[..end];
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(name);
                queried.insert(family.to_owned());
                rest = &tail[end..];
            }
        }
    }
    for m in [
        "gateway_requests_total",
        "gateway_upstream_errors_total",
        "gateway_request_duration_seconds",
        "gateway_time_to_first_token_seconds",
        "gateway_added_latency_seconds",
        "gateway_tokens_total",
        "gateway_active_streams",
        "gateway_breaker_state",
        "gateway_failovers_total",
        "gateway_records_dropped",
    ] {
        assert!(queried.contains(m), "the dashboard shows {m}");
    }
    for m in &queried {
        assert!(
            families.contains(m.as_str()),
            "{m} is queried by the dashboard but not in /metrics"
        );
    }
}
