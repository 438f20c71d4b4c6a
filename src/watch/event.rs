//! What the sampler tells: the events, and where they go.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Threshold,
    Recovered,
    Error,
    /// The limit changed under the running process (`docker update`, an
    /// in-place pod resize, a write to the limit file).
    Limit,
    /// Stuck at the limit without an OOM kill (see [`crate::watch::stall`]).
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
    /// top of the band in lib/core/heap-band.json), `near` (above 80%), `above` (at or above the limit); None where there
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
    pub(super) fn error(
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
