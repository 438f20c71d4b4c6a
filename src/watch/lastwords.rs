//! Last words: a flight record of one JSON line, written by the sampler
//! thread itself, so that it exists even if the kernel's SIGKILL comes a few
//! milliseconds later and the JavaScript thread is busy.
//!
//! From the first threshold crossing on, the file (Kubernetes'
//! `terminationMessagePath`, read up to 4096 bytes) always holds the latest
//! record: rewritten at every level change, up or down, and while at or above
//! the first threshold whenever the basis has moved by [`MOVE_SHARE`] of the
//! limit since the last write (at most every [`MIN_GAP`]). A kill that jumps
//! over the highest threshold between two samples still finds a record. The
//! file is rewritten in place with one `pwrite` of at most one page at offset
//! 0, so a kill in the middle of a rewrite leaves the old record or the new
//! one, never an empty or torn file. Level changes also go to stderr, one line
//! under [`MAX_LINE`] bytes (what `FallbackToLogsOnError` shows whole).
//!
//! Opening and writing never block: `O_NONBLOCK` (a FIFO without a reader
//! fails at once), and stderr is written only when `poll` says it can take
//! the line.

use std::ffi::CString;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::diagnose::V8Known;
use crate::json::{cut, string_max};
use crate::procs::{self, CgroupProcess};
use crate::reader::Snapshot;
use crate::watch::alloc::Split;
use crate::watch::owner::{self, Access};

/// Kubernetes reads at most this much of a termination message file.
pub const MAX_BYTES: usize = 4096;
/// A record (and so its stderr copy) is always shorter than this: the tail
/// Kubernetes shows from the log with `FallbackToLogsOnError` is 2048 bytes.
pub const MAX_LINE: usize = 2048;
/// The file is rewritten when the basis moved by this share of the limit...
pub const MOVE_SHARE: f64 = 0.01;
/// ...but no more often than this.
pub const MIN_GAP: Duration = Duration::from_millis(10);
/// Strings from the system (the cgroup path) are cut to this many bytes.
const MAX_STRING: usize = 512;

/// The likeliest cause of the growth, from the breakdown and V8's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    V8Heap,
    OutsideHeap,
    PageCache,
    Kernel,
    /// This process is a small part of the charge ([`procs::SMALL_SHARE`]):
    /// another process of the cgroup fills it.
    AnotherProcess,
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::V8Heap => "v8-heap",
            Verdict::OutsideHeap => "outside-heap",
            Verdict::PageCache => "page-cache",
            Verdict::Kernel => "kernel",
            Verdict::AnotherProcess => "another-process",
            Verdict::Unknown => "unknown",
        }
    }
}

/// What a verdict is built on beside the cgroup's snapshot, with how old
/// each part is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Evidence {
    /// V8's numbers as JavaScript last wrote them, and when: as old as the
    /// JavaScript thread has been busy.
    pub v8: Option<V8Known>,
    /// The cgroup's usage at the last sample before JavaScript wrote those
    /// V8 numbers: growth since then is what they cannot attribute.
    pub usage_at_v8: Option<u64>,
    /// This process's anonymous memory split by the allocator, read by the
    /// sampler thread itself (see [`crate::watch::alloc`]): now, or as recently as
    /// the reading's cost allows.
    pub split: Option<Split>,
    /// The cgroup's usage when that split was read (as `usage_at_v8`).
    pub usage_at_split: Option<u64>,
    /// When the verdict is made, Unix ms.
    pub now_ms: f64,
}

impl Evidence {
    /// How old the V8 numbers are, ms.
    pub fn v8_age_ms(&self) -> Option<f64> {
        self.v8
            .map(|v| (self.now_ms - v.timestamp_ms).max(0.0).round())
    }
}

