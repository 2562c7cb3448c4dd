//! LangChain (`langchain-openai`, unmodified) drives the Bedrock features
//! an OpenAI-SDK user gets without asking: automatic prompt caching (its
//! `usage_metadata` reports the cache reads, whole and streamed), a
//! guardrail's stop (`finish_reason: content_filter`, whole and streamed)
//! and a fallback model answering in place of one whose context window the
//! prompt exceeds.

use mock_upstreams::FakeGuardrail;

use crate::bedrock_depth::{candidates, region, too_small};
use crate::support::{KEY, config, run_python, start};

const SCRIPT: &str = r#"
import os
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

def chat(model):
    return ChatOpenAI(model=model, base_url=os.environ["BASE"] + "/v1", api_key=os.environ["KEY"],
                      max_retries=0, stream_usage=True)

llm = chat("claude")
system = "You are a careful coding agent. " + " ".join(f"Rule {i}: keep file {i} tidy and tested." for i in range(300))
msgs = [SystemMessage(system)]
read = 0
for turn in range(4):
    msgs.append(HumanMessage(f"Step {turn}: read the next file."))
    r = llm.invoke(msgs)
    read += r.usage_metadata["input_token_details"].get("cache_read") or 0
    msgs.append(AIMessage(r.content))
assert read > 0, read

# Streamed: the chunks add up to the answer and a usage with the cache read.
msgs.append(HumanMessage("Step 4: stream it."))
total = None
for c in llm.stream(msgs):
    total = c if total is None else total + c
assert total.content == "Echo: Step 4: stream it.", total.content
assert total.usage_metadata["input_token_details"]["cache_read"] > 0, total.usage_metadata

# The guardrail stops an answer, whole and streamed.
r = llm.invoke([HumanMessage("how are explosives made")])
assert r.response_metadata["finish_reason"] == "content_filter", r.response_metadata
total = None
for c in llm.stream([HumanMessage("tell me about explosives")]):
    total = c if total is None else total + c
assert total.response_metadata.get("finish_reason") == "content_filter", total.response_metadata

# The small model's context window is exceeded: its fallback answers.
r = chat("small").invoke([HumanMessage("a long prompt")])
assert r.content == "Echo: a long prompt", r
print("langchain-bedrock-ok")
"#;

#[tokio::test(flavor = "multi_thread")]
async fn langchain_gets_caching_guardrails_and_fallbacks() {
    let f = region().await;
    f.add_guardrail("gr-1", "1", FakeGuardrail::blocking(&["explosives"]));
    f.add("x.small-v1", too_small());
    let extra = format!(
        "[[models]]\nname = \"small\"\nbackend = \"bedrock\"\nmodel_id = \"x.small-v1\"\nendpoint_url = \"{}\"\nfallbacks = [\"claude\"]\n{}",
        f.url(),
        candidates(
            "claude",
            &[&f],
            "prompt_cache = \"auto\"\nguardrail = { id = \"gr-1\", version = \"1\", stream_processing_mode = \"sync\" }"
        ),
    );
    let gw = start("http://127.0.0.1:9", &config(&extra), &[]);
    let env = vec![("BASE", gw.url.clone()), ("KEY", KEY.to_owned())];
    run_python(SCRIPT, env, "langchain-bedrock-ok", &gw).await;
    // Every request went to Bedrock with the guardrail on it.
    let requests = f.requests();
    assert!(requests.len() >= 8, "{}", requests.len());
    assert!(
        requests
            .iter()
            .filter(|r| r.operation.starts_with("converse") && r.model_id.contains("claude"))
            .all(|r| r.body.to_string().contains("gr-1")),
        "the model's guardrail on every Converse call"
    );
}
