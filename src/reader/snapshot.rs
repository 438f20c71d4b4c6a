//! What a read gives: the [`Snapshot`] of every number, where its limit
//! came from, and what failed.

use super::*;

/// Which PSI file the pressure numbers came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PressureScope {
    /// The cgroup's own `memory.pressure` (v2).
    Cgroup,
    /// `/proc/pressure/memory`: the whole machine (or VM).
    System,
}

/// Where the effective limit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSource {
    CgroupV1,
    CgroupV2,
    /// No cgroup limit anywhere: the host's MemTotal.
    Host,
}

impl LimitSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitSource::CgroupV1 => "cgroup-v1",
            LimitSource::CgroupV2 => "cgroup-v2",
            LimitSource::Host => "host",
        }
    }
}

/// Memory events: v2 `memory.events`; v1 `memory.oom_control` and `memory.failcnt`.
/// A counter the kernel did not print is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Events {
    pub low: Option<u64>,
    pub high: Option<u64>,
    pub max: Option<u64>,
    pub oom: Option<u64>,
    pub oom_kill: Option<u64>,
    pub oom_group_kill: Option<u64>,
    /// v1 `under_oom` (1 while the cgroup is in OOM and the killer is disabled).
    pub under_oom: Option<u64>,
    /// v1 `memory.failcnt`: how often usage hit the limit.
    pub failcnt: Option<u64>,
}

/// The ancestor that holds the effective limit (the smallest on the path
/// up, nearest the leaf on a tie) where the process's own cgroup does not:
/// a Kubernetes pod's cgroup above a container without a limit of its own,
/// Docker's `--cgroup-parent` with a limit. The kernel counts a failed
/// charge in the cgroup whose page counter failed, so there (the leaf's
/// counters stay 0), and what sits at that limit is this cgroup's charge,
/// siblings' included. Read in full snapshots only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitingCgroup {
    /// The cgroup path as `/proc/self/cgroup` would print it.
    pub path: String,
    pub dir: PathBuf,
    /// Its place up the hierarchy: 1 the parent, 2 the grandparent, ...
    pub depth: usize,
    /// v2 `memory.current`, v1 `memory.usage_in_bytes`.
    pub usage: Option<u64>,
    /// Usage minus its `memory.stat` inactive file (v1 `total_inactive_file`).
    pub working_set: Option<u64>,
    /// Its failed charges: v1 `memory.failcnt`, v2 `memory.events` `max`.
    pub failures: Option<u64>,
    /// v1 only: `memory.memsw.usage_in_bytes` (None without swap accounting).
    pub memsw_usage: Option<u64>,
    /// v1 only: its `memory.stat` `hierarchical_memsw_limit`, the smallest
    /// memory+swap limit from it up. None when unlimited or not accounted.
    pub memsw_limit: Option<u64>,
}

