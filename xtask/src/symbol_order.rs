//! `cargo xtask symbol-order`: rewrites `crates/gateway/symbol-order.txt`,
//! the functions the gateway runs to start and to serve its first requests,
//! which `crates/gateway/build.rs` hands to the linker so that they sit
//! together in the binary.
//!
//! Why: the kernel maps a binary's code 64 KB around each page it faults
//! in, so code the start runs, scattered over the 25 MB of text, makes the
//! idle gateway's resident set (120 to 200 such windows, 8 to 12 MB, moved
//! by ±2 MB whenever a change reshuffled the layout). Listed, those
//! functions are 2-3 MB and sit side by side.
//!
//! How: the release gateway runs under `valgrind --tool=callgrind` (which
//! sees every function executed, where a sampling profiler sees the hot
//! ones) against the fast upstream of `mock-upstreams`, serves `/ping`, a
//! chat completion, a streamed one and the model list, and is stopped with
//! SIGTERM; every function of the binary callgrind saw is written, by its
//! linker (mangled) name. Names are stable across checkouts (cargo hashes a
//! workspace member by its path within the workspace), and a stale list
//! only orders less: a name the binary no longer has is skipped.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

const CONFIG: &str = r#"
listen = "127.0.0.1:PORT"
[auth]
keys = ["sk-symbol-order"]
[[upstreams]]
name = "fast"
base_url = "UPSTREAM"
"#;

pub(crate) fn run() -> Result<()> {
    if !crate::works("valgrind", &["--version"]) {
        bail!("valgrind is needed (apt-get install valgrind)");
    }
    let bin = crate::demo::build_gateway()?;
    let dir = crate::target_dir()?.join("symbol-order");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let upstream = mock_upstreams::FastUpstream::start()?;
    let port = crate::proxy_procs::free_port()?;
    let cfg = dir.join("gateway.toml");
    std::fs::write(
        &cfg,
        CONFIG
            .replace("PORT", &port.to_string())
            .replace("UPSTREAM", &format!("{}/v1", upstream.url())),
    )?;
    let out = dir.join("callgrind.out");
    let log = std::fs::File::create(dir.join("gateway.log"))?;
    let mut child = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--demangle=no")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&bin)
        .arg("--config")
        .arg(&cfg)
        .env_remove("RUST_LOG")
        .env(
            "RECORDS_URL",
            format!("sqlite://{}?mode=rwc", dir.join("records.db").display()),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting the gateway under valgrind")?;
    let served = requests(port);
    let pid = child.id();
    if crate::stop(&mut child, pid, Duration::from_secs(60)).is_none() {
        bail!("the gateway under valgrind did not stop on SIGTERM");
    }
    served?;
    let defined: HashSet<String> = String::from_utf8(
        Command::new("nm")
            .arg("--defined-only")
            .arg(&bin)
            .output()?
            .stdout,
    )?
    .lines()
    .filter_map(|l| {
        let mut w = l.split_whitespace();
        let (_, kind, name) = (w.next()?, w.next()?, w.next()?);
        matches!(kind, "t" | "T" | "w" | "W").then(|| name.to_owned())
    })
    .collect();
    // `fn=(id) name` and `cfn=(id) name` name a function the first time.
    let mut seen = HashSet::new();
    let mut names = Vec::new();
    for line in std::fs::read_to_string(&out)?.lines() {
        let Some(rest) = line
            .strip_prefix("fn=(")
            .or_else(|| line.strip_prefix("cfn=("))
        else {
            continue;
        };
        if let Some((_, name)) = rest.split_once(") ")
            && defined.contains(name)
            && seen.insert(name.to_owned())
        {
            names.push(name.to_owned());
        }
    }
    if names.len() < 500 {
        bail!("only {} functions of the binary seen", names.len());
    }
    let path = crate::root().join("crates/gateway/symbol-order.txt");
    std::fs::write(&path, names.join("\n") + "\n")?;
    println!("{}: {} functions", path.display(), names.len());
    Ok(())
}

/// What the list covers beyond the start: `/ping`, a chat completion, a
/// streamed one, the model list (a minute each at most: valgrind is slow).
fn requests(port: u16) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        crate::demo::wait_ready(port, Duration::from_secs(120))?;
        http.get(format!("{base}/ping"))
            .send()
            .await?
            .error_for_status()?;
        for stream in [false, true] {
            let r = http
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth("sk-symbol-order")
                .json(&serde_json::json!({
                    "model": "fast", "stream": stream,
                    "messages": [{"role": "user", "content": "Hello"}]
                }))
                .send()
                .await?;
            let status = r.status();
            r.bytes().await?;
            if !status.is_success() {
                bail!("chat (stream {stream}): {status}");
            }
        }
        http.get(format!("{base}/v1/models"))
            .bearer_auth("sk-symbol-order")
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    })
}
