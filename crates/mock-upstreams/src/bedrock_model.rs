//! A fake Bedrock model: what it answers and the failures it injects, and
//! its answer to a request planned as blocks (text, reasoning, tool calls),
//! written whole (`converse`) or as `ConverseStream` frames.

use std::time::Duration;

use bedrock_converse::event::encode;
use serde_json::{Value, json};

/// What a fake model answers.
#[derive(Debug, Clone, PartialEq)]
pub enum BedrockReply {
    /// `"Echo: "` and the last user text; images are described as
    /// `[image png N bytes]`.
    Echo,
    /// A fixed text.
    Text(String),
    /// With tools offered and no tool result yet: a short text, then a call to
    /// `name` with `input`. After a tool result: `"The tool said: "` and the
    /// result text.
    ToolCall {
        /// The tool to call.
        name: String,
        /// Its input.
        input: Value,
    },
    /// Like `ToolCall`, with several calls in one turn (parallel tool use).
    ToolCalls(Vec<(String, Value)>),
    /// A reasoning block (with a signature), then the answer.
    Reasoning {
        /// The reasoning text.
        thinking: String,
        /// The answer.
        answer: String,
    },
    /// `" tick"` forever (for disconnect tests).
    Endless,
    /// An embedding model: a vector per text whose first value is the text's
    /// length in characters and second its position in the call.
    Embedding,
    /// A rerank model (Cohere Rerank, Amazon Rerank through `InvokeModel`).
    Rerank,
}

/// A failure a fake model injects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BedrockFault {
    /// None.
    None,
    /// An error response: status, exception name, message.
    Status(u16, String, String),
    /// An exception event after this many text deltas.
    StreamException {
        /// Deltas before it.
        after: usize,
        /// `throttlingException`, `modelStreamErrorException`, …
        name: String,
    },
    /// Accept the request and never answer.
    Hang,
}

/// A fake model.
#[derive(Debug, Clone)]
pub struct BedrockModel {
    /// What it answers.
    pub reply: BedrockReply,
    /// Injected failure.
    pub fault: BedrockFault,
    /// Pause between stream events.
    pub token_delay: Duration,
    /// Bytes per HTTP chunk of a stream (small values cut frames).
    pub chunk_bytes: usize,
    /// Whether `ListFoundationModels` lists it.
    pub listed: bool,
    /// Whether it takes `outputConfig` (structured output); one that does
    /// not refuses it with 400, as older models do.
    pub structured_output: bool,
    /// The smallest prefix its prompt cache keeps, in tokens (Claude:
    /// 1,024 and up; 0 caches any).
    pub cache_min_tokens: u64,
    /// Whether its bare foundation id takes on-demand calls; `false`
    /// refuses them as Bedrock does for models served only through an
    /// inference profile.
    pub on_demand: bool,
}

impl BedrockModel {
    /// A model with this reply, no fault, no delay.
    pub fn new(reply: BedrockReply) -> Self {
        Self {
            reply,
            fault: BedrockFault::None,
            token_delay: Duration::ZERO,
            chunk_bytes: 1 << 20,
            listed: true,
            structured_output: true,
            cache_min_tokens: 0,
            on_demand: true,
        }
    }
}

/// A planned answer: blocks in order.
#[derive(Debug, Clone)]
pub(crate) enum Block {
    Text(Vec<String>),
    Reasoning(Vec<String>),
    Tool {
        id: String,
        name: String,
        input: Value,
    },
}

pub(crate) struct Answer {
    blocks: Vec<Block>,
    stop: &'static str,
    input_tokens: u64,
    /// Prompt tokens read from and written to the prompt cache.
    cache: (u64, u64),
    /// `" tick"` forever.
    pub(crate) endless: bool,
    /// A guardrail's trace, when it was asked for.
    pub(crate) trace: Option<Value>,
}

impl Answer {
    /// The answer's text.
    pub(crate) fn text(&self) -> String {
        self.blocks
            .iter()
            .filter_map(|b| match b {
                Block::Text(t) => Some(t.concat()),
                _ => None,
            })
            .collect()
    }

    /// A guardrail intervened: its message is the whole answer.
    pub(crate) fn intervene(&mut self, message: &str, trace: Option<Value>) {
        self.blocks = vec![Block::Text(tokens(message))];
        self.stop = "guardrail_intervened";
        self.trace = trace;
        self.endless = false;
    }
}

