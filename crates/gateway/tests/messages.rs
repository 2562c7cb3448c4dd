//! Anthropic's Messages API as a front door, with the official `anthropic`
//! Python SDK as the client and every message and stream event validated
//! against the SDK's own types (strict): a SageMaker endpoint, Bedrock
//! models through Converse (thinking, two parallel tool calls and their
//! results, an image) and an OpenAI-style upstream (a PDF), `count_tokens`,
//! and each error type in Anthropic's envelope.

use mock_upstreams::{BedrockFault, BedrockModel, BedrockReply, FakeBedrock, FakeOpenAi};
use serde_json::json;

use crate::bedrock::{PNG, THINKER};
use crate::support::{Gateway, KEY, config, fake, run_python, start};

const PARALLEL: &str = "anthropic.claude-parallel-tools-v1:0";

async fn setup() -> (
    Gateway,
    FakeOpenAi,
    FakeBedrock,
    mock_upstreams::FakeSageMaker,
) {
    let (gw, up, bedrock, sm, _ant) = setup_all().await;
    (gw, up, bedrock, sm)
}

/// A Messages-compatible upstream's key.
const ANT_KEY: &str = "sk-ant-upstream-key";

/// The gateway over a fake SageMaker, a fake Bedrock, an OpenAI-style
/// upstream (`a`) and a Messages upstream (`ant`).
async fn setup_all() -> (
    Gateway,
    FakeOpenAi,
    FakeBedrock,
    mock_upstreams::FakeSageMaker,
    FakeOpenAi,
) {
    let sm = fake().await;
    let bedrock = FakeBedrock::start().await.unwrap();
    bedrock.add(
        THINKER,
        BedrockModel::new(BedrockReply::Reasoning {
            thinking: "The user greets me. I greet back.".into(),
            answer: "Hello! 你好！".into(),
        }),
    );
    bedrock.add("x.echo-v1", BedrockModel::new(BedrockReply::Echo));
    bedrock.add(
        PARALLEL,
        BedrockModel::new(BedrockReply::ToolCalls(vec![
            ("get_weather".into(), json!({"city": "Paris"})),
            ("get_time".into(), json!({"zone": "Europe/Paris"})),
        ])),
    );
    for (id, status, name) in [
        ("x.throttled-v1", 429, "ThrottlingException"),
        ("x.unavailable-v1", 503, "ServiceUnavailableException"),
        ("x.internal-v1", 500, "InternalServerException"),
    ] {
        let mut m = BedrockModel::new(BedrockReply::Echo);
        m.fault = BedrockFault::Status(status, name.into(), format!("{name} (injected)"));
        bedrock.add(id, m);
    }
    let mut mid = BedrockModel::new(BedrockReply::Text("one two three four".into()));
    mid.fault = BedrockFault::StreamException {
        after: 2,
        name: "modelStreamErrorException".into(),
    };
    bedrock.add("x.midstream-v1", mid);
    let up = FakeOpenAi::start("a").await.unwrap();
    let ant = FakeOpenAi::start("ant").await.unwrap();
    let models: String = [
        ("thinker", THINKER),
        ("seer", "x.echo-v1"),
        ("parallel", PARALLEL),
        ("throttled", "x.throttled-v1"),
        ("unavailable", "x.unavailable-v1"),
        ("internal", "x.internal-v1"),
        ("midstream", "x.midstream-v1"),
    ]
    .iter()
    .map(|(name, id)| {
        format!("\n[[models]]\nname = \"{name}\"\nbackend = \"bedrock\"\nmodel_id = \"{id}\"\n")
    })
    .collect();
    let extra = format!(
        r#"{models}
[[auth.scoped_keys]]
key = "sk-only-gpt"
models = ["gpt-*"]

[[upstreams]]
name = "a"
base_url = "{}"
models_allow = ["gpt-*"]

[[upstreams]]
name = "ant"
kind = "anthropic"
base_url = "{}"
api_key = "{ANT_KEY}"
models_allow = ["claude-up-*"]
"#,
        up.base_url(),
        ant.base_url()
    );
    let url = bedrock.url();
    let gw = start(
        &sm.url(),
        &config(&extra),
        &[("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &url)],
    );
    (gw, up, bedrock, sm, ant)
}

const PY: &str = r#"
import os, json, httpx, pydantic, anthropic
from anthropic.types import Message, RawMessageStreamEvent, MessageTokensCount

BASE, KEY, PNG = os.environ["BASE"], os.environ["KEY"], os.environ["PNG"]
SIGNATURE = "ZmFrZS1zaWduYXR1cmU="
client = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0)
MESSAGE = pydantic.TypeAdapter(Message)
EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}

