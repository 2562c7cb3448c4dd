//! A client's `/v1` path through the pass-through guard, then through the
//! URL parser the gateway uses. Invariant: a path the guard accepts never
//! leaves the upstream's base path or host, whatever the parser resolves.
//!
//! The invariant lives in `openai_types::fuzzing`, shared with the corpus replay test.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| openai_types::fuzzing::check_path_guard(data));
