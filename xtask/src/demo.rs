//! `cargo xtask demo [--port N]`: the gateway doing its main job with no AWS
//! account. A fake SageMaker runtime (from `mock-upstreams`) serves three
//! endpoints, one per container dialect, a fake Bedrock serves a chat model
//! with tool calls, a reasoning model and an embedding model, and the real
//! gateway binary is started against both through the AWS SDK's endpoint
//! overrides, with a demo API key.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mock_upstreams::demo::{fake_bedrock_on, fake_sagemaker_on};

/// Fakes listen on a free loopback port.
const LOCAL: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// The key the demo prints; only the demo uses it.
pub(crate) const DEMO_KEY: &str = "sk-demo-key";

/// The demo's gateway config, shared with `docker compose --profile demo`;
/// its port is replaced.
pub(crate) const DEMO_CONFIG: &str = include_str!("../../deploy/config/demo.toml");

/// Builds the release gateway (cargo's own progress on the terminal, no
/// deadline: a first build on two cores takes a while) and returns the
/// binary's path.
pub(crate) fn build_gateway() -> Result<std::path::PathBuf> {
    crate::run(crate::cargo().args(["build", "--release", "-p", "gateway", "--bin", "gateway"]))?;
    Ok(crate::target_dir()?.join("release/gateway"))
}

/// The built gateway with the demo's configuration and fakes.
pub(crate) fn gateway_command(
    bin: &std::path::Path,
    config_path: &std::path::Path,
    fake_url: &str,
    bedrock_url: &str,
) -> Command {
    let mut c = Command::new(bin);
    c.arg("--config").arg(config_path);
    demo_env(&mut c, fake_url, bedrock_url);
    c
}

/// The demo's environment: the AWS SDK pointed at the fakes with made-up
/// credentials, and nothing of the caller's AWS or key settings.
pub(crate) fn demo_env(c: &mut Command, fake_url: &str, bedrock_url: &str) {
    c.env("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", fake_url)
        .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock_url)
        .env("AWS_ENDPOINT_URL_BEDROCK", bedrock_url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "demo")
        .env("AWS_SECRET_ACCESS_KEY", "demo")
        .env_remove("AWS_PROFILE")
        .env_remove("SAGEMAKER_ENDPOINT_NAME")
        .env_remove("AUTH_SECRET_ID")
        .env_remove("API_KEY")
        .env_remove("BEDROCK_MODELS");
}

pub(crate) fn wait_ready(port: u16, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the gateway did not start listening on port {port}")
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let port: u16 = match args.iter().position(|a| a == "--port") {
        Some(i) => args.get(i + 1).context("--port needs a value")?.parse()?,
        None => 8080,
    };
    let rt = tokio::runtime::Runtime::new()?;
    let fake = rt.block_on(fake_sagemaker_on(LOCAL))?;
    let bedrock = rt.block_on(fake_bedrock_on(LOCAL))?;
    let dir = std::env::temp_dir().join(format!("oai-gateway-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cfg = dir.join("demo.toml");
    std::fs::write(
        &cfg,
        DEMO_CONFIG.replace("0.0.0.0:8080", &format!("0.0.0.0:{port}")),
    )?;
    eprintln!("xtask: building the gateway (release; the first build takes a while on two cores)…");
    let bin = build_gateway()?;
    eprintln!(
        "xtask: fake SageMaker runtime at {}, fake Bedrock at {}; starting the gateway…",
        fake.url(),
        bedrock.url()
    );
    let mut child = gateway_command(&bin, &cfg, &fake.url(), &bedrock.url())
        .stdin(Stdio::null())
        .spawn()
        .context("starting the gateway")?;
    if let Err(e) = wait_ready(port, Duration::from_secs(30)) {
        let _ = child.kill();
        return Err(e);
    }
    println!(
        r#"
The gateway is serving the OpenAI API on http://127.0.0.1:{port}/v1
SageMaker models: demo-chat = an OpenAI-schema container, demo-tgi = TGI
generate_stream, demo-r1 = a reasoning model whose <think> goes to
reasoning_content. Bedrock models: demo-claude (reasoning, through
ConverseStream), demo-tools (tool calls), demo-embed (Titan embeddings),
demo-throttled (always throttled: 429 with Retry-After).

  curl -N http://127.0.0.1:{port}/v1/chat/completions \
    -H "Authorization: Bearer {DEMO_KEY}" -H "Content-Type: application/json" \
    -d '{{"model":"demo-chat","stream":true,"messages":[{{"role":"user","content":"Hello, 世界"}}]}}'

  curl http://127.0.0.1:{port}/v1/embeddings -H "Authorization: Bearer {DEMO_KEY}" \
    -H "Content-Type: application/json" -d '{{"model":"demo-embed","input":"Hello","dimensions":256}}'

  python3 - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="http://127.0.0.1:{port}/v1", api_key="{DEMO_KEY}")
for model in ["demo-r1", "demo-claude"]:
    for chunk in client.chat.completions.create(model=model, stream=True,
            messages=[{{"role": "user", "content": "Hello!"}}]):
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()
PY

It speaks Anthropic's Messages API too, so Claude Code and the Anthropic
SDKs come in (every model above, translated):

  curl http://127.0.0.1:{port}/v1/messages -H "x-api-key: {DEMO_KEY}" \
    -H "anthropic-version: 2023-06-01" -H "Content-Type: application/json" \
    -d '{{"model":"demo-claude","max_tokens":512,"messages":[{{"role":"user","content":"Hello!"}}]}}'

  ANTHROPIC_BASE_URL=http://127.0.0.1:{port} ANTHROPIC_API_KEY={DEMO_KEY} ANTHROPIC_MODEL=demo-claude claude

  # Claude Code's Bedrock mode (InvokeModel paths, the gateway's key as a Bedrock API key):
  CLAUDE_CODE_USE_BEDROCK=1 ANTHROPIC_BEDROCK_BASE_URL=http://127.0.0.1:{port} \
    AWS_BEARER_TOKEN_BEDROCK={DEMO_KEY} AWS_REGION=us-east-1 ANTHROPIC_MODEL=demo-claude claude

Ctrl-C stops both.
"#
    );
    let status = child.wait()?;
    drop(fake);
    drop(bedrock);
    let _ = std::fs::remove_dir_all(&dir);
    if !status.success() {
        bail!("gateway exited with {status}");
    }
    Ok(())
}
