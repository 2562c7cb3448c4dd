//! Tests of `request`.
#![allow(clippy::unwrap_used)]
use super::*;

/// Writing a schema closed gives the text closing a copy gives.
#[test]
fn closed_writing_matches_closing_a_copy() {
    for s in [
        r#"{"type":"object","properties":{"a":{"type":"object","properties":{"z":{"type":"string"}}},"b":{"type":["object","null"]}},"$defs":{"x":{"properties":{}}}}"#,
        r#"{"anyOf":[{"type":"object"},{"type":"array","items":{"type":"object","additionalProperties":true}}],"enum":[{"type":"object"}]}"#,
        r#"{"type":"string"}"#,
        r#"{"zzz":1,"properties":{"b":{}},"aaa":{"type":"object"}}"#,
    ] {
        let v: Value = serde_json::from_str(s).unwrap();
        let mut copy = v.clone();
        close_objects(&mut copy);
        assert_eq!(
            serde_json::to_string(&Closed(&v)).unwrap(),
            copy.to_string(),
            "{s}"
        );
    }
}