/// Decide the verdict and say why, in one sentence. The one rule for every
/// record, event and stall cause:
///
/// 1. Kernel memory, page cache that cannot be dropped, and another process
///    of the cgroup come first: the cgroup's own numbers, read now.
/// 2. V8 heap or outside it: from the allocator's split of this process's
///    anonymous memory, where there is one at least as fresh as V8's
///    numbers (read now, or as recently as its cost allows). What malloc
///    holds is outside the V8 heap; the rest (V8's own mappings) is the
///    heap. V8's numbers only annotate.
/// 3. Else from V8's numbers, whatever their age.
///
/// Either way by [`attribute`]: the heap as it was read decides only what
/// the cgroup's growth since cannot overturn: `v8-heap` when it alone is
/// half the anonymous memory, `outside-heap` when it stays under half even
/// if all the growth since were heap. Anything else is `unknown`:
/// unattributed growth since the reading, with its age.
pub fn verdict(snap: &Snapshot, basis: f64, e: &Evidence) -> (Verdict, String) {
    let Some(s) = snap.stat.as_ref() else {
        return (Verdict::Unknown, "memory.stat could not be read".into());
    };
    let mib = |b: f64| format!("{:.0} MiB", b / 1048576.0);
    let g = |v: Option<u64>| v.unwrap_or(0) as f64;
    let basis = basis.max(1.0);
    let kernel = g(s.kernel) + g(s.sock);
    let shmem = g(s.shmem);
    // Page cache the working set still counts: tmpfs/shmem and active file pages.
    let cache = shmem + (g(s.file) - shmem - g(s.inactive_file)).max(0.0);
    let anon = g(s.anon);
    if kernel >= 0.4 * basis {
        return (
            Verdict::Kernel,
            format!(
                "kernel memory ({}, sockets included) is {:.0}% of the working set",
                mib(kernel),
                100.0 * kernel / basis
            ),
        );
    }
    if cache >= 0.5 * basis {
        return (
            Verdict::PageCache,
            format!(
                "page cache that cannot be dropped (tmpfs/shmem {}, active file {}) is {:.0}% of the working set",
                mib(shmem),
                mib(cache - shmem),
                100.0 * cache / basis
            ),
        );
    }
    if let Some(o) = another_process(snap, basis) {
        return (
            Verdict::AnotherProcess,
            format!(
                "this process's {} ({}) is {:.0}% of the working set; the largest process in the cgroup is pid {} ({}, {})",
                o.measure,
                mib(o.own as f64),
                100.0 * o.share,
                o.top.pid,
                command(o.top),
                mib(o.top_bytes as f64)
            ),
        );
    }
    let heap = e.v8.and_then(|v| v.numbers.heap_total);
    // What V8's numbers said, and how long ago.
    let v8_said = match (heap, e.v8_age_ms()) {
        (Some(h), Some(age)) => format!("V8's numbers, {age:.0} ms old, gave the heap {}", mib(h)),
        _ => "no V8 numbers were known".into(),
    };
    // What the cgroup grew by since `then` (None: unknown).
    let grown_since = |then: Option<u64>| {
        then.zip(snap.usage)
            .map(|(then, now)| now.saturating_sub(then) as f64)
    };
    // The split where it is at least as fresh as V8's numbers.
    let split = e
        .split
        .filter(|sp| e.v8.is_none_or(|v| sp.timestamp_ms >= v.timestamp_ms));
    if let Some(sp) = split {
        let own = sp.anon as f64;
        let malloc = sp.malloc.min(sp.anon) as f64;
        let outside_malloc = sp.outside_malloc() as f64;
        let of = anon.max(own);
        let age = (e.now_ms - sp.timestamp_ms).max(0.0).round();
        let grown = grown_since(e.usage_at_split);
        return match attribute(outside_malloc, grown, of) {
            Some(true) => (
                Verdict::V8Heap,
                format!(
                    "the V8 heap: {} of this process's {} of anonymous memory is outside malloc (malloc holds {}, read {age:.0} ms ago; {v8_said})",
                    mib(outside_malloc),
                    mib(own),
                    mib(malloc)
                ),
            ),
            Some(false) => (
                Verdict::OutsideHeap,
                format!(
                    "anonymous memory ({}) is mostly outside the V8 heap: malloc holds {} of this process's {} (Buffers, ArrayBuffers, native allocations; read {age:.0} ms ago; {v8_said})",
                    mib(of),
                    mib(malloc),
                    mib(own)
                ),
            ),
            None => (
                Verdict::Unknown,
                format!(
                    "unattributed growth since the allocator's reading ({age:.0} ms ago): the cgroup grew by {} since, when {} of this process's {} was outside malloc; anonymous memory is {} now",
                    grown.map_or_else(|| "an unknown amount".into(), mib),
                    mib(outside_malloc),
                    mib(own),
                    mib(anon)
                ),
            ),
        };
    }
    let Some(heap) = heap else {
        return (
            Verdict::Unknown,
            format!(
                "anonymous memory is {}; no V8 numbers were known",
                mib(anon)
            ),
        );
    };
    let age = e.v8_age_ms().unwrap_or(0.0);
    let grown = grown_since(e.usage_at_v8);
    match attribute(heap, grown, anon) {
        Some(true) => (
            Verdict::V8Heap,
            format!(
                "the V8 heap ({}) is most of the anonymous memory ({}); V8's numbers are {age:.0} ms old",
                mib(heap),
                mib(anon)
            ),
        ),
        Some(false) => (
            Verdict::OutsideHeap,
            format!(
                "anonymous memory ({}) is mostly outside the V8 heap ({}, {age:.0} ms old, and the {} grown since cannot change that): Buffers, ArrayBuffers, native allocations",
                mib(anon),
                mib(heap),
                mib(grown.unwrap_or(0.0))
            ),
        ),
        None => (
            Verdict::Unknown,
            format!(
                "unattributed growth since the last V8 reading ({age:.0} ms ago): the cgroup grew by {} since, when the V8 heap was {}; anonymous memory is {} now",
                grown.map_or_else(|| "an unknown amount".into(), mib),
                mib(heap),
                mib(anon)
            ),
        ),
    }
}

