//! The fixture trees of `__test__/fixtures` read through the Rust core alone:
//! `locate()` and `Reader::snapshot()` against each tree's `expected.json`,
//! so a parser or locator change is caught by `cargo test` without Node.
//! The JavaScript suite checks the same trees through the loaded addon.

use std::fs;
use std::path::{Path, PathBuf};

use oomguard::locate::{locate, Located};
use oomguard::reader::{PressureScope, Reader, Snapshot};
use serde_json::{json, Map, Value};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("__test__/fixtures")
}

fn trees() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    out.sort();
    out
}

fn expected(tree: &Path) -> Map<String, Value> {
    let text = fs::read_to_string(tree.join("expected.json")).unwrap();
    match serde_json::from_str(&text).unwrap() {
        Value::Object(m) => m,
        other => panic!(
            "{}: expected.json is not an object: {other}",
            tree.display()
        ),
    }
}

/// The snapshot in the vocabulary of `expected.json` (see the fixtures' README).
fn summary(tree: &Path, s: &Snapshot) -> Map<String, Value> {
    let loc = s.location.as_ref();
    let stat = s.stat.as_ref();
    let rel = |p: &Path| p.strip_prefix(tree).unwrap().display().to_string();
    let v = json!({
        "version": loc.map(|l| l.version.number()),
        "source": s.limit().map(|(_, src)| src.as_str()),
        "dir": loc.map(|l| rel(&l.dir)),
        "resolved": loc.is_some_and(|l| l.resolved),
        "limitBytes": s.limit().map(|(l, _)| l),
        "highBytes": s.cgroup_high,
        "usageBytes": s.usage,
        "workingSetBytes": s.working_set,
        "peakBytes": s.peak,
        "swapBytes": s.swap,
        "swapLimitBytes": s.swap_limit,
        "anon": stat.and_then(|st| st.anon),
        "file": stat.and_then(|st| st.file),
        "shmem": stat.and_then(|st| st.shmem),
        "kernel": stat.and_then(|st| st.kernel),
        "sock": stat.and_then(|st| st.sock),
        "oomKill": s.events.as_ref().and_then(|e| e.oom_kill),
        "memTotalBytes": s.mem_total,
        "memAvailableBytes": s.mem_available,
        "rssBytes": s.rss,
        "anonBytes": s.anon,
        "pressureScope": s.pressure.as_ref().map(|(_, scope)| match scope {
            PressureScope::Cgroup => "cgroup",
            PressureScope::System => "system",
        }),
        "processCount": s.processes.as_ref().map(|p| p.count),
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

#[test]
fn the_fixture_trees_are_all_here() {
    assert!(trees().len() >= 14, "found {} trees", trees().len());
}

#[test]
fn snapshots_match_expected_json() {
    let mut failures = Vec::new();
    for tree in trees() {
        let name = tree.file_name().unwrap().to_string_lossy().to_string();
        let want = expected(&tree);
        let got = summary(&tree, &Reader::new(&tree).snapshot());
        for (key, value) in &want {
            match got.get(key) {
                None => failures.push(format!(
                    "{name}: expected.json has {key:?}, which tests/fixtures.rs does not check: add it to summary()"
                )),
                Some(g) if g != value => {
                    failures.push(format!("{name}: {key}: got {g}, expected {value}"))
                }
                Some(_) => {}
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn locate_matches_expected_json() {
    for tree in trees() {
        let name = tree.file_name().unwrap().to_string_lossy().to_string();
        let want = expected(&tree);
        let found = locate(&tree).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (version, dir, resolved) = match &found {
            Located::Found(loc) => (
                json!(loc.version.number()),
                json!(loc.dir.strip_prefix(&tree).unwrap().display().to_string()),
                json!(loc.resolved),
            ),
            Located::NoMemoryController => (Value::Null, Value::Null, json!(false)),
        };
        assert_eq!(version, want["version"], "{name}: version");
        assert_eq!(dir, want["dir"], "{name}: dir");
        assert_eq!(resolved, want["resolved"], "{name}: resolved");
    }
}

#[test]
fn a_second_snapshot_reads_the_same() {
    // The kept descriptors are re-read with pread at offset 0.
    for tree in trees() {
        let mut r = Reader::new(&tree);
        let first = summary(&tree, &r.snapshot());
        let second = summary(&tree, &r.snapshot());
        assert_eq!(first, second, "{}", tree.display());
    }
}

#[test]
fn swap_is_usable_only_where_the_host_has_swap_space() {
    let snap = |name: &str| Reader::new(fixtures().join(name)).snapshot();
    let mib = 1u64 << 20;
    // (tree, host SwapTotal, usable swap limit, the v1 memory+swap limit)
    let cases: &[(&str, u64, Option<u64>, Option<u64>)] = &[
        // Docker's default on a host without swap: memsw twice the limit,
        // and still nothing can swap.
        ("v1-no-host-swap", 0, Some(0), Some(512 * mib)),
        ("v1-swap", 2097148 * 1024, Some(128 * mib), Some(384 * mib)),
        ("v1-hybrid-busy", 0, Some(0), None),
        ("v2-swap", 2097148 * 1024, Some(128 * mib), None),
        ("v2-swap-off", 2097148 * 1024, Some(0), None),
        ("v2-busy", 0, Some(0), None),
    ];
    for &(name, total, limit, memsw) in cases {
        let s = snap(name);
        assert_eq!(s.swap_total, Some(total), "{name}: SwapTotal");
        assert_eq!(s.swap_limit, limit, "{name}: swap limit");
        if let Some(memsw) = memsw {
            assert_eq!(
                s.stat.as_ref().and_then(|st| st.hierarchical_memsw_limit),
                Some(memsw),
                "{name}: the memory+swap limit itself is kept"
            );
        }
    }
    assert_eq!(
        snap("v1-no-swap-accounting").swap_limit,
        None,
        "not accounted: unknown, not 0"
    );
    assert_eq!(
        snap("v2-root").swap_limit,
        None,
        "no cgroup swap files: unknown"
    );

    // The v1 memory+swap stall rule reads the memsw counter and its limit,
    // not the usable swap: the same with or without swap space.
    let reading =
        |name: &str| oomguard::watch::stall::Observation::from_snapshot(&snap(name), 0.0).memsw;
    let usage = 200466432.0;
    assert_eq!(
        reading("v1-no-host-swap"),
        Some((usage, (512 * mib) as f64))
    );
    assert_eq!(
        reading("v1-swap"),
        Some((usage + (50 * mib) as f64, (384 * mib) as f64))
    );
}
