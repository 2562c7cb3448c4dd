//! A client's chat request body through openai-types and into the Bedrock
//! Converse request, for every reasoning style. Invariants
//! (`bedrock_converse::fuzzing::check_request`): no panic; what parses
//! serializes and parses back to the same JSON; a Converse request that
//! builds also serializes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bedrock_converse::fuzzing::check_request(data));
