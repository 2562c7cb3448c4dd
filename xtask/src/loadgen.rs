//! The bench's own load generator: raw HTTP/1.1 over keep-alive
//! connections, the request bytes built once, responses read by
//! `Content-Length` or chunked framing, on one thread of its own. Closed
//! loop (each connection sends its next request when the last answer is
//! read) or open loop (each connection on its own fixed schedule).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::measure::{cpu_us, pct, switches};

pub(crate) const KEY: &str = "sk-bench-key";

/// What one run measured.
#[derive(Debug, Default, Clone)]
pub(crate) struct Run {
    pub(crate) rps: f64,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) errors: u64,
    pub(crate) cpu_us_per_req: Option<f64>,
    pub(crate) switches_per_req: Option<f64>,
}

/// A target: where to send, what to send, which processes to charge.
pub(crate) struct Target<'a> {
    pub(crate) name: &'a str,
    pub(crate) addr: SocketAddr,
    pub(crate) path: &'a str,
    /// The client key sent, if any.
    pub(crate) auth: Option<String>,
    pub(crate) pids: Vec<u32>,
    /// Anthropic's Messages API (`/v1/messages`) rather than chat.
    pub(crate) messages: bool,
}

/// The request body `t` is sent (chat or Messages, streamed or not).
pub(crate) fn body(t: &Target<'_>, stream: bool) -> String {
    let max = if t.messages {
        r#""max_tokens":256,"#
    } else {
        ""
    };
    format!(
        r#"{{"model":"bench-up",{max}"stream":{stream},"messages":[{{"role":"user","content":"benchmark the gateway please"}}]}}"#
    )
}

fn request(t: &Target<'_>, stream: bool) -> Vec<u8> {
    let body = body(t, stream);
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
pub(crate) fn closed_loop(
    t: &Target<'_>,
    stream: bool,
    conns: usize,
    dur: Duration,
) -> Result<Run> {
    measured(t, || drive(t, stream, conns, dur, None, false))
}

/// Runs a load and charges the target's processes its CPU and context
/// switches.
fn measured(t: &Target<'_>, load: impl FnOnce() -> Result<(Vec<Duration>, u64)>) -> Result<Run> {
    let (cpu0, sw0) = (cpu_us(&t.pids), switches(&t.pids));
    let started = Instant::now();
    let (mut lat, errors) = load()?;
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_us(&t.pids).saturating_sub(cpu0);
    let sw = switches(&t.pids).saturating_sub(sw0);
    let n = lat.len();
    let per = |v: u64| (!t.pids.is_empty() && n > 0).then(|| v as f64 / n as f64);
    Ok(Run {
        rps: n as f64 / secs,
        p50: pct(&mut lat, 0.5),
        p99: pct(&mut lat, 0.99),
        errors,
        cpu_us_per_req: per(cpu),
        switches_per_req: per(sw),
    })
}

/// Open loop at `rate` requests a second over `conns` connections: the
/// latency a hop adds when it is not saturated.
/// With `ttft`, streams, and the latency is the time to the first content
/// delta.
pub(crate) fn open_loop(
    t: &Target<'_>,
    rate: u32,
    conns: usize,
    dur: Duration,
    ttft: bool,
) -> Result<Run> {
    let pace = Duration::from_secs_f64(conns as f64 / f64::from(rate));
    measured(t, || drive(t, ttft, conns, dur, Some(pace), ttft))
}
