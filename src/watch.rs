//! The watcher: one native sampler thread per process serves every monitor.
//! Each root's reader keeps its cgroup files open and samples them with
//! `pread` at an interval that adapts to the distance from the next
//! threshold; each monitor's level moves with hysteresis; events go to a
//! [`Sink`]; and from the first threshold crossing on, the sampler keeps the
//! last-words flight record (see [`crate::lastwords`]) itself.
//!
//! Locking: the registry (monitors, sinks, roots) is locked only to copy out
//! what a pass needs and to publish its events. Reads (each root's reader
//! has its own lock), last-words writes (each monitor's state has its own
//! lock) and registering kernel wake-ups (which can block for tens of ms;
//! the thread owns them alone) happen outside it, so `watch()` and `close()`
//! never wait on kernel work. Every pass runs under `catch_unwind`: a panic
//! becomes one `error` event per monitor it touched, and the next pass runs.
//!
//! Nothing here knows about N-API: the sink is a trait, and the per-monitor
//! shared block is plain memory the JS side views as a `Float64Array`.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::alloc;
use crate::diagnose::{self, Diagnosis, V8Numbers};
use crate::guard;
use crate::lastwords::{self, FlightRecord, RecordEvent, RecordInput};
use crate::locate::Location;
use crate::reader::{LimitSource, Reader, Snapshot};
use crate::stall;
use crate::trace;
use crate::trigger::Triggers;

/// Growth the interval policy assumes is possible before it has seen any:
/// 2 GiB/s, about the fastest a process touches fresh memory here.
const ASSUMED_RATE: f64 = 2.0 * 1024.0 * 1024.0 * 1024.0;
/// Time constant of the growth-rate average.
const GROWTH_TAU_S: f64 = 0.3;
/// After a v2 `memory.events` wake-up, ignore further ones this long.
const EVENTS_WAKE_GAP: Duration = Duration::from_millis(50);
/// Below this rate (bytes/s) the basis is not growing: no time-to-limit.
const MIN_GROWTH: f64 = 64.0 * 1024.0;
/// How long to wait after a pass that could not read (or panicked).
const RETRY_AFTER: Duration = Duration::from_millis(100);
/// Between thresholds a sample reads the usage alone (see [`Quiet`]); a
/// full snapshot of every file is taken at least this often all the same.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(2);

/// The bounds `Config::new` enforces (the JavaScript options say the same).
pub const MAX_THRESHOLDS: usize = 16;
pub const MAX_HYSTERESIS: f64 = 0.5;
pub const MIN_INTERVAL_MS: (f64, f64) = (0.1, 60_000.0);
pub const MAX_INTERVAL_MS_LIMIT: f64 = 3_600_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    WorkingSet,
    Usage,
    Rss,
}

impl Basis {
    pub fn parse(s: &str) -> Option<Basis> {
        match s {
            "workingSet" => Some(Basis::WorkingSet),
            "usage" => Some(Basis::Usage),
            "rss" => Some(Basis::Rss),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Basis::WorkingSet => "workingSet",
            Basis::Usage => "usage",
            Basis::Rss => "rss",
        }
    }

    /// The bytes this basis measures in a snapshot; None when a file it
    /// needs failed. Without a memory cgroup the working set and usage are
    /// the host's used memory.
    fn bytes(self, s: &Snapshot) -> Option<u64> {
        match self {
            Basis::WorkingSet => s.basis(),
            Basis::Usage => s.usage_basis(),
            Basis::Rss => s.rss,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LastWordsConfig {
    pub stderr: bool,
    pub path: Option<PathBuf>,
}

/// A monitor's settings. Built only by [`Config::new`], which enforces
/// what the sampler relies on (the fields are private to this module).
#[derive(Debug, Clone)]
pub struct Config {
    /// 1 to 16 finite ratios in (0, 1), strictly ascending.
    thresholds: Vec<f64>,
    /// In [0, 0.5], below the lowest threshold (so that level can be left).
    hysteresis: f64,
    basis: Basis,
    min_interval: Duration,
    /// At least `min_interval`.
    max_interval: Duration,
    last_words: Option<LastWordsConfig>,
    root: PathBuf,
    /// Stall detection; None when off (see [`Config::with_stall`]).
    stall: Option<stall::StallConfig>,
    /// End the process when a stall has lasted this long, ms; None: report only.
    on_stall_exit_after_ms: Option<f64>,
}

/// Why a configuration was refused; the message names the option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Config {
    /// Check every invariant the sampler relies on; never trusts the caller.
    pub fn new(
        thresholds: Vec<f64>,
        hysteresis: f64,
        basis: Basis,
        min_interval_ms: f64,
        max_interval_ms: f64,
        last_words: Option<LastWordsConfig>,
        root: PathBuf,
    ) -> Result<Config, ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        if thresholds.is_empty() || thresholds.len() > MAX_THRESHOLDS {
            return err(format!(
                "options.thresholds must be an array of 1 to {MAX_THRESHOLDS} ratios, got {} entries",
                thresholds.len()
            ));
        }
        for (i, t) in thresholds.iter().enumerate() {
            if !(t.is_finite() && *t > 0.0 && *t < 1.0) {
                return err(format!(
                    "options.thresholds[{i}] must be a ratio between 0 and 1 (exclusive), got {t}"
                ));
            }
            if i > 0 && *t <= thresholds[i - 1] {
                return err(format!(
                    "options.thresholds[{i}] must be above options.thresholds[{}] ({}): thresholds must ascend, got {t}",
                    i - 1,
                    thresholds[i - 1]
                ));
            }
        }
        if !(hysteresis.is_finite() && (0.0..=MAX_HYSTERESIS).contains(&hysteresis)) {
            return err(format!(
                "options.hysteresis must be a ratio from 0 to {MAX_HYSTERESIS}, got {hysteresis}"
            ));
        }
        if hysteresis >= thresholds[0] {
            return err(format!(
                "options.hysteresis must be below the lowest threshold ({}), got {hysteresis}",
                thresholds[0]
            ));
        }
        let (lo, hi) = MIN_INTERVAL_MS;
        if !(min_interval_ms >= lo && min_interval_ms <= hi) {
            return err(format!(
                "options.minIntervalMs must be between {lo} and {hi} ms, got {min_interval_ms}"
            ));
        }
        if !(max_interval_ms >= min_interval_ms && max_interval_ms <= MAX_INTERVAL_MS_LIMIT) {
            return err(format!(
                "options.maxIntervalMs must be between minIntervalMs ({min_interval_ms}) and {MAX_INTERVAL_MS_LIMIT} ms, got {max_interval_ms}"
            ));
        }
        if let Some(LastWordsConfig { path: Some(p), .. }) = &last_words {
            use std::os::unix::ffi::OsStrExt;
            let b = p.as_os_str().as_bytes();
            if b.is_empty() || b.contains(&0) {
                return err("options.lastWords.path must be a non-empty path without NUL".into());
            }
        }
        let ms = |v: f64| Duration::from_secs_f64(v / 1000.0);
        Ok(Config {
            thresholds,
            hysteresis,
            basis,
            min_interval: ms(min_interval_ms),
            max_interval: ms(max_interval_ms),
            last_words: last_words.filter(|l| l.stderr || l.path.is_some()),
            root,
            stall: None,
            on_stall_exit_after_ms: None,
        })
    }

    /// Turn on stall detection (and, with `exit_after_ms`, ending the
    /// process after a stall that long), checking the ranges.
    pub fn with_stall(
        mut self,
        stall: Option<stall::StallConfig>,
        exit_after_ms: Option<f64>,
    ) -> Result<Config, ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        if let Some(c) = &stall {
            if !(0.0..=stall::MAX_SUSTAIN_MS).contains(&c.sustain_ms) {
                return err(format!(
                    "options.stall.sustainMs must be between 0 and {} ms, got {}",
                    stall::MAX_SUSTAIN_MS,
                    c.sustain_ms
                ));
            }
            if !(0.0..=stall::MAX_MARGIN).contains(&c.margin) {
                return err(format!(
                    "options.stall.margin must be a ratio from 0 to {}, got {}",
                    stall::MAX_MARGIN,
                    c.margin
                ));
            }
        }
        if let Some(ms) = exit_after_ms {
            if stall.is_none() {
                return err(
                    "options.onStall must be left unset while stall detection is off".into(),
                );
            }
            if !(0.0..=stall::MAX_AFTER_MS).contains(&ms) {
                return err(format!(
                    "options.onStall.afterMs must be between 0 and {} ms, got {ms}",
                    stall::MAX_AFTER_MS
                ));
            }
        }
        self.stall = stall;
        self.on_stall_exit_after_ms = exit_after_ms;
        Ok(self)
    }

    fn path(&self) -> Option<&Path> {
        self.last_words.as_ref().and_then(|l| l.path.as_deref())
    }

    pub fn thresholds(&self) -> &[f64] {
        &self.thresholds
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

// ---------------------------------------------------------------------------
// The per-monitor block shared with JavaScript: see `block`.

pub mod block;
pub use block::Block;

/// The V8 numbers JavaScript last wrote into a monitor's block (the core's
/// [`V8Numbers`]), and when.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct V8Known {
    pub timestamp_ms: f64,
    pub numbers: V8Numbers,
}

// ---------------------------------------------------------------------------
// Events

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Threshold,
    Recovered,
    Error,
    /// The limit changed under the running process (`docker update`, an
    /// in-place pod resize, a write to the limit file).
    Limit,
    /// Stuck at the limit without an OOM kill (see [`crate::stall`]).
    Stall,
    /// The stall cleared.
    StallEnd,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Threshold => "threshold",
            EventKind::Recovered => "recovered",
            EventKind::Error => "error",
            EventKind::Limit => "limit",
            EventKind::Stall => "stall",
            EventKind::StallEnd => "stall-end",
        }
    }
}

/// What an `error` event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Reading the memory numbers failed; the last good sample is kept.
    Read,
    /// The last-words file could not be written.
    LastWords,
    /// A bug: a panic inside the sampler, caught; sampling goes on.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Read => "ERR_OOMGUARD_READ",
            ErrorCode::LastWords => "ERR_OOMGUARD_LAST_WORDS",
            ErrorCode::Internal => "ERR_OOMGUARD_INTERNAL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Event {
    pub monitor: u32,
    pub kind: EventKind,
    /// The level after the transition (threshold: the level reached).
    pub level: u32,
    /// The threshold crossed.
    pub threshold: f64,
    pub ratio: f64,
    pub basis_bytes: f64,
    pub limit_bytes: f64,
    pub headroom_bytes: f64,
    pub growth_bytes_per_sec: f64,
    pub time_to_limit_ms: Option<f64>,
    pub timestamp_ms: f64,
    /// Error events: what failed, naming the file.
    pub message: Option<String>,
    /// Error events: what kind of failure.
    pub code: Option<ErrorCode>,
    /// Where this sample's last-words record went (`stderr`, the path), on
    /// the event for the level the record is about.
    pub last_words: Option<String>,
    /// Why the record could not be written where asked, on the same event.
    pub last_words_error: Option<String>,
    /// `limit` events: what changed.
    pub limit_change: Option<Box<LimitChange>>,
    /// `stall` and `stall-end` events: the figures, the cause, the reason.
    pub stall: Option<Box<StallNote>>,
}

