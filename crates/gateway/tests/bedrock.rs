//! The Bedrock backend end to end: the gateway binary, the real
//! `aws-sdk-bedrockruntime` and `aws-sdk-bedrock` clients, and a fake Bedrock
//! speaking Bedrock's REST JSON and event-stream protocol.

use std::time::{Duration, Instant};

use mock_upstreams::{BedrockFault, BedrockModel, BedrockReply, FakeBedrock};
use openai_types::contract::{check_chat_completion, check_chat_sse, check_error};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    Gateway, KEY, config, content, get_json, post, post_json, run_python, sse_events, start,
};

const CLAUDE: &str = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
pub(crate) const TOOLS: &str = "anthropic.claude-3-haiku-20240307-v1:0";
pub(crate) const THINKER: &str = "us.anthropic.claude-3-7-sonnet-20250219-v1:0";
const ARN: &str = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4";
/// How the fake describes the PNG it received.
fn png_seen() -> String {
    use base64::Engine as _;
    let n = base64::engine::general_purpose::STANDARD
        .decode(PNG)
        .unwrap()
        .len();
    format!("[image png {n} bytes]")
}

/// A 1x1 PNG.
pub(crate) const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

fn models() -> String {
    format!(
        r#"
[bedrock]
discover_models = true

[bedrock.image_fetch]
enabled = true
timeout_secs = 2
max_bytes = 100000
allowed_hosts = ["localhost"]

[[models]]
name = "claude"
backend = "bedrock"
model_id = "{CLAUDE}"

[[models]]
name = "tools"
backend = "bedrock"
model_id = "{TOOLS}"

[[models]]
name = "thinker"
backend = "bedrock"
model_id = "{THINKER}"

[[models]]
name = "thinker-inline"
backend = "bedrock"
model_id = "{THINKER}"
reasoning_output = "inline_think"

[[models]]
name = "app-profile"
backend = "bedrock"
model_id = "{ARN}"

[[models]]
name = "text-embedding-3-small"
backend = "bedrock"
model_id = "amazon.titan-embed-text-v2:0"

[[models]]
name = "cohere"
backend = "bedrock"
model_id = "cohere.embed-multilingual-v3"

[[models]]
name = "endless"
backend = "bedrock"
model_id = "amazon.nova-lite-v1:0"

[[models]]
name = "midstream"
backend = "bedrock"
model_id = "amazon.nova-micro-v1:0"
{errors}"#,
        errors = ERRORS
            .iter()
            .map(|(id, ..)| format!("\n[[models]]\nname = \"{id}\"\nbackend = \"bedrock\"\n"))
            .collect::<String>()
    )
}

/// Models that fail: (id, status Bedrock answers, exception).
const ERRORS: &[(&str, u16, &str)] = &[
    ("x.validation-v1", 400, "ValidationException"),
    ("x.denied-v1", 403, "AccessDeniedException"),
    ("x.notfound-v1", 404, "ResourceNotFoundException"),
    ("x.throttled-v1", 429, "ThrottlingException"),
    ("x.timeout-v1", 408, "ModelTimeoutException"),
    ("x.unavailable-v1", 503, "ServiceUnavailableException"),
    ("x.internal-v1", 500, "InternalServerException"),
];

