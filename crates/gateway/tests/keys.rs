//! Stored keys: One API's walk through the admin API and
//! the openai SDK (a quota used up ends in `insufficient_quota`), expiry,
//! scope, disable, the client-address allow-list, per-minute limits with
//! OpenAI's headers, no secret anywhere but the create answer, and two
//! replicas sharing PostgreSQL.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Gateway, client, config, fake, run_python, start};

pub(crate) const ADMIN: &str = "sk-admin-keys-test";

fn admin_cfg() -> String {
    config(&format!("[admin]\nkey = \"{ADMIN}\"\n"))
}

pub(crate) async fn admin(
    gw: &Gateway,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", gw.url);
    let mut r = match method {
        "POST" => client().post(url),
        "PATCH" => client().patch(url),
        "DELETE" => client().delete(url),
        _ => client().get(url),
    }
    .bearer_auth(ADMIN);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn create(gw: &Gateway, body: Value) -> (String, String) {
    let (status, v) = admin(gw, "POST", "/admin/keys", Some(body)).await;
    assert_eq!(status, 201, "{v}");
    let secret = v["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sk-gw-") && secret.starts_with(v["prefix"].as_str().unwrap()));
    (secret, v["id"].as_str().unwrap().to_owned())
}

async fn chat(gw: &Gateway, key: &str, model: &str) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]}))
        .send()
        .await
        .unwrap()
}

const WALK: &str = r#"
import os, openai
from openai import OpenAI
c = OpenAI(base_url=os.environ["BASE"] + "/v1", api_key=os.environ["KEY"], max_retries=0)
served = 0
for i in range(100):
    try:
        text = ""
        for chunk in c.chat.completions.create(model="chat", stream=True,
                messages=[{"role": "user", "content": "count to ten please"}]):
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
        served += 1
    except openai.RateLimitError as e:
        assert e.code == "insufficient_quota", e
        assert e.type == "insufficient_quota", e
        break
else:
    raise SystemExit("the quota never ran out")
assert served >= 1, served
try:
    c.chat.completions.create(model="lmi", messages=[{"role": "user", "content": "x"}])
    raise SystemExit("expected 403")
except openai.PermissionDeniedError as e:
    assert e.code == "model_not_allowed", e