/// What a `stall` or `stall-end` event says.
#[derive(Debug, Clone)]
pub struct StallNote {
    pub figures: stall::Figures,
    /// The fill verdict: which memory fills the limit.
    pub cause: &'static str,
    pub reason: String,
    /// The cgroup path of the ancestor that holds the limit, whose counter
    /// and working set the figures are; None: the process's own cgroup.
    pub limiting_cgroup: Option<String>,
}

/// A `limit` event's details. V8's heap limit is fixed when node starts, so
/// a limit that shrinks can leave it above the new limit.
#[derive(Debug, Clone)]
pub struct LimitChange {
    pub previous_limit_bytes: f64,
    pub source: LimitSource,
    /// This environment's V8 heap limit, as JavaScript last wrote it.
    pub heap_size_limit_bytes: Option<f64>,
    /// The heap limit against the new limit: `fits` (at most 80% of it, the
    /// top of the band in lib/heap-band.json), `near` (above 80%), `above` (at or above the limit); None where there
    /// is no cgroup limit or no heap number.
    pub heap_limit: Option<&'static str>,
    /// The `HEAP_LIMIT_*` diagnosis for the new limit, as
    /// `getMemoryMetrics().diagnoses` gives it; None when the heap limit fits.
    pub diagnosis: Option<Diagnosis>,
}

/// What a limit change means for V8's heap limit: the doctor's own verdict
/// on the snapshot that saw the new limit.
pub fn limit_change(
    snap: &Snapshot,
    previous_limit_bytes: f64,
    source: LimitSource,
    heap_size_limit_bytes: Option<f64>,
) -> LimitChange {
    let v8 = V8Numbers {
        heap_size_limit: heap_size_limit_bytes,
        ..V8Numbers::default()
    };
    let diagnosis = diagnose::diagnose(snap, &v8, diagnose::running_node())
        .into_iter()
        .find(|d| {
            d.code == diagnose::codes::HEAP_LIMIT_ABOVE_CONTAINER_LIMIT
                || d.code == diagnose::codes::HEAP_LIMIT_NEAR_CONTAINER_LIMIT
        });
    let heap_limit = match (&diagnosis, heap_size_limit_bytes, source) {
        (_, None, _) | (_, _, LimitSource::Host) => None,
        (Some(d), _, _) if d.code == diagnose::codes::HEAP_LIMIT_ABOVE_CONTAINER_LIMIT => {
            Some("above")
        }
        (Some(_), _, _) => Some("near"),
        (None, _, _) => Some("fits"),
    };
    LimitChange {
        previous_limit_bytes,
        source,
        heap_size_limit_bytes,
        heap_limit,
        diagnosis,
    }
}

impl Event {
    fn error(
        monitor: u32,
        level: usize,
        block: &Block,
        ts: f64,
        code: ErrorCode,
        msg: String,
    ) -> Event {
        Event {
            monitor,
            kind: EventKind::Error,
            level: level as u32,
            threshold: f64::NAN,
            ratio: block.get(block::RATIO),
            basis_bytes: block.get(block::BASIS),
            limit_bytes: block.get(block::LIMIT),
            headroom_bytes: block.get(block::HEADROOM),
            growth_bytes_per_sec: block.get(block::GROWTH),
            time_to_limit_ms: None,
            timestamp_ms: ts,
            message: Some(msg),
            code: Some(code),
            last_words: None,
            last_words_error: None,
            limit_change: None,
            stall: None,
        }
    }
}

/// Where events go: a threadsafe function per JS environment, or a test.
pub trait Sink: Send {
    /// Hand the event over without blocking. False when the sink is gone.
    fn deliver(&self, event: Event) -> bool;
}

// ---------------------------------------------------------------------------
// Levels, growth and the interval policy: pure functions.

/// The level after `ratio` is seen at `current`: up past every threshold the
/// ratio reaches, down past every threshold it has fallen `hysteresis` below.
pub fn next_level(current: usize, ratio: f64, thresholds: &[f64], hysteresis: f64) -> usize {
    let mut level = current.min(thresholds.len());
    while level < thresholds.len() && ratio >= thresholds[level] {
        level += 1;
    }
    while level > 0 && ratio < thresholds[level - 1] - hysteresis {
        level -= 1;
    }
    level
}

/// An exponentially weighted slope, in bytes per second.
#[derive(Debug, Clone, Copy, Default)]
pub struct Growth {
    last: Option<(Instant, f64)>,
    rate: f64,
}

impl Growth {
    pub fn observe(&mut self, at: Instant, bytes: f64) -> f64 {
        if let Some((t0, b0)) = self.last {
            let dt = at.duration_since(t0).as_secs_f64();
            if dt > 0.0 {
                let inst = (bytes - b0) / dt;
                let alpha = 1.0 - (-dt / GROWTH_TAU_S).exp();
                self.rate += alpha * (inst - self.rate);
            }
        }
        self.last = Some((at, bytes));
        self.rate
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }
}

/// Milliseconds until `headroom` is used up at `rate`; None when not growing.
pub fn time_to_limit_ms(headroom: f64, rate: f64) -> Option<f64> {
    (rate > MIN_GROWTH).then(|| (headroom.max(0.0) / rate) * 1000.0)
}

/// How long to sleep when the nearest threshold is `distance` bytes away and
/// the basis grows at `rate`: the time the fastest plausible growth needs to
/// get there, within the bounds.
pub fn interval_for(distance: f64, rate: f64, min: Duration, max: Duration) -> Duration {
    let speed = ASSUMED_RATE.max(rate * 3.0);
    let secs = (distance.max(0.0) / speed)
        .clamp(min.as_secs_f64(), max.as_secs_f64().max(min.as_secs_f64()));
    Duration::from_secs_f64(secs)
}

// ---------------------------------------------------------------------------
// Monitors, roots, the registry.

/// What the sampler changes per monitor, behind the monitor's own lock (the
/// sampler thread, the first sample in `start`, and `close` take it).
#[derive(Debug, Default)]
struct MonitorState {
    level: usize,
    /// The last read failed; said once.
    failing: bool,
    /// A panic was caught while handling this monitor; said once.
    panicked: bool,
    /// Closed: nothing more is written for it.
    closed: bool,
    record: FlightRecord,
    /// The limit at the last good sample, to see it change.
    limit: Option<u64>,
    /// Stall detection, when on.
    stall: Option<stall::Detector>,
    /// Where a sample of the usage alone will do, from the last snapshot.
    quiet: Option<Quiet>,
    /// JavaScript's V8 readings as the samples met them (see [`V8Follow`]).
    v8_follow: V8Follow,
    /// The allocator's split as this monitor's verdicts used it.
    split_follow: SplitFollow,
}

/// The cgroup's usage when JavaScript last read V8: the verdict's measure
/// of the growth V8's numbers cannot attribute (see
/// [`lastwords::Evidence::usage_at_v8`]).
#[derive(Debug, Default, Clone, Copy)]
struct V8Follow {
    /// The timestamp of the V8 numbers the last sample saw (bits; 0: none).
    seen: u64,
    /// The usage at the last sample, and at the one before.
    last_usage: Option<u64>,
    prev_usage: Option<u64>,
    /// The usage at the last sample before the current V8 numbers were
    /// written (the lower of it and the first sample's after: never less
    /// growth than there was).
    usage_at_v8: Option<u64>,
}

impl V8Follow {
    fn sample(&mut self, v8: Option<V8Known>, usage: Option<u64>) {
        let t = v8.map_or(0, |v| v.timestamp_ms.to_bits());
        if t != self.seen {
            self.seen = t;
            self.usage_at_v8 = match (self.last_usage, usage) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        if usage.is_some() {
            self.prev_usage = self.last_usage;
            self.last_usage = usage;
        }
    }
}

/// The allocator's split a monitor's verdicts use, and the cgroup's usage
/// when it was read (see [`lastwords::Evidence::usage_at_split`]).
#[derive(Debug, Default, Clone, Copy)]
struct SplitFollow {
    /// The timestamp of the split last used (bits; 0: none).
    seen: u64,
    usage_at_split: Option<u64>,
}

impl MonitorState {
    /// The split for a verdict on this sample: read now where due (see
    /// [`alloc::split_if_due`]), else the latest one, with the usage when
    /// it was read: this sample's when read now, else, the first time this
    /// monitor uses it, the lower of this sample's and the one before (it
    /// was read by another monitor in between: never less growth than
    /// there was).
    fn split(
        &mut self,
        root: &Path,
        usage: Option<u64>,
        ts: f64,
    ) -> (Option<alloc::Split>, Option<u64>) {
        let Some((sp, fresh)) = alloc::split_if_due(root, ts) else {
            return (None, None);
        };
        let f = &mut self.split_follow;
        let t = sp.timestamp_ms.to_bits();
        if fresh {
            f.usage_at_split = usage;
        } else if t != f.seen {
            f.usage_at_split = match (self.v8_follow.prev_usage, usage) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        f.seen = t;
        (Some(sp), f.usage_at_split)
    }
}

/// Between two snapshots, the usage inside which nothing a snapshot reads
/// can change this monitor's level or what it must do; computed at every
/// snapshot, against its limit (a changed limit file ends the quiet: see
/// [`Reader::tick`]). The working set is the usage less the inactive file,
/// so usage below a threshold proves the working set below it: only usage
/// at or above `up` needs `memory.stat`, and only a basis at or above it,
/// below `down` (the working set as the usage less the last snapshot's
/// inactive file: a snapshot decides) or usage in the stall zone a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quiet {
    /// The basis at or above which the level may rise: the next threshold
    /// in bytes (the limit at the top level).
    up: u64,
    /// The basis below which the level may fall (0 at level 0).
    down: u64,
    /// With stall detection: the usage from which the working set may be
    /// within the stall margin of the limit.
    stall_from: Option<u64>,
}

/// How many snapshots of every file, and how many samples of the usage
/// alone, the sampler took (for tests and benchmarks).
static SNAPSHOTS: AtomicU64 = AtomicU64::new(0);
static TICKS: AtomicU64 = AtomicU64::new(0);
/// Bumped whenever a root's cgroup or limit changes: the kernel wake-ups
/// are registered again (with the registry's epoch, the whole arm key: no
/// allocation per pass).
static ARM_GEN: AtomicU64 = AtomicU64::new(0);

struct Monitor {
    id: u32,
    env: usize,
    config: Config,
    block: Arc<Block>,
    state: Mutex<MonitorState>,
}

impl Monitor {
    fn state(&self) -> MutexGuard<'_, MonitorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A root's reader and what it last saw, behind the root's own lock.
struct RootSampling {
    reader: Reader,
    growth: [Growth; 3],
    /// Where the cgroup was and its limit at the last sample: what kernel
    /// wake-ups are registered for (a change bumps [`ARM_GEN`]).
    location: Option<Arc<Location>>,
    cgroup_limit: Option<u64>,
    /// When the last snapshot was taken, and its inactive file (the working
    /// set of a sample of the usage alone is the usage less this).
    snapshot_at: Option<Instant>,
    inactive_file: Option<u64>,
}

struct Root {
    path: PathBuf,
    sampling: Mutex<RootSampling>,
}

/// One sample of one root.
struct Sample {
    snap: Snapshot,
    at: Instant,
    ts: f64,
    rates: [f64; 3],
}

/// A sample of the usage alone (see [`Quiet`]).
struct TickSample {
    usage: u64,
    /// The usage less the inactive file: read now where the usage was at
    /// or above a threshold, else the last snapshot's.
    working_set: u64,
    ts: f64,
    rates: [f64; 3],
    location: Option<Arc<Location>>,
    cgroup_limit: Option<u64>,
}

/// What a pass read for a root. Not boxed: one per root per pass, on the
/// sampler thread's stack (a box would be an allocation per pass).
#[allow(clippy::large_enum_variant)]
enum Reading {
    Full(Result<Sample, String>),
    Tick(TickSample),
}

impl Root {
    fn new(path: PathBuf) -> Root {
        Root {
            sampling: Mutex::new(RootSampling {
                reader: Reader::new(path.clone()),
                growth: [Growth::default(); 3],
                location: None,
                cgroup_limit: None,
                snapshot_at: None,
                inactive_file: None,
            }),
            path,
        }
    }