def strict_message(body, headers=HEADERS):
    r = httpx.post(BASE + "/v1/messages", json=body, headers=headers, timeout=30)
    assert r.status_code == 200, (r.status_code, r.text)
    return MESSAGE.validate_python(r.json(), strict=True)

def strict_stream(body):
    """Every event validated strictly; returns (events, error data or None)."""
    events, error, name = [], None, None
    with httpx.stream("POST", BASE + "/v1/messages", json=dict(body, stream=True),
                      headers=HEADERS, timeout=30) as r:
        assert r.status_code == 200, (r.status_code, r.read())
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                assert data["type"] == name, (name, data)
                assert error is None, "an event after the error"
                if name == "error":
                    error = data
                elif name != "ping":
                    events.append(EVENT.validate_python(data, strict=True))
    if error is None:
        assert events[0].type == "message_start" and events[-1].type == "message_stop", events
    return events, error

def text(m):
    return "".join(b.text for b in m.content if b.type == "text")

# Each backend kind: whole, streamed (raw and through the SDK's helper).
for model, want in [("chat", "Echo: Hello 你好"), ("gpt-4o", "a says: Hello 你好"), ("thinker", "Hello! 你好！")]:
    hi = {"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": "Hello 你好"}]}
    m = strict_message(hi)
    assert want.lower() in text(m).lower(), (model, m)
    assert m.stop_reason == "end_turn" and m.usage.output_tokens > 0, m
    assert m.id.startswith("msg_") and m.model == model, m
    events, err = strict_stream(hi)
    assert err is None, err
    delta = [e for e in events if e.type == "message_delta"][0]
    assert delta.usage.output_tokens > 0 and delta.delta.stop_reason == "end_turn", delta
    with client.messages.stream(**hi) as s:
        final = s.get_final_message()
    assert text(final) == text(m), (final, m)
    if model == "thinker":
        for msg in (m, final):
            assert [b.type for b in msg.content] == ["thinking", "text"], msg
            assert "greet back" in msg.content[0].thinking, msg
            assert msg.content[0].signature == SIGNATURE, msg

# Two parallel tool calls, streamed; their results sent back.
tools = [
    {"name": "get_weather", "description": "Weather in a city",
     "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
    {"name": "get_time", "description": "Time in a zone",
     "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}}},
]
ask = {"model": "parallel", "max_tokens": 512, "tools": tools,
       "messages": [{"role": "user", "content": "Weather and time in Paris?"}]}
events, err = strict_stream(ask)
assert err is None, err
assert [e.content_block.type for e in events if e.type == "content_block_start"] == ["text", "tool_use", "tool_use"], events
with client.messages.stream(**ask) as s:
    final = s.get_final_message()
uses = [b for b in final.content if b.type == "tool_use"]
assert final.stop_reason == "tool_use", final
assert [(u.name, u.input) for u in uses] == [("get_weather", {"city": "Paris"}), ("get_time", {"zone": "Europe/Paris"})], uses
assert len({u.id for u in uses}) == 2, uses
follow = ask["messages"] + [
    {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": u.id, "content": f"result {i}"} for i, u in enumerate(uses)]},
]
m = strict_message(dict(ask, messages=follow))
assert text(m) == "The tool said: result 0; result 1", m

# Thinking across the tool call: the model signs it, the client sends it
# back, the model accepts it (and refuses it unsigned).
think = dict(ask, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048})
events, err = strict_stream(think)
assert err is None, err
assert any(e.type == "content_block_delta" and e.delta.type == "signature_delta" for e in events), events
with client.messages.stream(**think) as s:
    final = s.get_final_message()
assert [b.type for b in final.content] == ["thinking", "text", "tool_use", "tool_use"], final
assert final.content[0].signature == SIGNATURE and final.content[0].thinking, final
content = [b.model_dump(exclude_none=True) for b in final.content]
results = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": b["id"], "content": f"result {i}"}
                                       for i, b in enumerate(content[2:])]}
m = strict_message(dict(think, messages=think["messages"] + [{"role": "assistant", "content": content}, results]))
assert text(m) == "The tool said: result 0; result 1", m
unsigned = [dict(b, signature="") if b["type"] == "thinking" else b for b in content]
r = httpx.post(BASE + "/v1/messages", headers=HEADERS, timeout=30,
               json=dict(think, messages=think["messages"] + [{"role": "assistant", "content": unsigned}, results]))
assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", r.text
assert "thinking" in r.json()["error"]["message"], r.text

