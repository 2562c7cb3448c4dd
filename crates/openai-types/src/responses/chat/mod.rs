//! The Responses API over chat completions, sans I/O: a `CreateResponse`
//! as a chat request ([`to_chat`]), a `chat.completion` as a `response`
//! ([`from_chat`]), and chat stream items as the Responses event sequence
//! ([`EventWriter`]).

use bytes::{BufMut, BytesMut};
use serde_json::{Map, Value, json};

use super::{
    CreateResponse, IncompleteDetails, OutputContent, OutputItem, ReasoningText, Response,
    ResponseError, ResponseUsage,
};
use crate::ErrorResponse;
use crate::chat::{ChatCompletion, ChatCompletionRequest, FinishReason};
use crate::stream::StreamItem;

pub use crate::validate::Invalid;

mod events;
use crate::validate::invalid;
pub use events::EventWriter;

/// The chat request that serves `req`. `previous_response_id`, `store:
/// true`, `background` and `conversation` need a response store and are
/// refused; so are tool kinds other than functions and input items that
/// refer to stored items.
pub fn to_chat(req: &CreateResponse) -> Result<ChatCompletionRequest, Invalid> {
    if req.previous_response_id.is_some() {
        return Err(invalid(
            "previous_response_id needs stored responses, which this gateway does not keep for this model: send the whole conversation in 'input'",
            "previous_response_id",
        ));
    }
    if req.store == Some(true) {
        return Err(invalid(
            "store is not supported for this model: responses are not kept; set store to false",
            "store",
        ));
    }
    for key in ["background", "conversation", "prompt"] {
        if req
            .extra
            .get(key)
            .is_some_and(|v| !v.is_null() && v != &json!(false))
        {
            return Err(invalid(
                format!("'{key}' is not supported for this model"),
                key,
            ));
        }
    }
    let mut messages = Vec::new();
    if let Some(i) = &req.instructions {
        messages.push(json!({"role": "developer", "content": i}));
    }
    match &req.input {
        None => return Err(invalid("'input' is required", "input")),
        Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                input_item(item, i, &mut messages)?;
            }
        }
        Some(_) => {
            return Err(invalid(
                "'input' must be a string or a list of items",
                "input",
            ));
        }
    }
    let mut chat = Map::new();
    chat.insert("model".into(), json!(req.model));
    chat.insert("messages".into(), Value::Array(messages));
    if req.is_stream() {
        chat.insert("stream".into(), json!(true));
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(tools) = &req.tools {
        let mut out = Vec::new();
        for (i, t) in tools.iter().enumerate() {
            if t["type"] != "function" {
                return Err(invalid(
                    format!(
                        "tool type '{}' is not supported for this model: only function tools are",
                        t["type"].as_str().unwrap_or("?")
                    ),
                    format!("tools[{i}].type"),
                ));
            }
            let mut f = Map::new();
            for k in ["name", "description", "parameters", "strict"] {
                if let Some(v) = t.get(k).filter(|v| !v.is_null()) {
                    f.insert(k.into(), v.clone());
                }
            }
            out.push(json!({"type": "function", "function": f}));
        }
        if !out.is_empty() {
            chat.insert("tools".into(), Value::Array(out));
        }
    }
    if let Some(c) = &req.tool_choice {
        let choice = match c {
            Value::String(_) => c.clone(),
            Value::Object(o) if o.get("type") == Some(&json!("function")) => {
                json!({"type": "function", "function": {"name": o.get("name").cloned().unwrap_or(Value::Null)}})
            }
            Value::Object(o)
                if matches!(
                    o.get("type").and_then(Value::as_str),
                    Some("auto" | "none" | "required")
                ) =>
            {
                o["type"].clone()
            }
            _ => {
                return Err(invalid(
                    "tool_choice must be auto, none, required or a function",
                    "tool_choice",
                ));
            }
        };
        chat.insert("tool_choice".into(), choice);
    }
    if let Some(p) = req.parallel_tool_calls {
        chat.insert("parallel_tool_calls".into(), json!(p));
    }
    if let Some(format) = req.text.as_ref().and_then(|t| t.get("format")) {
        let rf = match format["type"].as_str() {
            Some("text") => None,
            Some("json_object") => Some(json!({"type": "json_object"})),
            Some("json_schema") => {
                let mut s = Map::new();
                for k in ["name", "description", "schema", "strict"] {
                    if let Some(v) = format.get(k).filter(|v| !v.is_null()) {
                        s.insert(k.into(), v.clone());
                    }
                }
                Some(json!({"type": "json_schema", "json_schema": s}))
            }
            _ => {
                return Err(invalid(
                    "text.format.type must be text, json_object or json_schema",
                    "text.format.type",
                ));
            }
        };
        if let Some(rf) = rf {
            chat.insert("response_format".into(), rf);
        }
    }
    if let Some(effort) = req
        .reasoning
        .as_ref()
        .and_then(|r| r.get("effort"))
        .filter(|e| !e.is_null())
    {
        chat.insert("reasoning_effort".into(), effort.clone());
    }
    for (k, v) in [
        (
            "max_completion_tokens",
            req.max_output_tokens.map(|v| json!(v)),
        ),
        ("temperature", req.temperature.map(|v| json!(v))),
        ("top_p", req.top_p.map(|v| json!(v))),
        ("user", req.user.as_ref().map(|v| json!(v))),
    ] {
        if let Some(v) = v {
            chat.insert(k.into(), v);
        }
    }
    serde_json::from_value(Value::Object(chat)).map_err(|e| invalid(e.to_string(), "input"))
}

