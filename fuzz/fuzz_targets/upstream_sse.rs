//! An OpenAI-style upstream's SSE body as the gateway reads it: the OpenAI
//! dialect fixed, bytes handed over as `Bytes` in three pieces. Invariants:
//! no panic; the output ends with `[DONE]` or one error event; where the
//! body is cut changes nothing.
//!
//! The invariant lives in `sm_stream::fuzzing`, shared with the corpus replay test.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sm_stream::fuzzing::check_upstream_sse(data));
