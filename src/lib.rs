//! The N-API surface of oomguard. Everything below the `#[napi]` items is
//! plain Rust in the modules, tested with `cargo test`.

#![deny(clippy::all)]

pub mod diagnose;
pub mod error;
pub mod locate;
pub mod parse;
pub mod reader;
pub mod stat;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use indexmap::IndexMap;
use napi::bindgen_prelude::*;
use napi::{Env, Unknown, ValueType};
use napi_derive::napi;
use once_cell::sync::Lazy;

use diagnose::{derive, diagnose, V8Numbers};
use reader::{PressureScope, Reader, Snapshot};

/// One reader per root, each keeping its files open between calls.
static READERS: Lazy<Mutex<HashMap<PathBuf, Reader>>> = Lazy::new(|| Mutex::new(HashMap::new()));
/// Readers for fixture roots are cheap to rebuild; bound how many stay open.
const MAX_READERS: usize = 16;

fn with_reader<T>(root: PathBuf, f: impl FnOnce(&mut Reader) -> T) -> T {
    let mut map = READERS.lock().unwrap_or_else(|p| p.into_inner());
    if !map.contains_key(&root) && map.len() >= MAX_READERS {
        let victim = map.keys().find(|k| k.as_os_str() != "/").cloned();
        if let Some(v) = victim {
            map.remove(&v);
        }
    }
    let reader = map.entry(root.clone()).or_insert_with(|| Reader::new(root));
    f(reader)
}

fn f(v: Option<u64>) -> Option<f64> {
    v.map(|v| v as f64)
}

// ---------------------------------------------------------------------------
// Input validation: bad input from JS is a TypeError or RangeError naming it.

fn type_error(env: &Env, msg: String) -> Error {
    let _ = env.throw_type_error(&msg, Some("ERR_INVALID_ARG_TYPE"));
    Error::new(Status::PendingException, msg)
}

fn range_error(env: &Env, msg: String) -> Error {
    let _ = env.throw_range_error(&msg, Some("ERR_OUT_OF_RANGE"));
    Error::new(Status::PendingException, msg)
}

fn describe(t: ValueType) -> &'static str {
    match t {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "a boolean",
        ValueType::Number => "a number",
        ValueType::String => "a string",
        ValueType::Symbol => "a symbol",
        ValueType::Object => "an object",
        ValueType::Function => "a function",
        ValueType::External => "an external",
        _ => "a bigint or other value",
    }
}

/// `None` for null/undefined, the object otherwise, a TypeError for anything else.
fn as_object<'e>(env: &Env, v: Option<Unknown<'e>>, name: &str) -> Result<Option<Object<'e>>> {
    let Some(v) = v else { return Ok(None) };
    match v.get_type()? {
        ValueType::Undefined | ValueType::Null => Ok(None),
        ValueType::Object => Ok(Some(unsafe { v.cast::<Object>()? })),
        t => Err(type_error(env, format!("{name} must be an object, got {}", describe(t)))),
    }
}

/// A byte count: absent is None; it must be a finite, non-negative number.
fn byte_field(env: &Env, obj: &Object, key: &str, owner: &str) -> Result<Option<f64>> {
    let v: Unknown = obj.get_named_property_unchecked(key)?;
    match v.get_type()? {
        ValueType::Undefined => Ok(None),
        ValueType::Number => {
            let n: f64 = unsafe { v.cast()? };
            if !n.is_finite() || n < 0.0 {
                Err(range_error(
                    env,
                    format!("{owner}.{key} must be a finite, non-negative number of bytes, got {n}"),
                ))
            } else {
                Ok(Some(n))
            }
        }
        t => Err(type_error(env, format!("{owner}.{key} must be a number of bytes, got {}", describe(t)))),
    }
}

fn root_option(env: &Env, options: Option<Unknown>) -> Result<PathBuf> {
    let Some(obj) = as_object(env, options, "options")? else {
        return Ok(PathBuf::from("/"));
    };
    let v: Unknown = obj.get_named_property_unchecked("root")?;
    match v.get_type()? {
        ValueType::Undefined => Ok(PathBuf::from("/")),
        ValueType::String => {
            let s: String = unsafe { v.cast()? };
            if s.is_empty() {
                return Err(range_error(env, "options.root must not be empty".into()));
            }
            if s.contains('\0') {
                return Err(range_error(env, "options.root must not contain NUL bytes".into()));
            }
            let p = PathBuf::from(s);
            Ok(if p.is_absolute() {
                p
            } else {
                std::env::current_dir().map(|c| c.join(&p)).unwrap_or(p)
            })
        }
        t => Err(type_error(env, format!("options.root must be a string, got {}", describe(t)))),
    }
}

