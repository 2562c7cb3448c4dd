//! The happy paths: each dialect, streaming and not; models; health.

use serde_json::{Value, json};

use crate::support::{
    KEY, client, config, content, fake, get_json, post, post_json, sse_events, start,
};

#[tokio::test(flavor = "multi_thread")]
async fn non_streaming_chat_per_dialect() {
    let f = fake().await;
    let gw = start(&f.url(), &config(""), &[]);
    for model in ["chat", "tgi", "lmi"] {
        let r = post(
            &gw,
            "/v1/chat/completions",
            json!({
                "model": model, "messages": [{"role": "user", "content": "你好 there"}]
            }),
        )
        .await;
        assert_eq!(r.status(), 200, "{model}");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert!(
            r.headers().get("content-length").is_some(),
            "one write with its length"
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], model);
        assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
        let c = &v["choices"][0];
        let msg = c["message"].as_object().unwrap();
        assert!(
            msg["content"].as_str().unwrap().contains("你好 there"),
            "{model}: {v}"
        );
        assert!(msg.contains_key("refusal") && msg["refusal"].is_null());
        assert!(c.as_object().unwrap().contains_key("logprobs") && c["logprobs"].is_null());
        assert_eq!(c["finish_reason"], "stop");
        let u = &v["usage"];
        assert_eq!(
            u["total_tokens"].as_u64().unwrap(),
            u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
        );
    }
    // The TGI container got a rendered prompt and generate parameters.
    let req = f
        .requests()
        .into_iter()
        .find(|r| r.endpoint == "tgi")
        .unwrap();
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert!(
        body["inputs"]
            .as_str()
            .unwrap()
            .contains("<|im_start|>user\n你好 there<|im_end|>")
    );
    assert_eq!(body["parameters"]["details"], true);
    assert!(
        req.headers["authorization"].starts_with("AWS4-HMAC-SHA256"),
        "SigV4-signed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn streaming_chat_per_dialect_with_usage() {
    let f = fake().await;
    let gw = start(&f.url(), &config(""), &[]);
    for model in ["chat", "tgi", "lmi"] {
        let r = post(
            &gw,
            "/v1/chat/completions",
            json!({
                "model": model, "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": "日本語とEnglish"}]
            }),
        )
        .await;
        let ev = sse_events(r).await;
        assert_eq!(ev.last().unwrap(), "[DONE]", "{model}");
        assert!(content(&ev).contains("日本語とEnglish"), "{model}: {ev:?}");
        let usage: Value = serde_json::from_str(&ev[ev.len() - 2]).unwrap();
        assert_eq!(usage["choices"].as_array().unwrap().len(), 0);
        assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
        let first: Value = serde_json::from_str(&ev[0]).unwrap();
        assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
        for e in &ev[..ev.len() - 1] {
            let v: Value = serde_json::from_str(e).unwrap();
            assert_eq!(v["id"], first["id"]);
            assert_eq!(v["created"], first["created"]);
            for c in v["choices"].as_array().unwrap() {
                assert!(c.as_object().unwrap().contains_key("finish_reason"));
            }
        }
    }
    // Upstream OpenAI containers are asked for usage.
    let req = f
        .requests()
        .into_iter()
        .find(|r| r.endpoint == "chat" && r.stream)
        .unwrap();
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn reasoning_is_split_and_cjk_survives_tiny_parts() {
    let f = fake().await;
    let gw = start(&f.url(), &config(""), &[]);
    let ev = sse_events(
        post(
            &gw,
            "/v1/chat/completions",
            json!({
                "model": "r1", "stream": true, "messages": [{"role": "user", "content": "hi"}]
            }),
        )
        .await,
    )
    .await;
    let mut reasoning = String::new();
    for e in &ev[..ev.len() - 1] {
        let v: Value = serde_json::from_str(e).unwrap();
        if let Some(t) = v["choices"][0]["delta"]["reasoning_content"].as_str() {
            reasoning.push_str(t);
        }
    }
    assert_eq!(reasoning, "Greet back.");
    assert_eq!(content(&ev), "Hello! 你好！");
    let v: Value = post_json(
        &gw,
        "/v1/chat/completions",
        json!({
            "model": "r1", "messages": [{"role": "user", "content": "hi"}]
        }),
    )
    .await;
    assert_eq!(
        v["choices"][0]["message"]["reasoning_content"],
        "Greet back."
    );
    assert_eq!(v["choices"][0]["message"]["content"], "Hello! 你好！");
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_completions_stream_and_not() {
    let f = fake().await;
    let gw = start(&f.url(), &config(""), &[]);
    let v: Value = post_json(
        &gw,
        "/v1/completions",
        json!({"model": "tgi", "prompt": "Once upon", "max_tokens": 50}),
    )
    .await;
    assert_eq!(v["object"], "text_completion");
    assert!(
        v["choices"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Once upon")
    );
    assert!(
        v["choices"][0]
            .as_object()
            .unwrap()
            .contains_key("logprobs")
    );
    let ev = sse_events(
        post(
            &gw,
            "/v1/completions",
            json!({"model": "chat", "prompt": "Once upon", "stream": true}),
        )
        .await,
    )
    .await;
    assert_eq!(ev.last().unwrap(), "[DONE]");
    let first: Value = serde_json::from_str(&ev[0]).unwrap();
    assert_eq!(first["object"], "text_completion");
    assert_eq!(content(&ev), "Echo: Once upon");
    // The TGI container got the raw prompt, no chat template.
    let req = f
        .requests()
        .into_iter()
        .find(|r| r.endpoint == "tgi")
        .unwrap();
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["inputs"], "Once upon");
    assert_eq!(body["parameters"]["max_new_tokens"], 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn max_tokens_maps_to_length() {
    let f = fake().await;
    let gw = start(&f.url(), &config(""), &[]);
    for model in ["chat", "tgi"] {
        let v: Value = post_json(&gw, "/v1/chat/completions", json!({
            "model": model, "max_tokens": 2, "messages": [{"role": "user", "content": "a b c d e f"}]
        })).await;
        assert_eq!(v["choices"][0]["finish_reason"], "length", "{model}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn models_ping_and_health() {
    let f = fake().await;
    let gw = start(&f.url(), &config(""), &[]);
    let c = client();
    let v: Value = get_json(&gw.url, "/v1/models", Some(KEY)).await;
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["chat", "tgi", "lmi", "r1", "missing"]);
    assert_eq!(v["data"][0]["object"], "model");
    let m: Value = get_json(&gw.url, "/v1/models/tgi", Some(KEY)).await;
    assert_eq!(m["id"], "tgi");
    let r = c
        .get(format!("{}/v1/models/nope", gw.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // The container HEALTHCHECK probe (no curl in the image).
    let probe = |port: u16| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
            .arg("--healthcheck")
            .env("PORT", port.to_string())
            .status()
            .unwrap()
            .success()
    };
    assert!(probe(gw.port));
    assert!(!probe(1));
    // Liveness and readiness need no key and show none.
    let r = c.get(format!("{}/ping", gw.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = c.get(format!("{}/health", gw.url)).send().await.unwrap();
    assert_eq!(h.status(), 200);
    let text = h.text().await.unwrap();
    assert!(text.contains("\"loaded\":true"), "{text}");
    assert!(!text.contains(KEY));
    // An alias reaches its model; the response names what the client asked.
    let v: Value = post_json(
        &gw,
        "/v1/chat/completions",
        json!({
            "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]
        }),
    )
    .await;
    assert_eq!(v["model"], "gpt-4o-mini");
    // No key anywhere in the logs.
    assert!(!gw.logs().contains(KEY));
}

#[test]
fn bad_config_exits_2_naming_the_key() {
    let run = |env: &[(&str, &str)]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"));
        c.env_clear();
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = run(&[
        ("SAGEMAKER_ENDPOINT_NAME", "ep"),
        ("API_KEY", "k"),
        ("API_KEY_CACHE_TTL", "1h"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("API_KEY_CACHE_TTL") && err.contains("'1h'"),
        "{err}"
    );
    let out = run(&[("SAGEMAKER_ENDPOINT_NAME", "ep")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("auth"));
    // The seed's variables alone make a valid configuration.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("--check")
        .env_clear()
        .env("SAGEMAKER_ENDPOINT_NAME", "ep")
        .env("AUTH_SECRET_ID", "prod/key")
        .env("API_KEY_CACHE_TTL", "600")
        .env("AWS_REGION", "cn-north-1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn routing_fields_reach_sagemaker() {
    let f = fake().await;
    f.add(
        "multi-model-endpoint",
        mock_upstreams::Endpoint::echo(mock_upstreams::ContainerDialect::OpenAi),
    );
    let gw = start(
        &f.url(),
        &config(
            r#"
[[models]]
name = "ic-model"
endpoint = "multi-model-endpoint"
inference_component = "ic-llama"
target_variant = "variant-b"
custom_attributes = "accept_eula=true"
upstream_model = "served-llama"
"#,
        ),
        &[],
    );
    for stream in [false, true] {
        let r = post(&gw, "/v1/chat/completions", json!({
            "model": "ic-model", "stream": stream, "messages": [{"role": "user", "content": "x"}]
        }))
        .await;
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await.unwrap();
    }
    let reqs: Vec<_> = f
        .requests()
        .into_iter()
        .filter(|r| r.endpoint == "multi-model-endpoint")
        .collect();
    assert_eq!(reqs.len(), 2);
    for r in reqs {
        assert_eq!(
            r.headers["x-amzn-sagemaker-inference-component"],
            "ic-llama"
        );
        assert_eq!(r.headers["x-amzn-sagemaker-target-variant"], "variant-b");
        assert_eq!(
            r.headers["x-amzn-sagemaker-custom-attributes"],
            "accept_eula=true"
        );
        assert_eq!(r.headers["content-type"], "application/json");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["model"], "served-llama");
    }
    // The endpoint's own name reaches the model too.
    let r = post(
        &gw,
        "/v1/chat/completions",
        json!({
            "model": "multi-model-endpoint", "messages": [{"role": "user", "content": "x"}]
        }),
    )
    .await;
    assert_eq!(r.status(), 200);
}
