//! A monitor's settings and their validation.

use super::*;

/// The bounds `Config::new` enforces (the JavaScript options say the same).
pub const MAX_THRESHOLDS: usize = 16;
pub const MAX_HYSTERESIS: f64 = 0.5;
pub const MIN_INTERVAL_MS: (f64, f64) = (0.1, 60_000.0);
pub const MAX_INTERVAL_MS_LIMIT: f64 = 3_600_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    WorkingSet,
    Usage,
    Rss,
}

impl Basis {
    pub fn parse(s: &str) -> Option<Basis> {
        match s {
            "workingSet" => Some(Basis::WorkingSet),
            "usage" => Some(Basis::Usage),
            "rss" => Some(Basis::Rss),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Basis::WorkingSet => "workingSet",
            Basis::Usage => "usage",
            Basis::Rss => "rss",
        }
    }

    /// The bytes this basis measures in a snapshot; None when a file it
    /// needs failed. Without a memory cgroup the working set and usage are
    /// the host's used memory.
    pub(super) fn bytes(self, s: &Snapshot) -> Option<u64> {
        match self {
            Basis::WorkingSet => s.working_set_basis(),
            Basis::Usage => s.usage_basis(),
            Basis::Rss => s.rss,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LastWordsConfig {
    pub stderr: bool,
    pub path: Option<PathBuf>,
}

/// A monitor's settings. Built only by [`Config::new`], which enforces
/// what the sampler relies on (the fields are private to this module).
#[derive(Debug, Clone)]
pub struct Config {
    /// 1 to 16 finite ratios in (0, 1), strictly ascending.
    pub(super) thresholds: Vec<f64>,
    /// In [0, 0.5], below the lowest threshold (so that level can be left).
    pub(super) hysteresis: f64,
    pub(super) basis: Basis,
    pub(super) min_interval: Duration,
    /// At least `min_interval`.
    pub(super) max_interval: Duration,
    pub(super) last_words: Option<LastWordsConfig>,
    pub(super) root: PathBuf,
    /// Stall detection; None when off (see [`Config::with_stall`]).
    pub(super) stall: Option<stall::StallConfig>,
    /// End the process when a stall has lasted this long, ms; None: report only.
    pub(super) on_stall_exit_after_ms: Option<f64>,
}

/// Why a configuration was refused; the message names the option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Config {
    /// Check every invariant the sampler relies on; never trusts the caller.
    pub fn new(
        thresholds: Vec<f64>,
        hysteresis: f64,
        basis: Basis,
        min_interval_ms: f64,
        max_interval_ms: f64,
        last_words: Option<LastWordsConfig>,
        root: PathBuf,
    ) -> Result<Config, ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        if thresholds.is_empty() || thresholds.len() > MAX_THRESHOLDS {
            return err(format!(
                "options.thresholds must be an array of 1 to {MAX_THRESHOLDS} ratios, got {} entries",
                thresholds.len()
            ));
        }
        for (i, t) in thresholds.iter().enumerate() {
            if !(t.is_finite() && *t > 0.0 && *t < 1.0) {
                return err(format!(
                    "options.thresholds[{i}] must be a ratio between 0 and 1 (exclusive), got {t}"
                ));
            }
            if i > 0 && *t <= thresholds[i - 1] {
                return err(format!(
                    "options.thresholds[{i}] must be above options.thresholds[{}] ({}): thresholds must ascend, got {t}",
                    i - 1,
                    thresholds[i - 1]
                ));
            }
        }
        if !(hysteresis.is_finite() && (0.0..=MAX_HYSTERESIS).contains(&hysteresis)) {
            return err(format!(
                "options.hysteresis must be a ratio from 0 to {MAX_HYSTERESIS}, got {hysteresis}"
            ));
        }
        if hysteresis >= thresholds[0] {
            return err(format!(
                "options.hysteresis must be below the lowest threshold ({}), got {hysteresis}",
                thresholds[0]
            ));
        }
        let (lo, hi) = MIN_INTERVAL_MS;
        if !(min_interval_ms >= lo && min_interval_ms <= hi) {
            return err(format!(
                "options.minIntervalMs must be between {lo} and {hi} ms, got {min_interval_ms}"
            ));
        }
        if !(max_interval_ms >= min_interval_ms && max_interval_ms <= MAX_INTERVAL_MS_LIMIT) {
            return err(format!(
                "options.maxIntervalMs must be between minIntervalMs ({min_interval_ms}) and {MAX_INTERVAL_MS_LIMIT} ms, got {max_interval_ms}"
            ));
        }
        if let Some(LastWordsConfig { path: Some(p), .. }) = &last_words {
            use std::os::unix::ffi::OsStrExt;
            let b = p.as_os_str().as_bytes();
            if b.is_empty() || b.contains(&0) {
                return err("options.lastWords.path must be a non-empty path without NUL".into());
            }
        }
        let ms = |v: f64| Duration::from_secs_f64(v / 1000.0);
        Ok(Config {
            thresholds,
            hysteresis,
            basis,
            min_interval: ms(min_interval_ms),
            max_interval: ms(max_interval_ms),
            last_words: last_words.filter(|l| l.stderr || l.path.is_some()),
            root,
            stall: None,
            on_stall_exit_after_ms: None,
        })
    }

    /// Turn on stall detection (and, with `exit_after_ms`, ending the
    /// process after a stall that long), checking the ranges.
    pub fn with_stall(
        mut self,
        stall: Option<stall::StallConfig>,
        exit_after_ms: Option<f64>,
    ) -> Result<Config, ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        if let Some(c) = &stall {
            if !(0.0..=stall::MAX_SUSTAIN_MS).contains(&c.sustain_ms) {
                return err(format!(
                    "options.stall.sustainMs must be between 0 and {} ms, got {}",
                    stall::MAX_SUSTAIN_MS,
                    c.sustain_ms
                ));
            }
            if !(0.0..=stall::MAX_MARGIN).contains(&c.margin) {
                return err(format!(
                    "options.stall.margin must be a ratio from 0 to {}, got {}",
                    stall::MAX_MARGIN,
                    c.margin
                ));
            }
        }
        if let Some(ms) = exit_after_ms {
            if stall.is_none() {
                return err(
                    "options.onStall must be left unset while stall detection is off".into(),
                );
            }
            if !(0.0..=stall::MAX_AFTER_MS).contains(&ms) {
                return err(format!(
                    "options.onStall.afterMs must be between 0 and {} ms, got {ms}",
                    stall::MAX_AFTER_MS
                ));
            }
        }
        self.stall = stall;
        self.on_stall_exit_after_ms = exit_after_ms;
        Ok(self)
    }

    pub(super) fn path(&self) -> Option<&Path> {
        self.last_words.as_ref().and_then(|l| l.path.as_deref())
    }

    pub fn thresholds(&self) -> &[f64] {
        &self.thresholds
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}