print("walk-ok", served)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_key_s_life_quota_expiry_scope_and_disable() {
    let f = fake().await;
    let gw = start(&f.url(), &admin_cfg(), &[]);
    // A key with a 100-token quota, scoped to two models.
    let (secret, id) = create(
        &gw,
        json!({"name": "walk", "quota_tokens": 100, "models": ["chat", "tgi"], "owner": "team-a"}),
    )
    .await;
    let env = vec![("BASE", gw.url.clone()), ("KEY", secret.clone())];
    run_python(WALK, env, "walk-ok", &gw).await;
    let (_, v) = admin(&gw, "GET", &format!("/admin/keys/{id}"), None).await;
    assert_eq!(v["status"], "exhausted", "{v}");
    let used = v["used_tokens"].as_i64().unwrap();
    // Overshot by at most one request's tokens (one in flight at a time).
    assert!((100..200).contains(&used), "used {used}");
    // Usage per key from the records.
    let (_, u) = admin(&gw, "GET", "/admin/usage", None).await;
    let mine: Vec<&Value> = u["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["key_id"] == id.as_str())
        .collect();
    assert!(!mine.is_empty(), "{u}");

    // Scope: another model is refused with 403.
    let (scoped, _) = create(&gw, json!({"name": "scoped", "models": ["chat"]})).await;
    assert_eq!(chat(&gw, &scoped, "chat").await.status(), 200);
    assert_eq!(chat(&gw, &scoped, "lmi").await.status(), 403);

    // Expiry.
    let soon = gateway::ids::now_ms() as i64 + 1500;
    let (expiring, _) = create(&gw, json!({"name": "soon", "expires_at": soon})).await;
    assert_eq!(chat(&gw, &expiring, "chat").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let r = chat(&gw, &expiring, "chat").await;
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"].as_str().unwrap().contains("expired"),
        "{e}"
    );

    // Disable: refused within a second; enable: served again.
    let (k, kid) = create(&gw, json!({"name": "toggle"})).await;
    assert_eq!(chat(&gw, &k, "chat").await.status(), 200);
    let t = Instant::now();
    let (s, v) = admin(&gw, "POST", &format!("/admin/keys/{kid}/disable"), None).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("disabled")));
    let r = chat(&gw, &k, "chat").await;
    assert_eq!(r.status(), 401);
    assert!(t.elapsed() < Duration::from_secs(1));
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"].as_str().unwrap().contains("disabled"),
        "{e}"
    );
    admin(&gw, "POST", &format!("/admin/keys/{kid}/enable"), None).await;
    assert_eq!(chat(&gw, &k, "chat").await.status(), 200);
    let (s, _) = admin(&gw, "DELETE", &format!("/admin/keys/{kid}"), None).await;
    assert_eq!(s, 200);
    assert_eq!(chat(&gw, &k, "chat").await.status(), 401);

    // The client's address.
    let (far, _) = create(&gw, json!({"name": "far", "ip_allow": ["10.0.0.0/8"]})).await;
    assert_eq!(chat(&gw, &far, "chat").await.status(), 403);
    let (near, _) = create(
        &gw,
        json!({"name": "near", "ip_allow": ["127.0.0.0/8", "::1/128"]}),
    )
    .await;
    assert_eq!(chat(&gw, &near, "chat").await.status(), 200);

    // Bad admin input is a 400 naming the field; other keys are not admins.
    let (s, e) = admin(
        &gw,
        "POST",
        "/admin/keys",
        Some(json!({"name": "x", "rpm": -1})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    let (s, _) = admin(
        &gw,
        "POST",
        "/admin/keys",
        Some(json!({"name": "x", "colour": "red"})),
    )
    .await;
    assert_eq!(s, 400);
    let r = client()
        .get(format!("{}/admin/keys", gw.url))
        .bearer_auth(&near)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // No secret but in its create answer: not in the list, the records, the
    // metrics or the log.
    let (_, list) = admin(&gw, "GET", "/admin/keys", None).await;
    let (_, doc) = admin(&gw, "GET", "/admin/openapi.json", None).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/admin/keys"]["post"].is_object());
    let metrics = client()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let db = std::fs::read(gw.config_path().with_file_name("records.db")).unwrap_or_default();
    for s in [&secret, &scoped, &expiring, &k, &far, &near] {
        assert!(!list.to_string().contains(s.as_str()));
        assert!(!metrics.contains(s.as_str()));
        assert!(!gw.logs().contains(s.as_str()));
        assert!(
            memchr::memmem::find(&db, s.as_bytes()).is_none(),
            "a secret in the records"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn per_minute_limits_answer_like_openai() {
    let f = fake().await;
    let gw = start(&f.url(), &admin_cfg(), &[]);
    let (k, _) = create(&gw, json!({"name": "rpm", "rpm": 2})).await;
    assert_eq!(chat(&gw, &k, "chat").await.status(), 200);
    assert_eq!(chat(&gw, &k, "chat").await.status(), 200);
    let r = chat(&gw, &k, "chat").await;
    assert_eq!(r.status(), 429);
    let h = r.headers().clone();
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(h["x-ratelimit-limit-requests"], "2");
    assert_eq!(h["x-ratelimit-remaining-requests"], "0");
    assert!(h.contains_key("x-ratelimit-reset-requests"));
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "rate_limit_exceeded");
    assert_eq!(e["error"]["type"], "requests");

    let (t, _) = create(&gw, json!({"name": "tpm", "tpm": 30})).await;
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(chat(&gw, &t, "chat").await.status().as_u16());
    }
    assert!(codes.contains(&429), "{codes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_share_keys_through_postgres() {
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
    let f = fake().await;
    let a = start(&f.url(), &admin_cfg(), &[("RECORDS_URL", &url)]);
    let b = start(&f.url(), &admin_cfg(), &[("RECORDS_URL", &url)]);
    let (k, id) = create(&a, json!({"name": "shared", "quota_tokens": 600})).await;
    // Known to the other replica within a few polls (250 ms each; a busy
    // machine stretches them).
    known_to(&b, &k).await;
    // One quota over both: requests spread until it runs out.
    let mut served = 0;
    for i in 0..200 {
        let gw = if i % 2 == 0 { &a } else { &b };
        match chat(gw, &k, "chat").await.status().as_u16() {
            200 => served += 1,
            429 => break,
            s => panic!("status {s}"),
        }
        // Settlements travel through the store (written every 200 ms,
        // read every 250 ms): paced so the other replica's view lags by a
        // few requests at most.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let used = settled_usage(&a, &id, 600).await;
    let per = used / served;
    assert!(
        used >= 600 && used <= 600 + 4 * per,
        "used {used} over {served} requests"
    );
    // Disabled on one, refused by the other within a few polls.
    let (k2, id2) = create(&a, json!({"name": "revoked"})).await;
    known_to(&b, &k2).await;
    assert_eq!(chat(&b, &k2, "chat").await.status(), 200);
    admin(&a, "POST", &format!("/admin/keys/{id2}/disable"), None).await;
    let t = Instant::now();
    while chat(&b, &k2, "chat").await.status() != 401 {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "replica b still serves a disabled key"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn cli(gw: &Gateway, db: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("--config")
        .arg(gw.config_path())
        .args(args)
        .env_clear()
        .env("RECORDS_URL", db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_keys_subcommand_manages_the_same_store() {
    let f = fake().await;
    let gw = start(&f.url(), &admin_cfg(), &[]);
    let db = format!(
        "sqlite://{}?mode=rwc",
        gw.config_path().with_file_name("records.db").display()
    );
    let out = cli(
        &gw,
        &db,
        &[
            "keys", "create", "--name", "from-cli", "--models", "chat,tgi", "--rpm", "100",
        ],
    );
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .unwrap()
        .to_owned();
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("id:  "))
        .unwrap()
        .to_owned();
    let t = Instant::now();
    while chat(&gw, &secret, "chat").await.status() != 200 {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "the gateway never saw the key"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = cli(&gw, &db, &["keys", "list"]);
    assert!(
        list.contains(&id) && list.contains("from-cli") && !list.contains(&secret),
        "{list}"
    );
    let (_, v) = admin(&gw, "GET", &format!("/admin/keys/{id}"), None).await;
    assert_eq!(v["models"], json!(["chat", "tgi"]));
    assert_eq!(v["guardrail"], Value::Null, "{v}");
    // A key with a guardrail of its own, from the shell.
    let out = cli(
        &gw,
        &db,
        &[
            "keys",
            "create",
            "--name",
            "guarded-cli",
            "--guardrail-id",
            "gr-cli",
            "--guardrail-version",
            "3",
        ],
    );
    let guarded = out
        .lines()
        .find_map(|l| l.strip_prefix("id:  "))
        .unwrap()
        .to_owned();
    // Seen by the gateway once it polls the store.
    let mut v = Value::Null;
    for _ in 0..100 {
        let (status, got) = admin(&gw, "GET", &format!("/admin/keys/{guarded}"), None).await;
        v = got;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(v["guardrail"]["id"], "gr-cli", "{v}");
    assert_eq!(v["guardrail"]["version"], "3", "{v}");
    cli(&gw, &db, &["keys", "disable", &id]);
    let t = Instant::now();
    while chat(&gw, &secret, "chat").await.status() != 401 {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "still served after disable"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cli(&gw, &db, &["keys", "delete", &id]);
    assert!(!cli(&gw, &db, &["keys", "list", "--json"]).contains(&id));
}

/// Key `id`'s usage as replica `gw` reports it once every replica's
/// settlements have reached it (each replica writes its own every 200 ms and
/// reads the others' within 250 ms after; a busy machine takes longer): the
/// figure once it is at least `floor` and has stopped moving, or whatever it
/// reads after ten seconds.
async fn settled_usage(gw: &Gateway, id: &str, floor: i64) -> i64 {
    let read = || async {
        let (_, v) = admin(gw, "GET", &format!("/admin/keys/{id}"), None).await;
        v["used_tokens"].as_i64().unwrap()
    };
    let t = Instant::now();
    let mut last = read().await;
    while t.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let now = read().await;
        if now == last && now >= floor {
            break;
        }
        last = now;
    }
    last
}

/// Waits (three seconds at most) until replica `gw` knows `key`, asking
/// for the model list (which takes nothing from the key's limits).
async fn known_to(gw: &Gateway, key: &str) {
    let t = Instant::now();
    loop {
        let r = client()
            .get(format!("{}/v1/models", gw.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "the key never reached {}",
            gw.url
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// PostgreSQL and Redis for the replicas, or `None` (skip) off CI.
async fn shared_stores() -> Option<(String, String)> {
    let pg = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let redis =
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let have_pg = gateway::observe::records::connect(&pg).await.is_ok();
    let have_redis = tokio::net::TcpStream::connect("127.0.0.1:6379")
        .await
        .is_ok();
    if !(have_pg && have_redis) {
        assert!(
            std::env::var_os("CI").is_none(),
            "PostgreSQL and Redis are required in CI"
        );
        eprintln!("SKIP: needs PostgreSQL ({pg}) and Redis ({redis})");
        return None;
    }
    Some((pg, redis))
}

/// Sends `n` chat requests with `key`, `conc` at a time, spread over the
/// gateways; returns how many were served, and the 429s' codes.
async fn spread(gws: &[&Gateway], key: &str, n: usize, conc: usize) -> (usize, Vec<String>) {
    use futures_util::StreamExt;
    let urls: Vec<String> = gws.iter().map(|g| g.url.clone()).collect();
    let results: Vec<(u16, String)> = futures_util::stream::iter(0..n)
        .map(|i| {
            let (url, key) = (urls[i % urls.len()].clone(), key.to_owned());
            async move {
                let r = client()
                    .post(format!("{url}/v1/chat/completions"))
                    .bearer_auth(key)
                    .json(
                        &json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}),
                    )
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                (
                    status,
                    v["error"]["code"].as_str().unwrap_or_default().to_owned(),
                )
            }
        })
        .buffer_unordered(conc)
        .collect()
        .await;
    let served = results.iter().filter(|(s, _)| *s == 200).count();
    assert!(
        results.iter().all(|(s, _)| *s == 200 || *s == 429),
        "{results:?}"
    );
    (
        served,
        results
            .into_iter()
            .filter(|(s, _)| *s == 429)
            .map(|(_, c)| c)
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_hold_one_rate_limit_through_redis() {
    let Some((pg, redis)) = shared_stores().await else {
        return;
    };
    let f = fake().await;
    let env = [("RECORDS_URL", pg.as_str()), ("REDIS_URL", redis.as_str())];
    let a = start(&f.url(), &admin_cfg(), &env);
    let b = start(&f.url(), &admin_cfg(), &env);
    // 1,000 requests over both replicas, 16 in flight, against one key with
    // a per-minute limit of 200 (each replica alone would let 200 through).
    let (k, _) = create(
        &a,
        json!({"name": "rpm-shared", "rpm": 200, "quota_tokens": 1_000_000}),
    )
    .await;
    known_to(&b, &k).await;
    let (served, refused) = spread(&[&a, &b], &k, 1000, 16).await;
    assert!(
        (190..=210).contains(&served),
        "{served} served: the limit holds within 5 %"
    );
    assert!(
        refused.iter().all(|c| c == "rate_limit_exceeded"),
        "{refused:?}"
    );
    let m = client()
        .get(format!("{}/metrics", a.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("gateway_ratelimit_redis_fallbacks 0"),
        "Redis answered every check"
    );

    // One quota over both: overshot by at most the requests in flight.
    let (q, id) = create(&a, json!({"name": "quota-shared", "quota_tokens": 1600})).await;
    known_to(&b, &q).await;
    let (served, refused) = spread(&[&a, &b], &q, 1000, 16).await;
    assert!(
        refused.iter().all(|c| c == "insufficient_quota"),
        "{refused:?}"
    );
    let used = settled_usage(&a, &id, 1600).await;
    let per = used / served as i64;
    assert!(
        used >= 1600 && used <= 1600 + 16 * per,
        "used {used} over {served} requests ({per} each)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redis_outage_falls_back_to_local_limits() {
    let f = fake().await;
    // Nothing listens on port 1: every check falls back.
    let gw = start(
        &f.url(),
        &admin_cfg(),
        &[("REDIS_URL", "redis://127.0.0.1:1/")],
    );
    let (k, _) = create(&gw, json!({"name": "rpm-local", "rpm": 3})).await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(chat(&gw, &k, "chat").await.status().as_u16());
    }
    assert_eq!(
        codes,
        [200, 200, 200, 429, 429],
        "served, with this replica's limit"
    );
    let m = client()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let n: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("gateway_ratelimit_redis_fallbacks "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(n >= 5, "{n} fallbacks counted");
    assert!(gw.logs().contains("Redis rate limits unavailable"));
    // A static key is never limited.
    assert_eq!(chat(&gw, crate::support::KEY, "chat").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn cost_quotas_use_the_price_table() {
    let f = fake().await;
    // US$1 per million prompt tokens, US$2 per million completion tokens:
    // one micro-dollar a prompt token, two a completion token.
    let cfg = config(&format!(
        "[admin]\nkey = \"{ADMIN}\"\n\n[[prices]]\nmodel = \"ch*\"\nprompt = 1.0\ncompletion = 2.0\n"
    ));
    let gw = start(&f.url(), &cfg, &[]);
    let (k, id) = create(&gw, json!({"name": "dollars", "quota_micro_usd": 60})).await;
    let mut served = 0;
    let mut spent = 0;
    for _ in 0..20 {
        let r = chat(&gw, &k, "chat").await;
        if r.status() == 429 {
            let e: Value = r.json().await.unwrap();
            assert_eq!(e["error"]["code"], "insufficient_quota", "{e}");
            assert!(
                e["error"]["message"].as_str().unwrap().contains("US$0.00"),
                "{e}"
            );
            break;
        }
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        spent += v["usage"]["prompt_tokens"].as_i64().unwrap()
            + 2 * v["usage"]["completion_tokens"].as_i64().unwrap();
        served += 1;
    }
    assert!(
        served >= 1 && spent >= 60 && spent - 60 < spent / served,
        "{served} served, {spent} µ$"
    );
    let (_, v) = admin(&gw, "GET", &format!("/admin/keys/{id}"), None).await;
    assert_eq!(v["used_micro_usd"], spent, "{v}");
    assert_eq!(v["status"], "exhausted");
    // Models without a price cost nothing against a cost quota.
    assert_eq!(
        chat(&gw, &k, "tgi").await.status(),
        429,
        "the quota is used up whatever the model"
    );
}
