//! The house rules, read from the sources of every crate of the workspace
//! (the libraries, the gateway, the test fakes, xtask, the examples):
//!
//! * no two files of a crate depend on each other, directly or around a
//!   loop (every `crate::` and `super::` path in a file is an edge from its
//!   module to the module it names; a module's own submodules are below it);
//! * no source file is over 600 lines, and a binary's `main.rs` is under 100;
//! * the gateway's layers call one way (http → routing → backend → observe
//!   → keys → config, error, ids);
//! * the gateway binary links one crypto library for TLS (ring).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level gateway module's layer: a module may name only lower
/// layers (and itself).
const GATEWAY_LAYERS: &[(&str, u8)] = &[
    ("main", 10),
    ("lib", 9),
    ("server", 9),
    ("report", 8),
    ("http", 7),
    ("routing", 6),
    ("backend", 5),
    ("observe", 4),
    ("keys", 3),
    ("config", 2),
    ("error", 1),
    ("ids", 1),
];

/// The longest a source file may be.
const MAX_LINES: usize = 600;
/// The longest a binary's `main.rs` may be.
const MAX_MAIN_LINES: usize = 100;

/// The checkout under test: cargo names it at run time; the path compiled
/// in is another checkout's when two share a target directory.
fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// Every crate's source root: `crates/*/src`, `xtask/src`, the facade's
/// `src`.
fn source_roots() -> Vec<PathBuf> {
    let mut out = vec![root().join("src"), root().join("xtask/src")];
    for e in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        let src = e.path().join("src");
        if src.is_dir() {
            out.push(src);
        }
    }
    out.sort();
    assert!(out.len() >= 8, "{out:?}");
    out
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A file's module path: `http/mod.rs` -> `["http"]`, `http/sse.rs` ->
/// `["http", "sse"]`, `lib.rs` and `main.rs` -> `[]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|l| l == "mod" || (parts.len() == 1 && (l == "lib" || l == "main")))
    {
        parts.pop();
    }
    parts
}

/// Test modules (`*tests.rs`, `#[cfg(test)] mod tests`) may reach anywhere.
fn code_only(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// A path's segments after a `crate::` or `super::` at `rest`.
fn segments(rest: &str) -> Vec<String> {
    rest.split("::")
        .map(|s| {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .take_while(|s| !s.is_empty())
        .collect()
}

/// Every `crate::a::b…` path in `text`, resolved to the longest module
/// that exists; `super::` resolved from `module`. A module's ancestors are
/// not edges (a child may use its parent's items).
fn edges(text: &str, module: &[String], modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut push = |path: Vec<String>| {
        let mut p = path;
        while !p.is_empty() && !modules.contains(&p) {
            p.pop();
        }
        if !p.is_empty() && p != module && !module.starts_with(&p) {
            out.insert(p);
        }
    };
    for (i, _) in text.match_indices("crate::") {
        if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
            continue; // `$crate::`, `foo_crate::`
        }
        let rest = &text[i + 7..];
        let path = segments(rest);
        // `crate::{a, b::c}`: each entry.
        if path.is_empty() && rest.starts_with('{') {
            let inner = &rest[1..rest.find('}').unwrap_or(rest.len())];
            for item in inner.split(',') {
                push(
                    item.trim()
                        .split("::")
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect(),
                );
            }
        } else {
            push(path);
        }
    }
    for (i, _) in text.match_indices("super::") {
        if i > 0 && bytes[i - 1] == b':' {
            continue;
        }
        let mut path = module.to_vec();
        path.pop();
        path.extend(segments(&text[i + 7..]));
        push(path);
    }
    out
}

type Graph = BTreeMap<Vec<String>, BTreeSet<Vec<String>>>;

/// One crate's module graph.
fn graph(src: &Path) -> Graph {
    let mut all = Vec::new();
    files(src, &mut all);
    let modules: BTreeSet<Vec<String>> = all.iter().map(|f| module_of(src, f)).collect();
    all.iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let m = module_of(src, f);
            let name = f.file_name().unwrap().to_string_lossy();
            let e = if name.ends_with("tests.rs") {
                BTreeSet::new()
            } else {
                edges(code_only(&text), &m, &modules)
            };
            (m, e)
        })
        .collect()
}

fn loops(g: &Graph) -> Vec<String> {
    // Depth-first search with colours; a grey node reached again is a loop.
    fn visit(
        n: &Vec<String>,
        g: &Graph,
        colour: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
        loops: &mut Vec<String>,
    ) {
        colour.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in g.get(n).into_iter().flatten() {
            match colour.get(m).copied().unwrap_or(0) {
                0 => visit(m, g, colour, stack, loops),
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap_or(0);
                    let cycle: Vec<String> = stack[at..].iter().map(|s| s.join("::")).collect();
                    loops.push(format!("{} -> {}", cycle.join(" -> "), m.join("::")));
                }
                _ => {}
            }
        }
        stack.pop();
        colour.insert(n.clone(), 2);
    }
    let mut colour = BTreeMap::new();
    let mut out = Vec::new();
    for n in g.keys() {
        if !colour.contains_key(n) {
            visit(n, g, &mut colour, &mut Vec::new(), &mut out);
        }
    }
    out
}