# An image (Bedrock) and a PDF (an OpenAI-style upstream).
m = strict_message({"model": "seer", "max_tokens": 64, "messages": [{"role": "user", "content": [
    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    {"type": "text", "text": "What is this?"}]}]})
assert text(m).startswith("Echo: What is this? [image png "), m
m = strict_message({"model": "gpt-4o", "max_tokens": 64, "messages": [{"role": "user", "content": [
    {"type": "document", "title": "spec.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}},
    {"type": "text", "text": "Summarize"}]}]})

# cache_control becomes Bedrock cache points: the first call writes the
# prefix, the same prefix again reads it; both counted as Anthropic does.
cached = {"model": "seer", "max_tokens": 64,
          "system": [{"type": "text", "text": "Long instructions. " * 50, "cache_control": {"type": "ephemeral"}}],
          "messages": [{"role": "user", "content": [{"type": "text", "text": "Cache me", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}]}
first = strict_message(cached)
assert first.usage.cache_creation_input_tokens > 0 and first.usage.cache_read_input_tokens == 0, first.usage
events, err = strict_stream(cached)
delta = [e for e in events if e.type == "message_delta"][0]
assert delta.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens, (delta.usage, first.usage)
assert delta.usage.cache_creation_input_tokens == 0 and delta.usage.input_tokens == first.usage.input_tokens, delta.usage
too_many = dict(cached, messages=[{"role": "user", "content": [
    {"type": "text", "text": str(i), "cache_control": {"type": "ephemeral"}} for i in range(4)]}])
r = httpx.post(BASE + "/v1/messages", json=too_many, headers=HEADERS, timeout=30)
assert r.status_code == 400 and "at most 4" in r.json()["error"]["message"], r.text

# count_tokens: a longer prompt counts more.
short = client.messages.count_tokens(model="chat", messages=[{"role": "user", "content": "hi"}])
long = client.messages.count_tokens(model="chat", messages=[{"role": "user", "content": "hi " * 400}])
assert isinstance(short, MessageTokensCount) and 0 < short.input_tokens < long.input_tokens, (short, long)

# Errors: Anthropic's envelope, the SDK's exception types.
def fails(call, exc, kind, status):
    try:
        call()
    except exc as e:
        assert e.status_code == status, (e.status_code, status)
        body = e.response.json()
        assert body["type"] == "error" and body["error"]["type"] == kind, body
        assert body["error"]["message"], body
        return
    raise SystemExit(f"expected {exc.__name__}")

hi = lambda model, **kw: {"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": "x"}], **kw}
fails(lambda: anthropic.Anthropic(base_url=BASE, api_key="sk-wrong", max_retries=0).messages.create(**hi("chat")),
      anthropic.AuthenticationError, "authentication_error", 401)
fails(lambda: anthropic.Anthropic(base_url=BASE, api_key="sk-only-gpt", max_retries=0).messages.create(**hi("chat")),
      anthropic.PermissionDeniedError, "permission_error", 403)
fails(lambda: client.messages.create(**hi("no-such-model")), anthropic.NotFoundError, "not_found_error", 404)
fails(lambda: client.messages.create(**hi("throttled")), anthropic.RateLimitError, "rate_limit_error", 429)
fails(lambda: client.messages.create(model="chat", max_tokens=32, messages="nope"),
      anthropic.BadRequestError, "invalid_request_error", 400)
r = httpx.post(BASE + "/v1/messages", headers=HEADERS, timeout=30,
               json={"model": "chat", "messages": [{"role": "user", "content": "no max_tokens"}]})
assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", r.text
r = httpx.post(BASE + "/v1/messages", headers=HEADERS, timeout=30, json=hi("chat", system="x" * 70000))
assert r.status_code == 413 and r.json() == {"type": "error", "error": {"type": "request_too_large", "message": r.json()["error"]["message"]}}, r.text
for model in ["unavailable", "internal"]:
    try:
        client.messages.create(**hi(model))
        raise SystemExit("expected an error")
    except anthropic.APIStatusError as e:
        want = {503: "overloaded_error", 529: "overloaded_error", 504: "timeout_error"}.get(e.status_code, "api_error")
        assert e.status_code >= 500 and e.response.json()["error"]["type"] == want, (e.status_code, e.response.text)
# A failure after the first byte: one error event, last.
events, err = strict_stream(hi("midstream"))
assert err is not None and err["error"]["type"] in ("api_error", "overloaded_error"), (events, err)
assert events[0].type == "message_start" and all(e.type != "message_stop" for e in events), events
print("anthropic-sdk-ok")
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_anthropic_sdk_on_every_backend_kind() {
    let (gw, up, _bedrock, _sm) = setup().await;
    let env = vec![
        ("BASE", gw.url.clone()),
        ("KEY", KEY.to_owned()),
        ("PNG", PNG.to_owned()),
    ];
    run_python(PY, env, "anthropic-sdk-ok", &gw).await;
    // The PDF reached the upstream as a chat file part.
    let pdf = up
        .requests()
        .into_iter()
        .find(|r| r.json.to_string().contains("JVBERi0xLjQK"))
        .expect("the PDF request reached the upstream");
    let part = &pdf.json["messages"][0]["content"][0];
    assert_eq!(part["type"], "file", "{part}");
    assert_eq!(
        part["file"]["file_data"],
        "data:application/pdf;base64,JVBERi0xLjQK"
    );
    // The requests are counted on the messages route.
    let metrics = reqwest::get(format!("{}/metrics", gw.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for want in [
        "gateway_requests_total{model=\"parallel\",route=\"messages\",status=\"2xx\"",
        "gateway_http_requests_total{route=\"/v1/messages\",status=\"4xx\"}",
        "gateway_upstream_errors_total{kind=\"rate_limit_exceeded\",upstream=\"models/throttled\"}",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(want)),
            "{want}: {metrics}"
        );
    }
}

const JS: &str = r#"
const Anthropic = require('@anthropic-ai/sdk');
const assert = require('assert');
const client = new Anthropic({ baseURL: process.env.BASE, apiKey: process.env.KEY, maxRetries: 0 });
const text = (m) => m.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
(async () => {
  const hi = { model: 'thinker', max_tokens: 256, messages: [{ role: 'user', content: 'Hello' }] };
  const m = await client.messages.create(hi);
  assert.strictEqual(text(m), 'Hello! 你好！');
  assert.strictEqual(m.content[0].type, 'thinking');
  const s = client.messages.stream(hi);
  const events = [];
  s.on('streamEvent', (e) => events.push(e.type));
  const f = await s.finalMessage();
  assert.strictEqual(text(f), text(m));
  assert.strictEqual(f.content[0].signature, m.content[0].signature);
  assert.strictEqual(events[0], 'message_start');
  assert.strictEqual(events[events.length - 1], 'message_stop');
  // Two parallel tool calls streamed, their results sent back.
  const tools = [
    { name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } },
    { name: 'get_time', input_schema: { type: 'object', properties: { zone: { type: 'string' } } } },
  ];
  const ask = { model: 'parallel', max_tokens: 512, tools, messages: [{ role: 'user', content: 'Paris?' }] };
  const t = await client.messages.stream(ask).finalMessage();
  const uses = t.content.filter((b) => b.type === 'tool_use');
  assert.deepStrictEqual(uses.map((u) => [u.name, u.input]), [['get_weather', { city: 'Paris' }], ['get_time', { zone: 'Europe/Paris' }]]);
  const back = await client.messages.create({ ...ask, messages: [...ask.messages,
    { role: 'assistant', content: t.content },
    { role: 'user', content: uses.map((u, i) => ({ type: 'tool_result', tool_use_id: u.id, content: `r${i}` })) }] });
  assert.strictEqual(text(back), 'The tool said: r0; r1');
  const n = await client.messages.countTokens({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
  assert.ok(n.input_tokens > 0);
  try {
    await client.messages.create({ ...hi, model: 'no-such-model' });
    assert.fail('expected 404');
  } catch (e) {
    assert.ok(e instanceof Anthropic.NotFoundError, String(e));
    assert.strictEqual(e.error.error.type, 'not_found_error');
  }
  console.log('node-anthropic-ok');
})().catch((err) => { console.error(err); process.exit(1); });
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_anthropic_node_sdk() {
    let Some(modules) = std::env::var_os("OAI_NODE_MODULES") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "the Node.js Anthropic SDK is required in CI (cargo xtask test installs it)"
        );
        eprintln!(
            "SKIP: the Node.js Anthropic SDK is not installed (cargo xtask test installs it)"
        );
        return;
    };
    let (gw, _up, _bedrock, _sm) = setup().await;
    let url = gw.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args(["-e", JS])
            .env("NODE_PATH", modules)
            .env("BASE", url)
            .env("KEY", KEY)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("node-anthropic-ok"),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.logs()
    );
}