    /// Read the root now. A panic inside the reader is caught here: the
    /// reader is replaced by a fresh one and the panic's message returned.
    fn sample(&self) -> Result<Sample, String> {
        let mut st = self.sampling.lock().unwrap_or_else(|p| p.into_inner());
        let what = format!("reading {}", self.path.display());
        let r = guard::catch(&what, || {
            #[cfg(test)]
            tests::fault(&self.path, tests::PANIC_IN_READ);
            st.reader.snapshot()
        });
        let snap = match r {
            Ok(s) => s,
            Err(p) => {
                // The reader may be half-updated: start this root afresh.
                st.reader = Reader::new(self.path.clone());
                return Err(p.to_string());
            }
        };
        let at = Instant::now();
        let ts = now_ms();
        let mut rates = [0.0; 3];
        for b in [Basis::WorkingSet, Basis::Usage, Basis::Rss] {
            let g = &mut st.growth[basis_index(b)];
            rates[basis_index(b)] = match b.bytes(&snap) {
                Some(v) => g.observe(at, v as f64),
                None => g.rate(),
            };
        }
        if st.location.as_deref() != snap.location.as_ref() {
            st.location = snap.location.clone().map(Arc::new);
            ARM_GEN.fetch_add(1, Ordering::Relaxed);
        }
        if !snap.failed.limit && st.cgroup_limit != snap.cgroup_limit {
            st.cgroup_limit = snap.cgroup_limit;
            ARM_GEN.fetch_add(1, Ordering::Relaxed);
        }
        st.snapshot_at = Some(at);
        st.inactive_file = snap.stat.as_ref().and_then(|s| s.inactive_file);
        SNAPSHOTS.fetch_add(1, Ordering::Relaxed);
        Ok(Sample {
            snap,
            at,
            ts,
            rates,
        })
    }

    /// A sample of the usage alone, where it proves every monitor's level
    /// unchanged (`quiet`: each monitor's basis and bounds); None where a
    /// snapshot is needed (due, near a threshold, a limit changed, a read
    /// failed, a panic: the snapshot says what is wrong).
    fn tick(&self, quiet: &[(Basis, Quiet)]) -> Option<TickSample> {
        let mut st = self.sampling.lock().unwrap_or_else(|p| p.into_inner());
        if st.snapshot_at.is_none_or(|t| t.elapsed() >= SNAPSHOT_EVERY) {
            return None;
        }
        let r = guard::catch("a sample of the usage", || {
            #[cfg(test)]
            tests::fault(&self.path, tests::PANIC_IN_READ);
            let usage = st.reader.tick()?;
            let mut working_set = usage.saturating_sub(st.inactive_file?);
            if quiet
                .iter()
                .any(|(basis, q)| *basis == Basis::WorkingSet && usage >= q.up)
            {
                // Usage at a threshold: the working set decides, with the
                // inactive file read now.
                working_set = usage.saturating_sub(st.reader.inactive_file()?);
            }
            for (basis, q) in quiet {
                let b = if *basis == Basis::Usage {
                    usage
                } else {
                    working_set
                };
                let in_stall_zone = q.stall_from.is_some_and(|s| usage >= s);
                if b >= q.up || b < q.down || in_stall_zone {
                    return None;
                }
            }
            Some((usage, working_set))
        });
        let (usage, working_set) = match r {
            Ok(Some(v)) => v,
            Ok(None) => return None,
            Err(_) => {
                st.reader = Reader::new(self.path.clone());
                st.snapshot_at = None;
                return None;
            }
        };
        let at = Instant::now();
        let mut rates = [0.0; 3];
        rates[basis_index(Basis::WorkingSet)] =
            st.growth[basis_index(Basis::WorkingSet)].observe(at, working_set as f64);
        rates[basis_index(Basis::Usage)] =
            st.growth[basis_index(Basis::Usage)].observe(at, usage as f64);
        rates[basis_index(Basis::Rss)] = st.growth[basis_index(Basis::Rss)].rate();
        TICKS.fetch_add(1, Ordering::Relaxed);
        Some(TickSample {
            usage,
            working_set,
            ts: now_ms(),
            rates,
            location: st.location.clone(),
            cgroup_limit: st.cgroup_limit,
        })
    }

    fn armed_for(&self) -> (Option<Arc<Location>>, Option<u64>) {
        let st = self.sampling.lock().unwrap_or_else(|p| p.into_inner());
        (st.location.clone(), st.cgroup_limit)
    }
}

#[derive(Default)]
struct Registry {
    monitors: Vec<Arc<Monitor>>,
    sinks: HashMap<usize, Box<dyn Sink>>,
    roots: HashMap<PathBuf, Arc<Root>>,
    next_id: u32,
    /// The thread is alive (it clears this itself, under the lock, when it
    /// finds no monitors and exits).
    running: bool,
    thread_id: Option<i64>,
    /// Interrupts the thread's wait; lives as long as the thread.
    wake: Option<Arc<OwnedFd>>,
    /// The kernel wake-ups the thread has in force, for `info`.
    trigger_kinds: Vec<String>,
    /// Bumped whenever monitors change, so the thread re-arms its triggers.
    epoch: u64,
}

impl Registry {
    /// Interrupt the thread's wait (monitors changed).
    fn wake(&self) {
        if let Some(fd) = &self.wake {
            wake_fd(fd.as_raw_fd());
        }
    }

    fn deliver(&self, events: Vec<Event>) {
        for ev in events {
            // A monitor closed meanwhile (perhaps by a listener) gets nothing more.
            let Some(m) = self.monitors.iter().find(|m| m.id == ev.monitor) else {
                continue;
            };
            if let Some(sink) = self.sinks.get(&m.env) {
                // A sink that panics loses this event, never the thread.
                let _ = guard::catch("delivering an event", || sink.deliver(ev));
            }
        }
    }
}

fn eventfd() -> Option<OwnedFd> {
    // SAFETY: plain syscall; the fd is owned on success.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

fn wake_fd(fd: RawFd) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: an 8-byte buffer to our own nonblocking eventfd.
    unsafe { libc::write(fd, one.as_ptr().cast(), one.len()) };
}

pub struct Sampler {
    inner: Mutex<Registry>,
}

pub static SAMPLER: once_cell::sync::Lazy<Sampler> = once_cell::sync::Lazy::new(Sampler::new);

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN)
}

fn basis_index(b: Basis) -> usize {
    match b {
        Basis::WorkingSet => 0,
        Basis::Usage => 1,
        Basis::Rss => 2,
    }
}

/// What the sampler reports about itself.
#[derive(Debug, Clone, Default)]
pub struct Info {
    pub running: bool,
    pub thread_id: Option<i64>,
    pub monitors: usize,
    pub roots: usize,
    pub triggers: Vec<String>,
    /// Snapshots of every file, and samples of the usage alone, taken so far.
    pub snapshots: u64,
    pub ticks: u64,
}

/// What a pass works on, copied out of the registry.
struct Work {
    epoch: u64,
    monitors: Vec<Arc<Monitor>>,
    roots: Vec<Arc<Root>>,
}

