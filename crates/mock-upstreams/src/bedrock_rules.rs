//! The fake Bedrock's request checks beyond the basics, as the Converse API
//! reference states them: `outputConfig.textFormat` (type `json_schema`, the
//! `structure.jsonSchema` union with `schema` as a JSON **string**, `name`
//! and `description` strings), every object in a structured-output schema
//! closed with `additionalProperties: false`, `toolSpec.strict` a boolean,
//! and Claude's refusal of thinking with a forced tool. Also what a model
//! answers under a schema: a value shaped by it.

use serde_json::{Map, Value, json};

/// Why the request is invalid (a `ValidationException` message), if it is.
/// `structured`: whether the model takes `outputConfig`.
pub(crate) fn check(body: &Value, structured: bool) -> Option<String> {
    if let Some(o) = body.get("outputConfig") {
        if !structured {
            return Some(
                "This model doesn't support the outputConfig field. Remove outputConfig and try again."
                    .into(),
            );
        }
        if let Some(why) = check_output_config(o) {
            return Some(why);
        }
    }
    for (i, t) in body["toolConfig"]["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if t.get("cachePoint").is_some() {
            continue;
        }
        let spec = &t["toolSpec"];
        if spec
            .get("description")
            .is_some_and(|d| d.as_str().is_none_or(str::is_empty))
        {
            return Some(format!(
                "toolConfig.tools.{i}.toolSpec.description must have length greater than or equal to 1"
            ));
        }
        if spec["name"].as_str().is_none_or(|n| {
            n.is_empty()
                || n.len() > 64
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }) {
            return Some(format!("toolConfig.tools.{i}.toolSpec.name is invalid"));
        }
        if spec.get("strict").is_some_and(|s| !s.is_boolean()) {
            return Some(format!(
                "toolConfig.tools.{i}.toolSpec.strict must be a boolean"
            ));
        }
        if spec["inputSchema"]["json"].as_object().is_none() {
            return Some(format!(
                "toolConfig.tools.{i}.toolSpec.inputSchema.json must be an object"
            ));
        }
    }
    if let Some(why) = check_signed_thinking(body) {
        return Some(why);
    }
    if let Some(why) = check_documents(body) {
        return Some(why);
    }
    let choice = &body["toolConfig"]["toolChoice"];
    let forced = choice.get("any").is_some() || choice.get("tool").is_some();
    if forced
        && body["additionalModelRequestFields"]
            .get("thinking")
            .is_some()
    {
        return Some("Thinking may not be enabled when tool_choice forces tool use.".into());
    }
    None
}

/// Bedrock's document rules: at most 5 a request, each named with letters,
/// digits, single spaces, hyphens, parentheses and square brackets, no two
/// alike.
fn check_documents(body: &Value) -> Option<String> {
    let mut names = Vec::new();
    for m in body["messages"].as_array().into_iter().flatten() {
        for b in m["content"].as_array().into_iter().flatten() {
            let Some(d) = b.get("document") else { continue };
            let name = d["name"].as_str().unwrap_or_default();
            let ok = !name.is_empty()
                && !name.contains("  ")
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '(' | ')' | '[' | ']'));
            if !ok {
                return Some(format!(
                    "The document file name can only contain alphanumeric characters, whitespace characters, hyphens, parentheses, and square brackets. The name can't contain more than one consecutive whitespace character. Name: {name}"
                ));
            }
            if names.contains(&name) {
                return Some("A conversation must have unique document names.".into());
            }
            names.push(name);
        }
    }
    (names.len() > 5).then(|| "Too many documents: at most 5 a request.".into())
}

/// The signature the fake signs its reasoning with.
pub(crate) const SIGNATURE: &str = "ZmFrZS1zaWduYXR1cmU=";

/// Claude's rule with thinking on: an assistant turn that called tools
/// (and whose results follow) starts with its reasoning, signed as it was
/// given.
fn check_signed_thinking(body: &Value) -> Option<String> {
    body["additionalModelRequestFields"].get("thinking")?;
    let messages = body["messages"].as_array()?;
    let (i, last) = messages
        .iter()
        .enumerate()
        .rev()
        .find(|(_, m)| m["role"] == "assistant")?;
    let content = last["content"].as_array()?;
    if !content.iter().any(|b| b.get("toolUse").is_some()) {
        return None;
    }
    let first = &content[0]["reasoningContent"];
    if first.get("redactedContent").is_some()
        || first["reasoningText"]["signature"].as_str() == Some(SIGNATURE)
    {
        return None;
    }
    Some(format!(
        "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{}`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks).",
        if first.is_null() {
            "tool_use"
        } else {
            "thinking without its signature"
        }
    ))
}

