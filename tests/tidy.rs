//! The house rules, read from the sources of every crate of the workspace
//! (the libraries, the gateway, the test fakes, xtask, the examples):
//!
//! * no two files of a crate depend on each other, directly or around a
//!   loop (every `crate::` and `super::` path in a file is an edge from its
//!   module to the module it names; a module's own submodules are below it);
//! * no source file is over 600 lines, and a binary's `main.rs` is under 100;
//! * the gateway's layers call one way (http → routing → backend → observe
//!   → keys → config, error, ids).

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

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
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