/// Adds one input item as chat messages (a function call joins the
/// assistant message before it).
fn input_item(item: &Value, i: usize, out: &mut Vec<Value>) -> Result<(), Invalid> {
    let at = |k: &str| format!("input[{i}].{k}");
    let kind = item["type"]
        .as_str()
        .unwrap_or(if item.get("role").is_some() {
            "message"
        } else {
            ""
        });
    match kind {
        "message" => {
            let role = item["role"].as_str().unwrap_or_default();
            if !matches!(role, "user" | "assistant" | "system" | "developer") {
                return Err(invalid(format!("unknown role '{role}'"), at("role")));
            }
            let content = message_content(&item["content"], role, &at("content"))?;
            out.push(json!({"role": role, "content": content}));
        }
        "function_call" => {
            let call = json!({"id": item["call_id"], "type": "function", "function": {
                "name": item["name"], "arguments": item["arguments"].as_str().unwrap_or("{}")}});
            if call["id"].as_str().is_none() || call["function"]["name"].as_str().is_none() {
                return Err(invalid(
                    "a function_call needs call_id and name",
                    at("call_id"),
                ));
            }
            match out.last_mut() {
                Some(last) if last["role"] == "assistant" && last.get("tool_calls").is_some() => {
                    if let Some(calls) = last["tool_calls"].as_array_mut() {
                        calls.push(call);
                    }
                }
                _ => out.push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        "function_call_output" => {
            let Some(id) = item["call_id"].as_str() else {
                return Err(invalid(
                    "a function_call_output needs call_id",
                    at("call_id"),
                ));
            };
            let output = match &item["output"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join(""),
                _ => return Err(invalid("output must be a string or parts", at("output"))),
            };
            out.push(json!({"role": "tool", "tool_call_id": id, "content": output}));
        }
        // The model's earlier reasoning: not sent back to chat backends.
        "reasoning" => {}
        "item_reference" => {
            return Err(invalid(
                "item_reference needs stored responses, which this model does not keep",
                at("type"),
            ));
        }
        other => {
            return Err(invalid(
                format!("input item type '{other}' is not supported for this model"),
                at("type"),
            ));
        }
    }
    Ok(())
}

/// A message's content in chat's shape.
fn message_content(c: &Value, role: &str, at: &str) -> Result<Value, Invalid> {
    let parts = match c {
        Value::String(_) => return Ok(c.clone()),
        Value::Array(p) => p,
        _ => return Err(invalid("content must be a string or a list of parts", at)),
    };
    let mut out = Vec::new();
    for (j, p) in parts.iter().enumerate() {
        match p["type"].as_str().unwrap_or_default() {
            "input_text" | "output_text" => out.push(json!({"type": "text", "text": p["text"]})),
            "refusal" => out.push(json!({"type": "text", "text": p["refusal"]})),
            "input_image" if role == "user" => {
                let Some(url) = p["image_url"].as_str() else {
                    return Err(invalid(
                        "images are taken by image_url (a URL or a data URL); file_id needs stored files",
                        format!("{at}[{j}].image_url"),
                    ));
                };
                let mut image = json!({"url": url});
                if let Some(d) = p["detail"].as_str() {
                    image["detail"] = json!(d);
                }
                out.push(json!({"type": "image_url", "image_url": image}));
            }
            other => {
                return Err(invalid(
                    format!("content part type '{other}' is not supported here"),
                    format!("{at}[{j}].type"),
                ));
            }
        }
    }
    // Roles other than user take text only: join it.
    if role != "user" {
        let text: String = out.iter().filter_map(|p| p["text"].as_str()).collect();
        return Ok(Value::String(text));
    }
    Ok(Value::Array(out))
}

/// The response's fields that echo the request, `in_progress` with no
/// output yet.
pub fn response_base(req: &CreateResponse, id: &str, created_at: u64) -> Response {
    Response {
        id: id.to_owned(),
        object: "response".into(),
        created_at,
        status: "in_progress".into(),
        error: None,
        incomplete_details: None,
        instructions: req.instructions.clone(),
        model: req.model.clone(),
        output: Vec::new(),
        parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
        metadata: Some(req.metadata.clone().unwrap_or_default()),
        tool_choice: req.tool_choice.clone().unwrap_or_else(|| json!("auto")),
        tools: req.tools.clone().unwrap_or_default(),
        temperature: req.temperature,
        top_p: req.top_p,
        max_output_tokens: req.max_output_tokens,
        reasoning: req.reasoning.clone(),
        text: req.text.clone(),
        usage: None,
    }
}

/// The status a finish reason gives a response.
fn finished(r: &mut Response, reason: Option<FinishReason>) {
    let incomplete = match reason {
        Some(FinishReason::Length) => Some("max_output_tokens"),
        Some(FinishReason::ContentFilter) => Some("content_filter"),
        _ => None,
    };
    r.status = if incomplete.is_some() {
        "incomplete"
    } else {
        "completed"
    }
    .into();
    r.incomplete_details = incomplete.map(|reason| IncompleteDetails {
        reason: reason.into(),
    });
}

/// A whole `chat.completion` (its first choice) as the finished response.
pub fn from_chat(mut base: Response, c: &ChatCompletion) -> Response {
    let id = base.id.trim_start_matches("resp_").to_owned();
    if let Some(choice) = c.choices.first() {
        let m = &choice.message;
        if let Some(r) = m.reasoning_content.as_ref().filter(|r| !r.is_empty()) {
            base.output.push(OutputItem::Reasoning {
                id: format!("rs_{id}"),
                summary: Vec::new(),
                content: vec![ReasoningText {
                    kind: "reasoning_text".into(),
                    text: r.clone(),
                }],
            });
        }
        let mut content = Vec::new();
        if let Some(t) = m.content.as_ref().filter(|t| !t.is_empty()) {
            content.push(output_text(t.clone()));
        }
        if let Some(r) = m.refusal.as_ref().filter(|r| !r.is_empty()) {
            content.push(OutputContent::Refusal { refusal: r.clone() });
        }
        if !content.is_empty() {
            base.output.push(OutputItem::Message {
                id: format!("msg_{id}"),
                status: "completed".into(),
                role: "assistant".into(),
                content,
            });
        }
        for (k, call) in m.tool_calls.iter().flatten().enumerate() {
            base.output.push(OutputItem::FunctionCall {
                id: format!("fc_{id}_{k}"),
                call_id: call.id.clone(),
                name: call.function.name.clone(),
                arguments: call.function.arguments.clone(),
                status: "completed".into(),
            });
        }
        finished(&mut base, Some(choice.finish_reason));
    } else {
        finished(&mut base, None);
    }
    base.usage = c.usage.as_ref().map(ResponseUsage::from);
    base
}

fn output_text(text: String) -> OutputContent {
    OutputContent::OutputText {
        text,
        annotations: Vec::new(),
        logprobs: Vec::new(),
    }
}

/// What is open in the output: the item being streamed.
#[derive(Debug)]
enum Open {
    None,
    Reasoning(usize),
    Message(usize),
    /// (output index, the chat tool call's index).
    Call(usize, u32),
}
