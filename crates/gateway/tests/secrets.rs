//! API keys from Secrets Manager (moto_server): the seed's secret formats,
//! rotation without restart, and serving the last good keys when Secrets
//! Manager fails.

use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use mock_upstreams::moto::MotoServer;
use serde_json::json;

use crate::support::{client, fake, get_json, start};

async fn sm_client(url: &str) -> Client {
    let cfg = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    Client::new(&cfg)
}

fn cfg() -> String {
    r#"
log_format = "json"
[aws]
max_attempts = 1
[auth]
secret_id = "prod/gateway/api-key"
cache_ttl_secs = 3600
refresh_min_interval_secs = 1
[[models]]
name = "chat"
"#
    .into()
}

async fn status_with(gw_url: &str, key: &str) -> u16 {
    client()
        .post(format!("{gw_url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_from_secrets_manager_rotate_and_survive_outages() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let sm = sm_client(&moto.url).await;
    // The seed's own secret format.
    sm.create_secret()
        .name("prod/gateway/api-key")
        .secret_string(r#"{"bedrock-access-gateway-apikey": "sk-moto-canary-one"}"#)
        .send()
        .await
        .unwrap();
    let f = fake().await;
    let gw = start(
        &f.url(),
        &cfg(),
        &[("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.url.as_str())],
    );
    assert_eq!(status_with(&gw.url, "sk-moto-canary-one").await, 200);
    assert_eq!(status_with(&gw.url, "sk-moto-canary-two").await, 401);
    // Rotate to a list of keys: the new key works without a restart.
    sm.put_secret_value()
        .secret_id("prod/gateway/api-key")
        .secret_string(r#"["sk-moto-canary-two", "sk-moto-canary-three"]"#)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(status_with(&gw.url, "sk-moto-canary-two").await, 200);
    assert_eq!(status_with(&gw.url, "sk-moto-canary-three").await, 200);
    // Secrets Manager goes away: the last good keys keep working, and
    // /health says the refresh failed.
    drop(moto);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(status_with(&gw.url, "sk-moto-canary-unknown").await, 401);
    assert_eq!(status_with(&gw.url, "sk-moto-canary-two").await, 200);
    let h: serde_json::Value = get_json(&gw.url, "/health", None).await;
    assert_eq!(h["status"], "ok");
    assert!(h["auth"]["last_refresh_error"].is_string(), "{h}");
    let text = h.to_string();
    assert!(!text.contains("canary"), "health shows no key: {text}");
    assert!(!gw.logs().contains("canary"), "logs show no key");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_secrets_manager_is_unavailable_not_unauthorized() {
    let f = fake().await;
    let gw = start(
        &f.url(),
        &cfg(),
        &[("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:9")],
    );
    assert_eq!(status_with(&gw.url, "sk-any").await, 503);
    let h = client()
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), 503);
}
