//! The watcher: one native sampler thread per process serves every monitor.
//! It owns the open cgroup files, samples with `pread` at an interval that
//! adapts to the distance from the next threshold, moves each monitor's level
//! with hysteresis, hands events to a [`Sink`] and, when a monitor's highest
//! threshold is crossed, writes the last-words line itself.
//!
//! Nothing here knows about N-API: the sink is a trait, and the per-monitor
//! shared block is plain memory the JS side views as a `Float64Array`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::diagnose::{self, Diagnosis, V8Numbers};
use crate::lastwords;
use crate::locate::Location;
use crate::reader::{LimitSource, Reader, Snapshot};
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

#[derive(Debug, Clone)]
pub struct LastWordsConfig {
    pub stderr: bool,
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub thresholds: Vec<f64>,
    pub hysteresis: f64,
    pub basis: Basis,
    pub min_interval: Duration,
    pub max_interval: Duration,
    pub last_words: Option<LastWordsConfig>,
    pub root: PathBuf,
}

// ---------------------------------------------------------------------------
// The per-monitor block: f64 slots the sampler writes under a sequence lock
// and JavaScript reads without calling into native code.

pub mod block {
    /// Even while stable, odd while the sampler writes.
    pub const SEQ: usize = 0;
    /// Number of thresholds at or above which the basis is (0 = below all).
    pub const LEVEL: usize = 1;
    pub const TIMESTAMP: usize = 2;
    pub const RATIO: usize = 3;
    pub const BASIS: usize = 4;
    pub const LIMIT: usize = 5;
    pub const HEADROOM: usize = 6;
    pub const GROWTH: usize = 7;
    pub const TIME_TO_LIMIT: usize = 8;
    pub const USAGE: usize = 9;
    pub const WORKING_SET: usize = 10;
    pub const RSS: usize = 11;
    /// 1 cgroup-v1, 2 cgroup-v2, 3 host.
    pub const SOURCE: usize = 12;
    pub const SAMPLES: usize = 13;
    pub const INTERVAL: usize = 14;
    /// 1 while the last read failed (the numbers are the last good ones).
    pub const FAILING: usize = 15;
    // Written by JavaScript: the latest V8 numbers it knows.
    pub const V8_TIMESTAMP: usize = 16;
    pub const V8_HEAP_USED: usize = 17;
    pub const V8_HEAP_TOTAL: usize = 18;
    pub const V8_EXTERNAL: usize = 19;
    pub const V8_ARRAY_BUFFERS: usize = 20;
    pub const V8_HEAP_SIZE_LIMIT: usize = 21;
    pub const V8_RSS: usize = 22;
    pub const LEN: usize = 24;

    pub const NAMES: &[(&str, usize)] = &[
        ("seq", SEQ),
        ("level", LEVEL),
        ("timestampMs", TIMESTAMP),
        ("ratio", RATIO),
        ("basisBytes", BASIS),
        ("limitBytes", LIMIT),
        ("headroomBytes", HEADROOM),
        ("growthBytesPerSec", GROWTH),
        ("timeToLimitMs", TIME_TO_LIMIT),
        ("usageBytes", USAGE),
        ("workingSetBytes", WORKING_SET),
        ("rssBytes", RSS),
        ("source", SOURCE),
        ("samples", SAMPLES),
        ("intervalMs", INTERVAL),
        ("failing", FAILING),
        ("v8.timestampMs", V8_TIMESTAMP),
        ("v8.heapUsedBytes", V8_HEAP_USED),
        ("v8.heapTotalBytes", V8_HEAP_TOTAL),
        ("v8.externalBytes", V8_EXTERNAL),
        ("v8.arrayBuffersBytes", V8_ARRAY_BUFFERS),
        ("v8.heapSizeLimitBytes", V8_HEAP_SIZE_LIMIT),
        ("v8.rssBytes", V8_RSS),
    ];
}

/// Memory shared with JavaScript. Slots hold f64 bit patterns; single
/// aligned 8-byte stores and loads are atomic, and the sequence slot lets a
/// reader see one sample whole.
pub struct Block {
    slots: Box<[AtomicU64]>,
}