pub(crate) async fn fake_bedrock() -> FakeBedrock {
    let f = FakeBedrock::start().await.unwrap();
    f.add(CLAUDE, BedrockModel::new(BedrockReply::Echo));
    f.add(ARN, BedrockModel::new(BedrockReply::Echo));
    f.add(
        TOOLS,
        BedrockModel::new(BedrockReply::ToolCall {
            name: "get_weather".into(),
            input: json!({"city": "北京", "unit": "c"}),
        }),
    );
    f.add(
        THINKER,
        BedrockModel::new(BedrockReply::Reasoning {
            thinking: "The user greets me. I greet back.".into(),
            answer: "Hello! 你好！".into(),
        }),
    );
    f.add(
        "amazon.titan-embed-text-v2:0",
        BedrockModel::new(BedrockReply::Embedding),
    );
    f.add(
        "cohere.embed-multilingual-v3",
        BedrockModel::new(BedrockReply::Embedding),
    );
    let mut endless = BedrockModel::new(BedrockReply::Endless);
    endless.token_delay = Duration::from_millis(5);
    f.add("amazon.nova-lite-v1:0", endless);
    let mut mid = BedrockModel::new(BedrockReply::Text("one two three four".into()));
    mid.fault = BedrockFault::StreamException {
        after: 2,
        name: "throttlingException".into(),
    };
    // Frames cut into 7-byte HTTP chunks.
    mid.chunk_bytes = 7;
    f.add("amazon.nova-micro-v1:0", mid);
    for &(id, status, name) in ERRORS {
        let mut m = BedrockModel::new(BedrockReply::Echo);
        m.fault = BedrockFault::Status(status, name.into(), format!("{name} (injected)"));
        m.listed = false;
        f.add(id, m);
    }
    // Only discovery knows these.
    f.add(
        "meta.llama3-8b-instruct-v1:0",
        BedrockModel::new(BedrockReply::Echo),
    );
    f.add_profile(
        "us.meta.llama3-8b-instruct-v1:0",
        "meta.llama3-8b-instruct-v1:0",
    );
    f.add("us.meta.llama3-8b-instruct-v1:0", {
        let mut m = BedrockModel::new(BedrockReply::Echo);
        m.listed = false;
        m
    });
    f
}

