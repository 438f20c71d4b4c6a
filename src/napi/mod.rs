//! The bridge: the N-API surface of oomguard. These functions are the
//! building blocks lib/ (the JavaScript API) calls; everything they call is
//! the plain-Rust core in the crate's other modules.

pub mod slots;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi::Env;
use napi_derive::napi;
use once_cell::sync::Lazy;

use crate::diagnose::{self, derive, diagnose};
use crate::reader::{LimitSource, PressureScope, Reader, Snapshot};
use crate::{guard, locate, pin, procs, stall, watch};

// ---------------------------------------------------------------------------
// Readers: one per root, each keeping its files open between calls.

/// The structural half of a reading: strings and lists that change rarely.
/// JavaScript fetches it again only when `generation` moves.
#[derive(Debug, Clone, PartialEq)]
struct CachedShape {
    source: Option<LimitSource>,
    location: Option<locate::Location>,
    raw_keys: Vec<String>,
    pressure_scope: Option<PressureScope>,
    diagnoses: Vec<diagnose::Diagnosis>,
    /// The latest process scan; a new scan is a new shape.
    processes: Option<std::sync::Arc<procs::Processes>>,
}

fn same_scan(
    a: &Option<std::sync::Arc<procs::Processes>>,
    b: &Option<std::sync::Arc<procs::Processes>>,
) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

struct Entry {
    reader: Reader,
    shape: Option<CachedShape>,
    generation: u32,
}

impl Entry {
    /// Bring the cached shape up to date with `snap`; returns the generation.
    fn observe(&mut self, snap: &Snapshot, diagnoses: Vec<diagnose::Diagnosis>) -> u32 {
        let raw = snap.stat.as_ref().map(|s| s.raw.as_slice()).unwrap_or(&[]);
        let same = self.shape.as_ref().is_some_and(|sh| {
            sh.source == snap.limit().map(|(_, s)| s)
                && sh.location == snap.location
                && sh.pressure_scope == snap.pressure.as_ref().map(|(_, s)| *s)
                && sh.raw_keys.len() == raw.len()
                && sh.raw_keys.iter().zip(raw).all(|(a, (b, _))| a == b)
                && sh.diagnoses == diagnoses
                && same_scan(&sh.processes, &snap.processes)
        });
        if !same {
            self.shape = Some(CachedShape {
                source: snap.limit().map(|(_, s)| s),
                location: snap.location.clone(),
                raw_keys: raw.iter().map(|(k, _)| k.clone()).collect(),
                pressure_scope: snap.pressure.as_ref().map(|(_, s)| *s),
                diagnoses,
                processes: snap.processes.clone(),
            });
            self.generation = self.generation.wrapping_add(1);
        }
        self.generation
    }
}

impl Entry {
    fn new(root: PathBuf) -> Self {
        Entry {
            reader: Reader::new(root),
            shape: None,
            generation: 0,
        }
    }
}

/// One entry per root. The map's lock is held only to find or insert an
/// entry, never while a reader reads: a thread reading one root never makes
/// another wait on a different root.
type Readers = HashMap<PathBuf, Arc<Mutex<Entry>>>;
static READERS: Lazy<Mutex<Readers>> = Lazy::new(|| Mutex::new(HashMap::new()));
/// Readers for fixture roots are cheap to rebuild; bound how many stay open.
const MAX_READERS: usize = 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn root_path(root: Option<String>) -> PathBuf {
    PathBuf::from(root.unwrap_or_else(|| "/".to_string()))
}

fn entry_for(root: &Path) -> Arc<Mutex<Entry>> {
    let mut map = lock(&READERS);
    if let Some(e) = map.get(root) {
        return e.clone();
    }
    if map.len() >= MAX_READERS {
        let victim = map.keys().find(|k| k.as_os_str() != "/").cloned();
        if let Some(v) = victim {
            map.remove(&v);
        }
    }
    let entry = Arc::new(Mutex::new(Entry::new(root.to_path_buf())));
    map.insert(root.to_path_buf(), entry.clone());
    entry
}

/// A caught panic as the JS error an entry point throws.
fn internal_error(p: guard::Panic) -> Error {
    Error::new(Status::GenericFailure, p.to_string())
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------
// The native functions. The package's JavaScript layer (lib/) validates
// input and builds the public objects; these are its building blocks.

/// Property paths of the slots `sample()` fills, in slot order (internal).
#[napi]
pub fn slot_names() -> Result<Vec<&'static str>> {
    guard::catch("slotNames", || slots::NAMES.to_vec()).map_err(internal_error)
}