impl Sampler {
    pub(crate) fn new() -> Sampler {
        Sampler {
            inner: Mutex::new(Registry::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register a sink for an environment (replacing none that exists).
    pub fn has_sink(&self, env: usize) -> bool {
        self.lock().sinks.contains_key(&env)
    }

    pub fn add_sink(&self, env: usize, sink: Box<dyn Sink>) {
        self.lock().sinks.insert(env, sink);
    }

    /// Start a monitor. Its first sample is taken here, on the caller's
    /// thread, before this returns (its events are delivered through the
    /// sink like any other); then the sampler thread takes over, started if
    /// it is not running.
    pub fn start(&'static self, env: usize, config: Config) -> Result<(u32, Arc<Block>), String> {
        let block = Block::new();
        let (id, root) = {
            let mut reg = self.lock();
            reg.next_id = reg.next_id.wrapping_add(1).max(1);
            let root = reg
                .roots
                .entry(config.root.clone())
                .or_insert_with(|| Arc::new(Root::new(config.root.clone())))
                .clone();
            (reg.next_id, root)
        };
        // Its last-words file held open (and its record owned, or not) from now
        // until the monitor closes: src/owner.rs.
        if let Some(path) = config.path() {
            crate::owner::hold(path);
        }
        let detector = config.stall.map(stall::Detector::new);
        if detector.is_some() {
            block.set(block::STALLED, 0.0);
            block.set(block::STALLED_SECONDS, 0.0);
        }
        let m = Arc::new(Monitor {
            id,
            env,
            config,
            block: block.clone(),
            state: Mutex::new(MonitorState {
                stall: detector,
                ..MonitorState::default()
            }),
        });

        // Which allocator totals the verdict can read, found while the
        // process is calm (a probe allocation: see `alloc`), not at the
        // first record, at the limit, beside a thread allocating fast.
        if m.config.root == Path::new("/") {
            alloc::source();
        }
        // The first sample, outside the registry lock.
        let v8 = latest_v8(&self.lock().monitors);
        let mut events = Vec::new();
        let mut stderr_taken = false;
        let reading = Reading::Full(root.sample());
        let no_triggers = |_: &Path, _: u64| false;
        step(
            &m,
            &reading,
            v8,
            &no_triggers,
            &mut stderr_taken,
            &mut events,
        );

        let config_path = m.config.path().map(Path::to_path_buf);
        let mut reg = self.lock();
        // The root may have been dropped meanwhile (its last other monitor closed).
        reg.roots.entry(root.path.clone()).or_insert(root);
        reg.monitors.push(m);
        reg.epoch += 1;
        reg.deliver(events);
        if !reg.running {
            let wake = eventfd().map(Arc::new);
            let thread_wake = wake.clone();
            let spawned = std::thread::Builder::new()
                .name("oomguard-sampler".into())
                .stack_size(256 * 1024)
                .spawn(move || self.run(thread_wake));
            if let Err(e) = spawned {
                reg.monitors.retain(|m| m.id != id);
                drop(reg);
                if let Some(path) = config_path.as_deref() {
                    crate::owner::release(path);
                }
                self.forget_roots();
                return Err(format!("cannot start the sampler thread: {e}"));
            }
            reg.running = true;
            reg.wake = wake;
        }
        reg.wake();
        Ok((id, block))
    }

    /// Stop a monitor. Returns false if no such monitor was running. Never
    /// waits for the sampler thread (which exits by itself when it finds no
    /// monitors); waits at most for a last-words write of this monitor in
    /// progress (non-blocking, a few µs).
    pub fn stop(&self, id: u32) -> bool {
        let closed = self.remove(|m| m.id == id);
        let found = !closed.is_empty();
        self.finish(closed);
        found
    }

    /// Stop every monitor of an environment and forget its sink (the
    /// environment is going away: a worker terminating, or exit).
    pub fn drop_env(&self, env: usize) {
        let closed = self.remove(|m| m.env == env);
        let sink = self.lock().sinks.remove(&env);
        self.finish(closed);
        drop(sink);
    }

    /// Take monitors out of the registry; returns each with whether another
    /// live monitor still writes its last-words path.
    fn remove(&self, which: impl Fn(&Monitor) -> bool) -> Vec<(Arc<Monitor>, bool)> {
        let mut reg = self.lock();
        let (gone, kept): (Vec<_>, Vec<_>) = reg.monitors.drain(..).partition(|m| which(m));
        reg.monitors = kept;
        let out = gone
            .into_iter()
            .map(|m| {
                let shared = m
                    .config
                    .path()
                    .is_some_and(|p| reg.monitors.iter().any(|o| o.config.path() == Some(p)));
                (m, shared)
            })
            .collect();
        reg.epoch += 1;
        // Readers of roots nobody watches are closed (their descriptors too,
        // once the thread's pass in progress lets go of them).
        let live: Vec<PathBuf> = reg.monitors.iter().map(|m| m.config.root.clone()).collect();
        reg.roots.retain(|root, _| live.contains(root));
        publish_stalls(&reg.monitors);
        reg.wake();
        out
    }

    fn forget_roots(&self) {
        let mut reg = self.lock();
        let live: Vec<PathBuf> = reg.monitors.iter().map(|m| m.config.root.clone()).collect();
        reg.roots.retain(|root, _| live.contains(root));
    }

    /// Closed monitors: nothing more is written for them, and a last-words
    /// file left while below every threshold is emptied (a clean shutdown
    /// must not show a stale warning as its termination message), unless
    /// another live monitor writes the same file.
    fn finish(&self, closed: Vec<(Arc<Monitor>, bool)>) {
        for (m, shared) in closed {
            let mut st = m.state();
            st.closed = true;
            lastwords::forget_appendix(m.id);
            if let Some(path) = m.config.path() {
                if !shared && st.level == 0 && st.record.wrote_file {
                    let _ = lastwords::empty_file(path);
                }
                crate::owner::release(path);
            }
        }
    }

    /// The shared block of a running monitor.
    pub fn block(&self, id: u32) -> Option<Arc<Block>> {
        self.lock()
            .monitors
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.block.clone())
    }

    pub fn info(&self) -> Info {
        let reg = self.lock();
        Info {
            running: reg.running,
            thread_id: reg.thread_id,
            monitors: reg.monitors.len(),
            roots: reg.roots.len(),
            triggers: reg.trigger_kinds.clone(),
            snapshots: SNAPSHOTS.load(Ordering::Relaxed),
            ticks: TICKS.load(Ordering::Relaxed),
        }
    }

    fn run(&'static self, wake: Option<Arc<OwnedFd>>) {
        // Stalls: the sampler must keep running when the cgroup's page
        // cache (its own code included) is reclaimed and faulted back.
        crate::pin::pin_sampler_code();
        prefer_short_slices();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i64;
        let mut triggers = Triggers::default();
        let mut armed: Option<ArmKey> = None;
        let mut last_events_wake: Option<Instant> = None;
        let mut fds: Vec<RawFd> = Vec::new();
        // The last wait may have ended on a readable fd (the wake fd or a
        // trigger): read them only then (on a timeout none is).
        let mut ready = true;
        let mut work = Work {
            epoch: 0,
            monitors: Vec::new(),
            roots: Vec::new(),
        };
        loop {
            // A wake-up that comes after this sees the new monitors; one
            // before it is consumed here, by the pass it asked for.
            if let Some(w) = wake.as_ref().filter(|_| ready) {
                let mut buf = [0u8; 8];
                // SAFETY: nonblocking read into a local buffer.
                unsafe { libc::read(w.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            }
            // 1. Under the lock: what to sample.
            {
                let mut reg = self.lock();
                if reg.monitors.is_empty() {
                    reg.running = false;
                    reg.thread_id = None;
                    reg.trigger_kinds.clear();
                    reg.wake = None;
                    return;
                }
                reg.thread_id = Some(tid);
                work.epoch = reg.epoch;
                work.monitors.extend(reg.monitors.iter().cloned());
                work.roots.extend(reg.roots.values().cloned());
            }

            // 2. Unlocked: read, decide, write last words.
            trace::record(
                trace::PASS,
                0,
                now_ms(),
                f64::NAN,
                work.monitors.len() as f64,
                0.0,
                0.0,
                [0; 3],
            );
            let mut events = Vec::new();
            let kernel = |dir: &Path, at: u64| triggers.has_usage_threshold(dir, at);
            let wait = match guard::catch("a sampler pass", || pass(&work, &kernel, &mut events)) {
                Ok(w) => w,
                Err(p) => {
                    // Outside any one root or monitor: every monitor hears it once.
                    let msg = p.to_string();
                    for m in &work.monitors {
                        let mut st = m.state();
                        if !st.panicked {
                            st.panicked = true;
                            events.push(Event::error(
                                m.id,
                                st.level,
                                &m.block,
                                now_ms(),
                                ErrorCode::Internal,
                                msg.clone(),
                            ));
                        }
                    }
                    RETRY_AFTER
                }
            };

            // 3. Under the lock: publish.
            self.lock().deliver(events);

            // 4. Unlocked: re-register kernel wake-ups when monitors, a
            // cgroup or a limit changed. Registering a v1 trigger can block
            // for tens of ms in the kernel (synchronize_rcu): that time
            // counts against the wait.
            let mut wait = wait;
            let key = arm_key(&work);
            if armed.as_ref() != Some(&key) {
                let t0 = Instant::now();
                let (usage, events) = arm_plan(&work);
                if guard::catch("registering kernel wake-ups", || {
                    triggers.set(&usage, &events)
                })
                .is_err()
                {
                    triggers = Triggers::default();
                }
                armed = Some(key);
                wait = wait.saturating_sub(t0.elapsed());
                self.lock().trigger_kinds = triggers.kinds();
            }
            // Let go of closed monitors and roots (their descriptors); the
            // vectors are kept for the next pass (no allocation per pass).
            work.monitors.clear();
            work.roots.clear();

            // 5. Sleep until the interval passes, a kernel trigger fires, or
            // a monitor is added or removed (the wake fd).
            let with_events = last_events_wake.is_none_or(|t| t.elapsed() >= EVENTS_WAKE_GAP);
            triggers.poll_fds_into(with_events, &mut fds);
            fds.extend(wake.as_ref().map(|w| w.as_raw_fd()));
            trace::record(
                trace::WAIT,
                0,
                now_ms(),
                f64::NAN,
                wait.as_secs_f64() * 1000.0,
                0.0,
                0.0,
                [fds.len() as i32, 0, 0],
            );
            let slept = Instant::now();
            ready = Triggers::wait(&fds, wait);
            trace::record(
                trace::WOKE,
                0,
                now_ms(),
                f64::NAN,
                slept.elapsed().as_secs_f64() * 1000.0,
                0.0,
                0.0,
                [0; 3],
            );
            if ready && triggers.drain() {
                last_events_wake = Some(Instant::now());
            }
        }
    }
}

/// Ask the scheduler for short time slices for this thread (Linux 6.12+,
/// EEVDF's custom slice: `sched_setattr` with `sched_runtime` under
/// SCHED_OTHER, no privilege needed, nice unchanged). A thread that asks for
/// 0.1 ms gets an earlier deadline when it wakes, so it runs soon after its
/// timer or a kernel wake-up even with every core busy; it uses microseconds
/// per wake-up, so it takes nothing from anyone. Traced kills under two
/// CPU-bound processes showed the sampler waiting 50-130 ms for a CPU in
/// the last moments before a kill. Older kernels refuse it: nothing changes.
fn prefer_short_slices() {
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
        util_min: u32,
        util_max: u32,
    }
    // SAFETY: plain syscalls on this thread with a valid struct.
    unsafe {
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, 0);
        if nice == -1 && *libc::__errno_location() != 0 {
            return;
        }
        if libc::sched_getscheduler(0) != libc::SCHED_OTHER {
            return;
        }
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy: libc::SCHED_OTHER as u32,
            flags: 0,
            nice,
            priority: 0,
            runtime: 100_000,
            deadline: 0,
            period: 0,
            util_min: 0,
            util_max: 0,
        };
        libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0);
    }
}

type ArmKey = (u64, u64);

fn arm_key(work: &Work) -> ArmKey {
    (work.epoch, ARM_GEN.load(Ordering::Relaxed))
}

/// The kernel wake-ups the live monitors want: v1 usage thresholds through
/// `cgroup.event_control` (usage is never below the working set, so it
/// crosses first), v2 `memory.events` changes.
fn arm_plan(work: &Work) -> (Vec<(Location, u64)>, Vec<Location>) {
    let mut usage: Vec<(Location, u64)> = Vec::new();
    let mut events: Vec<Location> = Vec::new();
    for m in &work.monitors {
        let Some(root) = work.roots.iter().find(|r| r.path == m.config.root) else {
            continue;
        };
        let (Some(loc), limit) = root.armed_for() else {
            continue;
        };
        if let Some(limit) = limit {
            for t in &m.config.thresholds {
                usage.push(((*loc).clone(), threshold_bytes(limit, *t)));
            }
        }
        if !events.iter().any(|l| l.dir == loc.dir) {
            events.push((*loc).clone());
        }
    }
    (usage, events)
}

/// The usage value a v1 kernel trigger is registered at for a threshold.
fn threshold_bytes(limit: u64, threshold: f64) -> u64 {
    (limit as f64 * threshold) as u64
}

/// One pass: sample every root, step every monitor. Returns how long to sleep.
fn pass(work: &Work, kernel: &dyn Fn(&Path, u64) -> bool, events: &mut Vec<Event>) -> Duration {
    let readings: Vec<(&Path, Reading)> = work
        .roots
        .iter()
        .map(|r| (r.path.as_path(), read_root(r, &work.monitors)))
        .collect();
    // Several monitors may cross in one pass: stderr gets one line.
    let mut stderr_taken = false;
    let v8 = latest_v8(&work.monitors);
    let mut wait = Duration::from_secs(3600);
    for m in &work.monitors {
        let Some((_, reading)) = readings.iter().find(|(p, _)| *p == m.config.root) else {
            continue;
        };
        wait = wait.min(step(m, reading, v8, kernel, &mut stderr_taken, events));
    }
    publish_stalls(&work.monitors);
    wait
}

