#![no_main]
//! `unescape_mountinfo` never panics, whatever the bytes (see the README's Development section).

use libfuzzer_sys::fuzz_target;
use oomguard::parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parse::unescape_mountinfo(s);
    }
});
