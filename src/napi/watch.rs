//! The watcher's native half (internal; lib/core/watch.js is the public API):
//! starting and stopping monitors on the core's sampler thread, the
//! monitor's shared block as a `Float64Array`, and the sampler's events
//! turned into JavaScript calls.

use std::path::PathBuf;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi::Env;
use napi_derive::napi;

use super::types::Diagnosis;
use super::{internal_error, running_node};
use crate::guard;
use crate::reader::PressureScope;
use crate::watch::{self, alloc, pin, stall};

/// A monitor's settings. The JavaScript layer validates them for its error
/// messages; `watch::Config::new` checks them again and refuses what the
/// sampler could not work with.
#[napi(object, object_to_js = false)]
pub struct WatchConfig {
    pub thresholds: Vec<f64>,
    pub hysteresis: f64,
    /// One of lib/core/options.json's `basis.values`.
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

/// Stall detection settings (internal; lib/core/options.js documents them).
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
    pub limiting_cgroup: Option<String>,
    pub pressure: Option<NativeStallPressure>,
    pub refaults_per_sec: Option<f64>,
    /// `stall::Evidence::as_str()`: which rule judged the last window.
    #[napi(ts_type = "'charge-failures' | 'refaults' | null")]
    pub decided_by: Option<String>,
    pub cause: String,
    pub reason: String,
}

/// An event from the sampler thread (internal; lib/core/watch.js adds the V8 numbers).
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

/// What to do about a stall: `Some(afterMs)` to end the process after a
/// stall that long (`Config::new` checks the range), None to report only.
fn on_stall_exit_after(on_stall: Option<OnStallOptions>) -> Result<Option<f64>> {
    match on_stall {
        None => Ok(None),
        Some(o) if o.action != "exit" => Err(Error::new(
            Status::InvalidArg,
            format!("options.onStall.action must be 'exit', got {:?}", o.action),
        )),
        Some(o) => Ok(Some(o.after_ms)),
    }
}

/// Start a monitor on the shared sampler thread. `dispatch(id, kind, event)`
/// receives its events; the first call in an environment registers it. The
/// monitor's first sample is taken before this returns.
///
/// `kind` is `watch::EventKind::as_str()`. The event names are public API,
/// typed once, in lib/index.d.ts (`Monitor.on`), not here as well; a test
/// in src/napi/watch.rs keeps the two lists the same.
#[napi(
    ts_args_type = "config: WatchConfig, dispatch: (id: number, kind: string, event: NativeWatchEvent) => void"
)]
pub fn watch_start(
    env: Env,
    config: WatchConfig,
    dispatch: Function<DispatchArgs, ()>,
) -> Result<u32> {
    let basis = watch::Basis::parse(&config.basis).ok_or_else(|| {
        let values: Vec<String> = crate::options::BASIS_VALUES
            .iter()
            .map(|b| format!("'{b}'"))
            .collect();
        Error::new(
            Status::InvalidArg,
            format!(
                "options.basis must be one of {}, got {:?}",
                values.join(", "),
                config.basis
            ),
        )
    })?;
    running_node(&env);
    let settings = watch::Settings {
        thresholds: config.thresholds,
        hysteresis: config.hysteresis,
        basis,
        min_interval_ms: config.min_interval_ms,
        max_interval_ms: config.max_interval_ms,
        last_words: Some(watch::LastWordsConfig {
            stderr: config.last_words_stderr,
            path: config.last_words_path.map(PathBuf::from),
        }),
        root: PathBuf::from(config.root.unwrap_or_else(|| "/".into())),
        stall: config.stall.map(|s| stall::StallConfig {
            margin: s.margin,
            sustain_ms: s.sustain_ms,
        }),
        on_stall_exit_after_ms: on_stall_exit_after(config.on_stall)?,
    };
    let config = watch::Config::new(settings).map_err(|e| Error::new(Status::InvalidArg, e.0))?;
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
                                limiting_cgroup: n.limiting_cgroup,
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
                                decided_by: f.decided_by.map(|e| e.as_str().to_string()),
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
/// `watch::block`, read by lib/core/watch.js.
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

/// Stop a monitor; joins the sampler thread when it was the last.
#[napi]
pub fn watch_stop(id: u32) -> bool {
    watch::SAMPLER.stop(id)
}

/// Hand a monitor's records an appendix (internal; lib/core/heap-profile.js):
/// candidate JSON members, longest first, of which each record takes the
/// first that fits (`lastwords::with_appendix`); an empty list clears it.
/// Returns the verdict of the monitor's last record (`stall:CAUSE` for a
/// stall), if any.
#[napi]
pub fn watch_appendix(id: u32, candidates: Vec<String>) -> Result<Option<String>> {
    guard::catch("watchAppendix", || {
        crate::watch::lastwords::set_appendix(id, candidates)
    })
    .map_err(internal_error)?
    .map_err(|e| Error::new(Status::InvalidArg, e))
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
    /// Snapshots of every file the sampler took (every monitor's first
    /// sample included), and its samples of the usage alone, between
    /// thresholds (see `Quiet` in src/watch/state.rs), since the process started.
    pub snapshots: f64,
    pub ticks: f64,
}

/// What the verdict reads without V8 (internal; for tests and benchmarks).
#[napi(object, object_from_js = false)]
pub struct AllocatorSplit {
    /// `mallinfo2` or `mallinfo`.
    pub call: String,
    /// This process's resident anonymous memory.
    pub anon_bytes: f64,
    /// What malloc took from the system (arenas and its own mappings).
    pub malloc_bytes: f64,
    /// Of that, handed out and not freed.
    pub malloc_in_use_bytes: f64,
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
            snapshots: i.snapshots as f64,
            ticks: i.ticks as f64,
        }
    })
    .map_err(internal_error)
}

/// This process's anonymous memory split by the allocator, read now, as
/// the verdict reads it (src/watch/alloc.rs; unpaced); null where there is none
/// (musl, a preloaded allocator).
#[napi]
pub fn allocator_split() -> Result<Option<AllocatorSplit>> {
    guard::catch("allocatorSplit", || {
        alloc::split(std::path::Path::new("/"), 0.0).map(|s| AllocatorSplit {
            call: s.source.as_str().into(),
            anon_bytes: s.anon as f64,
            malloc_bytes: s.malloc as f64,
            malloc_in_use_bytes: s.malloc_in_use as f64,
        })
    })
    .map_err(internal_error)
}

#[cfg(test)]
mod tests {
    use crate::watch::EventKind;

    /// Every event kind; a new one fails to compile here until it is listed.
    fn every_kind() -> [EventKind; 6] {
        use EventKind::*;
        let all = [Threshold, Recovered, Error, Limit, Stall, StallEnd];
        for k in all {
            match k {
                Threshold | Recovered | Error | Limit | Stall | StallEnd => {}
            }
        }
        all
    }

    #[test]
    fn the_events_monitor_on_declares_are_the_sampler_s() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/lib/index.d.ts");
        let dts = std::fs::read_to_string(path).unwrap();
        let mut declared: Vec<&str> = dts
            .lines()
            .filter_map(|l| l.trim().strip_prefix("on(event: "))
            .flat_map(|rest| {
                let union = rest.split(',').next().unwrap_or("");
                union.split('|').map(|s| s.trim().trim_matches('\''))
            })
            .collect();
        declared.sort_unstable();
        let mut kinds: Vec<&str> = every_kind().iter().map(|k| k.as_str()).collect();
        kinds.sort_unstable();
        assert_eq!(declared, kinds, "Monitor.on's events in {path}");
    }
}
