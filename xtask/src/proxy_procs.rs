//! The processes a proxy bench runs beside the load: nginx in front of the
//! fast upstream, gateways as README starts them (records on unless a run
//! turns them off; request logs at their default level, INFO, written to a
//! file in the run's directory as a container runtime takes them), and a
//! stored key made with `gateway keys create`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

/// nginx as a plain reverse proxy to `upstream`, if it is installed (or can
/// be installed with apt-get).
pub(crate) fn start_nginx(dir: &Path, upstream: SocketAddr) -> Result<Option<(Child, SocketAddr)>> {
    let have = Command::new("nginx").arg("-v").output().is_ok();
    if !have {
        eprintln!("xtask: nginx missing; trying apt-get install nginx…");
        let _ = Command::new("apt-get")
            .args(["update", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-q", "nginx"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if Command::new("nginx").arg("-v").output().is_err() {
            eprintln!("xtask: nginx is not available: its row is skipped");
            return Ok(None);
        }
    }
    let port = free_port()?;
    let conf = dir.join("nginx.conf");
    let mut f = std::fs::File::create(&conf)?;
    write!(
        f,
        "worker_processes auto;\ndaemon off;\nerror_log {dir}/nginx-error.log warn;\npid {dir}/nginx.pid;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n\
           fastcgi_temp_path {dir}/fcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
           upstream up {{ server {upstream}; keepalive 64; keepalive_requests 10000000; }}\n\
           server {{\n    listen 127.0.0.1:{port};\n    tcp_nodelay on;\n    keepalive_requests 10000000;\n    location / {{\n      proxy_pass http://up;\n\
               proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering off;\n    }}\n  }}\n}}\n",
        dir = dir.display()
    )?;
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nginx")?;
    crate::demo::wait_ready(port, Duration::from_secs(10))?;
    Ok(Some((child, SocketAddr::from(([127, 0, 0, 1], port)))))
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The gateway as README starts it, with `config` and `env`: no
/// `RUST_LOG` (INFO), its output appended to `{name}.log` in `dir`.
fn gateway_command(
    bin: &Path,
    dir: &Path,
    name: &str,
    config: &str,
    env: &[(&str, String)],
) -> Result<(Command, u16)> {
    let port = free_port()?;
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg, config.replace("PORT", &port.to_string()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))?;
    let mut c = Command::new(bin);
    c.arg("--config")
        .arg(&cfg)
        .env_remove("RUST_LOG")
        .env(
            "RECORDS_URL",
            format!(
                "sqlite://{}?mode=rwc",
                dir.join(format!("{name}.db")).display()
            ),
        )
        .stdout(log.try_clone()?)
        .stderr(log);
    for (k, v) in env {
        c.env(k, v);
    }
    Ok((c, port))
}

/// Starts the gateway (see [`gateway_command`]); returns it and its
/// address.
pub(crate) fn start_gateway(
    bin: &Path,
    dir: &Path,
    name: &str,
    config: &str,
    env: &[(&str, String)],
) -> Result<(Child, SocketAddr)> {
    let (mut c, port) = gateway_command(bin, dir, name, config, env)?;
    let child = c.spawn().context("starting the gateway")?;
    crate::demo::wait_ready(port, Duration::from_secs(30))?;
    std::thread::sleep(Duration::from_millis(300));
    Ok((child, SocketAddr::from(([127, 0, 0, 1], port))))
}

/// Starts the gateway with no AWS configuration in its environment and
/// times it from spawn to `GET /ping` answering 200 (polled every 0.2 ms).
pub(crate) fn time_to_ready(
    bin: &Path,
    dir: &Path,
    name: &str,
    config: &str,
) -> Result<(Child, Duration)> {
    use std::io::{Read as _, Write as _};
    let (mut c, port) = gateway_command(bin, dir, name, config, &[])?;
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    let t0 = std::time::Instant::now();
    let child = c.spawn().context("starting the gateway")?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while t0.elapsed() < Duration::from_secs(30) {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut head = [0u8; 12];
            if s.write_all(b"GET /ping HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n")
                .is_ok()
                && s.read_exact(&mut head).is_ok()
                && head.starts_with(b"HTTP/1.1 200")
            {
                return Ok((child, t0.elapsed()));
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    anyhow::bail!("the gateway did not answer /ping within 30 s")
}

pub(crate) const UPSTREAM_CONFIG: &str = r#"
listen = "127.0.0.1:PORT"
[auth]
keys = ["sk-bench-key"]
[[upstreams]]
name = "fast"
base_url = "UPSTREAM/v1"
models_allow = ["bench-up"]
"#;

pub(crate) const SAGEMAKER_CONFIG: &str = r#"
listen = "127.0.0.1:PORT"
[aws]
max_attempts = 1
[auth]
keys = ["sk-bench-key"]
[[models]]
name = "bench-up"
endpoint = "bench-up"
"#;

/// Creates a stored key on gateway `name`'s records store; returns its
/// secret (the gateway sees it within a second).
pub(crate) fn stored_key(bin: &Path, dir: &Path, name: &str) -> Result<String> {
    let out = Command::new(bin)
        .arg("--config")
        .arg(dir.join(format!("{name}.toml")))
        .args([
            "keys",
            "create",
            "--name",
            "bench",
            "--quota-tokens",
            "1000000000000",
            "--rpm",
            "100000000",
            "--tpm",
            "100000000000",
        ])
        .env(
            "RECORDS_URL",
            format!(
                "sqlite://{}?mode=rwc",
                dir.join(format!("{name}.db")).display()
            ),
        )
        .output()
        .context("gateway keys create")?;
    let text = String::from_utf8(out.stdout)?;
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .with_context(|| format!("no key in: {text}"))?;
    std::thread::sleep(Duration::from_millis(600));
    Ok(key.to_owned())
}
