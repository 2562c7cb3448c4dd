//! `cargo xtask bench`: the gateway as a hop, beside a plain reverse
//! proxy (nginx) in the same run, in front of an upstream much faster than
//! either (`mock_upstreams::FastUpstream`, one thread, precomputed
//! answers). Every gateway runs as README starts it: request logs on at
//! their default level (INFO, JSON), written to a file as a container
//! runtime takes them, records on (but where a row says otherwise),
//! unpinned. Every load figure is measured twice, by the bench's own
//! generator (`loadgen.rs`) and by `wrk` (`wrk.rs`), with the CPU and the
//! context switches each run cost the target's processes.
//!
//! Tables: saturation over `conns` connections; the cost at a fixed rate
//! (2,000 req/s, where a saturated hop's batching no longer hides it) and
//! the latency added at 500 req/s; an upstream that takes 20 ms, at 16 and
//! 256 connections; footprint and start.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use anyhow::Result;
use mock_upstreams::{FastUpstream, STREAM_EVENTS};

use crate::loadgen::{KEY, Run, Target, body, closed_loop, open_loop};
use crate::measure::{family, rss_kib};
use crate::proxy_procs::{
    SAGEMAKER_CONFIG, UPSTREAM_CONFIG, start_gateway, start_nginx, stored_key, time_to_ready,
};
use crate::wrk::{self, WrkRun};

/// The fixed rate at which the cost a fleet pays is measured.
const FIXED_RATE: u32 = 2000;

/// `a / b` as a ratio, `-` when either is missing.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    }
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// Both generators' figure, `ours / wrk's`.
fn pair(ours: Option<f64>, theirs: Option<f64>, digits: usize) -> String {
    format!("{} / {}", num(ours, digits), num(theirs, digits))
}

/// Runs wrk against `t` when it is available.
fn wrk_run(
    dir: &Path,
    t: &Target<'_>,
    stream: bool,
    conns: usize,
    dur: Duration,
    delay_ms: Option<(u32, u32)>,
) -> Option<WrkRun> {
    let url = format!("http://{}{}", t.addr, t.path);
    match wrk::run(
        dir,
        &url,
        &body(t, stream),
        t.auth.as_deref(),
        conns,
        dur,
        delay_ms,
        &t.pids,
    ) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("xtask: wrk against {}: {e:#}", t.name);
            None
        }
    }
}

/// Where two generators' figures part by more than 15 %.
fn disagree(what: &str, ours: Option<f64>, theirs: Option<f64>) -> Option<String> {
    let (a, b) = (ours?, theirs?);
    let r = a / b;
    (!(0.85..=1.0 / 0.85).contains(&r)).then(|| format!("{what} ours/wrk {r:.2}"))
}

