//! The per-sample step: one sample, one monitor.

use super::*;

/// A sample of the usage alone where every monitor of the root is quiet
/// and the sample proves it still is; else a snapshot.
pub(super) fn read_root(root: &Root, monitors: &[Arc<Monitor>]) -> RootRead {
    let mut quiet = Vec::new();
    for m in monitors.iter().filter(|m| m.config.root == root.path) {
        let st = m.state();
        if st.closed {
            continue;
        }
        match st.quiet {
            Some(q) => quiet.push((m.config.basis, q)),
            None => return RootRead::Full(root.sample()),
        }
    }
    if quiet.is_empty() {
        return RootRead::Full(root.sample());
    }
    match root.tick(&quiet) {
        Some(t) => RootRead::Tick(t),
        None => RootRead::Full(root.sample()),
    }
}

/// Handle one sample for one monitor, catching a panic (one `error` event,
/// said once until a step succeeds). Returns how long it may sleep.
pub(super) fn step(
    m: &Monitor,
    reading: &RootRead,
    v8: Option<V8Known>,
    kernel: &dyn Fn(&Path, u64) -> bool,
    stderr_taken: &mut bool,
    events: &mut Vec<Event>,
) -> Duration {
    let mut st = m.state();
    if st.closed {
        return Duration::from_secs(3600);
    }
    let mine = events.len();
    let r = guard::catch("a monitor's step", || match reading {
        RootRead::Tick(t) => evaluate_tick(m, &mut st, t, v8, kernel),
        RootRead::Full(Ok(s)) => evaluate(m, &mut st, s, v8, kernel, stderr_taken, events),
        RootRead::Full(Err(msg)) => {
            // A panic while reading this root: said like a failed read.
            fail(
                m,
                &mut st,
                now_ms(),
                ErrorCode::Internal,
                msg.clone(),
                events,
            );
            RETRY_AFTER
        }
    });
    match r {
        Ok(w) => {
            if !matches!(reading, RootRead::Full(Err(_))) {
                st.panicked = false;
            }
            w
        }
        Err(p) => {
            st.quiet = None;
            events.truncate(mine);
            say_panic(m, &mut st, &p.to_string(), events);
            RETRY_AFTER
        }
    }
}

/// Say a caught panic for the monitor: one `error` event, once until a
/// step succeeds.
pub(super) fn say_panic(m: &Monitor, st: &mut MonitorState, msg: &str, events: &mut Vec<Event>) {
    if !st.panicked {
        st.panicked = true;
        events.push(Event::error(
            m.id,
            st.level,
            &m.block,
            now_ms(),
            ErrorCode::Internal,
            msg.to_string(),
        ));
    }
}

/// Mark the monitor failing (the numbers are the last good ones) and say why, once.
pub(super) fn fail(
    m: &Monitor,
    st: &mut MonitorState,
    ts: f64,
    code: ErrorCode,
    msg: String,
    events: &mut Vec<Event>,
) {
    if st.failing {
        return;
    }
    st.failing = true;
    m.block.set(block::FAILING, 1.0);
    events.push(Event::error(m.id, st.level, &m.block, ts, code, msg));
}

/// The numbers one snapshot gives one monitor: what the block, every event
/// and the record of this step say.
#[derive(Debug, Clone, Copy)]
pub(super) struct Point {
    pub(super) limit: u64,
    pub(super) source: LimitSource,
    pub(super) limit_f: f64,
    pub(super) basis_f: f64,
    pub(super) ratio: f64,
    pub(super) rate: f64,
    pub(super) headroom: f64,
    pub(super) ttl: Option<f64>,
    /// The level before this sample, and after it.
    pub(super) old: usize,
    pub(super) new: usize,
}

impl Point {
    /// An event of this sample, with nothing attached.
    pub(super) fn event(
        &self,
        m: &Monitor,
        kind: EventKind,
        level: usize,
        threshold: f64,
        ts: f64,
    ) -> Event {
        Event {
            monitor: m.id,
            kind,
            level: level as u32,
            threshold,
            ratio: self.ratio,
            basis_bytes: self.basis_f,
            limit_bytes: self.limit_f,
            headroom_bytes: self.headroom,
            growth_bytes_per_sec: self.rate,
            time_to_limit_ms: self.ttl,
            timestamp_ms: ts,
            message: None,
            code: None,
            last_words: None,
            last_words_error: None,
            limit_change: None,
            stall: None,
        }
    }
}

