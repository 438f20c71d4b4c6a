//! Levels, growth and the interval policy: how long the sampler may sleep.

use super::*;

/// The level after `ratio` is seen at `current`: up past every threshold the
/// ratio reaches, down past every threshold it has fallen `hysteresis` below.
pub fn next_level(current: usize, ratio: f64, thresholds: &[f64], hysteresis: f64) -> usize {
    let mut level = current.min(thresholds.len());
    while level < thresholds.len() && ratio >= thresholds[level] {
        level += 1;
    }
    while level > 0 && ratio < thresholds[level - 1] - hysteresis {
        level -= 1;
    }
    level
}

/// An exponentially weighted slope, in bytes per second.
#[derive(Debug, Clone, Copy, Default)]
pub struct Growth {
    pub(super) last: Option<(Instant, f64)>,
    pub(super) rate: f64,
}

impl Growth {
    pub fn observe(&mut self, at: Instant, bytes: f64) -> f64 {
        if let Some((t0, b0)) = self.last {
            let dt = at.duration_since(t0).as_secs_f64();
            if dt > 0.0 {
                let inst = (bytes - b0) / dt;
                let alpha = 1.0 - (-dt / GROWTH_TAU_S).exp();
                self.rate += alpha * (inst - self.rate);
            }
        }
        self.last = Some((at, bytes));
        self.rate
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }
}

/// Milliseconds until `headroom` is used up at `rate`; None when not growing.
pub fn time_to_limit_ms(headroom: f64, rate: f64) -> Option<f64> {
    (rate > MIN_GROWTH).then(|| (headroom.max(0.0) / rate) * 1000.0)
}

/// How long to sleep when the nearest threshold is `distance` bytes away and
/// the basis grows at `rate`: the time the fastest plausible growth needs to
/// get there, within the bounds.
pub fn interval_for(distance: f64, rate: f64, min: Duration, max: Duration) -> Duration {
    let speed = ASSUMED_RATE.max(rate * 3.0);
    let secs = (distance.max(0.0) / speed)
        .clamp(min.as_secs_f64(), max.as_secs_f64().max(min.as_secs_f64()));
    Duration::from_secs_f64(secs)
}

/// Whether the kernel itself will say when usage reaches the next threshold
/// (a v1 `cgroup.event_control` trigger is armed there) and usage is below
/// it: usage is never below the working set, so it crosses first.
pub(super) fn kernel_wakes(
    cfg: &Config,
    level: usize,
    location: Option<&Location>,
    cgroup_limit: Option<u64>,
    usage: Option<u64>,
    kernel: &dyn Fn(&Path, u64) -> bool,
) -> bool {
    level < cfg.thresholds.len()
        && cfg.basis != Basis::Rss
        && match (location, cgroup_limit, usage) {
            (Some(loc), Some(cg_limit), Some(usage)) => {
                let at = threshold_bytes(cg_limit, cfg.thresholds[level]);
                usage < at && kernel(&loc.dir, at)
            }
            _ => false,
        }
}

/// The interval policy: how long a monitor at `level` may sleep, published
/// in the block.
pub(super) fn next_wait(
    m: &Monitor,
    st: &MonitorState,
    level: usize,
    basis_f: f64,
    limit_f: f64,
    rate: f64,
    kernel_wakes: bool,
) -> Duration {
    let cfg = &m.config;
    let top = cfg.thresholds.len();
    // Sleep no longer than the fastest plausible growth needs to reach the
    // next threshold up; where the kernel will wake the thread, long.
    let next = if level < top {
        cfg.thresholds[level] * limit_f
    } else {
        limit_f
    };
    let mut w = if kernel_wakes {
        cfg.max_interval
    } else {
        interval_for(next - basis_f, rate, cfg.min_interval, cfg.max_interval)
    };
    // The flight record: while at a level, look again soon enough that a
    // move of MOVE_SHARE of the limit at the measured rate is seen.
    if level > 0 && cfg.path().is_some() && rate.abs() > MIN_GROWTH {
        let refresh = Duration::from_secs_f64(lastwords::MOVE_SHARE * limit_f / (3.0 * rate.abs()))
            .max(lastwords::MIN_GAP);
        w = w.min(refresh.max(cfg.min_interval));
    }
    if st.stall.as_ref().is_some_and(|d| d.watching_closely()) {
        w = w.min(STALL_POLL);
    }
    m.block.set(block::INTERVAL, w.as_secs_f64() * 1000.0);
    w
}
