//! The test chores: the whole suite with its Python and Node.js clients
//! installed, and the golden fixtures rewritten.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;

use crate::{cargo, python, root, target_dir};

/// `cargo xtask test`: every test of the workspace, with the clients it
/// drives installed first.
pub(crate) fn all(extra: &[String]) -> Result<()> {
    let req = root().join("tests/requirements.txt");
    let have = Command::new(python())
        .args([
            "-c",
            "import openai, anthropic, moto.server, langchain_openai, playwright",
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        eprintln!("xtask: installing {}", req.display());
        crate::run(
            Command::new(python())
                .args(["-m", "pip", "install", "-q", "-r"])
                .arg(&req),
        )?;
    }
    let node = node_clients()?;
    crate::run(
        cargo()
            .args(["test", "--workspace", "--locked"])
            .args(extra)
            .env("OAI_NODE_MODULES", node),
    )
}

/// The Node.js clients (the OpenAI and Anthropic SDKs, Claude Code), installed
/// with npm (pinned in `tests/node/package.json` and its lock file) into the
/// target directory; returns its `node_modules`.
fn node_clients() -> Result<PathBuf> {
    let dir = target_dir()?.join("tools/node-clients");
    let modules = dir.join("node_modules");
    let src = root().join("tests/node");
    let lock = std::fs::read(src.join("package-lock.json"))?;
    if std::fs::read(dir.join("package-lock.json")).ok().as_deref() != Some(lock.as_slice())
        || !modules.join("openai").exists()
        || !modules.join(".bin/claude").exists()
    {
        eprintln!(
            "xtask: installing the Node.js clients (OpenAI and Anthropic SDKs, Claude Code) into {}",
            dir.display()
        );
        std::fs::create_dir_all(&dir)?;
        for f in ["package.json", "package-lock.json"] {
            std::fs::copy(src.join(f), dir.join(f))?;
        }
        crate::run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--silent"])
                .current_dir(&dir),
        )?;
    }
    Ok(modules)
}

/// `cargo xtask fixtures`: rewrites the golden fixtures' snapshots.
pub(crate) fn fixtures() -> Result<()> {
    crate::run(
        cargo()
            .args([
                "test",
                "-p",
                "sm-stream",
                "--test",
                "integration",
                "fixtures",
            ])
            .env("UPDATE_SNAPSHOTS", "1"),
    )?;
    crate::run(
        cargo()
            .args(["test", "-p", "bedrock-converse", "--test", "integration"])
            .env("UPDATE_SNAPSHOTS", "1"),
    )?;
    eprintln!(
        "snapshots rewritten: review `git diff crates/sm-stream/test_data crates/bedrock-converse/test_data`"
    );
    Ok(())
}

/// The library crates, each publishable on its own.
pub(crate) const LIBRARIES: [&str; 6] = [
    "oai-gateway-openai-types",
    "event-frames",
    "sm-stream",
    "oai-gateway-keyauth",
    "bedrock-converse",
    "anthropic-messages",
];

/// `cargo xtask package`: each library packaged as it would be published
/// (metadata, versions on path dependencies, every file it needs) and the
/// package built from its own files.
pub(crate) fn package() -> Result<()> {
    // Verification builds each package against the others as registry
    // crates, and cargo takes a registry crate of a version it has built
    // as unchanged: an earlier run's build of these very versions would
    // stand in for today's sources. So their fingerprints go first (the
    // third-party crates stay built), and the unpacked copies too.
    let target = target_dir()?;
    let verify = target.join("package-verify");
    let prints = verify.join("debug/.fingerprint");
    if let Ok(dir) = std::fs::read_dir(&prints) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if LIBRARIES
                .iter()
                .any(|l| name.strip_prefix(l).is_some_and(|r| r.starts_with('-')))
            {
                std::fs::remove_dir_all(e.path())?;
            }
        }
    }
    let unpacked = target.join("package");
    if unpacked.exists() {
        std::fs::remove_dir_all(&unpacked)?;
    }
    let mut c = cargo();
    c.env("CARGO_TARGET_DIR", &verify);
    c.args(["package", "--locked"]);
    for l in LIBRARIES {
        c.args(["-p", l]);
    }
    crate::run(&mut c)
}
