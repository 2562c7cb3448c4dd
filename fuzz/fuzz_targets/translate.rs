//! Arbitrary bytes through the translator, as payload and as event-stream
//! input. Invariants: no panic; the output ends with `[DONE]` or one error
//! event; splitting the input anywhere changes nothing.
//!
//! The invariant lives in `sm_stream::fuzzing`, shared with the corpus replay test.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sm_stream::fuzzing::check_translate(data));
