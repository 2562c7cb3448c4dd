//! `cargo xtask bench [--secs N] [--conns N] [--streams N] [--gateway-only] [--fakes [--pin]] [--bin PATH]`:
//! the criterion benches (left out with `--gateway-only`), then the
//! comparison of `proxy.rs` (fast upstream, nginx, the gateway's chat,
//! Messages, SageMaker and stored-key paths, each driven by the bench's own
//! generator and by wrk); with `--fakes` instead
//! a closed-loop keep-alive load test over
//! loopback that drives the fake SageMaker endpoint and the fake Bedrock
//! directly and the real (release) gateway in front of each, and prints a
//! markdown table for
//! BENCHMARKS.md. With `--pin` the gateway runs on CPU 1 (`taskset`); run
//! the whole command under `taskset -c 0` to keep the client and the fake on
//! CPU 0, so the gateway's cost is measured apart from core contention.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::measure::{cpu_ticks, pct, rss_kib, status_kib};
use futures_util::StreamExt;
use mock_upstreams::{
    BedrockModel, BedrockReply, ContainerDialect, Endpoint, FakeBedrock, FakeOpenAi, FakeSageMaker,
    OpenAiFault, Reply,
};
use serde_json::json;

const KEY: &str = "sk-bench-key";

const CONFIG: &str = r#"
listen = "127.0.0.1:PORT"
log_format = "json"
[auth]
keys = ["sk-bench-key"]
[[models]]
name = "bench-chat"
[[models]]
name = "bench-slow"
[[models]]
name = "bench-bedrock"
backend = "bedrock"
model_id = "anthropic.claude-3-haiku-20240307-v1:0"
[routing]
breaker_failures = 5
breaker_cooldown_secs = 30
[[upstreams]]
name = "primary"
base_url = "UPSTREAM_A"
models_allow = ["bench-up"]
priority = 0
[[upstreams]]
name = "secondary"
base_url = "UPSTREAM_B"
models_allow = ["bench-up"]
priority = 1
"#;

const BENCH_TEXT: &str =
    "The quick brown fox jumps over the lazy dog while the gateway streams every token.";

