//! Structured outputs on Bedrock: `json_schema`
//! as Converse `outputConfig`, the forced-tool fallback for models that
//! refuse it, tools' `strict`, and thinking dropped under a forced tool.

use mock_upstreams::{BedrockModel, BedrockReply};
use openai_types::contract::{check_chat_completion, check_chat_sse};
use serde_json::{Value, json};

use crate::bedrock::{THINKER, TOOLS, fake_bedrock, start_bedrock};
use crate::support::{content, post, post_json, sse_events};

const OLD: &str = "meta.llama2-13b-chat-v1";

const MODELS: &str = r#"
[[models]]
name = "old"
backend = "bedrock"
model_id = "meta.llama2-13b-chat-v1"
"#;

fn person_format() -> Value {
    json!({"type": "json_schema", "json_schema": {
        "name": "Person", "strict": true,
        "schema": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "age": {"type": "integer"},
                "address": {"$ref": "#/$defs/Address"}
            },
            "required": ["name", "age", "address"],
            "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]}}
        }
    }})
}

fn ask(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Ann, 31, from Oslo"}],
        "response_format": person_format()})
}

fn is_person(text: &str) {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(
        v,
        json!({"name": "x", "age": 1, "address": {"city": "x"}}),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_schema_goes_to_output_config() {
    let f = fake_bedrock().await;
    let gw = start_bedrock(&f, "").await;
    let v = post_json(&gw, "/v1/chat/completions", ask("claude")).await;
    check_chat_completion(&v);
    is_person(v["choices"][0]["message"]["content"].as_str().unwrap());
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let sent = f.requests().pop().unwrap().body;
    let def = &sent["outputConfig"]["textFormat"]["structure"]["jsonSchema"];
    assert_eq!(sent["outputConfig"]["textFormat"]["type"], "json_schema");
    assert_eq!(def["name"], "Person");
    // Sent as a string; every object closed, nested ones included.
    let schema: Value = serde_json::from_str(def["schema"].as_str().unwrap()).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["$defs"]["Address"]["additionalProperties"], false);
    assert!(sent.get("toolConfig").is_none(), "{sent}");

    let mut body = ask("claude");
    body["stream"] = true.into();
    let resp = post(&gw, "/v1/chat/completions", body).await;
    let events = sse_events(resp).await;
    is_person(&content(&events));
}

#[tokio::test(flavor = "multi_thread")]
async fn models_without_output_config_answer_through_a_forced_tool() {
    let f = fake_bedrock().await;
    let mut old = BedrockModel::new(BedrockReply::Text("I am old.".into()));
    old.structured_output = false;
    f.add(OLD, old);
    let gw = start_bedrock(&f, MODELS).await;
    let v = post_json(&gw, "/v1/chat/completions", ask("old")).await;
    check_chat_completion(&v);
    let m = &v["choices"][0]["message"];
    is_person(m["content"].as_str().unwrap());
    assert!(m.get("tool_calls").is_none_or(Value::is_null), "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let sent: Vec<Value> = f
        .requests()
        .into_iter()
        .filter(|r| r.model_id == OLD)
        .map(|r| r.body)
        .collect();
    // Refused once, then asked with the schema as one forced tool.
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].get("outputConfig").is_some());
    assert!(sent[1].get("outputConfig").is_none());
    assert_eq!(
        sent[1]["toolConfig"]["toolChoice"]["tool"]["name"],
        "Person"
    );
    assert_eq!(
        sent[1]["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["required"],
        json!(["name", "age", "address"])
    );

    // Remembered: the next structured request goes straight to the tool,
    // streamed as content.
    let mut body = ask("old");
    body["stream"] = true.into();
    let resp = post(&gw, "/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    check_chat_sse(&text);
    assert!(!text.contains("tool_calls"), "{text}");
    let events: Vec<String> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_owned)
        .collect();
    is_person(&content(&events));
    let more = f
        .requests()
        .into_iter()
        .filter(|r| r.model_id == OLD)
        .count();
    assert_eq!(more, 3, "one request, not a refusal and a retry");
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_tools_and_thinking_under_a_forced_tool() {
    let f = fake_bedrock().await;
    let gw = start_bedrock(&f, "").await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "strict": true,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
            "required": ["city"], "additionalProperties": false}}}]);
    let body = json!({"model": "tools", "messages": [{"role": "user", "content": "weather?"}],
        "tools": tools});
    let v = post_json(&gw, "/v1/chat/completions", body).await;
    check_chat_completion(&v);
    let sent = f.requests().pop().unwrap().body;
    assert_eq!(sent["toolConfig"]["tools"][0]["toolSpec"]["strict"], true);
    assert_eq!(f.requests().pop().unwrap().model_id, TOOLS);

    // reasoning_effort with a forced tool: thinking is left out (Bedrock
    // refuses the pair), the tool call is answered.
    for choice in [
        json!("required"),
        json!({"type": "function", "function": {"name": "get_weather"}}),
    ] {
        let body = json!({"model": "thinker", "messages": [{"role": "user", "content": "weather?"}],
            "tools": tools, "tool_choice": choice, "reasoning_effort": "high"});
        let resp = post(&gw, "/v1/chat/completions", body).await;
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        let sent = f.requests().pop().unwrap();
        assert_eq!(sent.model_id, THINKER);
        assert!(
            sent.body["additionalModelRequestFields"]
                .get("thinking")
                .is_none(),
            "{}",
            sent.body
        );
    }
}
