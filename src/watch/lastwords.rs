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

use crate::procs::{self, CgroupProcess};
use crate::reader::Snapshot;
use crate::watch::alloc::Split;
use crate::watch::owner::{self, Access};
use crate::watch::V8Known;

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
    if let Some((top, share)) = another_process(snap, basis) {
        return (
            Verdict::AnotherProcess,
            format!(
                "this process's RSS ({}) is {:.0}% of the working set; the largest process in the cgroup is pid {} ({}, {})",
                mib(g(snap.rss)),
                100.0 * share,
                top.pid,
                command(top),
                mib(g(top.rss))
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

/// This process's share of the basis (its RSS over it), when known.
fn self_share(snap: &Snapshot, basis: f64) -> Option<f64> {
    snap.rss.filter(|_| basis > 0.0).map(|r| r as f64 / basis)
}

/// The largest other process and this process's share, when this process is
/// a small part of the charge and another process of the cgroup is larger.
fn another_process(snap: &Snapshot, basis: f64) -> Option<(&CgroupProcess, f64)> {
    let p = snap.processes.as_deref()?;
    let share = self_share(snap, basis)?;
    let top = p.top()?;
    let rss = snap.rss?;
    (p.count > 1 && share < procs::SMALL_SHARE && top.pid != std::process::id() && top.rss? > rss)
        .then_some((top, share))
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

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub(crate) fn string_max(out: &mut String, s: &str, max: usize) {
    // Cut at a character boundary; the record must stay under MAX_LINE.
    let s = cut(s, max);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
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
// The appendix: what a monitor's JavaScript side knows and the sampler
// cannot (the heap profile's top allocation sites), handed over pre-encoded
// and appended to that monitor's records where it fits.

/// The most candidates one monitor may hand over.
pub const MAX_APPENDIX_CANDIDATES: usize = 4;

/// Per monitor: its candidates (JSON members `"key":value`, longest first)
/// and the verdict of its last record.
struct Appendix {
    monitor: u32,
    candidates: Vec<String>,
    verdict: Option<String>,
}

static APPENDIX: std::sync::Mutex<Vec<Appendix>> = std::sync::Mutex::new(Vec::new());

fn appendix_lock() -> std::sync::MutexGuard<'static, Vec<Appendix>> {
    APPENDIX.lock().unwrap_or_else(|p| p.into_inner())
}

/// Set the monitor's appendix. Each candidate is one JSON object member,
/// `"key":value`, on one line, shorter than [`MAX_LINE`]; a record takes
/// the first candidate that keeps it under [`MAX_LINE`], or none (an empty
/// list: none, the monitor's verdicts still kept). Refuses anything else
/// (nothing is changed then). Returns the verdict of the monitor's last
/// record since its appendix was first set, if any.
pub fn set_appendix(monitor: u32, candidates: Vec<String>) -> Result<Option<String>, String> {
    if candidates.len() > MAX_APPENDIX_CANDIDATES {
        return Err(format!(
            "at most {MAX_APPENDIX_CANDIDATES} candidates, got {}",
            candidates.len()
        ));
    }
    for c in &candidates {
        let ok = c.len() < MAX_LINE
            && c.starts_with('"')
            && c.contains("\":")
            && !c.bytes().any(|b| b < 0x20);
        if !ok {
            return Err("a candidate must be one JSON member \"key\":value on one line, shorter than 2048 bytes".into());
        }
    }
    let mut all = appendix_lock();
    match all.iter_mut().find(|a| a.monitor == monitor) {
        Some(a) => {
            a.candidates = candidates;
            Ok(a.verdict.clone())
        }
        None => {
            all.push(Appendix {
                monitor,
                candidates,
                verdict: None,
            });
            Ok(None)
        }
    }
}

/// Forget a monitor's appendix (it closed).
pub fn forget_appendix(monitor: u32) {
    appendix_lock().retain(|a| a.monitor != monitor);
}

/// The value of a string member `"key":"value"` of a record (no escapes in
/// the values looked for).
fn member<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(key)? + key.len();
    let rest = line[at..].strip_prefix(":\"")?;
    Some(&rest[..rest.find('"')?])
}

/// `line` (a record from [`record`]) with the monitor's appendix appended
/// as its last member: the first candidate that keeps it under
/// [`MAX_LINE`]; the line unchanged when none does or there is none. Keeps
/// the record's verdict for [`set_appendix`] to return.
pub fn with_appendix(monitor: u32, line: String) -> String {
    let mut all = appendix_lock();
    let Some(a) = all.iter_mut().find(|a| a.monitor == monitor) else {
        return line;
    };
    a.verdict = member(&line, "\"verdict\"").map(|v| match member(&line, "\"cause\"") {
        Some(c) if v == "stall" => format!("stall:{c}"),
        _ => v.to_string(),
    });
    let Some(head) = line.strip_suffix("}\n") else {
        return line;
    };
    match a
        .candidates
        .iter()
        .find(|c| head.len() + c.len() + 3 < MAX_LINE)
    {
        Some(c) => {
            let mut out = String::with_capacity(head.len() + c.len() + 3);
            out.push_str(head);
            out.push(',');
            out.push_str(c);
            out.push_str("}\n");
            out
        }
        None => line,
    }
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

// ---------------------------------------------------------------------------
// Writing, without ever blocking.

fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Write all of `bytes`: at the file offset `at` onwards (`pwrite`), or at
/// the descriptor's position (`write`, for stderr) when `at` is None.
fn write_all_at(fd: libc::c_int, bytes: &[u8], at: Option<u64>) -> std::io::Result<()> {
    let mut off = 0;
    while off < bytes.len() {
        let rest = &bytes[off..];
        // SAFETY: the slice is valid for its length.
        let n = unsafe {
            match at {
                Some(base) => libc::pwrite(
                    fd,
                    rest.as_ptr().cast(),
                    rest.len(),
                    (base + off as u64) as libc::off_t,
                ),
                None => libc::write(fd, rest.as_ptr().cast(), rest.len()),
            }
        };
        if n < 0 {
            let e = last_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        off += n as usize;
    }
    Ok(())
}

/// A write that failed: the errno (0 when none applies) and what to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteError {
    pub errno: i32,
    pub message: String,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Write a line to stderr if it can take it now: never blocks on a full pipe.
pub fn write_stderr(line: &str) -> bool {
    let mut p = libc::pollfd {
        fd: 2,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    let ready = unsafe { libc::poll(&mut p, 1, 0) } == 1 && p.revents & libc::POLLOUT != 0;
    // A free pipe buffer slot is a page: a line under MAX_LINE fits whole.
    ready && line.len() < MAX_LINE && write_all_at(2, line.as_bytes(), None).is_ok()
}

/// An fd closed on drop.
struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: our own descriptor.
        unsafe { libc::close(self.0) };
    }
}

fn open_nonblocking(path: &Path, flags: libc::c_int) -> std::io::Result<(Fd, libc::stat)> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path contains NUL")
    })?;
    // SAFETY: a valid NUL-terminated path; the fd is owned by Fd.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            flags | libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY,
            0o644,
        )
    };
    if fd < 0 {
        return Err(last_error());
    }
    let fd = Fd(fd);
    // SAFETY: st is written by fstat on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.0, &mut st) } != 0 {
        return Err(last_error());
    }
    Ok((fd, st))
}

