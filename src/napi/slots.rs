//! The numeric half of a reading, laid out as slots of a `Float64Array`.
//! Filling a reused array costs a fraction of building a JS object property
//! by property through N-API, so the native side writes numbers here and the
//! JavaScript side builds the result object from them. `NaN` means null.
//!
//! Names are the JS property paths: `stat.anon` becomes `result.stat.anon`.
//! A slot named like a section (`stat`) is that section's presence flag:
//! 1 when present, NaN when the section is null.

use crate::diagnose::{Derived, V8Numbers};
use crate::reader::Snapshot;
use crate::stat::MemoryStat;

macro_rules! slots {
    ($($id:ident = $name:literal,)*) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Debug, Clone, Copy)]
        #[repr(usize)]
        pub enum Slot { $($id,)* }
        /// JS property path of each slot, in slot order.
        pub const NAMES: &[&str] = &[$($name,)*];
    };
}

slots! {
    TIMESTAMP = "timestampMs",
    LIMIT = "limitBytes",
    CGROUP_LIMIT = "cgroupLimitBytes",
    LEAF_LIMIT = "leafLimitBytes",
    HIGH = "highBytes",
    LEAF_HIGH = "leafHighBytes",
    CONSTRAINED = "constrainedMemoryBytes",
    USAGE = "usageBytes",
    WORKING_SET = "workingSetBytes",
    PEAK = "peakBytes",
    SWAP = "swapBytes",
    SWAP_LIMIT = "swapLimitBytes",
    BASIS = "basisBytes",
    USAGE_RATIO = "usageRatio",
    HEADROOM = "headroomBytes",
    HEAP_LIMIT_RATIO = "heapLimitRatio",
    // 1/0 as JS true/false, NaN null: set by `sample()` from the sampler.
    STALLED = "stalled",
    RSS = "rssBytes",
    HOST_TOTAL = "hostTotalBytes",
    HOST_AVAILABLE = "hostAvailableBytes",
    STAT = "stat",
    STAT_ANON = "stat.anon",
    STAT_FILE = "stat.file",
    STAT_KERNEL = "stat.kernel",
    STAT_KERNEL_STACK = "stat.kernelStack",
    STAT_PAGETABLES = "stat.pagetables",
    STAT_SOCK = "stat.sock",
    STAT_SHMEM = "stat.shmem",
    STAT_FILE_MAPPED = "stat.fileMapped",
    STAT_FILE_DIRTY = "stat.fileDirty",
    STAT_FILE_WRITEBACK = "stat.fileWriteback",
    STAT_ANON_THP = "stat.anonThp",
    STAT_INACTIVE_ANON = "stat.inactiveAnon",
    STAT_ACTIVE_ANON = "stat.activeAnon",
    STAT_INACTIVE_FILE = "stat.inactiveFile",
    STAT_ACTIVE_FILE = "stat.activeFile",
    STAT_UNEVICTABLE = "stat.unevictable",
    STAT_SLAB = "stat.slab",
    STAT_SLAB_RECLAIMABLE = "stat.slabReclaimable",
    STAT_SLAB_UNRECLAIMABLE = "stat.slabUnreclaimable",
    STAT_PGFAULT = "stat.pgfault",
    STAT_PGMAJFAULT = "stat.pgmajfault",
    EVENTS = "events",
    EV_LOW = "events.low",
    EV_HIGH = "events.high",
    EV_MAX = "events.max",
    EV_OOM = "events.oom",
    EV_OOM_KILL = "events.oomKill",
    EV_OOM_GROUP_KILL = "events.oomGroupKill",
    EV_UNDER_OOM = "events.underOom",
    EV_FAILCNT = "events.failcnt",
    PRESSURE = "pressure",
    PSI_SOME = "pressure.some",
    PSI_SOME_AVG10 = "pressure.some.avg10",
    PSI_SOME_AVG60 = "pressure.some.avg60",
    PSI_SOME_AVG300 = "pressure.some.avg300",
    PSI_SOME_TOTAL = "pressure.some.totalUs",
    PSI_FULL = "pressure.full",
    PSI_FULL_AVG10 = "pressure.full.avg10",
    PSI_FULL_AVG60 = "pressure.full.avg60",
    PSI_FULL_AVG300 = "pressure.full.avg300",
    PSI_FULL_TOTAL = "pressure.full.totalUs",
    // Written by JavaScript before the call (the V8 numbers), echoed back.
    V8 = "v8",
    V8_RSS = "v8.rssBytes",
    V8_HEAP_TOTAL = "v8.heapTotalBytes",
    V8_HEAP_USED = "v8.heapUsedBytes",
    V8_EXTERNAL = "v8.externalBytes",
    V8_ARRAY_BUFFERS = "v8.arrayBuffersBytes",
    V8_HEAP_SIZE_LIMIT = "v8.heapSizeLimitBytes",
    // Number of raw memory.stat values that follow the named slots.
    RAW_COUNT = "",
}

