//! `n > 1`: passed to upstreams that take it, served by
//! SageMaker and Bedrock as parallel calls merged into one answer, refused
//! above the configured maximum with the backend named.

use openai_types::contract::{check_chat_completion, check_chat_sse, check_error};
use serde_json::{Value, json};

use crate::bedrock::{fake_bedrock, start_bedrock};
use crate::support::{config, fake, post, post_json, start};
use crate::upstreams::{hi, setup};

fn ask(model: &str, n: u32, stream: bool) -> Value {
    json!({"model": model, "n": n, "stream": stream,
        "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
        "messages": [{"role": "user", "content": "pick a word"}]})
}

/// Each choice's text, by index, from an SSE body.
fn texts(sse: &str, n: usize) -> Vec<String> {
    let mut out = vec![String::new(); n];
    for data in sse.split("\n\n").filter_map(|e| e.strip_prefix("data: ")) {
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        for c in v["choices"].as_array().unwrap() {
            if let Some(t) = c["delta"]["content"].as_str() {
                out[c["index"].as_u64().unwrap() as usize].push_str(t);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn sagemaker_serves_n_as_parallel_calls() {
    let f = fake().await;
    let gw = start(&f.url(), &config(""), &[]);
    let one = post_json(&gw, "/v1/chat/completions", ask("chat", 1, false)).await;
    let v = post_json(&gw, "/v1/chat/completions", ask("chat", 3, false)).await;
    check_chat_completion(&v);
    let choices = v["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    for (i, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], i);
        assert_eq!(c["message"]["content"], "Echo: pick a word");
    }
    for k in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        assert_eq!(v["usage"][k], one["usage"][k].as_u64().unwrap() * 3, "{k}");
    }
    let calls = f.requests().iter().filter(|r| r.endpoint == "chat").count();
    assert_eq!(calls, 4, "one call, then three");

    let resp = post(&gw, "/v1/chat/completions", ask("chat", 2, true)).await;
    assert_eq!(resp.status(), 200);
    let sse = resp.text().await.unwrap();
    check_chat_sse(&sse);
    assert_eq!(texts(&sse, 2), ["Echo: pick a word", "Echo: pick a word"]);
    assert_eq!(sse.matches(r#""finish_reason":"stop""#).count(), 2, "{sse}");
    assert_eq!(
        sse.matches(r#""usage":"#).count(),
        1,
        "one usage chunk: {sse}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bedrock_serves_n_and_refuses_above_the_maximum() {
    let f = fake_bedrock().await;
    let gw = start_bedrock(&f, "").await;
    let before = f.requests().len();
    let v = post_json(&gw, "/v1/chat/completions", ask("claude", 2, false)).await;
    check_chat_completion(&v);
    assert_eq!(v["choices"].as_array().unwrap().len(), 2);
    assert_eq!(v["choices"][1]["index"], 1);
    assert_eq!(f.requests().len() - before, 2);
    let sse = post(&gw, "/v1/chat/completions", ask("claude", 2, true))
        .await
        .text()
        .await
        .unwrap();
    check_chat_sse(&sse);
    assert_eq!(texts(&sse, 2), ["Echo: pick a word", "Echo: pick a word"]);

    let r = post(&gw, "/v1/chat/completions", ask("claude", 5, false)).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    check_error(&e);
    assert_eq!(e["error"]["param"], "n");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("Bedrock") && msg.contains("up to 4"), "{msg}");
    assert!(!msg.contains("SageMaker"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn upstreams_get_n_themselves() {
    let s = setup("").await;
    let mut body = hi("gpt-4o", false);
    body["n"] = 2.into();
    let r = post(&s.gw, "/v1/chat/completions", body).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let sent = s.a.requests().pop().unwrap();
    assert_eq!(sent.json["n"], 2, "{}", sent.json);
    assert_eq!(
        s.a.count(),
        1,
        "one upstream call: the upstream makes the choices"
    );
}
