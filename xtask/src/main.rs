//! `cargo xtask`: the project's chores, in Rust instead of shell scripts.
//!
//! * `cargo xtask test`: installs the Python packages the tests drive the
//!   gateway with, then runs every test of the workspace.
//! * `cargo xtask demo`: the fake SageMaker endpoint plus the gateway wired to
//!   it, with a ready `curl` line.
//! * `cargo xtask bench`: criterion benches plus the gateway load benchmark.
//! * `cargo xtask deploy-check`: the offline checks of `deploy/` (compose,
//!   Helm, ECS, CloudFormation).
//! * `cargo xtask fixtures`: rewrites the snapshots of the golden fixtures
//!   (SageMaker streams; Bedrock requests, responses and streams).

mod bench;
mod demo;
mod deploy;
mod proxy;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default().to_vec();
    match args.first().map(String::as_str) {
        Some("test") => test(&rest),
        Some("demo") => demo::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("fixtures") => fixtures(),
        Some("deploy-check") => deploy::run(),
        _ => {
            eprintln!("usage: cargo xtask <test|demo|bench|deploy-check|fixtures>");
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

fn test(extra: &[String]) -> Result<()> {
    let req = root().join("tests/requirements.txt");
    let have = Command::new(python())
        .args([
            "-c",
            "import openai, moto.server, langchain_openai, playwright",
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        eprintln!("xtask: installing {}", req.display());
        run(Command::new(python())
            .args(["-m", "pip", "install", "-q", "-r"])
            .arg(&req))?;
    }
    let node = node_clients()?;
    run(cargo()
        .args(["test", "--workspace", "--locked"])
        .args(extra)
        .env("OAI_NODE_MODULES", node))
}

/// The official OpenAI SDK for Node.js, installed with npm (pinned in
/// `tests/node/package.json` and its lock file) into the target directory;
/// returns its `node_modules`.
fn node_clients() -> Result<PathBuf> {
    let dir = target_dir()?.join("tools/node-clients");
    let modules = dir.join("node_modules");
    let src = root().join("tests/node");
    let lock = std::fs::read(src.join("package-lock.json"))?;
    if std::fs::read(dir.join("package-lock.json")).ok().as_deref() != Some(lock.as_slice())
        || !modules.join("openai").exists()
    {
        eprintln!(
            "xtask: installing the Node.js OpenAI SDK into {}",
            dir.display()
        );
        std::fs::create_dir_all(&dir)?;
        for f in ["package.json", "package-lock.json"] {
            std::fs::copy(src.join(f), dir.join(f))?;
        }
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir))?;
    }
    Ok(modules)
}

fn fixtures() -> Result<()> {
    run(cargo()
        .args([
            "test",
            "-p",
            "sm-stream",
            "--test",
            "integration",
            "fixtures",
        ])
        .env("UPDATE_SNAPSHOTS", "1"))?;
    run(cargo()
        .args(["test", "-p", "bedrock-converse", "--test", "integration"])
        .env("UPDATE_SNAPSHOTS", "1"))?;
    eprintln!(
        "snapshots rewritten: review `git diff crates/sm-stream/test_data crates/bedrock-converse/test_data`"
    );
    Ok(())
}
