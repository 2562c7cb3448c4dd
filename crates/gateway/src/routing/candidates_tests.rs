//! Which candidates serve a model name, and in which order, from a real
//! configuration: a table of names and what serves each.

use super::*;
use crate::config::Config;

fn state(extra: &str) -> AppState {
    let cfg = Config::from_toml(&format!(
        r#"
default_model = "chat"
[auth]
keys = ["sk-test"]

[[models]]
name = "chat"
endpoint = "chat-ep"
aliases = ["gpt-4o-mini"]

[[models]]
name = "claude"
backend = "bedrock"
model_id = "anthropic.claude-3-haiku"

[[upstreams]]
name = "a"
base_url = "http://127.0.0.1:9/v1"
models_allow = ["gpt-*", "claude"]
models_deny = ["gpt-4o-private"]

[[upstreams]]
name = "b"
base_url = "http://127.0.0.1:9/v1"
models_allow = ["gpt-4*"]
priority = 1
{extra}
"#
    ))
    .unwrap();
    cfg.validate().unwrap();
    let sources = KeySources {
        secrets: None,
        stored: None,
    };
    AppState::new(cfg, sources, None).unwrap()
}

#[test]
fn candidates_come_from_models_aliases_ids_and_admitting_upstreams() {
    let s = state("");
    // (name asked, the candidates' keys in registry order)
    let cases: [(&str, &[&str]); 8] = [
        ("chat", &["models/chat"]),
        // An alias is the model, and upstreams that admit the alias too.
        ("gpt-4o-mini", &["models/chat", "a", "b"]),
        // The endpoint's own name reaches its model.
        ("chat-ep", &["models/chat"]),
        // A configured Bedrock model, and the upstream that admits it.
        ("claude", &["models/claude", "a"]),
        ("anthropic.claude-3-haiku", &["models/claude"]),
        ("gpt-4.1", &["a", "b"]),
        // Denied by a, allowed by b.
        ("gpt-4o-private", &["b"]),
        // Nothing serves it: the default model.
        ("unknown", &["models/chat"]),
    ];
    for (name, want) in cases {
        let got: Vec<String> = s
            .candidates(name)
            .unwrap()
            .iter()
            .map(|m| m.key())
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn without_a_default_an_unknown_model_is_404_naming_the_models() {
    let mut s = state("");
    s.config.default_model = None;
    let e = s.candidates("unknown").unwrap_err();
    assert_eq!(e.status.as_u16(), 404);
    assert_eq!(e.body.error.code.as_deref(), Some("model_not_found"));
    assert!(
        e.body.error.message.contains("chat, claude"),
        "{}",
        e.body.error.message
    );
}

#[test]
fn the_router_orders_by_priority_and_drops_disabled_upstreams() {
    let s = state(
        r#"
[[upstreams]]
name = "c"
base_url = "http://127.0.0.1:9/v1"
models_allow = ["gpt-4.1"]
priority = -1
disabled = true
"#,
    );
    let ordered: Vec<String> = s
        .router
        .order(s.candidates("gpt-4.1").unwrap())
        .iter()
        .map(|m| m.key())
        .collect();
    assert_eq!(ordered, ["a", "b"]);
}
