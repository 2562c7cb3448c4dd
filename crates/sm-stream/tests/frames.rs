//! The event-stream layer: framed input gives the same output as payload
//! input, at any cut; bad frames and exception events end the stream with
//! one error event.

use crate::support::{Feed, Options, fixtures, frames, run_pieces};
use sm_stream::frame::encode;

#[test]
fn framed_fixtures_match_payload_fixtures_at_every_cut() {
    for (name, payload) in fixtures() {
        let opts = Options::for_fixture(&name);
        let (whole, _) = run_pieces(&opts, Feed::Payload, [payload.as_slice()]);
        for part in [1, 3, 7, 64, 4096] {
            let framed = frames(&payload, part);
            let (got, _) = run_pieces(&opts, Feed::EventStream, [framed.as_slice()]);
            assert_eq!(got, whole, "{name}: parts of {part}");
        }
        // Every cut of the wire bytes, with 64-byte payload parts.
        let framed = frames(&payload, 64);
        for i in 0..=framed.len() {
            let (a, b) = framed.split_at(i);
            let (got, _) = run_pieces(&opts, Feed::EventStream, [a, b]);
            assert_eq!(got, whole, "{name}: frames cut at {i}");
        }
    }
}

fn last_event(sse: &str) -> serde_json::Value {
    let last = sse.trim_end().rsplit("\n\n").next().unwrap();
    serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap()
}

#[test]
fn model_stream_error_becomes_one_error_event() {
    let mut wire = frames(
        b"data: {\"token\":{\"text\":\"Hi\",\"special\":false}}\n\n",
        10,
    );
    wire.extend(encode::exception(
        "ModelStreamError",
        "Model server crashed",
        Some("ModelError"),
    ));
    wire.extend(frames(
        b"data: {\"token\":{\"text\":\"never\",\"special\":false}}\n\n",
        10,
    ));
    let (sse, _) = run_pieces(&Options::default(), Feed::EventStream, [wire.as_slice()]);
    assert!(sse.contains("\"content\":\"Hi\""), "{sse}");
    assert!(!sse.contains("never"), "{sse}");
    assert_eq!(sse.matches("\"error\"").count(), 1, "{sse}");
    let e = last_event(&sse);
    assert_eq!(e["error"]["message"], "Model server crashed");
    assert_eq!(e["error"]["code"], "ModelError");
    assert_eq!(e["error"]["param"], serde_json::Value::Null);
    assert!(e["error"].as_object().unwrap().contains_key("param"));
}

#[test]
fn internal_stream_failure_becomes_one_error_event() {
    let wire = encode::exception("InternalStreamFailure", "Internal stream failure", None);
    let (sse, _) = run_pieces(&Options::default(), Feed::EventStream, [wire.as_slice()]);
    let e = last_event(&sse);
    assert_eq!(e["error"]["message"], "Internal stream failure");
    assert_eq!(e["error"]["code"], "internal_stream_failure");
    assert_eq!(e["error"]["type"], "server_error");
}

#[test]
fn bad_crc_is_an_error_event() {
    let mut wire = frames(
        b"data: {\"token\":{\"text\":\"Hi\",\"special\":false}}\n\n",
        100,
    );
    let n = wire.len();
    wire[n - 1] ^= 0xff; // message CRC
    let (sse, _) = run_pieces(&Options::default(), Feed::EventStream, [wire.as_slice()]);
    let e = last_event(&sse);
    assert_eq!(e["error"]["code"], "invalid_upstream_frame", "{sse}");
    assert!(!sse.contains("[DONE]"));
}

#[test]
fn bad_prelude_crc_is_an_error_event() {
    let mut wire = frames(b"{\"outputs\":[\"x\"]}\n", 100);
    wire[9] ^= 0x01; // prelude CRC
    let (sse, _) = run_pieces(&Options::default(), Feed::EventStream, [wire.as_slice()]);
    assert_eq!(
        last_event(&sse)["error"]["code"],
        "invalid_upstream_frame",
        "{sse}"
    );
}

#[test]
fn truncated_frame_is_an_error_event() {
    let wire = frames(b"{\"outputs\":[\"x\"]}\n", 100);
    for cut in [1, 11, 12, wire.len() - 1] {
        let (sse, _) = run_pieces(&Options::default(), Feed::EventStream, [&wire[..cut]]);
        assert_eq!(
            last_event(&sse)["error"]["code"],
            "upstream_stream_truncated",
            "cut {cut}: {sse}"
        );
    }
}
