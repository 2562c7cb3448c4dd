//! `demo-upstreams`: the demo's fake SageMaker runtime and Bedrock as a
//! process (the `demo` profile of `deploy/compose.yaml`). Test support, not
//! a product: it answers the demo models of `deploy/config/demo.toml`.
//!
//! `SAGEMAKER_LISTEN` (default `0.0.0.0:9001`) and `BEDROCK_LISTEN` (default
//! `0.0.0.0:9002`) choose the addresses.

use std::net::SocketAddr;

use anyhow::Context;

fn addr(var: &str, default: &str) -> anyhow::Result<SocketAddr> {
    let v = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    v.parse()
        .with_context(|| format!("{var}: '{v}' is not an address"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sm =
        mock_upstreams::demo::fake_sagemaker_on(addr("SAGEMAKER_LISTEN", "0.0.0.0:9001")?).await?;
    let br = mock_upstreams::demo::fake_bedrock_on(addr("BEDROCK_LISTEN", "0.0.0.0:9002")?).await?;
    println!(
        "fake SageMaker runtime on {}, fake Bedrock on {}",
        sm.url(),
        br.url()
    );
    // PID 1 in a container: stop on SIGTERM as on Ctrl-C.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
