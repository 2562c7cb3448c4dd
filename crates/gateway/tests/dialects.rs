//! A SageMaker stream's format is read from the stream:
//! the configured dialect shapes the request, the first record tells how to
//! read the answer, and a record no dialect reads ends the stream with an
//! error that quotes it.

use mock_upstreams::{ContainerDialect, Endpoint, Reply};
use openai_types::contract::{check_chat_sse, check_error};
use serde_json::json;

use crate::support::{config, content, fake, post, start};

const MODELS: &str = r#"
[[models]]
name = "seed-tgi"
endpoint = "container-tgi"

[[models]]
name = "seed-lmi"
endpoint = "container-lmi"

[[models]]
name = "seed-odd"
endpoint = "container-odd"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn stream_format_is_detected_whatever_is_configured() {
    let f = fake().await;
    for (name, dialect) in [
        ("container-tgi", ContainerDialect::Tgi),
        ("container-lmi", ContainerDialect::Lmi),
        ("container-odd", ContainerDialect::Unknown),
    ] {
        let mut ep = Endpoint::echo(dialect);
        ep.reply = Reply::Text("Hello from 容器 one".into());
        f.add(name, ep);
    }
    // Models configured with the default (OpenAI) dialect, as the seed's
    // variables leave them.
    let gw = start(&f.url(), &config(MODELS), &[]);
    for model in ["seed-tgi", "seed-lmi"] {
        let body = json!({"model": model, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]});
        let resp = post(&gw, "/v1/chat/completions", body).await;
        assert_eq!(resp.status(), 200, "{model}");
        let text = resp.text().await.unwrap();
        check_chat_sse(&text);
        assert!(
            text.contains(r#""finish_reason":"stop""#),
            "{model}: {text}"
        );
        let events: Vec<String> = text
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .map(str::to_owned)
            .collect();
        assert_eq!(content(&events), "Hello from 容器 one", "{model}");
    }
    // Unreadable from the first record: nothing was sent yet, so the error
    // is the response (502), and it quotes what the container sent.
    let body = json!({"model": "seed-odd", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let resp = post(&gw, "/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 502);
    let v: serde_json::Value = resp.json().await.unwrap();
    check_error(&v);
    let message = v["error"]["message"].as_str().unwrap();
    let quoted = message
        .split("the record began: ")
        .nth(1)
        .unwrap_or_else(|| panic!("the error quotes the record: {message}"));
    assert!(quoted.starts_with(r#"{"generation":{"#), "{message}");
    assert!(quoted.len() <= 200, "{} bytes quoted", quoted.len());
}
