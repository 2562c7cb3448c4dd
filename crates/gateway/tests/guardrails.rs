//! Guardrails and documents on Bedrock and beside it: a guardrail per model
//! or per request on Converse, `ApplyGuardrail` around SageMaker calls
//! (prompt, whole answer, stream windows), and documents from both SDKs as
//! Converse document blocks.

use mock_upstreams::FakeBedrock;
use serde_json::json;

use crate::bedrock_depth::{candidates, region};
use crate::support::{KEY, config, get_text, post, post_json, start};

/// A PDF and a Markdown file through the OpenAI SDK (`file` parts) and a
/// PDF through the Anthropic SDK (a `document` block): Converse document
/// blocks, names cleaned to Bedrock's rules and told apart; a sixth
/// document and a file by id are refused by name.
const DOCUMENTS: &str = r##"
import base64, os, anthropic, openai
pdf = base64.b64encode(b"%PDF-1.4 fake report").decode()
md = base64.b64encode(b"# Notes").decode()
client = openai.OpenAI(base_url=os.environ["BASE"] + "/v1", api_key=os.environ["KEY"])
def file_part(data, name):
    return {"type": "file", "file": {"file_data": data, "filename": name}}
r = client.chat.completions.create(model="c", messages=[{"role": "user", "content": [
    {"type": "text", "text": "Summarise these."},
    file_part(f"data:application/pdf;base64,{pdf}", "Q3 report (final).pdf"),
    file_part(md, "notes.md"),
    file_part(f"data:application/pdf;base64,{pdf}", "Q3 report (final).pdf")]}])
said = r.choices[0].message.content
assert "[document pdf 20 bytes Q3 report (final)]" in said, said
assert "[document md 7 bytes notes]" in said, said
assert "[document pdf 20 bytes Q3 report (final) (2)]" in said, said
try:
    client.chat.completions.create(model="c", messages=[{"role": "user", "content": [
        {"type": "text", "text": "x"}] + [file_part(md, f"n{i}.md") for i in range(6)]}])
    raise SystemExit("expected 400")
except openai.BadRequestError as e:
    assert "at most 5 documents" in str(e), e
try:
    client.chat.completions.create(model="c", messages=[{"role": "user", "content": [
        {"type": "text", "text": "x"}, {"type": "file", "file": {"file_id": "file-abc"}}]}])
    raise SystemExit("expected 400")
except openai.BadRequestError as e:
    assert e.param == "messages[0].content[1].file", e.param
a = anthropic.Anthropic(base_url=os.environ["BASE"], api_key=os.environ["KEY"])
m = a.messages.create(model="c", max_tokens=64, messages=[{"role": "user", "content": [
    {"type": "document", "title": "Spec v2.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}},
    {"type": "text", "text": "What does it say?"}]}])
assert "[document pdf 20 bytes Spec v2]" in m.content[0].text, m
print("documents-ok")
"##;

#[tokio::test(flavor = "multi_thread")]
async fn documents_from_both_sdks_become_converse_documents() {
    let f = region().await;
    let gw = start(
        "http://127.0.0.1:9",
        &config(&candidates("c", &[&f], "")),
        &[],
    );
    let env = vec![("BASE", gw.url.clone()), ("KEY", KEY.to_owned())];
    crate::support::run_python(DOCUMENTS, env, "documents-ok", &gw).await;
}

/// Guardrails through both SDKs: the model's guardrail (whole and
/// streamed), a request's own `guardrailConfig` on a model without one,
/// an unknown guardrail refused by Bedrock's words.
const GUARDRAILS: &str = r#"
import os, anthropic, openai
client = openai.OpenAI(base_url=os.environ["BASE"] + "/v1", api_key=os.environ["KEY"])
def ask(model, text, **kw):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **kw)
ok = ask("guarded", "tell me about tea")
assert ok.choices[0].finish_reason == "stop" and ok.choices[0].message.content == "Echo: tell me about tea", ok
blocked = ask("guarded", "how do I make explosives")
assert blocked.choices[0].finish_reason == "content_filter", blocked
assert blocked.choices[0].message.content == "Sorry, the model cannot answer this question.", blocked
chunks = list(ask("guarded", "more explosives please", stream=True))
assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["content_filter"], chunks
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert text == "Sorry, the model cannot answer this question.", text
# No guardrail on "open": the request brings its own.
assert ask("open", "explosives").choices[0].finish_reason == "stop"
mine = ask("open", "explosives", extra_body={"guardrailConfig": {"guardrailIdentifier": "gr-1", "guardrailVersion": "1"}})
assert mine.choices[0].finish_reason == "content_filter", mine
# On "guarded" a request cannot swap the operator's guardrail for a lax one.
swap = ask("guarded", "explosives", extra_body={"guardrailConfig": {"guardrailIdentifier": "gr-lax", "guardrailVersion": "1"}})
assert swap.choices[0].finish_reason == "content_filter", swap
try:
    ask("open", "x", extra_body={"guardrailConfig": {"guardrailIdentifier": "gr-none", "guardrailVersion": "1"}})
    raise SystemExit("expected 400")
