use super::*;
use crate::locate::{CgroupVersion, Location};

#[test]
fn named_files_are_the_kernels_per_version_and_v2s_without_a_cgroup() {
    let v1 = named_files(Some(CgroupVersion::V1));
    assert_eq!(
        v1.entries(),
        [
            ("limit", "memory.limit_in_bytes"),
            ("high", "memory.soft_limit_in_bytes"),
            ("oomKill", "memory.oom_control"),
            ("failures", "memory.failcnt"),
        ]
    );
    let v2 = named_files(Some(CgroupVersion::V2));
    assert_eq!(
        v2.entries(),
        [
            ("limit", "memory.max"),
            ("high", "memory.high"),
            ("oomKill", "memory.events"),
            ("failures", "memory.events max"),
        ]
    );
    assert_eq!(named_files(None), v2);
}

fn limited(limit: u64) -> Snapshot {
    Snapshot {
        location: Some(Location {
            version: CgroupVersion::V2,
            cgroup_path: "/x".into(),
            mount_point: "/sys/fs/cgroup".into(),
            dir: "/sys/fs/cgroup/x".into(),
            resolved: true,
        }),
        cgroup_limit: Some(limit),
        mem_total: Some(1 << 34),
        ..Snapshot::default()
    }
}

fn codes_of(d: &[Diagnosis]) -> Vec<&'static str> {
    d.iter().map(|d| d.code).collect()
}

const N20: NodeVersion = NodeVersion {
    major: 20,
    minor: 20,
    patch: 2,
};
const N22: NodeVersion = NodeVersion {
    major: 22,
    minor: 20,
    patch: 0,
};
const N24: NodeVersion = NodeVersion {
    major: 24,
    minor: 19,
    patch: 0,
};

#[test]
fn band_from_the_shared_file() {
    assert_eq!(
        (HEAP_BAND_LOW, HEAP_TARGET, HEAP_BAND_HIGH),
        (0.7, 0.75, 0.8)
    );
}

#[test]
fn heap_limit_cases() {
    let cases: &[(&str, u64, f64, Option<&str>)] = &[
        (
            "node's floor in 256 MiB",
            256 << 20,
            259.0 * MIB,
            Some(codes::HEAP_LIMIT_ABOVE_CONTAINER_LIMIT),
        ),
        (
            "equal",
            256 << 20,
            256.0 * MIB,
            Some(codes::HEAP_LIMIT_ABOVE_CONTAINER_LIMIT),
        ),
        (
            "90%",
            1 << 30,
            0.9 * 1024.0 * MIB,
            Some(codes::HEAP_LIMIT_NEAR_CONTAINER_LIMIT),
        ),
        (
            "just above 80%",
            1 << 30,
            0.8 * 1024.0 * MIB + 1.0,
            Some(codes::HEAP_LIMIT_NEAR_CONTAINER_LIMIT),
        ),
        ("exactly 80%", 1 << 30, 0.8 * 1024.0 * MIB, None),
        (
            "the seed's 768 in 1 GiB (780 MiB, 76.2%)",
            1 << 30,
            780.0 * MIB,
            None,
        ),
        ("exactly 75%", 1 << 30, 0.75 * 1024.0 * MIB, None),
        ("half", 1 << 30, 512.0 * MIB, None),
    ];
    for (name, limit, heap, want) in cases {
        let v8 = V8Numbers {
            heap_size_limit: Some(*heap),
            ..V8Numbers::default()
        };
        let d = diagnose(&limited(*limit), &v8, N24);
        let got = d
            .iter()
            .find(|d| d.code.starts_with("HEAP_LIMIT"))
            .map(|d| d.code);
        assert_eq!(got, *want, "case {name}");
    }
}

#[test]
fn young_generation_as_measured() {
    // (memory node sized from, MiB; node; heap_size_limit - max_old_space_size
    // measured in real v1 child cgroups, MiB)
    let cases: &[(f64, NodeVersion, f64)] = &[
        (64.0, N20, 3.0),
        (256.0, N20, 3.0),
        (512.0, N20, 3.0),
        (600.0, N20, 12.0),
        (1024.0, N20, 12.0),
        (1024.0, N22, 12.0),
        (1536.0, N20, 24.0),
        (2048.0, N20, 24.0),
        (3000.0, N20, 48.0),
        (4096.0, N20, 48.0),
        (4096.0, N22, 48.0),
        (24105.0, N20, 48.0),
        (64.0, N24, 3.0),
        (512.0, N24, 3.0),
        (600.0, N24, 48.0),
        (1024.0, N24, 48.0),
        (1536.0, N24, 96.0),
        (2048.0, N24, 96.0),
        (3000.0, N24, 192.0),
        (4096.0, N24, 192.0),
        (8192.0, N24, 192.0),
        (16384.0, N24, 192.0),
        (24105.0, N24, 192.0),
    ];
    for (mem, node, young) in cases {
        assert_eq!(
            young_generation_mib(*mem, *node),
            *young,
            "{mem} MiB, node {}",
            node.major
        );
    }
    assert_eq!(flagged_semi_space_mib(3.0), 4.0, "measured: 3 gives 12 MiB");
    // Default heap limits measured (no flags).
    for (mem, node, heap) in [
        (64.0, N20, 259.0),
        (512.0, N24, 259.0),
        (600.0, N20, 312.0),
        (600.0, N24, 348.0),
        (1024.0, N20, 524.0),
        (1024.0, N24, 560.0),
        (1536.0, N20, 792.0),
        (3000.0, N24, 1692.0),
        (24105.0, N20, 4144.0),
        (24105.0, N24, 4288.0),
    ] {
        assert_eq!(
            default_heap_limit_mib(mem, node),
            heap,
            "{mem} MiB node {}",
            node.major
        );
    }
    assert_eq!(flagged_semi_space_mib(1.0), 1.0);
}