/// Index of the first raw `memory.stat` value.
pub const RAW_START: usize = NAMES.len();

fn opt(v: Option<u64>) -> f64 {
    v.map_or(f64::NAN, |v| v as f64)
}

fn optf(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

fn flag(present: bool) -> f64 {
    if present {
        1.0
    } else {
        f64::NAN
    }
}

/// Read the V8 numbers JavaScript wrote into the input slots.
pub fn read_v8(buf: &[f64]) -> V8Numbers {
    let g = |s: Slot| {
        let v = buf.get(s as usize).copied().unwrap_or(f64::NAN);
        if v.is_finite() && v >= 0.0 {
            Some(v)
        } else {
            None
        }
    };
    V8Numbers {
        rss: g(Slot::V8_RSS),
        heap_total: g(Slot::V8_HEAP_TOTAL),
        heap_used: g(Slot::V8_HEAP_USED),
        external: g(Slot::V8_EXTERNAL),
        array_buffers: g(Slot::V8_ARRAY_BUFFERS),
        heap_size_limit: g(Slot::V8_HEAP_SIZE_LIMIT),
    }
}

/// How many raw values fit after the named slots.
pub fn raw_capacity(len: usize) -> usize {
    len.saturating_sub(RAW_START)
}

/// Fill `buf` from a snapshot. `buf` must hold at least `RAW_START` slots;
/// raw `memory.stat` values that do not fit are left out (RAW_COUNT says how
/// many were written).
pub fn fill(buf: &mut [f64], snap: &Snapshot, derived: &Derived, timestamp_ms: f64) {
    assert!(buf.len() >= RAW_START, "slot buffer too short");
    let mut set = |s: Slot, v: f64| buf[s as usize] = v;
    set(Slot::V8, 1.0);
    set(Slot::TIMESTAMP, timestamp_ms);
    let limit = snap.limit();
    set(Slot::LIMIT, opt(limit.map(|(l, _)| l)));
    set(Slot::CGROUP_LIMIT, opt(snap.cgroup_limit));
    set(Slot::LEAF_LIMIT, opt(snap.leaf_limit));
    set(Slot::HIGH, opt(snap.cgroup_high));
    set(Slot::LEAF_HIGH, opt(snap.leaf_high));
    set(Slot::CONSTRAINED, opt(snap.constrained_memory()));
    set(Slot::USAGE, opt(snap.usage));
    set(Slot::WORKING_SET, opt(snap.working_set));
    set(Slot::PEAK, opt(snap.peak));
    set(Slot::SWAP, opt(snap.swap));
    set(Slot::SWAP_LIMIT, opt(snap.swap_limit));
    set(Slot::BASIS, opt(snap.basis()));
    set(Slot::USAGE_RATIO, optf(derived.usage_ratio));
    set(Slot::HEADROOM, optf(derived.headroom_bytes));
    set(Slot::HEAP_LIMIT_RATIO, optf(derived.heap_limit_ratio));
    set(Slot::RSS, opt(snap.rss));
    set(Slot::HOST_TOTAL, opt(snap.mem_total));
    set(Slot::HOST_AVAILABLE, opt(snap.mem_available));

    let empty = MemoryStat::default();
    let s = snap.stat.as_ref().unwrap_or(&empty);
    set(Slot::STAT, flag(snap.stat.is_some()));
    set(Slot::STAT_ANON, opt(s.anon));
    set(Slot::STAT_FILE, opt(s.file));
    set(Slot::STAT_KERNEL, opt(s.kernel));
    set(Slot::STAT_KERNEL_STACK, opt(s.kernel_stack));
    set(Slot::STAT_PAGETABLES, opt(s.pagetables));
    set(Slot::STAT_SOCK, opt(s.sock));
    set(Slot::STAT_SHMEM, opt(s.shmem));
    set(Slot::STAT_FILE_MAPPED, opt(s.file_mapped));
    set(Slot::STAT_FILE_DIRTY, opt(s.file_dirty));
    set(Slot::STAT_FILE_WRITEBACK, opt(s.file_writeback));
    set(Slot::STAT_ANON_THP, opt(s.anon_thp));
    set(Slot::STAT_INACTIVE_ANON, opt(s.inactive_anon));
    set(Slot::STAT_ACTIVE_ANON, opt(s.active_anon));
    set(Slot::STAT_INACTIVE_FILE, opt(s.inactive_file));
    set(Slot::STAT_ACTIVE_FILE, opt(s.active_file));
    set(Slot::STAT_UNEVICTABLE, opt(s.unevictable));
    set(Slot::STAT_SLAB, opt(s.slab));
    set(Slot::STAT_SLAB_RECLAIMABLE, opt(s.slab_reclaimable));
    set(Slot::STAT_SLAB_UNRECLAIMABLE, opt(s.slab_unreclaimable));
    set(Slot::STAT_PGFAULT, opt(s.pgfault));
    set(Slot::STAT_PGMAJFAULT, opt(s.pgmajfault));

    let e = snap.events.clone().unwrap_or_default();
    set(Slot::EVENTS, flag(snap.events.is_some()));
    set(Slot::EV_LOW, opt(e.low));
    set(Slot::EV_HIGH, opt(e.high));
    set(Slot::EV_MAX, opt(e.max));
    set(Slot::EV_OOM, opt(e.oom));
    set(Slot::EV_OOM_KILL, opt(e.oom_kill));
    set(Slot::EV_OOM_GROUP_KILL, opt(e.oom_group_kill));
    set(Slot::EV_UNDER_OOM, opt(e.under_oom));
    set(Slot::EV_FAILCNT, opt(e.failcnt));

    let p = snap.pressure.as_ref().map(|(p, _)| p);
    set(Slot::PRESSURE, flag(p.is_some()));
    set(Slot::PSI_SOME, flag(p.is_some()));
    set(Slot::PSI_SOME_AVG10, optf(p.map(|p| p.some.avg10)));
    set(Slot::PSI_SOME_AVG60, optf(p.map(|p| p.some.avg60)));
    set(Slot::PSI_SOME_AVG300, optf(p.map(|p| p.some.avg300)));
    set(Slot::PSI_SOME_TOTAL, opt(p.map(|p| p.some.total_us)));
    let full = p.and_then(|p| p.full);
    set(Slot::PSI_FULL, flag(full.is_some()));
    set(Slot::PSI_FULL_AVG10, optf(full.map(|f| f.avg10)));
    set(Slot::PSI_FULL_AVG60, optf(full.map(|f| f.avg60)));
    set(Slot::PSI_FULL_AVG300, optf(full.map(|f| f.avg300)));
    set(Slot::PSI_FULL_TOTAL, opt(full.map(|f| f.total_us)));

    let room = raw_capacity(buf.len());
    let n = s.raw.len().min(room);
    buf[Slot::RAW_COUNT as usize] = n as f64;
    for (i, (_, v)) in s.raw.iter().take(n).enumerate() {
        buf[RAW_START + i] = opt(crate::parse::limit_from_value(*v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_sections_come_first() {
        let mut seen = std::collections::HashSet::new();
        for (i, n) in NAMES.iter().enumerate() {
            assert!(seen.insert(*n), "duplicate slot name {n}");
            if let Some((parent, _)) = n.rsplit_once('.') {
                let p = NAMES.iter().position(|x| *x == parent);
                assert!(
                    p.is_some_and(|p| p < i),
                    "{n}: section {parent} must come first"
                );
            }
        }
        assert_eq!(NAMES[Slot::RAW_COUNT as usize], "");
    }

    #[test]
    fn empty_snapshot_is_all_null() {
        let mut buf = vec![0.0; RAW_START + 4];
        fill(&mut buf, &Snapshot::default(), &Derived::default(), 1.0);
        assert!(buf[Slot::USAGE as usize].is_nan());
        assert!(buf[Slot::STAT as usize].is_nan(), "absent section");
        assert_eq!(buf[Slot::RAW_COUNT as usize], 0.0);
    }

    #[test]
    fn v8_input_rejects_nan_and_negative() {
        let mut buf = vec![f64::NAN; RAW_START];
        buf[Slot::V8_RSS as usize] = 5.0;
        buf[Slot::V8_HEAP_USED as usize] = -1.0;
        let v = read_v8(&buf);
        assert_eq!(v.rss, Some(5.0));
        assert_eq!(v.heap_used, None);
        assert_eq!(v.heap_size_limit, None);
    }
}
