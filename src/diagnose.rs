//! Derived numbers and diagnoses: what a person should do about a snapshot.

use crate::reader::{LimitSource, Snapshot};

const MIB: f64 = 1024.0 * 1024.0;

/// The heap limit is healthy at or below this share of the container limit:
/// the rest is for memory outside the V8 heap (Buffers, native code, stacks,
/// page cache, kernel memory).
pub const HEAP_SHARE: f64 = 0.75;

/// V8's young generation sits on top of `--max-old-space-size`: on 64-bit
/// Node 20 `heap_size_limit` is the old-space size plus 48 MiB (three 16 MiB
/// semi-spaces). Measured, and used to turn a target heap size into a flag value.
pub const YOUNG_GENERATION_MIB: f64 = 48.0;

/// V8 numbers as `process.memoryUsage()` and `v8.getHeapStatistics()` give them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct V8Numbers {
    pub rss: Option<f64>,
    pub heap_total: Option<f64>,
    pub heap_used: Option<f64>,
    pub external: Option<f64>,
    pub array_buffers: Option<f64>,
    pub heap_size_limit: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Stable codes: tools and alerts may match on them.
pub mod codes {
    pub const HEAP_LIMIT_ABOVE_CONTAINER_LIMIT: &str = "HEAP_LIMIT_ABOVE_CONTAINER_LIMIT";
    pub const HEAP_LIMIT_NEAR_CONTAINER_LIMIT: &str = "HEAP_LIMIT_NEAR_CONTAINER_LIMIT";
    pub const NO_LIMIT: &str = "NO_LIMIT";
    pub const NO_MEMORY_CGROUP: &str = "NO_MEMORY_CGROUP";
    pub const PREVIOUS_OOM_KILL: &str = "PREVIOUS_OOM_KILL";
    pub const CGROUP_UNRESOLVED: &str = "CGROUP_UNRESOLVED";
    pub const CGROUP_FILE_UNREADABLE: &str = "CGROUP_FILE_UNREADABLE";
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub limit_bytes: Option<f64>,
    pub heap_size_limit_bytes: Option<f64>,
    pub recommended_max_old_space_size_mib: Option<f64>,
    pub recommended_max_semi_space_size_mib: Option<f64>,
    /// The exact NODE_OPTIONS value to use.
    pub node_options: Option<String>,
    pub oom_kill_count: Option<f64>,
    pub path: Option<String>,
}

impl Diagnosis {
    fn new(code: &'static str, severity: Severity, message: String) -> Self {
        Diagnosis {
            code,
            severity,
            message,
            limit_bytes: None,
            heap_size_limit_bytes: None,
            recommended_max_old_space_size_mib: None,
            recommended_max_semi_space_size_mib: None,
            node_options: None,
            oom_kill_count: None,
            path: None,
        }
    }
}

/// Flags that put V8's whole heap limit at about [`HEAP_SHARE`] of a limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeapAdvice {
    /// `--max-old-space-size`, MiB.
    pub max_old_space_size_mib: f64,
    /// `--max-semi-space-size`, MiB: only for small containers, where the
    /// default young generation (48 MiB) would not leave half the target
    /// for the old space.
    pub max_semi_space_size_mib: Option<f64>,
    /// The `heap_size_limit` V8 will then report, MiB (old space plus three
    /// semi-spaces; measured on Node 20).
    pub heap_limit_mib: f64,
}

impl HeapAdvice {
    pub fn node_options(&self) -> String {
        match self.max_semi_space_size_mib {
            Some(s) => format!(
                "--max-old-space-size={:.0} --max-semi-space-size={s:.0}",
                self.max_old_space_size_mib
            ),
            None => format!("--max-old-space-size={:.0}", self.max_old_space_size_mib),
        }
    }
}

pub fn heap_advice(limit_bytes: f64) -> HeapAdvice {
    let target = (limit_bytes * HEAP_SHARE / MIB).floor().max(4.0);
    if target - YOUNG_GENERATION_MIB >= target / 2.0 {
        return HeapAdvice {
            max_old_space_size_mib: target - YOUNG_GENERATION_MIB,
            max_semi_space_size_mib: None,
            heap_limit_mib: target,
        };
    }
    // Small container: shrink the young generation to a quarter of the target.
    let semi = (target / 12.0).floor().max(1.0);
    HeapAdvice {
        max_old_space_size_mib: target - 3.0 * semi,
        max_semi_space_size_mib: Some(semi),
        heap_limit_mib: target,
    }
}