/// Read the cgroup and process files of `root` (default `/`) once and fill
/// `out` (internal layout: see `slotNames()`). The V8 numbers are read from
/// their slots of `out`, written by the caller beforehand. Returns the shape
/// generation: when it differs from the last one seen, call `describe()`.
#[napi]
pub fn sample(env: Env, mut out: Float64ArraySlice, root: Option<String>) -> Result<u32> {
    // SAFETY: this runs synchronously on the JS thread; no JavaScript can
    // touch the array until it returns.
    let buf: &mut [f64] = unsafe { out.as_mut() };
    if buf.len() < slots::RAW_START {
        return Err(Error::new(
            Status::InvalidArg,
            format!(
                "out must be a Float64Array of at least {} slots",
                slots::RAW_START
            ),
        ));
    }
    let root = root_path(root);
    let entry = entry_for(&root);
    let mut entry = lock(&entry);
    let result = guard::catch("sample", || {
        guard::failpoint(|| "sample".to_string());
        let node = running_node(&env);
        let v8 = slots::read_v8(buf);
        let snap = entry.reader.snapshot();
        slots::fill(buf, &snap, &derive(&snap, &v8), now_ms());
        // Stalled is a judgement over time: only the sampler makes it, for a
        // root one of its monitors watches with stall detection (else null).
        buf[slots::Slot::STALLED as usize] =
            watch::stalled(&root).map_or(f64::NAN, |s| f64::from(u8::from(s)));
        entry.observe(&snap, diagnose(&snap, &v8, node))
    });
    result.map_err(|p| {
        // The reader may be half-updated: start this root afresh.
        entry.reader = Reader::new(root);
        entry.shape = None;
        entry.generation = entry.generation.wrapping_add(1);
        internal_error(p)
    })
}

/// The running node's version, asked once (the heap model depends on it).
fn running_node(env: &Env) -> diagnose::NodeVersion {
    static ASKED: std::sync::Once = std::sync::Once::new();
    ASKED.call_once(|| {
        if let Ok(v) = env.get_node_version() {
            diagnose::set_running_node(diagnose::NodeVersion {
                major: v.major,
                minor: v.minor,
                patch: v.patch,
            });
        }
    });
    diagnose::running_node()
}

/// The heap advice for a limit, by oomguard's model of V8's heap sizing
/// (internal: the doctor starts from it, then measures).
#[napi]
pub fn heap_model(
    limit_bytes: f64,
    constrained_memory_bytes: f64,
    node_version: String,
) -> Result<HeapModel> {
    let node = diagnose::NodeVersion::parse(&node_version).ok_or_else(|| {
        Error::new(
            Status::InvalidArg,
            format!("nodeVersion must look like 24.19.0, got {node_version:?}"),
        )
    })?;
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !(positive(limit_bytes) && positive(constrained_memory_bytes)) {
        return Err(Error::new(
            Status::InvalidArg,
            "limitBytes and constrainedMemoryBytes must be positive numbers of bytes".to_string(),
        ));
    }
    guard::catch("heapModel", || {
        heap_model_of(limit_bytes, constrained_memory_bytes, node)
    })
    .map_err(internal_error)
}

fn heap_model_of(
    limit_bytes: f64,
    constrained_memory_bytes: f64,
    node: diagnose::NodeVersion,
) -> HeapModel {
    let a = diagnose::heap_advice(limit_bytes, constrained_memory_bytes, node);
    let constrained_mib = constrained_memory_bytes / (1024.0 * 1024.0);
    HeapModel {
        young_generation_mib: diagnose::young_generation_mib(constrained_mib, node),
        default_heap_limit_mib: diagnose::default_heap_limit_mib(constrained_mib, node),
        max_old_space_size_mib: a.max_old_space_size_mib,
        max_semi_space_size_mib: a.max_semi_space_size_mib,
        heap_limit_mib: a.heap_limit_mib,
        node_options: a.node_options(),
        max_old_space_size_percentage: a.max_old_space_size_percentage,
        percentage_heap_limit_mib: a.percentage_heap_limit_mib,
        percentage_node_options: a.percentage_node_options(),
        has_old_space_percentage: node.has_old_space_percentage(),
    }
}