pub(crate) fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if (c == ' ' || !c.is_ascii()) && !cur.is_empty() && cur != " " {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
        if !c.is_ascii() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The last user turn's text, images and tool results.
pub(crate) fn last_user(body: &Value) -> (String, Vec<String>, Vec<String>) {
    let mut text = String::new();
    let mut images = Vec::new();
    let mut results = Vec::new();
    if let Some(m) = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
    {
        for b in m["content"].as_array().into_iter().flatten() {
            if let Some(t) = b["text"].as_str() {
                text = t.to_owned();
            }
            if let Some(i) = b.get("image") {
                let n = i["source"]["bytes"]
                    .as_str()
                    .and_then(|s| {
                        use base64::Engine as _;
                        base64::engine::general_purpose::STANDARD.decode(s).ok()
                    })
                    .map_or(0, |b| b.len());
                images.push(format!(
                    "[image {} {n} bytes]",
                    i["format"].as_str().unwrap_or("?")
                ));
            }
            if let Some(d) = b.get("document") {
                let n = d["source"]["bytes"]
                    .as_str()
                    .and_then(|s| {
                        use base64::Engine as _;
                        base64::engine::general_purpose::STANDARD.decode(s).ok()
                    })
                    .map_or(0, |b| b.len());
                images.push(format!(
                    "[document {} {n} bytes {}]",
                    d["format"].as_str().unwrap_or("?"),
                    d["name"].as_str().unwrap_or("?")
                ));
            }
            if let Some(r) = b.get("toolResult") {
                for c in r["content"].as_array().into_iter().flatten() {
                    if let Some(t) = c["text"].as_str() {
                        results.push(t.to_owned());
                    }
                }
            }
        }
    }
    (text, images, results)
}

pub(crate) fn answer(
    model: &BedrockModel,
    body: &Value,
    cache: &std::sync::Mutex<std::collections::HashSet<String>>,
) -> Answer {
    let input_tokens = crate::bedrock_rules::prompt_tokens(body);
    let max = body["inferenceConfig"]["maxTokens"]
        .as_u64()
        .map(|m| m as usize);
    let (text, images, results) = last_user(body);
    let mut stop = "end_turn";
    let blocks = match &model.reply {
        BedrockReply::Echo | BedrockReply::Embedding | BedrockReply::Rerank => {
            let mut said = format!("Echo: {text}");
            for i in &images {
                said.push(' ');
                said.push_str(i);
            }
            vec![Block::Text(tokens(&said))]
        }
        BedrockReply::Text(t) => vec![Block::Text(tokens(t))],
        BedrockReply::Endless => vec![],
        BedrockReply::Reasoning { thinking, answer } => vec![
            Block::Reasoning(tokens(thinking)),
            Block::Text(tokens(answer)),
        ],
        BedrockReply::ToolCall { name, input } => tool_turn(
            &results,
            body,
            input_tokens,
            &[(name.clone(), input.clone())],
            &mut stop,
        ),
        BedrockReply::ToolCalls(calls) => tool_turn(&results, body, input_tokens, calls, &mut stop),
    };
    let mut a = blocks_under_rules(model, body, blocks, stop, input_tokens, max, &results);
    a.cache = crate::bedrock_rules::cache(body, model.cache_min_tokens, cache);
    a.input_tokens = input_tokens.saturating_sub(a.cache.0 + a.cache.1);
    a
}

/// A tool-calling turn: after tool results, what they said; with tools
/// offered, a short text and the calls; else a note that none were.
fn tool_turn(
    results: &[String],
    body: &Value,
    input_tokens: u64,
    calls: &[(String, Value)],
    stop: &mut &'static str,
) -> Vec<Block> {
    if !results.is_empty() {
        vec![Block::Text(tokens(&format!(
            "The tool said: {}",
            results.join("; ")
        )))]
    } else if body.get("toolConfig").is_some() {
        *stop = "tool_use";
        let mut blocks = Vec::new();
        // With thinking on, Claude thinks (signed) before it calls.
        if body["additionalModelRequestFields"]
            .get("thinking")
            .is_some()
        {
            blocks.push(Block::Reasoning(tokens("The tool will answer this.")));
        }
        blocks.push(Block::Text(tokens("Let me check.")));
        for (i, (name, input)) in calls.iter().enumerate() {
            blocks.push(Block::Tool {
                id: format!(
                    "tooluse_{:08x}{}",
                    input_tokens,
                    if i == 0 {
                        String::new()
                    } else {
                        format!("_{i}")
                    }
                ),
                name: name.clone(),
                input: input.clone(),
            });
        }
        blocks
    } else {
        vec![Block::Text(tokens("No tools were offered."))]
    }
}

fn blocks_under_rules(
    model: &BedrockModel,
    body: &Value,
    mut blocks: Vec<Block>,
    mut stop: &'static str,
    input_tokens: u64,
    max: Option<usize>,
    results: &[String],
) -> Answer {
    // Under a schema the model answers with a value shaped by it: as text
    // (`outputConfig`), or as the input of the tool it is forced to call.
    if let Some(schema) = crate::bedrock_rules::output_schema(body) {
        blocks = vec![Block::Text(tokens(
            &crate::bedrock_rules::sample(&schema).to_string(),
        ))];
    } else if let Some((name, schema)) = crate::bedrock_rules::forced_tool(body)
        && results.is_empty()
    {
        stop = "tool_use";
        blocks = vec![Block::Tool {
            id: format!("tooluse_{:08x}", input_tokens),
            name,
            input: crate::bedrock_rules::sample(&schema),
        }];
    }
    if let Some(max) = max {
        for b in &mut blocks {
            if let Block::Text(t) = b
                && t.len() > max
            {
                t.truncate(max);
                stop = "max_tokens";
            }
        }
    }
    for s in body["inferenceConfig"]["stopSequences"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let s = s.as_str().unwrap_or_default();
        for b in &mut blocks {
            if let Block::Text(t) = b
                && let Some(i) = t.iter().position(|tok| tok.trim() == s)
            {
                t.truncate(i);
                stop = "stop_sequence";
            }
        }
    }
    Answer {
        blocks,
        stop,
        input_tokens,
        cache: (0, 0),
        trace: None,
        endless: model.reply == BedrockReply::Endless,
    }
}

pub(crate) fn usage(a: &Answer) -> Value {
    let out: usize = a
        .blocks
        .iter()
        .map(|b| match b {
            Block::Text(t) | Block::Reasoning(t) => t.len(),
            Block::Tool { .. } => 5,
        })
        .sum();
    let mut u = json!({
        "inputTokens": a.input_tokens,
        "outputTokens": out,
        "totalTokens": a.input_tokens + a.cache.0 + a.cache.1 + out as u64,
    });
    if a.cache != (0, 0) {
        u["cacheReadInputTokens"] = a.cache.0.into();
        u["cacheWriteInputTokens"] = a.cache.1.into();
    }
    u
}

pub(crate) fn converse_body(a: &Answer) -> Value {
    let content: Vec<Value> = a
        .blocks
        .iter()
        .map(|b| match b {
            Block::Text(t) => json!({ "text": t.concat() }),
            Block::Reasoning(t) => json!({ "reasoningContent": { "reasoningText": {
                "text": t.concat(), "signature": crate::bedrock_rules::SIGNATURE } } }),
            Block::Tool { id, name, input } => {
                json!({ "toolUse": { "toolUseId": id, "name": name, "input": input } })
            }
        })
        .collect();
    let mut out = json!({
        "output": { "message": { "role": "assistant", "content": content } },
        "stopReason": a.stop,
        "usage": usage(a),
        "metrics": { "latencyMs": 12 },
    });
    if let Some(t) = &a.trace {
        out["trace"] = t.clone();
    }
    out
}

/// The frames of a streamed answer, in order.
pub(crate) fn frames(a: &Answer, fault: &BedrockFault) -> Vec<Vec<u8>> {
    let mut out = vec![encode::event(
        "messageStart",
        &json!({"role": "assistant", "p": "abcdefghijk"}),
    )];
    let mut deltas = 0usize;
    for (i, b) in a.blocks.iter().enumerate() {
        let delta = |d: Value| {
            encode::event(
                "contentBlockDelta",
                &json!({"contentBlockIndex": i, "delta": d, "p": "abcdef"}),
            )
        };
        match b {
            Block::Text(toks) => {
                for t in toks {
                    if let BedrockFault::StreamException { after, name } = fault
                        && deltas == *after
                    {
                        out.push(encode::exception(name, "The stream failed (injected)."));
                        return out;
                    }
                    out.push(delta(json!({ "text": t })));
                    deltas += 1;
                }
            }
            Block::Reasoning(toks) => {
                for t in toks {
                    out.push(delta(json!({ "reasoningContent": { "text": t } })));
                }
                out.push(delta(
                    json!({ "reasoningContent": { "signature": crate::bedrock_rules::SIGNATURE } }),
                ));
            }
            Block::Tool { id, name, input } => {
                out.push(encode::event(
                    "contentBlockStart",
                    &json!({"contentBlockIndex": i, "start": {"toolUse": {"toolUseId": id, "name": name}}}),
                ));
                let s = input.to_string();
                let cut = s
                    .char_indices()
                    .nth(s.chars().count() / 2)
                    .map_or(0, |(i, _)| i);
                out.push(delta(json!({ "toolUse": { "input": &s[..cut] } })));
                out.push(delta(json!({ "toolUse": { "input": &s[cut..] } })));
            }
        }
        out.push(encode::event(
            "contentBlockStop",
            &json!({"contentBlockIndex": i}),
        ));
    }
    if let BedrockFault::StreamException { name, .. } = fault {
        out.push(encode::exception(name, "The stream failed (injected)."));
        return out;
    }
    out.push(encode::event("messageStop", &json!({"stopReason": a.stop})));
    let mut meta = json!({"usage": usage(a), "metrics": {"latencyMs": 12}});
    if let Some(t) = &a.trace {
        meta["trace"] = t.clone();
    }
    out.push(encode::event("metadata", &meta));
    out
}
