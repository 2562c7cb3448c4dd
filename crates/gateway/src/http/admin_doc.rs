//! The admin API's OpenAPI 3.1 document, served at `/admin/openapi.json`.

use serde_json::{Value, json};

fn op(summary: &str, body: Option<&str>, ok: (&str, &str)) -> Value {
    let mut o = json!({
        "summary": summary,
        "security": [{"adminKey": []}],
        "responses": {
            ok.0: {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", ok.1)}}}},
            "401": {"$ref": "#/components/responses/Error"},
            "404": {"$ref": "#/components/responses/Error"}
        }
    });
    if let Some(b) = body {
        o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{b}")}}}});
    }
    o
}

fn id_param() -> Value {
    json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}, "description": "The key's id (first 8 bytes of its SHA-256, hex)."}])
}

/// The document.
pub(super) fn document() -> Value {
    let limits = json!({
        "owner": {"type": ["string", "null"]},
        "models": {"type": "array", "items": {"type": "string"}, "description": "Model globs (empty: any)."},
        "upstreams": {"type": "array", "items": {"type": "string"}, "description": "Upstream names (empty: any)."},
        "expires_at": {"type": ["integer", "null"], "description": "Unix milliseconds."},
        "quota_tokens": {"type": ["integer", "null"], "minimum": 0},
        "quota_micro_usd": {"type": ["integer", "null"], "minimum": 0, "description": "Cost quota in millionths of a US dollar, priced by [[prices]]."},
        "rpm": {"type": ["integer", "null"], "minimum": 0},
        "tpm": {"type": ["integer", "null"], "minimum": 0},
        "max_concurrent": {"type": ["integer", "null"], "minimum": 0},
        "ip_allow": {"type": "array", "items": {"type": "string"}, "description": "CIDRs (empty: any)."},
        "guardrail": {"type": ["object", "null"], "description": "A Bedrock guardrail on the key's chat calls, where the model has none.",
            "required": ["id", "version"], "additionalProperties": false, "properties": {
            "id": {"type": "string", "minLength": 1}, "version": {"type": "string", "description": "DRAFT or a number."},
            "trace": {"enum": ["enabled", "enabled_full", "disabled", null]},
            "stream_processing_mode": {"enum": ["sync", "async", null]},
            "window_chars": {"type": ["integer", "null"], "minimum": 1, "maximum": 100000}}}
    });
    let mut new_key = json!({"type": "object", "required": ["name"], "additionalProperties": false,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200}}});
    let mut patch = json!({"type": "object", "additionalProperties": false, "properties": {
        "name": {"type": "string"}, "disabled": {"type": "boolean"},
        "used_tokens": {"type": "integer", "minimum": 0, "description": "Reset usage."}}});
    let mut key = json!({"type": "object", "properties": {
        "object": {"const": "key"}, "id": {"type": "string"}, "name": {"type": "string"},
        "prefix": {"type": "string"}, "disabled": {"type": "boolean"},
        "status": {"enum": ["active", "disabled", "expired", "exhausted"]},
        "used_tokens": {"type": "integer"}, "used_micro_usd": {"type": "integer"}, "created_at": {"type": "integer"}, "updated_at": {"type": "integer"}}});
    for target in [&mut new_key, &mut patch, &mut key] {
        for (k, v) in limits.as_object().into_iter().flatten() {
            target["properties"][k] = v.clone();
        }
    }
    let mut usage = op(
        "Per model and key: requests, errors, tokens, prompt-cache reads and writes, cost and cache savings (micro-US$, at [[prices]]), guardrail interventions, fallbacks, affinity hits and moves, the key's name",
        None,
        ("200", "Usage"),
    );
    usage["parameters"] = json!([{"name": "since_ms", "in": "query", "schema": {"type": "integer"}, "description": "Unix milliseconds."}]);
    let mut daily = op(
        "Per UTC day and model (of one key with key_id): requests, tokens, prompt-cache reads and writes, cost and cache savings",
        None,
        ("200", "Usage"),
    );
    daily["parameters"] = json!([
        {"name": "since_ms", "in": "query", "schema": {"type": "integer"}, "description": "Unix milliseconds."},
        {"name": "key_id", "in": "query", "schema": {"type": "string"}}]);
    let mut requests = op("Recent request records", None, ("200", "Records"));
    requests["parameters"] = json!([
        {"name": "since_ms", "in": "query", "schema": {"type": "integer"}, "description": "Unix milliseconds."},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
        {"name": "model", "in": "query", "schema": {"type": "string"}},
        {"name": "key_id", "in": "query", "schema": {"type": "string"}}
    ]);
    let name = json!([{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}, "description": "An upstream's name or models/<name>."}]);
    let mut created = key.clone();
    created["properties"]["key"] =
        json!({"type": "string", "description": "The secret: shown in this answer only."});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "oai-gateway admin API", "version": env!("CARGO_PKG_VERSION")},
        "components": {
            "securitySchemes": {"adminKey": {"type": "http", "scheme": "bearer", "description": "The admin key ([admin] key)."}},
            "responses": {"Error": {"description": "An OpenAI-shaped error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
                    "required": ["message", "type", "param", "code"], "properties": {
                    "message": {"type": "string"}, "type": {"type": "string"},
                    "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}}},
                "NewKey": new_key,
                "KeyPatch": patch,
                "Key": key,
                "CreatedKey": created,
                "KeyList": {"type": "object", "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {"$ref": "#/components/schemas/Key"}}}},
                "Deleted": {"type": "object", "properties": {"id": {"type": "string"}, "object": {"const": "key"}, "deleted": {"type": "boolean"}}},
                "Usage": {"type": "object", "properties": {"object": {"const": "list"}, "since_ms": {"type": "integer"}, "data": {"type": "array", "items": {"type": "object", "properties": {
                    "model": {"type": "string"}, "key_id": {"type": "string"}, "requests": {"type": "integer"}, "errors": {"type": "integer"},
                    "prompt_tokens": {"type": "integer"}, "completion_tokens": {"type": "integer"}}}}}},
                "Upstreams": {"type": "object", "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {"type": "object"}}}},
                "Upstream": {"type": "object"},
                "Records": {"type": "object", "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {"type": "object"}}}},
                "Probe": {"type": "object", "description": "The probe's status and time."},
                "Document": {"type": "object", "description": "This document."}
            }
        },
        "paths": {
            "/admin/keys": {
                "get": op("List the stored keys", None, ("200", "KeyList")),
                "post": op("Create a key (its secret is in this answer only)", Some("NewKey"), ("201", "CreatedKey"))
            },
            "/admin/keys/{id}": {
                "parameters": id_param(),
                "get": op("One key", None, ("200", "Key")),
                "patch": op("Change a key's scope, quota, limits or expiry", Some("KeyPatch"), ("200", "Key")),
                "delete": op("Delete a key", None, ("200", "Deleted"))
            },
            "/admin/keys/{id}/disable": {"parameters": id_param(), "post": op("Disable a key (refused within a second on every replica)", None, ("200", "Key"))},
            "/admin/keys/{id}/enable": {"parameters": id_param(), "post": op("Enable a key", None, ("200", "Key"))},
            "/admin/usage": {"get": usage},
            "/admin/usage/daily": {"get": daily},
            "/admin/requests": {"get": requests},
            "/admin/upstreams/test/{name}": {"parameters": name.clone(), "post": op("Send a tiny request to one candidate, timed", None, ("200", "Probe"))},
            "/admin/openapi.json": {"get": op("This document", None, ("200", "Document"))},
            "/admin/upstreams": {"get": op("Every candidate's health and breaker", None, ("200", "Upstreams"))},
            "/admin/upstreams/disable/{name}": {"parameters": name.clone(), "post": op("Take a candidate out of rotation", None, ("200", "Upstream"))},
            "/admin/upstreams/enable/{name}": {"parameters": name, "post": op("Put a candidate back", None, ("200", "Upstream"))}
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The OpenAPI paths an actix pattern stands for: `{x:(a|b)}` is each
    /// alternative, `{x:.*}` is `{x}`.
    fn paths(pattern: &str) -> Vec<String> {
        let mut out = vec![String::new()];
        for seg in pattern.split('/').skip(1) {
            let alts: Vec<String> = match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(inner) => match inner.split_once(':') {
                    Some((_, re)) if re.starts_with('(') => re
                        .trim_matches(|c| c == '(' || c == ')')
                        .split('|')
                        .map(str::to_owned)
                        .collect(),
                    Some((name, _)) => vec![format!("{{{name}}}")],
                    None => vec![seg.to_owned()],
                },
                None => vec![seg.to_owned()],
            };
            out = out
                .iter()
                .flat_map(|p| alts.iter().map(move |a| format!("{p}/{a}")))
                .collect();
        }
        out
    }

    /// Every route is documented, and nothing else is.
    #[test]
    fn the_document_lists_exactly_the_routes() {
        let routed: BTreeSet<(String, String)> = super::super::admin::ROUTES
            .iter()
            .flat_map(|(m, p)| paths(p).into_iter().map(move |p| ((*m).to_owned(), p)))
            .collect();
        let doc = super::document();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(m, _)| *m != "parameters")
                    .map(move |(m, _)| (m.clone(), p.clone()))
            })
            .collect();
        assert_eq!(routed, documented);
    }
}
