//! Stalls: each monitor's detector is fed every sample; a stall is recorded,
//! reported, and on request ends the process from this thread (JavaScript
//! may be the one stuck).

use super::*;

/// While a stall is suspected or on, sample at least this often.
pub(super) const STALL_POLL: Duration = Duration::from_millis(50);

pub(super) static EPOCH: once_cell::sync::Lazy<Instant> = once_cell::sync::Lazy::new(Instant::now);

pub(super) fn mono_ms(at: Instant) -> f64 {
    at.saturating_duration_since(*EPOCH).as_secs_f64() * 1000.0
}

/// Per root: whether a monitor with stall detection sees it stalled.
pub(super) static STALLS: once_cell::sync::Lazy<Mutex<HashMap<PathBuf, bool>>> =
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
pub(super) fn publish_stalls(monitors: &[Arc<Monitor>]) {
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
pub(super) struct StallNow {
    pub(super) transition: Option<stall::Transition>,
    /// While stalled: the figures so far (for the record).
    pub(super) figures: Option<stall::Figures>,
}

pub(super) fn stall_feed(m: &Monitor, st: &mut MonitorState, s: &Sample) -> StallNow {
    let Some(d) = st.stall.as_mut() else {
        return StallNow {
            transition: None,
            figures: None,
        };
    };
    let t = mono_ms(s.at);
    let transition = d.feed(stall::Observation::from_snapshot(&s.snap, t));
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

/// What a stall event says beside the stall: the sample's numbers (its time
/// to the limit left out) and the evidence for the verdict.
pub(super) struct StallCtx<'a> {
    pub(super) snap: &'a Snapshot,
    pub(super) ts: f64,
    pub(super) point: &'a Point,
    pub(super) evidence: lastwords::Evidence,
}

pub(super) fn stall_event(
    m: &Monitor,
    tr: stall::Transition,
    c: &StallCtx,
    last_words: Option<String>,
) -> Event {
    let (kind, fig) = match tr {
        stall::Transition::Started(f) => (EventKind::Stall, f),
        stall::Transition::Ended(f) => (EventKind::StallEnd, f),
    };
    let (cause, cause_reason) = lastwords::verdict(c.snap, c.point.basis_f, &c.evidence);
    let limiting = c.snap.limiting.as_ref().map(|l| l.path.clone());
    let mut ev = c.point.event(m, kind, c.point.new, f64::NAN, c.ts);
    ev.time_to_limit_ms = None;
    ev.last_words = last_words;
    ev.stall = Some(Box::new(StallNote {
        figures: fig,
        cause: cause.as_str(),
        reason: stall::reason(&fig, &cause_reason, limiting.as_deref()),
        limiting_cgroup: limiting,
    }));
    ev
}

/// With `onStall: { action: 'exit' }`: once the stall has lasted `after_ms`,
/// write the final record (to stderr whatever `lastWords` says: the process
/// is about to end itself and must say why) and end the process at once.
#[allow(clippy::too_many_arguments)]
pub(super) fn stall_exit(
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
pub(super) fn latest_v8(monitors: &[Arc<Monitor>]) -> Option<V8Known> {
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
