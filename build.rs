//! napi's build setup, and the heap band (lib/heap-band.json) as Rust
//! constants: the band is declared once, in that file, and read by the
//! diagnoses here and by the doctor in JavaScript.

use std::path::Path;

fn number(json: &str, key: &str) -> f64 {
    let pat = format!("\"{key}\"");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("lib/heap-band.json: no \"{key}\""));
    let rest = json[at + pat.len()..].trim_start();
    let rest = rest
        .strip_prefix(':')
        .unwrap_or_else(|| panic!("lib/heap-band.json: no ':' after \"{key}\""))
        .trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let v: f64 = rest[..end]
        .parse()
        .unwrap_or_else(|_| panic!("lib/heap-band.json: \"{key}\" is not a number"));
    assert!(
        v > 0.0 && v < 1.0,
        "lib/heap-band.json: \"{key}\" must be in (0, 1)"
    );
    v
}

fn main() {
    napi_build::setup();
    println!("cargo:rerun-if-changed=lib/heap-band.json");
    let json = std::fs::read_to_string("lib/heap-band.json").expect("read lib/heap-band.json");
    let (low, target, high) = (
        number(&json, "low"),
        number(&json, "target"),
        number(&json, "high"),
    );
    assert!(
        low < target && target < high,
        "lib/heap-band.json: low < target < high"
    );
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("heap_band.rs");
    std::fs::write(
        out,
        format!(
            "/// The lower edge of the band (share of the limit).\npub const HEAP_BAND_LOW: f64 = {low:?};\n\
             /// Where the advice aims (share of the limit).\npub const HEAP_TARGET: f64 = {target:?};\n\
             /// The upper edge of the band (share of the limit).\npub const HEAP_BAND_HIGH: f64 = {high:?};\n"
        ),
    )
    .expect("write heap_band.rs");
}
