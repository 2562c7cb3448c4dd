//! A local Secrets Manager: `moto_server` from PyPI `moto[server]`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `moto_server`, killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl MotoServer {
    /// Starts `moto_server` on a free port. Returns `None`, after saying why
    /// on stderr, when it is not installed, unless `CI` is set: CI must run
    /// every test, so there a missing server is a failure.
    pub fn start() -> Option<Self> {
        match Self::try_start() {
            Ok(s) => Some(s),
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "moto_server is required in CI: {e}"
                );
                eprintln!(
                    "SKIP: moto_server not available ({e}); `pip install 'moto[server]'` to run this test"
                );
                None
            }
        }
    }

    fn try_start() -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let mut candidates: Vec<Command> = Vec::new();
        let mut c = Command::new("moto_server");
        c.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        candidates.push(c);
        let mut c = Command::new("python3");
        c.args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ]);
        candidates.push(c);
        let mut last = String::from("not found");
        for mut cmd in candidates {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("exited with {status}");
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Ok(Self {
                        child,
                        url: format!("http://127.0.0.1:{port}"),
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(last)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