/// A sample of the usage alone where every monitor of the root is quiet
/// and the sample proves it still is; else a snapshot.
fn read_root(root: &Root, monitors: &[Arc<Monitor>]) -> Reading {
    let mut quiet = Vec::new();
    for m in monitors.iter().filter(|m| m.config.root == root.path) {
        let st = m.state();
        if st.closed {
            continue;
        }
        match st.quiet {
            Some(q) => quiet.push((m.config.basis, q)),
            None => return Reading::Full(root.sample()),
        }
    }
    if quiet.is_empty() {
        return Reading::Full(root.sample());
    }
    match root.tick(&quiet) {
        Some(t) => Reading::Tick(t),
        None => Reading::Full(root.sample()),
    }
}

/// Handle one sample for one monitor, catching a panic (one `error` event,
/// said once until a step succeeds). Returns how long it may sleep.
fn step(
    m: &Monitor,
    reading: &Reading,
    v8: Option<V8Known>,
    kernel: &dyn Fn(&Path, u64) -> bool,
    stderr_taken: &mut bool,
    events: &mut Vec<Event>,
) -> Duration {
    let mut st = m.state();
    if st.closed {
        return Duration::from_secs(3600);
    }
    let mine = events.len();
    let r = guard::catch("a monitor's step", || match reading {
        Reading::Tick(t) => evaluate_tick(m, &mut st, t, v8, kernel),
        Reading::Full(Ok(s)) => evaluate(m, &mut st, s, v8, kernel, stderr_taken, events),
        Reading::Full(Err(msg)) => {
            // A panic while reading this root: said like a failed read.
            fail(
                m,
                &mut st,
                now_ms(),
                ErrorCode::Internal,
                msg.clone(),
                events,
            );
            RETRY_AFTER
        }
    });
    match r {
        Ok(w) => {
            if !matches!(reading, Reading::Full(Err(_))) {
                st.panicked = false;
            }
            w
        }
        Err(p) => {
            st.quiet = None;
            events.truncate(mine);
            if !st.panicked {
                st.panicked = true;
                let msg = p.to_string();
                events.push(Event::error(
                    m.id,
                    st.level,
                    &m.block,
                    now_ms(),
                    ErrorCode::Internal,
                    msg,
                ));
            }
            RETRY_AFTER
        }
    }
}

/// Mark the monitor failing (the numbers are the last good ones) and say why, once.
fn fail(
    m: &Monitor,
    st: &mut MonitorState,
    ts: f64,
    code: ErrorCode,
    msg: String,
    events: &mut Vec<Event>,
) {
    if st.failing {
        return;
    }
    st.failing = true;
    m.block.set(block::FAILING, 1.0);
    events.push(Event::error(m.id, st.level, &m.block, ts, code, msg));
}

fn evaluate(
    m: &Monitor,
    st: &mut MonitorState,
    s: &Sample,
    v8: Option<V8Known>,
    kernel: &dyn Fn(&Path, u64) -> bool,
    stderr_taken: &mut bool,
    events: &mut Vec<Event>,
) -> Duration {
    #[cfg(test)]
    tests::fault(&m.config.root, tests::PANIC_IN_STEP);
    st.quiet = None;
    let snap = &s.snap;
    let cfg = &m.config;
    let (Some((limit, source)), Some(basis)) = (snap.limit(), cfg.basis.bytes(snap)) else {
        // Keep the last good numbers; say so once.
        let msg = if snap.problems.is_empty() {
            snap.locate_error
                .clone()
                .unwrap_or_else(|| "no memory numbers could be read".into())
        } else {
            snap.problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        };
        fail(m, st, s.ts, ErrorCode::Read, msg, events);
        return cfg.max_interval.max(RETRY_AFTER);
    };
    st.failing = false;
    st.v8_follow.sample(v8, snap.usage);
    let limit_f = limit as f64;
    let basis_f = basis as f64;
    let ratio = ratio_of(basis_f, limit_f);
    let rate = s.rates[basis_index(cfg.basis)];
    let headroom = limit_f - basis_f;
    let ttl = time_to_limit_ms(headroom, rate);
    let old = st.level;
    let new = next_level(old, ratio, &cfg.thresholds, cfg.hysteresis);
    st.level = new;
    m.block.write(|b| {
        b.set(block::LEVEL, new as f64);
        b.set(block::TIMESTAMP, s.ts);
        b.set(block::RATIO, ratio);
        b.set(block::BASIS, basis_f);
        b.set(block::LIMIT, limit_f);
        b.set(block::HEADROOM, headroom);
        b.set(block::GROWTH, rate);
        b.set(block::TIME_TO_LIMIT, ttl.unwrap_or(f64::NAN));
        b.set(block::USAGE, snap.usage.map_or(f64::NAN, |v| v as f64));
        b.set(
            block::WORKING_SET,
            snap.working_set.map_or(f64::NAN, |v| v as f64),
        );
        b.set(block::RSS, snap.rss.map_or(f64::NAN, |v| v as f64));
        b.set(block::SOURCE, block::source_code(source));
        b.set(block::SAMPLES, b.get(block::SAMPLES) + 1.0);
        b.set(block::FAILING, 0.0);
    });

    // The limit changed: say so before any level it moves (the ratio above
    // is already against the new limit; the kernel triggers follow through
    // arm_key). `limit` is promised within one sampling interval of the
    // change (limit.test.js, docker.test.js): every sample reads the limit.
    let previous = st.limit.replace(limit);
    if let Some(prev) = previous.filter(|p| *p != limit) {
        let heap = m.block.v8().and_then(|v| v.numbers.heap_size_limit);
        events.push(Event {
            monitor: m.id,
            kind: EventKind::Limit,
            level: new as u32,
            threshold: f64::NAN,
            ratio,
            basis_bytes: basis_f,
            limit_bytes: limit_f,
            headroom_bytes: headroom,
            growth_bytes_per_sec: rate,
            time_to_limit_ms: ttl,
            timestamp_ms: s.ts,
            message: None,
            code: None,
            last_words: None,
            last_words_error: None,
            limit_change: Some(Box::new(limit_change(snap, prev as f64, source, heap))),
            stall: None,
        });
    }

    // Stalls: fed before the flight record, so that every record written
    // while stalled says so, and the start of one is recorded at once.
    let stall_now = stall_feed(m, st, s);
    let stall_started = matches!(stall_now.transition, Some(stall::Transition::Started(_)));

    // The flight record.
    let mut went: Option<String> = None;
    let mut went_wrong: Option<String> = None;
    let mut traced = false;
    if let Some(lw) = &cfg.last_words {
        let due = match st.record.due(old, new, basis_f, limit_f, s.at) {
            _ if stall_started => Some(RecordEvent::Stall),
            due => due,
        };
        if let Some(event) = due {
            let (split, usage_at_split) = st.split(&cfg.root, snap.usage, s.ts);
            let line = lastwords::record(&RecordInput {
                snap,
                basis: basis_f,
                ratio,
                growth: rate,
                time_to_limit_ms: ttl,
                v8,
                usage_at_v8: st.v8_follow.usage_at_v8,
                split,
                usage_at_split,
                now_ms: s.ts,
                level: new,
                thresholds: &cfg.thresholds,
                event,
                seq: st.record.seq + 1,
                stall: stall_now.figures.as_ref().map(|f| (f, None)),
            });
            let line = lastwords::with_appendix(m.id, line);
            st.record.wrote(basis_f, new, s.at);
            let mut places = Vec::new();
            let t0 = Instant::now();
            // For the trace: 0 written, -1 not tried, else the errno (EAGAIN: stderr not ready).
            let (mut stderr_result, mut file_result) = (-1, -1);
            // stderr: level changes only (a log line per 1% would be noise),
            // one line per pass however many monitors moved.
            if lw.stderr && event != RecordEvent::Update {
                if *stderr_taken || lastwords::write_stderr(&line) {
                    places.push("stderr".to_string());
                    stderr_result = 0;
                } else {
                    stderr_result = libc::EAGAIN;
                }
                *stderr_taken = true;
            }
            if let Some(path) = &lw.path {
                let r = lastwords::write_file(path, &line);
                file_result = r.as_ref().err().map_or(0, |e| e.errno.max(1));
                match r.map_err(|e| e.message) {
                    Ok(()) => {
                        st.record.wrote_file = true;
                        st.record.failing = false;
                        places.push(path.display().to_string());
                    }
                    Err(e) => {
                        if !st.record.failing {
                            st.record.failing = true;
                            events.push(Event::error(
                                m.id,
                                new,
                                &m.block,
                                s.ts,
                                ErrorCode::LastWords,
                                format!("last words: {e}"),
                            ));
                        }
                        went_wrong = Some(e);
                    }
                }
            }
            if trace::enabled() {
                traced = true;
                let code = match event {
                    RecordEvent::Threshold => 1,
                    RecordEvent::Recovered => 2,
                    RecordEvent::Update => 3,
                    RecordEvent::Stall => 4,
                };
                trace::record(
                    trace::STEP,
                    new as u32,
                    s.ts,
                    ratio,
                    old as f64,
                    t0.elapsed().as_secs_f64() * 1e6,
                    st.record.seq as f64,
                    [code, file_result, stderr_result],
                );
            }
            went = (!places.is_empty()).then(|| places.join(","));
        }
    }

    if new != old {
        let ev = |kind, level: usize, threshold: f64, with_record: bool| Event {
            monitor: m.id,
            kind,
            level: level as u32,
            threshold,
            ratio,
            basis_bytes: basis_f,
            limit_bytes: limit_f,
            headroom_bytes: headroom,
            growth_bytes_per_sec: rate,
            time_to_limit_ms: ttl,
            timestamp_ms: s.ts,
            message: None,
            code: None,
            last_words: if with_record { went.clone() } else { None },
            last_words_error: if with_record {
                went_wrong.clone()
            } else {
                None
            },
            limit_change: None,
            stall: None,
        };
        // The record is about the level reached: it rides on that event.
        if new > old {
            for l in old + 1..=new {
                events.push(ev(EventKind::Threshold, l, cfg.thresholds[l - 1], l == new));
            }
        } else {
            for l in (new..old).rev() {
                events.push(ev(EventKind::Recovered, l, cfg.thresholds[l], l == new));
            }
        }
    }

    if let Some(tr) = stall_now.transition {
        let (split, usage_at_split) = st.split(&cfg.root, snap.usage, s.ts);
        let c = StallCtx {
            snap,
            ts: s.ts,
            basis: basis_f,
            ratio,
            limit: limit_f,
            headroom,
            growth: rate,
            evidence: lastwords::Evidence {
                v8,
                usage_at_v8: st.v8_follow.usage_at_v8,
                split,
                usage_at_split,
                now_ms: s.ts,
            },
        };
        events.push(stall_event(
            m,
            new,
            tr,
            &c,
            went.clone().filter(|_| stall_started),
        ));
    }
    if let Some(after) = cfg.on_stall_exit_after_ms {
        stall_exit(m, st, s, after, basis_f, ratio, rate, v8);
    }

    let usage = snap.usage;
    let kernel_wakes = kernel_wakes(
        cfg,
        new,
        snap.location.as_ref(),
        snap.cgroup_limit,
        usage,
        kernel,
    );
    let w = next_wait(m, st, new, basis_f, limit_f, rate, kernel_wakes);
    st.quiet = quiet(cfg, st, new, limit, snap);
    if !traced {
        // A step that wrote nothing (those that wrote were recorded above).
        trace_unwritten_step(new, s.ts, ratio, old, st.record.seq as f64);
    }
    w
}