fn v8_numbers(env: &Env, usage: Option<Unknown>) -> Result<V8Numbers> {
    let Some(obj) = as_object(env, usage, "usage")? else {
        return Ok(V8Numbers::default());
    };
    let g = |k: &str| byte_field(env, &obj, k, "usage");
    Ok(V8Numbers {
        rss: g("rss")?,
        heap_total: g("heapTotal")?,
        heap_used: g("heapUsed")?,
        external: g("external")?,
        array_buffers: g("arrayBuffers")?,
        heap_size_limit: g("heapSizeLimit")?,
    })
}

// ---------------------------------------------------------------------------
// Output types. Doc comments become the JSDoc of index.d.ts.

/// The V8 and process numbers passed in: `process.memoryUsage()` plus
/// `heapSizeLimit` from `v8.getHeapStatistics().heap_size_limit`. All bytes.
#[napi(object)]
pub struct MemoryUsageInput {
    /// Resident set size of the process, bytes (`process.memoryUsage().rss`).
    pub rss: Option<f64>,
    /// V8 heap reserved, bytes.
    pub heap_total: Option<f64>,
    /// V8 heap in use, bytes.
    pub heap_used: Option<f64>,
    /// Memory of C++ objects bound to JS objects, including ArrayBuffers, bytes.
    pub external: Option<f64>,
    /// ArrayBuffer and SharedArrayBuffer backing stores (all Buffers), bytes.
    pub array_buffers: Option<f64>,
    /// V8's heap limit (`v8.getHeapStatistics().heap_size_limit`), bytes.
    pub heap_size_limit: Option<f64>,
}

/// Options shared by the readers.
#[napi(object)]
pub struct MetricsOptions {
    /// A directory that stands in for `/` (a fixture tree). Default `/`.
    pub root: Option<String>,
}

/// Where the process's memory cgroup is.
#[napi(object, use_nullable = true)]
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

/// `memory.stat` in the cgroup v2 vocabulary, bytes unless noted. On v1 the
/// hierarchical `total_*` fields are used (`total_rss` is `anon`,
/// `total_cache` is `file`). A field the kernel did not print is `null`.
#[napi(object, use_nullable = true)]
pub struct MemoryStat {
    /// Anonymous memory (heap, stacks, Buffers): v2 `anon`, v1 `total_rss`.
    pub anon: Option<f64>,
    /// Page cache including tmpfs/shmem: v2 `file`, v1 `total_cache`.
    pub file: Option<f64>,
    /// Kernel memory: v2 `kernel`, v1 `memory.kmem.usage_in_bytes`.
    pub kernel: Option<f64>,
    /// Kernel stacks: v2 `kernel_stack`.
    pub kernel_stack: Option<f64>,
    /// Page tables: v2 `pagetables`.
    pub pagetables: Option<f64>,
    /// Socket buffers: v2 `sock`, v1 `memory.kmem.tcp.usage_in_bytes`.
    pub sock: Option<f64>,
    /// tmpfs, /dev/shm and shared anonymous memory: v2 `shmem`, v1 `total_shmem`.
    pub shmem: Option<f64>,
    /// Mapped files: v2 `file_mapped`, v1 `total_mapped_file`.
    pub file_mapped: Option<f64>,
    /// Dirty page cache: v2 `file_dirty`, v1 `total_dirty`.
    pub file_dirty: Option<f64>,
    /// Page cache under writeback: v2 `file_writeback`, v1 `total_writeback`.
    pub file_writeback: Option<f64>,
    /// Transparent huge pages of anonymous memory: v2 `anon_thp`, v1 `total_rss_huge`.
    pub anon_thp: Option<f64>,
    /// v2 `inactive_anon`, v1 `total_inactive_anon`.
    pub inactive_anon: Option<f64>,
    /// v2 `active_anon`, v1 `total_active_anon`.
    pub active_anon: Option<f64>,
    /// Reclaimable page cache; subtracted from usage for the working set.
    /// v2 `inactive_file`, v1 `total_inactive_file`.
    pub inactive_file: Option<f64>,
    /// v2 `active_file`, v1 `total_active_file`.
    pub active_file: Option<f64>,
    /// v2 `unevictable`, v1 `total_unevictable`.
    pub unevictable: Option<f64>,
    /// Slab: v2 `slab` (v1 has none).
    pub slab: Option<f64>,
    /// v2 `slab_reclaimable`.
    pub slab_reclaimable: Option<f64>,
    /// v2 `slab_unreclaimable`.
    pub slab_unreclaimable: Option<f64>,
    /// Page faults (a count): v2 `pgfault`, v1 `total_pgfault`.
    pub pgfault: Option<f64>,
    /// Major page faults (a count): v2 `pgmajfault`, v1 `total_pgmajfault`.
    pub pgmajfault: Option<f64>,
    /// Every line of `memory.stat` as the kernel printed it, in its order and
    /// its own names (v1 prints both local and `total_*` fields). Values at or
    /// above the v1 unlimited value (`9223372036854771712`) are `null`.
    pub raw: IndexMap<String, Option<f64>>,
}