/// Where the flight record of this step went.
#[derive(Debug, Default)]
pub(super) struct Written {
    /// The places written, comma-separated; None when none was.
    went: Option<String>,
    /// Why the file could not be written.
    went_wrong: Option<String>,
    /// The step's trace record was written with it.
    traced: bool,
}

/// One snapshot for one monitor: its numbers, level, events, record, stall
/// and next wait, in that order.
pub(super) fn evaluate(
    m: &Monitor,
    st: &mut MonitorState,
    s: &Sample,
    v8: Option<V8Known>,
    kernel: &dyn Fn(&Path, u64) -> bool,
    stderr_taken: &mut bool,
    events: &mut Vec<Event>,
) -> Duration {
    #[cfg(test)]
    tests::fault(&m.config.root, tests::PANIC_IN_STEP);
    st.quiet = None;
    let p = match measure(&m.config, st.level, s) {
        Ok(p) => p,
        Err(msg) => {
            // Keep the last good numbers; say so once.
            fail(m, st, s.ts, ErrorCode::Read, msg, events);
            return m.config.max_interval.max(RETRY_AFTER);
        }
    };
    st.failing = false;
    st.v8_follow.sample(v8, s.snap.usage);
    st.level = p.new;
    publish(m, s, &p);
    limit_event(m, st, s, &p, events);

    // Stalls: fed before the flight record, so that every record written
    // while stalled says so, and the start of one is recorded at once.
    let stall_now = stall_feed(m, st, s);
    let stall_started = matches!(stall_now.transition, Some(stall::Transition::Started(_)));
    let written = flight_record(
        m,
        st,
        s,
        &p,
        v8,
        &stall_now,
        stall_started,
        stderr_taken,
        events,
    );
    level_events(m, s, &p, &written, events);
    if let Some(tr) = stall_now.transition {
        let (split, usage_at_split) = st.split(&m.config.root, s.snap.usage, s.ts);
        let c = StallCtx {
            snap: &s.snap,
            ts: s.ts,
            point: &p,
            evidence: lastwords::Evidence {
                v8,
                usage_at_v8: st.v8_follow.usage_at_v8,
                split,
                usage_at_split,
                now_ms: s.ts,
            },
        };
        let went = written.went.clone().filter(|_| stall_started);
        events.push(stall_event(m, tr, &c, went));
    }
    if let Some(after) = m.config.on_stall_exit_after_ms {
        stall_exit(m, st, s, after, p.basis_f, p.ratio, p.rate, v8);
    }
    schedule(m, st, s, &p, kernel, written.traced)
}

/// The monitor's numbers in this snapshot, and the level they reach from
/// `old`; Err(why) where the limit or the basis could not be read.
fn measure(cfg: &Config, old: usize, s: &Sample) -> Result<Point, String> {
    let snap = &s.snap;
    let (Some((limit, source)), Some(basis)) = (snap.limit(), cfg.basis.bytes(snap)) else {
        return Err(if snap.problems.is_empty() {
            snap.locate_error
                .clone()
                .unwrap_or_else(|| "no memory numbers could be read".into())
        } else {
            snap.problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        });
    };
    let limit_f = limit as f64;
    let basis_f = basis as f64;
    let ratio = ratio_of(basis_f, limit_f);
    let rate = s.rates[basis_index(cfg.basis)];
    let headroom = limit_f - basis_f;
    Ok(Point {
        limit,
        source,
        limit_f,
        basis_f,
        ratio,
        rate,
        headroom,
        ttl: time_to_limit_ms(headroom, rate),
        old,
        new: next_level(old, ratio, &cfg.thresholds, cfg.hysteresis),
    })
}