/// Heap or not, from `heap` bytes known at some moment and what the cgroup
/// grew by since (None: unknown), against `of` bytes of anonymous memory
/// now: the heap (true) where it alone was half of that; outside it
/// (false) where it stays under half even if all the growth were heap;
/// None where the growth could decide either way.
fn attribute(heap: f64, grown: Option<f64>, of: f64) -> Option<bool> {
    if heap >= 0.5 * of {
        Some(true)
    } else if grown.is_some_and(|g| heap + g < 0.5 * of) {
        Some(false)
    } else {
        None
    }
}

/// A process name in the record: at most 15 bytes, as the kernel keeps a
/// task's name (a record must stay under [`MAX_LINE`] with every field at
/// its longest).
fn command(p: &CgroupProcess) -> &str {
    let c = p.command.as_deref().unwrap_or("?");
    let mut end = c.len().min(15);
    while !c.is_char_boundary(end) {
        end -= 1;
    }
    &c[..end]
}

/// The largest other process, when this process is a small part of the
/// charge and that one is larger, compared by what both figures are known
/// for: resident anonymous memory (part of the working set, as the records'
/// shares are), else RSS.
struct Other<'a> {
    top: &'a CgroupProcess,
    /// "anonymous memory" or "RSS": what `own`, `share` and `top_bytes` measure.
    measure: &'static str,
    own: u64,
    top_bytes: u64,
    share: f64,
}

fn another_process(snap: &Snapshot, basis: f64) -> Option<Other<'_>> {
    let p = snap.processes.as_deref()?;
    let top = p.top()?;
    if p.count < 2 || top.pid == std::process::id() || basis <= 0.0 {
        return None;
    }
    let (measure, own, top_bytes) = match (snap.anon, top.anon) {
        (Some(own), Some(theirs)) => ("anonymous memory", own, theirs),
        _ => ("RSS", snap.rss?, top.rss?),
    };
    let share = own as f64 / basis;
    (share < procs::SMALL_SHARE && top_bytes > own).then_some(Other {
        top,
        measure,
        own,
        top_bytes,
        share,
    })
}

/// The record's largest process, with the figures the record gives it.
struct Largest<'a> {
    process: &'a CgroupProcess,
    rss: Option<u64>,
    anon: Option<u64>,
    /// How old its figures are at the record's time.
    age_ms: f64,
}

/// The largest process of the latest scan, by resident anonymous memory
/// (then RSS), one figure per process: this process's own
/// entry takes the snapshot's figures (read with the record, the record's
/// `rssBytes` and `anonBytes`), every other one the scan's, up to
/// [`procs::SCAN_EVERY`] old.
fn largest(snap: &Snapshot, now_ms: f64) -> Option<Largest<'_>> {
    let p = snap.processes.as_deref()?;
    let me = std::process::id();
    p.largest
        .iter()
        .map(|q| match q.pid == me {
            true => Largest {
                process: q,
                rss: snap.rss,
                anon: snap.anon,
                age_ms: 0.0,
            },
            false => Largest {
                process: q,
                rss: q.rss,
                anon: q.anon,
                age_ms: (now_ms - p.timestamp_ms).max(0.0),
            },
        })
        .filter(|l| l.rss.is_some() || l.anon.is_some())
        // The largest; of equals, the lowest pid (the scan's order).
        .max_by(|a, b| {
            (a.anon, a.rss)
                .cmp(&(b.anon, b.rss))
                .then(b.process.pid.cmp(&a.process.pid))
        })
}

