//! napi's build setup, and the declarations the Rust core shares with the
//! JavaScript layer, turned into Rust: each is declared once, in a JSON file
//! under lib/ that JavaScript requires as it is (off Linux too, where there
//! is no addon to ask).
//!
//! - lib/heap-band.json: the heap band (the diagnoses here, the doctor there).
//! - lib/diagnoses.json: the files the diagnoses name, the heap-limit
//!   wording and `NO_MEMORY_CGROUP` (src/diagnose.rs; lib/doctor.js,
//!   lib/portable.js).

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

fn read_json(file: &str) -> Value {
    println!("cargo:rerun-if-changed={file}");
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("read {file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn string<'a>(file: &str, v: &'a Value, path: &[&str]) -> &'a str {
    let mut at = v;
    for key in path {
        at = &at[*key];
    }
    at.as_str()
        .unwrap_or_else(|| panic!("{file}: {} must be a string", path.join(".")))
}

fn write(name: &str, text: String) {
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join(name);
    std::fs::write(&out, text).unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
}

fn heap_band() {
    const FILE: &str = "lib/heap-band.json";
    let json = read_json(FILE);
    let number = |key: &str| {
        let v = json[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{FILE}: \"{key}\" is not a number"));
        assert!(v > 0.0 && v < 1.0, "{FILE}: \"{key}\" must be in (0, 1)");
        v
    };
    let (low, target, high) = (number("low"), number("target"), number("high"));
    assert!(low < target && target < high, "{FILE}: low < target < high");
    write(
        "heap_band.rs",
        format!(
            "/// The lower edge of the band (share of the limit).\npub const HEAP_BAND_LOW: f64 = {low:?};\n\
             /// Where the advice aims (share of the limit).\npub const HEAP_TARGET: f64 = {target:?};\n\
             /// The upper edge of the band (share of the limit).\npub const HEAP_BAND_HIGH: f64 = {high:?};\n"
        ),
    );
}

fn severity(file: &str, s: &str) -> &'static str {
    match s {
        "info" => "Severity::Info",
        "warning" => "Severity::Warning",
        "error" => "Severity::Error",
        _ => panic!("{file}: severity {s:?} is not info, warning or error"),
    }
}

fn diagnoses() {
    const FILE: &str = "lib/diagnoses.json";
    let json = read_json(FILE);
    let mut text = String::from("// Generated from lib/diagnoses.json by build.rs.\n");
    for version in ["1", "2"] {
        let files = json["files"][version]
            .as_object()
            .unwrap_or_else(|| panic!("{FILE}: files.{version} must be an object"));
        let keys: Vec<&str> = files.keys().map(String::as_str).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            ["failures", "high", "limit", "oomKill"],
            "{FILE}: files.{version} names limit, high, oomKill and failures"
        );
        let f = |k: &str| string(FILE, &json, &["files", version, k]);
        writeln!(
            text,
            "const V{version}_FILES: NamedFiles = NamedFiles {{ limit: {:?}, high: {:?}, oom_kill: {:?}, failures: {:?} }};",
            f("limit"),
            f("high"),
            f("oomKill"),
            f("failures")
        )
        .unwrap();
    }
    for (konst, key) in [("HEAP_ABOVE", "above"), ("HEAP_NEAR", "near")] {
        let f = |k: &str| string(FILE, &json, &["heapLimit", key, k]);
        writeln!(
            text,
            "const {konst}: HeapWording = HeapWording {{ code: {:?}, severity: {}, relation: {:?}, consequence: {:?} }};",
            f("code"),
            severity(FILE, f("severity")),
            f("relation"),
            f("consequence")
        )
        .unwrap();
    }
    let f = |k: &str| string(FILE, &json, &["noMemoryCgroup", k]);
    writeln!(
        text,
        "const NO_MEMORY: Wording = Wording {{ code: {:?}, severity: {}, message: {:?} }};",
        f("code"),
        severity(FILE, f("severity")),
        f("message")
    )
    .unwrap();
    write("diagnoses.rs", text);
}

fn main() {
    napi_build::setup();
    heap_band();
    diagnoses();
}
