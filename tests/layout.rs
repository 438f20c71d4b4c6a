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
