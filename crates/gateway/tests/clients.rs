//! Popular clients, unmodified, against the demo's models:
//! openai-python, openai-node and langchain-openai each run chat, a stream,
//! a tool round trip, structured output, embeddings with the client's own
//! defaults (base64 floats; LangChain's cl100k token ids), `n = 2`, a
//! throttled model (their typed rate-limit error, with `Retry-After`) and
//! the Responses API. `cargo xtask test` installs the clients.

use std::net::SocketAddr;
use std::process::Command;

use mock_upstreams::demo::{fake_bedrock_on, fake_sagemaker_on};

use crate::support::{Gateway, run_python, start};

const DEMO: &str = include_str!("../../../deploy/config/demo.toml");
const DEMO_KEY: &str = "sk-demo-key";

struct Demo {
    gw: Gateway,
    bedrock: mock_upstreams::FakeBedrock,
    _sagemaker: mock_upstreams::FakeSageMaker,
}

async fn demo() -> Demo {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let sagemaker = fake_sagemaker_on(any).await.unwrap();
    let bedrock = fake_bedrock_on(any).await.unwrap();
    let url = bedrock.url();
    let gw = start(
        &sagemaker.url(),
        DEMO,
        &[
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &url),
            ("AWS_ENDPOINT_URL_BEDROCK", &url),
        ],
    );
    Demo {
        gw,
        bedrock,
        _sagemaker: sagemaker,
    }
}

/// tiktoken's `cl100k_base` file, written from tiktoken-rs's ranks (the
/// same bytes OpenAI publishes), so LangChain's tokenizer loads offline.
fn cl100k_file(dir: &std::path::Path) -> std::path::PathBuf {
    use base64::Engine as _;
    let bpe = tiktoken_rs::cl100k_base_singleton();
    let mut out = String::new();
    for rank in 0..100_256u32 {
        let bytes = bpe.decode_bytes(&[rank]).unwrap();
        out.push_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
        out.push(' ');
        out.push_str(&rank.to_string());
        out.push('\n');
    }
    let path = dir.join("cl100k_base.tiktoken");
    std::fs::write(&path, out).unwrap();
    path
}

const PY: &str = r#"
import os, json, hashlib, shutil
cache = os.environ["TIKTOKEN_CACHE_DIR"]
url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
shutil.copy(os.environ["CL100K"], os.path.join(cache, hashlib.sha1(url.encode()).hexdigest()))

import openai
from openai import OpenAI
from pydantic import BaseModel

base, key = os.environ["BASE"] + "/v1", os.environ["KEY"]
client = OpenAI(base_url=base, api_key=key, max_retries=0)
hi = [{"role": "user", "content": "hi"}]

class Person(BaseModel):
    name: str
    age: int

r = client.chat.completions.create(model="demo-chat", messages=hi)
assert r.choices[0].message.content == "Echo: hi", r
text = "".join(c.choices[0].delta.content or "" for c in
    client.chat.completions.create(model="demo-tgi", stream=True, messages=hi) if c.choices)
