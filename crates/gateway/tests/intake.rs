//! The model a request is checked against is the model the
//! upstream acts on, however large the body: the outermost object's
//! `model` (not one nested in it, not the first of two), the form's
//! `model` field wherever it comes, for file-scoped and stored keys alike.

use mock_upstreams::FakeOpenAi;
use serde_json::{Value, json};

use crate::support::{Gateway, KEY, client, config, start};

const ADMIN: &str = "sk-admin-intake-test";
const CHEAP: &str = "sk-scoped-cheap";
const MIB: usize = 1024 * 1024;

fn cfg(up: &FakeOpenAi) -> String {
    config(&format!(
        r#"
[admin]
key = "{ADMIN}"

[[auth.scoped_keys]]
key = "{CHEAP}"
models = ["gpt-cheap-*"]

[[upstreams]]
name = "a"
base_url = "{}"
api_key = "sk-upstream-intake"
models_allow = ["gpt-*"]
"#,
        up.base_url()
    ))
    .replacen(
        "log_format = \"json\"",
        "log_format = \"json\"\npassthrough_replay_bytes = 1048576\nmax_passthrough_body_bytes = 16777216",
        1,
    )
}

async fn send(gw: &Gateway, key: &str, path: &str, ctype: &str, body: Vec<u8>) -> (u16, Value) {
    let r = client()
        .post(format!("{}{path}", gw.url))
        .bearer_auth(key)
        .header("content-type", ctype)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A JSON body of about `size` bytes: `head`, then a long `input`, then
/// `tail` (members written as JSON text, without braces).
fn body(head: &str, size: usize, tail: &str) -> Vec<u8> {
    let pad = "x".repeat(size);
    let sep = if tail.is_empty() { "" } else { "," };
    format!(r#"{{{head},"input":"{pad}"{sep}{tail}}}"#).into_bytes()
}

/// What the upstream was asked for, by model.
fn served_models(up: &FakeOpenAi) -> Vec<String> {
    up.requests()
        .iter()
        .filter_map(|r| {
            r.json
                .get("model")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

async fn stored_key(gw: &Gateway) -> String {
    let r = client()
        .post(format!("{}/admin/keys", gw.url))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "cheap", "models": ["gpt-cheap-*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    v["key"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scoped_key_gets_only_its_models_whatever_the_body_size() {
    let up = FakeOpenAi::start("a").await.unwrap();
    let gw = start("http://127.0.0.1:9", &cfg(&up), &[]);
    let stored = stored_key(&gw).await;
    for key in [CHEAP, stored.as_str()] {
        for path in ["/v1/responses", "/v1/classifications"] {
            for size in [100, 2 * MIB] {
                let what = format!("{key} {path} {size}");
                // Its own model: served.
                let (s, v) = send(
                    &gw,
                    key,
                    path,
                    "application/json",
                    body(r#""model":"gpt-cheap-1""#, size, ""),
                )
                .await;
                assert_eq!(s, 200, "{what}: {v}");
                // Another model: refused, with the cheap one nested first.
                let fooled = body(
                    r#""metadata":{"model":"gpt-cheap-1"},"model":"gpt-premium-1""#,
                    size,
                    "",
                );
                let (s, v) = send(&gw, key, path, "application/json", fooled).await;
                assert_eq!(s, 403, "{what}: {v}");
                // Escaped key.
                let escaped = body(r#""mod\u0065l":"gpt-premium-1""#, size, "");
                let (s, v) = send(&gw, key, path, "application/json", escaped).await;
                assert_eq!(s, 403, "{what}: {v}");
                // Two models: the upstream would act on the last.
                let two = body(
                    r#""model":"gpt-cheap-1""#,
                    size,
                    r#""model":"gpt-premium-1""#,
                );
                let (s, v) = send(&gw, key, path, "application/json", two).await;
                assert_eq!(s, 400, "{what}: {v}");
                assert_eq!(v["error"]["param"], "model", "{v}");
            }
        }
    }
    // A large body that names its model only after the window.
    let late = body(r#""user":"u""#, 2 * MIB, r#""model":"gpt-cheap-1""#);
    let (s, v) = send(&gw, KEY, "/v1/classifications", "application/json", late).await;
    assert_eq!(s, 400, "{v}");
    // A deeply nested Responses body is a 400, not a 404.
    let deep = format!(
        r#"{{"model":"chat","input":{}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let (s, v) = send(
        &gw,
        KEY,
        "/v1/responses",
        "application/json",
        deep.into_bytes(),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    // No premium request ever reached the upstream.
    let models = served_models(&up);
    assert!(!models.is_empty());
    assert!(models.iter().all(|m| m == "gpt-cheap-1"), "{models:?}");
    // Records name the model served (written in batches).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (_, recent) = {
        let r = client()
            .get(format!("{}/admin/requests?limit=200", gw.url))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let named: Vec<&str> = recent["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["model"].as_str()).collect())
        .unwrap_or_default();
    assert!(!named.contains(&"gpt-premium-1"), "{named:?}");
}

fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, file, value) in parts {
        out.extend_from_slice(b"--BOUNDARYxyz\r\n");
        match file {
            Some(f) => out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => out.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--BOUNDARYxyz--\r\n");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_form_names_its_model_once() {
    let up = FakeOpenAi::start("a").await.unwrap();
    let gw = start("http://127.0.0.1:9", &cfg(&up), &[]);
    let ctype = "multipart/form-data; boundary=BOUNDARYxyz";
    let audio = vec![0x5au8; 2 * MIB];
    let path = "/v1/audio/transcriptions";
    let ok = form(&[
        ("model", None, b"gpt-cheap-1"),
        ("file", Some("a.wav"), &audio),
    ]);
    let (s, v) = send(&gw, CHEAP, path, ctype, ok).await;
    assert_eq!(s, 200, "{v}");
    let other = form(&[
        ("model", None, b"gpt-premium-1"),
        ("file", Some("a.wav"), &audio),
    ]);
    assert_eq!(send(&gw, CHEAP, path, ctype, other).await.0, 403);
    // The file's name is not the field's name.
    let named = form(&[
        ("file", Some("model"), b"gpt-cheap-1"),
        ("model", None, b"gpt-premium-1"),
    ]);
    assert_eq!(send(&gw, CHEAP, path, ctype, named).await.0, 403);
    // Twice, small and large.
    for body in [
        form(&[
            ("model", None, b"gpt-cheap-1"),
            ("model", None, b"gpt-premium-1"),
        ]),
        form(&[
            ("model", None, b"gpt-cheap-1"),
            ("file", Some("a.wav"), &audio),
            ("model", None, b"gpt-premium-1"),
        ]),
    ] {
        let (s, v) = send(&gw, KEY, path, ctype, body).await;
        assert_eq!(s, 400, "{v}");
    }
    // After the file in a large body: the path stands in for the model
    // (404 here: no upstream serves it), never the model found later.
    let late = form(&[
        ("file", Some("a.wav"), &audio),
        ("model", None, b"gpt-premium-1"),
    ]);
    let (s, v) = send(&gw, KEY, path, ctype, late).await;
    assert!(s == 400 || s == 404, "{v}");
    let asked: Vec<usize> = up.requests().iter().map(|r| r.body_len).collect();
    assert_eq!(
        up.requests()
            .iter()
            .filter(|r| r.path == "/v1/audio/transcriptions")
            .count(),
        1,
        "only the admissible form reached the upstream whole: {asked:?}"
    );
}