fn num(out: &mut String, v: Option<f64>) {
    match v {
        Some(v) if v.is_finite() => {
            if v.fract() == 0.0 && v.abs() < 9.0e15 {
                let _ = write!(out, "{}", v as i64);
            } else {
                let _ = write!(out, "{v:.4}");
            }
        }
        _ => out.push_str("null"),
    }
}

/// A ratio the user chose, as written (shortest form that reads back the same).
fn exact(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push_str("null");
    }
}

fn string(out: &mut String, s: &str) {
    string_max(out, s, MAX_STRING)
}

/// UTC time as RFC 3339 with milliseconds, from Unix milliseconds.
pub fn iso_time(ms: f64) -> String {
    let ms = ms.max(0.0) as i64;
    let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Why a record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordEvent {
    /// The level went up.
    Threshold,
    /// The level went down (a recovery).
    Recovered,
    /// Same level; the basis moved by [`MOVE_SHARE`] of the limit or more.
    Update,
    /// Stuck at the limit without an OOM kill (see [`crate::watch::stall`]).
    Stall,
}

impl RecordEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordEvent::Threshold => "threshold",
            RecordEvent::Recovered => "recovered",
            RecordEvent::Update => "update",
            RecordEvent::Stall => "stall",
        }
    }
}

/// What one record says.
#[derive(Debug, Clone, Copy)]
pub struct RecordInput<'a> {
    pub snap: &'a Snapshot,
    pub basis: f64,
    pub ratio: f64,
    pub growth: f64,
    pub time_to_limit_ms: Option<f64>,
    pub v8: Option<V8Known>,
    /// See [`Evidence::usage_at_v8`].
    pub usage_at_v8: Option<u64>,
    /// See [`Evidence::split`].
    pub split: Option<Split>,
    /// See [`Evidence::usage_at_split`].
    pub usage_at_split: Option<u64>,
    pub now_ms: f64,
    /// The monitor's level after this sample (thresholds at or above).
    pub level: usize,
    pub thresholds: &'a [f64],
    pub event: RecordEvent,
    /// 1 for the monitor's first record, then counting up.
    pub seq: u64,
    /// A stall record: its figures, and the exit status when the sampler is
    /// about to end the process.
    pub stall: Option<(&'a crate::watch::stall::Figures, Option<i32>)>,
}

impl RecordInput<'_> {
    /// The threshold the record is for: the highest one the basis is at or
    /// above; for a recovery below every threshold, the first one (just left).
    pub fn threshold(&self) -> f64 {
        let i = self.level.clamp(1, self.thresholds.len().max(1)) - 1;
        self.thresholds.get(i).copied().unwrap_or(f64::NAN)
    }

    /// What the verdict is built on.
    pub fn evidence(&self) -> Evidence {
        Evidence {
            v8: self.v8,
            usage_at_v8: self.usage_at_v8,
            split: self.split,
            usage_at_split: self.usage_at_split,
            now_ms: self.now_ms,
        }
    }

    /// The record is for the highest threshold.
    pub fn is_final(&self) -> bool {
        self.level > 0 && self.level == self.thresholds.len()
    }
}

/// Build the record: one line of JSON with a stable shape, ending in `\n`,
/// shorter than [`MAX_LINE`]. The fields of version 1 come first, in their
/// order; later ones are appended.
pub fn record(r: &RecordInput) -> String {
    let line = build(r, true);
    if line.len() < MAX_LINE || r.stall.is_none() {
        return line;
    }
    // A stall record with every field at its longest: the reason without
    // the figures and the cause's sentence (both are in fields of their own),
    // and the cgroup's path cut shorter.
    build(r, false)
}

