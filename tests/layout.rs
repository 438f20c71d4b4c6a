//! The core stays free of N-API: every source file outside `src/napi/`
//! (the bridge) is plain Rust. A core module that reached for `napi` would
//! tie the parsers, the reader and the sampler to Node and put them out of
//! reach of plain `cargo test`.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_core_module_uses_napi() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bridge = src.join("napi");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let core: Vec<_> = files.iter().filter(|p| !p.starts_with(&bridge)).collect();
    assert!(
        core.iter().any(|p| p.ends_with("reader.rs"))
            && core.iter().any(|p| p.ends_with("watch/mod.rs")),
        "the walk found the core: {core:?}"
    );
    let lib = src.join("lib.rs");
    for path in core {
        let text = std::fs::read_to_string(path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let uses = code.contains("napi::")
                || code.contains("napi_derive")
                || code.contains("#[napi")
                || (code.contains("mod napi") && *path != lib);
            assert!(
                !uses,
                "{}:{}: the core uses N-API ({line:?}); that belongs in src/napi/",
                path.display(),
                n + 1
            );
        }
    }
}

/// The core's layers, from the kernel up, named once: a module may take
/// from its own layer and those before it, never from a later one, and no
/// two modules take from each other, however indirectly. `watch::x` is a
/// part of the sampler under `src/watch/` that has a layer of its own; the
/// rest of `src/watch/` is `watch`. The README's data-flow diagram is drawn
/// from this table (see [`diagram`]).
const LAYERS: &[(&str, &[&str])] = &[
    (
        "primitives",
        &[
            "guard",
            "error",
            "file",
            "json",
            "options",
            "parse",
            "watch::pin",
            "watch::trace",
        ],
    ),
    (
        "kernel facts",
        &["locate", "stat", "named", "procs", "watch::alloc"],
    ),
    ("the reader", &["reader"]),
    ("diagnoses", &["diagnose"]),
    (
        "the sampler's parts",
        &[
            "watch::trigger",
            "watch::owner",
            "watch::stall",
            "watch::lastwords",
        ],
    ),
    ("the sampler", &["watch"]),
    ("the bridge", &["napi"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

/// The table's module for a path of segments (`watch::stall::Figures` ->
/// `watch::stall`, `reader::Snapshot` -> `reader`).
fn module_of(segments: &[&str]) -> Option<String> {
    if segments.len() >= 2 {
        let two = format!("{}::{}", segments[0], segments[1]);
        if layer_of(&two).is_some() {
            return Some(two);
        }
    }
    segments
        .first()
        .filter(|s| layer_of(s).is_some())
        .map(|s| s.to_string())
}

/// Every `crate::` path in `code`, groups (`crate::{a, b::{c, d}}`)
/// expanded, as segment lists.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    fn tree(s: &[u8], mut i: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
        let mut path = prefix.clone();
        let mut word = String::new();
        while i < s.len() {
            let c = s[i] as char;
            if c.is_alphanumeric() || c == '_' {
                word.push(c);
                i += 1;
            } else if s[i..].starts_with(b"::") {
                if !word.is_empty() {
                    path.push(std::mem::take(&mut word));
                }
                i += 2;
                if s.get(i) == Some(&b'{') {
                    i += 1;
                    loop {
                        i = tree(s, i, path.clone(), out);
                        while i < s.len() && (s[i] as char).is_whitespace() {
                            i += 1;
                        }
                        match s.get(i) {
                            Some(b',') => i += 1,
                            Some(b'}') => return i + 1,
                            _ => return i,
                        }
                        while i < s.len() && (s[i] as char).is_whitespace() {
                            i += 1;
                        }
                        if s.get(i) == Some(&b'}') {
                            return i + 1;
                        }
                    }
                }
            } else if c.is_whitespace() && word.is_empty() && path.len() == prefix.len() {
                i += 1;
            } else {
                break;
            }
        }
        if !word.is_empty() && word != "self" {
            path.push(word);
        }
        out.push(path);
        i
    }
    let mut out = Vec::new();
    let s = code.as_bytes();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::") {
        let start = from + at;
        let ident_before = start > 0 && {
            let b = s[start - 1] as char;
            b.is_alphanumeric() || b == '_'
        };
        from = start + "crate::".len();
        if !ident_before {
            // From the `::`, so that `crate::{...}` is a group like any other.
            from = tree(s, start + "crate".len(), Vec::new(), &mut out).max(from);
        }
    }
    out
}

