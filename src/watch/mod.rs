//! The watcher: one native sampler thread per process serves every monitor.
//! Each root's reader keeps its cgroup files open and samples them with
//! `pread` at an interval that adapts to the distance from the next
//! threshold; each monitor's level moves with hysteresis; events go to a
//! [`Sink`]; and from the first threshold crossing on, the sampler keeps the
//! last-words flight record (see [`crate::watch::lastwords`]) itself.
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
//!
//! One concern per file: [`config`] (a monitor's settings and their
//! validation), [`event`] (what it tells, and the [`Sink`]), [`interval`]
//! (levels, growth, how long to sleep), `state` (what it keeps per monitor),
//! `root` (one cgroup's reader), [`sampler`] (the registry and the thread),
//! `step` (one snapshot, one monitor), `tick` (the usage-only fast path) and
//! `stall_glue` (stall events, the record of one, `_exit`).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::diagnose::{self, Diagnosis, V8Known, V8Numbers};
use crate::guard;
use crate::locate::Location;
use crate::reader::{LimitSource, Reader, Snapshot};
use lastwords::{FlightRecord, RecordEvent, RecordInput};
use trigger::Triggers;

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

pub mod alloc;
pub mod config;
pub mod event;
pub mod interval;
pub mod lastwords;
pub mod owner;
pub mod pin;
mod root;
pub mod sampler;
pub mod stall;
mod stall_glue;
mod state;
mod step;
mod tick;
pub mod trace;
pub mod trigger;

pub use config::*;
pub use event::*;
pub use interval::*;
use root::*;
pub use sampler::*;
pub use stall_glue::*;
use state::*;
use step::*;
use tick::*;

// ---------------------------------------------------------------------------
// The per-monitor block shared with JavaScript: see `block`.

pub mod block;
pub use block::Block;

#[cfg(test)]
pub(crate) mod tests;
