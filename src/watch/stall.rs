//! Stuck at the limit: the state in which the kernel neither grants memory
//! nor OOM-kills. When a process's own code pages are charged to its cgroup
//! (a container's image read for the first time inside it), reclaim at the
//! limit evicts those pages, the process faults them straight back in, the
//! kernel counts that as progress, and the OOM killer never runs: the
//! service hangs at 100% of its limit.
//!
//! A [`Detector`] is fed one [`Reading`] per sample and judges windows of at
//! least [`WINDOW_MS`]: a window is *stalling* when
//!
//! - the working set is within `margin` of the cgroup limit (the working
//!   set, whatever the monitor's basis: usage is at the limit in every
//!   healthy page-cache workload),
//! - the kernel fails charges at a high rate (v1 `memory.failcnt`, v2
//!   `memory.events` `max`; the two count differently, see [`Counter`]),
//! - and the reclaim is not getting anywhere: tasks stalled on memory a
//!   noticeable share of the window (PSI; v2: the cgroup's own
//!   `memory.pressure` `full`; v1: the system-wide `/proc/pressure/memory`
//!   `some`, because on a busy host other tasks keep the system-wide `full`
//!   near zero while this cgroup is stuck), or evicted pages come straight
//!   back (the `memory.stat` refault counters). Either suffices: measured on
//!   cgroup v1, a stall showed 350,000 refaults/s for seconds while the
//!   system-wide PSI stayed at 0, and in other windows PSI was high while
//!   the failure rate dipped. Where the kernel has neither figure, the first
//!   two signs decide.
//!
//! One case has no failure count: cgroup v1 with a memory+swap limit that
//! binds (`memory.memsw.usage_in_bytes` within `margin` of the smallest
//! `memory.memsw.limit_in_bytes` up the hierarchy; Docker's
//! `--memory-swap` equal to `--memory`). The memsw charge fails first, and
//! the kernel counts failures only for the memory counter (6.18: neither
//! `memory.failcnt` nor `memory.memsw.failcnt` moves in such a stall). There a
//! window stalls on the working set within `margin` of the limit and evicted
//! pages coming straight back at [`MEMSW_MIN_REFAULTS_PER_SEC`] or more, a
//! rate far above [`MIN_REFAULTS_PER_SEC`] (measured in such stalls: see the
//! constant); the failure rate is then reported as unknown, not as 0, and
//! [`Evidence`] says which rule decided. Pressure does not decide there: the
//! system-wide PSI of v1 was 0 in windows of such stalls.
//!
//! Stalling windows that last `sustain_ms` make a stall (calm spells shorter
//! than [`GRACE_MS`] do not interrupt them); it ends after [`CLEAR_MS`] of
//! windows that are not. Nothing here reads a file or knows about threads:
//! the sampler feeds it, tests feed it tables.

use std::fmt::Write as _;

use crate::locate::CgroupVersion;
use crate::reader::{PressureScope, Snapshot};

/// Rates are judged over windows at least this long (the sampler may feed
/// readings every millisecond near the limit).
pub const WINDOW_MS: f64 = 250.0;
/// A stall ends after its signs have been absent this long (measured in a
/// cgroup v2 VM: the failure rate of a stall dips below its threshold for
/// about a second now and then).
pub const CLEAR_MS: f64 = 2000.0;
/// While a stall is suspected, calm windows shorter than this in all do not
/// start the count again (the rates of a real stall dip now and then).
pub const GRACE_MS: f64 = 750.0;
/// Default for [`StallConfig::sustain_ms`].
pub const DEFAULT_SUSTAIN_MS: f64 = 3000.0;
/// Default for [`StallConfig::margin`].
pub const DEFAULT_MARGIN: f64 = 0.1;
/// Pressure (share of the window some or all tasks stalled on memory) at or
/// above which a window counts as stalling.
pub const MIN_PRESSURE: f64 = 0.05;
/// Refaults per second at or above which evicted pages count as coming
/// straight back (4 MiB/s of 4 KiB pages).
pub const MIN_REFAULTS_PER_SEC: f64 = 1000.0;
/// Refaults per second at or above which a window stalls where the memory+swap
/// limit binds and no failed charge is counted (see the module doc): 80 MiB/s
/// of 4 KiB pages.
pub const MEMSW_MIN_REFAULTS_PER_SEC: f64 = 20_000.0;
/// The bounds [`crate::watch::Config::with_stall`] enforces (lib/options.js
/// says the same).
pub const MAX_SUSTAIN_MS: f64 = 600_000.0;
pub const MAX_MARGIN: f64 = 0.49;
pub const MAX_AFTER_MS: f64 = 86_400_000.0;
/// The exit status of a process ended by `onStall: { action: 'exit' }`:
/// `EX_TEMPFAIL` from sysexits.h. Not 137 (SIGKILL, which Kubernetes reports
/// as `OOMKilled`) nor 134 (SIGABRT, V8's own heap exhaustion), and not zero,
/// so every restart policy (`Always`, `OnFailure`, systemd `on-failure`,
/// Docker `on-failure`) restarts it.
pub const EXIT_CODE: i32 = 75;

/// What the detector is asked to judge by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StallConfig {
    /// The working set must be at least `(1 - margin) * limit`.
    pub margin: f64,
    /// How long the signs must hold before the stall is declared, ms.
    pub sustain_ms: f64,
}

impl Default for StallConfig {
    fn default() -> Self {
        StallConfig {
            margin: DEFAULT_MARGIN,
            sustain_ms: DEFAULT_SUSTAIN_MS,
        }
    }
}

/// The counter of failed charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// v1 `memory.failcnt`: every failed attempt to charge a page counter,
    /// retries included (hundreds of thousands a second in a stall; a few
    /// thousand when page cache is reclaimed at the limit).
    Failcnt,
    /// v2 `memory.events` `max`: once per charge that had to reclaim at the
    /// limit (200 to 1,600 a second in stalls measured in a cgroup v2 VM).
    EventsMax,
}

impl Counter {
    /// The counter as the diagnoses and the doctor name it
    /// (`diagnose::named_files`).
    pub fn as_str(self) -> &'static str {
        let version = match self {
            Counter::Failcnt => CgroupVersion::V1,
            Counter::EventsMax => CgroupVersion::V2,
        };
        crate::diagnose::named_files(Some(version)).failures
    }

    /// Failures per second at or above which the kernel is failing charges
    /// continuously.
    pub fn min_per_sec(self) -> f64 {
        match self {
            Counter::Failcnt => 1000.0,
            Counter::EventsMax => 50.0,
        }
    }
}

/// What made a window stalling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// Charges failing at a high rate, with pressure or refaults.
    ChargeFailures,
    /// Refaults at [`MEMSW_MIN_REFAULTS_PER_SEC`] or more where the
    /// memory+swap limit binds and the kernel counts no failed charge.
    Refaults,
}

impl Evidence {
    /// As the flight record and the `stall` event say it (`decidedBy`).
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::ChargeFailures => "charge-failures",
            Evidence::Refaults => "refaults",
        }
    }
}

/// Which PSI line the pressure figure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsiKind {
    Some,
    Full,
}

impl PsiKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PsiKind::Some => "some",
            PsiKind::Full => "full",
        }
    }
}

/// One PSI line as read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PressureReading {
    pub scope: PressureScope,
    pub kind: PsiKind,
    /// Total stall time, microseconds.
    pub total_us: u64,
    /// The kernel's 10-second average, percent.
    pub avg10: f64,
}

