//! Stuck at the limit: the state in which the kernel neither grants memory
//! nor OOM-kills. When a process's own code pages are charged to its cgroup
//! (a container's image read for the first time inside it), reclaim at the
//! limit evicts those pages, the process faults them straight back in, the
//! kernel counts that as progress, and the OOM killer never runs: the
//! service hangs at 100% of its limit.
//!
//! A [`Detector`] is fed one [`Observation`] per sample and judges windows of at
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
            margin: crate::options::STALL_MARGIN_DEFAULT,
            sustain_ms: crate::options::STALL_SUSTAIN_MS_DEFAULT,
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
    /// (`named::named_files`).
    pub fn as_str(self) -> &'static str {
        let version = match self {
            Counter::Failcnt => CgroupVersion::V1,
            Counter::EventsMax => CgroupVersion::V2,
        };
        crate::named::named_files(Some(version)).failures
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
pub struct Observation {
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

impl Observation {
    /// The reading of a snapshot. Where an ancestor holds the limit, its
    /// working set, failure counter and memory+swap stand in for the
    /// leaf's: the kernel fails (and counts) the charges of every cgroup
    /// below that limit in that ancestor, against everything charged to it
    /// (siblings' memory included; the leaf's working set can be far below
    /// a limit that is full). Pressure and refaults stay the leaf's own:
    /// they say whether this process's tasks are the ones held up.
    pub fn from_snapshot(snap: &Snapshot, t_ms: f64) -> Observation {
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
        Observation {
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
    anchor: Option<Observation>,
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

    pub fn feed(&mut self, r: Observation) -> Option<Transition> {
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
fn figures(a: &Observation, b: &Observation, dt: f64) -> Figures {
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
        Some(p) => crate::json::string_max(&mut o, p, MAX_LIMITING_PATH),
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
mod tests;