const PY_UPSTREAM: &str = r#"
import os, json, httpx, pydantic, anthropic, openai
from anthropic.types import Message, RawMessageStreamEvent

BASE, KEY = os.environ["BASE"], os.environ["KEY"]
MESSAGE = pydantic.TypeAdapter(Message)
EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)
H = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "anthropic-beta": "interleaved-thinking-2025-05-14"}
ask = {"model": "claude-up-1", "max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 1024},
       "messages": [{"role": "user", "content": "Hello 你好"}]}
# /v1/messages passes through: the upstream's own message and events.
r = httpx.post(BASE + "/v1/messages?beta=true", json=ask, headers=H, timeout=30)
assert r.status_code == 200, r.text
m = MESSAGE.validate_python(r.json(), strict=True)
assert m.content[0].signature == "dXBzdHJlYW0=" and m.content[1].text == "ant says: Hello 你好", m
assert m.usage.cache_read_input_tokens == 3, m
names = []
with httpx.stream("POST", BASE + "/v1/messages", json=dict(ask, stream=True), headers=H, timeout=30) as s:
    for line in s.iter_lines():
        if line.startswith("data: "):
            d = json.loads(line[6:])
            names.append(d["type"])
            if d["type"] != "ping":
                EVENT.validate_python(d, strict=True)