#[test]
fn no_file_depends_on_itself_around_a_loop_in_any_crate() {
    let mut all = Vec::new();
    for src in source_roots() {
        for l in loops(&graph(&src)) {
            all.push(format!("{}: {l}", src.display()));
        }
    }
    assert!(all.is_empty(), "module loops:\n{}", all.join("\n"));
}

#[test]
fn files_stay_small_and_mains_thin_in_every_crate() {
    let mut all = Vec::new();
    for dir in source_roots()
        .into_iter()
        .chain([root().join("examples"), root().join("benches")])
    {
        files(&dir, &mut all);
    }
    let mut big = Vec::new();
    for f in &all {
        let n = std::fs::read_to_string(f).unwrap().lines().count();
        let limit = if f.ends_with("main.rs") {
            MAX_MAIN_LINES
        } else {
            MAX_LINES
        };
        if n > limit {
            big.push(format!("{}: {n} lines (limit {limit})", f.display()));
        }
    }
    assert!(big.is_empty(), "{}", big.join("\n"));
}

fn layer(m: &[String]) -> u8 {
    let top = m.first().map(String::as_str).unwrap_or("lib");
    GATEWAY_LAYERS
        .iter()
        .find(|(n, _)| *n == top)
        .map(|(_, l)| *l)
        .unwrap_or_else(|| panic!("gateway module {top} has no layer: add it to GATEWAY_LAYERS"))
}

#[test]
fn the_gateway_s_layers_call_one_way() {
    let g = graph(&root().join("crates/gateway/src"));
    let mut wrong = Vec::new();
    for (from, tos) in &g {
        for to in tos {
            let same_top = from.first() == to.first();
            if !same_top && layer(from) <= layer(to) {
                wrong.push(format!("{} -> {}", from.join("::"), to.join("::")));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "edges against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_reader_sees_edges_and_loops() {
    // The checks above are only as good as the parser: a known edge, and a
    // loop made up here.
    let g = graph(&root().join("crates/gateway/src"));
    let http = g.get(&vec!["http".to_owned()]).unwrap();
    assert!(
        http.iter()
            .any(|m| m.first().is_some_and(|t| t == "routing")),
        "{http:?}"
    );
    let m = |s: &str| vec![s.to_owned()];
    let made_up: Graph = [
        (m("a"), [m("b")].into()),
        (m("b"), [m("c")].into()),
        (m("c"), [m("a")].into()),
    ]
    .into();
    assert_eq!(loops(&made_up), ["a -> b -> c -> a"]);
}

/// The external types each library may show in its public API (crate
/// paths, as prefixes): smithy's `external-types.toml`, as a table. A type
/// of another crate in a public signature ties the library's users to that
/// crate's version; each entry here is a decision.
const EXTERNAL_TYPES: &[(&str, &[&str])] = &[
    (
        "openai-types",
        &[
            "serde_json::Value",
            "serde_json::Map",
            "serde",
            "bytes::BytesMut",
            "bytes::Bytes",
        ],
    ),
    (
        "event-frames",
        // The decoded message is smithy's: what the AWS SDKs hand out too.
        &["aws_smithy_types::event_stream::Message", "bytes::Bytes"],
    ),
    (
        "sm-stream",
        &[
            "openai_types",
            "event_frames",
            "bytes::Bytes",
            "bytes::BytesMut",
            "aws_smithy_types::event_stream::Message",
        ],
    ),
    (
        "bedrock-converse",
        &[
            "openai_types",
            "event_frames",
            "bytes::Bytes",
            "bytes::BytesMut",
            "serde_json::Value",
            "serde_json::Map",
            "serde",
            // Feature `aws-sdk` only: the SDK's types are the point.
            "aws_sdk_bedrockruntime",
            "aws_smithy_types::Document",
        ],
    ),
    (
        "anthropic-messages",
        &[
            "openai_types",
            "serde_json::Value",
            "serde_json::Map",
            "serde",
            "bytes::BytesMut",
        ],
    ),
    (
        "keyauth",
        // Feature `secretsmanager`: the SDK client the caller configured.
        &["aws_sdk_secretsmanager::Client"],
    ),
];

/// The crates a library depends on, by the name code uses.
fn dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut out = Vec::new();
    let mut on = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            on = t == "[dependencies]" || t.starts_with("[dependencies.");
            if let Some(name) = t.strip_prefix("[dependencies.") {
                out.push(name.trim_end_matches(']').replace('-', "_"));
            }
            continue;
        }
        if on && let Some((name, _)) = t.split_once(['=', '.']) {
            let name = name.trim();
            if !name.is_empty() && !name.starts_with('#') {
                out.push(name.replace('-', "_"));
            }
        }
    }
    out
}