/// Write the sample's numbers into the monitor's block.
fn publish(m: &Monitor, s: &Sample, p: &Point) {
    let snap = &s.snap;
    m.block.write(|b| {
        b.set(block::LEVEL, p.new as f64);
        b.set(block::TIMESTAMP, s.ts);
        b.set(block::RATIO, p.ratio);
        b.set(block::BASIS, p.basis_f);
        b.set(block::LIMIT, p.limit_f);
        b.set(block::HEADROOM, p.headroom);
        b.set(block::GROWTH, p.rate);
        b.set(block::TIME_TO_LIMIT, p.ttl.unwrap_or(f64::NAN));
        b.set(block::USAGE, snap.usage.map_or(f64::NAN, |v| v as f64));
        b.set(
            block::WORKING_SET,
            snap.working_set.map_or(f64::NAN, |v| v as f64),
        );
        b.set(block::RSS, snap.rss.map_or(f64::NAN, |v| v as f64));
        b.set(block::SOURCE, block::source_code(p.source));
        b.set(block::SAMPLES, b.get(block::SAMPLES) + 1.0);
        b.set(block::FAILING, 0.0);
    });
}

/// The limit changed: say so before any level it moves (the ratio is
/// already against the new limit; the kernel triggers follow through
/// arm_key). `limit` is promised within one sampling interval of the
/// change (limit.test.js, docker.test.js): every sample reads the limit.
fn limit_event(m: &Monitor, st: &mut MonitorState, s: &Sample, p: &Point, events: &mut Vec<Event>) {
    let previous = st.limit.replace(p.limit);
    if let Some(prev) = previous.filter(|prev| *prev != p.limit) {
        let heap = m.block.v8().and_then(|v| v.numbers.heap_size_limit);
        let mut ev = p.event(m, EventKind::Limit, p.new, f64::NAN, s.ts);
        ev.limit_change = Some(Box::new(limit_change(&s.snap, prev as f64, p.source, heap)));
        events.push(ev);
    }
}

/// Write the flight record where one is due: to stderr (level changes
/// only) and the last-words file; an `error` event, once, where the file
/// cannot be written.
#[allow(clippy::too_many_arguments)]
fn flight_record(
    m: &Monitor,
    st: &mut MonitorState,
    s: &Sample,
    p: &Point,
    v8: Option<V8Known>,
    stall_now: &StallNow,
    stall_started: bool,
    stderr_taken: &mut bool,
    events: &mut Vec<Event>,
) -> Written {
    let mut written = Written::default();
    let cfg = &m.config;
    let Some(lw) = &cfg.last_words else {
        return written;
    };
    let due = match st.record.due(p.old, p.new, p.basis_f, p.limit_f, s.at) {
        _ if stall_started => Some(RecordEvent::Stall),
        due => due,
    };
    let Some(event) = due else {
        return written;
    };
    let line = record_line(m, st, s, p, v8, stall_now, event);
    let line = lastwords::with_appendix(m.id, line);
    st.record.wrote(p.basis_f, p.new, s.at);
    let mut places = Vec::new();
    let t0 = Instant::now();
    // For the trace: 0 written, -1 not tried, else the errno (EAGAIN: stderr not ready).
    let (mut stderr_result, mut file_result) = (-1, -1);
    // stderr: level changes only (a log line per 1% would be noise),
    // one line per pass however many monitors moved.
    if lw.stderr && event != RecordEvent::Update {
        if *stderr_taken || lastwords::write_stderr(&line) {
            places.push("stderr".to_string());
            stderr_result = 0;
        } else {
            stderr_result = libc::EAGAIN;
        }
        *stderr_taken = true;
    }
    if let Some(path) = &lw.path {
        let r = lastwords::write_file(path, &line);
        file_result = r.as_ref().err().map_or(0, |e| e.errno.max(1));
        match r.map_err(|e| e.message) {
            Ok(()) => {
                st.record.wrote_file = true;
                st.record.failing = false;
                places.push(path.display().to_string());
            }
            Err(e) => {
                if !st.record.failing {
                    st.record.failing = true;
                    events.push(Event::error(
                        m.id,
                        p.new,
                        &m.block,
                        s.ts,
                        ErrorCode::LastWords,
                        format!("last words: {e}"),
                    ));
                }
                written.went_wrong = Some(e);
            }
        }
    }
    if trace::enabled() {
        written.traced = true;
        let took_us = t0.elapsed().as_secs_f64() * 1e6;
        trace_written_step(
            p,
            s.ts,
            st.record.seq,
            event,
            took_us,
            [file_result, stderr_result],
        );
    }
    written.went = (!places.is_empty()).then(|| places.join(","));
    written
}