fn mib(bytes: f64) -> String {
    format!("{:.0} MiB", bytes / MIB)
}

/// Derived ratios against the limit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Derived {
    /// basis / limit
    pub usage_ratio: Option<f64>,
    /// limit - basis (negative if the basis is past the limit, which the
    /// host fallback can show)
    pub headroom_bytes: Option<f64>,
    /// V8 heap_size_limit / limit
    pub heap_limit_ratio: Option<f64>,
}

pub fn derive(snap: &Snapshot, v8: &V8Numbers) -> Derived {
    let limit = snap.limit().map(|(l, _)| l as f64).filter(|l| *l > 0.0);
    let basis = snap.basis().map(|b| b as f64);
    Derived {
        usage_ratio: limit.zip(basis).map(|(l, b)| b / l),
        headroom_bytes: limit.zip(basis).map(|(l, b)| l - b),
        heap_limit_ratio: limit.zip(v8.heap_size_limit).map(|(l, h)| h / l),
    }
}

pub fn diagnose(snap: &Snapshot, v8: &V8Numbers) -> Vec<Diagnosis> {
    let mut out = Vec::new();

    if let Some(err) = &snap.locate_error {
        let mut d = Diagnosis::new(
            codes::CGROUP_UNRESOLVED,
            Severity::Warning,
            format!("Could not find this process's memory cgroup ({err}); limits are taken from the host."),
        );
        d.path = Some(err.clone());
        out.push(d);
    }

    match &snap.location {
        None if snap.locate_error.is_none() => out.push(Diagnosis::new(
            codes::NO_MEMORY_CGROUP,
            Severity::Info,
            "This process is not in a memory cgroup (no cgroup memory controller is visible); \
             numbers are the host's."
                .to_string(),
        )),
        Some(loc) if !loc.resolved => {
            let mut d = Diagnosis::new(
                codes::CGROUP_UNRESOLVED,
                Severity::Warning,
                format!(
                    "The cgroup directory for {} does not exist under the mount point {}; \
                     reading the mount point instead, as libuv does. The limit may be the wrong cgroup's.",
                    loc.cgroup_path,
                    loc.mount_point.display()
                ),
            );
            d.path = Some(loc.mount_point.display().to_string());
            out.push(d);
        }
        _ => {}
    }

    let limit = snap.limit();
    match limit {
        Some((l, LimitSource::Host)) if snap.location.is_some() => {
            let mut d = Diagnosis::new(
                codes::NO_LIMIT,
                Severity::Warning,
                format!(
                    "No memory limit is set on this cgroup or any parent; the host's {} is the only ceiling. \
                     Set a container memory limit so the heap can be sized against it.",
                    mib(l as f64)
                ),
            );
            d.limit_bytes = Some(l as f64);
            out.push(d);
        }
        // A limit file that failed to read has its own diagnosis below.
        None if !snap.failed.limit => out.push(Diagnosis::new(
            codes::NO_LIMIT,
            Severity::Warning,
            "No memory limit could be found: neither a cgroup limit nor the host's MemTotal."
                .to_string(),
        )),
        _ => {}
    }

    if let (Some((l, source)), Some(h)) = (limit, v8.heap_size_limit) {
        if source != LimitSource::Host {
            let l = l as f64;
            let advice = heap_advice(l);
            let (code, severity, relation, consequence) = if h >= l {
                (
                    codes::HEAP_LIMIT_ABOVE_CONTAINER_LIMIT,
                    Severity::Error,
                    "is not below",
                    "the kernel will OOM-kill the process before V8 ever reports heap exhaustion",
                )
            } else if h > l * HEAP_SHARE + MIB {
                (
                    codes::HEAP_LIMIT_NEAR_CONTAINER_LIMIT,
                    Severity::Warning,
                    "is above 75% of",
                    "too little is left for memory outside the V8 heap (Buffers, native code, thread stacks, page cache)",
                )
            } else {
                ("", Severity::Info, "", "")
            };
            if !code.is_empty() {
                let mut d = Diagnosis::new(
                    code,
                    severity,
                    format!(
                        "The V8 heap limit ({}) {relation} the container limit ({}): {consequence}. \
                         Start node with NODE_OPTIONS=\"{}\" (heap limit about {}).",
                        mib(h),
                        mib(l),
                        advice.node_options(),
                        mib(advice.heap_limit_mib * MIB)
                    ),
                );
                d.limit_bytes = Some(l);
                d.heap_size_limit_bytes = Some(h);
                d.recommended_max_old_space_size_mib = Some(advice.max_old_space_size_mib);
                d.recommended_max_semi_space_size_mib = advice.max_semi_space_size_mib;
                d.node_options = Some(advice.node_options());
                out.push(d);
            }
        }
    }

    if let Some(kills) = snap
        .events
        .as_ref()
        .and_then(|e| e.oom_kill)
        .filter(|k| *k > 0)
    {
        let mut d = Diagnosis::new(
            codes::PREVIOUS_OOM_KILL,
            Severity::Warning,
            format!(
                "The kernel has OOM-killed {kills} process{} in this cgroup before (oom_kill in {}).",
                if kills == 1 { "" } else { "es" },
                snap.location
                    .as_ref()
                    .map(|l| match l.version {
                        crate::locate::CgroupVersion::V1 => "memory.oom_control",
                        crate::locate::CgroupVersion::V2 => "memory.events",
                    })
                    .unwrap_or("memory.events")
            ),
        );
        d.oom_kill_count = Some(kills as f64);
        out.push(d);
    }

    for p in &snap.problems {
        let mut d = Diagnosis::new(
            codes::CGROUP_FILE_UNREADABLE,
            Severity::Warning,
            format!("Could not read {p}; the values from it are null."),
        );
        d.path = Some(p.path().display().to_string());
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locate::{CgroupVersion, Location};

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

    #[test]
    fn heap_limit_cases() {
        let cases: &[(&str, u64, f64, Option<&str>)] = &[
            (
                "node 20 in 256 MiB",
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
            ("exactly 75%", 1 << 30, 0.75 * 1024.0 * MIB, None),
            ("half", 1 << 30, 512.0 * MIB, None),
        ];
        for (name, limit, heap, want) in cases {
            let v8 = V8Numbers {
                heap_size_limit: Some(*heap),
                ..V8Numbers::default()
            };
            let d = diagnose(&limited(*limit), &v8);
            let got = d
                .iter()
                .find(|d| d.code.starts_with("HEAP_LIMIT"))
                .map(|d| d.code);
            assert_eq!(got, *want, "case {name}");
        }
    }

    #[test]
    fn recommendation_lands_heap_at_three_quarters() {
        // (limit MiB, old space, semi space, heap limit): heap = old + 3 * semi,
        // with Node 20's default semi-space of 16 MiB.
        let cases: &[(f64, f64, Option<f64>, f64)] = &[
            (1024.0, 720.0, None, 768.0),
            (256.0, 144.0, None, 192.0),
            (128.0, 48.0, None, 96.0),
            (96.0, 54.0, Some(6.0), 72.0),
            (64.0, 36.0, Some(4.0), 48.0),
            (16.0, 9.0, Some(1.0), 12.0),
        ];
        for (limit, old, semi, heap) in cases {
            let a = heap_advice(limit * MIB);
            assert_eq!(a.max_old_space_size_mib, *old, "{limit} MiB");
            assert_eq!(a.max_semi_space_size_mib, *semi, "{limit} MiB");
            assert_eq!(a.heap_limit_mib, *heap, "{limit} MiB");
            let young = semi.map_or(YOUNG_GENERATION_MIB, |s| 3.0 * s);
            assert_eq!(
                a.max_old_space_size_mib + young,
                a.heap_limit_mib,
                "{limit} MiB adds up"
            );
            assert!(
                a.heap_limit_mib <= limit * HEAP_SHARE,
                "{limit} MiB: at most 75%"
            );
        }
        assert_eq!(
            heap_advice(64.0 * MIB).node_options(),
            "--max-old-space-size=36 --max-semi-space-size=4"
        );
        // Following the advice must silence the warning.
        let v8 = V8Numbers {
            heap_size_limit: Some(heap_advice(1024.0 * MIB).heap_limit_mib * MIB),
            ..V8Numbers::default()
        };
        assert!(diagnose(&limited(1 << 30), &v8).is_empty());
    }

    #[test]
    fn host_fallback_and_previous_kill() {
        let mut s = limited(0);
        s.cgroup_limit = None;
        let d = diagnose(&s, &V8Numbers::default());
        assert_eq!(codes_of(&d), vec![codes::NO_LIMIT]);
        assert_eq!(d[0].limit_bytes, Some((1u64 << 34) as f64));

        let mut s = limited(1 << 30);
        s.events = Some(crate::reader::Events {
            oom_kill: Some(2),
            ..Default::default()
        });
        let d = diagnose(&s, &V8Numbers::default());
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
}
