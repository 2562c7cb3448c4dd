//! A fast upstream for load benchmarks: one thread, a lean HTTP/1.1
//! keep-alive server on tokio, every answer precomputed (head and body) and
//! written in one piece, as a fast real backend would. (No hyper server:
//! its features would change how the gateway's own dependencies build.) It must be much faster than the gateway in front of
//! it, or a benchmark measures the fake.
//!
//! Routes (the request body is not parsed; a stream is asked for with
//! `"stream":true` or by the SageMaker streaming path):
//! * `POST /v1/chat/completions`: an OpenAI chat completion, or its SSE.
//! * `POST /endpoints/{name}/invocations`: the same completion, as an
//!   OpenAI-schema SageMaker container answers.
//! * `POST /endpoints/{name}/invocations-response-stream`: the SSE in
//!   event-stream `PayloadPart` frames, one per event.

use std::net::SocketAddr;

use anyhow::Result;
use bytes::Bytes;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Tokens in every answer.
pub const TOKENS: usize = 20;

/// The precomputed answers.
#[derive(Debug, Clone)]
struct Answers {
    whole: Bytes,
    sse: Bytes,
    framed: Bytes,
}

fn answers() -> Answers {
    let words: Vec<String> = (0..TOKENS).map(|i| format!("tok{i} ")).collect();
    let text: String = words.concat();
    let whole = json!({
        "id": "chatcmpl-fast", "object": "chat.completion", "created": 1, "model": "fast",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": 5, "completion_tokens": TOKENS, "total_tokens": TOKENS + 5}
    })
    .to_string();
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        json!({"id": "chatcmpl-fast", "object": "chat.completion.chunk", "created": 1, "model": "fast",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]})
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        json!(null),
    )];
    events.extend(
        words
            .iter()
            .map(|w| chunk(json!({"content": w}), json!(null))),
    );
    events.push(chunk(json!({}), json!("stop")));
    events.push(json!({"id": "chatcmpl-fast", "object": "chat.completion.chunk", "created": 1, "model": "fast",
        "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": TOKENS, "total_tokens": TOKENS + 5}}));
    let mut sse = String::new();
    let mut framed = Vec::new();
    for e in &events {
        let event = format!("data: {e}\n\n");
        framed.extend(sm_stream::frame::encode::payload_part(event.as_bytes()));
        sse.push_str(&event);
    }
    sse.push_str("data: [DONE]\n\n");
    framed.extend(sm_stream::frame::encode::payload_part(b"data: [DONE]\n\n"));
    let response = |ctype: &str, extra: &str, body: &[u8]| {
        let mut r = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\n{extra}content-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        Bytes::from(r)
    };
    Answers {
        whole: response("application/json", "", whole.as_bytes()),
        sse: response("text/event-stream", "", sse.as_bytes()),
        framed: response(
            "application/vnd.amazon.eventstream",
            "x-amzn-sagemaker-content-type: application/json\r\n",
            &framed,
        ),
    }
}

/// SSE events in a streamed answer (role, tokens, finish, usage, `[DONE]`).
pub const STREAM_EVENTS: usize = TOKENS + 4;

/// The fast upstream, on its own thread. Dropping it stops it.
#[derive(Debug)]
pub struct FastUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for FastUpstream {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl FastUpstream {
    /// Starts it on a loopback port.
    pub fn start() -> Result<Self> {
        Self::start_with_delay(std::time::Duration::ZERO)
    }

    /// Starts it on a loopback port, each answer held for `delay` first (a
    /// model's time to answer: the latency a hop adds is then measured
    /// beside it, with many requests in flight).
    pub fn start_with_delay(delay: std::time::Duration) -> Result<Self> {
        // A backlog of 2048, as the gateway's: std's 128 overflows when
        // hundreds of connections open at once, and the overflow waits out
        // a SYN retry (a second), which a benchmark would count.
        let s = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
        s.listen(2048)?;
        let listener: std::net::TcpListener = s.into();
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fast-upstream".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(_) => return,
                };
                rt.block_on(serve(listener, stopped, delay));
            })?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn serve(
    listener: std::net::TcpListener,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
    delay: std::time::Duration,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let a = answers();
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            r = listener.accept() => r,
        };
        let Ok((sock, _)) = accepted else {
            continue;
        };
        let _ = sock.set_nodelay(true);
        tokio::task::spawn(connection(sock, a.clone(), delay));
    }
}

/// Serves one keep-alive connection: reads a request (head, then
/// `Content-Length` bytes of body), writes its precomputed answer.
async fn connection(mut sock: tokio::net::TcpStream, a: Answers, delay: std::time::Duration) {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    loop {
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let mut tmp = [0u8; 16 * 1024];
            match sock.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut tmp = [0u8; 16 * 1024];
            match sock.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
        let path = head.split(' ').nth(1).unwrap_or("");
        let body = &buf[head_end..head_end + len];
        let answer = if path.ends_with("/invocations-response-stream") {
            &a.framed
        } else if path.ends_with("/invocations") || !memchr_stream(body) {
            &a.whole
        } else {
            &a.sse
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if sock.write_all(answer).await.is_err() {
            return;
        }
        buf.drain(..head_end + len);
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Whether a JSON body asks for a stream (`"stream":true`, spaced or not).
fn memchr_stream(body: &[u8]) -> bool {
    body.windows(8).enumerate().any(|(i, w)| {
        w == b"\"stream\"" && {
            let rest = &body[i + 8..];
            let rest = rest
                .iter()
                .skip_while(|c| c.is_ascii_whitespace() || **c == b':')
                .copied()
                .take(4)
                .collect::<Vec<u8>>();
            rest == b"true"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_requests_are_recognized() {
        assert!(memchr_stream(br#"{"model":"m","stream":true}"#));
        assert!(memchr_stream(br#"{"stream" : true}"#));
        assert!(!memchr_stream(br#"{"stream":false}"#));
        assert!(!memchr_stream(br#"{"model":"m"}"#));
    }

    #[test]
    fn the_answers_are_well_formed() {
        let a = answers();
        let body = |r: &Bytes| {
            let i = find(r, b"\r\n\r\n").unwrap() + 4;
            r.slice(i..)
        };
        let (whole, sse, framed) = (body(&a.whole), body(&a.sse), body(&a.framed));
        let v: serde_json::Value = serde_json::from_slice(&whole).unwrap();
        assert_eq!(v["usage"]["completion_tokens"], TOKENS);
        let text = std::str::from_utf8(&sse).unwrap();
        assert_eq!(text.matches("data: ").count(), STREAM_EVENTS);
        assert!(text.ends_with("data: [DONE]\n\n"));
        let mut d = sm_stream::frame::FrameDecoder::new();
        d.push(&framed);
        let mut n = 0;
        while let Some(_ev) = d.next_event().unwrap() {
            n += 1;
        }
        assert_eq!(n, STREAM_EVENTS);
    }
}
