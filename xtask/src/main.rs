//! `cargo xtask`: the project's chores, in Rust instead of shell scripts.
//!
//! * `cargo xtask test`: installs the Python packages the tests drive the
//!   gateway with, then runs every test of the workspace.
//! * `cargo xtask demo`: the fake SageMaker endpoint plus the gateway wired to
//!   it, with a ready `curl` line.
//! * `cargo xtask bench`: criterion benches plus the gateway load benchmark.
//! * `cargo xtask deploy-check`: the offline checks of `deploy/` and of
//!   the container image (alone: `cargo xtask image-check`).
//! * `cargo xtask fixtures`: rewrites the snapshots of the golden fixtures
//!   (SageMaker streams; Bedrock requests, responses and streams).
//! * `cargo xtask symbol-order`: rewrites the gateway's link order.
//! * `cargo xtask package`: packages every library crate as it would be
//!   published, and builds each package on its own.

mod bench;
mod cmd;
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

use anyhow::Result;
pub(crate) use cmd::{cargo, python, run, stop, target_dir, works};

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
            let all = "test|demo|bench|deploy-check|image-check|symbol-order|fixtures|package";
            eprintln!("usage: cargo xtask <{all}>");
            std::process::exit(2);
        }
    }
}

/// The checkout being run: `cargo run` (so `cargo xtask`) names xtask's
/// directory at run time. The path compiled in is only a fallback: cargo
/// reuses one xtask build for every checkout that shares a target
/// directory, and the compiled-in path is then another checkout's.
pub(crate) fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
