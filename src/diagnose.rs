//! Derived numbers and diagnoses: what a person should do about a snapshot.

use crate::named::named_files;
use crate::reader::{LimitSource, Snapshot};

const MIB: f64 = 1024.0 * 1024.0;

// The heap band, declared once in lib/core/heap-band.json (the doctor reads the
// same file): a heap limit within [HEAP_BAND_LOW, HEAP_BAND_HIGH] of the
// container limit passes, the advice aims at HEAP_TARGET; the rest of the
// limit is for memory outside the V8 heap (Buffers, native code, stacks,
// page cache, kernel memory).
include!(concat!(env!("OUT_DIR"), "/heap_band.rs"));

/// The Node version the heap model is for (the one running, unless a tool says otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl NodeVersion {
    /// `v24.19.0` or `24.19.0`; None for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let mut it = text.trim().trim_start_matches('v').splitn(3, '.');
        let mut num = || it.next().and_then(|p| p.parse::<u32>().ok());
        Some(NodeVersion {
            major: num()?,
            minor: num()?,
            patch: num()?,
        })
    }

    /// Whether node has `--max-old-space-size-percentage` (22.21+, 24.6+, 25+).
    pub fn has_old_space_percentage(&self) -> bool {
        match self.major {
            22 => self.minor >= 21,
            24 => self.minor >= 6,
            m => m >= 25,
        }
    }

    /// Node 24's V8 (13.6) gives the young generation a larger share: a
    /// semi-space of 1/32 of the default old generation, up to 64 MiB;
    /// Node 20 and 22 (V8 11.3, 12.4) 1/128, up to 16 MiB.
    fn semi_space_ratio_and_cap_mib(&self) -> (f64, f64) {
        if self.major >= 24 {
            (32.0, 64.0)
        } else {
            (128.0, 16.0)
        }
    }
}

static RUNNING_NODE: std::sync::OnceLock<NodeVersion> = std::sync::OnceLock::new();

/// Record the running node's version (the addon asks N-API once).
pub fn set_running_node(v: NodeVersion) {
    let _ = RUNNING_NODE.set(v);
}

/// The running node's version; 0.0.0 (the older sizing, no percentage flag)
/// before the addon has been told.
pub fn running_node() -> NodeVersion {
    RUNNING_NODE.get().copied().unwrap_or(NodeVersion {
        major: 0,
        minor: 0,
        patch: 0,
    })
}

/// The young generation V8 reserves on top of `--max-old-space-size`, MiB,
/// in a node that sized itself from `constrained_mib` (see
/// `Snapshot::constrained_memory`). A model of V8's `Heap::ConfigureHeap`,
/// checked against `heap_size_limit` measured in real cgroups of 64 MiB to
/// 16 GiB with Node 20.20.2, 22.20.0 and 24.19.0: three semi-spaces, each
/// the default old generation (half the memory, at least 256 and at most
/// 4096 MiB) over a ratio, rounded up to a power of two, at least 1 MiB; at
/// a default old generation of 256 MiB or less (512 MiB of memory or less)
/// the semi-space is 1 MiB. The `--max-old-space-size` flag does not change it.
pub fn young_generation_mib(constrained_mib: f64, node: NodeVersion) -> f64 {
    3.0 * semi_space_mib(constrained_mib, node)
}

/// The old generation node chooses without `--max-old-space-size`, MiB:
/// half the memory it sized from, at least 256 MiB, at most 4 GiB.
fn default_old_generation_mib(constrained_mib: f64) -> f64 {
    (constrained_mib / 2.0).clamp(256.0, 4096.0)
}

/// The `heap_size_limit` node has without heap flags, MiB (the ~259 MiB
/// floor is 256 MiB of old space plus a 3 MiB young generation).
pub fn default_heap_limit_mib(constrained_mib: f64, node: NodeVersion) -> f64 {
    default_old_generation_mib(constrained_mib) + young_generation_mib(constrained_mib, node)
}

fn semi_space_mib(constrained_mib: f64, node: NodeVersion) -> f64 {
    let old = default_old_generation_mib(constrained_mib);
    if old <= 256.0 {
        return 1.0;
    }
    let (ratio, cap) = node.semi_space_ratio_and_cap_mib();
    // Power of two in bytes (V8 rounds the semi-space up to one).
    let bytes = (old / ratio * MIB).max(MIB);
    let pow2 = 2f64.powi(bytes.log2().ceil() as i32);
    (pow2 / MIB).min(cap)
}

