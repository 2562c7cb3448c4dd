//! The gateway's layers, read from its sources: every `crate::` path in a
//! file is an edge from its module to the module it names. The layers call
//! one way (http → routing → backend → observe → keys → config, error, ids), and
//! no two files of the crate depend on each other, directly or around a
//! loop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module's layer: a module may name only lower layers (and
/// itself).
const LAYERS: &[(&str, u8)] = &[
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

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
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
/// `["http", "sse"]`.
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    parts
}

/// Test modules (`tests.rs`, `#[cfg(test)] mod tests`) may reach anywhere.
fn code_only(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// Every `crate::a::b…` path in `text`, resolved to the longest module
/// that exists; `super::` resolved from `module`.
fn edges(text: &str, module: &[String], modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut push = |path: Vec<String>| {
        let mut p = path;
        while !p.is_empty() && !modules.contains(&p) {
            p.pop();
        }
        if !p.is_empty() && p != module {
            out.insert(p);
        }
    };
    for (i, _) in text.match_indices("crate::") {
        if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
            continue; // `$crate::`, `foo_crate::`
        }
        let rest = &text[i + 7..];
        let path: Vec<String> = rest
            .split("::")
            .map(|s| {
                s.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|s| !s.is_empty())
            .collect();
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
        let mut base = module.to_vec();
        base.pop();
        let rest = &text[i + 7..];
        let mut path = base;
        path.extend(
            rest.split("::")
                .map(|s| {
                    s.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|s| !s.is_empty()),
        );
        push(path);
    }
    out
}

fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut all = Vec::new();
    files(&src(), &mut all);
    let modules: BTreeSet<Vec<String>> = all.iter().map(|f| module_of(f)).collect();
    all.iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let m = module_of(f);
            let e = if f.ends_with("tests.rs") {
                BTreeSet::new()
            } else {
                edges(code_only(&text), &m, &modules)
            };
            (m, e)
        })
        .collect()
}

fn layer(m: &[String]) -> u8 {
    let top = m.first().map(String::as_str).unwrap_or("lib");
    LAYERS
        .iter()
        .find(|(n, _)| *n == top)
        .map(|(_, l)| *l)
        .unwrap_or_else(|| panic!("module {top} has no layer: add it to LAYERS"))
}

#[test]
fn layers_call_one_way() {
    let g = graph();
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
fn no_module_depends_on_itself_around_a_loop() {
    let g = graph();
    // Depth-first search with colours; a grey node reached again is a loop.
    fn visit(
        n: &Vec<String>,
        g: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
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
    let mut loops = Vec::new();
    for n in g.keys() {
        if !colour.contains_key(n) {
            visit(n, &g, &mut colour, &mut Vec::new(), &mut loops);
        }
    }
    assert!(loops.is_empty(), "module loops:\n{}", loops.join("\n"));
}

#[test]
fn files_stay_small_and_main_thin() {
    let mut all = Vec::new();
    files(&src(), &mut all);
    let mut big = Vec::new();
    for f in &all {
        let n = std::fs::read_to_string(f).unwrap().lines().count();
        let limit = if f.ends_with("main.rs") { 100 } else { 600 };
        if n > limit {
            big.push(format!("{}: {n} lines (limit {limit})", f.display()));
        }
    }
    assert!(big.is_empty(), "{}", big.join("\n"));
}

#[test]
fn the_reader_sees_edges() {
    // The check above is only as good as the parser: a known edge.
    let g = graph();
    let http = g.get(&vec!["http".to_owned()]).unwrap();
    assert!(
        http.iter()
            .any(|m| m.first().is_some_and(|t| t == "routing")),
        "{http:?}"
    );
}