pub(crate) async fn start_bedrock(f: &FakeBedrock, extra: &str) -> Gateway {
    let url = f.url();
    let gw = start(
        "http://127.0.0.1:9",
        &config(&format!("{}\n{extra}", models())),
        &[
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &url),
            ("AWS_ENDPOINT_URL_BEDROCK", &url),
        ],
    );
    // Discovery runs in the background: wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = get_json(&gw.url, "/v1/models", Some(KEY)).await;
        if m.to_string().contains("meta.llama3-8b-instruct-v1:0") {
            break;
        }
        assert!(Instant::now() < deadline, "discovery did not finish: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gw
}

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "你好, Bedrock"}
    ]})
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_through_converse_and_converse_stream() {
    let f = fake_bedrock().await;
    let gw = start_bedrock(&f, "").await;

    let v = post_json(&gw, "/v1/chat/completions", hello("claude")).await;
    check_chat_completion(&v);
    assert_eq!(v["choices"][0]["message"]["content"], "Echo: 你好, Bedrock");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["model"], "claude");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let r = f.requests().pop().unwrap();
    assert_eq!(
        (r.operation.as_str(), r.model_id.as_str()),
        ("converse", CLAUDE)
    );
    assert_eq!(r.body["system"], json!([{"text": "Be brief."}]));
    assert!(r.headers["authorization"].starts_with("AWS4-HMAC-SHA256 Credential=test/"));

    // Streaming, with and without the usage chunk.
    let mut body = hello("claude");
    body["stream"] = true.into();
    body["stream_options"] = json!({"include_usage": true});
    let events = sse_events(post(&gw, "/v1/chat/completions", body.clone()).await).await;
    let sse: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    check_chat_sse(&sse);
    assert_eq!(content(&events), "Echo: 你好, Bedrock");
    let usage: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(f.requests().pop().unwrap().operation, "converse-stream");
    body["stream_options"] = Value::Null;
    let events = sse_events(post(&gw, "/v1/chat/completions", body).await).await;
    assert!(
        !events.iter().any(|e| e.contains("\"usage\"")),
        "no usage chunk unless asked"
    );
    assert_eq!(events.last().unwrap(), "[DONE]");

    // An application inference profile ARN reaches Bedrock intact (it is
    // percent-encoded in the path).
    let v = post_json(&gw, "/v1/chat/completions", hello("app-profile")).await;
    assert_eq!(v["choices"][0]["message"]["content"], "Echo: 你好, Bedrock");
    assert_eq!(f.requests().pop().unwrap().model_id, ARN);
    // The configured model id works as a name too.
    let v = post_json(&gw, "/v1/chat/completions", hello(CLAUDE)).await;
    assert_eq!(v["model"], CLAUDE);
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_calls_stream_with_dense_indices_and_results_go_back() {
    let f = fake_bedrock().await;
    let gw = start_bedrock(&f, "").await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let body = json!({"model": "tools", "stream": true, "tools": tools, "tool_choice": "required",
        "messages": [{"role": "user", "content": "Weather in Beijing?"}]});
    let events = sse_events(post(&gw, "/v1/chat/completions", body).await).await;
    let sse: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    check_chat_sse(&sse);
    let mut args = String::new();
    let mut ids = Vec::new();
    for e in &events[..events.len() - 1] {
        let v: Value = serde_json::from_str(e).unwrap();
        for tc in v["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert_eq!(
                tc["index"], 0,
                "the first call is index 0 after a text block"
            );
            if let Some(id) = tc["id"].as_str() {
                ids.push(id.to_owned());
            }
            args.push_str(tc["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap()["city"],
        "北京"
    );
    assert!(sse.contains("\"finish_reason\":\"tool_calls\""));
    let sent = f.requests().pop().unwrap().body;
    assert_eq!(sent["toolConfig"]["toolChoice"], json!({"any": {}}));

    // The result goes back as a toolResult in the next user turn.
    let body = json!({"model": "tools", "tools": tools, "messages": [
        {"role": "user", "content": "Weather in Beijing?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": ids[0], "type": "function",
            "function": {"name": "get_weather", "arguments": args}}]},
        {"role": "tool", "tool_call_id": ids[0], "content": "晴, 25°C"}
    ]});
    let v = post_json(&gw, "/v1/chat/completions", body).await;
    check_chat_completion(&v);
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "The tool said: 晴, 25°C"
    );
    let sent = f.requests().pop().unwrap().body;
    assert_eq!(
        sent["messages"][2]["content"][0]["toolResult"]["toolUseId"],
        ids[0]
    );
    assert_eq!(
        sent["messages"][1]["content"][0]["toolUse"]["input"]["city"],
        "北京"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reasoning_as_a_field_or_inline() {
    let f = fake_bedrock().await;
    let gw = start_bedrock(&f, "").await;
    let mut body = hello("thinker");
    body["reasoning_effort"] = "high".into();
    body["max_tokens"] = 10000.into();
    let v = post_json(&gw, "/v1/chat/completions", body.clone()).await;
    check_chat_completion(&v);
    let m = &v["choices"][0]["message"];
    assert_eq!(m["reasoning_content"], "The user greets me. I greet back.");
    assert_eq!(m["content"], "Hello! 你好！");
    let sent = f.requests().pop().unwrap().body;
    assert_eq!(
        sent["additionalModelRequestFields"]["thinking"],
        json!({"type": "enabled", "budget_tokens": 8000})
    );
    assert_eq!(sent["inferenceConfig"]["maxTokens"], 10000);

    body["model"] = "thinker-inline".into();
    body["stream"] = true.into();
    let events = sse_events(post(&gw, "/v1/chat/completions", body).await).await;
    assert_eq!(
        content(&events),
        "<think>\nThe user greets me. I greet back.\n</think>\n\nHello! 你好！"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bedrock_exceptions_map_to_openai_errors() {
    let f = fake_bedrock().await;
    let gw = start_bedrock(&f, "").await;
    for (id, status, code) in [
        ("x.validation-v1", 400, "validation_error"),
        ("x.denied-v1", 403, "access_denied"),
        ("x.notfound-v1", 404, "model_not_found"),
        ("x.throttled-v1", 429, "rate_limit_exceeded"),
        ("x.timeout-v1", 504, "model_timeout"),
        ("x.unavailable-v1", 503, "service_unavailable"),
        ("x.internal-v1", 502, "upstream_error"),
    ] {
        for stream in [false, true] {
            let mut body = hello(id);
            body["stream"] = stream.into();
            let r = post(&gw, "/v1/chat/completions", body).await;
            assert_eq!(r.status().as_u16(), status, "{id} stream={stream}");
            let v: Value = r.json().await.unwrap();
            check_error(&v);
            assert_eq!(v["error"]["code"], code, "{id}: {v}");
        }
    }
    // Mid-stream: one error event, no [DONE], frames cut into 7-byte chunks.
    let mut body = hello("midstream");
    body["stream"] = true.into();
    let events = sse_events(post(&gw, "/v1/chat/completions", body).await).await;
    assert_eq!(content(&events), "one two");
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "rate_limit_exceeded", "{last}");
    assert!(!events.iter().any(|e| e == "[DONE]"));
    // A bad request never reaches Bedrock.
    let n = f.requests().len();
    let v = post_json(
        &gw,
        "/v1/chat/completions",
        json!({"model": "claude", "n": 9, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    check_error(&v);
    assert_eq!(v["error"]["param"], "n");
    assert_eq!(f.requests().len(), n);
}

#[tokio::test(flavor = "multi_thread")]
async fn discovered_models_are_listed_and_served() {
    let f = fake_bedrock().await;
    let gw = start_bedrock(&f, "").await;
    let m = get_json(&gw.url, "/v1/models", Some(KEY)).await;
    let ids: Vec<&str> = m["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    for want in [
        "claude",
        "meta.llama3-8b-instruct-v1:0",
        "us.meta.llama3-8b-instruct-v1:0",
    ] {
        assert!(ids.contains(&want), "{want} in {ids:?}");
    }
    assert!(
        !ids.contains(&"amazon.titan-embed-text-v2:0"),
        "a configured model is listed under its name, not its id too"
    );
    let entry = get_json(
        &gw.url,
        "/v1/models/us.meta.llama3-8b-instruct-v1:0",
        Some(KEY),
    )
    .await;
    assert_eq!(entry["owned_by"], "meta");
    let v = post_json(
        &gw,
        "/v1/chat/completions",
        hello("us.meta.llama3-8b-instruct-v1:0"),
    )
    .await;
    assert_eq!(v["choices"][0]["message"]["content"], "Echo: 你好, Bedrock");
    // Discovery happened once, at start, not per request.
    let listings = f
        .requests()
        .iter()
        .filter(|r| r.operation == "foundation-models")
        .count();
    assert_eq!(listings, 1);
}

/// Serves one PNG on a loopback port.
async fn image_server() -> (u16, tokio::task::JoinHandle<()>) {
    use base64::Engine as _;
    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG)
        .unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let png = png.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let mut out = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    png.len()
                )
                .into_bytes();
                out.extend_from_slice(&png);
                let _ = s.write_all(&out).await;
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn images_inline_and_fetched_with_an_ssrf_guard() {
    let f = fake_bedrock().await;
    let gw = start_bedrock(&f, "").await;
    let ask = |url: String| {
        json!({"model": "claude", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": url}}
        ]}]})
    };
    let v = post_json(
        &gw,
        "/v1/chat/completions",
        ask(format!("data:image/png;base64,{PNG}")),
    )
    .await;
    assert_eq!(
        v["choices"][0]["message"]["content"],
        format!("Echo: What is this? {}", png_seen())
    );
    let (port, _task) = image_server().await;
    // Loopback, private and metadata addresses are refused before any
    // connection (names resolving to them are refused by the resolver: see
    // the unit tests of `images`).
    for url in [
        format!("http://127.0.0.1:{port}/cat.png"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::1]/x.png".to_owned(),
        "http://2130706433/x.png".to_owned(),
        "file:///etc/passwd".to_owned(),
    ] {
        let r = post(&gw, "/v1/chat/completions", ask(url.clone())).await;
        assert_eq!(r.status(), 400, "{url}");
        let v: Value = r.json().await.unwrap();
        check_error(&v);
        assert_eq!(v["error"]["code"], "invalid_image_url", "{url}: {v}");
    }
    // A host exempt by configuration is fetched.
    let v = post_json(
        &gw,
        "/v1/chat/completions",
        ask(format!("http://localhost:{port}/cat.png")),
    )
    .await;
    assert_eq!(
        v["choices"][0]["message"]["content"],
        format!("Echo: What is this? {}", png_seen()),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn embeddings_in_both_encodings() {
    let f = fake_bedrock().await;
    let gw = start_bedrock(&f, "").await;
    let v = post_json(
        &gw,
        "/v1/embeddings",
        json!({"model": "text-embedding-3-small", "input": ["hello", "你好吗"], "dimensions": 256}),
    )
    .await;
    assert_eq!(v["object"], "list");
    let d = v["data"].as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0]["embedding"].as_array().unwrap().len(), 256);
    assert_eq!(
        d[0]["embedding"][0], 5.0,
        "the fake's first value is the length"
    );
    assert_eq!(d[1]["embedding"][0], 3.0);
    assert_eq!(d[1]["index"], 1);
    assert_eq!(v["usage"]["prompt_tokens"], 2, "Titan's own token counts");
    let v = post_json(
        &gw,
        "/v1/embeddings",
        json!({"model": "cohere", "input": "query text", "encoding_format": "base64", "input_type": "search_query"}),
    )
    .await;
    let floats = openai_types::embeddings::EmbeddingVector::Base64(
        v["data"][0]["embedding"].as_str().unwrap().into(),
    )
    .to_floats()
    .unwrap();
    assert_eq!(floats.len(), 1024);
    assert_eq!(floats[0], 10.0);
    assert_eq!(
        f.requests().pop().unwrap().body["input_type"],
        "search_query"
    );
    // Token ids (LangChain's default input) are decoded with cl100k_base.
    let v = post_json(
        &gw,
        "/v1/embeddings",
        json!({"model": "text-embedding-3-small", "input": [[9906], [9906, 0]]}),
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let mut sent: Vec<String> = f
        .requests()
        .iter()
        .rev()
        .take(2)
        .map(|r| r.body["inputText"].as_str().unwrap_or_default().to_owned())
        .collect();
    sent.sort();
    assert_eq!(sent, ["Hello", "Hello!"]);
    // Errors: a chat model, an id outside the vocabulary.
    let r = post(
        &gw,
        "/v1/embeddings",
        json!({"model": "claude", "input": "x"}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post(
        &gw,
        "/v1/embeddings",
        json!({"model": "cohere", "input": [1, 2, 4_000_000]}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    check_error(&v);
    assert_eq!(v["error"]["param"], "input[0]");
}

#[tokio::test(flavor = "multi_thread")]
async fn leaving_a_bedrock_stream_closes_the_upstream() {
    let f = fake_bedrock().await;
    let gw = start_bedrock(&f, "").await;
    let mut body = hello("endless");
    body["stream"] = true.into();
    let r = post(&gw, "/v1/chat/completions", body).await;
    let mut s = r.bytes_stream();
    use futures_util::StreamExt;
    let _ = s.next().await.unwrap().unwrap();
    drop(s);
    let left = Instant::now();
    let deadline = left + Duration::from_secs(5);
    loop {
        if let Some(st) = f.streams().into_iter().find(|s| s.ended.is_some()) {
            assert!(st.client_closed);
            assert!(st.ended.unwrap().duration_since(left) < Duration::from_millis(500));
            break;
        }
        assert!(Instant::now() < deadline, "upstream stream still open");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const PY: &str = r#"
import base64, os, struct
import openai
from openai import OpenAI
client = OpenAI(base_url=os.environ["BASE"] + "/v1", api_key=os.environ["KEY"], max_retries=0)

# 1. A full tool-calling loop: call, tool result, final answer.
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
messages = [{"role": "user", "content": "What's the weather in Beijing?"}]
r = client.chat.completions.create(model="tools", messages=messages, tools=tools)
assert r.choices[0].finish_reason == "tool_calls", r
call = r.choices[0].message.tool_calls[0]
assert call.function.name == "get_weather"
import json
assert json.loads(call.function.arguments)["city"] == "北京"
messages.append(r.choices[0].message.model_dump(exclude_none=True))
messages.append({"role": "tool", "tool_call_id": call.id, "content": "Sunny, 25C"})
r = client.chat.completions.create(model="tools", messages=messages, tools=tools)
assert r.choices[0].message.content == "The tool said: Sunny, 25C", r
assert r.choices[0].finish_reason == "stop"

# The same loop streamed, accumulating tool-call fragments by index.
calls = {}
for chunk in client.chat.completions.create(model="tools", stream=True, tools=tools,
        messages=[{"role": "user", "content": "Weather?"}]):
    for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
        c = calls.setdefault(tc.index, {"id": tc.id, "name": tc.function.name, "args": ""})
        c["args"] += tc.function.arguments or ""
assert list(calls) == [0], calls
assert json.loads(calls[0]["args"])["city"] == "北京"

# 2. An image.
png = os.environ["PNG"]
r = client.chat.completions.create(model="claude", messages=[{"role": "user", "content": [
    {"type": "text", "text": "Describe"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + png}}]}])
assert r.choices[0].message.content == "Echo: Describe " + os.environ["PNG_SEEN"], r

# 3. Reasoning, streamed, with usage.
reasoning, text, usage = "", "", None
for chunk in client.chat.completions.create(model="thinker", stream=True, reasoning_effort="low",
        stream_options={"include_usage": True}, messages=[{"role": "user", "content": "hi"}]):
    if chunk.usage:
        usage = chunk.usage
    if chunk.choices:
        d = chunk.choices[0].delta
        reasoning += getattr(d, "reasoning_content", None) or ""
        text += d.content or ""
assert reasoning == "The user greets me. I greet back.", reasoning
assert text == "Hello! 你好！", text
assert usage.prompt_tokens > 0 and usage.completion_tokens > 0, usage

# 4. Embeddings, float and base64 (the SDK decodes base64 itself).
e = client.embeddings.create(model="text-embedding-3-small", input=["abc", "de"], encoding_format="float")
assert [d.embedding[0] for d in e.data] == [3.0, 2.0], e.data[0].embedding[:3]
e2 = client.embeddings.create(model="text-embedding-3-small", input="abc")
assert e2.data[0].embedding[0] == 3.0 and len(e2.data[0].embedding) == 1024

# 5. Errors are the SDK's typed exceptions.
try:
    client.chat.completions.create(model="claude", n=9, messages=[{"role": "user", "content": "x"}])
    raise SystemExit("expected 400")
except openai.BadRequestError as e:
    assert e.param == "n", e
print("python-bedrock-ok")
"#;

#[tokio::test(flavor = "multi_thread")]
async fn python_openai_sdk_against_bedrock() {
    let f = fake_bedrock().await;
    let gw = start_bedrock(&f, "").await;
    let env = vec![
        ("BASE", gw.url.clone()),
        ("KEY", KEY.to_owned()),
        ("PNG", PNG.to_owned()),
        ("PNG_SEEN", png_seen()),
    ];
    run_python(PY, env, "python-bedrock-ok", &gw).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn images_per_request_are_capped_and_fetched_a_few_at_a_time() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let f = fake_bedrock().await;
    let gw = start_bedrock(&f, "").await;
    // An image server that counts fetches under way at once.
    let (now, peak, total) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    {
        let (now, peak, total) = (now.clone(), peak.clone(), total.clone());
        tokio::spawn(async move {
            use base64::Engine as _;
            let png = base64::engine::general_purpose::STANDARD
                .decode(PNG)
                .unwrap();
            while let Ok((mut s, _)) = l.accept().await {
                let (png, now, peak, total) =
                    (png.clone(), now.clone(), peak.clone(), total.clone());
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    total.fetch_add(1, Ordering::SeqCst);
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    let mut out = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        png.len()
                    )
                    .into_bytes();
                    out.extend_from_slice(&png);
                    let _ = s.write_all(&out).await;
                });
            }
        });
    }
    let ask = |n: usize| {
        let mut parts = vec![json!({"type": "text", "text": "What are these?"})];
        parts.extend((0..n).map(|i| {
            json!({"type": "image_url", "image_url": {"url": format!("http://localhost:{port}/cat{i}.png")}})
        }));
        json!({"model": "claude", "messages": [{"role": "user", "content": parts}]})
    };
    // Over the cap (20, Bedrock's own): refused before any fetch.
    let r = post(&gw, "/v1/chat/completions", ask(21)).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    check_error(&v);
    assert_eq!(v["error"]["param"], "messages");
    assert_eq!(v["error"]["code"], "too_many_images");
    assert_eq!(total.load(Ordering::SeqCst), 0);
    // Twelve: all fetched, never more than four at once.
    let v = post_json(&gw, "/v1/chat/completions", ask(12)).await;
    let text = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(text.matches("[image png").count(), 12, "{v}");
    assert_eq!(total.load(Ordering::SeqCst), 12);
    let p = peak.load(Ordering::SeqCst);
    assert!((2..=4).contains(&p), "peak concurrency {p}");
    // n = 4, whole and streamed: each image fetched once per request and
    // shared by every choice (80 fetches, 16 at once).
    for stream in [false, true] {
        let (before, _) = (
            total.load(Ordering::SeqCst),
            peak.store(0, Ordering::SeqCst),
        );
        let mut body = ask(20);
        body["n"] = json!(4);
        body["stream"] = json!(stream);
        let r = post(&gw, "/v1/chat/completions", body).await;
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        if !stream {
            assert_eq!(text.matches("[image png").count(), 4 * 20, "{text}");
        } else {
            assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        }
        assert_eq!(total.load(Ordering::SeqCst) - before, 20, "stream {stream}");
        let p = peak.load(Ordering::SeqCst);
        assert!(p <= 4, "stream {stream}: peak concurrency {p}");
    }
}

/// The first token-id embedding loads a vocabulary
/// (100 to 400 ms of CPU) off the worker, so `/ping` on the same worker
/// does not wait for it.
#[tokio::test(flavor = "multi_thread")]
async fn loading_a_vocabulary_never_stalls_the_worker() {
    let f = fake_bedrock().await;
    let url = f.url();
    let text = config(&models()).replacen(
        "log_format = \"json\"",
        "log_format = \"json\"\nworkers = 1",
        1,
    );
    let gw = start(
        "http://127.0.0.1:9",
        &text,
        &[
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &url),
            ("AWS_ENDPOINT_URL_BEDROCK", &url),
        ],
    );
    let ids: Vec<u32> = (0..2000).map(|i| 1000 + i % 5000).collect();
    let embed = post(
        &gw,
        "/v1/embeddings",
        json!({"model": "text-embedding-3-small", "input": [ids]}),
    );
    let pings = async {
        let mut worst = Duration::ZERO;
        tokio::time::sleep(Duration::from_millis(5)).await;
        for _ in 0..20 {
            let t = Instant::now();
            let r = crate::support::client()
                .get(format!("{}/ping", gw.url))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            worst = worst.max(t.elapsed());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        worst
    };
    let (r, worst) = tokio::join!(embed, pings);
    assert_eq!(r.status(), 200);
    eprintln!("slowest /ping while the vocabulary loaded: {worst:?}");
    // 724 ms before the fix (debug build); a margin for a busy machine.
    assert!(worst < Duration::from_millis(250), "/ping waited {worst:?}");
}