impl Block {
    pub fn new() -> Arc<Block> {
        let slots: Vec<AtomicU64> = (0..block::LEN)
            .map(|_| AtomicU64::new(f64::NAN.to_bits()))
            .collect();
        let b = Block {
            slots: slots.into_boxed_slice(),
        };
        b.set(block::SEQ, 0.0);
        b.set(block::LEVEL, 0.0);
        b.set(block::SAMPLES, 0.0);
        b.set(block::FAILING, 0.0);
        Arc::new(b)
    }

    pub fn get(&self, i: usize) -> f64 {
        f64::from_bits(self.slots[i].load(Ordering::Acquire))
    }

    pub fn set(&self, i: usize, v: f64) {
        self.slots[i].store(v.to_bits(), Ordering::Release)
    }

    /// Pointer for an external `Float64Array` of `block::LEN` elements.
    pub fn as_ptr(&self) -> *mut f64 {
        self.slots.as_ptr() as *mut f64
    }

    fn write(&self, f: impl FnOnce(&Block)) {
        let seq = self.get(block::SEQ);
        self.set(block::SEQ, seq + 1.0);
        f(self);
        self.set(block::SEQ, seq + 2.0);
    }

    /// The V8 numbers JavaScript last wrote, if any.
    pub fn v8(&self) -> Option<V8Known> {
        let t = self.get(block::V8_TIMESTAMP);
        if !t.is_finite() {
            return None;
        }
        let g = |i| {
            let v = self.get(i);
            v.is_finite().then_some(v)
        };
        Some(V8Known {
            timestamp_ms: t,
            heap_used: g(block::V8_HEAP_USED),
            heap_total: g(block::V8_HEAP_TOTAL),
            external: g(block::V8_EXTERNAL),
            array_buffers: g(block::V8_ARRAY_BUFFERS),
            heap_size_limit: g(block::V8_HEAP_SIZE_LIMIT),
            rss: g(block::V8_RSS),
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct V8Known {
    pub timestamp_ms: f64,
    pub heap_used: Option<f64>,
    pub heap_total: Option<f64>,
    pub external: Option<f64>,
    pub array_buffers: Option<f64>,
    pub heap_size_limit: Option<f64>,
    pub rss: Option<f64>,
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
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Threshold => "threshold",
            EventKind::Recovered => "recovered",
            EventKind::Error => "error",
            EventKind::Limit => "limit",
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
    /// Where the last-words line went, when this crossing wrote one.
    pub last_words: Option<String>,
    /// `limit` events: what changed.
    pub limit_change: Option<Box<LimitChange>>,
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
// The registry and the thread.

struct Monitor {
    id: u32,
    env: usize,
    config: Config,
    level: usize,
    block: Arc<Block>,
    failing: bool,
    /// The limit at the last good sample, to see it change.
    limit: Option<u64>,
}

struct RootState {
    reader: Reader,
    growth: [Growth; 3],
    /// Where the cgroup was and its limit at the last sample: what kernel
    /// wake-ups are registered for.
    location: Option<Location>,
    cgroup_limit: Option<u64>,
}

#[derive(Default)]
struct Registry {
    monitors: Vec<Monitor>,
    sinks: HashMap<usize, Box<dyn Sink>>,
    roots: HashMap<PathBuf, RootState>,
    next_id: u32,
    stop: bool,
    thread: Option<JoinHandle<()>>,
    thread_id: Option<i64>,
    triggers: Option<Triggers>,
    /// Bumped whenever monitors change, so the thread re-arms its triggers.
    epoch: u64,
}

pub struct Sampler {
    inner: Mutex<Registry>,
}

pub static SAMPLER: once_cell::sync::Lazy<Sampler> = once_cell::sync::Lazy::new(|| Sampler {
    inner: Mutex::new(Registry::default()),
});

impl Registry {
    /// Interrupt the thread's wait (monitors changed, or stop).
    fn wake(&self) {
        if let Some(t) = &self.triggers {
            t.wake();
        }
    }
}

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
}

impl Sampler {
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

    /// Start a monitor; starts the thread when it is the first.
    pub fn start(&'static self, env: usize, config: Config) -> (u32, Arc<Block>) {
        let block = Block::new();
        let mut reg = self.lock();
        reg.next_id = reg.next_id.wrapping_add(1).max(1);
        let id = reg.next_id;
        reg.roots
            .entry(config.root.clone())
            .or_insert_with(|| RootState {
                reader: Reader::new(config.root.clone()),
                growth: [Growth::default(); 3],
                location: None,
                cgroup_limit: None,
            });
        reg.monitors.push(Monitor {
            id,
            env,
            config,
            level: 0,
            block: block.clone(),
            failing: false,
            limit: None,
        });
        reg.epoch += 1;
        if reg.thread.is_none() {
            reg.stop = false;
            reg.thread = Some(
                std::thread::Builder::new()
                    .name("oomguard-sampler".into())
                    .stack_size(256 * 1024)
                    .spawn(move || self.run())
                    .expect("spawn the sampler thread"),
            );
        }
        reg.wake();
        (id, block)
    }

    /// Stop a monitor. When it was the last, stop the thread and join it.
    /// Returns false if no such monitor was running.
    pub fn stop(&self, id: u32) -> bool {
        let mut reg = self.lock();
        let before = reg.monitors.len();
        reg.monitors.retain(|m| m.id != id);
        let found = reg.monitors.len() != before;
        reg.epoch += 1;
        self.finish_if_idle(reg);
        found
    }

    /// Stop every monitor of an environment and forget its sink (the
    /// environment is going away: a worker terminating, or exit).
    pub fn drop_env(&self, env: usize) {
        let mut reg = self.lock();
        reg.monitors.retain(|m| m.env != env);
        let sink = reg.sinks.remove(&env);
        reg.epoch += 1;
        self.finish_if_idle(reg);
        drop(sink);
    }

    fn finish_if_idle(&self, mut reg: MutexGuard<'_, Registry>) {
        // Readers of roots nobody watches are closed (their descriptors too).
        let live: Vec<PathBuf> = reg.monitors.iter().map(|m| m.config.root.clone()).collect();
        reg.roots.retain(|root, _| live.contains(root));
        reg.wake();
        if !reg.monitors.is_empty() {
            return;
        }
        reg.stop = true;
        let thread = reg.thread.take();
        drop(reg);
        if let Some(t) = thread {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
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
            running: reg.thread.is_some(),
            thread_id: reg.thread_id,
            monitors: reg.monitors.len(),
            roots: reg.roots.len(),
            triggers: reg.triggers.as_ref().map(|t| t.kinds()).unwrap_or_default(),
        }
    }

    fn run(&'static self) {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i64;
        let mut reg = self.lock();
        reg.thread_id = Some(tid);
        let mut armed = None;
        let mut last_events_wake = None;
        loop {
            if reg.stop {
                reg.thread_id = None;
                reg.triggers = None;
                return;
            }
            let wait = sample_all(&mut reg);
            // Re-register kernel wake-ups when monitors, a cgroup or a
            // limit changed.
            let key = arm_key(&reg);
            let mut wait = wait;
            if armed.as_ref() != Some(&key) {
                // Registering a v1 trigger can block for tens of ms in the
                // kernel (synchronize_rcu): that time counts against the wait.
                let t0 = Instant::now();
                rearm(&mut reg);
                armed = Some(key);
                wait = wait.saturating_sub(t0.elapsed());
            }
            // Sleep until the interval passes, a kernel trigger fires, or a
            // monitor is added or removed (the wake fd).
            let with_events =
                last_events_wake.is_none_or(|t: Instant| t.elapsed() >= EVENTS_WAKE_GAP);
            let fds = reg
                .triggers
                .as_ref()
                .map(|t| t.poll_fds(with_events))
                .unwrap_or_default();
            drop(reg);
            Triggers::wait(&fds, wait);
            reg = self.lock();
            if reg.triggers.as_ref().is_some_and(|t| t.drain()) {
                last_events_wake = Some(Instant::now());
            }
        }
    }
}

type ArmKey = (u64, Vec<(PathBuf, Option<PathBuf>, Option<u64>)>);

fn arm_key(reg: &Registry) -> ArmKey {
    let mut roots: Vec<_> = reg
        .roots
        .iter()
        .map(|(root, st)| {
            (
                root.clone(),
                st.location.as_ref().map(|l| l.dir.clone()),
                st.cgroup_limit,
            )
        })
        .collect();
    roots.sort();
    (reg.epoch, roots)
}

/// Register kernel wake-ups for the live monitors: v1 usage thresholds
/// through `cgroup.event_control` (usage is never below the working set, so
/// it crosses first), v2 `memory.events` changes.
fn rearm(reg: &mut Registry) {
    let mut usage: Vec<(Location, u64)> = Vec::new();
    let mut events: Vec<Location> = Vec::new();
    for m in &reg.monitors {
        let Some(st) = reg.roots.get(&m.config.root) else {
            continue;
        };
        let Some(loc) = &st.location else { continue };
        if let Some(limit) = st.cgroup_limit {
            for t in &m.config.thresholds {
                usage.push((loc.clone(), threshold_bytes(limit, *t)));
            }
        }
        if !events.iter().any(|l| l.dir == loc.dir) {
            events.push(loc.clone());
        }
    }
    reg.triggers
        .get_or_insert_with(Triggers::default)
        .set(&usage, &events);
}

/// One pass: sample every root, update every monitor. Returns how long to sleep.
/// The usage value a v1 kernel trigger is registered at for a threshold.
fn threshold_bytes(limit: u64, threshold: f64) -> u64 {
    (limit as f64 * threshold) as u64
}

fn sample_all(reg: &mut Registry) -> Duration {
    let Registry {
        monitors,
        sinks,
        roots,
        triggers,
        ..
    } = reg;
    let mut wait = Duration::from_secs(3600);
    let mut snapshots: HashMap<PathBuf, (Snapshot, Instant, f64, [f64; 3])> = HashMap::new();
    for (root, state) in roots.iter_mut() {
        let snap = state.reader.snapshot();
        let at = Instant::now();
        let ts = now_ms();
        let mut rates = [0.0; 3];
        for b in [Basis::WorkingSet, Basis::Usage, Basis::Rss] {
            if let Some(v) = b.bytes(&snap) {
                rates[basis_index(b)] = state.growth[basis_index(b)].observe(at, v as f64);
            } else {
                rates[basis_index(b)] = state.growth[basis_index(b)].rate();
            }
        }
        state.location = snap.location.clone();
        if !snap.failed.limit {
            state.cgroup_limit = snap.cgroup_limit;
        }
        snapshots.insert(root.clone(), (snap, at, ts, rates));
    }

    // Several monitors may cross in one pass: stderr gets one line, each
    // monitor's file gets its own.
    let mut stderr_written = false;
    let v8 = latest_v8(monitors);

    for m in monitors.iter_mut() {
        let Some((snap, _, ts, rates)) = snapshots.get(&m.config.root) else {
            continue;
        };
        let limit = snap.limit();
        let basis = m.config.basis.bytes(snap);
        let (Some((limit, source)), Some(basis)) = (limit, basis) else {
            // Keep the last good numbers; say so once.
            if !m.failing {
                m.failing = true;
                m.block.set(block::FAILING, 1.0);
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
                if let Some(sink) = sinks.get(&m.env) {
                    sink.deliver(Event {
                        monitor: m.id,
                        kind: EventKind::Error,
                        level: m.level as u32,
                        threshold: f64::NAN,
                        ratio: m.block.get(block::RATIO),
                        basis_bytes: m.block.get(block::BASIS),
                        limit_bytes: m.block.get(block::LIMIT),
                        headroom_bytes: m.block.get(block::HEADROOM),
                        growth_bytes_per_sec: m.block.get(block::GROWTH),
                        time_to_limit_ms: None,
                        timestamp_ms: *ts,
                        message: Some(msg),
                        last_words: None,
                        limit_change: None,
                    });
                }
            }
            wait = wait.min(m.config.max_interval.max(Duration::from_millis(100)));
            continue;
        };
        m.failing = false;
        let limit_f = limit as f64;
        let basis_f = basis as f64;
        let ratio = if limit_f > 0.0 {
            basis_f / limit_f
        } else {
            f64::NAN
        };
        let rate = rates[basis_index(m.config.basis)];
        let headroom = limit_f - basis_f;
        let ttl = time_to_limit_ms(headroom, rate);
        let old = m.level;
        let new = next_level(old, ratio, &m.config.thresholds, m.config.hysteresis);
        m.level = new;
        m.block.write(|b| {
            b.set(block::LEVEL, new as f64);
            b.set(block::TIMESTAMP, *ts);
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
            b.set(
                block::SOURCE,
                match source {
                    LimitSource::CgroupV1 => 1.0,
                    LimitSource::CgroupV2 => 2.0,
                    LimitSource::Host => 3.0,
                },
            );
            b.set(block::SAMPLES, b.get(block::SAMPLES) + 1.0);
            b.set(block::FAILING, 0.0);
        });

        // The limit changed: say so before any level it moves (the ratio
        // above is already against the new limit; the kernel triggers follow
        // through arm_key).
        let previous = m.limit.replace(limit);
        if let (Some(prev), Some(sink)) = (previous.filter(|p| *p != limit), sinks.get(&m.env)) {
            let heap = m.block.v8().and_then(|v| v.heap_size_limit);
            sink.deliver(Event {
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
                timestamp_ms: *ts,
                message: None,
                last_words: None,
                limit_change: Some(Box::new(limit_change(snap, prev as f64, source, heap))),
            });
        }

        let top = m.config.thresholds.len();
        let mut written = None;
        if new == top && old < top {
            if let Some(lw) = &m.config.last_words {
                let line = lastwords::record(
                    snap,
                    basis_f,
                    ratio,
                    m.config.thresholds[top - 1],
                    rate,
                    ttl,
                    v8,
                    *ts,
                );
                let to = LastWordsConfig {
                    stderr: lw.stderr && !stderr_written,
                    path: lw.path.clone(),
                };
                let mut went = lastwords::write(&line, &to);
                if lw.stderr && stderr_written {
                    went.insert(0, "stderr".to_string());
                }
                stderr_written |= lw.stderr;
                written = Some(went.join(","));
            }
        }

        if new != old {
            if let Some(sink) = sinks.get(&m.env) {
                let ev = |kind, level: usize, threshold: f64, last_words: Option<String>| Event {
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
                    timestamp_ms: *ts,
                    message: None,
                    last_words,
                    limit_change: None,
                };
                if new > old {
                    for l in old + 1..=new {
                        let lw = if l == top { written.clone() } else { None };
                        sink.deliver(ev(EventKind::Threshold, l, m.config.thresholds[l - 1], lw));
                    }
                } else {
                    for l in (new..old).rev() {
                        sink.deliver(ev(EventKind::Recovered, l, m.config.thresholds[l], None));
                    }
                }
            }
        }

        // Sleep no longer than the fastest plausible growth needs to reach
        // the next threshold up.
        let next = if new < top {
            m.config.thresholds[new] * limit_f
        } else {
            limit_f
        };
        // Where the kernel itself will say when usage reaches the next
        // threshold (v1 cgroup.event_control), and usage is below it, the
        // thread can sleep long: usage is never below the working set, so it
        // crosses first. Elsewhere, the interval policy.
        let kernel_wakes = new < top
            && m.config.basis != Basis::Rss
            && match (
                &snap.location,
                snap.cgroup_limit,
                snap.usage,
                triggers.as_ref(),
            ) {
                (Some(loc), Some(cg_limit), Some(usage), Some(t)) => {
                    let at = threshold_bytes(cg_limit, m.config.thresholds[new]);
                    usage < at && t.has_usage_threshold(&loc.dir, at)
                }
                _ => false,
            };
        let w = if kernel_wakes {
            m.config.max_interval
        } else {
            interval_for(
                next - basis_f,
                rate,
                m.config.min_interval,
                m.config.max_interval,
            )
        };
        m.block.set(block::INTERVAL, w.as_secs_f64() * 1000.0);
        wait = wait.min(w);
    }
    wait
}

/// The freshest V8 numbers of each environment, summed.
fn latest_v8(monitors: &[Monitor]) -> Option<V8Known> {
    let mut per_env: HashMap<usize, V8Known> = HashMap::new();
    for m in monitors {
        if let Some(v) = m.block.v8() {
            let e = per_env.entry(m.env).or_insert(v);
            if v.timestamp_ms > e.timestamp_ms {
                *e = v;
            }
        }
    }
    let mut it = per_env.into_values();
    let first = it.next()?;
    let add = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, None) => a,
        (None, b) => b,
    };
    Some(it.fold(first, |acc, v| V8Known {
        timestamp_ms: acc.timestamp_ms.min(v.timestamp_ms),
        heap_used: add(acc.heap_used, v.heap_used),
        heap_total: add(acc.heap_total, v.heap_total),
        external: add(acc.external, v.external),
        array_buffers: add(acc.array_buffers, v.array_buffers),
        heap_size_limit: add(acc.heap_size_limit, v.heap_size_limit),
        rss: acc.rss.or(v.rss),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