/// The processes of one run and the targets over them.
struct Rig {
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Rig {
    fn drop(&mut self) {
        for c in &mut self.children {
            let pid = c.id();
            crate::stop(c, pid, Duration::from_secs(2));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the comparison and prints the tables.
pub(crate) fn run(bin: PathBuf, secs: u64, conns: usize) -> Result<()> {
    let dur = Duration::from_secs(secs);
    let use_wrk = wrk::available();
    let up = FastUpstream::start()?;
    let dir = std::env::temp_dir().join(format!("oai-gateway-proxy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut rig = Rig {
        children: Vec::new(),
        dir: dir.clone(),
    };
    let footprint = footprint(&bin, &dir, &up.url())?;
    let upstream_url = up.url();
    let upstream = UPSTREAM_CONFIG.replace("UPSTREAM", &upstream_url);
    let nginx = start_nginx(&dir, up.addr)?;
    let (g_on, a_on) = start_gateway(&bin, &dir, "records-on", &upstream, &[])?;
    let (g_off, a_off) = start_gateway(
        &bin,
        &dir,
        "records-off",
        &upstream,
        &[("RECORDS_ENABLED", "false".into())],
    )?;
    let sm_env = |sdk: bool| {
        let mut env = vec![
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "bench".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "bench".to_owned()),
            ("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", upstream_url.clone()),
        ];
        if sdk {
            env.push(("AWS_SAGEMAKER_CLIENT", "sdk".to_owned()));
        }
        env
    };
    let (g_sm, a_sm) = start_gateway(&bin, &dir, "sagemaker", SAGEMAKER_CONFIG, &sm_env(false))?;
    let (g_sdk, a_sdk) =
        start_gateway(&bin, &dir, "sagemaker-sdk", SAGEMAKER_CONFIG, &sm_env(true))?;
    // The same gateway with a stored key (a quota and per-minute limits far
    // above what the run uses), created with `gateway keys create` on its
    // records store.
    let (g_key, a_key) = start_gateway(&bin, &dir, "stored-key", &upstream, &[])?;
    let stored = stored_key(&bin, &dir, "stored-key")?;
    let gw = |name, addr, path, auth: String, pid: u32, messages| Target {
        name,
        addr,
        path,
        auth: Some(auth),
        pids: vec![pid],
        messages,
    };
    let chat = "/v1/chat/completions";
    let mut targets = vec![Target {
        name: "direct (fast upstream alone)",
        addr: up.addr,
        path: chat,
        auth: None,
        pids: Vec::new(),
        messages: false,
    }];
    if let Some((child, addr)) = &nginx {
        targets.push(Target {
            name: "nginx (plain reverse proxy)",
            addr: *addr,
            path: chat,
            auth: None,
            pids: family(child.id()),
            messages: false,
        });
    }
    let key = || KEY.to_owned();
    targets.extend([
        gw(
            "gateway, OpenAI upstream (README defaults)",
            a_on,
            chat,
            key(),
            g_on.id(),
            false,
        ),
        gw(
            "gateway, Anthropic Messages API",
            a_on,
            "/v1/messages",
            key(),
            g_on.id(),
            true,
        ),
        gw(
            "gateway, records off",
            a_off,
            chat,
            key(),
            g_off.id(),
            false,
        ),
        gw(
            "gateway, SageMaker path, signed client",
            a_sm,
            chat,
            key(),
            g_sm.id(),
            false,
        ),
        gw(
            "gateway, SageMaker path, SDK client",
            a_sdk,
            chat,
            key(),
            g_sdk.id(),
            false,
        ),
        gw(
            "gateway, stored key with quota and rpm/tpm limits",
            a_key,
            chat,
            stored,
            g_key.id(),
            false,
        ),
    ]);
    rig.children.extend([g_on, g_off, g_sm, g_sdk, g_key]);
    if let Some((child, _)) = nginx {
        rig.children.push(child);
    }
    // `BENCH_ONLY=text` (or `a|b`): only direct, nginx and the targets
    // whose name has it (to profile one with `perf record -p`, or to set
    // two side by side; each gateway's pid is printed).
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        targets.retain(|t| {
            t.pids.is_empty()
                || t.name.starts_with("nginx")
                || only.split('|').any(|o| t.name.contains(o))
        });
        for t in &targets {
            eprintln!("{}: pids {:?}", t.name, t.pids);
        }
    }
    // Warm up every target (connections, caches, the SQLite file).
    for t in &targets {
        let _ = closed_loop(t, false, conns, Duration::from_millis(500));
    }
    saturation(&dir, &targets, conns, dur, use_wrk)?;
    fixed_rate(&dir, &targets, dur, use_wrk)?;
    slow_upstream(&bin, &dir, dur)?;
    println!("\n{footprint}");
    drop(rig);
    Ok(())
}

/// Closed loop over `conns` connections, both generators.
fn saturation(
    dir: &Path,
    targets: &[Target<'_>],
    conns: usize,
    dur: Duration,
    use_wrk: bool,
) -> Result<()> {
    println!(
        "\n### Saturation: {conns} keep-alive connections, closed loop, {} s a run\n\nFast upstream: {} tokens; a stream is {STREAM_EVENTS} SSE events. Each cell is `ours / wrk`.\n",
        dur.as_secs(),
        mock_upstreams::TOKENS
    );
    println!(
        "| target | req/s | ÷ nginx | CPU µs/req | switches/req | streams/s | ÷ nginx | CPU µs/event | stream p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut nginx: Option<(Run, Option<WrkRun>, Run, Option<WrkRun>)> = None;
    for t in targets {
        let whole = closed_loop(t, false, conns, dur)?;
        let whole_wrk = use_wrk
            .then(|| wrk_run(dir, t, false, conns, dur, None))
            .flatten();
        let streamed = closed_loop(t, true, conns, dur)?;
        let streamed_wrk = use_wrk
            .then(|| wrk_run(dir, t, true, conns, dur, None))
            .flatten();
        if t.name.starts_with("nginx") {
            nginx = Some((
                whole.clone(),
                whole_wrk.clone(),
                streamed.clone(),
                streamed_wrk.clone(),
            ));
        }
        let (nw, nww, ns, nsw) = match &nginx {
            Some((a, b, c, d)) => (
                Some(a.rps),
                b.as_ref().map(|r| r.rps),
                Some(c.rps),
                d.as_ref().map(|r| r.rps),
            ),
            None => (None, None, None, None),
        };
        let ev = |c: Option<f64>| c.map(|c| c / STREAM_EVENTS as f64);
        let ww = whole_wrk.as_ref();
        let sw = streamed_wrk.as_ref();
        let mut notes: Vec<String> = [
            disagree("req/s", Some(whole.rps), ww.map(|r| r.rps)),
            disagree(
                "CPU/req",
                whole.cpu_us_per_req,
                ww.and_then(|r| r.cpu_us_per_req),
            ),
            disagree("streams/s", Some(streamed.rps), sw.map(|r| r.rps)),
            disagree(
                "CPU/event",
                streamed.cpu_us_per_req,
                sw.and_then(|r| r.cpu_us_per_req),
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        let errors = whole.errors
            + streamed.errors
            + ww.map_or(0, |r| r.errors)
            + sw.map_or(0, |r| r.errors);
        if errors > 0 {
            notes.push(format!("errors: {errors}"));
        }
        println!(
            "| {} | {} | {} / {} | {} | {} | {} | {} / {} | {} | {} |{}",
            t.name,
            pair(Some(whole.rps), ww.map(|r| r.rps), 0),
            ratio(Some(whole.rps), nw),
            ratio(ww.map(|r| r.rps), nww),
            pair(whole.cpu_us_per_req, ww.and_then(|r| r.cpu_us_per_req), 0),
            pair(
                whole.switches_per_req,
                ww.and_then(|r| r.switches_per_req),
                2
            ),
            pair(Some(streamed.rps), sw.map(|r| r.rps), 0),
            ratio(Some(streamed.rps), ns),
            ratio(sw.map(|r| r.rps), nsw),
            pair(
                ev(streamed.cpu_us_per_req),
                ev(sw.and_then(|r| r.cpu_us_per_req)),
                1
            ),
            pair(Some(streamed.p99), sw.map(|r| r.p99_ms), 2),
            if notes.is_empty() {
                String::new()
            } else {
                format!(" {}", notes.join("; "))
            }
        );
    }
    Ok(())
}

/// The cost at a fixed rate and the latency added at 500 req/s.
fn fixed_rate(dir: &Path, targets: &[Target<'_>], dur: Duration, use_wrk: bool) -> Result<()> {
    println!(
        "\n### At a fixed rate: CPU at {FIXED_RATE} req/s over 16 connections (ours: each connection on its own schedule, arrivals evenly spread; wrk: each connection pausing 7 ms after an answer, then a pause drawn from 0–14 ms), latency at 500 req/s over 8\n"
    );
    println!(
        "| target | CPU µs/req at {FIXED_RATE} req/s, ours / wrk 7 ms / wrk random (wrk's req/s) | switches/req, same three | CPU µs/event at 200 streams/s | 500 req/s p50 / p99 ms | added p50 / p99 ms | TTFT p50 at 500 streams/s, added ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut direct: Option<(Run, Run)> = None;
    for t in targets {
        let fixed = open_loop(t, FIXED_RATE, 16, dur, false)?;
        let fixed_wrk = use_wrk
            .then(|| wrk_run(dir, t, false, 16, dur, Some((7, 7))))
            .flatten();
        let random_wrk = use_wrk
            .then(|| wrk_run(dir, t, false, 16, dur, Some((0, 14))))
            .flatten();
        let streams = open_loop(t, 200, 16, dur, true)?;
        let paced = open_loop(t, 500, 8, dur, false)?;
        let first = open_loop(t, 500, 8, dur, true)?;
        let base = direct.get_or_insert_with(|| (paced.clone(), first.clone()));
        let fw = fixed_wrk.as_ref();
        let rw = random_wrk.as_ref();
        println!(
            "| {} | {} / {} ({} / {}) | {} / {} | {} | {:.3} / {:.3} | {:+.3} / {:+.3} | {:.3} ({:+.3}) |",
            t.name,
            pair(fixed.cpu_us_per_req, fw.and_then(|r| r.cpu_us_per_req), 0),
            num(rw.and_then(|r| r.cpu_us_per_req), 0),
            num(fw.map(|r| r.rps), 0),
            num(rw.map(|r| r.rps), 0),
            pair(
                fixed.switches_per_req,
                fw.and_then(|r| r.switches_per_req),
                2
            ),
            num(rw.and_then(|r| r.switches_per_req), 2),
            num(streams.cpu_us_per_req.map(|c| c / STREAM_EVENTS as f64), 1),
            paced.p50,
            paced.p99,
            paced.p50 - base.0.p50,
            paced.p99 - base.0.p99,
            first.p50,
            first.p50 - base.1.p50,
        );
    }
    Ok(())
}

/// An upstream that takes 20 ms: the latency each hop adds with 16 and
/// 256 requests in flight.
fn slow_upstream(bin: &Path, dir: &Path, dur: Duration) -> Result<()> {
    let up = FastUpstream::start_with_delay(Duration::from_millis(20))?;
    let upstream = UPSTREAM_CONFIG.replace("UPSTREAM", &up.url());
    let mut rig = Rig {
        children: Vec::new(),
        dir: dir.join("slow"),
    };
    std::fs::create_dir_all(&rig.dir)?;
    let nginx = start_nginx(&rig.dir, up.addr)?;
    let (g, a) = start_gateway(bin, &rig.dir, "slow", &upstream, &[])?;
    let mut targets = vec![Target {
        name: "direct (upstream answering in 20 ms)",
        addr: up.addr,
        path: "/v1/chat/completions",
        auth: None,
        pids: Vec::new(),
        messages: false,
    }];
    if let Some((child, addr)) = &nginx {
        targets.push(Target {
            name: "nginx",
            addr: *addr,
            path: "/v1/chat/completions",
            auth: None,
            pids: family(child.id()),
            messages: false,
        });
    }
    targets.push(Target {
        name: "gateway (README defaults)",
        addr: a,
        path: "/v1/chat/completions",
        auth: Some(KEY.into()),
        pids: vec![g.id()],
        messages: false,
    });
    rig.children.push(g);
    if let Some((child, _)) = nginx {
        rig.children.push(child);
    }
    println!("\n### An upstream that takes 20 ms: closed loop, added latency\n");
    println!(
        "| target | 16 conns req/s | p50 / p99 ms | added p50 / p99 ms | 256 conns req/s | p50 / p99 ms | added p50 / p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut base: Option<(Run, Run)> = None;
    for t in &targets {
        let _ = closed_loop(t, false, 256, Duration::from_millis(500));
        let few = closed_loop(t, false, 16, dur)?;
        let many = closed_loop(t, false, 256, dur)?;
        let (b16, b256) = base.get_or_insert_with(|| (few.clone(), many.clone()));
        println!(
            "| {} | {:.0} | {:.2} / {:.2} | {:+.2} / {:+.2} | {:.0} | {:.2} / {:.2} | {:+.2} / {:+.2} |{}",
            t.name,
            few.rps,
            few.p50,
            few.p99,
            few.p50 - b16.p50,
            few.p99 - b16.p99,
            many.rps,
            many.p50,
            many.p99,
            many.p50 - b256.p50,
            many.p99 - b256.p99,
            match few.errors + many.errors {
                0 => String::new(),
                n => format!(" errors: {n}"),
            },
        );
    }
    Ok(())
}

/// Start to `/ping` answering and idle RSS, README defaults, no AWS
/// configuration; the median of five starts.
fn footprint(bin: &Path, dir: &Path, upstream_url: &str) -> Result<String> {
    let config = UPSTREAM_CONFIG.replace("UPSTREAM", upstream_url);
    let mut starts = Vec::new();
    let mut rss = Vec::new();
    for i in 0..5 {
        let (mut child, took) = time_to_ready(bin, dir, &format!("start-{i}"), &config)?;
        starts.push(took);
        std::thread::sleep(Duration::from_millis(500));
        rss.push(rss_kib(child.id()));
        let _ = child.kill();
        let _ = child.wait();
    }
    starts.sort();
    rss.sort_unstable();
    Ok(format!(
        "### Footprint\n\nStart to `/ping` answering (median of 5, records on, no AWS configuration): {:.0} ms (fastest {:.0} ms). Idle RSS half a second after: {:.1} MB.",
        ms(starts[2]),
        ms(starts[0]),
        rss[2] as f64 / 1024.0
    ))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
