//! Integration tests of `bedrock-converse`: golden fixtures for requests,
//! responses and streams (every stream split at every byte boundary), the
//! OpenAI contract on every output, and embeddings.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod embeddings;
mod fuzz_corpus;
mod requests;
mod responses;
mod streams;
mod support;
