//! The independent load generator of `cargo xtask bench`: `wrk`
//! (Debian's package, installed when missing), driving the same targets
//! with the same request as the bench's own generator, so that every
//! figure is measured twice, by two tools that share no code.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::measure::{cpu_us, switches};

/// What one wrk run measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct WrkRun {
    pub(crate) rps: f64,
    pub(crate) p99_ms: f64,
    pub(crate) errors: u64,
    pub(crate) cpu_us_per_req: Option<f64>,
    pub(crate) switches_per_req: Option<f64>,
}

/// Whether wrk can run, installing it with apt-get when it is missing.
pub(crate) fn available() -> bool {
    let have = || Command::new("wrk").arg("--version").output().is_ok();
    if have() {
        return true;
    }
    eprintln!("xtask: wrk missing; trying apt-get install wrk…");
    for args in [&["update", "-q"][..], &["install", "-y", "-q", "wrk"][..]] {
        let _ = Command::new("apt-get")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    if have() {
        return true;
    }
    eprintln!("xtask: wrk is not available: its columns are left empty");
    false
}

/// A Lua string literal of `s` (the request's body and headers).
fn lua_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The script: the request, an optional pause before each next request on
/// a connection (`delay_ms`: a paced load, a pause drawn at random between
/// the two bounds), and one machine-readable line at the end
/// (`WRK requests duration_us p50_us p99_us errors`).
fn script(body: &str, key: Option<&str>, delay_ms: Option<(u32, u32)>) -> String {
    let mut s = format!(
        "wrk.method = \"POST\"\nwrk.body = {}\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
        lua_str(body)
    );
    if let Some(k) = key {
        s.push_str(&format!(
            "wrk.headers[\"Authorization\"] = {}\n",
            lua_str(&format!("Bearer {k}"))
        ));
    }
    match delay_ms {
        Some((lo, hi)) if lo == hi => s.push_str(&format!("function delay() return {lo} end\n")),
        Some((lo, hi)) => s.push_str(&format!(
            "function delay() return math.random({lo}, {hi}) end\n"
        )),
        None => {}
    }
    s.push_str(
        "function done(summary, latency, requests)\n\
         local e = summary.errors\n\
         io.write(string.format(\"WRK %d %d %d %d %d\\n\", summary.requests, summary.duration, \
         latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))\n\
         end\n",
    );
    s
}

/// Runs wrk (one thread, `conns` connections, `dur`) against `url` and
/// charges `pids` the CPU and context switches of the run.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    dir: &Path,
    url: &str,
    body: &str,
    key: Option<&str>,
    conns: usize,
    dur: Duration,
    delay_ms: Option<(u32, u32)>,
    pids: &[u32],
) -> Result<WrkRun> {
    let lua = dir.join("wrk.lua");
    std::fs::write(&lua, script(body, key, delay_ms))?;
    let (cpu0, sw0) = (cpu_us(pids), switches(pids));
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{conns}"),
            &format!("-d{}s", dur.as_secs().max(1)),
        ])
        .arg("-s")
        .arg(&lua)
        .arg(url)
        .output()
        .context("running wrk")?;
    let (cpu1, sw1) = (cpu_us(pids), switches(pids));
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(line) = text.lines().find_map(|l| l.strip_prefix("WRK ")) else {
        bail!(
            "wrk printed no result: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let f: Vec<f64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let [n, us, _p50, p99, errors] = f[..] else {
        bail!("wrk's result line is not five numbers: {line}");
    };
    let done = (n - errors).max(0.0);
    Ok(WrkRun {
        rps: done / (us / 1e6),
        p99_ms: p99 / 1000.0,
        errors: errors as u64,
        cpu_us_per_req: (!pids.is_empty() && done > 0.0).then(|| (cpu1 - cpu0) as f64 / done),
        switches_per_req: (!pids.is_empty() && done > 0.0)
            .then(|| sw1.saturating_sub(sw0) as f64 / done),
    })
}
