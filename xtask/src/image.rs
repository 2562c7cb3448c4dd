//! The container image, checked without a Docker engine (part of `cargo
//! xtask deploy-check`; alone: `cargo xtask image-check`). The Dockerfile's
//! build stage assembles the image's file system with
//! `deploy/image/rootfs.sh`; this runs the same script on the release
//! binary, carries out the runtime stage's instructions itself (`COPY
//! --from=build` with its `--chown`, `ENV`, `WORKDIR`, `USER`, `ENTRYPOINT`,
//! `HEALTHCHECK`), and starts the gateway inside that file system and
//! nothing else: its own root (`unshare --root`), PID 1 of its own PID
//! namespace with a fresh `/proc`, the image's user, the image's
//! environment only. It must answer `/ping` and its own health check, serve
//! a SageMaker chat, a Bedrock chat through the AWS SDK and token-id
//! embeddings, stop on SIGTERM with status 0 and leave its records in its
//! home. The image must hold the CA bundle the SDK's TLS trusts (the fakes
//! speak plain HTTP, so no handshake checks it). The image's size (every
//! file, and as a gzip'd tar, as a registry stores a layer) is printed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

/// Where the Dockerfile's build stage writes the script's output.
const BUILD_OUT: &str = "/image";

/// The runtime stage's instructions this check carries out.
#[derive(Debug, Default)]
struct Runtime {
    copies: Vec<CopyFrom>,
    env: Vec<(String, String)>,
    workdir: String,
    user: (u32, u32),
    entrypoint: Vec<String>,
    healthcheck: Vec<String>,
}

/// `COPY --from=build [--chown=U:G] <src> <dst>`.
#[derive(Debug)]
struct CopyFrom {
    chown: Option<(u32, u32)>,
    src: String,
    dst: String,
}

fn ids(s: &str) -> Result<(u32, u32)> {
    let (u, g) = s.split_once(':').unwrap_or((s, s));
    Ok((
        u.parse()
            .with_context(|| format!("uid {u:?}: numeric only"))?,
        g.parse()
            .with_context(|| format!("gid {g:?}: numeric only"))?,
    ))
}

/// The Dockerfile's instructions, their lines joined where they end in
/// `\`, comments left out.
fn instructions(dockerfile: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut open = false;
    for raw in dockerfile.lines() {
        let t = raw.trim();
        if t.starts_with('#') || (t.is_empty() && !open) {
            continue;
        }
        let (body, cont) = match t.strip_suffix('\\') {
            Some(b) => (b.trim_end(), true),
            None => (t, false),
        };
        match (open, lines.last_mut()) {
            (true, Some(last)) => {
                last.push(' ');
                last.push_str(body);
            }
            _ => lines.push(body.to_owned()),
        }
        open = cont;
    }
    lines
}

/// The instructions of the stage `FROM … AS <name>`, up to the next `FROM`.
fn stage<'a>(lines: &'a [String], name: &str) -> Result<&'a [String]> {
    let start = lines
        .iter()
        .position(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() == 4 && w[0] == "FROM" && w[2].eq_ignore_ascii_case("AS") && w[3] == name
        })
        .with_context(|| format!("the Dockerfile has no `FROM … AS {name}` stage"))?;
    let rest = &lines[start + 1..];
    let end = rest
        .iter()
        .position(|l| l.starts_with("FROM "))
        .unwrap_or(rest.len());
    Ok(&rest[..end])
}

/// The cargo command of the build stage's `RUN` (the part before its
/// first `&&`): what this check builds the image's gateway with, as the
/// Dockerfile does, its arguments after `cargo`.
fn build_command(lines: &[String]) -> Result<Vec<String>> {
    let run = stage(lines, "build")?
        .iter()
        .find_map(|l| l.strip_prefix("RUN cargo "))
        .context("the build stage has no `RUN cargo …`")?;
    let args: Vec<String> = run
        .split("&&")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    ensure!(
        args.iter().any(|a| a == "--release"),
        "the build stage's cargo command builds no release binary: {run}"
    );
    Ok(args)
}