fn check_output_config(o: &Value) -> Option<String> {
    let f = &o["textFormat"];
    if f["type"] != "json_schema" {
        return Some("outputConfig.textFormat.type must be json_schema".into());
    }
    let Some(structure) = f["structure"].as_object() else {
        return Some("outputConfig.textFormat.structure is required".into());
    };
    if structure.len() != 1 || !structure.contains_key("jsonSchema") {
        return Some("outputConfig.textFormat.structure must set exactly jsonSchema".into());
    }
    let def = &structure["jsonSchema"];
    for field in ["name", "description"] {
        if def.get(field).is_some_and(|v| !v.is_string()) {
            return Some(format!("jsonSchema.{field} must be a string"));
        }
    }
    let Some(text) = def["schema"].as_str() else {
        return Some("outputConfig.textFormat.structure.jsonSchema.schema must be a string".into());
    };
    let Ok(schema) = serde_json::from_str::<Value>(text) else {
        return Some("jsonSchema.schema is not valid JSON".into());
    };
    open_object(&schema).map(|at| {
        format!("Invalid JSON schema: objects must set additionalProperties to false (at {at})")
    })
}

/// The path of the first object schema not closed with
/// `additionalProperties: false`.
fn open_object(schema: &Value) -> Option<String> {
    fn walk(v: &Value, at: &str) -> Option<String> {
        match v {
            Value::Object(m) => {
                if (m.get("type") == Some(&json!("object")) || m.contains_key("properties"))
                    && m.get("additionalProperties") != Some(&Value::Bool(false))
                {
                    return Some(at.to_owned());
                }
                m.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "enum" | "const" | "default"))
                    .find_map(|(k, v)| walk(v, &format!("{at}/{k}")))
            }
            Value::Array(a) => a
                .iter()
                .enumerate()
                .find_map(|(i, v)| walk(v, &format!("{at}/{i}"))),
            _ => None,
        }
    }
    walk(schema, "#")
}

/// The schema a structured answer follows: `outputConfig`'s.
pub(crate) fn output_schema(body: &Value) -> Option<Value> {
    let text = body["outputConfig"]["textFormat"]["structure"]["jsonSchema"]["schema"].as_str()?;
    serde_json::from_str(text).ok()
}

/// The tool a request forces by name, with its input schema.
pub(crate) fn forced_tool(body: &Value) -> Option<(String, Value)> {
    let name = body["toolConfig"]["toolChoice"]["tool"]["name"].as_str()?;
    let schema = body["toolConfig"]["tools"]
        .as_array()?
        .iter()
        .find(|t| t["toolSpec"]["name"] == name)?["toolSpec"]["inputSchema"]["json"]
        .clone();
    Some((name.to_owned(), schema))
}

/// A value that satisfies `schema` (the subset structured outputs allow:
/// types, properties, items, enum, const, anyOf, `$ref` into `$defs`).
pub(crate) fn sample(schema: &Value) -> Value {
    fn go(s: &Value, root: &Value, depth: usize) -> Value {
        if depth > 8 {
            return Value::Null;
        }
        if let Some(r) = s["$ref"].as_str() {
            let target = r
                .strip_prefix("#/")
                .map(|p| p.split('/').fold(root, |v, k| &v[k]))
                .unwrap_or(&Value::Null);
            return go(target, root, depth + 1);
        }
        if let Some(c) = s.get("const") {
            return c.clone();
        }
        if let Some(e) = s["enum"].as_array().and_then(|e| e.first()) {
            return e.clone();
        }
        if let Some(first) = s["anyOf"].as_array().and_then(|a| a.first()) {
            return go(first, root, depth + 1);
        }
        let kind = match &s["type"] {
            Value::Array(types) => types.first().and_then(Value::as_str).unwrap_or("null"),
            t => t.as_str().unwrap_or(if s.get("properties").is_some() {
                "object"
            } else {
                "string"
            }),
        };
        match kind {
            "object" => {
                let mut out = Map::new();
                for (k, v) in s["properties"].as_object().into_iter().flatten() {
                    out.insert(k.clone(), go(v, root, depth + 1));
                }
                Value::Object(out)
            }
            "array" => json!([go(&s["items"], root, depth + 1)]),
            "integer" => json!(1),
            "number" => json!(1.5),
            "boolean" => json!(true),
            "null" => Value::Null,
            _ => json!("x"),
        }
    }
    go(schema, schema, 0)
}

