//! ConverseStream input through the Bedrock stream translator. The first
//! byte picks the mode: raw bytes as the wire, or events built from the data
//! (valid frames with arbitrary event types and payloads, so the fuzzer gets
//! past the CRCs). Invariants (`bedrock_converse::fuzzing::check`): no
//! panic; the output ends with `[DONE]` or one error event; splitting the
//! wire anywhere changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bedrock_converse::fuzzing::check(data));