/// Which upstream a scenario drives.
#[derive(Clone, Copy, PartialEq)]
enum Backend {
    SageMaker,
    Bedrock,
    /// Two OpenAI-style upstreams, the first one faulty.
    Upstreams,
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    // The load generator and the fakes must be fast: a debug xtask would
    // measure itself. Run again as a release build.
    // Both built in one cargo invocation: one feature resolution, so the
    // two builds never rebuild each other's dependencies.
    if cfg!(debug_assertions) {
        crate::run(crate::cargo().args([
            "build",
            "--release",
            "-p",
            "gateway",
            "-p",
            "xtask",
            "--bin",
            "gateway",
            "--bin",
            "xtask",
        ]))?;
        let release = crate::target_dir()?.join("release");
        let mut c = std::process::Command::new(release.join("xtask"));
        c.arg("bench").args(args);
        if !args.iter().any(|a| a == "--bin") {
            c.arg("--bin").arg(release.join("gateway"));
        }
        return crate::run(&mut c);
    }
    if !args.iter().any(|a| a == "--gateway-only") {
        crate::run(crate::cargo().args(["bench", "--bench", "sm_stream"]))?;
        crate::run(crate::cargo().args(["bench", "--bench", "bedrock_stream"]))?;
    }
    let secs: u64 = arg(args, "--secs", 5);
    let conns: usize = arg(args, "--conns", 16);
    let streams: usize = arg(args, "--streams", 1000);
    // `--bin PATH`: a gateway built elsewhere (another commit, to compare).
    let bin = match args.iter().position(|a| a == "--bin") {
        Some(i) => std::path::PathBuf::from(args.get(i + 1).context("--bin needs a path")?),
        None => crate::demo::build_gateway()?,
    };
    if !args.iter().any(|a| a == "--fakes") {
        return crate::proxy::run(bin, secs, conns);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let pin = args.iter().any(|a| a == "--pin");
    rt.block_on(load(bin, Duration::from_secs(secs), conns, streams, pin))
}

#[derive(Default)]
struct Stats {
    latencies: Vec<Duration>,
    ttfb: Vec<Duration>,
    errors: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Direct,
    Gateway,
}

const SIGV4: &str = "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=0";

async fn one(
    c: &reqwest::Client,
    (backend, target): (Backend, Target),
    stream: bool,
    fake: &str,
    gw: &str,
) -> Result<(Duration, Duration)> {
    let msg = json!([{"role": "user", "content": "benchmark the gateway please"}]);
    let started = Instant::now();
    let req = match (backend, target) {
        (Backend::Bedrock, Target::Direct) => {
            let op = if stream {
                "converse-stream"
            } else {
                "converse"
            };
            c.post(format!(
                "{fake}/model/anthropic.claude-3-haiku-20240307-v1%3A0/{op}"
            ))
            .header("authorization", SIGV4)
            .json(&json!({"messages": [{"role": "user", "content": [{"text": "benchmark the gateway please"}]}]}))
        }
        (Backend::Bedrock, Target::Gateway) => c
            .post(format!("{gw}/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&json!({"model": "bench-bedrock", "messages": msg, "stream": stream})),
        (Backend::SageMaker, Target::Direct) => {
            let path = if stream {
                "invocations-response-stream"
            } else {
                "invocations"
            };
            c.post(format!("{fake}/endpoints/bench-chat/{path}"))
                .header(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=0",
                )
                .json(&json!({"model": "bench-chat", "messages": msg, "stream": stream}))
        }
        (Backend::Upstreams, _) => c
            .post(format!("{gw}/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&json!({"model": "bench-up", "messages": msg, "stream": stream})),
        (Backend::SageMaker, Target::Gateway) => c
            .post(format!("{gw}/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&json!({"model": "bench-chat", "messages": msg, "stream": stream})),
    };
    let resp = req.send().await?;
    if !resp.status().is_success() {
        bail!("status {}", resp.status());
    }
    let mut ttfb = None;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        chunk?;
        ttfb.get_or_insert_with(|| started.elapsed());
    }
    let total = started.elapsed();
    Ok((ttfb.unwrap_or(total), total))
}

async fn closed_loop(
    target: (Backend, Target),
    stream: bool,
    conns: usize,
    dur: Duration,
    fake: &str,
    gw: &str,
) -> Stats {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (fake, gw, stop) = (fake.to_owned(), gw.to_owned(), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            // One keep-alive connection per worker.
            let c = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .tcp_nodelay(true)
                .build()
                .unwrap_or_default();
            let mut s = Stats::default();
            while !stop.load(Ordering::Relaxed) {
                match one(&c, target, stream, &fake, &gw).await {
                    Ok((t, l)) => {
                        s.ttfb.push(t);
                        s.latencies.push(l);
                    }
                    Err(_) => s.errors += 1,
                }
            }
            s
        }));
    }
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Stats::default();
    for t in tasks {
        if let Ok(s) = t.await {
            all.latencies.extend(s.latencies);
            all.ttfb.extend(s.ttfb);
            all.errors += s.errors;
        }
    }
    all
}

async fn load(
    bin: std::path::PathBuf,
    dur: Duration,
    conns: usize,
    streams: usize,
    pin: bool,
) -> Result<()> {
    let fake = FakeSageMaker::start().await?;
    let bedrock = FakeBedrock::start().await?;
    bedrock.add(
        "anthropic.claude-3-haiku-20240307-v1:0",
        BedrockModel::new(BedrockReply::Text(BENCH_TEXT.into())),
    );
    let primary = FakeOpenAi::start("primary").await?;
    let secondary = FakeOpenAi::start("secondary").await?;
    let mut chat = Endpoint::echo(ContainerDialect::OpenAi);
    chat.reply = Reply::Text(BENCH_TEXT.into());
    chat.part_bytes = 1 << 20;
    fake.add("bench-chat", chat);
    let mut slow = Endpoint::echo(ContainerDialect::OpenAi);
    slow.reply = Reply::Endless;
    slow.token_delay = Duration::from_millis(500);
    slow.part_bytes = 1 << 20;
    fake.add("bench-slow", slow);

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir().join(format!("oai-gateway-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cfg = dir.join("bench.toml");
    std::fs::write(
        &cfg,
        CONFIG
            .replace("PORT", &port.to_string())
            .replace("UPSTREAM_A", &primary.base_url())
            .replace("UPSTREAM_B", &secondary.base_url()),
    )?;
    let mut cmd = if pin {
        let mut c = std::process::Command::new("taskset");
        c.args(["-c", "1"]).arg(&bin);
        c
    } else {
        std::process::Command::new(&bin)
    };
    let mut child = cmd
        .arg("--config")
        .arg(&cfg)
        .env("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", fake.url())
        .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock.url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env_remove("RUST_LOG")
        .env(
            "RECORDS_URL",
            format!("sqlite://{}?mode=rwc", dir.join("records.db").display()),
        )
        .stdout(std::fs::File::create(dir.join("gateway.log"))?)
        .spawn()
        .context("starting the gateway")?;
    let pid = child.id();
    crate::demo::wait_ready(port, Duration::from_secs(30))?;
    let gw = format!("http://127.0.0.1:{port}");
    let f = fake.url();
    let fb = bedrock.url();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_rss = rss_kib(pid);
    let (idle_anon, idle_file) = (status_kib(pid, "RssAnon"), status_kib(pid, "RssFile"));

    // Warm up every path.
    for backend in [Backend::SageMaker, Backend::Bedrock] {
        let up = if backend == Backend::Bedrock { &fb } else { &f };
        for target in [Target::Gateway, Target::Direct] {
            closed_loop(
                (backend, target),
                false,
                conns,
                Duration::from_millis(500),
                up,
                &gw,
            )
            .await;
        }
    }

    let peak = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (Arc::clone(&peak), Arc::clone(&sampling));
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    println!(
        "\n| scenario | conns | req/s | p50 ms | p99 ms | TTFB p50 ms | TTFB p99 ms | errors | gateway CPU µs/req |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut p50s = Vec::new();
    let mut rps = Vec::new();
    for backend in [Backend::SageMaker, Backend::Bedrock] {
        let up = if backend == Backend::Bedrock { &fb } else { &f };
        for stream in [false, true] {
            for target in [Target::Direct, Target::Gateway] {
                let cpu0 = cpu_ticks(pid);
                let mut s = closed_loop((backend, target), stream, conns, dur, up, &gw).await;
                let cpu = cpu_ticks(pid) - cpu0;
                let n = s.latencies.len() as f64;
                let r = n / dur.as_secs_f64();
                let p50 = pct(&mut s.latencies, 0.5);
                let p99 = pct(&mut s.latencies, 0.99);
                let t50 = pct(&mut s.ttfb, 0.5);
                let t99 = pct(&mut s.ttfb, 0.99);
                let cpu_us = if target == Target::Gateway && n > 0.0 {
                    format!("{:.0}", cpu as f64 * 10_000.0 / n)
                } else {
                    "-".into()
                };
                let name = format!(
                    "{} {} {}",
                    if backend == Backend::Bedrock {
                        "bedrock"
                    } else {
                        "sagemaker"
                    },
                    if target == Target::Direct {
                        "direct fake"
                    } else {
                        "gateway"
                    },
                    if stream { "streaming" } else { "non-streaming" }
                );
                println!(
                    "| {name} | {conns} | {r:.0} | {p50:.3} | {p99:.3} | {t50:.3} | {t99:.3} | {} | {cpu_us} |",
                    s.errors
                );
                p50s.push(p50);
                rps.push(r);
            }
        }
    }
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    println!();
    for (i, name) in ["sagemaker", "bedrock"].iter().enumerate() {
        let o = i * 4;
        println!(
            "{name}: added p50 latency: non-streaming {:.3} ms, streaming {:.3} ms; throughput vs direct: non-streaming {:.2}, streaming {:.2}",
            p50s[o + 1] - p50s[o],
            p50s[o + 3] - p50s[o + 2],
            rps[o + 1] / rps[o],
            rps[o + 3] / rps[o + 2]
        );
    }
    println!(
        "gateway RSS: idle {:.1} MiB ({:.1} MiB anonymous, {:.1} MiB file-backed: code pages of the binary and libraries), peak under load {:.1} MiB",
        idle_rss as f64 / 1024.0,
        idle_anon as f64 / 1024.0,
        idle_file as f64 / 1024.0,
        peak.load(Ordering::Relaxed) as f64 / 1024.0
    );

    // Failover: two OpenAI-style upstreams, the first failing 0 %, 10 % or
    // 100 % of its requests (500s).
    println!(
        "\n| upstream scenario | conns | req/s | success % | p50 ms | p99 ms | added p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut base_p99 = f64::NAN;
    for (name, fault) in [
        ("primary healthy", OpenAiFault::None),
        ("primary fails 10 %", OpenAiFault::FailEvery(10)),
        ("primary fails 100 %", OpenAiFault::Status(500)),
    ] {
        primary.set_fault(fault);
        let mut s = closed_loop(
            (Backend::Upstreams, Target::Gateway),
            false,
            conns,
            dur,
            &primary.base_url(),
            &gw,
        )
        .await;
        let n = s.latencies.len() as f64;
        let ok = 100.0 * n / (n + s.errors as f64).max(1.0);
        let p50 = pct(&mut s.latencies, 0.5);
        let p99 = pct(&mut s.latencies, 0.99);
        if base_p99.is_nan() {
            base_p99 = p99;
        }
        println!(
            "| {name} | {conns} | {:.0} | {ok:.2} | {p50:.3} | {p99:.3} | {:.3} |",
            n / dur.as_secs_f64(),
            p99 - base_p99
        );
    }

    // The cost of request records: the same gateway with records off, run
    // alternately with the first (metrics stay on in both: they cannot be
    // switched off).
    let port2 = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let cfg2 = dir.join("bench2.toml");
    std::fs::write(
        &cfg2,
        std::fs::read_to_string(&cfg)?
            .replace(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{port2}")),
    )?;
    let mut child2 = std::process::Command::new(&bin)
        .arg("--config")
        .arg(&cfg2)
        .env("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", fake.url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env_remove("RUST_LOG")
        .env("RECORDS_ENABLED", "false")
        .stdout(std::fs::File::create(dir.join("gateway2.log"))?)
        .spawn()
        .context("starting the second gateway")?;
    crate::demo::wait_ready(port2, Duration::from_secs(30))?;
    let gw2 = format!("http://127.0.0.1:{port2}");
    closed_loop(
        (Backend::SageMaker, Target::Gateway),
        false,
        conns,
        Duration::from_millis(500),
        &f,
        &gw2,
    )
    .await;
    let (mut on, mut off) = (0usize, 0usize);
    for _ in 0..2 {
        on += closed_loop(
            (Backend::SageMaker, Target::Gateway),
            false,
            conns,
            dur,
            &f,
            &gw,
        )
        .await
        .latencies
        .len();
        off += closed_loop(
            (Backend::SageMaker, Target::Gateway),
            false,
            conns,
            dur,
            &f,
            &gw2,
        )
        .await
        .latencies
        .len();
    }
    println!(
        "\nrecords on vs off (non-streaming, {conns} conns, 2 x {} s each, alternated): {:.0} vs {:.0} req/s: records cost {:.1} % of throughput",
        dur.as_secs(),
        on as f64 / (2.0 * dur.as_secs_f64()),
        off as f64 / (2.0 * dur.as_secs_f64()),
        100.0 * (1.0 - on as f64 / off.max(1) as f64)
    );
    let _ = child2.kill();
    let _ = child2.wait();

    // Many open streams.
    let before = rss_kib(pid);
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let mut open = Vec::with_capacity(streams);
    for _ in 0..streams {
        let c = c.clone();
        let gw = gw.clone();
        open.push(tokio::spawn(async move {
            let resp = c
                .post(format!("{gw}/v1/chat/completions"))
                .bearer_auth(KEY)
                .json(&json!({"model": "bench-slow", "stream": true, "messages": [{"role": "user", "content": "hold"}]}))
                .send()
                .await
                .ok()?;
            let mut body = resp.bytes_stream();
            body.next().await?.ok()?;
            // Hold the stream open until the task is aborted.
            tokio::time::sleep(Duration::from_secs(600)).await;
            Some(body)
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while fake
        .streams()
        .iter()
        .filter(|s| s.endpoint == "bench-slow" && s.ended.is_none())
        .count()
        < streams
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let live = fake
        .streams()
        .iter()
        .filter(|s| s.endpoint == "bench-slow" && s.ended.is_none())
        .count();
    let during = rss_kib(pid);
    println!(
        "{live} concurrent streams: RSS {:.1} MiB, {:.1} KiB per stream above the {:.1} MiB before",
        during as f64 / 1024.0,
        (during.saturating_sub(before)) as f64 / live.max(1) as f64,
        before as f64 / 1024.0
    );
    for t in open {
        t.abort();
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