/// Memory events (counts since the cgroup was created). v2 `memory.events`;
/// v1 `memory.oom_control` and `memory.failcnt`. `null` where the kernel has no such counter.
#[napi(object, use_nullable = true)]
pub struct MemoryEvents {
    /// v2 `low`: reclaimed below memory.low.
    pub low: Option<f64>,
    /// v2 `high`: throttled over memory.high.
    pub high: Option<f64>,
    /// v2 `max`: usage reached memory.max.
    pub max: Option<f64>,
    /// v2 `oom`: the cgroup ran out of memory.
    pub oom: Option<f64>,
    /// Processes OOM-killed in this cgroup: v2 `memory.events` `oom_kill`,
    /// v1 `memory.oom_control` `oom_kill`.
    pub oom_kill: Option<f64>,
    /// v2 `oom_group_kill`.
    pub oom_group_kill: Option<f64>,
    /// v1 `memory.oom_control` `under_oom`.
    pub under_oom: Option<f64>,
    /// v1 `memory.failcnt`: times usage hit the limit.
    pub failcnt: Option<f64>,
}

/// One PSI line.
#[napi(object, use_nullable = true)]
pub struct PressureLine {
    /// Percent of time stalled, 10 s average.
    pub avg10: f64,
    /// Percent of time stalled, 60 s average.
    pub avg60: f64,
    /// Percent of time stalled, 300 s average.
    pub avg300: f64,
    /// Total stall time, microseconds.
    pub total_us: f64,
}

/// Memory pressure (PSI).
#[napi(object, use_nullable = true)]
pub struct MemoryPressure {
    /// `cgroup`: the cgroup's v2 `memory.pressure`; `system`: `/proc/pressure/memory`.
    #[napi(ts_type = "'cgroup' | 'system'")]
    pub scope: String,
    /// Some tasks stalled on memory.
    pub some: PressureLine,
    /// All tasks stalled on memory.
    pub full: Option<PressureLine>,
}

/// The V8 numbers used.
#[napi(object, use_nullable = true)]
pub struct V8Metrics {
    /// `process.memoryUsage().rss`, bytes.
    pub rss_bytes: Option<f64>,
    /// `heapTotal`, bytes.
    pub heap_total_bytes: Option<f64>,
    /// `heapUsed`, bytes.
    pub heap_used_bytes: Option<f64>,
    /// `external`, bytes.
    pub external_bytes: Option<f64>,
    /// `arrayBuffers`, bytes.
    pub array_buffers_bytes: Option<f64>,
    /// `v8.getHeapStatistics().heap_size_limit`, bytes.
    pub heap_size_limit_bytes: Option<f64>,
}

/// A finding, with a stable code and the numbers behind it.
#[napi(object, use_nullable = true)]
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
    /// The `--max-old-space-size` value (MiB) that puts the heap limit at about 75% of the limit.
    pub recommended_max_old_space_size_mib: Option<f64>,
    /// OOM kills counted by the kernel in this cgroup.
    pub oom_kill_count: Option<f64>,
    /// The file or directory concerned.
    pub path: Option<String>,
}