assert names[0] == "message_start" and "ping" in names and names[-1] == "message_stop", names
# count_tokens passes through too: the upstream counts.
ac = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0)
assert ac.messages.count_tokens(model="claude-up-1", messages=[{"role": "user", "content": "hi"}]).input_tokens == 42
# OpenAI chat clients reach the same model, translated.
oc = openai.OpenAI(base_url=BASE + "/v1", api_key=KEY, max_retries=0)
c = oc.chat.completions.create(model="claude-up-1", reasoning_effort="low",
                               messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
assert c.choices[0].message.content == "ant says: Hi", c
assert c.choices[0].finish_reason == "stop", c
assert c.usage.prompt_tokens == 10 and c.usage.prompt_tokens_details.cached_tokens == 3, c.usage
extra = c.choices[0].message.model_extra
assert extra["thinking_blocks"][0]["signature"] == "dXBzdHJlYW0=", extra
text, reasoning, usage = "", "", None
for ch in oc.chat.completions.create(model="claude-up-1", stream=True, reasoning_effort="low",
                                     stream_options={"include_usage": True},
                                     messages=[{"role": "user", "content": "Hi there"}]):
    if ch.usage:
        usage = ch.usage
    if ch.choices:
        text += ch.choices[0].delta.content or ""
        reasoning += (ch.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
assert text == "ant says: Hi there", text
assert reasoning == "Echo it.", reasoning
assert usage.completion_tokens == 4, usage
# Legacy completions are not the Messages API's: refused by name.
try:
    oc.completions.create(model="claude-up-1", prompt="x")
    raise SystemExit("expected 400")
except openai.BadRequestError as e:
    assert "chat model" in str(e), e
print("anthropic-upstream-ok")
"#;

#[tokio::test(flavor = "multi_thread")]
async fn an_anthropic_upstream_passes_messages_through_and_serves_chat() {
    let (gw, _up, _bedrock, _sm, ant) = setup_all().await;
    let env = vec![("BASE", gw.url.clone()), ("KEY", KEY.to_owned())];
    run_python(PY_UPSTREAM, env, "anthropic-upstream-ok", &gw).await;
    let seen = ant.requests();
    assert!(seen.len() >= 4, "{}", seen.len());
    for r in &seen {
        assert!(r.path.starts_with("/v1/messages"), "{}", r.path);
        // The upstream's key, Anthropic's way; never the client's.
        assert_eq!(
            r.headers.get("x-api-key").map(String::as_str),
            Some(ANT_KEY)
        );
        assert!(!r.headers.contains_key("authorization"), "{:?}", r.headers);
        // The client's version when it sent one, else the gateway's.
        assert!(
            r.headers.contains_key("anthropic-version"),
            "{:?}",
            r.headers
        );
    }
    // Passed through: the client's beta header and query string kept.
    let through = seen.iter().find(|r| r.path.contains("beta=true")).unwrap();
    assert_eq!(
        through.headers.get("anthropic-beta").map(String::as_str),
        Some("interleaved-thinking-2025-05-14")
    );
    // Translated: a Messages body with a thinking budget and the system prompt.
    let chat = seen
        .iter()
        .rev()
        .find(|r| r.json["system"].is_array())
        .unwrap();
    assert_eq!(
        chat.headers.get("anthropic-version").map(String::as_str),
        Some("2023-06-01")
    );
    assert_eq!(chat.json["model"], "claude-up-1");
    assert_eq!(chat.json["thinking"]["type"], "enabled");
}
