//! Gateway integration tests: the real binary, the real AWS SDK, a fake
//! SageMaker runtime speaking the genuine wire protocol, moto for Secrets
//! Manager, and the official OpenAI SDKs as clients.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod disconnect;
mod errors;
mod sdk_clients;
mod secrets;
mod shutdown;
mod support;