fn build(r: &RecordInput, full_reason: bool) -> String {
    let snap = r.snap;
    let f = |v: Option<u64>| v.map(|v| v as f64);
    let mut o = String::with_capacity(1024);
    o.push_str("{\"oomguard\":\"last-words\",\"version\":1,\"time\":");
    string(&mut o, &iso_time(r.now_ms));
    let _ = write!(o, ",\"pid\":{}", std::process::id());
    o.push_str(",\"source\":");
    match snap.limit() {
        Some((_, s)) => string(&mut o, s.as_str()),
        None => o.push_str("null"),
    }
    o.push_str(",\"cgroup\":");
    match &snap.location {
        Some(l) if full_reason => string(&mut o, &l.cgroup_path),
        Some(l) => string_max(&mut o, &l.cgroup_path, MAX_STRING - 192),
        None => o.push_str("null"),
    }
    o.push_str(",\"limitBytes\":");
    num(&mut o, snap.limit().map(|(l, _)| l as f64));
    o.push_str(",\"usageBytes\":");
    num(&mut o, f(snap.usage));
    o.push_str(",\"workingSetBytes\":");
    num(&mut o, f(snap.working_set));
    o.push_str(",\"basisBytes\":");
    num(&mut o, Some(r.basis));
    o.push_str(",\"ratio\":");
    num(&mut o, Some(r.ratio));
    o.push_str(",\"threshold\":");
    exact(&mut o, r.threshold());
    o.push_str(",\"growthBytesPerSec\":");
    num(&mut o, Some(r.growth.round()));
    o.push_str(",\"timeToLimitMs\":");
    num(&mut o, r.time_to_limit_ms.map(f64::round));
    o.push_str(",\"breakdown\":");
    match &snap.stat {
        Some(s) => {
            for (i, (k, v)) in [
                ("anon", s.anon),
                ("file", s.file),
                ("shmem", s.shmem),
                ("kernel", s.kernel),
                ("sock", s.sock),
                ("slab", s.slab),
            ]
            .into_iter()
            .enumerate()
            {
                o.push_str(if i == 0 { "{\"" } else { ",\"" });
                o.push_str(k);
                o.push_str("\":");
                num(&mut o, f(v));
            }
            o.push('}');
        }
        None => o.push_str("null"),
    }
    o.push_str(",\"v8\":");
    match r.v8 {
        Some(v) => {
            o.push_str("{\"heapUsedBytes\":");
            let n = v.numbers;
            num(&mut o, n.heap_used);
            o.push_str(",\"heapTotalBytes\":");
            num(&mut o, n.heap_total);
            o.push_str(",\"externalBytes\":");
            num(&mut o, n.external);
            o.push_str(",\"arrayBuffersBytes\":");
            num(&mut o, n.array_buffers);
            o.push_str(",\"heapSizeLimitBytes\":");
            num(&mut o, n.heap_size_limit);
            o.push_str(",\"ageMs\":");
            num(&mut o, Some((r.now_ms - v.timestamp_ms).max(0.0).round()));
            o.push('}');
        }
        None => o.push_str("null"),
    }
    let (verdict, reason) = verdict(snap, r.basis, &r.evidence());
    // The limiting ancestor's path is a prefix of the cgroup's: cut short
    // in a record that has to be.
    let limiting = snap
        .limiting
        .as_ref()
        .map(|l| cut(&l.path, if full_reason { MAX_STRING } else { 64 }));
    match r.stall {
        // A stall: verdict `stall`, the fill verdict as its cause.
        Some((fig, exit)) => {
            o.push_str(",\"verdict\":\"stall\",\"reason\":");
            if full_reason {
                string(&mut o, &crate::watch::stall::reason(fig, &reason, limiting));
            } else {
                string(&mut o, &crate::watch::stall::short_reason(fig));
            }
            o.push_str(",\"cause\":");
            string(&mut o, verdict.as_str());
            o.push_str(",\"stall\":");
            o.push_str(&crate::watch::stall::json(fig, exit, limiting));
        }
        None => {
            o.push_str(",\"verdict\":");
            string(&mut o, verdict.as_str());
            o.push_str(",\"reason\":");
            string(&mut o, &reason);
        }
    }
    // Added with the flight record.
    let _ = write!(o, ",\"level\":{}", r.level);
    let _ = write!(o, ",\"final\":{}", r.is_final());
    o.push_str(",\"event\":");
    string(&mut o, r.event.as_str());
    o.push_str(",\"thresholds\":[");
    for (i, t) in r.thresholds.iter().take(16).enumerate() {
        if i > 0 {
            o.push(',');
        }
        exact(&mut o, *t);
    }
    o.push(']');
    let _ = write!(o, ",\"seq\":{}", r.seq);
    // Added with the processes of the cgroup: this process's RSS, its
    // resident anonymous memory and that one's share of the basis (RSS
    // counts mapped files charged elsewhere: no share of it),
    // and the largest process, one figure per process (largest()).
    o.push_str(",\"rssBytes\":");
    num(&mut o, f(snap.rss));
    o.push_str(",\"anonBytes\":");
    num(&mut o, f(snap.anon));
    o.push_str(",\"anonShare\":");
    num(
        &mut o,
        snap.anon
            .filter(|_| r.basis > 0.0)
            .map(|a| a as f64 / r.basis),
    );
    o.push_str(",\"processCount\":");
    num(&mut o, snap.processes.as_ref().map(|p| p.count as f64));
    o.push_str(",\"largestProcess\":");
    match largest(snap, r.now_ms) {
        Some(l) => {
            let _ = write!(o, "{{\"pid\":{},\"command\":", l.process.pid);
            match &l.process.command {
                Some(_) => string(&mut o, command(l.process)),
                None => o.push_str("null"),
            }
            o.push_str(",\"rssBytes\":");
            num(&mut o, f(l.rss));
            o.push_str(",\"anonBytes\":");
            num(&mut o, f(l.anon));
            o.push_str(",\"ageMs\":");
            num(&mut o, Some(l.age_ms.round()));
            o.push('}');
        }
        None => o.push_str("null"),
    }
    // Added with the allocator's split: what the verdict read fresh.
    o.push_str(",\"allocator\":");
    match r.split {
        Some(sp) => {
            o.push_str("{\"call\":");
            string(&mut o, sp.source.as_str());
            let _ = write!(
                o,
                ",\"anonBytes\":{},\"mallocBytes\":{},\"mallocInUseBytes\":{},\"ageMs\":",
                sp.anon, sp.malloc, sp.malloc_in_use
            );
            num(&mut o, Some((r.now_ms - sp.timestamp_ms).max(0.0).round()));
            o.push('}');
        }
        None => o.push_str("null"),
    }
    o.push_str("}\n");
    debug_assert!(o.len() < MAX_LINE, "{} bytes: {o}", o.len());
    o
}

