#![no_main]
//! `parse_pids` never panics, whatever the bytes (see the README's Development section).

use libfuzzer_sys::fuzz_target;
use oomguard::procs;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = procs::parse_pids(s);
    }
});
