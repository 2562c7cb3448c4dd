//! A service on plain hyper (no actix, no gateway) that serves one
//! SageMaker endpoint as OpenAI's streaming chat API: the AWS SDK's
//! `InvokeEndpointWithResponseStream`, `sm-stream`'s translator, SSE out.
//!
//! ```text
//! SAGEMAKER_ENDPOINT=my-vllm-endpoint AWS_REGION=us-east-1 \
//!     cargo run --example sagemaker_sse
//! curl -N localhost:8080/v1/chat/completions \
//!     -d '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}'
//! ```
//!
//! `LISTEN` sets the address (default `127.0.0.1:8080`); the endpoint runs
//! an OpenAI-compatible container (vLLM, SGLang, LMI). The first line on
//! stdout names the address it listens on.

use std::convert::Infallible;

use aws_sdk_sagemakerruntime::Client;
use aws_sdk_sagemakerruntime::primitives::Blob;
use aws_sdk_sagemakerruntime::types::ResponseStream;
use bytes::{Bytes, BytesMut};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use openai_types::ErrorResponse;
use openai_types::chat::ChatCompletionRequest;
use sm_stream::{DialectKind, OutputShape, Translator, TranslatorConfig};

type Body = BoxBody<Bytes, Infallible>;

/// The largest request body read.
const MAX_BODY: usize = 1 << 20;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::var("SAGEMAKER_ENDPOINT")?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = Client::new(&aws);
    let addr = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let (client, endpoint) = (client.clone(), endpoint.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| serve(client.clone(), endpoint.clone(), req));
            // A client that leaves drops the body stream, and with it the
            // SDK's receiver: the endpoint's connection closes.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

async fn serve(
    client: Client,
    endpoint: String,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if req.method() != Method::POST || req.uri().path() != "/v1/chat/completions" {
        return Ok(error(StatusCode::NOT_FOUND, "POST /v1/chat/completions"));
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(error(StatusCode::PAYLOAD_TOO_LARGE, "body too large")),
    };
    let mut chat: ChatCompletionRequest = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return Ok(error(StatusCode::BAD_REQUEST, &e.to_string())),
    };
    if let Err(e) = openai_types::validate::chat(&chat) {
        return Ok(error(StatusCode::BAD_REQUEST, &e.to_string()));
    }
    let include_usage = chat.include_usage();
    chat.stream = Some(true);
    let payload = match serde_json::to_vec(&chat) {
        Ok(p) => p,
        Err(e) => return Ok(error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())),
    };
    let sent = client
        .invoke_endpoint_with_response_stream()
        .endpoint_name(&endpoint)
        .content_type("application/json")
        .body(Blob::new(payload))
        .send()
        .await;
    let mut events = match sent {
        Ok(out) => out.body,
        Err(e) => {
            let why = aws_sdk_sagemakerruntime::error::DisplayErrorContext(&e).to_string();
            return Ok(error(StatusCode::BAD_GATEWAY, &why));
        }
    };
    let mut t = Translator::new(TranslatorConfig {
        id: "chatcmpl-example".into(),
        model: chat.model.clone(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        dialect: DialectKind::OpenAiChat,
        include_usage,
        ..TranslatorConfig::default()
    });
    let writer = t.sse_writer(OutputShape::Chat);
    let sse = async_stream::stream! {
        loop {
            let mut items = Vec::new();
            match events.recv().await {
                Ok(Some(ResponseStream::PayloadPart(p))) => {
                    if let Some(b) = p.bytes {
                        t.push_payload_bytes(Bytes::from(b.into_inner()), &mut items);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => t.finish(&mut items),
                Err(e) => t.push_error(sm_stream::Error::Truncated(e.to_string()), &mut items),
            }
            let mut out = BytesMut::new();
            writer.write_all(&items, &mut out);
            if !out.is_empty() {
                yield Ok::<_, Infallible>(Frame::data(out.freeze()));
            }
            if t.is_finished() {
                break;
            }
        }
    };
    let mut resp = Response::new(BodyExt::boxed(StreamBody::new(sse)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    Ok(resp)
}

/// OpenAI's error envelope.
fn error(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::to_vec(&ErrorResponse::new(message, "invalid_request_error"))
        .unwrap_or_default();
    let mut resp = Response::new(BodyExt::boxed(Full::new(Bytes::from(body))));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
