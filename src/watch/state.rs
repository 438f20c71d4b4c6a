//! What the sampler keeps per monitor between samples.

use super::*;

/// What the sampler changes per monitor, behind the monitor's own lock (the
/// sampler thread, the first sample in `start`, and `close` take it).
#[derive(Debug, Default)]
pub(super) struct MonitorState {
    pub(super) level: usize,
    /// The last read failed; said once.
    pub(super) failing: bool,
    /// A panic was caught while handling this monitor; said once.
    pub(super) panicked: bool,
    /// Closed: nothing more is written for it.
    pub(super) closed: bool,
    pub(super) record: FlightRecord,
    /// The limit at the last good sample, to see it change.
    pub(super) limit: Option<u64>,
    /// Stall detection, when on.
    pub(super) stall: Option<stall::Detector>,
    /// Where a sample of the usage alone will do, from the last snapshot.
    pub(super) quiet: Option<Quiet>,
    /// JavaScript's V8 readings as the samples met them (see [`V8Follow`]).
    pub(super) v8_follow: V8Follow,
    /// The allocator's split as this monitor's verdicts used it.
    pub(super) split_follow: SplitFollow,
}

/// The cgroup's usage when JavaScript last read V8: the verdict's measure
/// of the growth V8's numbers cannot attribute (see
/// [`lastwords::Evidence::usage_at_v8`]).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct V8Follow {
    /// The timestamp of the V8 numbers the last sample saw (bits; 0: none).
    pub(super) seen: u64,
    /// The usage at the last sample, and at the one before.
    pub(super) last_usage: Option<u64>,
    pub(super) prev_usage: Option<u64>,
    /// The usage at the last sample before the current V8 numbers were
    /// written (the lower of it and the first sample's after: never less
    /// growth than there was).
    pub(super) usage_at_v8: Option<u64>,
}

impl V8Follow {
    pub(super) fn sample(&mut self, v8: Option<V8Known>, usage: Option<u64>) {
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
pub(super) struct SplitFollow {
    /// The timestamp of the split last used (bits; 0: none).
    pub(super) seen: u64,
    pub(super) usage_at_split: Option<u64>,
}

impl MonitorState {
    /// The split for a verdict on this sample: read now where due (see
    /// [`alloc::split_if_due`]), else the latest one, with the usage when
    /// it was read: this sample's when read now, else, the first time this
    /// monitor uses it, the lower of this sample's and the one before (it
    /// was read by another monitor in between: never less growth than
    /// there was).
    pub(super) fn split(
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
pub(super) struct Quiet {
    /// The basis at or above which the level may rise: the next threshold
    /// in bytes (the limit at the top level).
    pub(super) up: u64,
    /// The basis below which the level may fall (0 at level 0).
    pub(super) down: u64,
    /// With stall detection: the usage from which the working set may be
    /// within the stall margin of the limit.
    pub(super) stall_from: Option<u64>,
}