/// A semi-space size given with `--max-semi-space-size=N`: V8 rounds it up
/// to a power of two; the young generation is three of them.
fn flagged_semi_space_mib(n: f64) -> f64 {
    2f64.powi(n.max(1.0).log2().ceil() as i32)
}

/// Flags that put V8's whole heap limit at about [`HEAP_TARGET`] of a limit,
/// with the heap limit each gives by the model (`oomguard doctor` measures it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeapAdvice {
    /// `--max-old-space-size`, MiB.
    pub max_old_space_size_mib: f64,
    /// `--max-semi-space-size`, MiB: only where the young generation node
    /// would choose is more than half the target (a small container whose
    /// limit node does not see, so it sized itself from the host).
    pub max_semi_space_size_mib: Option<f64>,
    /// The `heap_size_limit` V8 then reports, by the model, MiB.
    pub heap_limit_mib: f64,
    /// `--max-old-space-size-percentage`, where node has it and sizes from
    /// the limit itself (its own cgroup's limit is the effective one).
    pub max_old_space_size_percentage: Option<f64>,
    /// The heap limit the percentage gives, by the model, MiB.
    pub percentage_heap_limit_mib: Option<f64>,
}

impl HeapAdvice {
    /// The fixed-MiB form: works on every Node version.
    pub fn node_options(&self) -> String {
        match self.max_semi_space_size_mib {
            Some(s) => format!(
                "--max-old-space-size={:.0} --max-semi-space-size={s:.0}",
                self.max_old_space_size_mib
            ),
            None => format!("--max-old-space-size={:.0}", self.max_old_space_size_mib),
        }
    }

    /// The percentage form, where there is one: it follows the limit across restarts and resizes.
    pub fn percentage_node_options(&self) -> Option<String> {
        self.max_old_space_size_percentage
            .map(|p| format!("--max-old-space-size-percentage={p}"))
    }
}

/// The advice for a container limit of `limit_bytes`, for a node that sizes
/// itself from `constrained_bytes` (libuv's view: see
/// `Snapshot::constrained_memory`).
pub fn heap_advice(limit_bytes: f64, constrained_bytes: f64, node: NodeVersion) -> HeapAdvice {
    let target = (limit_bytes * HEAP_TARGET / MIB).floor().max(4.0);
    let constrained_mib = constrained_bytes / MIB;
    let young = young_generation_mib(constrained_mib, node);
    let (old, semi) = if target - young >= target / 2.0 {
        (target - young, None)
    } else {
        // The young generation node would choose is too big: set it, a
        // quarter of the target at most.
        let semi = 2f64.powi((target / 12.0).max(1.0).log2().floor() as i32);
        (target - 3.0 * flagged_semi_space_mib(semi), Some(semi))
    };
    // The percentage is of the memory node sizes from; it is only the
    // container's limit when node sees that limit on its own cgroup.
    let sees_limit = (constrained_bytes - limit_bytes).abs() < MIB;
    let percentage = (node.has_old_space_percentage() && sees_limit && semi.is_none()).then(|| {
        // Node floors the old space to whole MiB: round the percentage up.
        let p = ((target - young) / constrained_mib * 1000.0).ceil() / 10.0;
        let heap = (constrained_mib * p / 100.0).floor() + young;
        (p, heap)
    });
    HeapAdvice {
        max_old_space_size_mib: old,
        max_semi_space_size_mib: semi,
        heap_limit_mib: old + semi.map_or(young, |s| 3.0 * flagged_semi_space_mib(s)),
        max_old_space_size_percentage: percentage.map(|(p, _)| p),
        percentage_heap_limit_mib: percentage.map(|(_, h)| h),
    }
}

/// V8 numbers as `process.memoryUsage()` and `v8.getHeapStatistics()` give them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct V8Numbers {
    pub rss: Option<f64>,
    pub heap_total: Option<f64>,
    pub heap_used: Option<f64>,
    pub external: Option<f64>,
    pub array_buffers: Option<f64>,
    pub heap_size_limit: Option<f64>,
}

/// The V8 numbers JavaScript last wrote into a monitor's block (the
/// [`V8Numbers`] above), and when.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct V8Known {
    pub timestamp_ms: f64,
    pub numbers: V8Numbers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Stable codes: tools and alerts may match on them.