/// The basis as a share of the limit; NaN without a limit.
fn ratio_of(basis: f64, limit: f64) -> f64 {
    if limit > 0.0 {
        basis / limit
    } else {
        f64::NAN
    }
}

/// The trace record of a step that wrote no record (see src/trace.rs).
fn trace_unwritten_step(level: usize, ts: f64, ratio: f64, from_level: usize, seq: f64) {
    if trace::enabled() {
        trace::record(
            trace::STEP,
            level as u32,
            ts,
            ratio,
            from_level as f64,
            0.0,
            seq,
            [0, -1, -1],
        );
    }
}

/// The bounds inside which samples of the usage alone will do for this
/// monitor, from a snapshot at `level` against `limit`; None where every
/// sample must be a snapshot: the rss basis or no cgroup usage (what a
/// sample of the usage cannot measure), no working set to start from, at a
/// level with last words to keep (records are written from snapshots),
/// while stall detection watches closely, and, with stall detection, while
/// a parent that holds the limit has its usage in the stall zone (or
/// unknown): a sample of the usage alone reads this cgroup's, and under a
/// parent's limit other cgroups' memory can fill it while this cgroup's
/// usage stays low.
fn quiet(
    cfg: &Config,
    st: &MonitorState,
    level: usize,
    limit: u64,
    snap: &Snapshot,
) -> Option<Quiet> {
    let measurable = match cfg.basis {
        Basis::Rss => false,
        Basis::Usage => snap.usage.is_some(),
        Basis::WorkingSet => snap.usage.is_some() && snap.working_set.is_some(),
    };
    if !measurable
        || !snap.has_cgroup_usage()
        || (level > 0 && cfg.last_words.is_some())
        || st
            .stall
            .as_ref()
            .is_some_and(|d| d.stalled() || d.watching_closely())
    {
        return None;
    }
    let stall_from = cfg.stall.map(|c| threshold_bytes(limit, 1.0 - c.margin));
    if let (Some(from), Some(parent)) = (stall_from, &snap.limiting) {
        if parent.usage.is_none_or(|u| u >= from) {
            return None;
        }
    }
    let top = cfg.thresholds.len();
    let up = if level < top {
        threshold_bytes(limit, cfg.thresholds[level])
    } else {
        limit
    };
    let down = if level > 0 {
        threshold_bytes(limit, (cfg.thresholds[level - 1] - cfg.hysteresis).max(0.0))
    } else {
        0
    };
    Some(Quiet {
        up,
        down,
        stall_from,
    })
}

/// A sample of the usage alone for a quiet monitor: its level stands (the
/// pass made sure), the numbers the sample measured are published (usage,
/// the basis, ratio, headroom, growth; the working set is the usage less
/// the last snapshot's inactive file unless read now), the rest keep the
/// last snapshot's values, and the interval policy runs as on a snapshot.
fn evaluate_tick(
    m: &Monitor,
    st: &mut MonitorState,
    t: &TickSample,
    v8: Option<V8Known>,
    kernel: &dyn Fn(&Path, u64) -> bool,
) -> Duration {
    #[cfg(test)]
    tests::fault(&m.config.root, tests::PANIC_IN_STEP);
    st.v8_follow.sample(v8, Some(t.usage));
    let cfg = &m.config;
    let (Some(limit), Some(_)) = (st.limit, st.quiet) else {
        // Not quiet after all (cannot happen: the pass checked): look again soon.
        return cfg.min_interval;
    };
    let limit_f = limit as f64;
    let basis_f = match cfg.basis {
        Basis::Usage => t.usage,
        _ => t.working_set,
    } as f64;
    let ratio = ratio_of(basis_f, limit_f);
    let rate = t.rates[basis_index(cfg.basis)];
    let headroom = limit_f - basis_f;
    let ttl = time_to_limit_ms(headroom, rate);
    m.block.write(|b| {
        b.set(block::TIMESTAMP, t.ts);
        b.set(block::RATIO, ratio);
        b.set(block::BASIS, basis_f);
        b.set(block::HEADROOM, headroom);
        b.set(block::GROWTH, rate);
        b.set(block::TIME_TO_LIMIT, ttl.unwrap_or(f64::NAN));
        b.set(block::USAGE, t.usage as f64);
        b.set(block::WORKING_SET, t.working_set as f64);
        b.set(block::SAMPLES, b.get(block::SAMPLES) + 1.0);
    });
    if let Some(d) = st.stall.as_mut() {
        d.gap();
    }
    let level = st.level;
    let kernel_wakes = kernel_wakes(
        cfg,
        level,
        t.location.as_deref(),
        t.cgroup_limit,
        Some(t.usage),
        kernel,
    );
    let w = next_wait(m, st, level, basis_f, limit_f, rate, kernel_wakes);
    // As a snapshot's step that wrote nothing.
    trace_unwritten_step(level, t.ts, ratio, level, st.record.seq as f64);
    w
}

/// Whether the kernel itself will say when usage reaches the next threshold
/// (a v1 `cgroup.event_control` trigger is armed there) and usage is below
/// it: usage is never below the working set, so it crosses first.
fn kernel_wakes(
    cfg: &Config,
    level: usize,
    location: Option<&Location>,
    cgroup_limit: Option<u64>,
    usage: Option<u64>,
    kernel: &dyn Fn(&Path, u64) -> bool,
) -> bool {
    level < cfg.thresholds.len()
        && cfg.basis != Basis::Rss
        && match (location, cgroup_limit, usage) {
            (Some(loc), Some(cg_limit), Some(usage)) => {
                let at = threshold_bytes(cg_limit, cfg.thresholds[level]);
                usage < at && kernel(&loc.dir, at)
            }
            _ => false,
        }
}

/// The interval policy: how long a monitor at `level` may sleep, published
/// in the block.
fn next_wait(
    m: &Monitor,
    st: &MonitorState,
    level: usize,
    basis_f: f64,
    limit_f: f64,
    rate: f64,
    kernel_wakes: bool,
) -> Duration {
    let cfg = &m.config;
    let top = cfg.thresholds.len();
    // Sleep no longer than the fastest plausible growth needs to reach the
    // next threshold up; where the kernel will wake the thread, long.
    let next = if level < top {
        cfg.thresholds[level] * limit_f
    } else {
        limit_f
    };
    let mut w = if kernel_wakes {
        cfg.max_interval
    } else {
        interval_for(next - basis_f, rate, cfg.min_interval, cfg.max_interval)
    };
    // The flight record: while at a level, look again soon enough that a
    // move of MOVE_SHARE of the limit at the measured rate is seen.
    if level > 0 && cfg.path().is_some() && rate.abs() > MIN_GROWTH {
        let refresh = Duration::from_secs_f64(lastwords::MOVE_SHARE * limit_f / (3.0 * rate.abs()))
            .max(lastwords::MIN_GAP);
        w = w.min(refresh.max(cfg.min_interval));
    }
    if st.stall.as_ref().is_some_and(|d| d.watching_closely()) {
        w = w.min(STALL_POLL);
    }
    m.block.set(block::INTERVAL, w.as_secs_f64() * 1000.0);
    w
}

// ---------------------------------------------------------------------------
// Stalls: each monitor's detector is fed every sample; a stall is recorded,
// reported, and on request ends the process from this thread (JavaScript
// may be the one stuck).

/// While a stall is suspected or on, sample at least this often.
const STALL_POLL: Duration = Duration::from_millis(50);

static EPOCH: once_cell::sync::Lazy<Instant> = once_cell::sync::Lazy::new(Instant::now);

fn mono_ms(at: Instant) -> f64 {
    at.saturating_duration_since(*EPOCH).as_secs_f64() * 1000.0
}

/// Per root: whether a monitor with stall detection sees it stalled.
static STALLS: once_cell::sync::Lazy<Mutex<HashMap<PathBuf, bool>>> =
    once_cell::sync::Lazy::new(|| Mutex::new(HashMap::new()));

/// Whether `root`'s cgroup is stalled, as the sampler last saw it; None when
/// no monitor with stall detection watches that root.
pub fn stalled(root: &Path) -> Option<bool> {
    STALLS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(root)
        .copied()
}

/// Publish the roots' stall state from the monitors' blocks (no monitor
/// lock). Runs every pass: where nothing changed (nearly always) it compares
/// and builds nothing.
fn publish_stalls(monitors: &[Arc<Monitor>]) {
    // A root is stalled where any of its monitors with detection sees it so.
    let state = |root: &Path| {
        monitors
            .iter()
            .filter(|m| m.config.root == root)
            .map(|m| m.block.get(block::STALLED))
            .filter(|v| v.is_finite())
            .fold(None, |any: Option<bool>, v| {
                Some(any.unwrap_or(false) | (v == 1.0))
            })
    };
    let mut g = STALLS.lock().unwrap_or_else(|p| p.into_inner());
    let unchanged = monitors
        .iter()
        .all(|m| g.get(&m.config.root).copied() == state(&m.config.root))
        && g.keys().all(|root| state(root).is_some());
    if unchanged {
        return;
    }
    let mut now: HashMap<PathBuf, bool> = HashMap::new();
    for m in monitors {
        if let Some(v) = state(&m.config.root) {
            now.insert(m.config.root.clone(), v);
        }
    }
    *g = now;
}

/// This sample as the detector saw it.
struct StallNow {
    transition: Option<stall::Transition>,
    /// While stalled: the figures so far (for the record).
    figures: Option<stall::Figures>,
}

fn stall_feed(m: &Monitor, st: &mut MonitorState, s: &Sample) -> StallNow {
    let Some(d) = st.stall.as_mut() else {
        return StallNow {
            transition: None,
            figures: None,
        };
    };
    let t = mono_ms(s.at);
    let transition = d.feed(stall::Reading::from_snapshot(&s.snap, t));
    m.block
        .set(block::STALLED, if d.stalled() { 1.0 } else { 0.0 });
    m.block
        .set(block::STALL_DURATION, d.duration_ms(t).unwrap_or(f64::NAN));
    m.block.set(block::STALLED_SECONDS, d.stalled_seconds());
    let figures = match transition {
        Some(stall::Transition::Started(f)) => Some(f),
        _ => d.duration_ms(t).map(|duration_ms| stall::Figures {
            duration_ms,
            ..d.last().copied().unwrap_or_default()
        }),
    };
    StallNow {
        transition,
        figures,
    }
}

struct StallCtx<'a> {
    snap: &'a Snapshot,
    ts: f64,
    basis: f64,
    ratio: f64,
    limit: f64,
    headroom: f64,
    growth: f64,
    evidence: lastwords::Evidence,
}