/// A request's prompt tokens: 4 bytes of its JSON a token, cache points
/// left out (a marker is not prompt).
pub(crate) fn prompt_tokens(body: &Value) -> u64 {
    let mut b = body.clone();
    let strip = |a: &mut Value| {
        if let Some(a) = a.as_array_mut() {
            a.retain(|x| x.get("cachePoint").is_none());
        }
    };
    strip(&mut b["system"]);
    strip(&mut b["toolConfig"]["tools"]);
    for m in b["messages"].as_array_mut().into_iter().flatten() {
        strip(&mut m["content"]);
    }
    b.to_string().len() as u64 / 4
}

/// The prompt cache's effect, as Bedrock reports it. The prompt is read
/// as blocks in Bedrock's order (tools, system, messages); each
/// `cachePoint` ends a prefix, which counts once it reaches `min_tokens`
/// (a shorter one is ignored, as Bedrock does). The longest such prefix
/// already in `seen` (this fake's region) is read from the cache; the
/// prompt from there up to the last counting point is written (and every
/// counting prefix is remembered). Returns (read, written) tokens, a token
/// being 4 bytes of the blocks' JSON.
pub(crate) fn cache(
    body: &Value,
    min_tokens: u64,
    seen: &std::sync::Mutex<std::collections::HashSet<String>>,
) -> (u64, u64) {
    let is_point = |b: &Value| b.get("cachePoint").is_some();
    let mut prefix: Vec<Value> = Vec::new();
    let mut points = Vec::new();
    let tools = body["toolConfig"]["tools"].as_array().into_iter().flatten();
    let system = body["system"].as_array().into_iter().flatten();
    // A cache point is a marker, not prompt: the prefix it ends is the
    // blocks before it, whatever other points a request placed.
    for b in tools.chain(system) {
        if is_point(b) {
            points.push(prefix.len());
        } else {
            prefix.push(b.clone());
        }
    }
    for m in body["messages"].as_array().into_iter().flatten() {
        for b in m["content"].as_array().into_iter().flatten() {
            if is_point(b) {
                points.push(prefix.len());
            } else {
                prefix.push(json!({"role": m["role"], "block": b}));
            }
        }
    }
    let tokens_of = |blocks: &[Value]| {
        blocks
            .iter()
            .map(|b| b.to_string().len() as u64)
            .sum::<u64>()
            / 4
    };
    let keyed: Vec<(String, u64)> = points
        .into_iter()
        .map(|n| {
            let key = Value::Array(prefix[..n].to_vec()).to_string();
            (key, tokens_of(&prefix[..n]))
        })
        .filter(|(_, tokens)| *tokens >= min_tokens)
        .collect();
    let Some(last) = keyed.last().map(|(_, t)| *t) else {
        return (0, 0);
    };
    let mut seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let read = keyed
        .iter()
        .filter(|(k, _)| seen.contains(k))
        .map(|(_, t)| *t)
        .max()
        .unwrap_or(0);
    for (k, _) in keyed {
        seen.insert(k);
    }
    (read, last.saturating_sub(read))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_follow_refs_and_types() {
        let s = json!({
            "type": "object", "additionalProperties": false,
            "properties": {
                "name": {"type": "string"},
                "age": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "pet": {"$ref": "#/$defs/Pet"},
                "mood": {"enum": ["calm", "busy"]}
            },
            "$defs": {"Pet": {"type": "object", "properties": {"legs": {"type": "number"}}}}
        });
        assert_eq!(
            sample(&s),
            json!({"name": "x", "age": 1, "tags": ["x"], "pet": {"legs": 1.5}, "mood": "calm"})
        );
        assert_eq!(open_object(&s).as_deref(), Some("#/$defs/Pet"));
    }

    #[test]
    fn output_config_shapes_are_checked() {
        let good = json!({"outputConfig": {"textFormat": {"type": "json_schema",
            "structure": {"jsonSchema": {"name": "n",
                "schema": "{\"type\":\"object\",\"additionalProperties\":false}"}}}}});
        assert_eq!(check(&good, true), None);
        assert!(check(&good, false).unwrap().contains("outputConfig"));
        let mut object_schema = good.clone();
        object_schema["outputConfig"]["textFormat"]["structure"]["jsonSchema"]["schema"] =
            json!({"type": "object"});
        assert!(check(&object_schema, true).unwrap().contains("string"));
        let mut wrong_type = good.clone();
        wrong_type["outputConfig"]["textFormat"]["type"] = json!("jsonSchema");
        assert!(check(&wrong_type, true).is_some());
    }
}