// ---------------------------------------------------------------------------
// When to write: the flight record's policy, a pure state machine.

/// Per monitor: what was last written, to decide when to write again.
#[derive(Debug, Clone, Default)]
pub struct FlightRecord {
    /// Basis and time of the last record, and the level it was for.
    last: Option<(f64, Instant, usize)>,
    /// Records written (the next record's `seq` is this + 1).
    pub seq: u64,
    /// A record went to the file at least once (so the file is ours to empty).
    pub wrote_file: bool,
    /// The last write to the file failed (reported once until one succeeds).
    pub failing: bool,
}

impl FlightRecord {
    /// Should a record be written for this sample? `old`/`new`: the level
    /// before and after it.
    pub fn due(
        &self,
        old: usize,
        new: usize,
        basis: f64,
        limit: f64,
        at: Instant,
    ) -> Option<RecordEvent> {
        if new > old {
            return Some(RecordEvent::Threshold);
        }
        if new < old {
            return Some(RecordEvent::Recovered);
        }
        if new == 0 {
            return None;
        }
        match self.last {
            // At a level without a record (the first write failed to happen,
            // or the level was reached before this policy): write one.
            None => Some(RecordEvent::Update),
            Some((b, t, _)) => ((basis - b).abs() >= MOVE_SHARE * limit
                && at.saturating_duration_since(t) >= MIN_GAP)
                .then_some(RecordEvent::Update),
        }
    }

    /// A record for `level` with this basis was written (or attempted) at `at`.
    pub fn wrote(&mut self, basis: f64, level: usize, at: Instant) {
        self.last = Some((basis, at, level));
        self.seq += 1;
    }

    /// The time of the last record, if any.
    pub fn last_at(&self) -> Option<Instant> {
        self.last.map(|(_, t, _)| t)
    }
}

mod appendix;
mod write;

pub use appendix::*;
pub use write::*;

#[cfg(test)]
mod tests;
