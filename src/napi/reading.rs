//! A reading: `sample()` fills the numeric slots (see [`super::slots`]),
//! `describe()` returns the strings and lists, fetched again only when the
//! shape's generation moves. One cached reader per root.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;
use once_cell::sync::Lazy;

use super::slots;
use super::types::{CgroupInfo, CgroupProcess, CgroupProcesses, Diagnosis};
use super::{internal_error, lock, running_node};
use crate::diagnose::{self, derive, diagnose};
use crate::reader::{LimitSource, PressureScope, Reader, Snapshot};
use crate::{guard, locate, procs, watch};

// ---------------------------------------------------------------------------
// Readers: one per root, each keeping its files open between calls.

/// The structural half of a reading: strings and lists that change rarely.
/// JavaScript fetches it again only when `generation` moves.
#[derive(Debug, Clone, PartialEq)]
struct CachedShape {
    source: Option<LimitSource>,
    location: Option<locate::Location>,
    raw_keys: Vec<String>,
    pressure_scope: Option<PressureScope>,
    /// The cgroup path of the ancestor that holds the limit.
    limiting_path: Option<String>,
    diagnoses: Vec<diagnose::Diagnosis>,
    /// The latest process scan; a new scan is a new shape.
    processes: Option<std::sync::Arc<procs::Processes>>,
}

fn same_scan(
    a: &Option<std::sync::Arc<procs::Processes>>,
    b: &Option<std::sync::Arc<procs::Processes>>,
) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => std::sync::Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

struct Entry {
    reader: Reader,
    shape: Option<CachedShape>,
    generation: u32,
}

impl Entry {
    /// Bring the cached shape up to date with `snap`; returns the generation.
    fn observe(&mut self, snap: &Snapshot, diagnoses: Vec<diagnose::Diagnosis>) -> u32 {
        let raw = snap.stat.as_ref().map(|s| s.raw.as_slice()).unwrap_or(&[]);
        let same = self.shape.as_ref().is_some_and(|sh| {
            sh.source == snap.limit().map(|(_, s)| s)
                && sh.location == snap.location
                && sh.pressure_scope == snap.pressure.as_ref().map(|(_, s)| *s)
                && sh.limiting_path.as_deref() == snap.limiting.as_ref().map(|l| l.path.as_str())
                && sh.raw_keys.len() == raw.len()
                && sh.raw_keys.iter().zip(raw).all(|(a, (b, _))| a == b)
                && sh.diagnoses == diagnoses
                && same_scan(&sh.processes, &snap.processes)
        });
        if !same {
            self.shape = Some(CachedShape {
                source: snap.limit().map(|(_, s)| s),
                location: snap.location.clone(),
                raw_keys: raw.iter().map(|(k, _)| k.clone()).collect(),
                pressure_scope: snap.pressure.as_ref().map(|(_, s)| *s),
                limiting_path: snap.limiting.as_ref().map(|l| l.path.clone()),
                diagnoses,
                processes: snap.processes.clone(),
            });
            self.generation = self.generation.wrapping_add(1);
        }
        self.generation
    }
}

impl Entry {
    fn new(root: PathBuf) -> Self {
        Entry {
            reader: Reader::new(root),
            shape: None,
            generation: 0,
        }
    }
}

/// One entry per root. The map's lock is held only to find or insert an
/// entry, never while a reader reads: a thread reading one root never makes
/// another wait on a different root.
type Readers = HashMap<PathBuf, Arc<Mutex<Entry>>>;
static READERS: Lazy<Mutex<Readers>> = Lazy::new(|| Mutex::new(HashMap::new()));
/// Readers for fixture roots are cheap to rebuild; bound how many stay open.
const MAX_READERS: usize = 16;

fn root_path(root: Option<String>) -> PathBuf {
    PathBuf::from(root.unwrap_or_else(|| "/".to_string()))
}

fn entry_for(root: &Path) -> Arc<Mutex<Entry>> {
    let mut map = lock(&READERS);
    if let Some(e) = map.get(root) {
        return e.clone();
    }
    if map.len() >= MAX_READERS {
        let victim = map.keys().find(|k| k.as_os_str() != "/").cloned();
        if let Some(v) = victim {
            map.remove(&v);
        }
    }
    let entry = Arc::new(Mutex::new(Entry::new(root.to_path_buf())));
    map.insert(root.to_path_buf(), entry.clone());
    entry
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN)
}