fn stall_event(
    m: &Monitor,
    level: usize,
    tr: stall::Transition,
    c: &StallCtx,
    last_words: Option<String>,
) -> Event {
    let (kind, fig) = match tr {
        stall::Transition::Started(f) => (EventKind::Stall, f),
        stall::Transition::Ended(f) => (EventKind::StallEnd, f),
    };
    let (cause, cause_reason) = lastwords::verdict(c.snap, c.basis, &c.evidence);
    let limiting = c.snap.limiting.as_ref().map(|l| l.path.clone());
    Event {
        monitor: m.id,
        kind,
        level: level as u32,
        threshold: f64::NAN,
        ratio: c.ratio,
        basis_bytes: c.basis,
        limit_bytes: c.limit,
        headroom_bytes: c.headroom,
        growth_bytes_per_sec: c.growth,
        time_to_limit_ms: None,
        timestamp_ms: c.ts,
        message: None,
        code: None,
        last_words,
        last_words_error: None,
        limit_change: None,
        stall: Some(Box::new(StallNote {
            figures: fig,
            cause: cause.as_str(),
            reason: stall::reason(&fig, &cause_reason, limiting.as_deref()),
            limiting_cgroup: limiting,
        })),
    }
}

/// With `onStall: { action: 'exit' }`: once the stall has lasted `after_ms`,
/// write the final record (to stderr whatever `lastWords` says: the process
/// is about to end itself and must say why) and end the process at once.
#[allow(clippy::too_many_arguments)]
fn stall_exit(
    m: &Monitor,
    st: &mut MonitorState,
    s: &Sample,
    after_ms: f64,
    basis: f64,
    ratio: f64,
    growth: f64,
    v8: Option<V8Known>,
) {
    let t = mono_ms(s.at);
    let Some(d) = st.stall.as_mut() else { return };
    if !d.action_due(after_ms, t) {
        return;
    }
    let fig = stall::Figures {
        duration_ms: d.duration_ms(t).unwrap_or(0.0),
        ..d.last().copied().unwrap_or_default()
    };
    let (split, usage_at_split) = st.split(&m.config.root, s.snap.usage, s.ts);
    let line = lastwords::record(&RecordInput {
        snap: &s.snap,
        basis,
        ratio,
        growth,
        time_to_limit_ms: None,
        v8,
        usage_at_v8: st.v8_follow.usage_at_v8,
        split,
        usage_at_split,
        now_ms: s.ts,
        level: st.level,
        thresholds: &m.config.thresholds,
        event: RecordEvent::Stall,
        seq: st.record.seq + 1,
        stall: Some((&fig, Some(stall::EXIT_CODE))),
    });
    let line = lastwords::with_appendix(m.id, line);
    if let Some(path) = m.config.path() {
        let _ = lastwords::write_file(path, &line);
    }
    lastwords::write_stderr(&line);
    // SAFETY: _exit ends the process at once, without running atexit
    // handlers or touching the JavaScript thread (which may be stuck).
    unsafe { libc::_exit(stall::EXIT_CODE) };
}

