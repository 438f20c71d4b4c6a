//! A monitor's settings and their validation.

use super::*;

use crate::options::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    WorkingSet,
    Usage,
    Rss,
}

impl Basis {
    /// In the order of `BASIS_VALUES` (lib/core/options.json's `basis.values`).
    const ALL: [Basis; 3] = [Basis::WorkingSet, Basis::Usage, Basis::Rss];

    pub fn parse(s: &str) -> Option<Basis> {
        BASIS_VALUES
            .iter()
            .position(|v| *v == s)
            .map(|i| Basis::ALL[i])
    }

    pub fn as_str(self) -> &'static str {
        BASIS_VALUES[self as usize]
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
    /// `THRESHOLDS_MIN_LENGTH` to `THRESHOLDS_MAX_LENGTH` finite ratios in (`THRESHOLDS_ABOVE`, `THRESHOLDS_BELOW`), strictly ascending.
    pub(super) thresholds: Vec<f64>,
    /// In [`HYSTERESIS_MIN`, `HYSTERESIS_MAX`], below the lowest threshold (so that level can be left).
    pub(super) hysteresis: f64,
    pub(super) basis: Basis,
    pub(super) min_interval: Duration,
    /// At least `min_interval`.
    pub(super) max_interval: Duration,
    pub(super) last_words: Option<LastWordsConfig>,
    pub(super) root: PathBuf,
    /// Stall detection; None when off.
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

/// What a monitor is asked for, as the caller gives it; [`Config::new`]
/// checks it. `Settings::default()` is watch()'s defaults (lib/core/options.json).
#[derive(Debug, Clone)]
pub struct Settings {
    pub thresholds: Vec<f64>,
    pub hysteresis: f64,
    pub basis: Basis,
    pub min_interval_ms: f64,
    pub max_interval_ms: f64,
    /// None: no last words at all.
    pub last_words: Option<LastWordsConfig>,
    pub root: PathBuf,
    /// Stall detection; None: off.
    pub stall: Option<stall::StallConfig>,
    /// End the process when a stall has lasted this long, ms; None: report only.
    pub on_stall_exit_after_ms: Option<f64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            thresholds: THRESHOLDS_DEFAULT.to_vec(),
            hysteresis: HYSTERESIS_DEFAULT,
            basis: Basis::parse(BASIS_DEFAULT)
                .expect("lib/core/options.json: basis.default is one of its values"),
            min_interval_ms: MIN_INTERVAL_MS_DEFAULT,
            max_interval_ms: MAX_INTERVAL_MS_DEFAULT,
            last_words: Some(LastWordsConfig {
                stderr: LAST_WORDS_STDERR_DEFAULT,
                path: None,
            }),
            root: PathBuf::from("/"),
            stall: Some(stall::StallConfig::default()),
            on_stall_exit_after_ms: None,
        }
    }
}

/// `name` must be in `[lo, hi]` (NaN is not).
fn in_range(v: f64, lo: f64, hi: f64, name: &str, expected: String) -> Result<(), ConfigError> {
    if v >= lo && v <= hi {
        Ok(())
    } else {
        Err(ConfigError(format!(
            "options.{name} must be {expected}, got {v}"
        )))
    }
}

impl Config {
    /// Check every invariant the sampler relies on; never trusts the caller.
    pub fn new(s: Settings) -> Result<Config, ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        let thresholds = s.thresholds;
        if thresholds.len() < THRESHOLDS_MIN_LENGTH || thresholds.len() > THRESHOLDS_MAX_LENGTH {
            return err(format!(
                "options.thresholds must be an array of {THRESHOLDS_MIN_LENGTH} to {THRESHOLDS_MAX_LENGTH} ratios, got {} entries",
                thresholds.len()
            ));
        }
        for (i, t) in thresholds.iter().enumerate() {
            if !(t.is_finite() && *t > THRESHOLDS_ABOVE && *t < THRESHOLDS_BELOW) {
                return err(format!(
                    "options.thresholds[{i}] must be a ratio between {THRESHOLDS_ABOVE} and {THRESHOLDS_BELOW} (exclusive), got {t}"
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
        let h = s.hysteresis;
        in_range(
            h,
            HYSTERESIS_MIN,
            HYSTERESIS_MAX,
            "hysteresis",
            format!("a ratio from {HYSTERESIS_MIN} to {HYSTERESIS_MAX}"),
        )?;
        if h >= thresholds[0] {
            return err(format!(
                "options.hysteresis must be below the lowest threshold ({}), got {h}",
                thresholds[0]
            ));
        }
        let (min, max) = (s.min_interval_ms, s.max_interval_ms);
        in_range(
            min,
            MIN_INTERVAL_MS_MIN,
            MIN_INTERVAL_MS_MAX,
            "minIntervalMs",
            format!("between {MIN_INTERVAL_MS_MIN} and {MIN_INTERVAL_MS_MAX} ms"),
        )?;
        in_range(
            max,
            min,
            MAX_INTERVAL_MS_MAX,
            "maxIntervalMs",
            format!("between minIntervalMs ({min}) and {MAX_INTERVAL_MS_MAX} ms"),
        )?;
        if let Some(LastWordsConfig { path: Some(p), .. }) = &s.last_words {
            use std::os::unix::ffi::OsStrExt;
            let b = p.as_os_str().as_bytes();
            if b.is_empty() || b.contains(&0) {
                return err("options.lastWords.path must be a non-empty path without NUL".into());
            }
            // A file, existing or not, in an existing directory: as watch()
            // checks it, with stat, which opens nothing (a FIFO cannot block).
            match std::fs::metadata(p) {
                Ok(m) if m.is_dir() => {
                    return err(format!(
                        "options.lastWords.path must be a file, not a directory, got {p:?}"
                    ))
                }
                Ok(_) => {}
                Err(_) => {
                    let dir = match p.parent() {
                        Some(d) if !d.as_os_str().is_empty() => d,
                        _ => Path::new("."),
                    };
                    if !std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
                        return err(format!(
                            "options.lastWords.path must be a file in an existing directory, got {p:?}"
                        ));
                    }
                }
            }
        }
        if let Some(c) = &s.stall {
            in_range(
                c.sustain_ms,
                STALL_SUSTAIN_MS_MIN,
                STALL_SUSTAIN_MS_MAX,
                "stall.sustainMs",
                format!("between {STALL_SUSTAIN_MS_MIN} and {STALL_SUSTAIN_MS_MAX} ms"),
            )?;
            in_range(
                c.margin,
                STALL_MARGIN_MIN,
                STALL_MARGIN_MAX,
                "stall.margin",
                format!("a ratio from {STALL_MARGIN_MIN} to {STALL_MARGIN_MAX}"),
            )?;
        }
        if let Some(ms) = s.on_stall_exit_after_ms {
            if s.stall.is_none() {
                return err(
                    "options.onStall must be left unset while stall detection is off".into(),
                );
            }
            in_range(
                ms,
                ON_STALL_AFTER_MS_MIN,
                ON_STALL_AFTER_MS_MAX,
                "onStall.afterMs",
                format!("between {ON_STALL_AFTER_MS_MIN} and {ON_STALL_AFTER_MS_MAX} ms"),
            )?;
        }
        let ms = |v: f64| Duration::from_secs_f64(v / 1000.0);
        Ok(Config {
            thresholds,
            hysteresis: h,
            basis: s.basis,
            min_interval: ms(min),
            max_interval: ms(max),
            last_words: s.last_words.filter(|l| l.stderr || l.path.is_some()),
            root: s.root,
            stall: s.stall,
            on_stall_exit_after_ms: s.on_stall_exit_after_ms,
        })
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
