//! A client's `/v1` path through the pass-through guard, then through the
//! URL parser the gateway uses. Invariant: a path the guard accepts never
//! leaves the upstream's base path or host, whatever the parser resolves.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(tail) = std::str::from_utf8(data) else {
        return;
    };
    // The gateway sees the path without its query.
    let path = format!("/{}", tail.split(['?', '#']).next().unwrap_or(""));
    if openai_types::path::check(&path).is_err() {
        return;
    }
    let Ok(url) = url::Url::parse(&format!("http://up.example/base/v1{path}")) else {
        return;
    };
    assert_eq!(url.host_str(), Some("up.example"), "{path:?} -> {url}");
    let p = url.path();
    assert!(
        p == "/base/v1" || p.starts_with("/base/v1/"),
        "{path:?} -> {url}"
    );
});
