//! Round trip: arbitrary payload parts encoded as event-stream frames, cut
//! anywhere, decode to exactly the same parts.
//!
//! The invariant lives in `sm_stream::fuzzing`, shared with the corpus replay test.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| sm_stream::fuzzing::check_frames_roundtrip(data));