/// Everything read in one pass.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub location: Option<Location>,
    /// Effective cgroup limit: the smallest on the path up the hierarchy.
    pub cgroup_limit: Option<u64>,
    /// The process's own cgroup's limit (the leaf), for reporting.
    pub leaf_limit: Option<u64>,
    /// v2 only: the smallest `memory.high` on the path.
    pub cgroup_high: Option<u64>,
    /// The process's own cgroup's soft ceiling, the one libuv reads beside
    /// the limit: v2 `memory.high`, v1 `memory.soft_limit_in_bytes`.
    pub leaf_high: Option<u64>,
    pub usage: Option<u64>,
    pub working_set: Option<u64>,
    pub stat: Option<MemoryStat>,
    pub events: Option<Events>,
    pub pressure: Option<(Pressure, PressureScope)>,
    pub rss: Option<u64>,
    /// This process's resident anonymous memory (statm's resident minus
    /// shared), read with `rss`: what its share of the working set is of
    /// ([`procs`] says why not RSS).
    pub anon: Option<u64>,
    /// The most the cgroup was charged since it was created: v2
    /// `memory.peak` (5.19+), v1 `memory.max_usage_in_bytes`.
    pub peak: Option<u64>,
    /// Swap the cgroup uses: v2 `memory.swap.current`; v1
    /// `memory.memsw.usage_in_bytes - memory.usage_in_bytes` (never below 0).
    /// None where the kernel accounts no swap (no such files).
    pub swap: Option<u64>,
    /// The most swap the cgroup may use: v2 the smallest `memory.swap.max`
    /// up the hierarchy; v1 the smallest memory+swap limit up the hierarchy
    /// (`memory.stat` `hierarchical_memsw_limit`, the smallest
    /// `memory.memsw.limit_in_bytes`) minus the effective memory limit.
    /// 0 where the host has no swap space (`SwapTotal` 0 in
    /// `/proc/meminfo`), whatever the cgroup's files say: Docker's default
    /// memory+swap limit of twice the memory limit lets nothing swap there.
    /// None when unlimited or not accounted. (The v1 memory+swap limit
    /// itself stays in [`MemoryStat::hierarchical_memsw_limit`]: the memsw
    /// counter binds at it with or without swap space.)
    pub swap_limit: Option<u64>,
    pub mem_total: Option<u64>,
    pub mem_available: Option<u64>,
    /// The host's swap space, `SwapTotal` of `/proc/meminfo`.
    pub swap_total: Option<u64>,
    /// The cgroup that holds the effective limit, where that is an ancestor
    /// (see [`LimitingCgroup`]); None where the own cgroup holds it, where
    /// there is no limit, or where the one that holds it is not visible.
    pub limiting: Option<LimitingCgroup>,
    /// The processes in the cgroup (`cgroup.procs`), from the latest scan
    /// (at most [`procs::SCAN_EVERY`] old); None without a memory cgroup or
    /// when `cgroup.procs` could not be read.
    pub processes: Option<Arc<Processes>>,
    /// Files that should have been readable and were not (or did not parse).
    pub problems: Vec<Error>,
    /// Which of the numbers that limits and ratios depend on failed to read.
    pub failed: Failed,
    /// The process is in the cgroup v2 root: no usage or limit files exist,
    /// and the host's numbers stand in.
    pub v2_root: bool,
    /// Why the cgroup could not be located (the error, naming its file).
    pub locate_error: Option<String>,
    /// The file locating failed on (`/proc/self/cgroup` or `mountinfo` under the root).
    pub locate_error_path: Option<PathBuf>,
}

/// Reads that failed this time (not absent files: failures).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    /// A limit file up the hierarchy.
    pub limit: bool,
    /// The usage file.
    pub usage: bool,
    /// `memory.stat`.
    pub stat: bool,
}

impl Snapshot {
    /// The limit everything is measured against and where it came from:
    /// the effective cgroup limit, else (no limit anywhere) the host's
    /// MemTotal. None when a limit file could not be read: a guess would
    /// raise or silence alarms.
    pub fn limit(&self) -> Option<(u64, LimitSource)> {
        if self.failed.limit {
            return None;
        }
        match (self.cgroup_limit, &self.location) {
            (Some(l), Some(loc)) => Some((
                l,
                match loc.version {
                    CgroupVersion::V1 => LimitSource::CgroupV1,
                    CgroupVersion::V2 => LimitSource::CgroupV2,
                },
            )),
            _ => self.mem_total.map(|t| (t, LimitSource::Host)),
        }
    }

    /// The number ratios are computed from: the cgroup's working set; the
    /// host's used memory (MemTotal - MemAvailable) where there is no cgroup
    /// to measure (no memory controller, the v2 root). None when the files
    /// it needs failed to read: never silently another number.
    pub fn working_set_basis(&self) -> Option<u64> {
        if self.has_cgroup_usage() {
            self.working_set
        } else {
            self.host_used()
        }
    }

    /// The cgroup's usage where it has one, else the host's used memory.
    pub fn usage_basis(&self) -> Option<u64> {
        if self.has_cgroup_usage() {
            self.usage
        } else {
            self.host_used()
        }
    }

    /// The memory Node sizes its default heap from: what libuv's
    /// `uv_get_constrained_memory()` returns (the smaller of this cgroup's own
    /// high and max, v1 soft limit and limit; parents are not looked at),
    /// capped at the host's MemTotal as Node does, else MemTotal.
    pub fn constrained_memory(&self) -> Option<u64> {
        let own = [self.leaf_high, self.leaf_limit]
            .into_iter()
            .flatten()
            .min();
        match (own, self.mem_total) {
            (Some(c), Some(t)) => Some(c.min(t)),
            (c, t) => c.or(t),
        }
    }

    pub(crate) fn has_cgroup_usage(&self) -> bool {
        self.location.is_some() && !self.v2_root
    }

    fn host_used(&self) -> Option<u64> {
        match (self.mem_total, self.mem_available) {
            (Some(t), Some(a)) => Some(t.saturating_sub(a)),
            _ => None,
        }
    }
}
