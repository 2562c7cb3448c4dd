//! An OpenAI chat request answered by a Bedrock model through the AWS SDK,
//! translated both ways by `bedrock-converse` (feature `aws-sdk`): the
//! request to Converse, the answer (or the `ConverseStream` events) back to
//! a `chat.completion` (or its SSE chunks).
//!
//! ```text
//! AWS_REGION=us-east-1 cargo run --example bedrock_converse -- \
//!     anthropic.claude-3-haiku-20240307-v1:0 "Say hi"
//! AWS_REGION=us-east-1 cargo run --example bedrock_converse -- \
//!     anthropic.claude-3-haiku-20240307-v1:0 "Say hi" --stream
//! ```
//!
//! It prints the `chat.completion` as JSON, or with `--stream` the SSE a
//! client would receive.

use std::io::Write;

use aws_sdk_bedrockruntime::Client;
use bedrock_converse::{
    ReasoningOutput, ReasoningStyle, RequestOptions, ResponseMeta, StreamConfig, StreamTranslator,
    sdk,
};
use bytes::BytesMut;
use openai_types::chat::ChatCompletionRequest;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stream = args.iter().any(|a| a == "--stream");
    let mut words = args.iter().filter(|a| !a.starts_with("--"));
    let (Some(model_id), Some(prompt)) = (words.next(), words.next()) else {
        eprintln!("usage: bedrock_converse MODEL_ID PROMPT [--stream]");
        std::process::exit(2);
    };
    let chat: ChatCompletionRequest = serde_json::from_value(serde_json::json!({
        "model": model_id,
        "stream": stream,
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": prompt},
        ],
    }))?;
    let opts = RequestOptions {
        model_id: model_id.clone(),
        reasoning: ReasoningStyle::Auto,
        default_max_tokens: None,
        // Cache points after the system prompt and the last turns once the
        // prefix reaches the model's minimum (none in this short chat).
        prompt_cache: Some(bedrock_converse::cache::AutoCache::for_model(model_id)),
        guardrail: None,
    };
    // No remote image URLs in this request: nothing to fetch first.
    let converse = bedrock_converse::to_converse(&chat, &opts, &Default::default())?;
    let r = sdk::to_sdk(converse)?;
    let client =
        Client::new(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await);
    let (id, created) = ("chatcmpl-example".to_owned(), 0);
    if !stream {
        let out = client
            .converse()
            .model_id(model_id)
            .set_messages(Some(r.messages))
            .set_system(r.system)
            .set_inference_config(r.inference)
            .set_tool_config(r.tools)
            .set_additional_model_request_fields(r.extra)
            .send()
            .await?;
        let answer = sdk::from_sdk_response(out).ok_or("Bedrock sent no message")?;
        let meta = ResponseMeta {
            id,
            model: model_id.clone(),
            created,
            answer_tool: None,
        };
        let completion =
            bedrock_converse::to_chat_completion(answer, meta, ReasoningOutput::default());
        println!("{}", serde_json::to_string_pretty(&completion)?);
        return Ok(());
    }
    let out = client
        .converse_stream()
        .model_id(model_id)
        .set_messages(Some(r.messages))
        .set_system(r.system)
        .set_inference_config(r.inference)
        .set_tool_config(r.tools)
        .set_additional_model_request_fields(r.extra)
        .send()
        .await?;
    let mut events = out.stream;
    let mut t = StreamTranslator::new(StreamConfig {
        id,
        model: model_id.clone(),
        created,
        include_usage: true,
        ..StreamConfig::default()
    });
    let writer = t.sse_writer();
    let mut stdout = std::io::stdout().lock();
    while !t.is_finished() {
        let mut items = Vec::new();
        match events.recv().await {
            Ok(Some(e)) => t.push_event(sdk::from_sdk_event(e), &mut items),
            Ok(None) => t.finish(&mut items),
            Err(e) => t.push_error(
                bedrock_converse::Error::Truncated(e.to_string()),
                &mut items,
            ),
        }
        let mut sse = BytesMut::new();
        writer.write_all(&items, &mut sse);
        stdout.write_all(&sse)?;
        stdout.flush()?;
    }
    Ok(())
}
