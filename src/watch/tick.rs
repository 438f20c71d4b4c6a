//! The usage-only fast path: between snapshots, where every monitor of a
//! root is quiet, a sample reads the usage alone.

use super::*;

impl Root {
    /// A sample of the usage alone, where it proves every monitor's level
    /// unchanged (`quiet`: each monitor's basis and bounds); None where a
    /// snapshot is needed (due, near a threshold, a limit changed, a read
    /// failed, a panic: the snapshot says what is wrong).
    pub(super) fn tick(&self, quiet: &[(Basis, Quiet)]) -> Option<TickSample> {
        let mut st = self.sampling.lock().unwrap_or_else(|p| p.into_inner());
        if st.snapshot_at.is_none_or(|t| t.elapsed() >= SNAPSHOT_EVERY) {
            return None;
        }
        let r = guard::catch("a sample of the usage", || {
            #[cfg(test)]
            tests::fault(&self.path, tests::PANIC_IN_READ);
            let usage = st.reader.tick()?;
            let mut working_set = usage.saturating_sub(st.inactive_file?);
            if quiet
                .iter()
                .any(|(basis, q)| *basis == Basis::WorkingSet && usage >= q.up)
            {
                // Usage at a threshold: the working set decides, with the
                // inactive file read now.
                working_set = usage.saturating_sub(st.reader.inactive_file()?);
            }
            for (basis, q) in quiet {
                let b = if *basis == Basis::Usage {
                    usage
                } else {
                    working_set
                };
                let in_stall_zone = q.stall_from.is_some_and(|s| usage >= s);
                if b >= q.up || b < q.down || in_stall_zone {
                    return None;
                }
            }
            Some((usage, working_set))
        });
        let (usage, working_set) = match r {
            Ok(Some(v)) => v,
            Ok(None) => return None,
            Err(_) => {
                st.reader = Reader::new(self.path.clone());
                st.snapshot_at = None;
                return None;
            }
        };
        let at = Instant::now();
        let mut rates = [0.0; 3];
        rates[basis_index(Basis::WorkingSet)] =
            st.growth[basis_index(Basis::WorkingSet)].observe(at, working_set as f64);
        rates[basis_index(Basis::Usage)] =
            st.growth[basis_index(Basis::Usage)].observe(at, usage as f64);
        rates[basis_index(Basis::Rss)] = st.growth[basis_index(Basis::Rss)].rate();
        TICKS.fetch_add(1, Ordering::Relaxed);
        Some(TickSample {
            usage,
            working_set,
            ts: now_ms(),
            rates,
            location: st.location.clone(),
            cgroup_limit: st.cgroup_limit,
        })
    }
}

/// The bounds inside which samples of the usage alone will do for this
/// monitor, from a snapshot at `level` against `limit`; None where every
/// sample must be a snapshot: the rss basis or no cgroup usage (what a
/// sample of the usage cannot measure), no working set to start from, at a
/// level with last words to keep (records are written from snapshots),
/// while stall detection watches closely, and, with stall detection, while
/// a parent that holds the limit has its usage in the stall zone (or
/// unknown): a sample of the usage alone reads this cgroup's, and under a
/// parent's limit other cgroups' memory can fill it while this cgroup's
/// usage stays low.
pub(super) fn quiet(
    cfg: &Config,
    st: &MonitorState,
    level: usize,
    limit: u64,
    snap: &Snapshot,
) -> Option<Quiet> {
    let measurable = match cfg.basis {
        Basis::Rss => false,
        Basis::Usage => snap.usage.is_some(),
        Basis::WorkingSet => snap.usage.is_some() && snap.working_set.is_some(),
    };
    if !measurable
        || !snap.has_cgroup_usage()
        || (level > 0 && cfg.last_words.is_some())
        || st
            .stall
            .as_ref()
            .is_some_and(|d| d.stalled() || d.watching_closely())
    {
        return None;
    }
    let stall_from = cfg.stall.map(|c| threshold_bytes(limit, 1.0 - c.margin));
    if let (Some(from), Some(parent)) = (stall_from, &snap.limiting) {
        if parent.usage.is_none_or(|u| u >= from) {
            return None;
        }
    }
    let top = cfg.thresholds.len();
    let up = if level < top {
        threshold_bytes(limit, cfg.thresholds[level])
    } else {
        limit
    };
    let down = if level > 0 {
        threshold_bytes(limit, (cfg.thresholds[level - 1] - cfg.hysteresis).max(0.0))
    } else {
        0
    };
    Some(Quiet {
        up,
        down,
        stall_from,
    })
}

/// A sample of the usage alone for a quiet monitor: its level stands (the
/// pass made sure), the numbers the sample measured are published (usage,
/// the basis, ratio, headroom, growth; the working set is the usage less
/// the last snapshot's inactive file unless read now), the rest keep the
/// last snapshot's values, and the interval policy runs as on a snapshot.
pub(super) fn evaluate_tick(
    m: &Monitor,
    st: &mut MonitorState,
    t: &TickSample,
    v8: Option<V8Known>,
    kernel: &dyn Fn(&Path, u64) -> bool,
) -> Duration {
    #[cfg(test)]
    tests::fault(&m.config.root, tests::PANIC_IN_STEP);
    st.v8_follow.sample(v8, Some(t.usage));
    let cfg = &m.config;
    let (Some(limit), Some(_)) = (st.limit, st.quiet) else {
        // Not quiet after all (cannot happen: the pass checked): look again soon.
        return cfg.min_interval;
    };
    let limit_f = limit as f64;
    let basis_f = match cfg.basis {
        Basis::Usage => t.usage,
        _ => t.working_set,
    } as f64;
    let ratio = ratio_of(basis_f, limit_f);
    let rate = t.rates[basis_index(cfg.basis)];
    let headroom = limit_f - basis_f;
    let ttl = time_to_limit_ms(headroom, rate);
    m.block.write(|b| {
        b.set(block::TIMESTAMP, t.ts);
        b.set(block::RATIO, ratio);
        b.set(block::BASIS, basis_f);
        b.set(block::HEADROOM, headroom);
        b.set(block::GROWTH, rate);
        b.set(block::TIME_TO_LIMIT, ttl.unwrap_or(f64::NAN));
        b.set(block::USAGE, t.usage as f64);
        b.set(block::WORKING_SET, t.working_set as f64);
        b.set(block::SAMPLES, b.get(block::SAMPLES) + 1.0);
    });
    if let Some(d) = st.stall.as_mut() {
        d.gap();
    }
    let level = st.level;
    let kernel_wakes = kernel_wakes(
        cfg,
        level,
        t.location.as_deref(),
        t.cgroup_limit,
        Some(t.usage),
        kernel,
    );
    let w = next_wait(m, st, level, basis_f, limit_f, rate, kernel_wakes);
    // As a snapshot's step that wrote nothing.
    trace_unwritten_step(level, t.ts, ratio, level, st.record.seq as f64);
    w
}