/// What one sample says, in the detector's terms.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Reading {
    /// Monotonic time, ms.
    pub t_ms: f64,
    pub working_set: Option<f64>,
    /// The effective cgroup limit; None without one (no stall is possible
    /// against the host's memory: the OOM killer works there).
    pub limit: Option<f64>,
    pub failures: Option<(Counter, u64)>,
    pub pressure: Option<PressureReading>,
    pub refaults: Option<u64>,
    /// v1 with a memory+swap limit: memory+swap usage and the smallest
    /// memory+swap limit up the hierarchy (`memory.stat`
    /// `hierarchical_memsw_limit`).
    pub memsw: Option<(f64, f64)>,
    /// Whose working set, counter and memory+swap these are: 0 the
    /// process's own cgroup, n the ancestor n levels up that holds the
    /// limit ([`crate::reader::LimitingCgroup`]). No rate spans two.
    pub depth: usize,
}

impl Reading {
    /// The reading of a snapshot. Where an ancestor holds the limit, its
    /// working set, failure counter and memory+swap stand in for the
    /// leaf's: the kernel fails (and counts) the charges of every cgroup
    /// below that limit in that ancestor, against everything charged to it
    /// (siblings' memory included; the leaf's working set can be far below
    /// a limit that is full). Pressure and refaults stay the leaf's own:
    /// they say whether this process's tasks are the ones held up.
    pub fn from_snapshot(snap: &Snapshot, t_ms: f64) -> Reading {
        let version = snap.location.as_ref().map(|l| l.version);
        let limit = match version {
            Some(_) if !snap.failed.limit && !snap.v2_root => snap.cgroup_limit.map(|l| l as f64),
            _ => None,
        };
        let counter = version.map(|v| match v {
            CgroupVersion::V1 => Counter::Failcnt,
            CgroupVersion::V2 => Counter::EventsMax,
        });
        let pressure = snap.pressure.as_ref().map(|(p, scope)| {
            let (kind, line) = match (scope, p.full) {
                (PressureScope::Cgroup, Some(full)) => (PsiKind::Full, full),
                _ => (PsiKind::Some, p.some),
            };
            PressureReading {
                scope: *scope,
                kind,
                total_us: line.total_us,
                avg10: line.avg10,
            }
        });
        let v1 = version == Some(CgroupVersion::V1) && limit.is_some();
        let pair = |u: Option<u64>, l: Option<u64>| match (u, l) {
            (Some(u), Some(l)) if v1 => Some((u as f64, l as f64)),
            _ => None,
        };
        let (working_set, failures, memsw, depth) = match &snap.limiting {
            Some(a) => (
                a.working_set,
                a.failures,
                pair(a.memsw_usage, a.memsw_limit),
                a.depth,
            ),
            None => {
                let e = snap.events.as_ref();
                let failures = match version {
                    Some(CgroupVersion::V1) => e.and_then(|e| e.failcnt),
                    _ => e.and_then(|e| e.max),
                };
                // The reader keeps memory+swap as swap (memsw usage - usage)
                // and the swap limit; the limit itself is in memory.stat.
                let memsw_usage = match (snap.usage, snap.swap) {
                    (Some(u), Some(s)) => Some(u.saturating_add(s)),
                    _ => None,
                };
                let memsw_limit = snap.stat.as_ref().and_then(|s| s.hierarchical_memsw_limit);
                (
                    snap.working_set,
                    failures,
                    pair(memsw_usage, memsw_limit),
                    0,
                )
            }
        };
        Reading {
            t_ms,
            working_set: working_set.map(|v| v as f64),
            limit,
            failures: counter.zip(failures),
            pressure,
            refaults: snap.stat.as_ref().and_then(|s| s.workingset_refault),
            memsw,
            depth,
        }
    }
}

/// Pressure over one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PressureFigure {
    pub scope: PressureScope,
    pub kind: PsiKind,
    /// Share of the window tasks stalled on memory (0 to 1).
    pub ratio: f64,
    /// The kernel's 10-second average at the window's end, as a ratio.
    pub avg10: f64,
}

/// The figures of one window (and, in a transition, of the stall so far).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Figures {
    /// How long the stall has lasted (from its first stalling window), ms;
    /// 0 outside a stall.
    pub duration_ms: f64,
    pub window_ms: f64,
    /// Working set / limit at the window's end.
    pub ratio: Option<f64>,
    pub failures_per_sec: Option<f64>,
    pub counter: Option<Counter>,
    pub pressure: Option<PressureFigure>,
    pub refaults_per_sec: Option<f64>,
    /// v1 with a memory+swap limit: memory+swap usage / that limit at the
    /// window's end.
    pub memsw_ratio: Option<f64>,
    /// What made the window stalling, once judged (None: it was not).
    pub decided_by: Option<Evidence>,
}

impl Figures {
    /// Do these figures show a stall under `cfg`, and on what evidence? An
    /// unknown working set, limit or failure rate counts against the
    /// charge-failure rule; pressure and refaults, when the kernel has
    /// neither (PSI off, old kernels), do not. Where the memory+swap limit
    /// binds and charges are not seen failing, the refault rule decides
    /// (see the module doc); unknown refaults count against it.
    pub fn judge(&self, cfg: &StallConfig) -> Option<Evidence> {
        let at_limit = self.ratio.is_some_and(|r| r >= 1.0 - cfg.margin);
        let failing = match (self.failures_per_sec, self.counter) {
            (Some(rate), Some(c)) => rate >= c.min_per_sec(),
            _ => false,
        };
        let pressed = self.pressure.is_some_and(|p| p.ratio >= MIN_PRESSURE);
        let refaulting = self
            .refaults_per_sec
            .is_some_and(|r| r >= MIN_REFAULTS_PER_SEC);
        let unknown = self.pressure.is_none() && self.refaults_per_sec.is_none();
        if at_limit && failing && (pressed || refaulting || unknown) {
            return Some(Evidence::ChargeFailures);
        }
        let thrashing = self
            .refaults_per_sec
            .is_some_and(|r| r >= MEMSW_MIN_REFAULTS_PER_SEC);
        (at_limit && !failing && self.memsw_binds(cfg) && thrashing).then_some(Evidence::Refaults)
    }

    /// The judgement alone.
    pub fn stalling(&self, cfg: &StallConfig) -> bool {
        self.judge(cfg).is_some()
    }

    /// Whether the memory+swap limit is the one charges run into (v1): its
    /// usage within `margin` of it.
    pub fn memsw_binds(&self, cfg: &StallConfig) -> bool {
        self.memsw_ratio.is_some_and(|r| r >= 1.0 - cfg.margin)
    }

    /// The figures with the judgement in them: `decided_by` set, and the
    /// failure rate unknown (not 0) where the refault rule decided, since
    /// the kernel counts no failure there.
    fn judged(self, cfg: &StallConfig) -> Figures {
        let decided_by = self.judge(cfg);
        Figures {
            decided_by,
            failures_per_sec: match decided_by {
                Some(Evidence::Refaults) => None,
                _ => self.failures_per_sec,
            },
            ..self
        }
    }
}

/// A change the sampler reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transition {
    /// The signs held for `sustain_ms`: the cgroup is stalled.
    Started(Figures),
    /// The signs were absent for [`CLEAR_MS`]; `duration_ms` is how long it lasted.
    Ended(Figures),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Calm,
    /// Stalling windows since `since`, with `calm_ms` of calm ones between.
    Suspect {
        since: f64,
        calm_ms: f64,
    },
    /// Stalled since `since`; calm windows since `clear_since`.
    Stalled {
        since: f64,
        clear_since: Option<f64>,
    },
}

/// The state machine, one per monitor.
#[derive(Debug, Clone)]
pub struct Detector {
    cfg: StallConfig,
    anchor: Option<Reading>,
    phase: Phase,
    last: Option<Figures>,
    /// Time spent stalled, ms, over the detector's life (the current stall
    /// up to the last window included).
    stalled_ms: f64,
    /// The on-stall action has been taken for the current stall.
    acted: bool,
}

impl Detector {
    pub fn new(cfg: StallConfig) -> Detector {
        Detector {
            cfg,
            anchor: None,
            phase: Phase::Calm,
            last: None,
            stalled_ms: 0.0,
            acted: false,
        }
    }

