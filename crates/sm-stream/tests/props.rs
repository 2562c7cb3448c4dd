//! Property tests: random splits of every fixture, in both feeds, give the
//! unsplit output.

use proptest::prelude::*;

use crate::support::{Feed, Options, fixtures, frames, run_pieces};

fn cut(data: &[u8], mut points: Vec<usize>) -> Vec<&[u8]> {
    points.iter_mut().for_each(|p| *p %= data.len() + 1);
    points.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for p in points {
        out.push(&data[last..p]);
        last = p;
    }
    out.push(&data[last..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_payload_splits(points in proptest::collection::vec(any::<usize>(), 0..24)) {
        for (name, payload) in fixtures() {
            let opts = Options::for_fixture(&name);
            let (whole, _) = run_pieces(&opts, Feed::Payload, [payload.as_slice()]);
            let (got, _) = run_pieces(&opts, Feed::Payload, cut(&payload, points.clone()));
            prop_assert_eq!(got, whole, "{}", name);
        }
    }

    #[test]
    fn random_frame_sizes_and_wire_splits(
        part in 1usize..40,
        points in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        for (name, payload) in fixtures() {
            let opts = Options::for_fixture(&name);
            let (whole, _) = run_pieces(&opts, Feed::Payload, [payload.as_slice()]);
            let wire = frames(&payload, part);
            let (got, _) = run_pieces(&opts, Feed::EventStream, cut(&wire, points.clone()));
            prop_assert_eq!(got, whole, "{}", name);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_always_end(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for feed in [Feed::Payload, Feed::EventStream] {
            let (sse, _) = run_pieces(&Options::default(), feed, [bytes.as_slice()]);
            let ok = sse.ends_with("data: [DONE]\n\n") || sse.contains("{\"error\":");
            prop_assert!(ok, "stream did not end: {}", sse);
        }
    }
}