/// Property paths of the slots `sample()` fills, in slot order (internal).
#[napi]
pub fn slot_names() -> Result<Vec<&'static str>> {
    guard::catch("slotNames", || slots::NAMES.to_vec()).map_err(internal_error)
}

/// Read the cgroup and process files of `root` (default `/`) once and fill
/// `out` (internal layout: see `slotNames()`). The V8 numbers are read from
/// their slots of `out`, written by the caller beforehand. Returns the shape
/// generation: when it differs from the last one seen, call `describe()`.
#[napi]
pub fn sample(env: Env, mut out: Float64ArraySlice, root: Option<String>) -> Result<u32> {
    // SAFETY: this runs synchronously on the JS thread; no JavaScript can
    // touch the array until it returns.
    let buf: &mut [f64] = unsafe { out.as_mut() };
    if buf.len() < slots::RAW_START {
        return Err(Error::new(
            Status::InvalidArg,
            format!(
                "out must be a Float64Array of at least {} slots",
                slots::RAW_START
            ),
        ));
    }
    let root = root_path(root);
    let entry = entry_for(&root);
    let mut entry = lock(&entry);
    let result = guard::catch("sample", || {
        guard::failpoint(|| "sample".to_string());
        let node = running_node(&env);
        let v8 = slots::read_v8(buf);
        let snap = entry.reader.snapshot();
        slots::fill(buf, &snap, &derive(&snap, &v8), now_ms());
        // Stalled is a judgement over time: only the sampler makes it, for a
        // root one of its monitors watches with stall detection (else null).
        buf[slots::Slot::STALLED as usize] =
            watch::stalled(&root).map_or(f64::NAN, |s| f64::from(u8::from(s)));
        entry.observe(&snap, diagnose(&snap, &v8, node))
    });
    result.map_err(|p| {
        // The reader may be half-updated: start this root afresh.
        entry.reader = Reader::new(root);
        entry.shape = None;
        entry.generation = entry.generation.wrapping_add(1);
        internal_error(p)
    })
}

/// The strings and lists of the last `sample()` of `root` (internal).
#[napi]
pub fn describe(root: Option<String>) -> Result<Shape> {
    let entry = entry_for(&root_path(root));
    let entry = lock(&entry);
    guard::catch("describe", || match &entry.shape {
        Some(sh) => Shape::from(sh, entry.generation),
        None => Shape {
            generation: entry.generation,
            source: None,
            cgroup: None,
            raw_keys: Vec::new(),
            pressure_scope: None,
            limiting_cgroup_path: None,
            diagnoses: Vec::new(),
            processes: None,
        },
    })
    .map_err(internal_error)
}

/// What `describe()` returns (internal).
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct Shape {
    pub generation: u32,
    pub source: Option<String>,
    pub cgroup: Option<CgroupInfo>,
    pub raw_keys: Vec<String>,
    pub pressure_scope: Option<String>,
    /// The cgroup path of the ancestor that holds the limit (the reading's
    /// `limitingCgroup.path`).
    pub limiting_cgroup_path: Option<String>,
    pub diagnoses: Vec<Diagnosis>,
    pub processes: Option<CgroupProcesses>,
}