    pub fn config(&self) -> &StallConfig {
        &self.cfg
    }

    /// True while stalled.
    pub fn stalled(&self) -> bool {
        matches!(self.phase, Phase::Stalled { .. })
    }

    /// How long the current stall has lasted at `t_ms`; None when not stalled.
    pub fn duration_ms(&self, t_ms: f64) -> Option<f64> {
        match self.phase {
            Phase::Stalled { since, .. } => Some((t_ms - since).max(0.0)),
            _ => None,
        }
    }

    /// Time spent stalled so far, seconds (for the stalled-seconds counter).
    pub fn stalled_seconds(&self) -> f64 {
        self.stalled_ms / 1000.0
    }

    /// The figures of the last judged window.
    pub fn last(&self) -> Option<&Figures> {
        self.last.as_ref()
    }

    /// Whether the sampler should keep sampling often: a stall is suspected
    /// or on, or the working set is near the limit.
    pub fn watching_closely(&self) -> bool {
        !matches!(self.phase, Phase::Calm)
            || self
                .last
                .and_then(|f| f.ratio)
                .is_some_and(|r| r >= 1.0 - self.cfg.margin)
    }

    /// True once per stall, when it has lasted `after_ms` at `t_ms`.
    pub fn action_due(&mut self, after_ms: f64, t_ms: f64) -> bool {
        match self.duration_ms(t_ms) {
            Some(d) if !self.acted && d >= after_ms => {
                self.acted = true;
                true
            }
            _ => false,
        }
    }

    /// Feed one reading; returns a transition when one happened.
    /// The sampler took a sample without the counters (the usage alone),
    /// and it proves the working set outside the margin: no window may
    /// span it, or the first window of a stall would start at the last
    /// reading before it, seconds earlier. While calm, the next reading
    /// starts afresh; otherwise nothing changes (the sampler feeds every
    /// sample then).
    pub fn gap(&mut self) {
        if matches!(self.phase, Phase::Calm) {
            self.anchor = None;
        }
    }

    pub fn feed(&mut self, r: Reading) -> Option<Transition> {
        let Some(a) = self.anchor else {
            self.anchor = Some(r);
            return None;
        };
        let dt = r.t_ms - a.t_ms;
        if dt.is_nan() || dt < 0.0 {
            self.anchor = Some(r);
            return None;
        }
        if dt < WINDOW_MS {
            return None;
        }
        self.anchor = Some(r);
        let fig = figures(&a, &r, dt).judged(&self.cfg);
        self.last = Some(fig);
        let stalling = fig.decided_by.is_some();
        let start = a.t_ms;
        match self.phase {
            Phase::Calm if !stalling => None,
            Phase::Suspect { since, calm_ms } if !stalling => {
                self.phase = if calm_ms + dt < GRACE_MS {
                    Phase::Suspect {
                        since,
                        calm_ms: calm_ms + dt,
                    }
                } else {
                    Phase::Calm
                };
                None
            }
            Phase::Calm | Phase::Suspect { .. } => {
                let (since, calm_ms) = match self.phase {
                    Phase::Suspect { since, calm_ms } => (since, calm_ms),
                    _ => (start, 0.0),
                };
                if r.t_ms - since >= self.cfg.sustain_ms {
                    self.phase = Phase::Stalled {
                        since,
                        clear_since: None,
                    };
                    self.acted = false;
                    self.stalled_ms += r.t_ms - since;
                    Some(Transition::Started(Figures {
                        duration_ms: r.t_ms - since,
                        ..fig
                    }))
                } else {
                    self.phase = Phase::Suspect { since, calm_ms };
                    None
                }
            }
            Phase::Stalled { since, clear_since } => {
                self.stalled_ms += dt;
                if stalling {
                    self.phase = Phase::Stalled {
                        since,
                        clear_since: None,
                    };
                    return None;
                }
                let clear = clear_since.unwrap_or(start);
                if r.t_ms - clear >= CLEAR_MS {
                    // The calm windows were not part of the stall.
                    self.stalled_ms -= r.t_ms - clear;
                    self.phase = Phase::Calm;
                    Some(Transition::Ended(Figures {
                        duration_ms: (clear - since).max(0.0),
                        ..fig
                    }))
                } else {
                    self.phase = Phase::Stalled {
                        since,
                        clear_since: Some(clear),
                    };
                    None
                }
            }
        }
    }
}

/// Rates between two readings `dt` ms apart. A counter that went backwards
/// (another cgroup after a move, a reset) gives no rate.
fn figures(a: &Reading, b: &Reading, dt: f64) -> Figures {
    let per_sec = |x: u64, y: u64| (y >= x).then(|| (y - x) as f64 * 1000.0 / dt);
    let (failures_per_sec, counter) = match (a.failures, b.failures) {
        (Some((ca, x)), Some((cb, y))) if ca == cb && a.depth == b.depth => {
            (per_sec(x, y), Some(cb))
        }
        (_, Some((cb, _))) => (None, Some(cb)),
        _ => (None, None),
    };
    let pressure = match (a.pressure, b.pressure) {
        (Some(p), Some(q))
            if p.scope == q.scope && p.kind == q.kind && q.total_us >= p.total_us =>
        {
            Some(PressureFigure {
                scope: q.scope,
                kind: q.kind,
                ratio: ((q.total_us - p.total_us) as f64 / (dt * 1000.0)).min(1.0),
                avg10: q.avg10 / 100.0,
            })
        }
        _ => None,
    };
    Figures {
        duration_ms: 0.0,
        window_ms: dt,
        ratio: match (b.working_set, b.limit) {
            (Some(w), Some(l)) if l > 0.0 => Some(w / l),
            _ => None,
        },
        failures_per_sec,
        counter,
        pressure,
        refaults_per_sec: match (a.refaults, b.refaults) {
            (Some(x), Some(y)) => per_sec(x, y),
            _ => None,
        },
        memsw_ratio: match b.memsw {
            Some((u, l)) if l > 0.0 => Some(u / l),
            _ => None,
        },
        decided_by: None,
    }
}

fn scope_str(s: PressureScope) -> &'static str {
    match s {
        PressureScope::Cgroup => "cgroup",
        PressureScope::System => "system",
    }
}

fn num(o: &mut String, v: Option<f64>, decimals: usize) {
    match v {
        Some(v) if v.is_finite() => {
            let r = if decimals == 0 { v.round() } else { v };
            if decimals == 0 || (r.fract() == 0.0 && r.abs() < 9.0e15) {
                let _ = write!(o, "{}", r.round() as i64);
            } else {
                let _ = write!(o, "{r:.decimals$}");
            }
        }
        _ => o.push_str("null"),
    }
}

/// The longest path of the limiting ancestor a record carries (the
/// record must stay under [`crate::watch::lastwords::MAX_LINE`]).
const MAX_LIMITING_PATH: usize = 256;

