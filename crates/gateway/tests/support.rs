//! Starting the gateway binary against fakes, and reading its SSE.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mock_upstreams::{ContainerDialect, Endpoint, FakeSageMaker};

pub(crate) const KEY: &str = "sk-test-canary-5e3f9a";

/// A running gateway process, killed on drop. Its stdout and stderr are
/// collected for log checks.
pub(crate) struct Gateway {
    pub(crate) child: Child,
    pub(crate) url: String,
    pub(crate) port: u16,
    pub(crate) logs: Arc<Mutex<Vec<u8>>>,
    _dir: TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// The TOML file it was started with (rewrite it to test reloads).
    pub(crate) fn config_path(&self) -> std::path::PathBuf {
        self._dir.0.join("gateway.toml")
    }

    pub(crate) fn logs(&self) -> String {
        String::from_utf8_lossy(&self.logs.lock().unwrap()).into_owned()
    }
}

pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The default test config: one model per dialect, plus faulty ones.
pub(crate) fn config(extra: &str) -> String {
    format!(
        r#"
log_format = "json"
max_body_bytes = 65536
first_byte_timeout_secs = 2
stream_idle_timeout_secs = 2
request_timeout_secs = 2
shutdown_timeout_secs = 10

[aws]
max_attempts = 1

[auth]
keys = ["{KEY}"]

[[models]]
name = "chat"
dialect = "openai_chat"
aliases = ["gpt-4o-mini"]

[[models]]
name = "tgi"
dialect = "tgi"

[[models]]
name = "lmi"
dialect = "lmi"

[[models]]
name = "r1"
dialect = "openai_chat"
reasoning = "tags"

[[models]]
name = "missing"
endpoint = "no-such-endpoint"

{extra}
"#
    )
}

/// Starts the gateway binary with `config` (a TOML text) against `fake`.
pub(crate) fn start(fake_url: &str, config: &str, env: &[(&str, &str)]) -> Gateway {
    let dir = std::env::temp_dir().join(format!("gw-test-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let path = dir.join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
    cmd.arg("--config")
        .arg(&path)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .env("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", fake_url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "RECORDS_URL",
            format!("sqlite://{}?mode=rwc", dir.join("records.db").display()),
        )
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let logs = Arc::clone(&logs);
        std::thread::spawn(move || {
            let mut pipe = pipe;
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                logs.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            std::thread::sleep(Duration::from_millis(100));
            panic!(
                "gateway exited at start ({status}): {}",
                String::from_utf8_lossy(&logs.lock().unwrap())
            );
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "gateway did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Gateway {
        child,
        url: format!("http://127.0.0.1:{port}"),
        port,
        logs,
        _dir: TempDir(dir),
    }
}

/// A fake with the endpoints of [`config`].
pub(crate) async fn fake() -> FakeSageMaker {
    let f = FakeSageMaker::start().await.unwrap();
    f.add("chat", Endpoint::echo(ContainerDialect::OpenAi));
    f.add("tgi", Endpoint::echo(ContainerDialect::Tgi));
    f.add("lmi", Endpoint::echo(ContainerDialect::Lmi));
    let mut r1 = Endpoint::echo(ContainerDialect::OpenAi);
    r1.reply = mock_upstreams::Reply::Text("<think>Greet back.</think>\n\nHello! 你好！".into());
    r1.part_bytes = 3;
    f.add("r1", r1);
    f
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// POSTs JSON with the test key.
pub(crate) async fn post(gw: &Gateway, path: &str, body: serde_json::Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", gw.url))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// POSTs JSON with the test key and returns the JSON answer.
pub(crate) async fn post_json(
    gw: &Gateway,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    post(gw, path, body).await.json().await.unwrap()
}

/// GETs `path` (with `key` as a bearer token, if any) and returns the
/// answer's text.
pub(crate) async fn get_text(base: &str, path: &str, key: Option<&str>) -> String {
    let mut r = client().get(format!("{base}{path}"));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    r.send().await.unwrap().text().await.unwrap()
}

/// GETs `path` (with `key` as a bearer token, if any) and returns the JSON
/// answer.
pub(crate) async fn get_json(base: &str, path: &str, key: Option<&str>) -> serde_json::Value {
    let mut r = client().get(format!("{base}{path}"));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    r.send().await.unwrap().json().await.unwrap()
}

/// Reads a whole SSE body into its `data:` payloads.
pub(crate) async fn sse_events(resp: reqwest::Response) -> Vec<String> {
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut body = Vec::new();
    let mut s = resp.bytes_stream();
    while let Some(c) = s.next().await {
        body.extend_from_slice(&c.unwrap());
    }
    let text = String::from_utf8(body).unwrap();
    assert!(text.ends_with("\n\n"), "{text}");
    text.trim_end()
        .split("\n\n")
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("bad event {e}"))
                .to_owned()
        })
        .collect()
}

/// The content of choice 0 across chunks.
pub(crate) fn content(events: &[String]) -> String {
    let mut out = String::new();
    for e in events {
        if e == "[DONE]" {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(e).unwrap();
        if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
            out.push_str(t);
        }
        if let Some(t) = v["choices"][0]["text"].as_str() {
            out.push_str(t);
        }
    }
    out
}

/// Runs a Python script with the official `openai` SDK and asserts it prints
/// `ok_marker`. Skips (returns) when the SDK is missing, except in CI.
pub(crate) async fn run_python(
    script: &'static str,
    env: Vec<(&'static str, String)>,
    ok_marker: &str,
    gw: &Gateway,
) {
    python_output(script, env, ok_marker, gw).await;
}

/// [`run_python`], returning what the script printed (`None`: skipped,
/// no SDK on a newcomer's machine).
pub(crate) async fn python_output(
    script: &'static str,
    env: Vec<(&'static str, String)>,
    ok_marker: &str,
    gw: &Gateway,
) -> Option<String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let have = Command::new(&python)
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "the openai Python SDK is required in CI"
        );
        eprintln!("SKIP: python openai SDK not installed (cargo xtask test installs it)");
        return None;
    }
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args(["-c", script])
            .envs(env)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(ok_marker),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.logs()
    );
    Some(stdout.into_owned())
}

/// A field of the gateway process's `/proc/PID/status`, in KiB (`VmRSS:`,
/// `VmHWM:`).
pub(crate) fn status_kib(gw: &Gateway, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", gw.child.id()))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap()
}
