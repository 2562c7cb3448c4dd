//! The client connection as actix's HTTP/1 dispatcher sees it: a TCP stream
//! that gives the dispatcher's own bare error answers (a malformed request's
//! 400, a slow head's 408, 413, an oversized head's 431, all with an empty
//! body) the OpenAI error envelope. Everything else is written as it comes;
//! the check is one prefix comparison per write.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::rt::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A response head longer than this is never one of the dispatcher's own.
const MAX_BARE_HEAD: usize = 512;

/// The dispatcher's bare answers: status line, message, OpenAI `code`.
const BARE: &[(&[u8], &str, &str)] = &[
    (
        b" 400 Bad Request\r\n",
        "The request could not be read as HTTP/1.1",
        "invalid_request",
    ),
    (
        b" 408 Request Timeout\r\n",
        "The request head did not arrive in time",
        "request_timeout",
    ),
    (
        b" 413 Payload Too Large\r\n",
        "The request body is too large",
        "request_too_large",
    ),
    (
        b" 431 Request Header Fields Too Large\r\n",
        "The request head is too large",
        "request_header_fields_too_large",
    ),
];

/// A TCP connection whose bare error answers get a body.
#[derive(Debug)]
pub(crate) struct Conn {
    io: TcpStream,
    /// A rewritten answer being written, and how many bytes of the
    /// caller's buffer it stands for.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl Conn {
    /// Wraps an accepted stream.
    pub(crate) fn new(io: TcpStream) -> Self {
        Self { io, pending: None }
    }
}

/// The answer with a body, if `buf` is one of the dispatcher's bare ones.
pub(crate) fn with_body(buf: &[u8]) -> Option<Vec<u8>> {
    if buf.len() > MAX_BARE_HEAD || !buf.starts_with(b"HTTP/1.") || !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let line_end = memchr::memmem::find(buf, b"\r\n")? + 2;
    let (message, code) = BARE.iter().find_map(|(line, message, code)| {
        buf[..line_end].ends_with(line).then_some((*message, *code))
    })?;
    let head = &buf[line_end..];
    let empty = b"content-length: 0\r\n";
    let at = memchr::memmem::find(head, empty)?;
    if memchr::memmem::find(head, b"x-oai-upstream").is_some() {
        return None;
    }
    let body = format!(
        r#"{{"error":{{"message":"{message}","type":"invalid_request_error","param":null,"code":"{code}"}}}}"#
    );
    let mut out = Vec::with_capacity(buf.len() + body.len() + 48);
    out.extend_from_slice(&buf[..line_end]);
    out.extend_from_slice(&head[..at]);
    out.extend_from_slice(
        format!(
            "content-length: {}\r\ncontent-type: application/json\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&head[at + empty.len()..]);
    out.extend_from_slice(body.as_bytes());
    Some(out)
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pending.is_none() {
            if !buf.starts_with(b"HTTP/1.") {
                return Pin::new(&mut this.io).poll_write(cx, buf);
            }
            match with_body(buf) {
                Some(out) => this.pending = Some((out, 0, buf.len())),
                None => return Pin::new(&mut this.io).poll_write(cx, buf),
            }
        }
        let Some((out, written, stands_for)) = this.pending.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while *written < out.len() {
            match Pin::new(&mut this.io).poll_write(cx, &out[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = *stands_for;
        this.pending = None;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_dispatcher_errors_get_the_envelope() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: Tue, 01 Dec 2026 04:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(with_body(bare).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("connection: close"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "invalid_request");
        for line in ["408 Request Timeout", "431 Request Header Fields Too Large"] {
            let bare = format!("HTTP/1.1 {line}\r\ncontent-length: 0\r\n\r\n");
            assert!(with_body(bare.as_bytes()).is_some(), "{line}");
        }
    }

    #[test]
    fn everything_else_is_left_alone() {
        for other in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 55\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-oai-upstream: a\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            b"data: {\"x\": 1}\n\n",
        ] {
            assert!(
                with_body(other).is_none(),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }
}
