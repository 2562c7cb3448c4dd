//! The official OpenAI SDKs as clients: Python `openai` (as the seed's client
//! uses it) and Rust `async-openai`.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
};
use futures_util::StreamExt;

use crate::support::{KEY, config, fake, run_python, start};

const PY: &str = r#"
import os, sys
from openai import OpenAI
client = OpenAI(base_url=os.environ["BASE"] + "/v1", api_key=os.environ["KEY"])
# The seed's client: stream and read chunk.choices[0].delta.content.
text = ""
usage = None
for chunk in client.chat.completions.create(model="chat", stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "你好, SDK"}]):
    if chunk.usage:
        usage = chunk.usage
    if chunk.choices and chunk.choices[0].delta.content:
        text += chunk.choices[0].delta.content
assert text == "Echo: 你好, SDK", text
assert usage.completion_tokens > 0, usage
r = client.chat.completions.create(model="tgi", messages=[{"role": "user", "content": "plain"}])
assert "plain" in r.choices[0].message.content, r
assert r.choices[0].finish_reason == "stop"
models = [m.id for m in client.models.list()]
assert "chat" in models, models
# Errors surface as the SDK's typed exceptions.
import openai
try:
    client.chat.completions.create(model="nope-model-xyz", messages=[{"role": "user", "content": "x"}])
    raise SystemExit("expected 404")
except openai.NotFoundError as e:
    assert e.code == "model_not_found", e
bad = OpenAI(base_url=os.environ["BASE"] + "/v1", api_key="sk-wrong", max_retries=0)
try:
    bad.models.list()
    raise SystemExit("expected 401")
except openai.AuthenticationError:
    pass
print("python-sdk-ok")
"#;

#[tokio::test(flavor = "multi_thread")]
async fn python_openai_sdk() {
    let f = fake().await;
    let gw = start(&f.url(), &config(""), &[]);
    let env = vec![("BASE", gw.url.clone()), ("KEY", KEY.to_owned())];
    run_python(PY, env, "python-sdk-ok", &gw).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_async_openai() {
    let f = fake().await;
    let gw = start(&f.url(), &config(""), &[]);
    let client = Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("{}/v1", gw.url))
            .with_api_key(KEY),
    );
    let req = CreateChatCompletionRequestArgs::default()
        .model("lmi")
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("Rust 客户端")
            .build()
            .unwrap()
            .into()])
        .build()
        .unwrap();
    let r = client.chat().create(req.clone()).await.unwrap();
    let text = r.choices[0].message.content.clone().unwrap();
    assert!(text.contains("Rust 客户端"), "{text}");
    let mut s = client.chat().create_stream(req).await.unwrap();
    let mut streamed = String::new();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.unwrap();
        if let Some(t) = chunk.choices.first().and_then(|c| c.delta.content.clone()) {
            streamed.push_str(&t);
        }
    }
    assert_eq!(streamed, text);
}
