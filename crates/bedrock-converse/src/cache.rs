//! Prompt caching: where cache points go when the client placed none.
//!
//! Bedrock caches the prompt up to each `cachePoint` (tools, then system,
//! then messages) for models that support it (Claude, Nova), once that
//! prefix reaches the model's minimum, and reads it back when a later
//! request repeats the prefix up to one of its own cache points. Clients
//! that speak Anthropic's dialect mark their points (`cache_control`);
//! the OpenAI SDKs cannot. For them [`place`] puts the points an agent's
//! conversation needs:
//!
//! 1. after the tools and the system prompt (read by every turn and by
//!    every conversation that shares them);
//! 2. after the next-to-last user turn (where the previous request put its
//!    last point, so this turn reads the whole conversation so far);
//! 3. after the last user turn (written for the next turn to read).
//!
//! A point whose prefix is under the model's minimum is left out (Bedrock
//! would ignore it, and a request takes at most four). Writing costs more
//! than plain input (1.25× on Claude), reading a tenth: a conversation of
//! more than one turn saves; a one-off prompt pays the write once.

use crate::wire::{
    CachePoint, ContentBlock, ConverseRequest, Role, SystemBlock, Tool, ToolResultContent,
};

/// Automatic cache points for one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoCache {
    /// The model's smallest cacheable prefix, in tokens.
    pub min_tokens: u32,
    /// The points' TTL (`5m`, `1h`), where the model takes one.
    pub ttl: Option<String>,
}

impl AutoCache {
    /// Automatic caching with the minimum [`min_tokens`] gives `model_id`.
    pub fn for_model(model_id: &str) -> Self {
        Self {
            min_tokens: min_tokens(model_id),
            ttl: None,
        }
    }
}

/// The smallest prefix a model caches, in tokens, as Bedrock documents
/// them: Claude 3.5 Haiku 2,048, Claude Haiku 4.5 and Opus 4.5 4,096,
/// other Claude models 1,024, Nova 1,000 (rounded up here to 1,024).
pub fn min_tokens(model_id: &str) -> u32 {
    let id = model_id.to_ascii_lowercase();
    if id.contains("haiku-4-5") || id.contains("opus-4-5") {
        4096
    } else if id.contains("3-5-haiku") {
        2048
    } else {
        1024
    }
}

/// How many cache points `req` carries (tools, system and messages).
pub fn count_points(req: &ConverseRequest) -> usize {
    let tools = req
        .tool_config
        .iter()
        .flat_map(|t| &t.tools)
        .filter(|t| matches!(t, Tool::CachePoint(_)))
        .count();
    let system = req
        .system
        .iter()
        .filter(|b| matches!(b, SystemBlock::CachePoint(_)))
        .count();
    let messages = req
        .messages
        .iter()
        .flat_map(|m| &m.content)
        .filter(|b| matches!(b, ContentBlock::CachePoint(_)))
        .count();
    tools + system + messages
}

/// Places automatic cache points in a request that has none (a request
/// whose client placed any is left as it is). Returns how many it placed.
pub fn place(req: &mut ConverseRequest, auto: &AutoCache) -> usize {
    if count_points(req) > 0 {
        return 0;
    }
    let min = u64::from(auto.min_tokens);
    let point = || CachePoint::new(auto.ttl.clone());
    let mut placed = 0;
    // Tools, then system: one point at the end of that prefix.
    let mut tokens: u64 = req
        .tool_config
        .iter()
        .flat_map(|t| &t.tools)
        .map(|t| match t {
            Tool::ToolSpec(s) => estimate(&serde_json::to_string(s).unwrap_or_default()),
            Tool::CachePoint(_) => 0,
        })
        .sum();
    tokens += req
        .system
        .iter()
        .map(|b| match b {
            SystemBlock::Text(t) => estimate(t),
            SystemBlock::CachePoint(_) => 0,
        })
        .sum::<u64>();
    if tokens >= min {
        if !req.system.is_empty() {
            req.system.push(SystemBlock::CachePoint(point()));
            placed += 1;
        } else if let Some(t) = req.tool_config.as_mut() {
            t.tools.push(Tool::CachePoint(point()));
            placed += 1;
        }
    }
    // The prefix up to the end of each message.
    let ends: Vec<u64> = req
        .messages
        .iter()
        .map(|m| {
            tokens += m.content.iter().map(block_tokens).sum::<u64>();
            tokens
        })
        .collect();
    let users: Vec<usize> = (0..req.messages.len())
        .filter(|&i| req.messages[i].role == Role::User)
        .collect();
    // The next-to-last user turn first: it is the one read.
    let mut at: Vec<usize> = users.iter().rev().take(2).copied().collect();
    at.reverse();
    for i in at {
        if ends[i] >= min {
            req.messages[i]
                .content
                .push(ContentBlock::CachePoint(point()));
            placed += 1;
        }
    }
    placed
}