pub mod codes {
    // These three are declared in lib/core/diagnoses.json, with their wording.
    pub const HEAP_LIMIT_ABOVE_CONTAINER_LIMIT: &str = super::HEAP_ABOVE.code;
    pub const HEAP_LIMIT_NEAR_CONTAINER_LIMIT: &str = super::HEAP_NEAR.code;
    pub const NO_LIMIT: &str = "NO_LIMIT";
    pub const NO_MEMORY_CGROUP: &str = super::NO_MEMORY.code;
    pub const PREVIOUS_OOM_KILL: &str = "PREVIOUS_OOM_KILL";
    pub const CGROUP_UNRESOLVED: &str = "CGROUP_UNRESOLVED";
    pub const CGROUP_FILE_UNREADABLE: &str = "CGROUP_FILE_UNREADABLE";
}

/// A diagnosis whose code, severity and message JavaScript shares.
struct Wording {
    code: &'static str,
    severity: Severity,
    message: &'static str,
}

/// A heap-limit diagnosis: "The V8 heap limit (H) {relation} the container
/// limit (L): {consequence}." (`{high}` in the relation is the band's high
/// edge, in percent).
struct HeapWording {
    code: &'static str,
    severity: Severity,
    relation: &'static str,
    consequence: &'static str,
}

// HEAP_ABOVE, HEAP_NEAR and NO_MEMORY, from lib/diagnoses.json.
include!(concat!(env!("OUT_DIR"), "/diagnoses.rs"));

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub limit_bytes: Option<f64>,
    pub heap_size_limit_bytes: Option<f64>,
    pub recommended_max_old_space_size_mib: Option<f64>,
    pub recommended_max_semi_space_size_mib: Option<f64>,
    pub recommended_max_old_space_size_percentage: Option<f64>,
    /// The exact NODE_OPTIONS value to use, fixed-MiB form.
    pub node_options: Option<String>,
    /// The same with `--max-old-space-size-percentage`, where node has it.
    pub percentage_node_options: Option<String>,
    /// The heap limit `node_options` gives, by the model (not measured).
    pub modelled_heap_size_limit_bytes: Option<f64>,
    pub oom_kill_count: Option<f64>,
    pub path: Option<String>,
}

impl Diagnosis {
    fn new(code: &'static str, severity: Severity, message: String) -> Self {
        Diagnosis {
            code,
            severity,
            message,
            limit_bytes: None,
            heap_size_limit_bytes: None,
            recommended_max_old_space_size_mib: None,
            recommended_max_semi_space_size_mib: None,
            recommended_max_old_space_size_percentage: None,
            node_options: None,
            percentage_node_options: None,
            modelled_heap_size_limit_bytes: None,
            oom_kill_count: None,
            path: None,
        }
    }
}

fn mib(bytes: f64) -> String {
    format!("{:.0} MiB", bytes / MIB)
}

/// Derived ratios against the limit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Derived {
    /// basis / limit
    pub usage_ratio: Option<f64>,
    /// limit - basis (negative if the basis is past the limit, which the
    /// host fallback can show)
    pub headroom_bytes: Option<f64>,
    /// V8 heap_size_limit / limit
    pub heap_limit_ratio: Option<f64>,
}

pub fn derive(snap: &Snapshot, v8: &V8Numbers) -> Derived {
    let limit = snap.limit().map(|(l, _)| l as f64).filter(|l| *l > 0.0);
    let basis = snap.working_set_basis().map(|b| b as f64);
    Derived {
        usage_ratio: limit.zip(basis).map(|(l, b)| b / l),
        headroom_bytes: limit.zip(basis).map(|(l, b)| l - b),
        heap_limit_ratio: limit.zip(v8.heap_size_limit).map(|(l, h)| h / l),
    }
}