/// The figures as a JSON object for the flight record (`"stall": {...}`).
/// `exit_code`: set when the native thread is about to end the process.
/// `limiting`: the cgroup path of the ancestor that holds the limit, whose
/// counter and working set the figures are (`limitingCgroup`; null where
/// the process's own cgroup holds it).
pub fn json(f: &Figures, exit_code: Option<i32>, limiting: Option<&str>) -> String {
    let mut o = String::with_capacity(320);
    // The working set's ratio is in the record already (workingSetBytes,
    // limitBytes).
    o.push_str("{\"durationMs\":");
    num(&mut o, Some(f.duration_ms), 0);
    o.push_str(",\"failuresPerSec\":");
    num(&mut o, f.failures_per_sec, 0);
    o.push_str(",\"failureCounter\":");
    match f.counter {
        Some(c) => {
            let _ = write!(o, "\"{}\"", c.as_str());
        }
        None => o.push_str("null"),
    }
    o.push_str(",\"limitingCgroup\":");
    match limiting {
        Some(p) => crate::watch::lastwords::string_max(&mut o, p, MAX_LIMITING_PATH),
        None => o.push_str("null"),
    }
    o.push_str(",\"pressure\":");
    match f.pressure {
        Some(p) => {
            let _ = write!(
                o,
                "{{\"scope\":\"{}\",\"kind\":\"{}\",\"ratio\":",
                scope_str(p.scope),
                p.kind.as_str()
            );
            num(&mut o, Some(p.ratio), 4);
            o.push_str(",\"avg10\":");
            num(&mut o, Some(p.avg10), 4);
            o.push('}');
        }
        None => o.push_str("null"),
    }
    o.push_str(",\"refaultsPerSec\":");
    num(&mut o, f.refaults_per_sec, 0);
    o.push_str(",\"decidedBy\":");
    match f.decided_by {
        Some(e) => {
            let _ = write!(o, "\"{}\"", e.as_str());
        }
        None => o.push_str("null"),
    }
    o.push_str(",\"action\":");
    match exit_code {
        Some(c) => {
            let _ = write!(o, "\"exit\",\"exitCode\":{c}");
        }
        None => o.push_str("null,\"exitCode\":null"),
    }
    o.push('}');
    o
}

/// How long, in a few words (what a record says when space is short).
pub fn short_reason(f: &Figures) -> String {
    format!(
        "stuck at the limit for {:.1} s without an OOM kill",
        f.duration_ms / 1000.0
    )
}

