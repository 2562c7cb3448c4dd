//! The Responses API over every backend: SageMaker and
//! Bedrock models served over chat (whole and streamed, a function tool
//! round trip, structured output), upstreams passed the request as it came,
//! what needs a store refused; every object and event checked against the
//! spec's rules, and openai-python's `client.responses` as the client.

use openai_types::contract::{check_error, check_response, check_response_events};
use serde_json::{Value, json};

use crate::bedrock::{fake_bedrock, start_bedrock};
use crate::support::{KEY, config, fake, post, run_python, start};
use crate::upstreams::setup;

async fn create(gw: &crate::support::Gateway, body: Value) -> Value {
    let r = post(gw, "/v1/responses", body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    check_response(&v);
    v
}

fn text_of(v: &Value) -> String {
    v["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().iter())
        .filter_map(|p| p["text"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sagemaker_models_answer_responses() {
    let f = fake().await;
    let gw = start(&f.url(), &config(""), &[]);
    let v = create(
        &gw,
        json!({"model": "chat", "input": "hello", "instructions": "Be kind."}),
    )
    .await;
    assert_eq!(text_of(&v), "Echo: hello");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["instructions"], "Be kind.");
    assert!(v["id"].as_str().unwrap().starts_with("resp_"));
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let r = post(
        &gw,
        "/v1/responses",
        json!({"model": "tgi", "input": [{"role": "user", "content": "streamed"}], "stream": true}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let sse = r.text().await.unwrap();
    let last = check_response_events(&sse);
    assert_eq!(last["status"], "completed");
    assert!(text_of(&last).contains("streamed"), "{last}");
    assert!(last["usage"]["output_tokens"].as_u64().unwrap() > 0);

    // What needs a store, by name.
    for (extra, param) in [
        (
            json!({"previous_response_id": "resp_x"}),
            "previous_response_id",
        ),
        (json!({"store": true}), "store"),
    ] {
        let mut body = json!({"model": "chat", "input": "x"});
        for (k, x) in extra.as_object().unwrap() {
            body[k] = x.clone();
        }
        let r = post(&gw, "/v1/responses", body).await;
        assert_eq!(r.status(), 400);
        let e: Value = r.json().await.unwrap();
        check_error(&e);
        assert_eq!(e["error"]["param"], param);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bedrock_tools_and_structured_output_over_responses() {
    let f = fake_bedrock().await;
    let gw = start_bedrock(&f, "").await;
    let tools = json!([{"type": "function", "name": "get_weather", "strict": false,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let v = create(
        &gw,
        json!({"model": "tools", "input": "weather in Beijing?", "tools": tools}),
    )
    .await;
    let call = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap_or_else(|| panic!("no call: {v}"))
        .clone();
    assert_eq!(call["name"], "get_weather");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["city"], "北京");
    // The round trip: the call and its output as input items.
    let v = create(&gw, json!({"model": "tools", "tools": tools, "input": [
        {"role": "user", "content": "weather in Beijing?"},
        {"type": "function_call", "call_id": call["call_id"], "name": "get_weather", "arguments": call["arguments"]},
        {"type": "function_call_output", "call_id": call["call_id"], "output": "晴, 25C"}
    ]}))
    .await;
    assert_eq!(text_of(&v), "The tool said: 晴, 25C");

    // Streamed: the call's arguments arrive as deltas.
    let r = post(
        &gw,
        "/v1/responses",
        json!({"model": "tools", "input": "weather?", "tools": tools, "stream": true}),
    )
    .await;
    let sse = r.text().await.unwrap();
    let last = check_response_events(&sse);
    assert!(
        sse.contains("event: response.function_call_arguments.delta"),
        "{sse}"
    );
    assert!(
        last["output"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["type"] == "function_call")
    );

    // text.format json_schema: Converse outputConfig.
    let v = create(&gw, json!({"model": "claude", "input": "Ann, 31",
        "text": {"format": {"type": "json_schema", "name": "Person", "strict": true,
            "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}})).await;
    let person: Value = serde_json::from_str(&text_of(&v)).unwrap();
    assert_eq!(person, json!({"name": "x"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn upstreams_get_responses_as_they_came() {
    let s = setup("").await;
    let body = json!({"model": "gpt-4o", "input": "hi", "store": true, "previous_response_id": "resp_prev"});
    let v = create(&s.gw, body.clone()).await;
    assert_eq!(text_of(&v), "native a");
    let sent = s.a.requests().pop().unwrap();
    assert_eq!(sent.path, "/v1/responses");
    assert_eq!(sent.json, body, "passed through unchanged");
}

const PY: &str = r#"
import os, json
from openai import OpenAI
client = OpenAI(base_url=os.environ["BASE"] + "/v1", api_key=os.environ["KEY"], max_retries=0)
r = client.responses.create(model="claude", input="hello", instructions="Be brief.")
assert r.output_text == "Echo: hello", r
assert r.status == "completed" and r.usage.total_tokens > 0, r
text = ""
events = []
with client.responses.stream(model="claude", input="stream me") as stream:
    for e in stream:
        events.append(e.type)
        if e.type == "response.output_text.delta":
            text += e.delta
    final = stream.get_final_response()
assert text == "Echo: stream me", text
assert final.output_text == text, final
assert events[0] == "response.created" and events[-1] == "response.completed", events
tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
r = client.responses.create(model="tools", input="weather?", tools=tools)
call = next(i for i in r.output if i.type == "function_call")
assert json.loads(call.arguments)["city"] == "北京", call
r2 = client.responses.create(model="tools", tools=tools, input=[
    {"role": "user", "content": "weather?"},
    {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
    {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
])
assert r2.output_text == "The tool said: sunny", r2
print("python-responses-ok")
"#;

#[tokio::test(flavor = "multi_thread")]
async fn openai_python_responses_client() {
    let f = fake_bedrock().await;
    let gw = start_bedrock(&f, "").await;
    let env = vec![("BASE", gw.url.clone()), ("KEY", KEY.to_owned())];
    run_python(PY, env, "python-responses-ok", &gw).await;
}
