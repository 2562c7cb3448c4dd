//! What an operator sends the admin API is checked:
//! CIDR prefixes within their address's bits, bounded owners and lists,
//! patches that are objects, and bodies past the limit refused in the
//! OpenAI envelope.

use serde_json::{Value, json};

use crate::support::{Gateway, client, config, fake, start};

const ADMIN: &str = "sk-admin-input";

async fn send(gw: &Gateway, method: reqwest::Method, path: &str, body: Vec<u8>) -> (u16, Value) {
    let r = client()
        .request(method, format!("{}{path}", gw.url))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(ctype.starts_with("application/json"), "{status} {ctype}");
    (status, v)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_checks_what_it_is_sent() {
    let f = fake().await;
    let gw = start(
        &f.url(),
        &config(&format!("[admin]\nkey = \"{ADMIN}\"\n")),
        &[],
    );
    let post = reqwest::Method::POST;
    for cidr in [
        "10.0.0.0/99",
        "2001:db8::/200",
        "10.0.0.0/abc",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "x/8",
    ] {
        let body = serde_json::to_vec(&json!({"name": "n", "ip_allow": [cidr]})).unwrap();
        let (s, v) = send(&gw, post.clone(), "/admin/keys", body).await;
        assert_eq!(s, 400, "{cidr}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("ip_allow"),
            "{v}"
        );
    }
    for ok in [
        "10.0.0.0/8",
        "2001:db8::/32",
        "192.0.2.7",
        "::1/128",
        "0.0.0.0/0",
    ] {
        let body = serde_json::to_vec(&json!({"name": "n", "ip_allow": [ok]})).unwrap();
        assert_eq!(
            send(&gw, post.clone(), "/admin/keys", body).await.0,
            201,
            "{ok}"
        );
    }
    let long = serde_json::to_vec(&json!({"name": "n", "owner": "o".repeat(201)})).unwrap();
    assert_eq!(send(&gw, post.clone(), "/admin/keys", long).await.0, 400);
    let many: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    let lists = serde_json::to_vec(&json!({"name": "n", "models": many})).unwrap();
    assert_eq!(send(&gw, post.clone(), "/admin/keys", lists).await.0, 400);
    // A patch is an object.
    let (s, v) = send(
        &gw,
        post.clone(),
        "/admin/keys",
        br#"{"name":"p"}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    for patch in [&b"[]"[..], b"[\"x\"]", b"null", b"5"] {
        let (s, v) = send(
            &gw,
            reqwest::Method::PATCH,
            &format!("/admin/keys/{id}"),
            patch.to_vec(),
        )
        .await;
        assert_eq!(s, 400, "{}: {v}", String::from_utf8_lossy(patch));
    }
    // Past the limit: 413 in the envelope (it was actix's text/plain).
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(300 * 1024)).into_bytes();
    let (s, v) = send(&gw, post, "/admin/keys", big).await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["error"]["code"], "request_too_large", "{v}");
}