/// What `heapModel()` returns (internal). MiB throughout.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct HeapModel {
    /// The young generation node adds to `--max-old-space-size`.
    pub young_generation_mib: f64,
    /// The heap limit node has without heap flags.
    pub default_heap_limit_mib: f64,
    pub max_old_space_size_mib: f64,
    pub max_semi_space_size_mib: Option<f64>,
    /// The heap limit `nodeOptions` gives, by the model.
    pub heap_limit_mib: f64,
    pub node_options: String,
    pub max_old_space_size_percentage: Option<f64>,
    pub percentage_heap_limit_mib: Option<f64>,
    pub percentage_node_options: Option<String>,
    /// Whether this Node version has `--max-old-space-size-percentage`.
    pub has_old_space_percentage: bool,
}

/// The strings and lists of the last `sample()` of `root` (internal).
#[napi]
pub fn describe(root: Option<String>) -> Result<Shape> {
    let entry = entry_for(&root_path(root));
    let entry = lock(&entry);
    guard::catch("describe", || match &entry.shape {
        Some(sh) => Shape::from(sh, entry.generation),
        None => Shape {
            generation: entry.generation,
            source: None,
            cgroup: None,
            raw_keys: Vec::new(),
            pressure_scope: None,
            diagnoses: Vec::new(),
            processes: None,
        },
    })
    .map_err(internal_error)
}

/// What `describe()` returns (internal).
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct Shape {
    pub generation: u32,
    pub source: Option<String>,
    pub cgroup: Option<CgroupInfo>,
    pub raw_keys: Vec<String>,
    pub pressure_scope: Option<String>,
    pub diagnoses: Vec<Diagnosis>,
    pub processes: Option<CgroupProcesses>,
}

impl Shape {
    fn from(sh: &CachedShape, generation: u32) -> Self {
        let mut diagnoses: Vec<Diagnosis> = sh.diagnoses.iter().map(Diagnosis::from).collect();
        diagnoses.sort_by_key(|d| match d.severity.as_str() {
            "error" => 0,
            "warning" => 1,
            _ => 2,
        });
        Shape {
            generation,
            source: sh.source.map(|s| s.as_str().to_string()),
            cgroup: sh.location.as_ref().map(|l| CgroupInfo {
                version: l.version.number(),
                path: l.cgroup_path.clone(),
                dir: l.dir.display().to_string(),
                mount_point: l.mount_point.display().to_string(),
                resolved: l.resolved,
            }),
            raw_keys: sh.raw_keys.clone(),
            pressure_scope: sh.pressure_scope.map(|s| match s {
                PressureScope::Cgroup => "cgroup".to_string(),
                PressureScope::System => "system".to_string(),
            }),
            diagnoses,
            processes: sh.processes.as_ref().map(|p| CgroupProcesses {
                count: p.count as u32,
                largest: p
                    .largest
                    .iter()
                    .map(|q| CgroupProcess {
                        pid: q.pid,
                        command: q.command.clone(),
                        rss_bytes: q.rss.map(|v| v as f64),
                    })
                    .collect(),
                timestamp_ms: p.timestamp_ms,
            }),
        }
    }
}

// ---------------------------------------------------------------------------
// The watcher's native half (internal; lib/watch.js is the public API).

/// A monitor's settings. The JavaScript layer validates them for its error
/// messages; `watch::Config::new` checks them again and refuses what the
/// sampler could not work with.
#[napi(object, object_to_js = false)]
pub struct WatchConfig {
    pub thresholds: Vec<f64>,
    pub hysteresis: f64,
    #[napi(ts_type = "'workingSet' | 'usage' | 'rss'")]
    pub basis: String,
    pub min_interval_ms: f64,
    pub max_interval_ms: f64,
    pub last_words_stderr: bool,
    pub last_words_path: Option<String>,
    pub root: Option<String>,
    /// Stall detection; absent or null: off.
    pub stall: Option<StallOptions>,
    /// What to do about a stall; absent or null: report only.
    pub on_stall: Option<OnStallOptions>,
}

/// Stall detection settings (internal; lib/options.js documents them).
#[napi(object, object_to_js = false)]
pub struct StallOptions {
    /// How long the signs of a stall must hold, ms.
    pub sustain_ms: f64,
    /// The working set must be within this share of the limit.
    pub margin: f64,
}

