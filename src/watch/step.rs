//! The per-sample step: one sample, one monitor.

use super::*;

/// A sample of the usage alone where every monitor of the root is quiet
/// and the sample proves it still is; else a snapshot.
pub(super) fn read_root(root: &Root, monitors: &[Arc<Monitor>]) -> Reading {
    let mut quiet = Vec::new();
    for m in monitors.iter().filter(|m| m.config.root == root.path) {
        let st = m.state();
        if st.closed {
            continue;
        }
        match st.quiet {
            Some(q) => quiet.push((m.config.basis, q)),
            None => return Reading::Full(root.sample()),
        }
    }
    if quiet.is_empty() {
        return Reading::Full(root.sample());
    }
    match root.tick(&quiet) {
        Some(t) => Reading::Tick(t),
        None => Reading::Full(root.sample()),
    }
}

/// Handle one sample for one monitor, catching a panic (one `error` event,
/// said once until a step succeeds). Returns how long it may sleep.
pub(super) fn step(
    m: &Monitor,
    reading: &Reading,
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
        Reading::Tick(t) => evaluate_tick(m, &mut st, t, v8, kernel),
        Reading::Full(Ok(s)) => evaluate(m, &mut st, s, v8, kernel, stderr_taken, events),
        Reading::Full(Err(msg)) => {
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
            if !matches!(reading, Reading::Full(Err(_))) {
                st.panicked = false;
            }
            w
        }
        Err(p) => {
            st.quiet = None;
            events.truncate(mine);
            if !st.panicked {
                st.panicked = true;
                let msg = p.to_string();
                events.push(Event::error(
                    m.id,
                    st.level,
                    &m.block,
                    now_ms(),
                    ErrorCode::Internal,
                    msg,
                ));
            }
            RETRY_AFTER
        }
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
    let snap = &s.snap;
    let cfg = &m.config;
    let (Some((limit, source)), Some(basis)) = (snap.limit(), cfg.basis.bytes(snap)) else {
        // Keep the last good numbers; say so once.
        let msg = if snap.problems.is_empty() {
            snap.locate_error
                .clone()
                .unwrap_or_else(|| "no memory numbers could be read".into())
        } else {
            snap.problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        };
        fail(m, st, s.ts, ErrorCode::Read, msg, events);
        return cfg.max_interval.max(RETRY_AFTER);
    };
    st.failing = false;
    st.v8_follow.sample(v8, snap.usage);
    let limit_f = limit as f64;
    let basis_f = basis as f64;
    let ratio = ratio_of(basis_f, limit_f);
    let rate = s.rates[basis_index(cfg.basis)];
    let headroom = limit_f - basis_f;
    let ttl = time_to_limit_ms(headroom, rate);
    let old = st.level;
    let new = next_level(old, ratio, &cfg.thresholds, cfg.hysteresis);
    st.level = new;
    m.block.write(|b| {
        b.set(block::LEVEL, new as f64);
        b.set(block::TIMESTAMP, s.ts);
        b.set(block::RATIO, ratio);
        b.set(block::BASIS, basis_f);
        b.set(block::LIMIT, limit_f);
        b.set(block::HEADROOM, headroom);
        b.set(block::GROWTH, rate);
        b.set(block::TIME_TO_LIMIT, ttl.unwrap_or(f64::NAN));
        b.set(block::USAGE, snap.usage.map_or(f64::NAN, |v| v as f64));
        b.set(
            block::WORKING_SET,
            snap.working_set.map_or(f64::NAN, |v| v as f64),
        );
        b.set(block::RSS, snap.rss.map_or(f64::NAN, |v| v as f64));
        b.set(block::SOURCE, block::source_code(source));
        b.set(block::SAMPLES, b.get(block::SAMPLES) + 1.0);
        b.set(block::FAILING, 0.0);
    });

    // The limit changed: say so before any level it moves (the ratio above
    // is already against the new limit; the kernel triggers follow through
    // arm_key). `limit` is promised within one sampling interval of the
    // change (limit.test.js, docker.test.js): every sample reads the limit.
    let previous = st.limit.replace(limit);
    if let Some(prev) = previous.filter(|p| *p != limit) {
        let heap = m.block.v8().and_then(|v| v.numbers.heap_size_limit);
        events.push(Event {
            monitor: m.id,
            kind: EventKind::Limit,
            level: new as u32,
            threshold: f64::NAN,
            ratio,
            basis_bytes: basis_f,
            limit_bytes: limit_f,
            headroom_bytes: headroom,
            growth_bytes_per_sec: rate,
            time_to_limit_ms: ttl,
            timestamp_ms: s.ts,
            message: None,
            code: None,
            last_words: None,
            last_words_error: None,
            limit_change: Some(Box::new(limit_change(snap, prev as f64, source, heap))),
            stall: None,
        });
    }

    // Stalls: fed before the flight record, so that every record written
    // while stalled says so, and the start of one is recorded at once.
    let stall_now = stall_feed(m, st, s);
    let stall_started = matches!(stall_now.transition, Some(stall::Transition::Started(_)));

    // The flight record.
    let mut went: Option<String> = None;
    let mut went_wrong: Option<String> = None;
    let mut traced = false;
    if let Some(lw) = &cfg.last_words {
        let due = match st.record.due(old, new, basis_f, limit_f, s.at) {
            _ if stall_started => Some(RecordEvent::Stall),
            due => due,
        };
        if let Some(event) = due {
            let (split, usage_at_split) = st.split(&cfg.root, snap.usage, s.ts);
            let line = lastwords::record(&RecordInput {
                snap,
                basis: basis_f,
                ratio,
                growth: rate,
                time_to_limit_ms: ttl,
                v8,
                usage_at_v8: st.v8_follow.usage_at_v8,
                split,
                usage_at_split,
                now_ms: s.ts,
                level: new,
                thresholds: &cfg.thresholds,
                event,
                seq: st.record.seq + 1,
                stall: stall_now.figures.as_ref().map(|f| (f, None)),
            });
            let line = lastwords::with_appendix(m.id, line);
            st.record.wrote(basis_f, new, s.at);
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
                                new,
                                &m.block,
                                s.ts,
                                ErrorCode::LastWords,
                                format!("last words: {e}"),
                            ));
                        }
                        went_wrong = Some(e);
                    }
                }
            }
            if trace::enabled() {
                traced = true;
                let code = match event {
                    RecordEvent::Threshold => 1,
                    RecordEvent::Recovered => 2,
                    RecordEvent::Update => 3,
                    RecordEvent::Stall => 4,
                };
                trace::record(
                    trace::STEP,
                    new as u32,
                    s.ts,
                    ratio,
                    old as f64,
                    t0.elapsed().as_secs_f64() * 1e6,
                    st.record.seq as f64,
                    [code, file_result, stderr_result],
                );
            }
            went = (!places.is_empty()).then(|| places.join(","));
        }
    }

    if new != old {
        let ev = |kind, level: usize, threshold: f64, with_record: bool| Event {
            monitor: m.id,
            kind,
            level: level as u32,
            threshold,
            ratio,
            basis_bytes: basis_f,
            limit_bytes: limit_f,
            headroom_bytes: headroom,
            growth_bytes_per_sec: rate,
            time_to_limit_ms: ttl,
            timestamp_ms: s.ts,
            message: None,
            code: None,
            last_words: if with_record { went.clone() } else { None },
            last_words_error: if with_record {
                went_wrong.clone()
            } else {
                None
            },
            limit_change: None,
            stall: None,
        };
        // The record is about the level reached: it rides on that event.
        if new > old {
            for l in old + 1..=new {
                events.push(ev(EventKind::Threshold, l, cfg.thresholds[l - 1], l == new));
            }
        } else {
            for l in (new..old).rev() {
                events.push(ev(EventKind::Recovered, l, cfg.thresholds[l], l == new));
            }
        }
    }

    if let Some(tr) = stall_now.transition {
        let (split, usage_at_split) = st.split(&cfg.root, snap.usage, s.ts);
        let c = StallCtx {
            snap,
            ts: s.ts,
            basis: basis_f,
            ratio,
            limit: limit_f,
            headroom,
            growth: rate,
            evidence: lastwords::Evidence {
                v8,
                usage_at_v8: st.v8_follow.usage_at_v8,
                split,
                usage_at_split,
                now_ms: s.ts,
            },
        };
        events.push(stall_event(
            m,
            new,
            tr,
            &c,
            went.clone().filter(|_| stall_started),
        ));
    }
    if let Some(after) = cfg.on_stall_exit_after_ms {
        stall_exit(m, st, s, after, basis_f, ratio, rate, v8);
    }

    let usage = snap.usage;
    let kernel_wakes = kernel_wakes(
        cfg,
        new,
        snap.location.as_ref(),
        snap.cgroup_limit,
        usage,
        kernel,
    );
    let w = next_wait(m, st, new, basis_f, limit_f, rate, kernel_wakes);
    st.quiet = quiet(cfg, st, new, limit, snap);
    if !traced {
        // A step that wrote nothing (those that wrote were recorded above).
        trace_unwritten_step(new, s.ts, ratio, old, st.record.seq as f64);
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

/// The trace record of a step that wrote no record (see src/trace.rs).
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
