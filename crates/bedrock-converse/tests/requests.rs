//! Request fixtures: an OpenAI request (and the model's options) in, the
//! Converse request (or the client error) out.

use std::collections::HashMap;

use bedrock_converse::request::{decode_data_url, remote_image_urls, structured_output_fallback};
use bedrock_converse::wire::{ImageBlock, ImageFormat, ImageSource};
use bedrock_converse::{ReasoningStyle, RequestOptions, to_converse};
use openai_types::chat::ChatCompletionRequest;
use serde_json::{Value, json};

use crate::support::{expect_json, fixtures};

fn options(f: &Value) -> RequestOptions {
    let o = &f["options"];
    RequestOptions {
        model_id: o["model_id"]
            .as_str()
            .unwrap_or("anthropic.claude-3-5-haiku-20241022-v1:0")
            .into(),
        reasoning: serde_json::from_value(o["reasoning"].clone()).unwrap_or(ReasoningStyle::Auto),
        default_max_tokens: o["default_max_tokens"].as_u64().map(|v| v as u32),
        guardrail: serde_json::from_value(o["guardrail"].clone()).ok(),
        prompt_cache: o["prompt_cache_min_tokens"].as_u64().map(|n| {
            bedrock_converse::cache::AutoCache {
                min_tokens: n as u32,
                ttl: None,
            }
        }),
    }
}

#[test]
fn every_request_fixture_translates_as_recorded() {
    for (name, f) in fixtures("request") {
        let req: ChatCompletionRequest =
            serde_json::from_value(f["openai"].clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut images = HashMap::new();
        if let Some(fetched) = f["fetched_images"].as_object() {
            for (url, b64) in fetched {
                let block =
                    decode_data_url(&format!("data:image/png;base64,{}", b64.as_str().unwrap()))
                        .unwrap();
                images.insert(url.clone(), block);
            }
        }
        let actual = match to_converse(&req, &options(&f), &images) {
            Ok(mut c) => {
                if f["options"]["fallback"] == true {
                    let tool = structured_output_fallback(&mut c);
                    assert!(tool.is_some(), "{name}: no outputConfig to fall back from");
                }
                serde_json::to_value(&c).unwrap()
            }
            Err(e) => {
                json!({"error": serde_json::to_value(e.to_openai()).unwrap()["error"], "status": e.http().status})
            }
        };
        expect_json("request", &name, &f, "converse", actual);
    }
}

#[test]
fn remote_images_are_listed_once_and_data_urls_are_not() {
    let req: ChatCompletionRequest = serde_json::from_value(json!({
        "model": "m",
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
        ]}]
    }))
    .unwrap();
    assert_eq!(remote_image_urls(&req), vec!["https://example.com/a.png"]);
}

#[test]
fn data_urls_decode_and_sniff_their_format() {
    let png = "data:image/png;base64,iVBORw0KGgoAAAAN";
    let b = decode_data_url(png).unwrap();
    assert_eq!(b.format, ImageFormat::Png);
    // A wrong or generic media type is corrected from the bytes.
    let b = decode_data_url("data:application/octet-stream;base64,/9j/4AAQ").unwrap();
    assert_eq!(b.format, ImageFormat::Jpeg);
    assert!(decode_data_url("data:image/png,rawtext").is_err());
    assert!(decode_data_url("data:image/tiff;base64,AAAA").is_err());
    assert!(decode_data_url("data:image/png;base64,!!!").is_err());
    assert_eq!(
        decode_data_url("data:image/webp;base64,UklGRgAAAABXRUJQ").unwrap(),
        ImageBlock {
            format: ImageFormat::Webp,
            source: ImageSource::Bytes(b"RIFF\0\0\0\0WEBP".to_vec())
        }
    );
}
