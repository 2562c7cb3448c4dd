//! ConverseStream input through the Bedrock stream translator. The first
//! byte picks the mode: raw bytes as the wire, or events built from the data
//! (valid frames with arbitrary event types and payloads, so the fuzzer gets
//! past the CRCs). Invariants: no panic; the output ends with `[DONE]` or
//! one error event; splitting the wire anywhere changes nothing.
#![no_main]

use bedrock_converse::fuzzing::{structured_wire, translate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, data)) = data.split_first() else {
        return;
    };
    let wire = if ctl & 1 == 0 {
        data.to_vec()
    } else {
        structured_wire(data)
    };
    let whole = translate(&wire, &[], ctl & 2 != 0);
    assert!(whole.ends_with("data: [DONE]\n\n") || whole.contains("{\"error\":"));
    assert_eq!(whole.matches("{\"error\":").count() <= 1, true);
    let cut = (ctl as usize >> 2).min(wire.len());
    let mid = wire.len() / 2;
    for at in [cut, mid] {
        assert_eq!(translate(&wire, &[at], ctl & 2 != 0), whole, "cut at {at}");
    }
});