assert "hi" in text, text
tools = [{"type": "function", "function": {"name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
msgs = [{"role": "user", "content": "Weather in Paris?"}]
r = client.chat.completions.create(model="demo-tools", messages=msgs, tools=tools)
call = r.choices[0].message.tool_calls[0]
assert json.loads(call.function.arguments) == {"city": "Paris"}, call
msgs += [r.choices[0].message, {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
r = client.chat.completions.create(model="demo-tools", messages=msgs, tools=tools)
assert r.choices[0].message.content == "The tool said: sunny", r
p = client.chat.completions.parse(model="demo-claude", messages=msgs[:1], response_format=Person)
assert p.choices[0].message.parsed == Person(name="x", age=1), p
e = client.embeddings.create(model="demo-embed", input=["abc", "de"])  # base64 by default
assert [d.embedding[0] for d in e.data] == [3.0, 2.0], e.data[0].embedding[:2]
r = client.chat.completions.create(model="demo-chat", n=2, messages=hi)
assert [c.index for c in r.choices] == [0, 1] and r.choices[1].message.content == "Echo: hi", r
try:
    client.chat.completions.create(model="demo-throttled", messages=hi)
    raise SystemExit("expected a RateLimitError")
except openai.RateLimitError as err:
    assert int(err.response.headers["retry-after"]) >= 1, err.response.headers
r = client.responses.create(model="demo-chat", input="hello")
assert r.output_text == "Echo: hello", r
with client.responses.stream(model="demo-claude", input="hello") as s:
    final = s.get_final_response()
assert final.output_text == "Hello from Bedrock! 你好！", final

from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from langchain_core.tools import tool

def chat(model):
    return ChatOpenAI(model=model, base_url=base, api_key=key, max_retries=0)

assert chat("demo-chat").invoke("hi").content == "Echo: hi"
assert "".join(c.content for c in chat("demo-chat").stream("hi")) == "Echo: hi"

@tool
def get_weather(city: str) -> str:
    "The weather in a city."
    return "sunny"

m = chat("demo-tools").bind_tools([get_weather]).invoke("Weather in Paris?")
assert m.tool_calls[0]["name"] == "get_weather" and m.tool_calls[0]["args"] == {"city": "Paris"}, m
assert chat("demo-claude").with_structured_output(Person).invoke("Ann") == Person(name="x", age=1)
from langchain_core.messages import HumanMessage
two = ChatOpenAI(model="demo-chat", base_url=base, api_key=key, n=2).generate([[HumanMessage("hi")]])
assert len(two.generations[0]) == 2, two
try:
    chat("demo-throttled").invoke("hi")
    raise SystemExit("expected a RateLimitError")
except openai.RateLimitError:
    pass
r = ChatOpenAI(model="demo-chat", base_url=base, api_key=key, use_responses_api=True).invoke("hello")
t = r.text if isinstance(r.text, str) else r.text()
assert t == "Echo: hello", r
# LangChain's default: inputs sent as cl100k token ids (the fake's first
# value is the length of the text it received).
v = OpenAIEmbeddings(model="demo-embed", base_url=base, api_key=key).embed_documents(["hello world", "你好"])
assert [round(x[0]) for x in v] == [11, 2], [x[:2] for x in v]
print("python-clients-ok")
"#;

const JS: &str = r#"
const OpenAI = require('openai');
const assert = require('assert');
const client = new OpenAI({ baseURL: process.env.BASE + '/v1', apiKey: process.env.KEY, maxRetries: 0 });
const hi = [{ role: 'user', content: 'hi' }];
(async () => {
  let r = await client.chat.completions.create({ model: 'demo-chat', messages: hi });
  assert.strictEqual(r.choices[0].message.content, 'Echo: hi');
  let text = '';
  for await (const c of await client.chat.completions.create({ model: 'demo-tgi', stream: true, messages: hi })) {
    text += c.choices[0]?.delta?.content ?? '';
  }
  assert(text.includes('hi'), text);
  const tools = [{ type: 'function', function: { name: 'get_weather',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  const msgs = [{ role: 'user', content: 'Weather in Paris?' }];
  r = await client.chat.completions.create({ model: 'demo-tools', messages: msgs, tools });
  const call = r.choices[0].message.tool_calls[0];
  assert.deepStrictEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
  msgs.push(r.choices[0].message, { role: 'tool', tool_call_id: call.id, content: 'sunny' });
  r = await client.chat.completions.create({ model: 'demo-tools', messages: msgs, tools });
  assert.strictEqual(r.choices[0].message.content, 'The tool said: sunny');
  r = await client.chat.completions.create({ model: 'demo-claude', messages: msgs.slice(0, 1),
    response_format: { type: 'json_schema', json_schema: { name: 'Person', strict: true, schema: {
      type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer' } },
      required: ['name', 'age'], additionalProperties: false } } } });
  assert.deepStrictEqual(JSON.parse(r.choices[0].message.content), { name: 'x', age: 1 });
  const e = await client.embeddings.create({ model: 'demo-embed', input: ['abc', 'de'] });
  assert.deepStrictEqual(e.data.map((d) => d.embedding[0]), [3, 2]);
  r = await client.chat.completions.create({ model: 'demo-chat', n: 2, messages: hi });
  assert.deepStrictEqual(r.choices.map((c) => c.index), [0, 1]);
  try {
    await client.chat.completions.create({ model: 'demo-throttled', messages: hi });
    throw new Error('expected a RateLimitError');
  } catch (err) {
    assert(err instanceof OpenAI.RateLimitError, String(err));
    assert(Number(err.headers.get('retry-after')) >= 1);
  }
  const resp = await client.responses.create({ model: 'demo-chat', input: 'hello' });
  assert.strictEqual(resp.output_text, 'Echo: hello');
  const types = [];
  for await (const ev of await client.responses.create({ model: 'demo-claude', input: 'hello', stream: true })) {
    types.push(ev.type);
  }
  assert.strictEqual(types[0], 'response.created');
  assert.strictEqual(types[types.length - 1], 'response.completed');
  console.log('node-sdk-ok');
})().catch((err) => { console.error(err); process.exit(1); });
"#;

#[tokio::test(flavor = "multi_thread")]
async fn python_clients_on_the_demo_models() {
    let d = demo().await;
    let dir = std::env::temp_dir().join(format!("gw-tiktoken-{}", d.gw.port));
    std::fs::create_dir_all(&dir).unwrap();
    let cl100k = cl100k_file(&dir);
    let env = vec![
        ("BASE", d.gw.url.clone()),
        ("KEY", DEMO_KEY.to_owned()),
        ("TIKTOKEN_CACHE_DIR", dir.display().to_string()),
        ("CL100K", cl100k.display().to_string()),
    ];
    run_python(PY, env, "python-clients-ok", &d.gw).await;
    // LangChain's token ids arrived at Bedrock as the texts they encode.
    let texts: Vec<String> = d
        .bedrock
        .requests()
        .iter()
        .filter_map(|r| r.body["inputText"].as_str().map(str::to_owned))
        .collect();
    assert!(texts.iter().any(|t| t == "hello world"), "{texts:?}");
    assert!(texts.iter().any(|t| t == "你好"), "{texts:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn node_client_on_the_demo_models() {
    let Some(modules) = std::env::var_os("OAI_NODE_MODULES") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "the Node.js OpenAI SDK is required in CI (cargo xtask test installs it)"
        );
        eprintln!("SKIP: the Node.js OpenAI SDK is not installed (cargo xtask test installs it)");
        return;
    };
    let d = demo().await;
    let (url, gw_logs) = (d.gw.url.clone(), d.gw.port);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["-e", JS])
            .env("NODE_PATH", modules)
            .env("BASE", url)
            .env("KEY", DEMO_KEY)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("node-sdk-ok"),
        "{stdout}\n{}\n(gateway on port {gw_logs})\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.gw.logs()
    );
}
