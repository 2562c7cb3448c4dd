//! Gateway integration tests: the real binary, the real AWS SDK, fake
//! SageMaker and Bedrock runtimes speaking the genuine wire protocol, moto for Secrets
//! Manager, and the official OpenAI SDKs as clients.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod abandoned;
mod admin_input;
mod api;
mod aws_tls;
mod bedrock;
mod bedrock_depth;
mod bedrock_langchain;
mod choices;
mod claude_code;
mod clients;
mod console;
mod console_usage;
mod dialects;
mod disconnect;
mod errors;
mod guardrails;
mod hardening;
mod intake;
mod keys;
mod memory;
mod messages;
mod observability;
mod outbound_proxy;
mod records;
mod replicas;
mod responses;
mod retrieval;
mod sagemaker_transport;
mod sdk_clients;
mod secrets;
mod sessions;
mod shutdown;
mod structured;
mod support;
mod throttling;
mod upstreams;
