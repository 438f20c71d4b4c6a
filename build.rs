//! napi's build setup, and the declarations the Rust core shares with the
//! JavaScript layer, turned into Rust: each is declared once, in a JSON file
//! under lib/ that JavaScript requires as it is (off Linux too, where there
//! is no addon to ask).
//!
//! - lib/core/heap-band.json: the heap band (the diagnoses here, the doctor there).
//! - lib/core/slots.json: the reading's slot layout (src/napi/slots.rs `Slot`,
//!   `NAMES`; lib/core/reading.js builds the result object from the same list).
//! - lib/core/diagnoses.json: the files the diagnoses name (src/named.rs), the
//!   heap-limit wording and `NO_MEMORY_CGROUP` (src/diagnose.rs;
//!   lib/integrations/doctor.js, lib/core/portable.js).
//! - lib/core/options.json: the bounds and defaults of watch()'s options
//!   (src/options.rs; lib/core/options.js validates from the same declarations).

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
    const FILE: &str = "lib/core/heap-band.json";
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

/// `stat.kernelStack` as `STAT_KERNEL_STACK`; the empty name is `RAW_COUNT`.
fn slot_ident(name: &str) -> String {
    ident("lib/core/slots.json", name)
}

/// A property path (`stall.sustainMs`) as a constant's name (`STALL_SUSTAIN_MS`).
fn ident(file: &str, name: &str) -> String {
    if name.is_empty() {
        return "RAW_COUNT".to_string();
    }
    let mut out = String::new();
    for (i, part) in name.split('.').enumerate() {
        if i > 0 {
            out.push('_');
        }
        let mut prev_lower = false;
        for c in part.chars() {
            assert!(
                c.is_ascii_alphanumeric(),
                "{file}: {name:?} is not a property path"
            );
            if c.is_ascii_uppercase() && prev_lower {
                out.push('_');
            }
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c.to_ascii_uppercase());
        }
    }
    out
}

fn slots() {
    const FILE: &str = "lib/core/slots.json";
    let json = read_json(FILE);
    let names: Vec<&str> = json["slots"]
        .as_array()
        .unwrap_or_else(|| panic!("{FILE}: \"slots\" must be a list"))
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("{FILE}: a slot name is not a string"))
        })
        .collect();
    assert_eq!(
        names.last(),
        Some(&""),
        "{FILE}: the last slot is the raw count, \"\""
    );
    let mut text = String::from(
        "/// The slots, in order (generated from lib/core/slots.json by build.rs).\n\
         #[allow(non_camel_case_types, clippy::upper_case_acronyms)]\n\
         #[derive(Debug, Clone, Copy)]\n\
         #[repr(usize)]\n\
         pub enum Slot {\n",
    );
    for n in &names {
        writeln!(text, "    /// `{n}`\n    {},", slot_ident(n)).unwrap();
    }
    text.push_str(
        "}\n/// JS property path of each slot, in slot order.\npub const NAMES: &[&str] = &[\n",
    );
    for n in &names {
        writeln!(text, "    {n:?},").unwrap();
    }
    text.push_str("];\n");
    write("slots.rs", text);
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
    const FILE: &str = "lib/core/diagnoses.json";
    let json = read_json(FILE);
    let mut text = String::from("// Generated from lib/core/diagnoses.json by build.rs.\n");
    let mut files_text = text.clone();
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
            files_text,
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
    write("named_files.rs", files_text);
}

/// One declaration's numbers as constants: `{id}_MIN`, `_MAX` (inclusive
/// bounds), `_ABOVE`, `_BELOW` (exclusive ones), `_DEFAULT` (f64, or a list
/// of them), `_MIN_LENGTH`, `_MAX_LENGTH` (usize), `_VALUES` and a string
/// `_DEFAULT`.
fn declared_consts(text: &mut String, file: &str, path: &str, v: &Value) {
    let id = ident(file, path);
    let number = |n: &Value| {
        n.as_f64()
            .unwrap_or_else(|| panic!("{file}: {path}: {n} is not a number"))
    };
    for (key, suffix) in [
        ("min", "MIN"),
        ("max", "MAX"),
        ("above", "ABOVE"),
        ("below", "BELOW"),
        ("default", "DEFAULT"),
    ] {
        match &v[key] {
            Value::Null => {}
            Value::Number(_) => {
                let n = number(&v[key]);
                writeln!(
                    text,
                    "/// `{path}.{key}`\npub const {id}_{suffix}: f64 = {n:?};"
                )
                .unwrap()
            }
            Value::String(s) => writeln!(
                text,
                "/// `{path}.{key}`\npub const {id}_{suffix}: &str = {s:?};"
            )
            .unwrap(),
            Value::Array(list) => {
                let list: Vec<String> = list.iter().map(|n| format!("{:?}", number(n))).collect();
                writeln!(
                    text,
                    "/// `{path}.{key}`\npub const {id}_{suffix}: &[f64] = &[{}];",
                    list.join(", ")
                )
                .unwrap()
            }
            Value::Bool(b) => writeln!(
                text,
                "/// `{path}.{key}`\npub const {id}_{suffix}: bool = {b};"
            )
            .unwrap(),
            other => {
                panic!("{file}: {path}.{key}: {other} is not a number, string, boolean or list")
            }
        }
    }
    for (key, suffix) in [("minLength", "MIN_LENGTH"), ("maxLength", "MAX_LENGTH")] {
        if let Some(n) = v[key].as_u64() {
            writeln!(
                text,
                "/// `{path}.{key}`\npub const {id}_{suffix}: usize = {n};"
            )
            .unwrap();
        }
    }
    if let Some(values) = v["values"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|s| {
                format!(
                    "{:?}",
                    s.as_str()
                        .unwrap_or_else(|| panic!("{file}: {path}.values: not strings"))
                )
            })
            .collect();
        writeln!(
            text,
            "/// `{path}.values`\npub const {id}_VALUES: &[&str] = &[{}];",
            values.join(", ")
        )
        .unwrap();
    }
}

fn options() {
    const FILE: &str = "lib/core/options.json";
    let json = read_json(FILE);
    let mut text = String::from("// Generated from lib/core/options.json by build.rs.\n");
    for opt in json["watch"]
        .as_array()
        .unwrap_or_else(|| panic!("{FILE}: \"watch\" must be a list"))
    {
        let name = string(FILE, opt, &["name"]);
        declared_consts(&mut text, FILE, name, opt);
        for field in opt["fields"].as_array().into_iter().flatten() {
            let key = string(FILE, field, &["key"]);
            declared_consts(&mut text, FILE, &format!("{name}.{key}"), field);
        }
    }
    write("options.rs", text);
}

fn main() {
    napi_build::setup();
    heap_band();
    slots();
    diagnoses();
    options();
}
