//! The workspace's examples, run as their users run them: each binary
//! against the local fakes (SageMaker and Bedrock runtimes speaking the
//! genuine protocols, moto for Secrets Manager), its output checked against
//! OpenAI's contract.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use mock_upstreams::{
    BedrockModel, BedrockReply, ContainerDialect, Endpoint, FakeBedrock, FakeSageMaker,
};
use openai_types::contract::{check_chat_completion, check_chat_sse};
use serde_json::{Value, json};

/// An example binary, built by `cargo test` beside this test.
fn example(name: &str) -> Command {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let mut cmd = Command::new(dir.join(name));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1");
    cmd
}

/// A service example, killed on drop.
struct Service(Child, String);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a service example on a free port and reads the address it names.
fn serve(mut cmd: Command) -> Service {
    let mut child = cmd
        .env("LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    Service(child, url)
}

/// The text of a chat SSE stream's content deltas.
fn content(sse: &str) -> String {
    sse.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sagemaker_sse_streams_an_endpoint_as_openai_sse() {
    let fake = FakeSageMaker::start().await.unwrap();
    fake.add("vllm", Endpoint::echo(ContainerDialect::OpenAi));
    let mut cmd = example("sagemaker_sse");
    cmd.env("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", fake.url())
        .env("SAGEMAKER_ENDPOINT", "vllm");
    let svc = serve(cmd);
    let http = reqwest::Client::new();
    let body = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hi there"}]});
    let r = http
        .post(format!("{}/v1/chat/completions", svc.1))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let sse = r.text().await.unwrap();
    check_chat_sse(&sse);
    assert_eq!(content(&sse), "Echo: hi there");
    assert!(sse.contains(r#""usage":{"#), "usage asked for: {sse}");
    assert!(sse.ends_with("data: [DONE]\n\n"));
    // The endpoint got an OpenAI streaming request.
    let sent: Value = serde_json::from_slice(&fake.requests().pop().unwrap().body).unwrap();
    assert_eq!(sent["stream"], true);
    // A bad body is OpenAI's error envelope.
    let r = http
        .post(format!("{}/v1/chat/completions", svc.1))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].is_string(), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bedrock_converse_translates_both_ways_whole_and_streamed() {
    let fake = FakeBedrock::start().await.unwrap();
    fake.add("fake.model-v1", BedrockModel::new(BedrockReply::Echo));
    let run = |stream: bool| {
        let mut cmd = example("bedrock_converse");
        cmd.env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake.url())
            .args(["fake.model-v1", "hello bedrock"]);
        if stream {
            cmd.arg("--stream");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let v: Value = serde_json::from_str(&tokio::task::block_in_place(|| run(false))).unwrap();
    check_chat_completion(&v);
    assert_eq!(v["choices"][0]["message"]["content"], "Echo: hello bedrock");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // The system prompt went to Converse's `system`.
    let req = fake.requests().pop().unwrap();
    assert_eq!(req.body["system"][0]["text"], "Answer briefly.");
    let sse = tokio::task::block_in_place(|| run(true));
    check_chat_sse(&sse);
    assert_eq!(content(&sse), "Echo: hello bedrock");
}

#[tokio::test(flavor = "multi_thread")]
async fn keyauth_guard_lets_only_the_secret_key_through() {
    let Some(moto) = mock_upstreams::moto::MotoServer::start() else {
        return;
    };
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto.url)
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    let sm = aws_sdk_secretsmanager::Client::new(&aws);
    sm.create_secret()
        .name("example/api-keys")
        .secret_string(r#"["sk-one","sk-two"]"#)
        .send()
        .await
        .unwrap();
    let mut cmd = example("keyauth_guard");
    cmd.env("AWS_ENDPOINT_URL_SECRETS_MANAGER", &moto.url)
        .env("SECRET_ID", "example/api-keys");
    let svc = serve(cmd);
    let http = reqwest::Client::new();
    let get = |key: Option<&'static str>| {
        let mut r = http.get(format!("{}/hello", svc.1));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    let r = get(Some("sk-two")).await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.starts_with("hello, key "), "{text}");
    assert!(!text.contains("sk-two"), "the key itself is never shown");
    for key in [Some("sk-three"), None] {
        assert_eq!(get(key).await.unwrap().status(), 401, "{key:?}");
    }
}
