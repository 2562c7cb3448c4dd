//! Every error in the OpenAI envelope with the right status.

use mock_upstreams::{ContainerDialect, Endpoint, Fault};
use serde_json::{Value, json};

use crate::support::{KEY, client, config, fake, post, sse_events, start};

const FAULTY: &str = r#"
[[models]]
name = "model-error"
[[models]]
name = "throttled"
[[models]]
name = "unavailable"
[[models]]
name = "internal"
[[models]]
name = "hang"
[[models]]
name = "mid-stream-error"
dialect = "tgi"
[[models]]
name = "mid-stream-failure"
[[models]]
name = "stall"
"#;

async fn faulty() -> mock_upstreams::FakeSageMaker {
    let f = fake().await;
    let with = |fault| Endpoint {
        fault,
        ..Endpoint::echo(ContainerDialect::OpenAi)
    };
    f.add(
        "model-error",
        with(Fault::ModelError {
            status: 500,
            message: "CUDA out of memory".into(),
        }),
    );
    f.add("throttled", with(Fault::Throttling));
    f.add("unavailable", with(Fault::ServiceUnavailable));
    f.add("internal", with(Fault::InternalFailure));
    f.add("hang", with(Fault::HangBeforeHeaders));
    f.add(
        "mid-stream-error",
        Endpoint {
            fault: Fault::ModelStreamErrorAfter(3),
            ..Endpoint::echo(ContainerDialect::Tgi)
        },
    );
    f.add(
        "mid-stream-failure",
        with(Fault::InternalStreamFailureAfter(2)),
    );
    f.add(
        "stall",
        Endpoint {
            reply: mock_upstreams::Reply::Endless,
            token_delay: std::time::Duration::from_secs(5),
            ..Endpoint::echo(ContainerDialect::OpenAi)
        },
    );
    f
}