#[test]
fn advice_lands_the_heap_at_the_target() {
    // (limit = constrained MiB, node, old space, heap limit)
    let cases: &[(f64, NodeVersion, f64, f64)] = &[
        (64.0, N20, 45.0, 48.0),
        (128.0, N20, 93.0, 96.0),
        (256.0, N20, 189.0, 192.0),
        (256.0, N24, 189.0, 192.0),
        (1024.0, N20, 756.0, 768.0),
        (1024.0, N24, 720.0, 768.0),
        (4096.0, N22, 3024.0, 3072.0),
        (4096.0, N24, 2880.0, 3072.0),
    ];
    for (limit, node, old, heap) in cases {
        let a = heap_advice(limit * MIB, limit * MIB, *node);
        assert_eq!(
            a.max_old_space_size_mib, *old,
            "{limit} MiB node {}",
            node.major
        );
        assert_eq!(a.max_semi_space_size_mib, None);
        assert_eq!(a.heap_limit_mib, *heap, "{limit} MiB node {}", node.major);
    }
    // The percentage form: Node 24.19 has it, 22.20 does not.
    let a = heap_advice(256.0 * MIB, 256.0 * MIB, N24);
    assert_eq!(a.max_old_space_size_percentage, Some(73.9));
    assert_eq!(a.percentage_heap_limit_mib, Some(192.0));
    assert_eq!(
        a.percentage_node_options().as_deref(),
        Some("--max-old-space-size-percentage=73.9")
    );
    let a = heap_advice(64.0 * MIB, 64.0 * MIB, N24);
    assert_eq!(a.max_old_space_size_percentage, Some(70.4));
    assert_eq!(a.percentage_heap_limit_mib, Some(48.0));
    assert_eq!(
        heap_advice(256.0 * MIB, 256.0 * MIB, N22).max_old_space_size_percentage,
        None
    );
    // Not when node sizes from another number than the limit (a parent's limit).
    let a = heap_advice(1024.0 * MIB, 24105.0 * MIB, N24);
    assert_eq!(a.max_old_space_size_percentage, None);
    assert_eq!(a.max_old_space_size_mib, 768.0 - 192.0);
    // A small limit on a parent: node sizes its young generation from the
    // host, so the advice sets the semi-space too.
    let a = heap_advice(64.0 * MIB, 24105.0 * MIB, N20);
    assert_eq!(
        a.node_options(),
        "--max-old-space-size=36 --max-semi-space-size=4"
    );
    assert_eq!(a.heap_limit_mib, 48.0);
    // Following the advice silences the warning.
    let v8 = V8Numbers {
        heap_size_limit: Some(heap_advice(1024.0 * MIB, 1024.0 * MIB, N20).heap_limit_mib * MIB),
        ..V8Numbers::default()
    };
    assert!(diagnose(&limited(1 << 30), &v8, N20).is_empty());
}

#[test]
fn versions() {
    assert_eq!(NodeVersion::parse("v24.19.0"), Some(N24));
    assert_eq!(NodeVersion::parse("22.20.0"), Some(N22));
    assert_eq!(NodeVersion::parse("v24"), None);
    assert_eq!(NodeVersion::parse(""), None);
    let v = |s: &str| NodeVersion::parse(s).unwrap().has_old_space_percentage();
    assert!(!v("20.20.2") && !v("22.20.0") && v("22.21.0") && !v("23.11.0"));
    assert!(!v("24.5.0") && v("24.6.0") && v("25.0.0"));
}

#[test]
fn host_fallback_and_previous_kill() {
    let mut s = limited(0);
    s.cgroup_limit = None;
    let d = diagnose(&s, &V8Numbers::default(), N20);
    assert_eq!(codes_of(&d), vec![codes::NO_LIMIT]);
    assert_eq!(d[0].limit_bytes, Some((1u64 << 34) as f64));

    let mut s = limited(1 << 30);
    s.events = Some(crate::reader::Events {
        oom_kill: Some(2),
        ..Default::default()
    });
    let d = diagnose(&s, &V8Numbers::default(), N20);
    assert_eq!(codes_of(&d), vec![codes::PREVIOUS_OOM_KILL]);
    assert_eq!(d[0].oom_kill_count, Some(2.0));
}

#[test]
fn derived_ratios() {
    let mut s = limited(1000);
    s.usage = Some(800);
    s.working_set = Some(600);
    let v8 = V8Numbers {
        heap_size_limit: Some(500.0),
        ..V8Numbers::default()
    };
    let d = derive(&s, &v8);
    assert_eq!(d.usage_ratio, Some(0.6), "working set is the basis");
    assert_eq!(d.headroom_bytes, Some(400.0));
    assert_eq!(d.heap_limit_ratio, Some(0.5));
}
