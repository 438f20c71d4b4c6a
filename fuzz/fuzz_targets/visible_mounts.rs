#![no_main]
//! Which mounts are seen, from any mountinfo that parses: no panic and no
//! runaway work, whatever the ids, parents and mount points; what comes back
//! is among the wanted mounts, each once, in order (see the README's
//! Development section).

use libfuzzer_sys::fuzz_target;
use oomguard::locate::visible_mounts;
use oomguard::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mounts) = parse::parse_mountinfo(s) else {
        return;
    };
    for fs in ["cgroup", "cgroup2"] {
        let seen = visible_mounts(&mounts, |m| m.fs_type == fs);
        let mut last = None;
        for m in seen {
            assert_eq!(m.fs_type, fs);
            let at = mounts.iter().position(|x| std::ptr::eq(x, m)).unwrap();
            assert!(last.is_none_or(|l| l < at), "in order, each once");
            last = Some(at);
        }
    }
});
