//! Integration tests of `sm-stream`: golden fixtures, split invariance,
//! event-stream framing, the OpenAI contract, and the fuzz corpus.

mod contract;
mod fixtures;
mod frames;
mod fuzz_corpus;
mod props;
mod support;