/// The action on a stall (internal).
#[napi(object, object_to_js = false)]
pub struct OnStallOptions {
    #[napi(ts_type = "'exit'")]
    pub action: String,
    /// End the process (exit status 75) when a stall has lasted this long, ms.
    pub after_ms: f64,
}

/// Pressure over a stall's last window (internal).
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct NativeStallPressure {
    #[napi(ts_type = "'cgroup' | 'system'")]
    pub scope: String,
    #[napi(ts_type = "'some' | 'full'")]
    pub kind: String,
    pub ratio: f64,
    pub avg10: f64,
}

/// What a `stall` / `stall-end` event carries (internal).
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct NativeStall {
    pub duration_ms: f64,
    pub working_set_ratio: Option<f64>,
    pub failures_per_sec: Option<f64>,
    pub failure_counter: Option<String>,
    pub pressure: Option<NativeStallPressure>,
    pub refaults_per_sec: Option<f64>,
    pub cause: String,
    pub reason: String,
}

/// An event from the sampler thread (internal; lib/watch.js adds the V8 numbers).
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct NativeWatchEvent {
    pub level: u32,
    pub threshold: Option<f64>,
    pub ratio: Option<f64>,
    pub basis_bytes: Option<f64>,
    pub limit_bytes: Option<f64>,
    pub headroom_bytes: Option<f64>,
    pub growth_bytes_per_sec: Option<f64>,
    pub time_to_limit_ms: Option<f64>,
    pub timestamp_ms: f64,
    pub message: Option<String>,
    /// Error events: `ERR_OOMGUARD_READ`, `ERR_OOMGUARD_LAST_WORDS` or `ERR_OOMGUARD_INTERNAL`.
    pub code: Option<String>,
    pub last_words: Option<String>,
    pub last_words_error: Option<String>,
    /// `limit` events: the limit before, bytes.
    pub previous_limit_bytes: Option<f64>,
    /// `limit` events: where the new limit comes from.
    pub source: Option<String>,
    /// `limit` events: V8's heap limit, bytes.
    pub heap_size_limit_bytes: Option<f64>,
    /// `limit` events: `fits`, `near` or `above` the new limit.
    pub heap_limit: Option<String>,
    /// `limit` events: the heap-limit diagnosis for the new limit.
    pub diagnosis: Option<Diagnosis>,
    pub stall: Option<NativeStall>,
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

type DispatchArgs = FnArgs<(u32, &'static str, NativeWatchEvent)>;
type Dispatch = ThreadsafeFunction<watch::Event, (), DispatchArgs, Status, false, true>;

/// Delivers events to one JavaScript environment's dispatch function.
struct TsfnSink(Dispatch);

impl watch::Sink for TsfnSink {
    fn deliver(&self, e: watch::Event) -> bool {
        self.0.call(e, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok
    }
}

/// The stall settings as the sampler takes them (`Config::with_stall`
/// checks their ranges).
fn stall_settings(
    stall: Option<StallOptions>,
    on_stall: Option<OnStallOptions>,
) -> Result<(Option<stall::StallConfig>, Option<f64>)> {
    let after = match on_stall {
        None => None,
        Some(o) if o.action != "exit" => {
            return Err(Error::new(
                Status::InvalidArg,
                format!("options.onStall.action must be 'exit', got {:?}", o.action),
            ))
        }
        Some(o) => Some(o.after_ms),
    };
    Ok((
        stall.map(|s| stall::StallConfig {
            margin: s.margin,
            sustain_ms: s.sustain_ms,
        }),
        after,
    ))
}

/// Start a monitor on the shared sampler thread. `dispatch(id, kind, event)`
/// receives its events; the first call in an environment registers it. The
/// monitor's first sample is taken before this returns.
#[napi(
    ts_args_type = "config: WatchConfig, dispatch: (id: number, kind: 'threshold' | 'recovered' | 'error' | 'limit' | 'stall' | 'stall-end', event: NativeWatchEvent) => void"
)]
pub fn watch_start(
    env: Env,
    config: WatchConfig,
    dispatch: Function<DispatchArgs, ()>,
) -> Result<u32> {
    let basis = watch::Basis::parse(&config.basis).ok_or_else(|| {
        Error::new(
            Status::InvalidArg,
            format!(
                "options.basis must be one of 'workingSet', 'usage', 'rss', got {:?}",
                config.basis
            ),
        )
    })?;
    running_node(&env);
    let (stall, exit_after_ms) = stall_settings(config.stall, config.on_stall)?;
    let config = watch::Config::new(
        config.thresholds,
        config.hysteresis,
        basis,
        config.min_interval_ms,
        config.max_interval_ms,
        Some(watch::LastWordsConfig {
            stderr: config.last_words_stderr,
            path: config.last_words_path.map(PathBuf::from),
        }),
        PathBuf::from(config.root.unwrap_or_else(|| "/".into())),
    )
    .and_then(|c| c.with_stall(stall, exit_after_ms))
    .map_err(|e| Error::new(Status::InvalidArg, e.0))?;
    let env_id = env.raw() as usize;
    if !watch::SAMPLER.has_sink(env_id) {
        let tsfn: Dispatch = dispatch
            .build_threadsafe_function::<watch::Event>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|ctx: ThreadsafeCallContext<watch::Event>| {
                let e = ctx.value;
                let lc = e.limit_change.as_deref();
                Ok(FnArgs::from((
                    e.monitor,
                    e.kind.as_str(),
                    NativeWatchEvent {
                        level: e.level,
                        threshold: finite(e.threshold),
                        ratio: finite(e.ratio),
                        basis_bytes: finite(e.basis_bytes),
                        limit_bytes: finite(e.limit_bytes),
                        headroom_bytes: finite(e.headroom_bytes),
                        growth_bytes_per_sec: finite(e.growth_bytes_per_sec),
                        time_to_limit_ms: e.time_to_limit_ms.and_then(finite),
                        timestamp_ms: e.timestamp_ms,
                        message: e.message,
                        code: e.code.map(|c| c.as_str().to_string()),
                        last_words: e.last_words,
                        last_words_error: e.last_words_error,
                        previous_limit_bytes: lc.map(|c| c.previous_limit_bytes),
                        source: lc.map(|c| c.source.as_str().to_string()),
                        heap_size_limit_bytes: lc.and_then(|c| c.heap_size_limit_bytes),
                        heap_limit: lc.and_then(|c| c.heap_limit).map(str::to_string),
                        diagnosis: lc.and_then(|c| c.diagnosis.as_ref()).map(Diagnosis::from),
                        stall: e.stall.map(|n| {
                            let f = n.figures;
                            NativeStall {
                                duration_ms: f.duration_ms.round(),
                                working_set_ratio: f.ratio,
                                failures_per_sec: f.failures_per_sec.map(f64::round),
                                failure_counter: f.counter.map(|c| c.as_str().to_string()),
                                pressure: f.pressure.map(|p| NativeStallPressure {
                                    scope: match p.scope {
                                        PressureScope::Cgroup => "cgroup".into(),
                                        PressureScope::System => "system".into(),
                                    },
                                    kind: p.kind.as_str().into(),
                                    ratio: p.ratio,
                                    avg10: p.avg10,
                                }),
                                refaults_per_sec: f.refaults_per_sec.map(f64::round),
                                cause: n.cause.to_string(),
                                reason: n.reason,
                            }
                        }),
                    },
                )))
            })?;
        watch::SAMPLER.add_sink(env_id, Box::new(TsfnSink(tsfn)));
        // A worker that terminates (or a process that exits) with monitors
        // open: stop them before the environment goes.
        env.add_env_cleanup_hook(env_id, |id| watch::SAMPLER.drop_env(id))?;
    }
    let (id, _block) = watch::SAMPLER
        .start(env_id, config)
        .map_err(|e| Error::new(Status::GenericFailure, e))?;
    Ok(id)
}