impl Shape {
    fn from(sh: &CachedShape, generation: u32) -> Self {
        let mut diagnoses: Vec<Diagnosis> = sh.diagnoses.iter().map(Diagnosis::from).collect();
        diagnoses.sort_by_key(|d| match d.severity.as_str() {
            "error" => 0,
            "warning" => 1,
            _ => 2,
        });
        Shape {
            generation,
            source: sh.source.map(|s| s.as_str().to_string()),
            cgroup: sh.location.as_ref().map(|l| CgroupInfo {
                version: l.version.number(),
                path: l.cgroup_path.clone(),
                dir: l.dir.display().to_string(),
                mount_point: l.mount_point.display().to_string(),
                resolved: l.resolved,
            }),
            raw_keys: sh.raw_keys.clone(),
            pressure_scope: sh.pressure_scope.map(|s| match s {
                PressureScope::Cgroup => "cgroup".to_string(),
                PressureScope::System => "system".to_string(),
            }),
            limiting_cgroup_path: sh.limiting_path.clone(),
            diagnoses,
            processes: sh.processes.as_ref().map(|p| CgroupProcesses {
                count: p.count as u32,
                largest: p
                    .largest
                    .iter()
                    .map(|q| CgroupProcess {
                        pid: q.pid,
                        command: q.command.clone(),
                        rss_bytes: q.rss.map(|v| v as f64),
                        anon_bytes: q.anon.map(|v| v as f64),
                    })
                    .collect(),
                timestamp_ms: p.timestamp_ms,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The tests that use the shared reader cache, one at a time (evicting
    /// entries would break another's "the same entry" check).
    static CACHE: Mutex<()> = Mutex::new(());

    #[test]
    fn a_root_held_by_one_reader_never_blocks_another_root() {
        let _one_at_a_time = lock(&CACHE);
        let a = entry_for(Path::new("/nonexistent/oomguard-a"));
        // As if a read of root a were stuck in the kernel.
        let _held = lock(&a);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let b = entry_for(Path::new("/nonexistent/oomguard-b"));
            let snap = lock(&b).reader.snapshot();
            tx.send(snap.locate_error.is_some()).unwrap();
        });
        let located = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("root b was read while root a was held");
        assert!(located, "root b does not exist: a locate error, not a hang");
        // The same root, asked again, is the same entry.
        let again = entry_for(Path::new("/nonexistent/oomguard-a"));
        assert!(Arc::ptr_eq(&a, &again));
    }

    #[test]
    fn describe_lists_errors_then_warnings_then_the_rest_each_in_the_core_s_order() {
        let snap = Snapshot::default();
        let v8 = diagnose::V8Numbers::default();
        let core = diagnose(&snap, &v8, diagnose::running_node());
        let codes: Vec<_> = core.iter().map(|d| d.code).collect();
        // No cgroup and no limit: an info, then a warning, as the core finds them.
        assert_eq!(codes, ["NO_MEMORY_CGROUP", "NO_LIMIT"]);
        let mut entry = Entry::new(PathBuf::from("/nonexistent/oomguard-sort"));
        let generation = entry.observe(&snap, core);
        let shape = Shape::from(entry.shape.as_ref().unwrap(), generation);
        let listed: Vec<_> = shape
            .diagnoses
            .iter()
            .map(|d| (d.severity.as_str(), d.code.as_str()))
            .collect();
        assert_eq!(
            listed,
            [("warning", "NO_LIMIT"), ("info", "NO_MEMORY_CGROUP")]
        );
    }

    #[test]
    fn the_shape_generation_moves_only_when_the_shape_does() {
        let mut entry = Entry::new(PathBuf::from("/nonexistent/oomguard-generation"));
        let snap = Snapshot::default();
        let first = entry.observe(&snap, Vec::new());
        assert_eq!(entry.observe(&snap, Vec::new()), first, "the same shape");
        let v8 = diagnose::V8Numbers::default();
        let moved = entry.observe(&snap, diagnose(&snap, &v8, diagnose::running_node()));
        assert_ne!(moved, first, "new diagnoses are a new shape");
        assert_eq!(
            entry.observe(&snap, diagnose(&snap, &v8, diagnose::running_node())),
            moved
        );
    }

    #[test]
    fn the_reader_cache_is_bounded_and_keeps_the_live_root() {
        let _one_at_a_time = lock(&CACHE);
        let live = entry_for(Path::new("/"));
        for i in 0..(2 * MAX_READERS) {
            entry_for(&PathBuf::from(format!("/nonexistent/oomguard-bound-{i}")));
        }
        let mut map = lock(&READERS);
        assert!(map.len() <= MAX_READERS, "{} readers cached", map.len());
        assert!(
            map.get(Path::new("/"))
                .is_some_and(|e| Arc::ptr_eq(e, &live)),
            "the live root's reader stays"
        );
        // Leave room: a full cache evicts any root but the live one, even
        // one just added, which the test above must not see.
        map.retain(|root, _| root.as_os_str() == "/");
    }
}
