//! Embedding families: the request bodies each model takes, and its
//! responses in OpenAI's shape.

use bedrock_converse::embeddings::{COHERE_BATCH, Family, assemble, parse, plan};
use openai_types::embeddings::{EmbeddingRequest, EncodingFormat};
use serde_json::{Value, json};

fn req(v: Value) -> EmbeddingRequest {
    serde_json::from_value(v).unwrap()
}

fn bodies(r: &EmbeddingRequest, f: Family) -> Vec<Value> {
    plan(r, f)
        .unwrap()
        .bodies
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect()
}

#[test]
fn families_are_detected_from_ids_profiles_and_arns() {
    for (id, f) in [
        ("amazon.titan-embed-text-v1", Family::TitanV1),
        ("amazon.titan-embed-text-v2:0", Family::TitanV2),
        ("cohere.embed-english-v3", Family::CohereV3),
        ("cohere.embed-multilingual-v3", Family::CohereV3),
        ("us.cohere.embed-v4:0", Family::CohereV4),
        ("amazon.nova-2-multimodal-embeddings-v1:0", Family::Nova),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0",
            Family::TitanV2,
        ),
    ] {
        assert_eq!(Family::detect(id), Some(f), "{id}");
    }
    assert_eq!(
        Family::detect("anthropic.claude-3-haiku-20240307-v1:0"),
        None
    );
}

#[test]
fn titan_v2_takes_one_text_a_call_with_dimensions_and_normalize() {
    let r = req(json!({"model": "t", "input": ["a", "b"], "dimensions": 256, "normalize": false}));
    assert_eq!(
        bodies(&r, Family::TitanV2),
        vec![
            json!({"inputText": "a", "dimensions": 256, "normalize": false}),
            json!({"inputText": "b", "dimensions": 256, "normalize": false}),
        ]
    );
    let r = req(json!({"model": "t", "input": "x"}));
    assert_eq!(
        bodies(&r, Family::TitanV2),
        vec![json!({"inputText": "x", "normalize": true})]
    );
    let bad = req(json!({"model": "t", "input": "x", "dimensions": 300}));
    let e = plan(&bad, Family::TitanV2).unwrap_err().to_openai();
    assert_eq!(e.error.param.as_deref(), Some("dimensions"));
}

#[test]
fn titan_v1_takes_input_text_only() {
    let r = req(json!({"model": "t", "input": "hello"}));
    assert_eq!(
        bodies(&r, Family::TitanV1),
        vec![json!({"inputText": "hello"})]
    );
}

#[test]
fn cohere_batches_96_texts_a_call_with_input_type() {
    let inputs: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
    let r = req(json!({"model": "c", "input": inputs, "input_type": "search_query"}));
    let b = bodies(&r, Family::CohereV3);
    assert_eq!(b.len(), 2);
    assert_eq!(b[0]["texts"].as_array().unwrap().len(), COHERE_BATCH);
    assert_eq!(b[1]["texts"], json!(["t96", "t97", "t98", "t99"]));
    assert_eq!(b[0]["input_type"], "search_query");
    assert_eq!(b[0]["embedding_types"], json!(["float"]));
    let r = req(json!({"model": "c", "input": "x", "dimensions": 512}));
    assert_eq!(bodies(&r, Family::CohereV4)[0]["output_dimension"], 512);
    assert!(plan(&r, Family::CohereV3).is_err(), "v3 has a fixed size");
}

#[test]
fn nova_takes_a_single_embedding_task() {
    let r = req(json!({"model": "n", "input": "你好", "dimensions": 1024}));
    assert_eq!(
        bodies(&r, Family::Nova),
        vec![json!({
            "taskType": "SINGLE_EMBEDDING",
            "singleEmbeddingParams": {
                "embeddingPurpose": "GENERIC_INDEX",
                "embeddingDimension": 1024,
                "text": {"truncationMode": "END", "value": "你好"}
            }
        })]
    );
}

#[test]
fn token_arrays_and_empty_inputs_are_refused_with_the_param() {
    for (input, param) in [
        (json!([1, 2, 3]), "input"),
        (json!([[1, 2], [3]]), "input"),
        (json!([]), "input"),
        (json!(["a", ""]), "input[1]"),
    ] {
        let r = req(json!({"model": "t", "input": input}));
        let e = plan(&r, Family::TitanV2).unwrap_err();
        assert_eq!(e.http().status, 400);
        assert_eq!(e.to_openai().error.param.as_deref(), Some(param));
    }
}

#[test]
fn responses_of_each_family_are_read() {
    let (v, t) = parse(
        Family::TitanV2,
        br#"{"embedding":[0.5,-1.0],"inputTextTokenCount":3,"embeddingsByType":{"float":[0.5,-1.0]}}"#,
    )
    .unwrap();
    assert_eq!((v, t), (vec![vec![0.5, -1.0]], Some(3)));
    let (v, t) = parse(
        Family::CohereV3,
        br#"{"id":"x","embeddings":{"float":[[1.0],[2.0]]},"response_type":"embeddings_by_type","texts":["a","b"]}"#,
    )
    .unwrap();
    assert_eq!((v, t), (vec![vec![1.0], vec![2.0]], None));
    let (v, _) = parse(
        Family::CohereV3,
        br#"{"id":"x","embeddings":[[1.0]],"response_type":"embeddings_floats"}"#,
    )
    .unwrap();
    assert_eq!(v, vec![vec![1.0]]);
    let (v, _) = parse(
        Family::Nova,
        br#"{"embeddings":[{"embeddingType":"TEXT","embedding":[0.25]}]}"#,
    )
    .unwrap();
    assert_eq!(v, vec![vec![0.25]]);
    assert!(parse(Family::Nova, b"{}").is_err());
}

#[test]
fn base64_is_little_endian_float32() {
    let r = req(json!({"model": "t", "input": "abcdefgh"}));
    let p = plan(&r, Family::CohereV3).unwrap();
    let out = assemble(
        "m".into(),
        vec![vec![1.0, -2.5]],
        None,
        &p,
        EncodingFormat::Base64,
    );
    let v = serde_json::to_value(&out).unwrap();
    assert_eq!(v["data"][0]["embedding"], "AACAPwAAIMA=");
    assert_eq!(v["usage"], json!({"prompt_tokens": 2, "total_tokens": 2}));
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["object"], "embedding");
}
