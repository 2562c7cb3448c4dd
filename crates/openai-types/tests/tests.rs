//! Round trips of real JSON from the OpenAI API reference, and the spec's
//! required/optional rules.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use openai_types::chat::*;
use openai_types::completions::{Completion, CompletionRequest};
use openai_types::embeddings::*;
use openai_types::models::ModelList;
use openai_types::{ErrorResponse, Usage};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Parses the fixture as `T`, serializes it back, and requires the same JSON.
fn round_trip<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let v = fixture(name);
    let t: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    // Through text, as on the wire (an f32 prints in its shortest form).
    let back: Value = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    assert!(same(&back, &v), "{name} did not round-trip:\n{back}\n{v}");
    t
}

/// JSON equality where `1` equals `1.0`, and a key whose value is `null`
/// equals an absent key (the spec makes such fields optional and nullable;
/// required nulls are checked by their own tests).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<_> = x.keys().chain(y.keys()).collect();
            keys.into_iter().all(|k| {
                let p = x.get(k).unwrap_or(&Value::Null);
                let q = y.get(k).unwrap_or(&Value::Null);
                same(p, q)
            })
        }
        _ => a == b,
    }
}

#[test]
fn chat_request_with_every_field_round_trips() {
    let r: ChatCompletionRequest = round_trip("chat_request_tools.json");
    assert!(r.is_stream() && r.include_usage());
    assert_eq!(r.max_output_tokens(), Some(200));
    assert_eq!(r.messages.len(), 6);
    assert!(matches!(r.messages[0], ChatMessage::Developer(_)));
    assert!(matches!(&r.messages[3], ChatMessage::Assistant(a) if a.content.is_none()));
    assert!(matches!(
        r.tool_choice,
        Some(ToolChoice::Mode(ToolChoiceMode::Auto))
    ));
    // Fields we do not model are kept.
    for k in ["store", "service_tier", "modalities", "prediction"] {
        assert!(r.extra.contains_key(k), "{k}");
    }
}

#[test]
fn chat_request_variants_round_trip() {
    let r: ChatCompletionRequest = round_trip("chat_request_named_tool_choice.json");
    assert!(
        matches!(r.tool_choice, Some(ToolChoice::Named(ref n)) if n.function.name == "my_function")
    );
}

#[test]
fn responses_chunks_and_errors_round_trip() {
    let c: ChatCompletion = serde_json::from_value(fixture("chat_response.json")).unwrap();
    assert_eq!(c.choices[0].finish_reason, FinishReason::Stop);
    round_trip::<ChatCompletion>("chat_response_tool_calls.json");
    round_trip::<ChatCompletionChunk>("chat_chunk_tool_call.json");
    round_trip::<ChatCompletionChunk>("chat_chunk_usage.json");
    round_trip::<CompletionRequest>("completion_request.json");
    round_trip::<Completion>("completion_response.json");
    round_trip::<EmbeddingRequest>("embedding_request.json");
    round_trip::<EmbeddingResponse>("embedding_response.json");
    round_trip::<ModelList>("models_list.json");
    round_trip::<ErrorResponse>("error.json");
}

#[test]
fn chunk_keeps_required_nulls_and_drops_optional_ones() {
    let c: ChatCompletionChunk = serde_json::from_value(fixture("chat_chunk.json")).unwrap();
    let v = serde_json::to_value(&c).unwrap();
    let choice = v["choices"][0].as_object().unwrap();
    assert!(choice.contains_key("finish_reason") && choice["finish_reason"].is_null());
    assert!(
        !choice.contains_key("logprobs"),
        "optional, no value: left out"
    );
    assert!(!v.as_object().unwrap().contains_key("usage"));
}

#[test]
fn response_message_always_has_content_and_refusal() {
    let m = ResponseMessage::default();
    assert_eq!(
        serde_json::to_value(&m).unwrap(),
        json!({"role": "assistant", "content": null, "refusal": null})
    );
    let choice = Choice {
        index: 0,
        message: m,
        logprobs: None,
        finish_reason: FinishReason::Stop,
    };
    assert!(serde_json::to_value(&choice).unwrap()["logprobs"].is_null());
}

#[test]
fn error_always_has_param_and_code() {
    let e = ErrorResponse::new("bad", "invalid_request_error");
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"error": {"message": "bad", "type": "invalid_request_error", "param": null, "code": null}})
    );
}

#[test]
fn fixed_tags_refuse_other_values() {
    let mut v = fixture("chat_chunk.json");
    v["object"] = json!("chat.completion");
    assert!(serde_json::from_value::<ChatCompletionChunk>(v).is_err());
}

#[test]
fn usage_estimated_flag_only_when_set() {
    let u = Usage::new(3, 4);
    assert_eq!(
        serde_json::to_value(&u).unwrap(),
        json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
    );
    let mut u = u;
    u.estimated = true;
    assert_eq!(serde_json::to_value(&u).unwrap()["estimated"], true);
}

#[test]
fn base64_embeddings_are_little_endian_f32() {
    let v = EmbeddingVector::encode(vec![1.0, -2.5], EncodingFormat::Base64);
    let EmbeddingVector::Base64(s) = &v else {
        panic!("not base64")
    };
    assert_eq!(s, "AACAPwAAIMA=");
    assert_eq!(v.to_floats(), Some(vec![1.0, -2.5]));
}

#[test]
fn bad_messages_are_rejected() {
    for bad in [
        json!({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}),
        json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
        json!({"model": "m", "messages": "hi"}),
        json!({"messages": []}),
    ] {
        assert!(
            serde_json::from_value::<ChatCompletionRequest>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}