/// Each core file's module and the modules it takes from (itself left out).
fn imports() -> Vec<(PathBuf, String, Vec<String>)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let rel = path.strip_prefix(&src).unwrap().with_extension("");
        let segs: Vec<&str> = rel.iter().map(|s| s.to_str().unwrap()).collect();
        if segs == ["lib"] {
            continue;
        }
        let me = module_of(&segs).unwrap_or_else(|| {
            panic!(
                "{}: its module is in no layer of LAYERS (tests/layout.rs)",
                path.display()
            )
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let code: String = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let mut uses = Vec::new();
        for p in crate_paths(&code) {
            let segs: Vec<&str> = p.iter().map(String::as_str).collect();
            let Some(m) = module_of(&segs) else {
                panic!(
                    "{}: crate::{} is in no layer of LAYERS (tests/layout.rs)",
                    path.display(),
                    p.join("::")
                );
            };
            if m != me && !uses.contains(&m) {
                uses.push(m);
            }
        }
        out.push((path, me, uses));
    }
    out
}

#[test]
fn the_parser_finds_grouped_and_nested_paths() {
    let found = crate_paths(
        "use crate::{guard, watch::{self, alloc}};\nlet x = crate::reader::page_size();\nmy_crate::nope;",
    );
    let found: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        found,
        ["guard", "watch", "watch::alloc", "reader::page_size"]
    );
}

#[test]
fn no_layer_takes_from_a_later_one() {
    let all = imports();
    assert!(all.len() > 20, "the walk found the core: {}", all.len());
    let mut wrong = Vec::new();
    for (path, me, uses) in &all {
        let mine = layer_of(me).unwrap();
        for m in uses {
            let theirs = layer_of(m).unwrap();
            if theirs > mine {
                wrong.push(format!(
                    "{}: {me} ({}) takes from {m} ({}), a later layer",
                    path.display(),
                    LAYERS[mine].0,
                    LAYERS[theirs].0
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_import_circles() {
    use std::collections::{BTreeMap, BTreeSet};
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, me, uses) in imports() {
        edges.entry(me).or_default().extend(uses);
    }
    // Depth-first, reporting the first circle found.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|s| s == m) {
            let mut circle = stack[at..].to_vec();
            circle.push(m.to_string());
            return Some(circle);
        }
        if done.contains(m) {
            return None;
        }
        stack.push(m.to_string());
        for n in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(n, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        if let Some(c) = visit(m, &edges, &mut Vec::new(), &mut done) {
            panic!("an import circle: {}", c.join(" -> "));
        }
    }
}

/// The `src/` box of the README's data-flow diagram, drawn from [`LAYERS`]
/// (the bridge has a box of its own).
fn diagram() -> String {
    let mut lines = vec![
        "src/          the Rust core, no N-API, in layers; each takes only".to_string(),
        "   │          from its own and those above it (tests/layout.rs):".to_string(),
    ];
    for (n, (name, modules)) in LAYERS.iter().enumerate() {
        if *name == "the bridge" {
            continue;
        }
        let mut line = format!("   │          {}. {name}:", n + 1);
        for (i, m) in modules.iter().enumerate() {
            let word = format!(" {m}{}", if i + 1 < modules.len() { "," } else { "" });
            if line.chars().count() + word.chars().count() > 78 {
                lines.push(line);
                line = "   │             ".to_string();
                line.push_str(word.trim_start());
            } else {
                line.push_str(&word);
            }
        }
        lines.push(line);
    }
    lines.join("\n")
}

#[test]
fn the_readme_diagram_is_drawn_from_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let want = diagram();
    let mut docs = vec![root.join("README.md"), root.join("CONTRIBUTING.md")];
    if let Ok(dir) = std::fs::read_dir(root.join("docs")) {
        docs.extend(dir.filter_map(|e| e.ok()).map(|e| e.path()));
    }
    let found = docs.iter().any(|p| {
        let Ok(text) = std::fs::read_to_string(p) else {
            return false;
        };
        // The diagram may be indented (inside a list item).
        let lines: Vec<&str> = text.lines().collect();
        let want: Vec<&str> = want.lines().collect();
        lines.windows(want.len()).any(|w| {
            let indent = w[0].len() - w[0].trim_start().len();
            w.iter()
                .zip(&want)
                .all(|(have, want)| have.get(indent..) == Some(*want))
        })
    });
    assert!(
        found,
        "no page (README.md, CONTRIBUTING.md, docs/) draws the layers as LAYERS \
         in tests/layout.rs has them; the data-flow diagram's src/ box should read:\n{want}"
    );
}