/// The record of this sample, before the appendix.
fn record_line(
    m: &Monitor,
    st: &mut MonitorState,
    s: &Sample,
    p: &Point,
    v8: Option<V8Known>,
    stall_now: &StallNow,
    event: RecordEvent,
) -> String {
    let cfg = &m.config;
    let (split, usage_at_split) = st.split(&cfg.root, s.snap.usage, s.ts);
    lastwords::record(&RecordInput {
        snap: &s.snap,
        basis: p.basis_f,
        ratio: p.ratio,
        growth: p.rate,
        time_to_limit_ms: p.ttl,
        v8,
        usage_at_v8: st.v8_follow.usage_at_v8,
        split,
        usage_at_split,
        now_ms: s.ts,
        level: p.new,
        thresholds: &cfg.thresholds,
        event,
        seq: st.record.seq + 1,
        stall: stall_now.figures.as_ref().map(|f| (f, None)),
    })
}

/// The trace record of a step that wrote a record (see src/watch/trace.rs):
/// `results` are the file's and stderr's (0 written, -1 not tried, else the
/// errno).
fn trace_written_step(
    p: &Point,
    ts: f64,
    seq: u64,
    event: RecordEvent,
    took_us: f64,
    results: [i32; 2],
) {
    let code = match event {
        RecordEvent::Threshold => 1,
        RecordEvent::Recovered => 2,
        RecordEvent::Update => 3,
        RecordEvent::Stall => 4,
    };
    trace::record(
        trace::STEP,
        p.new as u32,
        ts,
        p.ratio,
        p.old as f64,
        took_us,
        seq as f64,
        [code, results[0], results[1]],
    );
}

/// One `threshold` or `recovered` event per level passed; the record is
/// about the level reached: it rides on that event.
fn level_events(m: &Monitor, s: &Sample, p: &Point, written: &Written, events: &mut Vec<Event>) {
    let thresholds = &m.config.thresholds;
    let ev = |kind, level: usize, threshold: f64| {
        let mut e = p.event(m, kind, level, threshold, s.ts);
        if level == p.new {
            e.last_words = written.went.clone();
            e.last_words_error = written.went_wrong.clone();
        }
        e
    };
    if p.new > p.old {
        for l in p.old + 1..=p.new {
            events.push(ev(EventKind::Threshold, l, thresholds[l - 1]));
        }
    } else {
        for l in (p.new..p.old).rev() {
            events.push(ev(EventKind::Recovered, l, thresholds[l]));
        }
    }
}

/// How long the monitor may sleep, and from which usage on the next
/// samples must be snapshots.
fn schedule(
    m: &Monitor,
    st: &mut MonitorState,
    s: &Sample,
    p: &Point,
    kernel: &dyn Fn(&Path, u64) -> bool,
    traced: bool,
) -> Duration {
    let cfg = &m.config;
    let snap = &s.snap;
    let kernel_wakes = kernel_wakes(
        cfg,
        p.new,
        snap.location.as_ref(),
        snap.cgroup_limit,
        snap.usage,
        kernel,
    );
    let w = next_wait(m, st, p.new, p.basis_f, p.limit_f, p.rate, kernel_wakes);
    st.quiet = quiet(cfg, st, p.new, p.limit, snap);
    if !traced {
        // A step that wrote nothing (those that wrote were recorded above).
        trace_unwritten_step(p.new, s.ts, p.ratio, p.old, st.record.seq as f64);
    }
    w
}

/// The basis as a share of the limit; NaN without a limit.
pub(super) fn ratio_of(basis: f64, limit: f64) -> f64 {
    if limit > 0.0 {
        basis / limit
    } else {
        f64::NAN
    }
}

/// The trace record of a step that wrote no record (see src/watch/trace.rs).
pub(super) fn trace_unwritten_step(level: usize, ts: f64, ratio: f64, from_level: usize, seq: f64) {
    if trace::enabled() {
        trace::record(
            trace::STEP,
            level as u32,
            ts,
            ratio,
            from_level as f64,
            0.0,
            seq,
            [0, -1, -1],
        );
    }
}
