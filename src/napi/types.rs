//! Output types the native side builds. Doc comments become the JSDoc of
//! index.d.ts. The reading's shape (MemoryMetrics and its sections) is not
//! here: it is filled as slots (src/napi/slots.rs) and its public type is
//! written once, in lib/index.d.ts.

use napi_derive::napi;

use crate::diagnose;

/// Where the process's memory cgroup is.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct CgroupInfo {
    /// Version of the memory controller: 1 (legacy or hybrid) or 2 (unified).
    pub version: u32,
    /// The cgroup path as `/proc/self/cgroup` prints it.
    pub path: String,
    /// The directory the files are read from.
    pub dir: String,
    /// The cgroup filesystem's mount point (the top of the visible hierarchy).
    pub mount_point: String,
    /// `false` when `dir` could not be derived and the mount point is read instead.
    pub resolved: bool,
}

/// One process of the memory cgroup.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct CgroupProcess {
    /// Process id, as this process's pid namespace numbers it (`cgroup.procs`).
    pub pid: u32,
    /// The kernel's name for it (`/proc/<pid>/comm`, at most 15 bytes); `null` when unreadable.
    pub command: Option<String>,
    /// Resident set size, bytes (`/proc/<pid>/statm`); `null` when
    /// unreadable (the process exited, or `/proc` hides other users'
    /// processes). Counts mapped files charged elsewhere: no share of the
    /// working set is taken of it.
    pub rss_bytes: Option<f64>,
    /// Resident anonymous memory, bytes (statm's resident minus shared: the
    /// kernel's `RssAnon`): memory this process put in the cgroup, part of
    /// its working set. The largest come first by it. `null` as `rssBytes`.
    pub anon_bytes: Option<f64>,
}

/// The processes in the memory cgroup (`cgroup.procs` of this process's own
/// cgroup; processes in child cgroups are charged here too but not listed).
/// Scanned at most once a second: `timestampMs` says when.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct CgroupProcesses {
    /// How many processes `cgroup.procs` lists (on v2 it lists those outside
    /// this process's pid namespace as 0: counted here, never in `largest`).
    pub count: u32,
    /// The largest by resident anonymous memory (then resident set),
    /// largest first, at most 16; unknown sizes last.
    pub largest: Vec<CgroupProcess>,
    /// When they were read, milliseconds since the epoch.
    pub timestamp_ms: f64,
}

/// A finding, with a stable code and the numbers behind it.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct Diagnosis {
    /// Stable identifier, e.g. `HEAP_LIMIT_ABOVE_CONTAINER_LIMIT`, `NO_LIMIT`,
    /// `PREVIOUS_OOM_KILL`, `CGROUP_UNRESOLVED`, `CGROUP_FILE_UNREADABLE`, `NO_MEMORY_CGROUP`.
    pub code: String,
    #[napi(ts_type = "'info' | 'warning' | 'error'")]
    pub severity: String,
    /// One sentence for a person.
    pub message: String,
    /// The effective limit the finding is about, bytes.
    pub limit_bytes: Option<f64>,
    /// V8's heap limit, bytes.
    pub heap_size_limit_bytes: Option<f64>,
    /// The `--max-old-space-size` value (MiB) that puts the heap limit at about
    /// 75% of the limit (the target of lib/core/heap-band.json), by the model.
    pub recommended_max_old_space_size_mib: Option<f64>,
    /// The `--max-semi-space-size` value (MiB) to use with it, where the
    /// young generation node would choose is too big (a small limit node
    /// does not see on its own cgroup); else `null`.
    pub recommended_max_semi_space_size_mib: Option<f64>,
    /// The `--max-old-space-size-percentage` value to use instead, on Node
    /// versions that have it (22.21+, 24.6+) when node sees the limit on its
    /// own cgroup; else `null`.
    pub recommended_max_old_space_size_percentage: Option<f64>,
    /// The exact `NODE_OPTIONS` value to use, fixed-MiB form (any Node
    /// version), e.g. `--max-old-space-size=189`.
    pub node_options: Option<String>,
    /// The exact `NODE_OPTIONS` value with `--max-old-space-size-percentage`, or `null`.
    pub percentage_node_options: Option<String>,
    /// The heap limit `nodeOptions` gives by oomguard's model of V8's heap
    /// sizing, bytes: a model, not a measurement (`oomguard doctor` measures).
    pub modelled_heap_size_limit_bytes: Option<f64>,
    /// OOM kills counted by the kernel in this cgroup.
    pub oom_kill_count: Option<f64>,
    /// The file or directory concerned.
    pub path: Option<String>,
}

impl From<&diagnose::Diagnosis> for Diagnosis {
    fn from(d: &diagnose::Diagnosis) -> Self {
        Diagnosis {
            code: d.code.to_string(),
            severity: d.severity.as_str().to_string(),
            message: d.message.clone(),
            limit_bytes: d.limit_bytes,
            heap_size_limit_bytes: d.heap_size_limit_bytes,
            recommended_max_old_space_size_mib: d.recommended_max_old_space_size_mib,
            recommended_max_semi_space_size_mib: d.recommended_max_semi_space_size_mib,
            recommended_max_old_space_size_percentage: d.recommended_max_old_space_size_percentage,
            node_options: d.node_options.clone(),
            percentage_node_options: d.percentage_node_options.clone(),
            modelled_heap_size_limit_bytes: d.modelled_heap_size_limit_bytes,
            oom_kill_count: d.oom_kill_count,
            path: d.path.clone(),
        }
    }
}
