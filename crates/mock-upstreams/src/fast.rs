//! A fast upstream for load benchmarks: one thread, hyper's HTTP/1.1
//! server, every answer precomputed and written in one piece, as a fast
//! real backend would. It must be much faster than the gateway in front of
//! it, or a benchmark measures the fake.
//!
//! Routes (the request body is not parsed; a stream is asked for with
//! `"stream":true` or by the SageMaker streaming path):
//! * `POST /v1/chat/completions`: an OpenAI chat completion, or its SSE.
//! * `POST /endpoints/{name}/invocations`: the same completion, as an
//!   OpenAI-schema SageMaker container answers.
//! * `POST /endpoints/{name}/invocations-response-stream`: the SSE in
//!   event-stream `PayloadPart` frames, one per event.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::json;

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
    Answers {
        whole: Bytes::from(whole),
        sse: Bytes::from(sse),
        framed: Bytes::from(framed),
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
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
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
                rt.block_on(serve(listener, stopped));
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

async fn serve(listener: std::net::TcpListener, mut stopped: tokio::sync::oneshot::Receiver<()>) {
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
        let a = a.clone();
        tokio::task::spawn(async move {
            let svc = hyper::service::service_fn(move |req| answer(req, a.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                .await;
        });
    }
}

async fn answer(req: Request<Incoming>, a: Answers) -> Result<Response<Full<Bytes>>, Infallible> {
    use http_body_util::BodyExt;
    let path = req.uri().path().to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let respond = |ctype: &str, bytes: Bytes| {
        let mut r = Response::new(Full::new(bytes));
        if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    Ok(if path.ends_with("/invocations-response-stream") {
        let mut r = respond("application/vnd.amazon.eventstream", a.framed);
        r.headers_mut().insert(
            "x-amzn-sagemaker-content-type",
            hyper::header::HeaderValue::from_static("application/json"),
        );
        r
    } else if path.ends_with("/invocations") {
        respond("application/json", a.whole)
    } else if memchr_stream(&body) {
        respond("text/event-stream", a.sse)
    } else {
        respond("application/json", a.whole)
    })
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
        let v: serde_json::Value = serde_json::from_slice(&a.whole).unwrap();
        assert_eq!(v["usage"]["completion_tokens"], TOKENS);
        let text = std::str::from_utf8(&a.sse).unwrap();
        assert_eq!(text.matches("data: ").count(), STREAM_EVENTS);
        assert!(text.ends_with("data: [DONE]\n\n"));
        let mut d = sm_stream::frame::FrameDecoder::new();
        d.push(&a.framed);
        let mut n = 0;
        while let Some(_ev) = d.next_event().unwrap() {
            n += 1;
        }
        assert_eq!(n, STREAM_EVENTS);
    }
}
