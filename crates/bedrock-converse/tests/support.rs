//! Fixture files: read them, and compare with (or, with `UPDATE_SNAPSHOTS=1`,
//! rewrite) their expected part.

use std::path::{Path, PathBuf};

use serde_json::Value;

pub(crate) fn dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(kind)
}

/// `(name, fixture)` of every `*.json` in `test_data/<kind>`, sorted.
pub(crate) fn fixtures(kind: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let v = serde_json::from_slice(&std::fs::read(&p).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no {kind} fixtures");
    out
}

pub(crate) fn updating() -> bool {
    std::env::var_os("UPDATE_SNAPSHOTS").is_some()
}

/// Compares `actual` with the fixture's `key`, or writes it there when
/// updating.
pub(crate) fn expect_json(kind: &str, name: &str, fixture: &Value, key: &str, actual: Value) {
    if updating() {
        let mut f = fixture.clone();
        f[key] = actual;
        let path = dir(kind).join(format!("{name}.json"));
        std::fs::write(path, serde_json::to_string_pretty(&f).unwrap() + "\n").unwrap();
        return;
    }
    assert_eq!(
        actual,
        fixture[key],
        "{kind}/{name}: `{key}` differs (UPDATE_SNAPSHOTS=1 rewrites it)\nactual: {}",
        serde_json::to_string_pretty(&actual).unwrap()
    );
}