/// The monitor's shared block as a Float64Array (layout: `watchSlots()`).
#[napi]
pub fn watch_block(env: &Env, id: u32) -> Result<Float64ArraySlice<'_>> {
    let block = watch::SAMPLER
        .block(id)
        .ok_or_else(|| Error::new(Status::InvalidArg, format!("no monitor {id}")))?;
    let ptr = block.as_ptr();
    // SAFETY: the memory lives as long as the Arc, which the finalizer drops.
    unsafe { Float64ArraySlice::from_external(env, ptr, watch::block::LEN, block, |_, b| drop(b)) }
}

/// The layout of a monitor's block (internal): declared once in
/// `watch::block`, read by lib/watch.js.
#[napi(object, object_from_js = false)]
pub struct WatchLayout {
    /// Slot names, as [name, index] pairs.
    pub slots: Vec<(String, u32)>,
    /// The limit sources the `source` slot encodes: its value is 1 + the index here.
    pub sources: Vec<String>,
}

/// The layout of a monitor's block: its slots and the source encoding (internal).
#[napi]
pub fn watch_slots() -> Result<WatchLayout> {
    guard::catch("watchSlots", || WatchLayout {
        slots: watch::block::NAMES
            .iter()
            .map(|(n, i)| ((*n).to_string(), *i as u32))
            .collect(),
        sources: watch::block::SOURCES
            .iter()
            .map(|s| s.as_str().to_string())
            .collect(),
    })
    .map_err(internal_error)
}