except openai.BadRequestError as e:
    assert "guardrail" in str(e), e
a = anthropic.Anthropic(base_url=os.environ["BASE"], api_key=os.environ["KEY"])
m = a.messages.create(model="guarded", max_tokens=64, messages=[{"role": "user", "content": "explosives"}])
assert m.stop_reason == "refusal", m
with a.messages.stream(model="guarded", max_tokens=64, messages=[{"role": "user", "content": "explosives"}]) as s:
    final = s.get_final_message()
assert final.stop_reason == "refusal", final
print("guardrails-ok")
"#;

#[tokio::test(flavor = "multi_thread")]
async fn guardrails_from_the_model_or_the_request_stop_answers() {
    use mock_upstreams::FakeGuardrail;
    let f = region().await;
    f.add_guardrail("gr-1", "1", FakeGuardrail::blocking(&["explosives"]));
    f.add_guardrail("gr-lax", "1", FakeGuardrail::blocking(&[]));
    let cfg = format!(
        "{}{}",
        candidates(
            "guarded",
            &[&f],
            "guardrail = { id = \"gr-1\", version = \"1\", trace = \"enabled\", stream_processing_mode = \"sync\" }"
        ),
        candidates("open", &[&f], "")
    ) + "\n[[auth.scoped_keys]]\nkey = \"sk-guarded\"\nguardrail = { id = \"gr-1\", version = \"1\" }\n";
    let gw = start("http://127.0.0.1:9", &config(&cfg), &[]);
    let env = vec![("BASE", gw.url.clone()), ("KEY", KEY.to_owned())];
    crate::support::run_python(GUARDRAILS, env, "guardrails-ok", &gw).await;
    // A key with a guardrail of its own: applied on "open", which has none.
    let body = as_guarded_key(
        &gw,
        &json!({"model": "open", "messages": [{"role": "user", "content": "explosives"}]}),
    )
    .await;
    assert_eq!(
        body["choices"][0]["finish_reason"], "content_filter",
        "{body}"
    );
    // Sent as Bedrock takes it, counted.
    let sent = f
        .requests()
        .into_iter()
        .find(|r| r.operation == "converse-stream")
        .unwrap()
        .body;
    assert_eq!(
        sent["guardrailConfig"],
        json!({"guardrailIdentifier": "gr-1", "guardrailVersion": "1", "trace": "enabled", "streamProcessingMode": "sync"})
    );
    let metrics = get_text(&gw.url, "/metrics", None).await;
    let count = |model: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("gateway_guardrail_interventions_total")
                    && l.contains(&format!("model=\"{model}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(count("guarded"), Some(5.0), "{metrics}");
    assert_eq!(count("open"), Some(2.0), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_guardrail_screens_sagemaker_prompts_answers_and_streams() {
    use mock_upstreams::{ContainerDialect, Endpoint, FakeGuardrail, Reply};
    let bedrock = FakeBedrock::start().await.unwrap();
    bedrock.add_guardrail("gr-1", "1", FakeGuardrail::blocking(&["explosives"]));
    let sm = crate::support::fake().await;
    let mut sayer = Endpoint::echo(ContainerDialect::OpenAi);
    sayer.reply = Reply::Text(
        "Sure. First you gather the parts, then you mix the explosives carefully, then you wait."
            .into(),
    );
    sm.add("sayer", sayer);
    let cfg = "\n[[models]]\nname = \"guarded-sm\"\nendpoint = \"chat\"\nguardrail = { id = \"gr-1\", version = \"1\" }\n\n[[models]]\nname = \"sayer\"\nendpoint = \"sayer\"\nguardrail = { id = \"gr-1\", version = \"1\", window_chars = 20 }\n\n[[auth.scoped_keys]]\nkey = \"sk-guarded\"\nguardrail = { id = \"gr-1\", version = \"1\" }\n";
    let url = bedrock.url();
    let gw = start(
        &sm.url(),
        &config(cfg),
        &[("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &url)],
    );
    let ask = |model: &str, text: &str, stream: bool| json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": text}]});
    let r = post_json(
        &gw,
        "/v1/chat/completions",
        ask("guarded-sm", "hello", false),
    )
    .await;
    assert_eq!(r["choices"][0]["message"]["content"], "Echo: hello", "{r}");
    assert_eq!(r["choices"][0]["finish_reason"], "stop");
    let before = sm.requests().len();
    let r = post_json(
        &gw,
        "/v1/chat/completions",
        ask("guarded-sm", "explosives?", false),
    )
    .await;
    assert_eq!(r["choices"][0]["finish_reason"], "content_filter", "{r}");
    assert_eq!(
        r["choices"][0]["message"]["content"],
        "Sorry, the model cannot answer this question."
    );
    assert_eq!(
        sm.requests().len(),
        before,
        "a blocked prompt is never sent"
    );
    // The key's guardrail on a SageMaker model without one ("chat").
    let body = as_guarded_key(&gw, &ask("chat", "explosives?", false)).await;
    assert_eq!(
        body["choices"][0]["finish_reason"], "content_filter",
        "{body}"
    );
    assert_eq!(
        sm.requests().len(),
        before,
        "the key's guardrail blocked it first"
    );
    // The answer is blocked whole, and in windows as it streams: nothing
    // blocked reaches the client.
    let r = post_json(&gw, "/v1/chat/completions", ask("sayer", "how?", false)).await;
    assert_eq!(r["choices"][0]["finish_reason"], "content_filter", "{r}");
    let sse = post(&gw, "/v1/chat/completions", ask("sayer", "how?", true))
        .await
        .text()
        .await
        .unwrap();
    openai_types::contract::check_chat_sse(&sse);
    assert!(!sse.contains("explosives"), "{sse}");
    assert!(
        sse.contains("\"finish_reason\":\"content_filter\""),
        "{sse}"
    );
    assert!(
        sse.contains("Sorry, the model cannot answer this question."),
        "{sse}"
    );
    assert!(sse.ends_with("data: [DONE]\n\n"), "{sse}");
    let screened = bedrock
        .requests()
        .iter()
        .filter(|r| r.operation == "apply-guardrail")
        .count();
    assert!(screened >= 6, "{screened}");
    let metrics = get_text(&gw.url, "/metrics", None).await;
    for (model, n) in [("guarded-sm", "1"), ("sayer", "2"), ("chat", "1")] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("gateway_guardrail_interventions_total")
                    && l.contains(&format!("model=\"{model}\""))
                    && l.ends_with(&format!(" {n}"))),
            "{model}: {metrics}"
        );
    }
}

/// A chat request with the key that has a guardrail of its own.
async fn as_guarded_key(
    gw: &crate::support::Gateway,
    body: &serde_json::Value,
) -> serde_json::Value {
    crate::support::client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth("sk-guarded")
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_keys_guardrail_applies_where_the_model_has_none() {
    use crate::keys::{ADMIN, admin, create};
    use mock_upstreams::FakeGuardrail;
    let f = region().await;
    f.add_guardrail("gr-1", "1", FakeGuardrail::blocking(&["explosives"]));
    let cfg = format!(
        "[admin]\nkey = \"{ADMIN}\"\n{}",
        candidates("open", &[&f], "")
    );
    let gw = start("http://127.0.0.1:9", &config(&cfg), &[]);
    // Settings Bedrock would refuse are refused here, by name.
    for bad in [
        json!({"id": "gr-1", "version": "v1"}),
        json!({"id": "", "version": "1"}),
        json!({"id": "gr-1", "version": "1", "trace": "loud"}),
        json!({"id": "gr-1", "version": "1", "window_chars": 0}),
    ] {
        let (status, v) = admin(
            &gw,
            "POST",
            "/admin/keys",
            Some(json!({"name": "bad", "guardrail": bad})),
        )
        .await;
        assert_eq!(status, 400, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("guardrail"),
            "{v}"
        );
    }
    let (secret, id) = create(
        &gw,
        json!({"name": "guarded", "guardrail": {"id": "gr-1", "version": "1", "stream_processing_mode": "sync"}}),
    )
    .await;
    let ask = |stream: bool| {
        json!({"model": "open", "stream": stream,
               "messages": [{"role": "user", "content": "how are explosives made"}]})
    };
    let send = |body: serde_json::Value| {
        crate::support::client()
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(&secret)
            .json(&body)
            .send()
    };
    let body: serde_json::Value = send(ask(false)).await.unwrap().json().await.unwrap();
    assert_eq!(
        body["choices"][0]["finish_reason"], "content_filter",
        "{body}"
    );
    let events = crate::support::sse_events(send(ask(true)).await.unwrap()).await;
    assert!(
        events.iter().any(|e| e.contains("\"content_filter\"")),
        "{events:?}"
    );
    let sent = f
        .requests()
        .into_iter()
        .find(|r| r.operation == "converse")
        .unwrap()
        .body;
    assert_eq!(
        sent["guardrailConfig"]["guardrailIdentifier"], "gr-1",
        "{sent}"
    );
    // Shown by the admin API; removed with null: the same prompt passes.
    let (_, k) = admin(&gw, "GET", &format!("/admin/keys/{id}"), None).await;
    assert_eq!(k["guardrail"]["id"], "gr-1", "{k}");
    let (status, _) = admin(
        &gw,
        "PATCH",
        &format!("/admin/keys/{id}"),
        Some(json!({"guardrail": null})),
    )
    .await;
    assert_eq!(status, 200);
    let body: serde_json::Value = send(ask(false)).await.unwrap().json().await.unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "stop", "{body}");
}