/// The names a file imports from `deps`: name → full path.
fn imports(text: &str, deps: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stmt in text.split(';') {
        let Some(i) = stmt.find("use ") else { continue };
        let before = &stmt[..i];
        if !(before.trim().is_empty()
            || before.trim_end().ends_with("pub")
            || before.ends_with('\n'))
        {
            continue;
        }
        let body: String = stmt[i + 4..]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let Some(root) = body.split("::").next() else {
            continue;
        };
        if !deps.iter().any(|d| d == root) {
            continue;
        }
        // `a::b::{C, d::E as F}` → C, F (E).
        let (prefix, leaves) = match body.find('{') {
            Some(b) => (
                body[..b].to_owned(),
                body[b + 1..].trim_end_matches('}').to_owned(),
            ),
            None => {
                let (p, l) = body.rsplit_once("::").unwrap_or(("", &body));
                (format!("{p}::"), l.to_owned())
            }
        };
        for leaf in leaves.split(',') {
            let leaf = leaf.trim().trim_matches(|c| c == '{' || c == '}');
            if leaf.is_empty() || leaf == "self" || leaf.ends_with('*') {
                continue;
            }
            let (path, name) = match leaf.split_once(" as ") {
                Some((p, n)) => (p.trim(), n.trim()),
                None => (leaf, leaf.rsplit("::").next().unwrap_or(leaf)),
            };
            out.insert(name.to_owned(), format!("{prefix}{path}"));
        }
    }
    out
}

/// The public signatures of a file: `pub` items (not `pub(crate)`), their
/// whole header up to `{` or `;`, and `pub` fields.
fn public_signatures(text: &str) -> Vec<String> {
    let code = code_only(text);
    let mut out = Vec::new();
    let mut lines = code.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if !t.starts_with("pub ") || t.starts_with("pub mod") || t.starts_with("pub use") {
            continue;
        }
        let mut sig = t.to_owned();
        let mut depth: i32 = t.matches('(').count() as i32 - t.matches(')').count() as i32;
        while !(depth <= 0
            && (sig.contains('{')
                || sig.trim_end().ends_with(';')
                || sig.trim_end().ends_with(',')))
        {
            let Some(next) = lines.next() else { break };
            depth += next.matches('(').count() as i32 - next.matches(')').count() as i32;
            sig.push(' ');
            sig.push_str(next.trim());
        }
        // The header only: not a body, not a default value.
        let end = sig
            .find(" {")
            .or_else(|| sig.find(" = "))
            .unwrap_or(sig.len());
        out.push(sig[..end].to_owned());
    }
    out
}

#[test]
fn libraries_expose_only_their_listed_external_types() {
    let mut wrong = Vec::new();
    for (name, allowed) in EXTERNAL_TYPES {
        let dir = root().join("crates").join(name);
        let deps = dependencies(&dir.join("Cargo.toml"));
        let mut all = Vec::new();
        files(&dir.join("src"), &mut all);
        for f in all.iter().filter(|f| !f.ends_with("fuzzing.rs")) {
            let text = std::fs::read_to_string(f).unwrap();
            let names = imports(&text, &deps);
            for sig in public_signatures(&text) {
                let mut seen = Vec::new();
                for word in
                    sig.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                {
                    let word = word.trim_matches(':');
                    let root_name = word.split("::").next().unwrap_or("");
                    if let Some(full) = names.get(root_name) {
                        let rest = word.strip_prefix(root_name).unwrap_or("");
                        seen.push(format!("{full}{rest}"));
                    } else if deps.iter().any(|d| d == root_name) && word.contains("::") {
                        seen.push(word.to_owned());
                    }
                }
                for path in seen {
                    if !allowed.iter().any(|a| path.starts_with(a)) {
                        wrong.push(format!("{name}: {path} in `{sig}` ({})", f.display()));
                    }
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "external types in public signatures, not in EXTERNAL_TYPES:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_external_types_reader_sees_an_imported_type() {
    let deps = vec!["bytes".to_owned(), "serde_json".to_owned()];
    let text = "use bytes::{Bytes, BytesMut as Buf};\nuse serde_json::Value;\n\npub fn f(\n    a: Buf,\n) -> Value {\n    todo()\n}\n";
    let names = imports(text, &deps);
    assert_eq!(names["Buf"], "bytes::BytesMut");
    assert_eq!(names["Value"], "serde_json::Value");
    assert_eq!(public_signatures(text), ["pub fn f( a: Buf, ) -> Value"]);
}

/// The gateway binary links one crypto library for TLS: ring, which its
/// upstream client and the AWS SDK's client (`backend::aws::https_client`)
/// both use. aws-lc, the SDK's default, comes back when any dependency turns
/// the SDK's `default-https-client` feature on again outside tests (2.5 MB
/// of the binary, and its C build).
#[test]
fn the_gateway_links_one_tls_crypto_library() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(root())
        .args(["tree", "-p", "gateway", "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "--locked", "--offline"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.lines().any(|l| l.starts_with("ring ")), "{tree}");
    let lc: BTreeSet<&str> = tree.lines().filter(|l| l.starts_with("aws-lc")).collect();
    assert!(lc.is_empty(), "the gateway links {lc:?} beside ring");
}
