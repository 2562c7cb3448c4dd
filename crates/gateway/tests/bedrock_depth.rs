//! Saving money on Bedrock: automatic prompt cache points for OpenAI-SDK
//! clients, cache-affine routing over candidates in three regions, and the
//! traps of Bedrock's conversation rules (a bare model id served only
//! through an inference profile, a past tool call whose arguments are not
//! JSON, empty tool descriptions). Each region is a fake Bedrock of its own
//! with its own prefix cache, reporting cache reads and writes as Bedrock
//! does (a prefix under the model's minimum is not cached).

use mock_upstreams::{BedrockModel, BedrockReply, FakeBedrock};
use serde_json::{Value, json};

use crate::support::{KEY, config, get_text, post, post_json, python_output, start};

const SONNET: &str = "anthropic.claude-sonnet-4-20250514-v1:0";

/// A fake region serving Claude Sonnet 4 (echo), caching prefixes of at
/// least 1,024 tokens as Claude does.
pub(crate) async fn region() -> FakeBedrock {
    let f = FakeBedrock::start().await.unwrap();
    let mut m = BedrockModel::new(BedrockReply::Echo);
    m.cache_min_tokens = 1024;
    f.add(SONNET, m.clone());
    f.add(&format!("us.{SONNET}"), m);
    f
}

/// A model whose context window every prompt exceeds (Bedrock's words).
pub(crate) fn too_small() -> BedrockModel {
    let mut small = BedrockModel::new(BedrockReply::Echo);
    small.fault = mock_upstreams::BedrockFault::Status(
        400,
        "ValidationException".into(),
        "Input is too long for requested model.".into(),
    );
    small
}

/// A model served by one candidate per fake region (`region`,
/// `endpoint_url`), with `extra` settings.
pub(crate) fn candidates(name: &str, regions: &[&FakeBedrock], extra: &str) -> String {
    let names = ["us-east-1", "us-west-2", "eu-west-1"];
    regions
        .iter()
        .zip(names)
        .map(|(f, r)| {
            format!(
                "\n[[models]]\nname = \"{name}\"\nbackend = \"bedrock\"\nmodel_id = \"{SONNET}\"\nregion = \"{r}\"\nendpoint_url = \"{}\"\n{extra}\n",
                f.url()
            )
        })
        .collect()
}

