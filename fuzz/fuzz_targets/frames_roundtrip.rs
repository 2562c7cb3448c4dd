//! Round trip: arbitrary payload parts encoded as event-stream frames, cut
//! anywhere, decode to exactly the same parts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sm_stream::frame::{FrameDecoder, SmEvent, encode};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, data)) = data.split_first() else {
        return;
    };
    // Split the input into parts at every 0xFF byte.
    let parts: Vec<&[u8]> = data.split(|b| *b == 0xff).collect();
    let wire: Vec<u8> = parts.iter().flat_map(|p| encode::payload_part(p)).collect();
    let cut = (ctl as usize * 31) % (wire.len() + 1);
    let mut d = FrameDecoder::new();
    let mut got = Vec::new();
    for piece in [&wire[..cut], &wire[cut..]] {
        d.push(piece);
        while let Some(ev) = d.next_event().expect("valid frames decode") {
            match ev {
                SmEvent::PayloadPart(b) => got.push(b.to_vec()),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(!d.has_partial());
    assert_eq!(got, parts.iter().map(|p| p.to_vec()).collect::<Vec<_>>());
});
