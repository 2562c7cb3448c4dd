//! SIGTERM: stop accepting, let in-flight streams finish, exit 0.

use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;
use mock_upstreams::{ContainerDialect, Endpoint, Reply};
use serde_json::json;

use crate::support::{KEY, client, config, fake, start};

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_streams_and_exits_zero() {
    let f = fake().await;
    f.add(
        "slow",
        Endpoint {
            reply: Reply::Text("one two three four five six seven eight nine ten".into()),
            token_delay: Duration::from_millis(100),
            ..Endpoint::echo(ContainerDialect::OpenAi)
        },
    );
    let mut gw = start(&f.url(), &config("[[models]]\nname = \"slow\"\n"), &[]);
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .json(&json!({"model": "slow", "stream": true, "messages": [{"role": "user", "content": "go"}]}))
        .send()
        .await
        .unwrap();
    let mut s = resp.bytes_stream();
    let mut body = Vec::new();
    body.extend_from_slice(&s.next().await.unwrap().unwrap());
    let pid = gw.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // No new connections once draining.
    let refused = std::net::TcpStream::connect(("127.0.0.1", gw.port)).is_err();
    // The in-flight stream still completes.
    while let Some(c) = s.next().await {
        body.extend_from_slice(&c.unwrap());
    }
    let text = String::from_utf8(body).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(text.contains("ten"), "{text}");
    let status = tokio::task::spawn_blocking(move || gw.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(refused, "a new connection was accepted while draining");
}