/// The Dockerfile's stage `FROM … AS runtime`.
fn runtime_stage(lines: &[String]) -> Result<Runtime> {
    let mut rt = Runtime::default();
    for l in stage(lines, "runtime")? {
        let (op, rest) = l.split_once(' ').unwrap_or((l, ""));
        match op {
            "COPY" => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let mut chown = None;
                let mut from = false;
                let mut paths = Vec::new();
                for w in words {
                    if let Some(v) = w.strip_prefix("--chown=") {
                        chown = Some(ids(v)?);
                    } else if w == "--from=build" {
                        from = true;
                    } else {
                        paths.push(w);
                    }
                }
                ensure!(from && paths.len() == 2, "unexpected COPY: {l}");
                rt.copies.push(CopyFrom {
                    chown,
                    src: paths[0].to_owned(),
                    dst: paths[1].to_owned(),
                });
            }
            "ENV" => {
                for kv in rest.split_whitespace() {
                    let (k, v) = kv.split_once('=').context("ENV takes K=V")?;
                    rt.env.push((k.to_owned(), v.to_owned()));
                }
            }
            "WORKDIR" => rt.workdir = rest.trim().to_owned(),
            "USER" => rt.user = ids(rest.trim())?,
            "ENTRYPOINT" => rt.entrypoint = serde_json::from_str(rest)?,
            "HEALTHCHECK" => {
                let cmd = rest
                    .split_once("CMD ")
                    .context("HEALTHCHECK without CMD")?
                    .1;
                rt.healthcheck = serde_json::from_str(cmd)?;
            }
            _ => {}
        }
    }
    ensure!(
        !rt.copies.is_empty() && !rt.entrypoint.is_empty(),
        "the runtime stage copies nothing or has no ENTRYPOINT"
    );
    Ok(rt)
}

/// `COPY --from=build <src> <dst>`: the contents of `src` (under the build
/// stage's [`BUILD_OUT`], here `out`) into `dst` of the image, owned by
/// `--chown`'s ids or by root.
fn copy(c: &CopyFrom, out: &Path, fs: &Path) -> Result<()> {
    let rel = c
        .src
        .strip_prefix(BUILD_OUT)
        .with_context(|| format!("COPY from outside {BUILD_OUT}: {}", c.src))?;
    let src = out.join(rel.trim_start_matches('/'));
    let dst = fs.join(c.dst.trim_start_matches('/'));
    std::fs::create_dir_all(&dst)?;
    crate::run(Command::new("cp").arg("-a").arg(src.join(".")).arg(&dst))?;
    let (u, g) = c.chown.unwrap_or((0, 0));
    for entry in std::fs::read_dir(&src)? {
        let name = entry?.file_name();
        crate::run(
            Command::new("chown")
                .arg("-R")
                .arg(format!("{u}:{g}"))
                .arg(dst.join(name)),
        )?;
    }
    Ok(())
}

/// Bytes of every regular file under `dir`.
fn file_bytes(dir: &Path) -> Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            n += file_bytes(&e.path())?;
        } else if t.is_file() {
            n += e.metadata()?.len();
        }
    }
    Ok(n)
}

/// The gateway inside the image's file system, as a container runtime
/// starts it: `args` after the ENTRYPOINT, the image's environment and
/// `extra`, nothing of this process's.
fn in_image(fs: &Path, rt: &Runtime, args: &[&str], extra: &[(&str, String)]) -> Command {
    let mut c = Command::new("unshare");
    c.arg("--pid")
        .arg("--fork")
        .arg(format!("--root={}", fs.display()))
        // Mounted after the change of root: the image's own /proc.
        .arg("--mount-proc=/proc")
        .arg(format!("--wd={}", rt.workdir))
        .arg(format!("--setuid={}", rt.user.0))
        .arg(format!("--setgid={}", rt.user.1))
        .args(&rt.entrypoint)
        .args(args)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", &rt.workdir);
    for (k, v) in &rt.env {
        c.env(k, v);
    }
    for (k, v) in extra {
        c.env(k, v);
    }
    c
}