/// Checks the envelope and returns the error object.
async fn error_of(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    let e = v["error"].as_object().unwrap_or_else(|| panic!("{v}"));
    for k in ["message", "type", "param", "code"] {
        assert!(e.contains_key(k), "error.{k} missing: {v}");
    }
    v["error"].clone()
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hello world again"}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn client_errors() {
    let f = faulty().await;
    let gw = start(&f.url(), &config(FAULTY), &[]);
    let c = client();
    let url = format!("{}/v1/chat/completions", gw.url);
    // Missing and wrong keys.
    let e = error_of(
        c.post(&url)
            .json(&chat("chat", false))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    assert_eq!(e["code"], "invalid_api_key");
    let e = error_of(
        c.post(&url)
            .bearer_auth("sk-wrong")
            .json(&chat("chat", false))
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    assert!(
        !e["message"].as_str().unwrap().contains("sk-wrong"),
        "never echo keys"
    );
    // Malformed JSON.
    let e = error_of(
        c.post(&url)
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body("{\"model\":")
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    assert_eq!(e["type"], "invalid_request_error");
    // A field of the wrong type names itself.
    let e = error_of(
        post(
            &gw,
            "/v1/chat/completions",
            json!({"model": "chat", "messages": "hi"}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(e["param"], "messages");
    let e = error_of(
        post(&gw, "/v1/chat/completions", json!({"model": "chat", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"})).await,
        400,
    )
    .await;
    assert_eq!(e["param"], "temperature");
    let e = error_of(
        post(&gw, "/v1/chat/completions", json!({"model": "chat", "messages": [{"role": "user", "content": "x"}], "temperature": 5})).await,
        400,
    )
    .await;
    assert_eq!(e["param"], "temperature");
    let e = error_of(
        post(
            &gw,
            "/v1/chat/completions",
            json!({"model": "chat", "messages": []}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(e["param"], "messages");
    let e = error_of(
        post(
            &gw,
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "x"}]}),
        )
        .await,
        400,
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("model"), "{e}");
    // Unknown model: 404 naming the models that exist.
    let e = error_of(
        post(&gw, "/v1/chat/completions", chat("gpt-5", false)).await,
        404,
    )
    .await;
    assert_eq!(e["code"], "model_not_found");
    assert!(e["message"].as_str().unwrap().contains("chat, tgi"), "{e}");
    // Body over the limit (65536 in the test config).
    let big = "x".repeat(70_000);
    let e = error_of(
        post(&gw, "/v1/chat/completions", chat(&big, false)).await,
        413,
    )
    .await;
    assert_eq!(e["code"], "request_too_large");
    // Unknown route.
    let e = error_of(
        c.get(format!("{}/v1/nope", gw.url)).send().await.unwrap(),
        404,
    )
    .await;
    assert_eq!(e["type"], "invalid_request_error");
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_errors_map_to_status() {
    let f = faulty().await;
    let gw = start(&f.url(), &config(FAULTY), &[]);
    for stream in [false, true] {
        // Endpoint not found: SageMaker's ValidationError, 400 with its message.
        let e = error_of(
            post(&gw, "/v1/chat/completions", chat("missing", stream)).await,
            400,
        )
        .await;
        assert!(
            e["message"].as_str().unwrap().contains("no-such-endpoint"),
            "{e}"
        );
        // An endpoint's own name is a model name too.
        let e = error_of(
            post(
                &gw,
                "/v1/chat/completions",
                chat("no-such-endpoint", stream),
            )
            .await,
            400,
        )
        .await;
        assert_eq!(e["code"], "upstream_validation_error", "{e}");
        let e = error_of(
            post(&gw, "/v1/chat/completions", chat("model-error", stream)).await,
            424,
        )
        .await;
        let m = e["message"].as_str().unwrap();
        assert!(m.contains("500") && m.contains("CUDA out of memory"), "{e}");
        let e = error_of(
            post(&gw, "/v1/chat/completions", chat("throttled", stream)).await,
            429,
        )
        .await;
        assert_eq!(e["code"], "rate_limit_exceeded");
        error_of(
            post(&gw, "/v1/chat/completions", chat("unavailable", stream)).await,
            503,
        )
        .await;
        error_of(
            post(&gw, "/v1/chat/completions", chat("internal", stream)).await,
            502,
        )
        .await;
        let e = error_of(
            post(&gw, "/v1/chat/completions", chat("hang", stream)).await,
            504,
        )
        .await;
        assert_eq!(e["code"], "upstream_timeout");
    }
}

fn last_error(ev: &[String]) -> Value {
    assert_ne!(
        ev.last().unwrap(),
        "[DONE]",
        "an error stream has no [DONE]: {ev:?}"
    );
    let v: Value = serde_json::from_str(ev.last().unwrap()).unwrap();
    let e = v["error"].as_object().unwrap_or_else(|| panic!("{v}"));
    for k in ["message", "type", "param", "code"] {
        assert!(e.contains_key(k));
    }
    v["error"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn mid_stream_errors_end_with_one_error_event() {
    let f = faulty().await;
    let gw = start(&f.url(), &config(FAULTY), &[]);
    let ev =
        sse_events(post(&gw, "/v1/chat/completions", chat("mid-stream-error", true)).await).await;
    let e = last_error(&ev);
    assert_eq!(e["message"], "Model server crashed mid-stream");
    assert_eq!(ev.iter().filter(|e| e.contains("\"error\"")).count(), 1);
    assert!(ev.len() > 2, "tokens before the error were sent: {ev:?}");
    let ev = sse_events(
        post(
            &gw,
            "/v1/chat/completions",
            chat("mid-stream-failure", true),
        )
        .await,
    )
    .await;
    assert_eq!(last_error(&ev)["code"], "internal_stream_failure");
    // A stalled stream ends with an idle-timeout event (2 s in the test config).
    let ev = sse_events(post(&gw, "/v1/chat/completions", chat("stall", true)).await).await;
    assert_eq!(last_error(&ev)["code"], "upstream_idle_timeout");
}
