//! An outbound proxy named by the environment carries upstream calls (the
//! gateway's own client goes straight to upstreams only when none is named).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::sync::{Arc, Mutex};

use mock_upstreams::FakeOpenAi;
use serde_json::json;

use crate::support::{config, post, start};

/// An HTTP proxy that answers every request itself (a chat completion) and
/// keeps each request's head.
fn proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let heads = Arc::clone(&seen);
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let heads = Arc::clone(&heads);
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut s = s;
                loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        head.push_str(&line);
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let len = head
                        .to_ascii_lowercase()
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: ")?.trim().parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    heads.lock().unwrap().push(head);
                    let answer = json!({
                        "id": "chatcmpl-proxy", "object": "chat.completion", "created": 1,
                        "model": "gpt-4o",
                        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                            "message": {"role": "assistant", "content": "via the proxy"}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}
                    })
                    .to_string();
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                }
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_named_by_the_environment_carries_upstream_calls() {
    let up = FakeOpenAi::start("direct").await.unwrap();
    let (proxy_url, seen) = proxy();
    let cfg = format!(
        "[[upstreams]]\nname = \"a\"\nbase_url = \"{}\"\napi_key = \"sk-up-proxied\"\nmodels_allow = [\"gpt-*\"]\n",
        up.base_url()
    );
    let gw = start(
        "http://127.0.0.1:9",
        &config(&cfg),
        &[("HTTP_PROXY", proxy_url.as_str()), ("NO_PROXY", "")],
    );
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let r = post(&gw, "/v1/chat/completions", body).await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"], "via the proxy",
        "{v}"
    );
    let heads = seen.lock().unwrap().clone();
    assert_eq!(heads.len(), 1, "{heads:?}");
    // The absolute form a proxy takes, with the upstream's own key.
    let want = format!("POST {}/chat/completions HTTP/1.1\r\n", up.base_url());
    assert!(heads[0].starts_with(&want), "{}", heads[0]);
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains("authorization: bearer sk-up-proxied"),
        "{}",
        heads[0]
    );
    assert!(up.requests().is_empty(), "the upstream was called directly");
}