/// The direct child of `pid` (the gateway under `unshare --fork`).
fn child_of(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub(crate) fn check() -> Result<()> {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:\t0\t")));
    if !is_root || !crate::works("unshare", &["--pid", "--fork", "true"]) {
        if std::env::var_os("CI").is_some() {
            bail!("the image check needs root and unshare(1)");
        }
        eprintln!("xtask: the image check needs root and unshare(1); skipped here");
        return Ok(());
    }
    let root = crate::root();
    let dockerfile = instructions(&std::fs::read_to_string(root.join("Dockerfile"))?);
    let rt = runtime_stage(&dockerfile)?;
    // The build stage's own command: the image's binary is linked for the
    // image (see the Dockerfile), so the one `cargo build` leaves is not it.
    let build = build_command(&dockerfile)?;
    eprintln!("xtask: image: cargo {}", build.join(" "));
    crate::run(crate::cargo().args(&build))?;
    let bin = crate::target_dir()?.join("release/gateway");
    let work = crate::target_dir()?.join("image-check");
    let (out, fs) = (work.join("build"), work.join("fs"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&fs)?;
    // The build stage's RUN, then the runtime stage's COPYs.
    crate::run(
        Command::new("sh")
            .arg(root.join("deploy/image/rootfs.sh"))
            .arg(&bin)
            .arg(&out),
    )?;
    for c in &rt.copies {
        copy(c, &out, &fs)?;
    }
    // The AWS SDK's TLS trusts the system's CA bundle (rustls-native-certs
    // looks here first on Debian's layout); the fakes below speak plain
    // HTTP, so its presence is checked here, not by a handshake.
    let bundle = std::fs::read_to_string(fs.join("etc/ssl/certs/ca-certificates.crt"))
        .context("the image has no CA bundle at /etc/ssl/certs/ca-certificates.crt")?;
    let certs = bundle.matches("-----BEGIN CERTIFICATE-----").count();
    ensure!(
        certs >= 100,
        "the image's CA bundle holds {certs} certificates"
    );
    let bytes = file_bytes(&fs)?;
    let tar = Command::new("sh")
        .arg("-c")
        .arg("tar -C \"$1\" --numeric-owner -c . | gzip -6 | wc -c")
        .arg("sh")
        .arg(&fs)
        .output()?;
    let gz: u64 = String::from_utf8_lossy(&tar.stdout).trim().parse()?;
    let gw = std::fs::metadata(fs.join(rt.entrypoint[0].trim_start_matches('/')))?.len();
    println!(
        "image: {:.1} MB in files ({:.1} MB the gateway binary), {:.1} MB as a gzip'd layer",
        bytes as f64 / 1e6,
        gw as f64 / 1e6,
        gz as f64 / 1e6
    );
    // ThinLTO names some functions with a suffix that moves when the code
    // around them changes; those the binary no longer has are not ordered.
    let listed = std::fs::read_to_string(root.join("crates/gateway/symbol-order.txt"))?;
    let nm = Command::new("nm")
        .arg("--defined-only")
        .arg(&bin)
        .output()?;
    let nm = String::from_utf8_lossy(&nm.stdout);
    let have: std::collections::HashSet<&str> = nm
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let found = listed.lines().filter(|n| have.contains(n)).count();
    let total = listed.lines().count();
    println!(
        "symbol order: {found} of {total} listed functions are in the binary (rerun `cargo xtask symbol-order` when this falls)"
    );
    // What a container runtime adds: a mount point for /proc, the config
    // a deployment mounts.
    std::fs::create_dir_all(fs.join("proc"))?;
    std::fs::create_dir_all(fs.join("config"))?;
    std::fs::write(fs.join("config/demo.toml"), crate::demo::DEMO_CONFIG)?;
    run_inside(&fs, &rt)?;
    // A list this stale costs idle RSS (the start's code scattered again:
    // 13.5 -> 15.7 MB with 5 % of the names gone, ~21 MB with none). A change
    // of dependencies or features renames every function below it.
    let ordered = cfg!(all(target_arch = "x86_64", target_os = "linux"))
        && std::env::var("GATEWAY_SYMBOL_ORDER").as_deref() != Ok("0");
    if ordered && found * 10 < total * 9 {
        bail!(
            "only {found} of {total} names in crates/gateway/symbol-order.txt are in the binary: run `cargo xtask symbol-order` and commit the list"
        );
    }
    Ok(())
}

fn run_inside(fs: &Path, rt: &Runtime) -> Result<()> {
    let tokio_rt = tokio::runtime::Runtime::new()?;
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let fake = tokio_rt.block_on(mock_upstreams::demo::fake_sagemaker_on(local))?;
    let bedrock = tokio_rt.block_on(mock_upstreams::demo::fake_bedrock_on(local))?;
    let port = crate::proxy_procs::free_port()?;
    let env = [("PORT", port.to_string())];
    let mut cmd = in_image(fs, rt, &["--config", "/config/demo.toml"], &env);
    crate::demo::demo_env(&mut cmd, &fake.url(), &bedrock.url());
    let log = std::fs::File::create(fs.parent().unwrap_or(fs).join("gateway.log"))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting the gateway in the image")?;
    let result = tokio_rt.block_on(exercise(fs, rt, port, &fake.url(), &bedrock.url()));
    // SIGTERM to the gateway (PID 1 of its namespace), as `docker stop`.
    let stopped =
        child_of(child.id()).and_then(|pid| crate::stop(&mut child, pid, Duration::from_secs(15)));
    if stopped.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let log = std::fs::read_to_string(fs.parent().unwrap_or(fs).join("gateway.log"))?;
    result.with_context(|| format!("the gateway's output:\n{log}"))?;
    match stopped {
        Some(s) if s.success() => {}
        other => bail!("the gateway did not stop on SIGTERM with status 0 ({other:?}):\n{log}"),
    }
    let db = fs.join(format!(
        "{}/gateway-records.db",
        rt.workdir.trim_start_matches('/')
    ));
    let meta = std::fs::metadata(&db)
        .with_context(|| format!("no records file at {}:\n{log}", db.display()))?;
    {
        use std::os::unix::fs::MetadataExt as _;
        ensure!(
            meta.len() > 0 && meta.uid() == rt.user.0,
            "records file {} bytes, uid {}",
            meta.len(),
            meta.uid()
        );
    }
    println!(
        "image: the gateway ran inside it (ping, health check, SageMaker, Bedrock, token-id embeddings, SIGTERM, records)"
    );
    Ok(())
}

async fn exercise(fs: &Path, rt: &Runtime, port: u16, fake: &str, bedrock: &str) -> Result<()> {
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?;
    crate::demo::wait_ready(port, Duration::from_secs(30))?;
    let ping = http.get(format!("{base}/ping")).send().await?.status();
    ensure!(ping.is_success(), "/ping: {ping}");
    // HEALTHCHECK runs its command inside the running container.
    let hc: Vec<&str> = rt.healthcheck.iter().skip(1).map(String::as_str).collect();
    let env = [("PORT", port.to_string())];
    let mut cmd = in_image(fs, rt, &hc, &env);
    crate::demo::demo_env(&mut cmd, fake, bedrock);
    let hc = cmd.output()?;
    ensure!(
        hc.status.success(),
        "HEALTHCHECK failed: {}",
        String::from_utf8_lossy(&hc.stderr)
    );
    let key = format!("Bearer {}", crate::demo::DEMO_KEY);
    for model in ["demo-chat", "demo-claude"] {
        let r = http
            .post(format!("{base}/v1/chat/completions"))
            .header("authorization", &key)
            .json(&serde_json::json!({"model": model, "messages": [{"role": "user", "content": "Hello"}]}))
            .send()
            .await?;
        let status = r.status();
        let v: serde_json::Value = r.json().await?;
        let text = v["choices"][0]["message"]["content"].as_str().unwrap_or("");
        ensure!(
            status.is_success() && !text.is_empty(),
            "{model}: {status} {v}"
        );
    }
    // Token ids (LangChain's default) are decoded with the vocabulary the
    // binary carries.
    let r = http
        .post(format!("{base}/v1/embeddings"))
        .header("authorization", &key)
        .json(&serde_json::json!({"model": "demo-embed", "input": [[9906, 11, 1917, 0]]}))
        .send()
        .await?;
    let status = r.status();
    let v: serde_json::Value = r.json().await?;
    ensure!(
        status.is_success() && v["data"][0]["embedding"].is_array(),
        "embeddings: {status} {v}"
    );
    Ok(())
}
