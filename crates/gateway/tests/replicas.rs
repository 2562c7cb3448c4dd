//! Replicas starting together on an empty
//! PostgreSQL all come up (migrations one at a time), and a quota shared
//! through Redis holds across a Redis stall (SIGSTOP, then SIGCONT).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Gateway, client, config, fake, start};

const ADMIN: &str = "sk-admin-replicas";

fn pg_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// PostgreSQL, or `None` (a skip) outside CI.
async fn postgres() -> Option<sqlx::AnyPool> {
    let url = pg_url();
    match gateway::observe::records::connect(&url).await {
        Ok(p) => Some(p),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL at {url} is required in CI: {e}"
            );
            eprintln!("SKIP: no PostgreSQL at {url}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn four_replicas_start_together_on_an_empty_database() {
    let Some(pool) = postgres().await else { return };
    let f = fake().await;
    let text = config(&format!("[admin]\nkey = \"{ADMIN}\"\n"));
    for round in 0..3 {
        let db = format!("gw_migrate_{}_{round}", std::process::id());
        for stmt in [
            format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            format!("CREATE DATABASE {db}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(stmt))
                .execute(&pool)
                .await
                .unwrap();
        }
        let (base, _) = pg_url()
            .rsplit_once('/')
            .map(|(b, d)| (b.to_owned(), d.to_owned()))
            .unwrap();
        let url = format!("{base}/{db}");
        // Four at once: each start waits for its own listener (or panics
        // with the logs if the process exits).
        let starts: Vec<_> = (0..4)
            .map(|_| {
                let (fu, text, url) = (f.url(), text.clone(), url.clone());
                std::thread::spawn(move || start(&fu, &text, &[("RECORDS_URL", &url)]))
            })
            .collect();
        let gws: Vec<Gateway> = starts
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| panic!("round {round}: a replica failed to start"))
            })
            .collect();
        for gw in &gws {
            let r = client()
                .get(format!("{}/admin/keys", gw.url))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "round {round}");
        }
        drop(gws);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .execute(&pool)
        .await
        .unwrap();
    }
}

/// A Redis of this test's own (it is paused, so not the shared one).
struct OwnRedis {
    child: Child,
    port: u16,
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn own_redis() -> Option<OwnRedis> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .ok()?;
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--bind",
            "127.0.0.1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server is required in CI"
        );
        eprintln!("SKIP: no redis-server");
        return None;
    };
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(OwnRedis { child, port })
}