/// One reading of the process's memory as the kernel and V8 see it.
#[napi(object, use_nullable = true)]
pub struct MemoryMetrics {
    /// When this was read, milliseconds since the epoch.
    pub timestamp_ms: f64,
    /// Where `limitBytes` came from: the cgroup (`cgroup-v1`, `cgroup-v2`) or,
    /// with no cgroup limit anywhere, the host's MemTotal (`host`).
    #[napi(ts_type = "'cgroup-v1' | 'cgroup-v2' | 'host' | null")]
    pub source: Option<String>,
    /// The limit everything is measured against, bytes: the effective cgroup
    /// limit, else MemTotal.
    pub limit_bytes: Option<f64>,
    /// The effective cgroup limit: the smallest on the path up the hierarchy
    /// (v2 `memory.max`; v1 `memory.limit_in_bytes` and `hierarchical_memory_limit`).
    /// `null` when unlimited.
    pub cgroup_limit_bytes: Option<f64>,
    /// This cgroup's own limit (without its parents'), bytes; `null` when unlimited.
    pub leaf_limit_bytes: Option<f64>,
    /// v2: the smallest `memory.high` up the hierarchy (throttling starts there), bytes.
    pub high_bytes: Option<f64>,
    /// Memory charged to the cgroup: v2 `memory.current`, v1 `memory.usage_in_bytes`.
    pub usage_bytes: Option<f64>,
    /// Usage minus inactive page cache (`inactive_file`), never below 0; what
    /// kubelet and cAdvisor call the working set.
    pub working_set_bytes: Option<f64>,
    /// The number ratios use: the working set, else usage, else the host's
    /// MemTotal - MemAvailable.
    pub basis_bytes: Option<f64>,
    /// `basisBytes / limitBytes`.
    pub usage_ratio: Option<f64>,
    /// `limitBytes - basisBytes`.
    pub headroom_bytes: Option<f64>,
    /// V8 `heap_size_limit / limitBytes`; at or above 1 the kernel kills before V8 gives up.
    pub heap_limit_ratio: Option<f64>,
    /// Where the cgroup is; `null` without a memory cgroup.
    pub cgroup: Option<CgroupInfo>,
    /// `memory.stat`; `null` without a memory cgroup or when unreadable.
    pub stat: Option<MemoryStat>,
    /// Event counters; `null` without a memory cgroup or when unreadable.
    pub events: Option<MemoryEvents>,
    /// PSI; `null` where the kernel has none.
    pub pressure: Option<MemoryPressure>,
    /// Process RSS from `/proc/self/statm`, bytes.
    pub rss_bytes: Option<f64>,
    /// `MemTotal` from `/proc/meminfo`, bytes.
    pub host_total_bytes: Option<f64>,
    /// `MemAvailable` from `/proc/meminfo`, bytes.
    pub host_available_bytes: Option<f64>,
    /// The V8 numbers used.
    pub v8: V8Metrics,
    /// Findings, most important first.
    pub diagnoses: Vec<Diagnosis>,
}

fn pressure_line(p: &parse::PressureLine) -> PressureLine {
    PressureLine {
        avg10: p.avg10,
        avg60: p.avg60,
        avg300: p.avg300,
        total_us: p.total_us as f64,
    }
}