/// The freshest V8 numbers of each environment, summed (no allocation: a
/// pass runs this every time, and there are few monitors).
fn latest_v8(monitors: &[Arc<Monitor>]) -> Option<V8Known> {
    let add = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, None) => a,
        (None, b) => b,
    };
    let mut out: Option<V8Known> = None;
    for (i, m) in monitors.iter().enumerate() {
        if monitors[..i].iter().any(|o| o.env == m.env) {
            continue; // this environment is counted already
        }
        let freshest = monitors[i..]
            .iter()
            .filter(|o| o.env == m.env)
            .filter_map(|o| o.block.v8())
            .reduce(|a, b| {
                if b.timestamp_ms > a.timestamp_ms {
                    b
                } else {
                    a
                }
            });
        let Some(v) = freshest else { continue };
        out = Some(match out {
            None => v,
            Some(acc) => {
                let (a, b) = (acc.numbers, v.numbers);
                V8Known {
                    timestamp_ms: acc.timestamp_ms.min(v.timestamp_ms),
                    numbers: V8Numbers {
                        heap_used: add(a.heap_used, b.heap_used),
                        heap_total: add(a.heap_total, b.heap_total),
                        external: add(a.external, b.external),
                        array_buffers: add(a.array_buffers, b.array_buffers),
                        heap_size_limit: add(a.heap_size_limit, b.heap_size_limit),
                        rss: a.rss.or(b.rss),
                    },
                }
            }
        });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    // Fault injection, for these tests only: panic while reading, or while
    // stepping a monitor, for one root path.
    pub(crate) const PANIC_IN_READ: u32 = 1;
    pub(crate) const PANIC_IN_STEP: u32 = 2;
    static FAULTS: Mutex<Vec<(PathBuf, u32)>> = Mutex::new(Vec::new());

    pub(crate) fn fault(root: &Path, what: u32) {
        let hit = FAULTS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|(r, w)| r == root && w & what != 0);
        if hit {
            panic!("injected fault {what} for {}", root.display());
        }
    }

    fn set_faults(root: &Path, what: u32) {
        let mut f = FAULTS.lock().unwrap_or_else(|p| p.into_inner());
        f.retain(|(r, _)| r != root);
        if what != 0 {
            f.push((root.to_path_buf(), what));
        }
    }

    /// Collects events; panics on the first threshold event when asked.
    struct TestSink {
        events: Arc<Mutex<Vec<Event>>>,
        panic_on_threshold: Arc<AtomicU32>,
    }

    impl Sink for TestSink {
        fn deliver(&self, e: Event) -> bool {
            if e.kind == EventKind::Threshold
                && self.panic_on_threshold.swap(0, Ordering::SeqCst) == 1
            {
                panic!("injected: the sink panics");
            }
            self.events.lock().unwrap().push(e);
            true
        }
    }

    /// A root of its own for one test: a symlink to a fixture tree.
    fn private_root(fixture: &str, name: &str) -> PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("__test__/fixtures")
            .join(fixture);
        let dir = std::env::temp_dir().join(format!("oomguard-rs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        std::os::unix::fs::symlink(&src, &dir).unwrap();
        dir
    }

    fn wait_until(what: &str, ms: u64, f: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_millis(ms);
        while !f() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn config(thresholds: &[f64], root: &Path, path: Option<PathBuf>) -> Config {
        Config::new(
            thresholds.to_vec(),
            0.05f64.min(thresholds[0] / 2.0),
            Basis::WorkingSet,
            1.0,
            20.0,
            Some(LastWordsConfig {
                stderr: false,
                path,
            }),
            root.to_path_buf(),
        )
        .unwrap()
    }

    #[test]
    fn config_new_refuses_what_the_sampler_cannot_work_with() {
        let ok = |t: &[f64], h: f64, min: f64, max: f64| {
            Config::new(t.to_vec(), h, Basis::Usage, min, max, None, "/".into())
        };
        let bad: &[(&str, Result<Config, ConfigError>, &str)] = &[
            (
                "no thresholds",
                ok(&[], 0.0, 1.0, 10.0),
                "options.thresholds must be an array of 1 to 16",
            ),
            (
                "17 thresholds",
                ok(&[0.5; 17], 0.0, 1.0, 10.0),
                "got 17 entries",
            ),
            (
                "NaN",
                ok(&[f64::NAN], 0.0, 1.0, 10.0),
                "options.thresholds[0] must be a ratio",
            ),
            (
                "infinite",
                ok(&[0.5, f64::INFINITY], 0.0, 1.0, 10.0),
                "options.thresholds[1] must be a ratio",
            ),
            ("0", ok(&[0.0], 0.0, 1.0, 10.0), "options.thresholds[0]"),
            (
                "1",
                ok(&[0.5, 1.0], 0.0, 1.0, 10.0),
                "options.thresholds[1]",
            ),
            (
                "equal",
                ok(&[0.5, 0.5], 0.0, 1.0, 10.0),
                "options.thresholds[1] must be above",
            ),
            (
                "descending",
                ok(&[0.8, 0.9, 0.85], 0.0, 1.0, 10.0),
                "options.thresholds[2] must be above options.thresholds[1] (0.9)",
            ),
            (
                "hysteresis negative",
                ok(&[0.8], -0.1, 1.0, 10.0),
                "options.hysteresis must be a ratio from 0 to 0.5",
            ),
            (
                "hysteresis NaN",
                ok(&[0.8], f64::NAN, 1.0, 10.0),
                "options.hysteresis",
            ),
            (
                "hysteresis over 0.5",
                ok(&[0.8], 0.6, 1.0, 10.0),
                "options.hysteresis",
            ),
            (
                "hysteresis at the first threshold",
                ok(&[0.2], 0.2, 1.0, 10.0),
                "below the lowest threshold (0.2)",
            ),
            (
                "min interval too small",
                ok(&[0.8], 0.0, 0.01, 10.0),
                "options.minIntervalMs",
            ),
            (
                "min interval NaN",
                ok(&[0.8], 0.0, f64::NAN, 10.0),
                "options.minIntervalMs",
            ),
            (
                "max below min",
                ok(&[0.8], 0.0, 50.0, 10.0),
                "options.maxIntervalMs must be between minIntervalMs (50)",
            ),
            (
                "max too large",
                ok(&[0.8], 0.0, 1.0, 4e6),
                "options.maxIntervalMs",
            ),
            (
                "max infinite",
                ok(&[0.8], 0.0, 1.0, f64::INFINITY),
                "options.maxIntervalMs",
            ),
        ];
        for (name, r, want) in bad {
            match r {
                Err(e) => assert!(e.0.contains(want), "case {name}: {e}"),
                Ok(_) => panic!("case {name}: accepted"),
            }
        }
        let nul = Config::new(
            vec![0.8],
            0.0,
            Basis::Usage,
            1.0,
            10.0,
            Some(LastWordsConfig {
                stderr: false,
                path: Some("/tmp/a\0b".into()),
            }),
            "/".into(),
        );
        assert!(nul.unwrap_err().0.contains("options.lastWords.path"));
        // The edges are accepted.
        let edges = ok(&[1e-9, 0.5, 1.0 - 1e-9], 0.0, 0.1, 3_600_000.0).unwrap();
        assert_eq!(edges.thresholds(), &[1e-9, 0.5, 1.0 - 1e-9]);
        assert!(ok(&[0.9], 0.5, 60_000.0, 60_000.0).is_ok());
        let sixteen: Vec<f64> = (1..=16).map(|i| i as f64 / 20.0).collect();
        assert!(ok(&sixteen, 0.0, 1.0, 1.0).is_ok());
    }

    #[test]
    fn the_first_sample_is_taken_before_start_returns() {
        let sampler: &'static Sampler = Box::leak(Box::new(Sampler::new()));
        let root = private_root("v2-busy", "first");
        for _ in 0..20 {
            let (id, block) = sampler.start(1, config(&[0.9], &root, None)).unwrap();
            // At least start()'s own: the thread, woken by start (and by the
            // last stop), may have taken more by now, but not usually all
            // of them before start returns, every time.
            assert!(
                block.get(block::SAMPLES) >= 1.0,
                "a sample before start returned"
            );
            assert_eq!(block.get(block::LIMIT), 268435456.0);
            assert!(sampler.stop(id));
        }
        let _ = std::fs::remove_file(&root);
    }

    #[test]
    fn a_panic_becomes_one_error_event_and_sampling_goes_on() {
        let sampler: &'static Sampler = Box::leak(Box::new(Sampler::new()));
        let events = Arc::new(Mutex::new(Vec::new()));
        let panic_sink = Arc::new(AtomicU32::new(0));
        sampler.add_sink(
            7,
            Box::new(TestSink {
                events: events.clone(),
                panic_on_threshold: panic_sink.clone(),
            }),
        );
        let root = private_root("v2-busy", "panic");
        let errors = |code: ErrorCode| {
            events
                .lock()
                .unwrap()
                .iter()
                .filter(|e| e.kind == EventKind::Error && e.code == Some(code))
                .count()
        };

        // A reader that panics, from the very first sample on.
        set_faults(&root, PANIC_IN_READ);
        let (id, block) = sampler.start(7, config(&[0.9], &root, None)).unwrap();
        assert_eq!(block.get(block::SAMPLES), 0.0);
        assert_eq!(
            block.get(block::FAILING),
            1.0,
            "the monitor says it has no numbers"
        );
        std::thread::sleep(Duration::from_millis(350)); // a few retries
        assert_eq!(
            errors(ErrorCode::Internal),
            1,
            "one error event, not one per pass"
        );
        let msg = events.lock().unwrap()[0].message.clone().unwrap();
        assert!(
            msg.contains("injected fault 1")
                && msg.contains("internal error (a bug in oomguard) in reading"),
            "{msg}"
        );
        assert!(sampler.info().running);

        // Fixed: sampling goes on.
        set_faults(&root, 0);
        wait_until("good samples", 2000, || block.get(block::SAMPLES) >= 3.0);
        assert_eq!(block.get(block::FAILING), 0.0);

        // A panic while stepping the monitor: one more error, then on again.
        set_faults(&root, PANIC_IN_STEP);
        wait_until("the step's error", 2000, || {
            errors(ErrorCode::Internal) == 2
        });
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(errors(ErrorCode::Internal), 2);
        set_faults(&root, 0);
        let n = block.get(block::SAMPLES);
        wait_until("samples after the step's panic", 2000, || {
            block.get(block::SAMPLES) >= n + 3.0
        });

        // A sink that panics: the event is lost, the thread is not.
        panic_sink.store(1, Ordering::SeqCst);
        let (id2, block2) = sampler.start(7, config(&[0.5], &root, None)).unwrap();
        assert_eq!(block2.get(block::LEVEL), 1.0, "v2-busy is at 0.515");
        let n = block.get(block::SAMPLES);
        wait_until("samples after the sink's panic", 2000, || {
            block.get(block::SAMPLES) >= n + 3.0
        });
        assert_eq!(panic_sink.load(Ordering::SeqCst), 0, "the sink did panic");
        assert!(sampler.info().running);

        sampler.stop(id);
        sampler.stop(id2);
        wait_until("the thread to exit", 2000, || !sampler.info().running);
        let _ = std::fs::remove_file(&root);
    }

    #[test]
    fn flight_record_in_the_file_from_the_first_crossing() {
        let sampler: &'static Sampler = Box::leak(Box::new(Sampler::new()));
        let root = private_root("v2-busy", "flight");
        let dir =
            std::env::temp_dir().join(format!("oomguard-rs-{}-flight-out", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let file = dir.join("termination-log");
        // 0.515 of the limit: at the first of two thresholds.
        let (id, _) = sampler
            .start(1, config(&[0.5, 0.9], &root, Some(file.clone())))
            .unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.ends_with("}\n") && text.matches('\n').count() == 1,
            "{text}"
        );
        assert!(text.contains("\"level\":1,\"final\":false,\"event\":\"threshold\",\"thresholds\":[0.5,0.9],\"seq\":1"), "{text}");
        assert!(text.contains("\"threshold\":0.5,"), "{text}");
        // Closed above a threshold: the record stays.
        sampler.stop(id);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
        // Closed below every threshold, after writing: emptied.
        let slow = Config::new(
            vec![0.5, 0.9],
            0.05,
            Basis::WorkingSet,
            60_000.0,
            60_000.0,
            Some(LastWordsConfig {
                stderr: false,
                path: Some(file.clone()),
            }),
            root.clone(),
        )
        .unwrap();
        let (id, block) = sampler.start(1, slow).unwrap();
        assert_eq!(block.get(block::LEVEL), 1.0);
        wait_until("the thread's first pass", 2000, || {
            block.get(block::SAMPLES) >= 2.0
        });
        {
            // As if it had recovered (the fixture cannot move).
            sampler.lock().monitors[0].state().level = 0;
        }
        sampler.stop(id);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&root);
    }

    #[test]
    fn levels_with_hysteresis() {
        let t = [0.8, 0.9, 0.95];
        let cases: &[(&str, usize, f64, usize)] = &[
            ("below all", 0, 0.5, 0),
            ("first", 0, 0.8, 1),
            ("jump to top", 0, 0.97, 3),
            ("stay inside hysteresis", 1, 0.76, 1),
            ("recover below threshold - hysteresis", 1, 0.74, 0),
            ("fall two levels", 3, 0.8, 1),
            ("fall all the way", 3, 0.1, 0),
            ("NaN keeps level", 2, f64::NAN, 2),
            ("above 1", 2, 1.2, 3),
        ];
        for (name, cur, ratio, want) in cases {
            assert_eq!(next_level(*cur, *ratio, &t, 0.05), *want, "case {name}");
        }
    }

    #[test]
    fn growth_follows_a_steady_leak() {
        let mut g = Growth::default();
        let t0 = Instant::now();
        let mib = 1024.0 * 1024.0;
        let mut rate = 0.0;
        for i in 0..=100 {
            rate = g.observe(t0 + Duration::from_millis(i * 20), i as f64 * 0.2 * mib);
        }
        assert!((rate - 10.0 * mib).abs() < 0.01 * 10.0 * mib, "rate {rate}");
        assert_eq!(time_to_limit_ms(100.0 * mib, 10.0 * mib), Some(10000.0));
        let ttl = time_to_limit_ms(100.0 * mib, rate).unwrap();
        assert!((ttl - 10000.0).abs() < 100.0, "{ttl}");
        assert_eq!(time_to_limit_ms(100.0 * mib, 0.0), None);
        assert_eq!(time_to_limit_ms(100.0 * mib, -5.0 * mib), None);
    }

    #[test]
    fn limit_change_verdicts() {
        use crate::locate::{CgroupVersion, Location};
        let mib = 1024.0 * 1024.0;
        let snap = |limit: Option<u64>| Snapshot {
            location: Some(Location {
                version: CgroupVersion::V1,
                cgroup_path: "/x".into(),
                mount_point: "/sys/fs/cgroup/memory".into(),
                dir: "/sys/fs/cgroup/memory/x".into(),
                resolved: true,
            }),
            cgroup_limit: limit,
            mem_total: Some(1 << 34),
            ..Snapshot::default()
        };
        // Node 20's default heap limit in a 256 MiB container is 259 MiB.
        let heap = Some(259.0 * mib);
        type Case = (
            &'static str,
            Option<u64>,
            LimitSource,
            Option<f64>,
            Option<&'static str>,
        );
        let cases: &[Case] = &[
            (
                "grown to 300 MiB",
                Some(300 << 20),
                LimitSource::CgroupV1,
                heap,
                Some("near"),
            ),
            (
                "grown to 512 MiB",
                Some(512 << 20),
                LimitSource::CgroupV1,
                heap,
                Some("fits"),
            ),
            (
                "shrunk to 200 MiB",
                Some(200 << 20),
                LimitSource::CgroupV1,
                heap,
                Some("above"),
            ),
            (
                "no heap number",
                Some(200 << 20),
                LimitSource::CgroupV1,
                None,
                None,
            ),
            (
                "limit removed: the host's",
                None,
                LimitSource::Host,
                heap,
                None,
            ),
        ];
        for (name, limit, source, heap, want) in cases {
            let c = limit_change(&snap(*limit), 256.0 * mib, *source, *heap);
            assert_eq!(c.heap_limit, *want, "case {name}");
            assert_eq!(c.previous_limit_bytes, 256.0 * mib);
            let code = c.diagnosis.as_ref().map(|d| d.code);
            let want_code = match *want {
                Some("above") => Some(diagnose::codes::HEAP_LIMIT_ABOVE_CONTAINER_LIMIT),
                Some("near") => Some(diagnose::codes::HEAP_LIMIT_NEAR_CONTAINER_LIMIT),
                _ => None,
            };
            assert_eq!(code, want_code, "case {name}");
        }
    }

    #[test]
    fn interval_shrinks_near_the_threshold() {
        let min = Duration::from_millis(1);
        let max = Duration::from_millis(1000);
        let mib = 1024.0 * 1024.0;
        assert_eq!(interval_for(0.0, 0.0, min, max), min);
        assert_eq!(interval_for(1e12, 0.0, min, max), max);
        let far = interval_for(180.0 * mib, 0.0, min, max);
        let near = interval_for(10.0 * mib, 0.0, min, max);
        assert!(far > near && near >= min, "{far:?} {near:?}");
        // A fast measured rate shortens it further.
        assert!(interval_for(180.0 * mib, 4096.0 * mib, min, max) < far);
        // 180 MiB at 2 GiB/s: 87.9 ms.
        let ms = far.as_secs_f64() * 1000.0;
        assert!((ms - 180.0 / 2048.0 * 1000.0).abs() < 0.01, "{ms}");
    }

    /// Under a parent's limit, other cgroups' memory can fill it while this
    /// cgroup's usage stays low: with stall detection, no sample may be the
    /// usage alone while the parent's usage is in the stall zone.
    #[test]
    fn no_quiet_while_a_limiting_parent_is_in_the_stall_zone() {
        use crate::locate::{CgroupVersion, Location};
        use crate::reader::LimitingCgroup;
        let mib = 1u64 << 20;
        let limit = 256 * mib;
        let root = Path::new("/");
        let mut cfg = config(&[0.8, 0.9], root, None);
        cfg.last_words = None;
        let stalls = cfg
            .clone()
            .with_stall(Some(stall::StallConfig::default()), None)
            .unwrap();
        let snap = |parent_usage: Option<u64>| Snapshot {
            location: Some(Location {
                version: CgroupVersion::V1,
                cgroup_path: "/pod/app".into(),
                mount_point: "/sys/fs/cgroup/memory".into(),
                dir: "/sys/fs/cgroup/memory/pod/app".into(),
                resolved: true,
            }),
            cgroup_limit: Some(limit),
            usage: Some(40 * mib),
            working_set: Some(30 * mib),
            limiting: Some(LimitingCgroup {
                path: "/pod".into(),
                depth: 1,
                usage: parent_usage,
                ..LimitingCgroup::default()
            }),
            ..Snapshot::default()
        };
        let st = MonitorState {
            stall: Some(stall::Detector::new(stall::StallConfig::default())),
            ..MonitorState::default()
        };
        let cases = [
            ("parent far from its limit", Some(100 * mib), true),
            ("parent in the stall zone", Some(250 * mib), false),
            ("parent usage unknown", None, false),
        ];
        for (name, usage, quiet_ok) in cases {
            let q = quiet(&stalls, &st, 0, limit, &snap(usage));
            assert_eq!(q.is_some(), quiet_ok, "{name}: {q:?}");
            // Without stall detection the parent does not matter.
            let plain = MonitorState::default();
            assert!(
                quiet(&cfg, &plain, 0, limit, &snap(usage)).is_some(),
                "{name}"
            );
        }
    }
}