fn signal(r: &OwnRedis, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &r.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

async fn admin(gw: &Gateway, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut r = client()
        .request(method, format!("{}{path}", gw.url))
        .bearer_auth(ADMIN);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap().json().await.unwrap()
}

/// One chat: `Some(tokens used)` when served, `None` when the quota refused.
async fn chat(gw: &Gateway, key: &str) -> Option<u64> {
    let r = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(key)
        .json(&json!({"model": "chat", "messages": [{"role": "user", "content": "tell me something long enough to count"}]}))
        .send()
        .await
        .unwrap();
    match r.status().as_u16() {
        200 => Some(
            r.json::<Value>().await.unwrap()["usage"]["total_tokens"]
                .as_u64()
                .unwrap(),
        ),
        429 => None,
        s => panic!("status {s}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quota_holds_across_a_redis_stall() {
    let Some(redis) = own_redis() else { return };
    let f = fake().await;
    let text = config(&format!("[admin]\nkey = \"{ADMIN}\"\n"));
    let url = format!("redis://127.0.0.1:{}/", redis.port);
    let gw = start(&f.url(), &text, &[("REDIS_URL", &url)]);
    const QUOTA: u64 = 400;
    let v = admin(
        &gw,
        reqwest::Method::POST,
        "/admin/keys",
        Some(json!({"name": "stall", "quota_tokens": QUOTA})),
    )
    .await;
    let key = v["key"].as_str().unwrap().to_owned();
    let mut served = Vec::new();
    // Before, during and after the stall, one request at a time.
    for _ in 0..4 {
        served.push(chat(&gw, &key).await.expect("refused before the quota"));
    }
    signal(&redis, "-STOP");
    for _ in 0..6 {
        match chat(&gw, &key).await {
            Some(t) => served.push(t),
            None => break,
        }
    }
    signal(&redis, "-CONT");
    let mut refused = false;
    for _ in 0..200 {
        match chat(&gw, &key).await {
            Some(t) => served.push(t),
            None => {
                refused = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the quota never ran out: {served:?}");
    let total: u64 = served.iter().sum();
    let largest = *served.iter().max().unwrap();
    eprintln!(
        "quota {QUOTA}: served {total} tokens in {} requests",
        served.len()
    );
    // One request in flight at a time: over by at most one request.
    assert!(
        total < QUOTA + largest,
        "served {total} of a {QUOTA}-token quota: {served:?}"
    );
}

/// CPU time (user + system) of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces), from field 3.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Usage is not configuration. With 100,000 stored keys
/// and one key at 5 requests a second, a usage write reads back the rows
/// it changed, never every key: the gateway's CPU over 10 s stays a
/// fraction of what one full reload per write cost (each a second of CPU
/// in a debug build at this size).
#[tokio::test(flavor = "multi_thread")]
async fn usage_writes_do_not_reload_every_key() {
    let f = fake().await;
    let dir = std::env::temp_dir().join(format!("gw-100k-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("keys.db").display());
    let text = config(&format!("[admin]\nkey = \"{ADMIN}\"\n"));
    let gw = start(&f.url(), &text, &[("RECORDS_URL", &db)]);
    let v = admin(
        &gw,
        reqwest::Method::POST,
        "/admin/keys",
        Some(json!({"name": "busy", "quota_tokens": 100_000_000})),
    )
    .await;
    let key = v["key"].as_str().unwrap().to_owned();
    // 100,000 more keys, straight into the store, then one reload.
    let pool = gateway::observe::records::connect(&db).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    for i in 0..100_000u32 {
        sqlx::query("INSERT INTO gateway_keys (id, hash, name, prefix, owner, models, upstreams, expires_at, disabled, quota_tokens, used_tokens, quota_micro_usd, used_micro_usd, rpm, tpm, max_concurrent, ip_allow, created_at, updated_at) VALUES ($1, $2, 'bulk', 'sk-gw-bulk', NULL, '[]', '[]', NULL, 0, 1000, 0, NULL, 0, NULL, NULL, NULL, '[]', 0, 0)")
            .bind(format!("bulk{i:012}"))
            .bind(format!("{i:064x}"))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE gateway_keys_version SET version = version + 1 WHERE id = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let t = Instant::now();
    loop {
        let v = admin(
            &gw,
            reqwest::Method::GET,
            "/admin/keys/bulk000000099999",
            None,
        )
        .await;
        if v["id"] == "bulk000000099999" {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the keys never loaded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = gw.child.id();
    let before = cpu_ticks(pid);
    let t = Instant::now();
    let mut served = 0;
    while t.elapsed() < Duration::from_secs(10) {
        assert!(chat(&gw, &key).await.is_some());
        served += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ticks = cpu_ticks(pid) - before;
    let share = ticks as f64 / 100.0 / t.elapsed().as_secs_f64();
    eprintln!(
        "100,000 keys, {served} requests in 10 s: gateway CPU {:.1} % of a core",
        share * 100.0
    );
    // Requests included (a debug build): one full reload per usage write
    // would take most of a core.
    assert!(share < 0.12, "gateway CPU {:.1} % of a core", share * 100.0);
    // The usage reached the store and reads back.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let v = admin(
        &gw,
        reqwest::Method::GET,
        &format!("/admin/keys/{}", v_id(&gw, &key).await),
        None,
    )
    .await;
    assert!(v["used_tokens"].as_i64().unwrap() > 0, "{v}");
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The id of the stored key `secret`.
async fn v_id(gw: &Gateway, secret: &str) -> String {
    let list = admin(gw, reqwest::Method::GET, "/admin/keys", None).await;
    let prefix = &secret[..10];
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["prefix"] == prefix && k["name"] == "busy")
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .unwrap()
}