fn to_js(snap: &Snapshot, v8: &V8Numbers) -> MemoryMetrics {
    let derived = derive(snap, v8);
    let limit = snap.limit();
    let mut diagnoses: Vec<Diagnosis> = diagnose(snap, v8)
        .into_iter()
        .map(|d| Diagnosis {
            code: d.code.to_string(),
            severity: d.severity.as_str().to_string(),
            message: d.message,
            limit_bytes: d.limit_bytes,
            heap_size_limit_bytes: d.heap_size_limit_bytes,
            recommended_max_old_space_size_mib: d.recommended_max_old_space_size_mib,
            oom_kill_count: d.oom_kill_count,
            path: d.path,
        })
        .collect();
    diagnoses.sort_by_key(|d| match d.severity.as_str() {
        "error" => 0,
        "warning" => 1,
        _ => 2,
    });
    MemoryMetrics {
        timestamp_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0),
        source: limit.map(|(_, s)| s.as_str().to_string()),
        limit_bytes: limit.map(|(l, _)| l as f64),
        cgroup_limit_bytes: f(snap.cgroup_limit),
        leaf_limit_bytes: f(snap.leaf_limit),
        high_bytes: f(snap.cgroup_high),
        usage_bytes: f(snap.usage),
        working_set_bytes: f(snap.working_set),
        basis_bytes: f(snap.basis()),
        usage_ratio: derived.usage_ratio,
        headroom_bytes: derived.headroom_bytes,
        heap_limit_ratio: derived.heap_limit_ratio,
        cgroup: snap.location.as_ref().map(|l| CgroupInfo {
            version: l.version.number(),
            path: l.cgroup_path.clone(),
            dir: l.dir.display().to_string(),
            mount_point: l.mount_point.display().to_string(),
            resolved: l.resolved,
        }),
        stat: snap.stat.as_ref().map(|s| MemoryStat {
            anon: f(s.anon),
            file: f(s.file),
            kernel: f(s.kernel),
            kernel_stack: f(s.kernel_stack),
            pagetables: f(s.pagetables),
            sock: f(s.sock),
            shmem: f(s.shmem),
            file_mapped: f(s.file_mapped),
            file_dirty: f(s.file_dirty),
            file_writeback: f(s.file_writeback),
            anon_thp: f(s.anon_thp),
            inactive_anon: f(s.inactive_anon),
            active_anon: f(s.active_anon),
            inactive_file: f(s.inactive_file),
            active_file: f(s.active_file),
            unevictable: f(s.unevictable),
            slab: f(s.slab),
            slab_reclaimable: f(s.slab_reclaimable),
            slab_unreclaimable: f(s.slab_unreclaimable),
            pgfault: f(s.pgfault),
            pgmajfault: f(s.pgmajfault),
            raw: s
                .raw
                .iter()
                .map(|(k, v)| (k.clone(), f(parse::limit_from_value(*v))))
                .collect(),
        }),
        events: snap.events.as_ref().map(|e| MemoryEvents {
            low: f(e.low),
            high: f(e.high),
            max: f(e.max),
            oom: f(e.oom),
            oom_kill: f(e.oom_kill),
            oom_group_kill: f(e.oom_group_kill),
            under_oom: f(e.under_oom),
            failcnt: f(e.failcnt),
        }),
        pressure: snap.pressure.as_ref().map(|(p, scope)| MemoryPressure {
            scope: match scope {
                PressureScope::Cgroup => "cgroup",
                PressureScope::System => "system",
            }
            .to_string(),
            some: pressure_line(&p.some),
            full: p.full.as_ref().map(pressure_line),
        }),
        rss_bytes: f(snap.rss),
        host_total_bytes: f(snap.mem_total),
        host_available_bytes: f(snap.mem_available),
        v8: V8Metrics {
            rss_bytes: v8.rss,
            heap_total_bytes: v8.heap_total,
            heap_used_bytes: v8.heap_used,
            external_bytes: v8.external,
            array_buffers_bytes: v8.array_buffers,
            heap_size_limit_bytes: v8.heap_size_limit,
        },
        diagnoses,
    }
}

/// Read the process's memory as the kernel counts it (its memory cgroup) and
/// combine it with the V8 numbers passed in. Never throws because a kernel
/// file is missing or unreadable: that part is `null` and a diagnosis says why.
/// Throws `TypeError`/`RangeError` naming the field for bad input.
///
/// The package's JavaScript wrapper fills `usage` from `process.memoryUsage()`
/// and `v8.getHeapStatistics()` when it is left out.
#[napi(ts_args_type = "usage?: MemoryUsageInput | null, options?: MetricsOptions | null")]
pub fn get_memory_metrics(env: Env, usage: Option<Unknown>, options: Option<Unknown>) -> Result<MemoryMetrics> {
    let v8 = v8_numbers(&env, usage)?;
    let root = root_option(&env, options)?;
    let snap = with_reader(root, |r| r.snapshot());
    Ok(to_js(&snap, &v8))
}
