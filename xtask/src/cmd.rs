//! Running commands: cargo as from the shell, any command with its failure
//! as an error, whether a tool is there, stopping a child.

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Cargo, as from the shell: without the package variables `cargo run`
/// gave xtask (build scripts rerun when `CARGO_MANIFEST_DIR` or
/// `CARGO_PKG_NAME` change: ring and all above it were rebuilt).
pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(crate::root());
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_PKG_") || k.starts_with("CARGO_MANIFEST_") {
            c.env_remove(k);
        }
    }
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

/// Whether `cmd args` runs and succeeds (its output captured and dropped).
pub(crate) fn works(cmd: &str, args: &[&str]) -> bool {
    let out = Command::new(cmd).args(args).output();
    out.is_ok_and(|o| o.status.success())
}

/// Stops `child` with SIGTERM sent to `pid` (the child itself, or the
/// process it runs in a namespace), SIGKILL if it is still there `grace`
/// later (SIGKILL alone left nginx's workers running: only its master
/// died). Its exit status when it ended on SIGTERM.
pub(crate) fn stop(child: &mut Child, pid: u32, grace: Duration) -> Option<ExitStatus> {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}
