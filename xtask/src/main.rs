//! `cargo xtask`: the project's chores, in Rust instead of shell scripts.
//!
//! * `cargo xtask test`: installs the Python packages the tests drive the
//!   gateway with, then runs every test of the workspace.
//! * `cargo xtask demo`: the fake SageMaker endpoint plus the gateway wired to
//!   it, with a ready `curl` line.
//! * `cargo xtask bench`: criterion benches plus the gateway load benchmark.
//! * `cargo xtask deploy-check`: the offline checks of `deploy/` (compose,
//!   Helm, ECS, CloudFormation) and of the container image (`image.rs`:
//!   the Dockerfile's file system, the gateway run inside it; alone:
//!   `cargo xtask image-check`).
//! * `cargo xtask fixtures`: rewrites the snapshots of the golden fixtures
//!   (SageMaker streams; Bedrock requests, responses and streams).
//! * `cargo xtask symbol-order`: rewrites the list of functions the linker
//!   places together (those the start and the first requests run).
//! * `cargo xtask package`: packages every library crate as it would be
//!   published, and builds each package on its own.

mod bench;
mod demo;
mod deploy;
mod image;
mod loadgen;
mod measure;
mod proxy;
mod proxy_procs;
mod symbol_order;
mod test;
mod wrk;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default().to_vec();
    match args.first().map(String::as_str) {
        Some("test") => test::all(&rest),
        Some("demo") => demo::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("fixtures") => test::fixtures(),
        Some("deploy-check") => deploy::run(),
        Some("image-check") => image::check(),
        Some("symbol-order") => symbol_order::run(),
        Some("package") => test::package(),
        _ => {
            eprintln!(
                "usage: cargo xtask <test|demo|bench|deploy-check|image-check|symbol-order|fixtures|package>"
            );
            std::process::exit(2);
        }
    }
}

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// The workspace's target directory (`CARGO_TARGET_DIR` or `target/`).
pub(crate) fn target_dir() -> Result<std::path::PathBuf> {
    let out = crate::cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(v["target_directory"]
        .as_str()
        .context("no target_directory")?
        .into())
}

pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// The Python interpreter the tests use (`PYTHON`, else `python3`).
pub(crate) fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}