/// A scripted agent session through the official OpenAI Python SDK: a
/// long system prompt and tool list, 20 turns, each sending the whole
/// conversation so far. Prints one JSON line of summed usage per model.
const AGENT: &str = r#"
import json, os, openai
client = openai.OpenAI(base_url=os.environ["BASE"] + "/v1", api_key=os.environ["KEY"])
system = "You are a careful coding agent. " + " ".join(f"Rule {i}: keep file {i} tidy and tested." for i in range(int(os.environ.get("RULES", "400"))))
tools = [{"type": "function", "function": {"name": f"tool_{i}", "description": f"Does thing {i} to a file.",
          "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}} for i in range(8)]
for model in os.environ["MODELS"].split(","):
    msgs = [{"role": "system", "content": system + os.environ.get("SALT", "")}]
    total = {"model": model, "prompt": 0, "cached": 0, "written": 0, "turns": 0}
    for turn in range(20):
        msgs.append({"role": "user", "content": f"Step {turn}: read the next file and report what you see. " * int(os.environ.get("REPEAT", "4"))})
        r = client.chat.completions.create(model=model, messages=msgs, tools=tools)
        u = r.usage
        d = u.prompt_tokens_details
        total["prompt"] += u.prompt_tokens
        total["cached"] += (d.cached_tokens or 0) if d else 0
        total["written"] += (getattr(d, "cache_write_tokens", None) or 0) if d else 0
        total["turns"] += 1
        msgs.append({"role": "assistant", "content": r.choices[0].message.content})
    print(json.dumps(total))
print("agent-ok")
"#;

/// The summed usage lines the agent script printed, by model.
fn totals(out: &str) -> std::collections::HashMap<String, Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| (v["model"].as_str().unwrap().to_owned(), v))
        .collect()
}

/// Input cost of a session at Claude Sonnet 4's Bedrock prices (US$ per
/// million: input 3, cache write 3.75, cache read 0.30).
fn input_cost(t: &Value) -> f64 {
    let n = |k: &str| t[k].as_f64().unwrap();
    let fresh = n("prompt") - n("cached") - n("written");
    (fresh * 3.0 + n("written") * 3.75 + n("cached") * 0.30) / 1e6
}

#[tokio::test(flavor = "multi_thread")]
async fn automatic_cache_points_cut_an_agent_sessions_input_cost() {
    let f = region().await;
    let cfg = format!(
        "{}{}",
        candidates("plain", &[&f], ""),
        candidates("cached", &[&f], "prompt_cache = \"auto\"")
    );
    let gw = start("http://127.0.0.1:9", &config(&cfg), &[]);
    let env = vec![
        ("BASE", gw.url.clone()),
        ("KEY", KEY.to_owned()),
        ("MODELS", "plain,cached".to_owned()),
    ];
    let Some(out) = python_output(AGENT, env, "agent-ok", &gw).await else {
        return;
    };
    let t = totals(&out);
    let (plain, cached) = (&t["plain"], &t["cached"]);
    // Without cache points nothing is cached; the same 20 turns cost the
    // same prompt tokens either way.
    assert_eq!(plain["cached"], 0, "{plain}");
    assert_eq!(plain["prompt"], cached["prompt"], "{plain} {cached}");
    let ratio = cached["cached"].as_f64().unwrap() / cached["prompt"].as_f64().unwrap();
    let (before, after) = (input_cost(plain), input_cost(cached));
    eprintln!(
        "20-turn agent session, input cost at Claude Sonnet 4 prices: without cache points US${before:.4}, with prompt_cache = \"auto\" US${after:.4} ({:.1}x less); {:.0}% of prompt tokens read from the cache; {plain} {cached}",
        before / after,
        ratio * 100.0
    );
    assert!(ratio > 0.8, "cache hit ratio {ratio}: {cached}");
    assert!(after < before / 3.0, "{after} vs {before}");
    // Every request's record carries its cache reads and writes.
    let rows = records(&gw, "cached", 20).await;
    let sum = |k: &str| rows.iter().map(|r| r[k].as_i64().unwrap_or(0)).sum::<i64>();
    assert_eq!(sum("cache_read_tokens"), cached["cached"].as_i64().unwrap());
    assert_eq!(
        sum("cache_write_tokens"),
        cached["written"].as_i64().unwrap()
    );
    // Points go where the fake saw them: system, and the last user turns.
    let last = f.requests().into_iter().last().unwrap().body;
    assert!(
        last["system"].as_array().unwrap().last().unwrap()["cachePoint"].is_object(),
        "{last}"
    );
    let points = last.to_string().matches("cachePoint").count();
    assert_eq!(points, 3, "{last}");
}

/// The records of `model` (`gateway records --json`), once `n` are written.
async fn records(gw: &crate::support::Gateway, model: &str, n: usize) -> Vec<Value> {
    let db = gw.config_path().with_file_name("records.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
            .arg("--config")
            .arg(gw.config_path())
            .args(["records", "--json", "--model", model, "--limit", "1000"])
            .env("RECORDS_URL", &url)
            .output()
            .unwrap();
        let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if rows.len() >= n || std::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The hit ratio of one 20-turn session on `model` (its system prompt
/// salted so no earlier session's cache helps).
async fn hit_ratio(gw: &crate::support::Gateway, model: &str, salt: &str) -> Option<f64> {
    let env = vec![
        ("BASE", gw.url.clone()),
        ("KEY", KEY.to_owned()),
        ("MODELS", model.to_owned()),
        ("SALT", salt.to_owned()),
        // Long turns: the conversation, not the shared system prompt, is
        // most of the prompt.
        ("REPEAT", "12".to_owned()),
        ("RULES", "150".to_owned()),
    ];
    let out = python_output(AGENT, env, "agent-ok", gw).await?;
    let t = &totals(&out)[model];
    Some(t["cached"].as_f64().unwrap() / t["prompt"].as_f64().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn affinity_keeps_a_conversation_on_one_region_and_its_cache_warm() {
    let (a, b, c) = (region().await, region().await, region().await);
    let regions = [&a, &b, &c];
    let models = format!(
        "{}{}",
        candidates("three", &regions, "prompt_cache = \"auto\""),
        candidates("one", &[&a], "prompt_cache = \"auto\"")
    );
    let spread = start(
        "http://127.0.0.1:9",
        &config(&format!("[routing]\nstrategy = \"weighted\"\n{models}")),
        &[],
    );
    let affine = start(
        "http://127.0.0.1:9",
        &config(&format!(
            "[routing]\nstrategy = \"weighted\"\naffinity = \"prefix\"\n{models}"
        )),
        &[],
    );
    let Some(single) = hit_ratio(&affine, "one", "single").await else {
        return;
    };
    let spread_ratio = hit_ratio(&spread, "three", "spread").await.unwrap();
    let affine_ratio = hit_ratio(&affine, "three", "affine").await.unwrap();
    eprintln!(
        "cache hit ratio of a 20-turn session: one candidate {single:.3}, three candidates spread {spread_ratio:.3}, three with affinity {affine_ratio:.3}"
    );
    assert!(
        (affine_ratio - single).abs() < 0.01,
        "{affine_ratio} vs {single}"
    );
    assert!(spread_ratio < single - 0.1, "{spread_ratio} vs {single}");
    // Every request of the affine session went where its affinity pointed.
    let metrics = get_text(&affine.url, "/metrics", None).await;
    let hits = metrics
        .lines()
        .find(|l| {
            l.starts_with("gateway_affinity_total")
                && l.contains("model=\"three\"")
                && l.contains("result=\"hit\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(hits, Some(20.0), "{metrics}");
    let served: Vec<usize> = regions
        .iter()
        .map(|f| {
            f.requests()
                .iter()
                .filter(|r| r.body.to_string().contains("affine"))
                .count()
        })
        .collect();
    assert_eq!(served.iter().filter(|&&n| n > 0).count(), 1, "{served:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bare_id_served_only_through_a_profile_is_retried_and_remembered() {
    let f = FakeBedrock::start().await.unwrap();
    let mut bare = BedrockModel::new(BedrockReply::Echo);
    bare.on_demand = false;
    f.add(SONNET, bare);
    f.add(
        &format!("us.{SONNET}"),
        BedrockModel::new(BedrockReply::Echo),
    );
    let cfg = format!(
        "\n[[models]]\nname = \"sonnet\"\nbackend = \"bedrock\"\nmodel_id = \"{SONNET}\"\nregion = \"us-west-2\"\nendpoint_url = \"{}\"\n",
        f.url()
    );
    let gw = start("http://127.0.0.1:9", &config(&cfg), &[]);
    let ask = json!({"model": "sonnet", "messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..2 {
        let r = post_json(&gw, "/v1/chat/completions", ask.clone()).await;
        assert_eq!(r["choices"][0]["message"]["content"], "Echo: hi", "{r}");
    }
    let ids: Vec<String> = f.requests().into_iter().map(|r| r.model_id).collect();
    let profile = format!("us.{SONNET}");
    assert_eq!(
        ids,
        [SONNET, &profile, &profile],
        "refused once, then remembered"
    );
    assert!(gw.logs().contains("inference profile"), "{}", gw.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_past_tool_arguments_and_empty_descriptions_do_not_dead_end() {
    let f = region().await;
    let gw = start(
        "http://127.0.0.1:9",
        &config(&candidates("c", &[&f], "")),
        &[],
    );
    let r = post(
        &gw,
        "/v1/chat/completions",
        json!({"model": "c", "messages": [
            {"role": "user", "content": "list the files"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function",
                "function": {"name": "ls", "arguments": "{\"path\": \"/tmp\""}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "a.txt"},
            {"role": "user", "content": "and now?"}],
         "tools": [{"type": "function", "function": {"name": "ls", "description": "",
            "parameters": {"type": "object"}}}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let sent = f.requests().into_iter().last().unwrap().body;
    // The broken arguments went on as a JSON string, not refused.
    assert_eq!(
        sent["messages"][1]["content"][0]["toolUse"]["input"],
        "{\"path\": \"/tmp\""
    );
    // The empty description was left out.
    let spec = &sent["toolConfig"]["tools"][0]["toolSpec"];
    assert_eq!(spec["name"], "ls");
    assert!(spec.get("description").is_none(), "{spec}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_context_window_refusal_falls_back_to_the_next_model() {
    let f = region().await;
    f.add("x.small-v1", too_small());
    let cfg = format!(
        "\n[[models]]\nname = \"small\"\nbackend = \"bedrock\"\nmodel_id = \"x.small-v1\"\nendpoint_url = \"{url}\"\nfallbacks = [\"missing-one\", \"big\"]\n{big}\n[[auth.scoped_keys]]\nkey = \"sk-small-only\"\nmodels = [\"small\"]\n",
        url = f.url(),
        big = candidates("big", &[&f], ""),
    );
    let gw = start("http://127.0.0.1:9", &config(&cfg), &[]);
    let ask = |stream: bool| {
        json!({"model": "small", "stream": stream,
               "messages": [{"role": "user", "content": "a very long prompt"}]})
    };
    // Whole and streamed: "big" answers, and says so.
    let r = post(&gw, "/v1/chat/completions", ask(false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-oai-model"], "big");
    let body: Value = r.json().await.unwrap();
    openai_types::contract::check_chat_completion(&body);
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Echo: a very long prompt"
    );
    let r = post(&gw, "/v1/chat/completions", ask(true)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-oai-model"], "big");
    let text = r.text().await.unwrap();
    assert!(
        text.contains("Echo") && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );
    // A key that may not use "big" gets the model's own refusal.
    let r = crate::support::client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth("sk-small-only")
        .json(&ask(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Input is too long"),
        "{e}"
    );
    // Records: one a request; the two that "big" answered name "small" as
    // what was asked, the scoped key's refusal is "small"'s own.
    let big = records(&gw, "big", 2).await;
    assert_eq!(big.len(), 2, "{big:?}");
    assert!(
        big.iter()
            .all(|r| r["requested_model"] == "small" && r["status"] == 200),
        "{big:?}"
    );
    let small = records(&gw, "small", 1).await;
    assert_eq!(small.len(), 1, "{small:?}");
    assert_eq!(
        (
            small[0]["status"].as_i64(),
            small[0]["requested_model"].as_str()
        ),
        (Some(400), Some("small"))
    );
    let metrics = get_text(&gw.url, "/metrics", None).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gateway_fallbacks_total")
                && l.contains("from=\"small\"")
                && l.contains("to=\"big\"")
                && l.contains("reason=\"context_window\"")
                && l.ends_with(" 2")),
        "{metrics}"
    );
}
