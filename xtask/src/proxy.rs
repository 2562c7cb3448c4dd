//! `cargo xtask bench --proxy`: the gateway as a hop, beside a plain reverse
//! proxy (nginx) in the same run, in front of an upstream much faster than
//! either (`mock_upstreams::FastUpstream`, one hyper thread, precomputed
//! answers). Reported as ratios to the upstream alone, CPU per request and
//! per SSE event, and the latency each hop adds at a fixed 500 req/s.
//!
//! The load generator is lean on purpose: raw HTTP/1.1 over keep-alive
//! connections, the request bytes built once, responses read by
//! `Content-Length` or chunked framing, on one thread of its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mock_upstreams::{FastUpstream, STREAM_EVENTS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::measure::{cpu_us, family, pct};
use crate::proxy_procs::{
    SAGEMAKER_CONFIG, UPSTREAM_CONFIG, start_gateway, start_nginx, stored_key,
};

const KEY: &str = "sk-bench-key";

/// What one run measured.
#[derive(Debug, Default, Clone)]
struct Run {
    rps: f64,
    p50: f64,
    p99: f64,
    errors: u64,
    cpu_us_per_req: Option<f64>,
}

/// A target: where to send, what to send, which processes to charge.
struct Target<'a> {
    name: &'a str,
    addr: SocketAddr,
    path: &'a str,
    /// The client key sent, if any.
    auth: Option<String>,
    pids: Vec<u32>,
    /// Anthropic's Messages API (`/v1/messages`) rather than chat.
    messages: bool,
}

