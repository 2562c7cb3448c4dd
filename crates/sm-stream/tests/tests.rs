//! Integration tests of `sm-stream`: golden fixtures, split invariance,
//! event-stream framing, the OpenAI contract, and the fuzz corpus.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod contract;
mod fixtures;
mod frames;
mod fuzz_corpus;
mod props;
mod support;