/// One sentence: stuck for how long, on what evidence, and what fills the
/// limit (`cause`: the reason of the fill verdict). `limiting`: as for
/// [`json`].
pub fn reason(f: &Figures, cause: &str, limiting: Option<&str>) -> String {
    let mut o = short_reason(f);
    if f.decided_by == Some(Evidence::Refaults) {
        if let Some(r) = f.refaults_per_sec {
            let _ = write!(
                o,
                ": {r:.0} refaults/s at the memory+swap limit (whose failed charges the kernel does not count)"
            );
        }
    } else if let (Some(rate), Some(c)) = (f.failures_per_sec, f.counter) {
        let _ = write!(o, ": {rate:.0} failed charges/s ({}", c.as_str());
        if let Some(p) = limiting {
            let _ = write!(o, " of {p}, which holds the limit");
        }
        o.push(')');
    }
    if let Some(p) = f.pressure {
        let _ = write!(
            o,
            ", {} memory pressure {} {:.0}%",
            if p.scope == PressureScope::System {
                "system-wide"
            } else {
                "cgroup"
            },
            p.kind.as_str(),
            p.ratio * 100.0
        );
    }
    if let Some(r) = f
        .refaults_per_sec
        .filter(|_| f.decided_by != Some(Evidence::Refaults))
    {
        let _ = write!(o, ", {r:.0} refaults/s");
    }
    let _ = write!(o, "; {cause}");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1048576.0;
    const LIMIT: f64 = 256.0 * MIB;

    /// Per-second rates a scenario runs at: working set (MiB), failures,
    /// pressure share, refaults.
    #[derive(Clone, Copy)]
    struct Rates {
        ws_mib: f64,
        fail: f64,
        psi: Option<f64>,
        refault: Option<f64>,
        /// v1 memory+swap usage / its limit (the limit set equal to LIMIT).
        memsw: Option<f64>,
    }

    /// Feed readings every `step_ms` for `ms` with these rates, continuing
    /// the counters from `state`; returns the transitions with their times.
    struct Sim {
        d: Detector,
        t: f64,
        fail: f64,
        psi_us: f64,
        refault: f64,
        counter: Counter,
        scope: PressureScope,
        out: Vec<(f64, Transition)>,
    }

    impl Sim {
        fn new(cfg: StallConfig, counter: Counter) -> Sim {
            Sim {
                d: Detector::new(cfg),
                t: 0.0,
                fail: 0.0,
                psi_us: 0.0,
                refault: 0.0,
                counter,
                scope: match counter {
                    Counter::Failcnt => PressureScope::System,
                    Counter::EventsMax => PressureScope::Cgroup,
                },
                out: Vec::new(),
            }
        }

        fn run(&mut self, ms: f64, step_ms: f64, r: Rates) -> &mut Self {
            let end = self.t + ms;
            while self.t < end {
                self.t += step_ms;
                self.fail += r.fail * step_ms / 1000.0;
                self.psi_us += r.psi.unwrap_or(0.0) * step_ms * 1000.0;
                self.refault += r.refault.unwrap_or(0.0) * step_ms / 1000.0;
                let reading = Reading {
                    t_ms: self.t,
                    working_set: Some(r.ws_mib * MIB),
                    limit: Some(LIMIT),
                    failures: Some((self.counter, self.fail as u64)),
                    pressure: r.psi.map(|_| PressureReading {
                        scope: self.scope,
                        kind: PsiKind::Some,
                        total_us: self.psi_us as u64,
                        avg10: 0.0,
                    }),
                    refaults: r.refault.map(|_| self.refault as u64),
                    memsw: r.memsw.map(|m| (m * LIMIT, LIMIT)),
                    depth: 0,
                };
                if let Some(tr) = self.d.feed(reading) {
                    self.out.push((self.t, tr));
                }
            }
            self
        }

        fn kinds(&self) -> Vec<&'static str> {
            self.out
                .iter()
                .map(|(_, t)| match t {
                    Transition::Started(_) => "started",
                    Transition::Ended(_) => "ended",
                })
                .collect()
        }
    }

    // Measured on cgroup v1, 256 MiB, node from an uncached copy (see the
    // README): working set 243-249 MiB, failcnt 100k-330k/s, system PSI
    // some 10-80%, refaults 110k-330k/s.
    const V1_STALL: Rates = Rates {
        ws_mib: 246.0,
        fail: 150_000.0,
        psi: Some(0.2),
        refault: Some(160_000.0),
        memsw: None,
    };
    // The page-cache scenario at the limit: usage 100% but working set
    // 34 MiB, failcnt 1-3k/s, refaults 340k/s.
    const V1_PAGECACHE: Rates = Rates {
        ws_mib: 34.0,
        fail: 2600.0,
        psi: Some(0.08),
        refault: Some(340_000.0),
        memsw: None,
    };
    const CALM: Rates = Rates {
        ws_mib: 100.0,
        fail: 0.0,
        psi: Some(0.0),
        refault: Some(0.0),
        memsw: None,
    };
    // Measured on cgroup v1, 256 MiB, memory.memsw.limit_in_bytes equal to
    // the limit, node from an uncached copy (6 runs, 250 ms windows): working
    // set 244-249 MiB, memory+swap at its limit, memory.failcnt and
    // memory.memsw.failcnt 0, refaults 93k-410k/s (10th percentile over
    // 106k/s), system PSI some 18-61%.
    const V1_MEMSW_STALL: Rates = Rates {
        ws_mib: 247.0,
        fail: 0.0,
        psi: Some(0.3),
        refault: Some(200_000.0),
        memsw: Some(0.999),
    };

    #[test]
    fn a_gap_without_readings_does_not_backdate_a_stall() {
        // Snapshots every 2 s while calm (samples of the usage alone between
        // them), then a stall from t = 2050 ms, fed every 50 ms.
        let started = |gap: bool| {
            let cfg = StallConfig {
                sustain_ms: 3000.0,
                ..StallConfig::default()
            };
            let mut s = Sim::new(cfg, Counter::Failcnt);
            s.run(50.0, 50.0, CALM);
            s.t += 2000.0;
            if gap {
                s.d.gap();
            }
            s.run(6000.0, 50.0, V1_STALL);
            s.out
                .iter()
                .find(|(_, t)| matches!(t, Transition::Started(_)))
                .map(|(t, _)| *t)
                .unwrap()
        };
        // Without the gap the first window reaches back to t = 50 ms.
        assert!(started(false) < 2050.0 + 3000.0);
        let t = started(true);
        assert!(
            (2050.0 + 3000.0..=2050.0 + 3000.0 + 2.0 * WINDOW_MS).contains(&t),
            "{t}"
        );
    }

    #[test]
    fn window_judgement() {
        let cfg = StallConfig::default();
        let stall = Figures {
            duration_ms: 0.0,
            window_ms: 500.0,
            ratio: Some(0.96),
            failures_per_sec: Some(150_000.0),
            counter: Some(Counter::Failcnt),
            pressure: Some(PressureFigure {
                scope: PressureScope::System,
                kind: PsiKind::Some,
                ratio: 0.2,
                avg10: 0.1,
            }),
            refaults_per_sec: Some(160_000.0),
            memsw_ratio: None,
            decided_by: None,
        };
        let cases: &[(&str, Figures, bool)] = &[
            ("measured v1 stall", stall, true),
            (
                "page cache: working set low",
                Figures {
                    ratio: Some(0.13),
                    ..stall
                },
                false,
            ),
            (
                "just inside the margin",
                Figures {
                    ratio: Some(0.9),
                    ..stall
                },
                true,
            ),
            (
                "just outside the margin",
                Figures {
                    ratio: Some(0.89),
                    ..stall
                },
                false,
            ),
            (
                "few v1 failures",
                Figures {
                    failures_per_sec: Some(500.0),
                    ..stall
                },
                false,
            ),
            (
                "v2 events max at a stall's rate",
                Figures {
                    failures_per_sec: Some(1500.0),
                    counter: Some(Counter::EventsMax),
                    ..stall
                },
                true,
            ),
            (
                "v2 events max rarely",
                Figures {
                    failures_per_sec: Some(20.0),
                    counter: Some(Counter::EventsMax),
                    ..stall
                },
                false,
            ),
            (
                "no failure counter",
                Figures {
                    failures_per_sec: None,
                    counter: None,
                    ..stall
                },
                false,
            ),
            (
                "no pressure figures (PSI off)",
                Figures {
                    pressure: None,
                    ..stall
                },
                true,
            ),
            (
                "no pressure, but refaults (measured: system PSI 0 in a stall)",
                Figures {
                    pressure: Some(PressureFigure {
                        ratio: 0.0,
                        ..stall.pressure.unwrap()
                    }),
                    ..stall
                },
                true,
            ),
            (
                "little pressure, no refault counters",
                Figures {
                    pressure: Some(PressureFigure {
                        ratio: 0.01,
                        ..stall.pressure.unwrap()
                    }),
                    refaults_per_sec: None,
                    ..stall
                },
                false,
            ),
            (
                "neither pressure nor refaults known (PSI off, old kernel)",
                Figures {
                    pressure: None,
                    refaults_per_sec: None,
                    ..stall
                },
                true,
            ),
            (
                "no refault counters (old kernel)",
                Figures {
                    refaults_per_sec: None,
                    ..stall
                },
                true,
            ),
            (
                "pressure, nothing comes back",
                Figures {
                    refaults_per_sec: Some(10.0),
                    ..stall
                },
                true,
            ),
            (
                "neither pressure nor refaults",
                Figures {
                    pressure: Some(PressureFigure {
                        ratio: 0.01,
                        ..stall.pressure.unwrap()
                    }),
                    refaults_per_sec: Some(10.0),
                    ..stall
                },
                false,
            ),
            (
                "no limit",
                Figures {
                    ratio: None,
                    ..stall
                },
                false,
            ),
        ];
        for (name, f, want) in cases {
            assert_eq!(f.stalling(&cfg), *want, "case {name}");
        }
    }

    #[test]
    fn a_sustained_stall_starts_after_sustain_and_ends_after_clear() {
        let cfg = StallConfig {
            margin: 0.1,
            sustain_ms: 2000.0,
        };
        let mut s = Sim::new(cfg, Counter::Failcnt);
        s.run(2000.0, 5.0, CALM);
        assert!(s.out.is_empty());
        s.run(10_000.0, 5.0, V1_STALL);
        assert_eq!(s.kinds(), ["started"]);
        let (t, Transition::Started(f)) = s.out[0] else {
            unreachable!()
        };
        // The first stalling window opens at 2000 ms: declared one sustain
        // (and at most one window) later.
        assert!(
            (4000.0 - WINDOW_MS..=4000.0 + WINDOW_MS + 5.0).contains(&t),
            "started at {t}"
        );
        assert!(f.duration_ms >= 2000.0, "{f:?}");
        assert_eq!(f.counter, Some(Counter::Failcnt));
        assert!(
            (f.failures_per_sec.unwrap() - 150_000.0).abs() < 1000.0,
            "{f:?}"
        );
        assert!((f.pressure.unwrap().ratio - 0.2).abs() < 0.01, "{f:?}");
        assert!(s.d.stalled());
        let d = s.d.duration_ms(s.t).unwrap();
        assert!((d - 10_000.0).abs() <= WINDOW_MS + 5.0, "lasted {d}");

        s.run(3000.0, 5.0, CALM);
        assert_eq!(s.kinds(), ["started", "ended"]);
        let (t_end, Transition::Ended(f)) = s.out[1] else {
            unreachable!()
        };
        assert!(
            (t_end - 12_000.0 - CLEAR_MS).abs() <= 2.0 * WINDOW_MS,
            "ended at {t_end}"
        );
        assert!((f.duration_ms - 10_000.0).abs() <= WINDOW_MS + 5.0, "{f:?}");
        assert!(!s.d.stalled());
        let secs = s.d.stalled_seconds();
        assert!((secs - 10.0).abs() <= 0.3, "stalled seconds {secs}");
    }

    #[test]
    fn no_stall_for_page_cache_bursts_or_calm() {
        let cfg = StallConfig {
            margin: 0.1,
            sustain_ms: 2000.0,
        };
        // name, counter, phases (ms, rates)
        type Case = (&'static str, Counter, &'static [(f64, Rates)]);
        let cases: &[Case] = &[
            (
                "page cache at the limit, 60 s",
                Counter::Failcnt,
                &[(60_000.0, V1_PAGECACHE)],
            ),
            (
                "a 1.5 s burst, reclaimed",
                Counter::Failcnt,
                &[(1000.0, CALM), (1500.0, V1_STALL), (5000.0, CALM)],
            ),
            (
                "bursts shorter than sustain, with calm spells longer than the grace",
                Counter::Failcnt,
                &[
                    (1500.0, V1_STALL),
                    (1000.0, CALM),
                    (1500.0, V1_STALL),
                    (1000.0, CALM),
                    (1500.0, V1_STALL),
                    (1000.0, CALM),
                ],
            ),
            (
                "at the limit, failing, but neither pressure nor refaults",
                Counter::Failcnt,
                &[(
                    10_000.0,
                    Rates {
                        psi: Some(0.0),
                        refault: Some(0.0),
                        ..V1_STALL
                    },
                )],
            ),
            ("calm", Counter::EventsMax, &[(10_000.0, CALM)]),
        ];
        for (name, counter, phases) in cases {
            let mut s = Sim::new(cfg, *counter);
            for (ms, r) in *phases {
                s.run(*ms, 5.0, *r);
            }
            assert!(s.out.is_empty(), "case {name}: {:?}", s.out);
            assert_eq!(s.d.stalled_seconds(), 0.0, "case {name}");
        }
    }

    #[test]
    fn a_short_dip_while_suspected_does_not_start_the_count_again() {
        let cfg = StallConfig {
            margin: 0.1,
            sustain_ms: 2000.0,
        };
        let mut s = Sim::new(cfg, Counter::Failcnt);
        s.run(1500.0, 5.0, V1_STALL);
        s.run(300.0, 5.0, CALM);
        s.run(1000.0, 5.0, V1_STALL);
        assert_eq!(
            s.kinds(),
            ["started"],
            "a dip shorter than GRACE_MS: {:?}",
            s.d
        );
        let (t, Transition::Started(f)) = s.out[0] else {
            unreachable!()
        };
        assert!(
            t <= 2000.0 + 2.0 * WINDOW_MS,
            "started at {t}: counted from the first window"
        );
        assert!(f.duration_ms >= 2000.0, "{f:?}");
    }

    #[test]
    fn one_calm_window_does_not_end_a_stall_and_the_action_fires_once() {
        let cfg = StallConfig {
            margin: 0.1,
            sustain_ms: 1000.0,
        };
        let mut s = Sim::new(cfg, Counter::EventsMax);
        let v2 = Rates {
            fail: 1500.0,
            ..V1_STALL
        };
        s.run(3000.0, 50.0, v2);
        assert_eq!(s.kinds(), ["started"]);
        assert!(!s.d.action_due(5000.0, s.t), "not yet");
        s.run(400.0, 50.0, CALM);
        s.run(3000.0, 50.0, v2);
        assert_eq!(
            s.kinds(),
            ["started"],
            "a short calm spell is part of the stall"
        );
        assert!(
            s.d.action_due(5000.0, s.t),
            "lasted {:?}",
            s.d.duration_ms(s.t)
        );
        assert!(!s.d.action_due(5000.0, s.t + 1000.0), "once per stall");
    }

    #[test]
    fn slow_and_irregular_sampling() {
        // The sampler may sleep seconds between readings, or sample every
        // millisecond; windows are judged on what was fed.
        let cfg = StallConfig {
            margin: 0.1,
            sustain_ms: 3000.0,
        };
        for step in [1.0, 7.0, 100.0, 1000.0, 5000.0] {
            let mut s = Sim::new(cfg, Counter::Failcnt);
            s.run(20_000.0, step, V1_STALL);
            assert_eq!(s.kinds(), ["started"], "step {step}");
            let t = s.out[0].0;
            assert!(
                t <= 3000.0 + 2.0 * step.max(WINDOW_MS),
                "step {step}: started at {t}"
            );
        }
    }

    #[test]
    fn counters_going_backwards_give_no_rate() {
        let a = Reading {
            t_ms: 0.0,
            working_set: Some(250.0 * MIB),
            limit: Some(LIMIT),
            failures: Some((Counter::Failcnt, 1_000_000)),
            pressure: None,
            refaults: Some(5000),
            memsw: None,
            depth: 0,
        };
        let b = Reading {
            t_ms: 500.0,
            failures: Some((Counter::Failcnt, 10)),
            refaults: Some(10),
            ..a
        };
        let f = figures(&a, &b, 500.0);
        assert_eq!(f.failures_per_sec, None);
        assert_eq!(f.refaults_per_sec, None);
        assert!(!f.stalling(&StallConfig::default()));
        // Time going backwards resets the window.
        let mut d = Detector::new(StallConfig::default());
        assert_eq!(d.feed(b), None);
        assert_eq!(d.feed(Reading { t_ms: 100.0, ..a }), None);
        assert_eq!(d.last(), None);
    }

    #[test]
    fn json_and_reason() {
        let f = Figures {
            duration_ms: 3120.4,
            window_ms: 250.0,
            ratio: Some(0.96312),
            failures_per_sec: Some(150_000.2),
            counter: Some(Counter::Failcnt),
            pressure: Some(PressureFigure {
                scope: PressureScope::System,
                kind: PsiKind::Some,
                ratio: 0.25,
                avg10: 0.1336,
            }),
            refaults_per_sec: None,
            memsw_ratio: None,
            decided_by: Some(Evidence::ChargeFailures),
        };
        assert_eq!(
            json(&f, Some(EXIT_CODE), None),
            "{\"durationMs\":3120,\"failuresPerSec\":150000,\
             \"failureCounter\":\"memory.failcnt\",\"limitingCgroup\":null,\
             \"pressure\":{\"scope\":\"system\",\"kind\":\"some\",\"ratio\":0.2500,\"avg10\":0.1336},\"refaultsPerSec\":null,\"decidedBy\":\"charge-failures\",\
             \"action\":\"exit\",\"exitCode\":75}"
        );
        assert!(
            json(&Figures::default(), None, None).ends_with("\"action\":null,\"exitCode\":null}")
        );
        assert_eq!(
            reason(&f, "the V8 heap (206 MiB) is most of the anonymous memory (222 MiB)", None),
            "stuck at the limit for 3.1 s without an OOM kill: 150000 failed charges/s (memory.failcnt), \
             system-wide memory pressure some 25%; the V8 heap (206 MiB) is most of the anonymous memory (222 MiB)"
        );
        // Decided by refaults (memory+swap binding): the failure rate is
        // unknown, said so, and not printed as 0.
        let m = Figures {
            failures_per_sec: None,
            refaults_per_sec: Some(201_234.4),
            memsw_ratio: Some(0.999),
            decided_by: Some(Evidence::Refaults),
            ..f
        };
        let j = json(&m, None, None);
        assert!(
            j.contains("\"failuresPerSec\":null,\"failureCounter\":\"memory.failcnt\""),
            "{j}"
        );
        assert!(
            j.contains("\"refaultsPerSec\":201234,\"decidedBy\":\"refaults\""),
            "{j}"
        );
        assert_eq!(
            reason(&m, "the V8 heap (206 MiB) is most of the anonymous memory (222 MiB)", None),
            "stuck at the limit for 3.1 s without an OOM kill: 201234 refaults/s at the memory+swap limit \
             (whose failed charges the kernel does not count), system-wide memory pressure some 25%; \
             the V8 heap (206 MiB) is most of the anonymous memory (222 MiB)"
        );
        assert!(json(&Figures::default(), None, None).contains("\"decidedBy\":null"));
    }

    #[test]
    fn window_judgement_where_memory_and_swap_bind() {
        let cfg = StallConfig::default();
        // A window of a measured stall with memory.memsw.limit_in_bytes ==
        // memory.limit_in_bytes: no failed charge counted.
        let stall = Figures {
            duration_ms: 0.0,
            window_ms: 250.0,
            ratio: Some(0.966),
            failures_per_sec: Some(0.0),
            counter: Some(Counter::Failcnt),
            pressure: Some(PressureFigure {
                scope: PressureScope::System,
                kind: PsiKind::Some,
                ratio: 0.3,
                avg10: 0.3,
            }),
            refaults_per_sec: Some(200_000.0),
            memsw_ratio: Some(0.999),
            decided_by: None,
        };
        let no_psi = PressureFigure {
            ratio: 0.0,
            ..stall.pressure.unwrap()
        };
        let cases: &[(&str, Figures, Option<Evidence>)] = &[
            ("measured memsw stall", stall, Some(Evidence::Refaults)),
            (
                "system PSI 0: refaults alone decide",
                Figures {
                    pressure: Some(no_psi),
                    ..stall
                },
                Some(Evidence::Refaults),
            ),
            (
                "PSI off",
                Figures {
                    pressure: None,
                    ..stall
                },
                Some(Evidence::Refaults),
            ),
            (
                "at the strict refault threshold",
                Figures {
                    refaults_per_sec: Some(MEMSW_MIN_REFAULTS_PER_SEC),
                    ..stall
                },
                Some(Evidence::Refaults),
            ),
            (
                "refaults above the usual threshold, below the strict one",
                Figures {
                    refaults_per_sec: Some(MEMSW_MIN_REFAULTS_PER_SEC - 1.0),
                    ..stall
                },
                None,
            ),
            (
                "refaults not known (old kernel): the pressure alone does not decide",
                Figures {
                    refaults_per_sec: None,
                    pressure: Some(PressureFigure {
                        ratio: 0.9,
                        ..stall.pressure.unwrap()
                    }),
                    ..stall
                },
                None,
            ),
            (
                "page cache under the same limit: working set low",
                Figures {
                    ratio: Some(0.13),
                    refaults_per_sec: Some(340_000.0),
                    ..stall
                },
                None,
            ),
            (
                "working set just outside the margin",
                Figures {
                    ratio: Some(0.89),
                    ..stall
                },
                None,
            ),
            (
                "memory+swap within the margin of its limit",
                Figures {
                    memsw_ratio: Some(0.9),
                    ..stall
                },
                Some(Evidence::Refaults),
            ),
            (
                "a memory+swap limit that does not bind (swap free): as without one",
                Figures {
                    memsw_ratio: Some(0.5),
                    ..stall
                },
                None,
            ),
            (
                "no memory+swap limit (or no swap accounting)",
                Figures {
                    memsw_ratio: None,
                    ..stall
                },
                None,
            ),
            (
                "both limits reached and failcnt counting: the charge-failure rule",
                Figures {
                    failures_per_sec: Some(150_000.0),
                    ..stall
                },
                Some(Evidence::ChargeFailures),
            ),
            (
                "failcnt counting a little: refaults decide",
                Figures {
                    failures_per_sec: Some(500.0),
                    ..stall
                },
                Some(Evidence::Refaults),
            ),
            (
                "no limit",
                Figures {
                    ratio: None,
                    ..stall
                },
                None,
            ),
        ];
        for (name, f, want) in cases {
            assert_eq!(f.judge(&cfg), *want, "case {name}");
            assert_eq!(f.stalling(&cfg), want.is_some(), "case {name}");
            let j = f.judged(&cfg);
            assert_eq!(j.decided_by, *want, "case {name}");
            let rate = match want {
                Some(Evidence::Refaults) => None,
                _ => f.failures_per_sec,
            };
            assert_eq!(
                j.failures_per_sec, rate,
                "case {name}: the failure rate as reported"
            );
        }
        // Without a memory+swap figure every earlier case judges as before:
        // the charge-failure rule or nothing.
        for f in [
            stall,
            Figures {
                failures_per_sec: Some(150_000.0),
                ..stall
            },
        ] {
            let v1 = Figures {
                memsw_ratio: None,
                ..f
            };
            assert_ne!(v1.judge(&cfg), Some(Evidence::Refaults));
        }
    }

    #[test]
    fn memory_and_swap_binding_stall_from_refaults_but_not_page_cache_or_bursts() {
        let cfg = StallConfig {
            margin: 0.1,
            sustain_ms: 2000.0,
        };
        let mut s = Sim::new(cfg, Counter::Failcnt);
        s.run(2000.0, 5.0, CALM);
        s.run(10_000.0, 5.0, V1_MEMSW_STALL);
        assert_eq!(s.kinds(), ["started"]);
        let (t, Transition::Started(f)) = s.out[0] else {
            unreachable!()
        };
        assert!(
            (4000.0 - WINDOW_MS..=4000.0 + WINDOW_MS + 5.0).contains(&t),
            "started at {t}"
        );
        assert_eq!(f.decided_by, Some(Evidence::Refaults));
        assert_eq!(f.failures_per_sec, None, "unknown, not 0");
        assert_eq!(f.counter, Some(Counter::Failcnt));
        assert!(
            (f.refaults_per_sec.unwrap() - 200_000.0).abs() < 2000.0,
            "{f:?}"
        );
        s.run(
            3000.0,
            5.0,
            Rates {
                memsw: Some(0.5),
                ..CALM
            },
        );
        assert_eq!(s.kinds(), ["started", "ended"]);

        let memsw = |r: Rates| Rates {
            memsw: Some(0.999),
            ..r
        };
        type Case = (&'static str, &'static [(f64, Rates)]);
        let cases: &[Case] = &[
            (
                "page cache at the limit, 60 s",
                &[(
                    60_000.0,
                    Rates {
                        fail: 0.0,
                        memsw: Some(1.0),
                        ..V1_PAGECACHE
                    },
                )],
            ),
            (
                "a 1.5 s burst",
                &[(1000.0, CALM), (1500.0, V1_MEMSW_STALL), (5000.0, CALM)],
            ),
            (
                "bursts shorter than sustain, calm spells longer than the grace",
                &[
                    (1500.0, V1_MEMSW_STALL),
                    (1000.0, CALM),
                    (1500.0, V1_MEMSW_STALL),
                    (1000.0, CALM),
                ],
            ),
            (
                "at both limits with refaults below the strict threshold",
                &[(
                    20_000.0,
                    Rates {
                        refault: Some(15_000.0),
                        ..V1_MEMSW_STALL
                    },
                )],
            ),
            (
                "the same stall's rates without a binding memory+swap limit",
                &[(
                    20_000.0,
                    Rates {
                        memsw: Some(0.5),
                        ..V1_MEMSW_STALL
                    },
                )],
            ),
            (
                "no refault counters",
                &[(
                    20_000.0,
                    Rates {
                        refault: None,
                        ..V1_MEMSW_STALL
                    },
                )],
            ),
        ];
        for (name, phases) in cases {
            let mut s = Sim::new(cfg, Counter::Failcnt);
            for (ms, r) in *phases {
                let r = if r.memsw.is_none() { memsw(*r) } else { *r };
                s.run(*ms, 5.0, r);
            }
            assert!(s.out.is_empty(), "case {name}: {:?}", s.out);
            assert_eq!(s.d.stalled_seconds(), 0.0, "case {name}");
        }
    }

    #[test]
    fn readings_from_snapshots() {
        use crate::locate::Location;
        use crate::parse::{Pressure, PressureLine};
        use crate::reader::Events;
        use crate::stat::MemoryStat;
        let line = |total_us| PressureLine {
            avg10: 12.5,
            avg60: 0.0,
            avg300: 0.0,
            total_us,
        };
        let mk = |version| Snapshot {
            location: Some(Location {
                version,
                cgroup_path: "/x".into(),
                mount_point: "/sys/fs/cgroup".into(),
                dir: "/sys/fs/cgroup/x".into(),
                resolved: true,
            }),
            cgroup_limit: Some(1 << 28),
            working_set: Some(1 << 27),
            events: Some(Events {
                max: Some(7),
                failcnt: Some(9),
                ..Events::default()
            }),
            stat: Some(MemoryStat {
                workingset_refault: Some(11),
                ..MemoryStat::default()
            }),
            ..Snapshot::default()
        };
        let mut v1 = mk(CgroupVersion::V1);
        v1.pressure = Some((
            Pressure {
                some: line(100),
                full: Some(line(50)),
            },
            PressureScope::System,
        ));
        let r = Reading::from_snapshot(&v1, 1.0);
        assert_eq!(r.memsw, None, "no swap accounting: no memory+swap figure");
        let mut v1_memsw = mk(CgroupVersion::V1);
        v1_memsw.usage = Some(200 << 20);
        v1_memsw.swap = Some(1 << 20);
        v1_memsw.stat.as_mut().unwrap().hierarchical_memsw_limit = Some(1 << 28);
        assert_eq!(
            Reading::from_snapshot(&v1_memsw, 1.0).memsw,
            Some((201.0 * 1048576.0, (1u64 << 28) as f64)),
            "memory+swap usage and limit"
        );
        v1_memsw.stat.as_mut().unwrap().hierarchical_memsw_limit = None;
        assert_eq!(
            Reading::from_snapshot(&v1_memsw, 1.0).memsw,
            None,
            "memsw unlimited"
        );
        assert_eq!(r.failures, Some((Counter::Failcnt, 9)));
        assert_eq!(r.limit, Some((1u64 << 28) as f64));
        assert_eq!(r.refaults, Some(11));
        let p = r.pressure.unwrap();
        assert_eq!(
            (p.scope, p.kind, p.total_us),
            (PressureScope::System, PsiKind::Some, 100),
            "v1: system-wide some"
        );

        let mut v2 = mk(CgroupVersion::V2);
        v2.pressure = Some((
            Pressure {
                some: line(100),
                full: Some(line(50)),
            },
            PressureScope::Cgroup,
        ));
        v2.usage = Some(200 << 20);
        v2.swap = Some(1 << 20);
        v2.stat.as_mut().unwrap().hierarchical_memsw_limit = Some(1 << 28);
        let r = Reading::from_snapshot(&v2, 1.0);
        assert_eq!(r.memsw, None, "v2: no memory+swap counter");
        assert_eq!(r.failures, Some((Counter::EventsMax, 7)));
        let p = r.pressure.unwrap();
        assert_eq!(
            (p.scope, p.kind, p.total_us),
            (PressureScope::Cgroup, PsiKind::Full, 50),
            "v2: the cgroup's full"
        );

        let mut broken = mk(CgroupVersion::V2);
        broken.failed.limit = true;
        assert_eq!(
            Reading::from_snapshot(&broken, 1.0).limit,
            None,
            "a failed limit read is no limit"
        );
        let host = Snapshot {
            mem_total: Some(1 << 30),
            ..Snapshot::default()
        };
        let r = Reading::from_snapshot(&host, 1.0);
        assert_eq!(
            (r.limit, r.failures),
            (None, None),
            "no cgroup: never a stall"
        );
    }

    /// Under a parent's limit the leaf's counter stays 0 and its working set
    /// can be far below the limit (siblings fill the rest): the reading is
    /// the limiting ancestor's, and the detector judges by it.
    #[test]
    fn under_a_parent_limit_the_ancestor_decides() {
        use crate::locate::Location;
        use crate::reader::{Events, LimitingCgroup};
        use crate::stat::MemoryStat;
        let mib = 1u64 << 20;
        // (case, version, leaf working set, ancestor working set, ancestor
        // failures per 250 ms, leaf memsw usage, ancestor memsw (usage, limit),
        // expected reading: working set, memsw, stall?)
        struct Case {
            name: &'static str,
            version: CgroupVersion,
            leaf_ws: u64,
            parent_ws: u64,
            parent_fail_step: u64,
            parent_memsw: Option<(u64, u64)>,
            stall: bool,
        }
        let cases = [
            Case {
                name: "v1: alone under the parent's limit",
                version: CgroupVersion::V1,
                leaf_ws: 250 * mib,
                parent_ws: 252 * mib,
                parent_fail_step: 1000,
                parent_memsw: None,
                stall: true,
            },
            Case {
                name: "v1: siblings fill the parent's limit; the leaf's working set is small",
                version: CgroupVersion::V1,
                leaf_ws: 60 * mib,
                parent_ws: 250 * mib,
                parent_fail_step: 1000,
                parent_memsw: None,
                stall: true,
            },
            Case {
                name: "v2: the parent's memory.events max",
                version: CgroupVersion::V2,
                leaf_ws: 60 * mib,
                parent_ws: 250 * mib,
                parent_fail_step: 50,
                parent_memsw: None,
                stall: true,
            },
            Case {
                name: "v1: page cache fills the parent: its working set is low",
                version: CgroupVersion::V1,
                leaf_ws: 20 * mib,
                parent_ws: 40 * mib,
                parent_fail_step: 1000,
                parent_memsw: None,
                stall: false,
            },
            Case {
                name: "v1: the parent's memory+swap limit binds, no failed charge counted",
                version: CgroupVersion::V1,
                leaf_ws: 250 * mib,
                parent_ws: 250 * mib,
                parent_fail_step: 0,
                parent_memsw: Some((255 * mib, 256 * mib)),
                stall: true,
            },
        ];
        for c in cases {
            let snap = |i: u64| Snapshot {
                location: Some(Location {
                    version: c.version,
                    cgroup_path: "/pod/app".into(),
                    mount_point: "/sys/fs/cgroup".into(),
                    dir: "/sys/fs/cgroup/pod/app".into(),
                    resolved: true,
                }),
                cgroup_limit: Some(256 * mib),
                working_set: Some(c.leaf_ws),
                events: Some(Events {
                    max: Some(0),
                    failcnt: Some(0),
                    ..Events::default()
                }),
                stat: Some(MemoryStat {
                    // 40,000 refaults/s.
                    workingset_refault: Some(i * 10_000),
                    ..MemoryStat::default()
                }),
                limiting: Some(LimitingCgroup {
                    path: "/pod".into(),
                    dir: "/sys/fs/cgroup/pod".into(),
                    depth: 1,
                    usage: Some(c.parent_ws + mib),
                    working_set: Some(c.parent_ws),
                    failures: Some(i * c.parent_fail_step),
                    memsw_usage: c.parent_memsw.map(|m| m.0),
                    memsw_limit: c.parent_memsw.map(|m| m.1),
                }),
                ..Snapshot::default()
            };
            let r = Reading::from_snapshot(&snap(1), 250.0);
            assert_eq!(r.depth, 1, "{}", c.name);
            assert_eq!(r.working_set, Some(c.parent_ws as f64), "{}", c.name);
            assert_eq!(
                r.memsw,
                c.parent_memsw
                    .filter(|_| c.version == CgroupVersion::V1)
                    .map(|(u, l)| (u as f64, l as f64)),
                "{}",
                c.name
            );
            let mut d = Detector::new(StallConfig {
                margin: 0.1,
                sustain_ms: 1000.0,
            });
            let mut started = false;
            for i in 0..20 {
                let t = Reading::from_snapshot(&snap(i), i as f64 * 250.0);
                started |= matches!(d.feed(t), Some(Transition::Started(_)));
            }
            assert_eq!(started, c.stall, "{}", c.name);
            assert_eq!(d.stalled(), c.stall, "{}", c.name);
        }
    }

    #[test]
    fn no_rate_spans_a_move_of_the_limit() {
        // The limit moved from the parent (failcnt 9e6) to the leaf (failcnt 10).
        let at = |t_ms, depth, count| Reading {
            t_ms,
            working_set: Some(LIMIT),
            limit: Some(LIMIT),
            failures: Some((Counter::Failcnt, count)),
            depth,
            ..Reading::default()
        };
        let f = figures(&at(0.0, 0, 10), &at(250.0, 1, 9_000_000), 250.0);
        assert_eq!(f.failures_per_sec, None);
        assert_eq!(f.counter, Some(Counter::Failcnt));
        let f = figures(&at(0.0, 1, 10), &at(250.0, 1, 260), 250.0);
        assert_eq!(f.failures_per_sec, Some(1000.0));
    }

    #[test]
    fn the_record_and_the_reason_name_the_limiting_ancestor() {
        let f = Figures {
            duration_ms: 3000.0,
            failures_per_sec: Some(150_000.0),
            counter: Some(Counter::Failcnt),
            decided_by: Some(Evidence::ChargeFailures),
            ..Figures::default()
        };
        let j = json(&f, None, Some("/pod\"quoted\""));
        assert!(
            j.contains(
                "\"failureCounter\":\"memory.failcnt\",\"limitingCgroup\":\"/pod\\\"quoted\\\"\","
            ),
            "{j}"
        );
        assert!(json(&f, None, None).contains("\"limitingCgroup\":null,"));
        let long = format!("/{}", "p".repeat(5000));
        assert!(json(&f, None, Some(&long)).len() < 700, "the path is cut");
        assert_eq!(
            reason(&f, "cause", Some("/pod")),
            "stuck at the limit for 3.0 s without an OOM kill: 150000 failed charges/s (memory.failcnt of /pod, which holds the limit); cause"
        );
        assert_eq!(
            reason(&f, "cause", None),
            "stuck at the limit for 3.0 s without an OOM kill: 150000 failed charges/s (memory.failcnt); cause"
        );
    }
}