fn request(t: &Target<'_>, stream: bool) -> Vec<u8> {
    let max = if t.messages {
        r#""max_tokens":256,"#
    } else {
        ""
    };
    let body = format!(
        r#"{{"model":"bench-up",{max}"stream":{stream},"messages":[{{"role":"user","content":"benchmark the gateway please"}}]}}"#
    );
    let auth = t
        .auth
        .as_ref()
        .map(|k| format!("authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n{auth}content-length: {}\r\n\r\n{body}",
        t.path,
        body.len()
    )
    .into_bytes()
}

/// Whether an SSE chunk carries a non-empty content delta (a chat chunk's
/// `content`, a Messages `text_delta`'s `text`).
fn has_content(data: &[u8]) -> bool {
    [&b"\"content\":\""[..], &b"\"text\":\""[..]]
        .iter()
        .any(|k| {
            let mut at = 0;
            while let Some(i) = find(&data[at..], k) {
                let j = at + i + k.len();
                if data.get(j).is_some_and(|b| *b != b'"') {
                    return true;
                }
                at = j;
            }
            false
        })
}

/// Reads one response; returns its status, (for a check) body length, and
/// when the first content delta arrived (streams).
async fn read_response(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<(u16, usize, Option<Instant>)> {
    let mut first_content = None;
    // Head.
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        let mut tmp = [0u8; 16384];
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            bail!("closed");
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end])?.to_ascii_lowercase();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("status")?;
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    buf.drain(..head_end);
    let mut total = 0;
    if let Some(len) = len {
        loop {
            if first_content.is_none() && has_content(&buf[..len.min(buf.len())]) {
                first_content = Some(Instant::now());
            }
            if buf.len() >= len {
                break;
            }
            let mut tmp = [0u8; 65536];
            let n = s.read(&mut tmp).await?;
            if n == 0 {
                bail!("closed mid-body");
            }
            buf.extend_from_slice(&tmp[..n]);
        }
        buf.drain(..len);
        total = len;
    } else if chunked {
        loop {
            let line_end = loop {
                if let Some(i) = find(buf, b"\r\n") {
                    break i;
                }
                let mut tmp = [0u8; 65536];
                let n = s.read(&mut tmp).await?;
                if n == 0 {
                    bail!("closed mid-chunk");
                }
                buf.extend_from_slice(&tmp[..n]);
            };
            let size = usize::from_str_radix(std::str::from_utf8(&buf[..line_end])?.trim(), 16)?;
            let need = line_end + 2 + size + 2;
            while buf.len() < need {
                let mut tmp = [0u8; 65536];
                let n = s.read(&mut tmp).await?;
                if n == 0 {
                    bail!("closed mid-chunk");
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            if first_content.is_none() && has_content(&buf[line_end + 2..line_end + 2 + size]) {
                first_content = Some(Instant::now());
            }
            buf.drain(..need);
            total += size;
            if size == 0 {
                break;
            }
        }
    }
    Ok((status, total, first_content))
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Drives `conns` keep-alive connections for `dur`, each sending the next
/// request when its last answer is read (`pace` `None`: closed loop) or on
/// its own fixed schedule (`Some(interval)`, staggered: open loop; a late
/// answer delays only its connection). Returns the latencies (with `ttft`,
/// the time to the first content delta instead), and errors.
fn drive(
    t: &Target<'_>,
    stream: bool,
    conns: usize,
    dur: Duration,
    pace: Option<Duration>,
    ttft: bool,
) -> Result<(Vec<Duration>, u64)> {
    let req = request(t, stream);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..conns {
            let (req, addr) = (req.clone(), t.addr);
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let Ok(mut s) = TcpStream::connect(addr).await else {
                    return (lat, 1);
                };
                let _ = s.set_nodelay(true);
                let mut buf = Vec::with_capacity(65536);
                let mut tick = pace.map(|p| {
                    let start = tokio::time::Instant::now() + p.mul_f64(i as f64 / conns as f64);
                    let mut tick = tokio::time::interval_at(start, p);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    tick
                });
                let end = Instant::now() + dur;
                while Instant::now() < end {
                    if let Some(t) = tick.as_mut() {
                        t.tick().await;
                    }
                    let t0 = Instant::now();
                    if s.write_all(&req).await.is_err() {
                        errors += 1;
                        break;
                    }
                    match read_response(&mut s, &mut buf).await {
                        Ok((200, _, first)) if ttft => match first {
                            Some(f) => lat.push(f - t0),
                            None => errors += 1,
                        },
                        Ok((200, _, _)) => lat.push(t0.elapsed()),
                        Ok(_) => errors += 1,
                        Err(_) => {
                            errors += 1;
                            break;
                        }
                    }
                }
                (lat, errors)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for task in tasks {
            if let Ok((l, e)) = task.await {
                all.extend(l);
                errors += e;
            }
        }
        (all, errors)
    }))
}

/// Closed loop: throughput, latency and the target's CPU per request.
fn closed_loop(t: &Target<'_>, stream: bool, conns: usize, dur: Duration) -> Result<Run> {
    let cpu0 = cpu_us(&t.pids);
    let started = Instant::now();
    let (mut lat, errors) = drive(t, stream, conns, dur, None, false)?;
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_us(&t.pids).saturating_sub(cpu0);
    let n = lat.len();
    Ok(Run {
        rps: n as f64 / secs,
        p50: pct(&mut lat, 0.5),
        p99: pct(&mut lat, 0.99),
        errors,
        cpu_us_per_req: (!t.pids.is_empty() && n > 0).then(|| cpu as f64 / n as f64),
    })
}

/// Open loop at `rate` requests a second over `conns` connections: the
/// latency a hop adds when it is not saturated.
/// With `ttft`, streams, and the latency is the time to the first content
/// delta.
fn open_loop(t: &Target<'_>, rate: u32, conns: usize, dur: Duration, ttft: bool) -> Result<Run> {
    let pace = Duration::from_secs_f64(conns as f64 / f64::from(rate));
    let (mut lat, errors) = drive(t, ttft, conns, dur, Some(pace), ttft)?;
    Ok(Run {
        rps: lat.len() as f64 / dur.as_secs_f64(),
        p50: pct(&mut lat, 0.5),
        p99: pct(&mut lat, 0.99),
        errors,
        cpu_us_per_req: None,
    })
}

/// Runs the comparison and prints the table.
pub(crate) fn run(bin: PathBuf, secs: u64, conns: usize) -> Result<()> {
    let dur = Duration::from_secs(secs);
    let up = FastUpstream::start()?;
    let dir = std::env::temp_dir().join(format!("oai-gateway-proxy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let upstream_url = up.url();
    let mut children: Vec<Child> = Vec::new();
    let nginx = start_nginx(&dir, up.addr)?;
    let (g_on, a_on) = start_gateway(
        &bin,
        &dir,
        "records-on",
        &UPSTREAM_CONFIG.replace("UPSTREAM", &upstream_url),
        &[],
    )?;
    let (g_off, a_off) = start_gateway(
        &bin,
        &dir,
        "records-off",
        &UPSTREAM_CONFIG.replace("UPSTREAM", &upstream_url),
        &[("RECORDS_ENABLED", "false".into())],
    )?;
    let (g_sm, a_sm) = start_gateway(
        &bin,
        &dir,
        "sagemaker",
        SAGEMAKER_CONFIG,
        &[("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", upstream_url.clone())],
    )?;
    let (g_sdk, a_sdk) = start_gateway(
        &bin,
        &dir,
        "sagemaker-sdk",
        SAGEMAKER_CONFIG,
        &[
            ("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", upstream_url.clone()),
            ("AWS_SAGEMAKER_CLIENT", "sdk".into()),
        ],
    )?;
    // The same gateway with a stored key (a quota and per-minute limits far
    // above what the run uses), created with `gateway keys create` on its
    // records store.
    let (g_key, a_key) = start_gateway(
        &bin,
        &dir,
        "stored-key",
        &UPSTREAM_CONFIG.replace("UPSTREAM", &upstream_url),
        &[],
    )?;
    let stored = stored_key(&bin, &dir, "stored-key")?;
    let mut targets = vec![Target {
        name: "direct (fast upstream alone)",
        addr: up.addr,
        path: "/v1/chat/completions",
        auth: None,
        pids: Vec::new(),
        messages: false,
    }];
    if let Some((child, addr)) = &nginx {
        targets.push(Target {
            name: "nginx (plain reverse proxy)",
            addr: *addr,
            path: "/v1/chat/completions",
            auth: None,
            pids: family(child.id()),
            messages: false,
        });
    }
    targets.push(Target {
        name: "gateway, OpenAI upstream, records on (README defaults)",
        addr: a_on,
        path: "/v1/chat/completions",
        auth: Some(KEY.into()),
        pids: vec![g_on.id()],
        messages: false,
    });
    targets.push(Target {
        name: "gateway, OpenAI upstream, Anthropic Messages API (records on)",
        addr: a_on,
        path: "/v1/messages",
        auth: Some(KEY.into()),
        pids: vec![g_on.id()],
        messages: true,
    });
    targets.push(Target {
        name: "gateway, OpenAI upstream, records off",
        addr: a_off,
        path: "/v1/chat/completions",
        auth: Some(KEY.into()),
        pids: vec![g_off.id()],
        messages: false,
    });
    targets.push(Target {
        name: "gateway, SageMaker path, signed client (records on)",
        addr: a_sm,
        path: "/v1/chat/completions",
        auth: Some(KEY.into()),
        pids: vec![g_sm.id()],
        messages: false,
    });
    targets.push(Target {
        name: "gateway, SageMaker path, SDK client (records on)",
        addr: a_sdk,
        path: "/v1/chat/completions",
        auth: Some(KEY.into()),
        pids: vec![g_sdk.id()],
        messages: false,
    });
    targets.push(Target {
        name: "gateway, OpenAI upstream, stored key with quota and rpm/tpm limits (records on)",
        addr: a_key,
        path: "/v1/chat/completions",
        auth: Some(stored),
        pids: vec![g_key.id()],
        messages: false,
    });
    children.extend([g_on, g_off, g_sm, g_sdk, g_key]);
    if let Some((child, _)) = nginx {
        children.push(child);
    }
    // `BENCH_ONLY=text`: only direct and the targets whose name has it (to
    // profile one with `perf record -p`; each gateway's pid is printed).
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        targets.retain(|t| t.pids.is_empty() || t.name.contains(only.as_str()));
        for t in &targets {
            eprintln!("{}: pids {:?}", t.name, t.pids);
        }
    }
    // Warm up every target (connections, caches, the SQLite file).
    for t in &targets {
        let _ = closed_loop(t, false, conns, Duration::from_millis(500));
    }
    println!(
        "\nFast upstream: {} tokens; a stream is {STREAM_EVENTS} SSE events. {conns} keep-alive connections, {secs} s a scenario.\n",
        mock_upstreams::TOKENS
    );
    println!(
        "| target | non-stream req/s | ÷ direct | CPU µs/req | stream req/s | ÷ direct | CPU µs/event | p99 stream ms | 500 req/s p50 / p99 ms | added p50 / p99 ms | TTFT p50 at 500 streams/s, added ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut direct: Option<(Run, Run, Run, Run)> = None;
    for t in &targets {
        let whole = closed_loop(t, false, conns, dur)?;
        let streamed = closed_loop(t, true, conns, dur)?;
        let paced = open_loop(t, 500, 8, dur, false)?;
        let first = open_loop(t, 500, 8, dur, true)?;
        let base = direct.get_or_insert_with(|| {
            (
                whole.clone(),
                streamed.clone(),
                paced.clone(),
                first.clone(),
            )
        });
        let per_event = streamed
            .cpu_us_per_req
            .map(|c| format!("{:.1}", c / STREAM_EVENTS as f64))
            .unwrap_or_else(|| "-".into());
        let cpu = whole
            .cpu_us_per_req
            .map(|c| format!("{c:.0}"))
            .unwrap_or_else(|| "-".into());
        println!(
            "| {} | {:.0} | {:.3} | {cpu} | {:.0} | {:.3} | {per_event} | {:.2} | {:.3} / {:.3} | {:+.3} / {:+.3} | {:.3} ({:+.3}) |{}",
            t.name,
            whole.rps,
            whole.rps / base.0.rps,
            streamed.rps,
            streamed.rps / base.1.rps,
            streamed.p99,
            paced.p50,
            paced.p99,
            paced.p50 - base.2.p50,
            paced.p99 - base.2.p99,
            first.p50,
            first.p50 - base.3.p50,
            if whole.errors + streamed.errors + paced.errors + first.errors > 0 {
                format!(
                    " errors: {}",
                    whole.errors + streamed.errors + paced.errors + first.errors
                )
            } else {
                String::new()
            }
        );
    }
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
