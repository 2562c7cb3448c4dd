//! The demo's fakes: what `cargo xtask demo` and `docker compose --profile
//! demo` (the `demo-upstreams` binary) serve, so the gateway's demo models
//! (`deploy/config/demo.toml`) answer without an AWS account.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;

use crate::{
    BedrockModel, BedrockReply, ContainerDialect, Endpoint, FakeBedrock, FakeSageMaker, Reply,
};

/// Starts the fake Bedrock models of the demo on `addr`.
pub async fn fake_bedrock_on(addr: SocketAddr) -> Result<FakeBedrock> {
    let fake = FakeBedrock::start_on(addr).await?;
    let mut claude = BedrockModel::new(BedrockReply::Reasoning {
        thinking: "A greeting: answer warmly and briefly.".into(),
        answer: "Hello from Bedrock! 你好！".into(),
    });
    claude.token_delay = Duration::from_millis(20);
    fake.add("us.anthropic.claude-3-7-sonnet-20250219-v1:0", claude);
    fake.add(
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        BedrockModel::new(BedrockReply::ToolCall {
            name: "get_weather".into(),
            input: serde_json::json!({"city": "Paris"}),
        }),
    );
    fake.add(
        "amazon.titan-embed-text-v2:0",
        BedrockModel::new(BedrockReply::Embedding),
    );
    // Always over quota: what clients see when Bedrock throttles.
    let mut throttled = BedrockModel::new(BedrockReply::Echo);
    throttled.fault = crate::BedrockFault::Status(
        429,
        "ThrottlingException".into(),
        "Too many requests, please wait before trying again.".into(),
    );
    fake.add("amazon.nova-micro-v1:0", throttled);
    Ok(fake)
}

/// Starts the fake SageMaker endpoints of the demo on `addr`.
pub async fn fake_sagemaker_on(addr: SocketAddr) -> Result<FakeSageMaker> {
    let fake = FakeSageMaker::start_on(addr).await?;
    fake.add("demo-chat", Endpoint::echo(ContainerDialect::OpenAi));
    fake.add("demo-tgi", Endpoint::echo(ContainerDialect::Tgi));
    let mut r1 = Endpoint::echo(ContainerDialect::OpenAi);
    r1.reply = Reply::Text(
        "<think>The user greets me; a short, warm answer fits.</think>\n\nHello! 你好！How can I help you today?".into(),
    );
    r1.token_delay = Duration::from_millis(20);
    fake.add("demo-r1", r1);
    Ok(fake)
}
