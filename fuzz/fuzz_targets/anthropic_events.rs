//! Chat stream items (from arbitrary bytes) through the Messages event
//! writer: the invariant is `anthropic_messages::fuzzing::check_events`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let items = anthropic_messages::fuzzing::items_from_bytes(data);
    anthropic_messages::fuzzing::check_events(&items);
});
