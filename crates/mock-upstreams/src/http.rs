//! A deliberately small HTTP/1.1 server: enough for the AWS SDK's requests,
//! with full control over when bytes are written and when a close is seen.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Locks a mutex, ignoring poisoning (a panicking test thread must not wedge
/// the fake).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a fake does with one request: answer it on `w` (reading more of the
/// connection from `r` if it wants to notice a close) and say whether the
/// connection may be reused.
pub(crate) trait Handler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        req: &'a Request,
        r: &'a mut BufReader<OwnedReadHalf>,
        w: &'a mut OwnedWriteHalf,
    ) -> Pin<Box<dyn Future<Output = Result<bool>> + Send + 'a>>;
}

/// A listening fake: accepts connections (with `TCP_NODELAY`) and serves
/// keep-alive requests to its handler. Dropping it stops accepting.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Binds `addr` and serves in the current tokio runtime.
    pub(crate) async fn start<H: Handler>(addr: SocketAddr, handler: Arc<H>) -> Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let _ = sock.set_nodelay(true);
                let h = Arc::clone(&handler);
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut r = BufReader::new(r);
                    while let Ok(Some(req)) = read_request(&mut r).await {
                        if !matches!(h.handle(&req, &mut r, &mut w).await, Ok(true)) {
                            break;
                        }
                    }
                });
            }
        });
        Ok(Self { addr, task })
    }
}

/// One parsed request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: Vec<u8>,
}

/// Reads one request; `Ok(None)` when the client closed the connection.
pub(crate) async fn read_request(r: &mut BufReader<OwnedReadHalf>) -> Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().context("no method")?.to_owned();
    let path = parts.next().context("no path")?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).await? == 0 {
            bail!("eof in headers");
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let mut body = Vec::new();
    if let Some(n) = headers.get("content-length") {
        let n: usize = n.parse()?;
        body.resize(n, 0);
        r.read_exact(&mut body).await?;
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).await?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

/// Writes a complete response with a `Content-Length`, in one write.
pub(crate) async fn write_full(
    w: &mut OwnedWriteHalf,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<()> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    w.write_all(&bytes).await?;
    Ok(())
}

/// Writes the head of a chunked response.
pub(crate) async fn write_chunked_head(
    w: &mut OwnedWriteHalf,
    status: u16,
    headers: &[(&str, String)],
) -> Result<()> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("transfer-encoding: chunked\r\n\r\n");
    w.write_all(out.as_bytes()).await?;
    Ok(())
}

/// Writes one chunk of a chunked body (an empty `data` ends the body).
pub(crate) async fn write_chunk(w: &mut OwnedWriteHalf, data: &[u8]) -> Result<()> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    w.write_all(&out).await?;
    w.flush().await?;
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        424 => "Failed Dependency",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Percent-decodes a path segment (lossy).
pub(crate) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = (b[i] == b'%' && i + 2 < b.len())
            .then(|| hex(b[i + 1]).zip(hex(b[i + 2])))
            .flatten();
        if let Some((h, l)) = escaped {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