fn is_regular(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFREG
}

fn describe(path: &Path, what: &str, e: std::io::Error) -> WriteError {
    let errno = e.raw_os_error().unwrap_or(0);
    let hint = match e.raw_os_error() {
        Some(libc::ENXIO) => " (a FIFO without a reader?)",
        Some(libc::EAGAIN) => " (it would block)",
        Some(libc::ENOENT) => " (its directory does not exist)",
        Some(libc::EISDIR) => " (it is a directory)",
        _ => "",
    };
    WriteError {
        errno,
        message: format!("{what} {}: {e}{hint}", path.display()),
    }
}

/// Replace the file's content with `line` (one JSON object on one line
/// ending in `\n`, shorter than [`MAX_BYTES`]). A regular file is rewritten
/// in place by one `pwrite` at offset 0 of at most one page, never
/// truncated first: when the new record is shorter than what the file
/// holds, spaces before its closing brace make up the difference (JSON
/// allows them), so the file is one complete record at every instant. That
/// matters at the limit: there, the write itself can be what makes the
/// kernel kill the process (its page has to be charged to the full cgroup),
/// and a kill between a truncation and the write would leave an empty file.
/// Only a file longer than a page (not ours) is cut to the page once.
/// Anything else (a FIFO, a device) gets a plain write.
///
/// A file this process's monitors hold (src/watch/owner.rs) is written through
/// their descriptor, and only by the process that owns its record.
pub fn write_file(path: &Path, line: &str) -> Result<(), WriteError> {
    if let Some(r) = owner::with_access(path, |a| match a {
        Access::Owner(fd) => {
            // SAFETY: st is written by fstat on success.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            if unsafe { libc::fstat(fd, &mut st) } != 0 {
                return Err(describe(path, "cannot write", last_error()));
            }
            write_at(fd, &st, path, line)
        }
        Access::NotOwner(message) => Err(WriteError {
            errno: libc::EWOULDBLOCK,
            message,
        }),
    }) {
        return r;
    }
    let (fd, st) =
        open_nonblocking(path, libc::O_CREAT).map_err(|e| describe(path, "cannot open", e))?;
    write_at(fd.0, &st, path, line)
}

