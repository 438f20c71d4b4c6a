//! The per-monitor block: f64 slots the sampler writes under a sequence
//! lock and JavaScript reads without calling into native code. Its layout is
//! declared here once; lib/core/watch.js reads it through `watchSlots()`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::diagnose::V8Known;
use crate::diagnose::V8Numbers;

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
/// Where the limit came from: 1 + its index in `SOURCES`.
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
/// 1 while stalled at the limit, 0 when not, NaN without stall detection.
pub const STALLED: usize = 23;
/// How long the current stall has lasted, ms (NaN when not stalled).
pub const STALL_DURATION: usize = 24;
/// Seconds spent stalled since the monitor started.
pub const STALLED_SECONDS: usize = 25;
pub const LEN: usize = 28;

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
    // Listed in the order an event's v8 object has them (lib/core/watch.js
    // builds it from this list).
    ("v8.rssBytes", V8_RSS),
    ("v8.heapSizeLimitBytes", V8_HEAP_SIZE_LIMIT),
    ("stalled", STALLED),
    ("stallDurationMs", STALL_DURATION),
    ("stalledSeconds", STALLED_SECONDS),
];

/// The limit sources as the `SOURCE` slot encodes them: 1 + the index
/// here (0 is none yet). JavaScript reads the names through `watchSlots()`.
pub const SOURCES: [super::LimitSource; 3] = [
    super::LimitSource::CgroupV1,
    super::LimitSource::CgroupV2,
    super::LimitSource::Host,
];

/// The `SOURCE` slot's value for `source`.
pub fn source_code(source: super::LimitSource) -> f64 {
    SOURCES
        .iter()
        .position(|s| *s == source)
        .map_or(0.0, |i| (i + 1) as f64)
}

/// Memory shared with JavaScript. Slots hold f64 bit patterns; single
/// aligned 8-byte stores and loads are atomic, and the sequence slot lets a
/// reader see one sample whole.
pub struct Block {
    slots: Box<[AtomicU64]>,
}

impl Block {
    pub fn new() -> Arc<Block> {
        let slots: Vec<AtomicU64> = (0..LEN)
            .map(|_| AtomicU64::new(f64::NAN.to_bits()))
            .collect();
        let b = Block {
            slots: slots.into_boxed_slice(),
        };
        b.set(SEQ, 0.0);
        b.set(LEVEL, 0.0);
        b.set(SAMPLES, 0.0);
        b.set(FAILING, 0.0);
        Arc::new(b)
    }

    pub fn get(&self, i: usize) -> f64 {
        f64::from_bits(self.slots[i].load(Ordering::Acquire))
    }

    pub fn set(&self, i: usize, v: f64) {
        self.slots[i].store(v.to_bits(), Ordering::Release)
    }

    /// Pointer for an external `Float64Array` of `LEN` elements.
    pub fn as_ptr(&self) -> *mut f64 {
        self.slots.as_ptr() as *mut f64
    }

    pub(super) fn write(&self, f: impl FnOnce(&Block)) {
        let seq = self.get(SEQ);
        self.set(SEQ, seq + 1.0);
        f(self);
        self.set(SEQ, seq + 2.0);
    }

    /// The V8 numbers JavaScript last wrote, if any.
    pub fn v8(&self) -> Option<V8Known> {
        let t = self.get(V8_TIMESTAMP);
        if !t.is_finite() {
            return None;
        }
        let g = |i| {
            let v = self.get(i);
            v.is_finite().then_some(v)
        };
        Some(V8Known {
            timestamp_ms: t,
            numbers: V8Numbers {
                heap_used: g(V8_HEAP_USED),
                heap_total: g(V8_HEAP_TOTAL),
                external: g(V8_EXTERNAL),
                array_buffers: g(V8_ARRAY_BUFFERS),
                heap_size_limit: g(V8_HEAP_SIZE_LIMIT),
                rss: g(V8_RSS),
            },
        })
    }
}

#[cfg(test)]
#[test]
fn every_source_has_its_own_code_from_1_and_the_slots_their_own_index() {
    use super::LimitSource::*;
    assert_eq!([CgroupV1, CgroupV2, Host].map(source_code), [1.0, 2.0, 3.0]);
    let mut seen: Vec<usize> = NAMES.iter().map(|(_, i)| *i).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), NAMES.len(), "no two slots share an index");
    assert!(
        seen.iter().all(|i| *i < LEN),
        "every slot is inside the block"
    );
}
