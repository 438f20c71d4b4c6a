//! The kernel files the diagnoses, the reader and the stall detector name,
//! by cgroup version. Declared once, in lib/core/diagnoses.json (the doctor
//! words its checks with the same names); build.rs turns them into
//! `V1_FILES` and `V2_FILES`.

use crate::locate::CgroupVersion;

/// The kernel files the diagnoses name, by cgroup version. Declared once,
/// in lib/core/diagnoses.json: the doctor words its checks with the same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedFiles {
    /// The memory limit.
    pub limit: &'static str,
    /// The limit throttling starts at (v1: the soft limit).
    pub high: &'static str,
    /// The file whose `oom_kill` counts the OOM kills.
    pub oom_kill: &'static str,
    /// The counter of failed charges at the limit (the stall detector's),
    /// as the file and, for a keyed file, the key: the reading's `events`
    /// field is named by its last word (`failcnt`, `max`).
    pub failures: &'static str,
}

impl NamedFiles {
    /// As (fact, file) pairs, the facts named as the doctor reads them.
    pub fn entries(&self) -> [(&'static str, &'static str); 4] {
        [
            ("limit", self.limit),
            ("high", self.high),
            ("oomKill", self.oom_kill),
            ("failures", self.failures),
        ]
    }
}

// V1_FILES and V2_FILES, from lib/diagnoses.json.
include!(concat!(env!("OUT_DIR"), "/named_files.rs"));

/// The files of a cgroup version; v2's where there is no cgroup to name.
pub fn named_files(version: Option<CgroupVersion>) -> &'static NamedFiles {
    match version {
        Some(CgroupVersion::V1) => &V1_FILES,
        Some(CgroupVersion::V2) | None => &V2_FILES,
    }
}
