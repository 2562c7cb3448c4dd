//! Test support: local fakes that speak the real wire protocols.
//!
//! * [`FakeSageMaker`]: the SageMaker runtime API (`InvokeEndpoint`,
//!   `InvokeEndpointWithResponseStream`) on loopback, with event-stream frames
//!   encoded by `aws-smithy-eventstream` (CRCs and all), SageMaker's error
//!   shapes and headers, the TGI / LMI / OpenAI container dialects, awkward
//!   payload-part splits, mid-stream errors, slow and endless streams, and a
//!   record of when each streaming connection closed.
//! * [`FakeBedrock`]: Bedrock's runtime (`Converse`, `ConverseStream` as
//!   event-stream frames, `InvokeModel` for embeddings) and control plane
//!   (`ListFoundationModels`, `ListInferenceProfiles`), with Bedrock's error
//!   shapes, exception events, tool calls, reasoning and frames cut anywhere.
//! * [`FakeOpenAi`]: an OpenAI-compatible upstream (chat, embeddings, a
//!   multipart upload, a large streamed download) with fault modes: error
//!   statuses, 429 with `Retry-After`, hangs before headers and mid-stream,
//!   slow first byte, malformed SSE, resets mid-body, failing every n-th call.
//! * [`FastUpstream`]: one thread of hyper answering OpenAI chat (whole or
//!   SSE) and SageMaker invocations (whole or framed) with precomputed
//!   bodies, for load benchmarks that must not measure the fake.
//! * [`moto`]: starts `moto_server` (a local Secrets Manager) when installed.
//!
//! This is test support, never the product: `publish = false`.

mod bedrock;
mod bedrock_guardrail;
mod bedrock_model;
mod bedrock_rules;
pub mod demo;
mod fast;
mod http;
pub mod moto;
mod openai;
mod rerank;
mod sagemaker;

pub use bedrock::{
    BedrockFault, BedrockModel, BedrockReply, BedrockRequest, BedrockStream, FakeBedrock,
};
pub use bedrock_guardrail::FakeGuardrail;
pub use fast::{FastUpstream, STREAM_EVENTS, TOKENS};
pub use openai::{FakeOpenAi, OpenAiFault, OpenAiRequest};
pub use sagemaker::{
    ContainerDialect, Endpoint, FakeSageMaker, Fault, HangRecord, RecordedRequest, Reply,
    StreamRecord,
};
