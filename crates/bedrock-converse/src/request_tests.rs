//! Tests of `request`.
#![allow(clippy::unwrap_used)]
use super::*;

/// Writing a schema closed gives the text closing a copy gives.
#[test]
fn closed_writing_matches_closing_a_copy() {
    for s in [
        r#"{"type":"object","properties":{"a":{"type":"object","properties":{"z":{"type":"string"}}},"b":{"type":["object","null"]}},"$defs":{"x":{"properties":{}}}}"#,
        r#"{"anyOf":[{"type":"object"},{"type":"array","items":{"type":"object","additionalProperties":true}}],"enum":[{"type":"object"}]}"#,
        r#"{"type":"string"}"#,
        r#"{"zzz":1,"properties":{"b":{}},"aaa":{"type":"object"}}"#,
    ] {
        let v: Value = serde_json::from_str(s).unwrap();
        let mut copy = v.clone();
        close_objects(&mut copy);
        assert_eq!(
            serde_json::to_string(&Closed(&v)).unwrap(),
            copy.to_string(),
            "{s}"
        );
    }
}

/// An earlier answer's signed thinking (`thinking_blocks`) goes back first,
/// signature and redacted data intact; unsigned thinking stays behind.
#[test]
fn signed_thinking_goes_back_before_the_tool_call() {
    let req: ChatCompletionRequest = serde_json::from_value(serde_json::json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "reasoning_content": "Think.",
             "thinking_blocks": [
                {"type": "thinking", "thinking": "Think.", "signature": "c2ln"},
                {"type": "thinking", "thinking": "unsigned"},
                {"type": "redacted_thinking", "data": "AAEC"}
             ],
             "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "sunny"}
        ]
    }))
    .unwrap();
    let opts = RequestOptions {
        model_id: "anthropic.claude-sonnet-4-20250514-v1:0".into(),
        ..RequestOptions::default()
    };
    let c = to_converse(&req, &opts, &HashMap::new()).unwrap();
    let blocks = &c.messages[1].content;
    assert_eq!(
        blocks[0],
        ContentBlock::ReasoningContent(ReasoningContent::ReasoningText(ReasoningText {
            text: "Think.".into(),
            signature: Some("c2ln".into()),
        }))
    );
    assert_eq!(
        blocks[1],
        ContentBlock::ReasoningContent(ReasoningContent::RedactedContent(vec![0, 1, 2]))
    );
    assert!(matches!(blocks[2], ContentBlock::ToolUse(_)), "{blocks:?}");
}

/// `cache_control` on text parts becomes cache points after them (system,
/// user, assistant, tool results), TTL kept; more than four are refused.
#[test]
fn cache_control_becomes_cache_points() {
    let cc = serde_json::json!({"type": "ephemeral"});
    let req: ChatCompletionRequest = serde_json::from_value(serde_json::json!({
        "model": "m",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b", "cache_control": cc}]},
            {"role": "user", "content": [{"type": "text", "text": "q", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
            {"role": "assistant", "content": null,
             "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "w", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "t1", "content": [{"type": "text", "text": "r", "cache_control": cc}]}
        ]
    }))
    .unwrap();
    let c = to_converse(&req, &RequestOptions::default(), &HashMap::new()).unwrap();
    assert_eq!(
        c.system,
        [
            SystemBlock::Text("a".into()),
            SystemBlock::Text("b".into()),
            SystemBlock::CachePoint(CachePoint::new(None))
        ]
    );
    assert_eq!(
        c.messages[0].content[1],
        ContentBlock::CachePoint(CachePoint::new(Some("1h".into())))
    );
    assert!(matches!(
        c.messages[2].content[..],
        [ContentBlock::ToolResult(_), ContentBlock::CachePoint(_)]
    ));
    let mut five = req.clone();
    five.messages.push(serde_json::from_value(serde_json::json!(
        {"role": "user", "content": [{"type": "text", "text": "x", "cache_control": cc}, {"type": "text", "text": "y", "cache_control": cc}]}
    )).unwrap());
    let e = to_converse(&five, &RequestOptions::default(), &HashMap::new()).unwrap_err();
    assert!(e.to_string().contains("at most 4"), "{e}");
}
