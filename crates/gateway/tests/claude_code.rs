//! Claude Code itself as a client: `claude -p` drives a task through the
//! gateway to a fake Bedrock Claude that calls Claude Code's `Write` tool,
//! receives the tool's result and answers. The file must exist and the
//! answer must quote the tool's result. Once through the Messages API
//! (`ANTHROPIC_BASE_URL`), once in Claude Code's Bedrock mode (InvokeModel
//! paths, the AWS event-stream, the gateway's key as a Bedrock API key).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mock_upstreams::{BedrockModel, BedrockReply, FakeBedrock};
use serde_json::json;

use crate::support::{Gateway, KEY, config, start};

/// Claude Code's binary from the Node clients `cargo xtask test` installs;
/// `None` (a skip) outside CI when they are not installed.
fn claude() -> Option<PathBuf> {
    let found = std::env::var_os("OAI_NODE_MODULES")
        .map(|m| PathBuf::from(m).join(".bin/claude"))
        .filter(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "Claude Code is required in CI (cargo xtask test installs it)"
        );
        eprintln!("SKIP: Claude Code is not installed (cargo xtask test installs it)");
    }
    found
}

/// A gateway whose model `writer` is a fake Bedrock Claude that writes
/// `file` with `text` through the client's `Write` tool.
async fn writer(file: &std::path::Path, text: &str) -> (Gateway, FakeBedrock) {
    let bedrock = FakeBedrock::start().await.unwrap();
    bedrock.add(
        "anthropic.claude-fake-writer-v1:0",
        BedrockModel::new(BedrockReply::ToolCall {
            name: "Write".into(),
            input: json!({"file_path": file, "content": text}),
        }),
    );
    let models = "\n[[models]]\nname = \"writer\"\nbackend = \"bedrock\"\nmodel_id = \"anthropic.claude-fake-writer-v1:0\"\n";
    let url = bedrock.url();
    let gw = start(
        "http://127.0.0.1:9",
        &config(models),
        &[("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &url)],
    );
    (gw, bedrock)
}

/// Runs `claude -p prompt` in `dir` with `env`; its stdout.
async fn run(
    claude: PathBuf,
    dir: PathBuf,
    env: Vec<(&'static str, String)>,
    gw: &Gateway,
) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::task::spawn_blocking(move || {
            Command::new(claude)
                .args([
                    "-p",
                    "Create hello.txt with a greeting.",
                    "--permission-mode",
                    "acceptEdits",
                    "--output-format",
                    "text",
                ])
                .current_dir(&dir)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", &dir)
                .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
                .env("DISABLE_AUTOUPDATER", "1")
                .envs(env)
                .output()
                .unwrap()
        }),
    )
    .await
    .expect("claude -p finished within 180 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "claude failed: {stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.logs()
    );
    stdout
}

/// Drives the task in a fresh directory with `mode`'s environment.
async fn writes_a_file(mode: &str) {
    let Some(claude) = claude() else { return };
    let dir = std::env::temp_dir().join(format!("claude-code-{mode}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hello.txt");
    let (gw, _bedrock) = writer(&file, "Hello from the fake Claude!\n").await;
    let mut env = vec![
        ("ANTHROPIC_MODEL", "writer".to_owned()),
        ("ANTHROPIC_DEFAULT_HAIKU_MODEL", "writer".to_owned()),
    ];
    if mode == "bedrock" {
        env.extend([
            ("CLAUDE_CODE_USE_BEDROCK", "1".to_owned()),
            ("ANTHROPIC_BEDROCK_BASE_URL", gw.url.clone()),
            ("AWS_BEARER_TOKEN_BEDROCK", KEY.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]);
    } else {
        env.extend([
            ("ANTHROPIC_BASE_URL", gw.url.clone()),
            ("ANTHROPIC_API_KEY", KEY.to_owned()),
        ]);
    }
    let stdout = run(claude, dir.clone(), env, &gw).await;
    assert_eq!(
        std::fs::read_to_string(&file).unwrap_or_default(),
        "Hello from the fake Claude!\n",
        "{stdout}\n{}",
        gw.logs()
    );
    assert!(stdout.contains("The tool said:"), "{stdout}\n{}", gw.logs());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn claude_code_writes_a_file_through_the_messages_api() {
    writes_a_file("anthropic").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn claude_code_writes_a_file_in_bedrock_mode() {
    writes_a_file("bedrock").await;
}