pub fn diagnose(snap: &Snapshot, v8: &V8Numbers, node: NodeVersion) -> Vec<Diagnosis> {
    let mut out = Vec::new();

    if let Some(err) = &snap.locate_error {
        let mut d = Diagnosis::new(
            codes::CGROUP_UNRESOLVED,
            Severity::Warning,
            format!("Could not find this process's memory cgroup ({err}); limits are taken from the host."),
        );
        // The file it failed on (a refused file, a path that climbs out of
        // the root); the whole error when there is none.
        d.path = Some(match &snap.locate_error_path {
            Some(p) => p.display().to_string(),
            None => err.clone(),
        });
        out.push(d);
    }

    match &snap.location {
        None if snap.locate_error.is_none() => out.push(Diagnosis::new(
            NO_MEMORY.code,
            NO_MEMORY.severity,
            NO_MEMORY.message.to_string(),
        )),
        Some(loc) if !loc.resolved => {
            let mut d = Diagnosis::new(
                codes::CGROUP_UNRESOLVED,
                Severity::Warning,
                format!(
                    "The cgroup directory for {} does not exist under the mount point {}; \
                     reading the mount point instead, as libuv does. The limit may be the wrong cgroup's.",
                    loc.cgroup_path,
                    loc.mount_point.display()
                ),
            );
            d.path = Some(loc.mount_point.display().to_string());
            out.push(d);
        }
        _ => {}
    }

    let limit = snap.limit();
    match limit {
        Some((l, LimitSource::Host)) if snap.location.is_some() => {
            let loc = snap
                .location
                .as_ref()
                .map(|loc| (loc.cgroup_path.clone(), loc.dir.clone()));
            let (cg, dir) = loc.unwrap_or_default();
            let file = named_files(snap.location.as_ref().map(|l| l.version)).limit;
            let mut d = Diagnosis::new(
                codes::NO_LIMIT,
                Severity::Warning,
                format!(
                    "This process's memory cgroup ({cg}) was found and has no memory limit, nor has any \
                     parent ({file} is unlimited all the way up): so source is 'host' and limitBytes is the \
                     host's MemTotal ({}), the only ceiling. Set a container memory limit so the heap can be \
                     sized against it.",
                    mib(l as f64)
                ),
            );
            d.limit_bytes = Some(l as f64);
            d.path = Some(dir.display().to_string());
            out.push(d);
        }
        // A limit file that failed to read has its own diagnosis below.
        None if !snap.failed.limit => out.push(Diagnosis::new(
            codes::NO_LIMIT,
            Severity::Warning,
            "No memory limit could be found: neither a cgroup limit nor the host's MemTotal."
                .to_string(),
        )),
        _ => {}
    }

    if let (Some((l, source)), Some(h)) = (limit, v8.heap_size_limit) {
        if source != LimitSource::Host {
            let l = l as f64;
            let wording = if h >= l {
                Some(&HEAP_ABOVE)
            } else if h > l * HEAP_BAND_HIGH {
                Some(&HEAP_NEAR)
            } else {
                None
            };
            if let Some(w) = wording {
                let relation = w
                    .relation
                    .replace("{high}", &(HEAP_BAND_HIGH * 100.0).to_string());
                let consequence = w.consequence;
                let constrained = snap.constrained_memory().map_or(l, |c| c as f64);
                let advice = heap_advice(l, constrained, node);
                let fixed = format!("NODE_OPTIONS=\"{}\"", advice.node_options());
                let flags = match advice.percentage_node_options() {
                    Some(p) => format!(
                        "NODE_OPTIONS=\"{p}\" (it follows the limit across restarts and resizes; \
                         or {fixed} on any Node version)"
                    ),
                    None => fixed,
                };
                let mut d = Diagnosis::new(
                    w.code,
                    w.severity,
                    format!(
                        "The V8 heap limit ({}) {relation} the container limit ({}): {consequence}. \
                         Start node with {flags}: a heap limit of about {} ({:.0}%) by oomguard's model \
                         of V8's heap sizing for this Node version; `oomguard doctor` measures it.",
                        mib(h),
                        mib(l),
                        mib(advice.heap_limit_mib * MIB),
                        advice.heap_limit_mib * MIB / l * 100.0,
                    ),
                );
                d.limit_bytes = Some(l);
                d.heap_size_limit_bytes = Some(h);
                d.recommended_max_old_space_size_mib = Some(advice.max_old_space_size_mib);
                d.recommended_max_semi_space_size_mib = advice.max_semi_space_size_mib;
                d.recommended_max_old_space_size_percentage = advice.max_old_space_size_percentage;
                d.node_options = Some(advice.node_options());
                d.percentage_node_options = advice.percentage_node_options();
                d.modelled_heap_size_limit_bytes = Some(advice.heap_limit_mib * MIB);
                out.push(d);
            }
        }
    }

    if let Some(kills) = snap
        .events
        .as_ref()
        .and_then(|e| e.oom_kill)
        .filter(|k| *k > 0)
    {
        let mut d = Diagnosis::new(
            codes::PREVIOUS_OOM_KILL,
            Severity::Warning,
            format!(
                "The kernel has OOM-killed {kills} process{} in this cgroup before (oom_kill in {}).",
                if kills == 1 { "" } else { "es" },
                named_files(snap.location.as_ref().map(|l| l.version)).oom_kill
            ),
        );
        d.oom_kill_count = Some(kills as f64);
        out.push(d);
    }

    for p in &snap.problems {
        let mut d = Diagnosis::new(
            codes::CGROUP_FILE_UNREADABLE,
            Severity::Warning,
            format!("Could not read {p}; the values from it are null."),
        );
        d.path = Some(p.path().display().to_string());
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests;
