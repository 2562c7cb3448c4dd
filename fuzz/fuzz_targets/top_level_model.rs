//! See `openai_types::fuzzing::check_top_level` for the invariants (the corpus replays
//! there under `cargo test`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| openai_types::fuzzing::check_top_level(data));