/// [`write_file`]'s write, to an open descriptor of `path` whose `fstat` is `st`.
fn write_at(fd: libc::c_int, st: &libc::stat, path: &Path, line: &str) -> Result<(), WriteError> {
    if !is_regular(st) {
        return write_all_at(fd, line.as_bytes(), None)
            .map_err(|e| describe(path, "cannot write", e));
    }
    let body = line.trim_end_matches('\n');
    let (head, close) = match body.strip_suffix('}') {
        Some(h) => (h, "}"),
        None => (body, ""),
    };
    let size = st.st_size.max(0) as usize;
    let len = (body.len() + 1).min(MAX_BYTES);
    let total = len.max(size.min(MAX_BYTES));
    let mut buf = [b' '; MAX_BYTES];
    let keep = head.len().min(total - 1 - close.len());
    buf[..keep].copy_from_slice(&head.as_bytes()[..keep]);
    buf[total - 1 - close.len()..total - 1].copy_from_slice(close.as_bytes());
    buf[total - 1] = b'\n';
    write_all_at(fd, &buf[..total], Some(0)).map_err(|e| describe(path, "cannot write", e))?;
    if size > MAX_BYTES {
        // SAFETY: our own descriptor. A failure leaves a whole record in the first page.
        unsafe { libc::ftruncate(fd, total as libc::off_t) };
    }
    Ok(())
}

/// Empty the file (a clean shutdown below every threshold). Only regular
/// files; a missing one is fine.
pub fn empty_file(path: &Path) -> Result<(), WriteError> {
    // A held file: only its owner empties it, through its descriptor.
    if let Some(r) = owner::with_access(path, |a| match a {
        // SAFETY: the owner's descriptor, open while the registry is locked.
        Access::Owner(fd) if unsafe { libc::ftruncate(fd, 0) } != 0 => {
            Err(describe(path, "cannot empty", last_error()))
        }
        _ => Ok(()),
    }) {
        return r;
    }
    match open_nonblocking(path, 0) {
        Ok((fd, st)) => {
            // SAFETY: our own descriptor.
            if is_regular(&st) && st.st_size > 0 && unsafe { libc::ftruncate(fd.0, 0) } != 0 {
                return Err(describe(path, "cannot empty", last_error()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(describe(path, "cannot open", e)),
    }
}

#[cfg(test)]
mod tests;
