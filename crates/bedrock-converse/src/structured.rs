//! Structured output (`response_format: json_schema`): the schema as
//! `outputConfig.textFormat` with every object closed, and, for a model
//! that refuses `outputConfig`, the same schema as one forced tool.

use openai_types::chat::JsonSchemaFormat;
use serde_json::Value;

use crate::wire::{
    ConverseRequest, InputSchema, JsonSchemaDefinition, NamedTool, OutputConfig, OutputFormat,
    OutputStructure, Tool, ToolChoice as BrToolChoice, ToolConfig, ToolSpec,
};

/// The name of the tool [`structured_output_fallback`] offers when a schema
/// has no usable name.
pub const ANSWER_TOOL: &str = "json_response";

/// `response_format: json_schema` as `outputConfig.textFormat`. Bedrock
/// compiles the schema to a grammar and, like OpenAI's strict mode, needs
/// every object closed: `additionalProperties: false` is set on each object
/// schema that does not say otherwise.
pub(crate) fn output_config(f: &JsonSchemaFormat) -> OutputConfig {
    // Written closed straight from the client's schema: no copy of its
    // tree (a schema's tree costs ten times its text).
    let schema = match &f.schema {
        Some(s) => serde_json::to_string(&Closed(s)).unwrap_or_else(|_| s.to_string()),
        None => r#"{"additionalProperties":false,"type":"object"}"#.to_owned(),
    };
    OutputConfig {
        text_format: OutputFormat {
            kind: "json_schema".into(),
            structure: OutputStructure::JsonSchema(JsonSchemaDefinition {
                schema,
                name: Some(f.name.clone()),
                description: f.description.clone(),
            }),
        },
    }
}

/// A schema as [`close_objects`] would leave it, serialized without
/// changing (or copying) the schema: the added member goes where the map
/// would have put it.
pub(crate) struct Closed<'a>(pub(crate) &'a Value);

fn is_object_schema(map: &serde_json::Map<String, Value>) -> bool {
    map.get("type").is_some_and(|t| {
        t == "object"
            || t.as_array()
                .is_some_and(|a| a.iter().any(|t| t == "object"))
    }) || map.contains_key("properties")
}

/// Keys whose values are data, not schemas.
fn is_data_key(k: &str) -> bool {
    matches!(k, "enum" | "const" | "default" | "examples")
}

impl serde::Serialize for Closed<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0 {
            Value::Object(map) => {
                const ADDED: &str = "additionalProperties";
                let mut add = is_object_schema(map) && !map.contains_key(ADDED);
                // Where an inserted key lands: in key order, unless the map
                // keeps insertion order (then last).
                let sorted = map.keys().zip(map.keys().skip(1)).all(|(a, b)| a < b);
                let mut m = s.serialize_map(Some(map.len() + usize::from(add)))?;
                for (k, v) in map {
                    if add && sorted && k.as_str() > ADDED {
                        m.serialize_entry(ADDED, &false)?;
                        add = false;
                    }
                    if is_data_key(k) {
                        m.serialize_entry(k, v)?;
                    } else {
                        m.serialize_entry(k, &Closed(v))?;
                    }
                }
                if add {
                    m.serialize_entry(ADDED, &false)?;
                }
                m.end()
            }
            Value::Array(items) => s.collect_seq(items.iter().map(Closed)),
            other => other.serialize(s),
        }
    }
}

/// Sets `additionalProperties: false` on every object schema without one,
/// however deeply nested (properties, items, `$defs`, `anyOf`…).
pub fn close_objects(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if is_object_schema(map) && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (k, v) in map.iter_mut() {
                if !is_data_key(k) {
                    close_objects(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// For a model that refuses `outputConfig`: the same schema as one forced
/// tool whose input is the answer (and no thinking, which a forced tool
/// excludes). Returns the tool's name, which the response and stream
/// translators turn back into `message.content`; `None` when the request
/// has no `outputConfig`.
pub fn structured_output_fallback(r: &mut ConverseRequest) -> Option<String> {
    let OutputStructure::JsonSchema(def) = r.output_config.take()?.text_format.structure;
    let schema: Value =
        serde_json::from_str(&def.schema).unwrap_or_else(|_| serde_json::json!({"type": "object"}));
    let tools = r.tool_config.get_or_insert_with(|| ToolConfig {
        tools: Vec::new(),
        tool_choice: None,
    });
    let taken = |n: &str| {
        tools
            .tools
            .iter()
            .filter_map(Tool::spec)
            .any(|s| s.name == n)
    };
    let mut name = def
        .name
        .filter(|n| {
            (1..=64).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .unwrap_or_else(|| ANSWER_TOOL.to_owned());
    while taken(&name) {
        name.push('_');
    }
    tools.tools.push(Tool::ToolSpec(ToolSpec {
        name: name.clone(),
        description: Some(def.description.unwrap_or_else(|| {
            "Give the answer by calling this tool with it as the input.".into()
        })),
        input_schema: InputSchema::Json(schema),
        strict: None,
    }));
    tools.tool_choice = Some(BrToolChoice::Tool(NamedTool { name: name.clone() }));
    if let Some(extra) = &mut r.additional_model_request_fields {
        extra.remove("thinking");
        if extra.is_empty() {
            r.additional_model_request_fields = None;
        }
    }
    Some(name)
}

/// Whether a Bedrock error message says the model does not take
/// `outputConfig` (so [`structured_output_fallback`] applies).
pub fn refuses_output_config(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("outputconfig")
        || m.contains("output config")
        || m.contains("output_config")
        || m.contains("structured output")
}