/// The kernel files the diagnoses name, as [cgroup version, fact, file]
/// triples (internal: the doctor words its checks with them).
#[napi]
pub fn cgroup_files() -> Result<Vec<(u32, &'static str, &'static str)>> {
    guard::catch("cgroupFiles", || {
        [locate::CgroupVersion::V1, locate::CgroupVersion::V2]
            .into_iter()
            .flat_map(|v| {
                diagnose::named_files(Some(v))
                    .entries()
                    .map(|(fact, file)| (v.number(), fact, file))
            })
            .collect()
    })
    .map_err(internal_error)
}

/// Stop a monitor; joins the sampler thread when it was the last.
#[napi]
pub fn watch_stop(id: u32) -> bool {
    watch::SAMPLER.stop(id)
}

/// The shared sampler's state (for tests and benchmarks).
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct SamplerInfo {
    pub running: bool,
    /// Linux thread id of the sampler thread (`/proc/self/task/<id>`).
    pub thread_id: Option<i64>,
    pub monitors: u32,
    pub roots: u32,
    /// Kernel wake-ups in force (v1 `cgroup.event_control`, v2 inotify).
    pub triggers: Vec<String>,
    /// Bytes of this addon locked in memory so that the sampler keeps
    /// running in a stall (`null` before the sampler first ran).
    pub pinned_bytes: Option<f64>,
    /// Why locking them failed, if it did.
    pub pin_error: Option<String>,
}

#[napi]
pub fn sampler_info() -> Result<SamplerInfo> {
    guard::catch("samplerInfo", || {
        let i = watch::SAMPLER.info();
        SamplerInfo {
            running: i.running,
            thread_id: i.thread_id,
            monitors: i.monitors as u32,
            roots: i.roots as u32,
            triggers: i.triggers,
            pinned_bytes: pin::pinned().map(|p| p.bytes as f64),
            pin_error: pin::pinned().and_then(|p| p.error),
        }
    })
    .map_err(internal_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_root_held_by_one_reader_never_blocks_another_root() {
        let a = entry_for(Path::new("/nonexistent/oomguard-a"));
        // As if a read of root a were stuck in the kernel.
        let _held = lock(&a);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let b = entry_for(Path::new("/nonexistent/oomguard-b"));
            let snap = lock(&b).reader.snapshot();
            tx.send(snap.locate_error.is_some()).unwrap();
        });
        let located = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("root b was read while root a was held");
        assert!(located, "root b does not exist: a locate error, not a hang");
        // The same root, asked again, is the same entry.
        let again = entry_for(Path::new("/nonexistent/oomguard-a"));
        assert!(Arc::ptr_eq(&a, &again));
    }
}

// ---------------------------------------------------------------------------
// Output types the native side builds. Doc comments become the JSDoc of
// index.d.ts. The reading's shape (MemoryMetrics and its sections) is not
// here: it is filled as slots (src/slots.rs) and its public type is written
// once, in lib/index.d.ts.

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
    /// Resident set size, bytes (`/proc/<pid>/statm`); `null` when unreadable
    /// (the process exited, or `/proc` hides other users' processes).
    pub rss_bytes: Option<f64>,
}

/// The processes in the memory cgroup (`cgroup.procs` of this process's own
/// cgroup; processes in child cgroups are charged here too but not listed).
/// Scanned at most once a second: `timestampMs` says when.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct CgroupProcesses {
    /// How many processes `cgroup.procs` lists (on v2 it lists those outside
    /// this process's pid namespace as 0: counted here, never in `largest`).
    pub count: u32,
    /// The largest by resident set, largest first, at most 16; unknown sizes last.
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
    /// 75% of the limit (the target of lib/heap-band.json), by the model.
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