/// A block's tokens, estimated (four bytes of text a token; an image as
/// Claude's typical 1,600).
fn block_tokens(b: &ContentBlock) -> u64 {
    match b {
        ContentBlock::Text(t) => estimate(t),
        ContentBlock::Image(_) => 1600,
        // A PDF page is some 1,500-3,000 tokens; a byte of text a quarter.
        ContentBlock::Document(d) => {
            let crate::wire::DocumentSource::Bytes(b) = &d.source;
            b.len() as u64 / 4
        }
        ContentBlock::ToolUse(u) => estimate(&u.name) + estimate(&u.input.to_string()),
        ContentBlock::ToolResult(r) => r
            .content
            .iter()
            .map(|c| match c {
                ToolResultContent::Text(t) => estimate(t),
                ToolResultContent::Json(v) => estimate(&v.to_string()),
                ToolResultContent::Image(_) => 1600,
            })
            .sum(),
        ContentBlock::ReasoningContent(_) | ContentBlock::CachePoint(_) => 0,
    }
}

fn estimate(text: &str) -> u64 {
    text.len() as u64 / 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Message, ToolConfig};

    fn text(t: &str) -> ContentBlock {
        ContentBlock::Text(t.to_owned())
    }

    fn conversation(turns: usize, system: &str) -> ConverseRequest {
        let mut messages = Vec::new();
        for i in 0..turns {
            if i > 0 {
                messages.push(Message {
                    role: Role::Assistant,
                    content: vec![text(&format!("answer {i}"))],
                });
            }
            messages.push(Message {
                role: Role::User,
                content: vec![text(&format!("question {i} {}", "x".repeat(400)))],
            });
        }
        ConverseRequest {
            messages,
            system: vec![SystemBlock::Text(system.to_owned())],
            ..ConverseRequest::default()
        }
    }

    fn points_at(r: &ConverseRequest) -> Vec<String> {
        let mut out = Vec::new();
        if matches!(r.system.last(), Some(SystemBlock::CachePoint(_))) {
            out.push("system".to_owned());
        }
        for (i, m) in r.messages.iter().enumerate() {
            if matches!(m.content.last(), Some(ContentBlock::CachePoint(_))) {
                out.push(format!("messages[{i}]"));
            }
        }
        out
    }

    #[test]
    fn an_agent_conversation_gets_system_previous_and_last_turn() {
        let auto = AutoCache {
            min_tokens: 1024,
            ttl: None,
        };
        let long = "s".repeat(5000);
        let mut r = conversation(3, &long);
        assert_eq!(place(&mut r, &auto), 3);
        assert_eq!(points_at(&r), ["system", "messages[2]", "messages[4]"]);
        assert_eq!(count_points(&r), 3);
        // Placed once: a request with points is left alone.
        assert_eq!(place(&mut r, &auto), 0);
    }

    #[test]
    fn short_prefixes_get_no_points_and_tools_carry_one_without_system() {
        let auto = AutoCache::for_model("anthropic.claude-3-5-haiku-20241022-v1:0");
        assert_eq!(auto.min_tokens, 2048);
        let mut r = conversation(2, "short");
        assert_eq!(place(&mut r, &auto), 0, "nothing reaches 2,048 tokens");

        let mut r = conversation(1, "");
        r.system.clear();
        r.tool_config = Some(ToolConfig {
            tools: vec![Tool::ToolSpec(crate::wire::ToolSpec {
                name: "big".into(),
                description: Some("d".repeat(9000)),
                input_schema: crate::wire::InputSchema::Json(serde_json::json!({"type": "object"})),
                strict: None,
            })],
            tool_choice: None,
        });
        assert_eq!(place(&mut r, &auto), 2);
        assert!(matches!(
            r.tool_config.as_ref().unwrap().tools.last(),
            Some(Tool::CachePoint(_))
        ));
        assert_eq!(points_at(&r), ["messages[0]"]);
    }
}
