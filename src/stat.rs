//! `memory.stat` in the cgroup v2 vocabulary, whatever the kernel's version.

use crate::locate::CgroupVersion;
use crate::parse::lookup;

/// Named `memory.stat` fields in bytes (v2 names). v1 values are the
/// hierarchical `total_*` ones. A field the kernel did not print is `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryStat {
    pub anon: Option<u64>,
    pub file: Option<u64>,
    /// All kernel memory: v2 `kernel`; v1 `memory.kmem.usage_in_bytes`.
    pub kernel: Option<u64>,
    pub kernel_stack: Option<u64>,
    pub pagetables: Option<u64>,
    /// Socket buffers: v2 `sock`; v1 `memory.kmem.tcp.usage_in_bytes`.
    pub sock: Option<u64>,
    pub shmem: Option<u64>,
    pub file_mapped: Option<u64>,
    pub file_dirty: Option<u64>,
    pub file_writeback: Option<u64>,
    pub anon_thp: Option<u64>,
    pub inactive_anon: Option<u64>,
    pub active_anon: Option<u64>,
    pub inactive_file: Option<u64>,
    pub active_file: Option<u64>,
    pub unevictable: Option<u64>,
    pub slab: Option<u64>,
    pub slab_reclaimable: Option<u64>,
    pub slab_unreclaimable: Option<u64>,
    /// Page fault counts (events, not bytes).
    pub pgfault: Option<u64>,
    pub pgmajfault: Option<u64>,
    /// Refaults of recently evicted pages, file and anonymous (events, not
    /// bytes): v2 `workingset_refault_anon` + `workingset_refault_file`
    /// (kernel 5.9+; before, `workingset_refault`), v1 the `total_` ones
    /// (kernels that print them). Reclaim taking back what is faulted straight
    /// in again is what a stall at the limit looks like.
    pub workingset_refault: Option<u64>,
    /// v1 only: `hierarchical_memory_limit`, already the smallest limit up the
    /// whole hierarchy, including ancestors outside this process's view.
    /// None when unlimited or not printed.
    pub hierarchical_memory_limit: Option<u64>,
    /// v1 only: `hierarchical_memsw_limit`, the smallest memory+swap limit up
    /// the whole hierarchy. None when unlimited or not printed (no swap accounting).
    pub hierarchical_memsw_limit: Option<u64>,
    /// Every key/value the kernel printed, in its order and its own names.
    pub raw: Vec<(String, u64)>,
}

/// `workingset_refault_anon` + `workingset_refault_file` (either alone when
/// the other is missing), else the single `workingset_refault` of older kernels.
fn refaults(raw: &[(String, u64)], prefix: &str) -> Option<u64> {
    let g = |k: &str| lookup(raw, &format!("{prefix}{k}"));
    match (g("workingset_refault_anon"), g("workingset_refault_file")) {
        (None, None) => g("workingset_refault"),
        (a, f) => Some(a.unwrap_or(0).saturating_add(f.unwrap_or(0))),
    }
}

impl MemoryStat {
    /// The `memory.stat` key of the inactive file pages the working set
    /// leaves out (v1: the hierarchical total).
    pub fn inactive_file_key(version: CgroupVersion) -> &'static str {
        match version {
            CgroupVersion::V2 => "inactive_file",
            CgroupVersion::V1 => "total_inactive_file",
        }
    }

    pub fn from_v2(raw: Vec<(String, u64)>) -> Self {
        let g = |k: &str| lookup(&raw, k);
        let slab = g("slab").or_else(|| match (g("slab_reclaimable"), g("slab_unreclaimable")) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        });
        MemoryStat {
            anon: g("anon"),
            file: g("file"),
            kernel: g("kernel"),
            kernel_stack: g("kernel_stack"),
            pagetables: g("pagetables"),
            sock: g("sock"),
            shmem: g("shmem"),
            file_mapped: g("file_mapped"),
            file_dirty: g("file_dirty"),
            file_writeback: g("file_writeback"),
            anon_thp: g("anon_thp"),
            inactive_anon: g("inactive_anon"),
            active_anon: g("active_anon"),
            inactive_file: g(Self::inactive_file_key(CgroupVersion::V2)),
            active_file: g("active_file"),
            unevictable: g("unevictable"),
            slab,
            slab_reclaimable: g("slab_reclaimable"),
            slab_unreclaimable: g("slab_unreclaimable"),
            pgfault: g("pgfault"),
            pgmajfault: g("pgmajfault"),
            workingset_refault: refaults(&raw, ""),
            hierarchical_memory_limit: None,
            hierarchical_memsw_limit: None,
            raw,
        }
    }

    /// v1: the hierarchical `total_*` fields, mapped to v2 names
    /// (`total_rss` is anon, `total_cache` is file). Kernel and socket memory
    /// are not in v1 `memory.stat`; pass them from the `memory.kmem.*` files.
    pub fn from_v1(raw: Vec<(String, u64)>, kmem: Option<u64>, kmem_tcp: Option<u64>) -> Self {
        let g = |k: &str| lookup(&raw, k);
        MemoryStat {
            anon: g("total_rss"),
            file: g("total_cache"),
            kernel: kmem,
            kernel_stack: None,
            pagetables: None,
            sock: kmem_tcp,
            shmem: g("total_shmem"),
            file_mapped: g("total_mapped_file"),
            file_dirty: g("total_dirty"),
            file_writeback: g("total_writeback"),
            anon_thp: g("total_rss_huge"),
            inactive_anon: g("total_inactive_anon"),
            active_anon: g("total_active_anon"),
            inactive_file: g(Self::inactive_file_key(CgroupVersion::V1)),
            active_file: g("total_active_file"),
            unevictable: g("total_unevictable"),
            slab: None,
            slab_reclaimable: None,
            slab_unreclaimable: None,
            pgfault: g("total_pgfault"),
            pgmajfault: g("total_pgmajfault"),
            workingset_refault: refaults(&raw, "total_"),
            hierarchical_memory_limit: g("hierarchical_memory_limit")
                .and_then(crate::parse::limit_from_value),
            hierarchical_memsw_limit: g("hierarchical_memsw_limit")
                .and_then(crate::parse::limit_from_value),
            raw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_flat_keyed;

    #[test]
    fn v1_names_map_to_v2() {
        let raw = parse_flat_keyed(
            "rss 5\ncache 6\ntotal_rss 100\ntotal_cache 200\ntotal_shmem 20\ntotal_inactive_file 50\n\
             hierarchical_memory_limit 9223372036854771712\n",
        )
        .unwrap();
        let s = MemoryStat::from_v1(raw, Some(7), None);
        assert_eq!(s.anon, Some(100), "total_rss, not the local rss");
        assert_eq!(s.file, Some(200));
        assert_eq!(s.shmem, Some(20));
        assert_eq!(s.inactive_file, Some(50));
        assert_eq!(s.kernel, Some(7));
        assert_eq!(s.sock, None, "not printed is None, never 0");
        assert_eq!(s.slab, None);
        assert_eq!(s.hierarchical_memory_limit, None, "unlimited is None");
        assert_eq!(s.raw.len(), 7);
        assert_eq!(s.workingset_refault, None, "not printed is None");
    }

    #[test]
    fn refault_counters() {
        let cases: &[(&str, &str, bool, Option<u64>)] = &[
            ("v2 5.9+", "workingset_refault_anon 3\nworkingset_refault_file 40\n", false, Some(43)),
            ("v2 before 5.9", "workingset_refault 7\n", false, Some(7)),
            ("v2 file only", "workingset_refault_file 9\n", false, Some(9)),
            ("v2 none", "anon 1\n", false, None),
            (
                "v1 hierarchical, not local",
                "workingset_refault_file 1\ntotal_workingset_refault_anon 0\ntotal_workingset_refault_file 887\n",
                true,
                Some(887),
            ),
        ];
        for (name, text, v1, want) in cases {
            let raw = parse_flat_keyed(text).unwrap();
            let s = if *v1 {
                MemoryStat::from_v1(raw, None, None)
            } else {
                MemoryStat::from_v2(raw)
            };
            assert_eq!(s.workingset_refault, *want, "case {name}");
        }
    }

    #[test]
    fn v2_slab_from_parts_on_old_kernels() {
        let raw = parse_flat_keyed("anon 1\nslab_reclaimable 3\nslab_unreclaimable 4\n").unwrap();
        let s = MemoryStat::from_v2(raw);
        assert_eq!(s.slab, Some(7));
        assert_eq!(
            s.kernel, None,
            "kernel field missing before 5.18 stays None"
        );
    }
}
