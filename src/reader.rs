//! Reading the live values. A [`Reader`] locates the cgroup once, keeps the
//! files open and re-reads them with `pread` at offset 0: the kernel
//! regenerates the text on every read, so each read is fresh.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::file::{page_size, OpenFile};
use crate::guard;
use crate::locate::{locate, under_root, CgroupVersion, Located, Location};
use crate::parse::{
    lookup, parse_flat_keyed, parse_limit, parse_meminfo, parse_pressure, parse_u64, Pressure,
};
use crate::procs::{self, Processes};
use crate::stat::MemoryStat;

/// How often `/proc/self/cgroup` is re-read to notice that the process was
/// moved to another cgroup. A failed read of the usage file re-checks at once.
mod snapshot;
pub use snapshot::*;

const RELOCATE_EVERY: Duration = Duration::from_secs(1);

/// The open files of one located cgroup.
#[derive(Debug)]
struct CgroupFiles {
    location: Location,
    /// None for the cgroup v2 root, which has no `memory.current`.
    usage: Option<OpenFile>,
    stat: OpenFile,
    /// None for the cgroup v2 root, which has no `memory.events`.
    events: Option<OpenFile>,
    /// v1 `memory.failcnt`
    failcnt: Option<OpenFile>,
    /// v2 `memory.pressure`
    pressure: Option<OpenFile>,
    /// v1 `memory.kmem.usage_in_bytes`, `memory.kmem.tcp.usage_in_bytes`
    kmem: Option<OpenFile>,
    kmem_tcp: Option<OpenFile>,
    /// limit file of each directory from the leaf up (v2 memory.max, v1 memory.limit_in_bytes)
    limits: Vec<OpenFile>,
    /// The limit files [`Reader::tick`] reads again, by index into
    /// `limits`, with what each said at the last snapshot (None: a limit
    /// read failed there): see [`tick_limits`].
    tick_limits: Option<Vec<(usize, Option<u64>)>>,
    /// v2 memory.high of each directory from the leaf up
    highs: Vec<OpenFile>,
    /// v1 `memory.soft_limit_in_bytes` of the leaf
    soft_limit: Option<OpenFile>,
    /// v2 `memory.peak`, v1 `memory.max_usage_in_bytes`
    peak: Option<OpenFile>,
    /// v2 `memory.swap.current`, v1 `memory.memsw.usage_in_bytes`
    swap: Option<OpenFile>,
    /// v2 `memory.swap.max` of each directory from the leaf up (v1 reads
    /// memory.stat's `hierarchical_memsw_limit` instead)
    swap_limits: Vec<OpenFile>,
    /// The files of the ancestor that holds the effective limit, opened when
    /// a snapshot first finds one there (again when another one does).
    limiting: Option<LimitingFiles>,
    /// `cgroup.procs`, and the latest scan of the processes it lists
    procs: OpenFile,
    processes: Option<Arc<Processes>>,
    /// When `processes` was scanned; None to scan at the next read
    /// (never scanned, or the last scan failed).
    processes_at: Option<Instant>,
    /// The process sits in the v2 root cgroup: no usage, events or limits.
    v2_root: bool,
}

impl CgroupFiles {
    fn new(location: Location) -> Self {
        let d = &location.dir;
        let ancestry = location.ancestry();
        let at = |name: &str| OpenFile::new(d.join(name));
        let all = |name: &str| {
            ancestry
                .iter()
                .map(|p| OpenFile::new(p.join(name)))
                .collect::<Vec<_>>()
        };
        // The v2 root cgroup (a process at the top of the hierarchy with no
        // cgroup namespace) has memory.stat and memory.pressure but no
        // memory.current, memory.events or memory.max: that is the whole host.
        let v2_root = location.version == CgroupVersion::V2
            && location.dir == location.mount_point
            && !d.join("memory.current").exists();
        match location.version {
            CgroupVersion::V2 => CgroupFiles {
                usage: (!v2_root).then(|| at(usage_file(CgroupVersion::V2))),
                stat: at("memory.stat"),
                events: (!v2_root).then(|| at("memory.events")),
                failcnt: None,
                pressure: Some(at("memory.pressure")),
                kmem: None,
                kmem_tcp: None,
                limits: all("memory.max"),
                tick_limits: None,
                highs: all("memory.high"),
                soft_limit: None,
                peak: (!v2_root).then(|| at("memory.peak")),
                swap: (!v2_root).then(|| at("memory.swap.current")),
                swap_limits: if v2_root {
                    Vec::new()
                } else {
                    all("memory.swap.max")
                },
                limiting: None,
                procs: at("cgroup.procs"),
                processes: None,
                processes_at: None,
                v2_root,
                location,
            },
            CgroupVersion::V1 => CgroupFiles {
                usage: Some(at(usage_file(CgroupVersion::V1))),
                stat: at("memory.stat"),
                events: Some(at("memory.oom_control")),
                failcnt: Some(at(failures_file(CgroupVersion::V1).0)),
                pressure: None,
                kmem: Some(at("memory.kmem.usage_in_bytes")),
                kmem_tcp: Some(at("memory.kmem.tcp.usage_in_bytes")),
                limits: all("memory.limit_in_bytes"),
                tick_limits: None,
                highs: Vec::new(),
                soft_limit: Some(at("memory.soft_limit_in_bytes")),
                peak: Some(at("memory.max_usage_in_bytes")),
                swap: Some(at("memory.memsw.usage_in_bytes")),
                // memory.stat's hierarchical_memsw_limit is the smallest
                // memory.memsw.limit_in_bytes from the leaf up.
                swap_limits: Vec::new(),
                limiting: None,
                procs: at("cgroup.procs"),
                processes: None,
                processes_at: None,
                v2_root,
                location,
            },
        }
    }
}

/// The usage file of a cgroup version.
fn usage_file(version: CgroupVersion) -> &'static str {
    match version {
        CgroupVersion::V1 => "memory.usage_in_bytes",
        CgroupVersion::V2 => "memory.current",
    }
}

/// The failed-charge counter of a cgroup version as the diagnoses name it
/// (lib/core/diagnoses.json `failures`): the file, and the key in it where it is
/// a keyed file (v1 `memory.failcnt`; v2 `memory.events`, `max`).
fn failures_file(version: CgroupVersion) -> (&'static str, Option<&'static str>) {
    let named = crate::named::named_files(Some(version)).failures;
    match named.split_once(' ') {
        Some((file, key)) => (file, Some(key)),
        None => (named, None),
    }
}

/// `memory.stat`'s inactive file (v1 `total_inactive_file`).
fn inactive_in(raw: &[(String, u64)], version: CgroupVersion) -> Option<u64> {
    lookup(raw, MemoryStat::inactive_file_key(version))
}

/// The open files of a [`LimitingCgroup`].
#[derive(Debug)]
struct LimitingFiles {
    depth: usize,
    path: String,
    dir: PathBuf,
    usage: OpenFile,
    stat: OpenFile,
    /// The failed-charge counter ([`failures_file`]), and its key.
    failures: OpenFile,
    failures_key: Option<&'static str>,
    /// v1 `memory.memsw.usage_in_bytes`
    memsw: Option<OpenFile>,
}

impl LimitingFiles {
    /// The files of the `depth`-th directory up from the leaf; None where
    /// the ancestry has no such directory.
    fn new(location: &Location, depth: usize) -> Option<Self> {
        let dir = location.ancestry().into_iter().nth(depth)?;
        let at = |name: &str| OpenFile::new(dir.join(name));
        let version = location.version;
        let (failures, failures_key) = failures_file(version);
        Some(LimitingFiles {
            depth,
            path: ancestor_path(&location.cgroup_path, depth),
            usage: at(usage_file(version)),
            stat: at("memory.stat"),
            failures: at(failures),
            failures_key,
            memsw: (version == CgroupVersion::V1).then(|| at("memory.memsw.usage_in_bytes")),
            dir,
        })
    }
}

/// The cgroup path `depth` levels above `path` (`/a/b/c`, 1: `/a/b`).
fn ancestor_path(path: &str, depth: usize) -> String {
    let mut p = path.trim_end_matches('/');
    for _ in 0..depth {
        p = p.rsplit_once('/').map_or("", |(head, _)| head);
    }
    if p.is_empty() {
        "/".to_string()
    } else {
        p.to_string()
    }
}

enum State {
    Unlocated,
    Located(Box<CgroupFiles>),
    NoMemoryController,
    Failed(Error),
}

/// Reads one root's cgroup and process files, keeping them open between reads.
pub struct Reader {
    root: PathBuf,
    state: State,
    proc_cgroup_text: String,
    last_locate: Option<Instant>,
    proc_cgroup: OpenFile,
    statm: OpenFile,
    meminfo: OpenFile,
    system_pressure: OpenFile,
    buf: Vec<u8>,
    page_size: u64,
}

/// An optional file: absent is None without complaint, other failures are problems.
fn optional<T>(r: Result<T>, problems: &mut Vec<Error>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) if e.is_not_found() => None,
        Err(e) => {
            problems.push(e);
            None
        }
    }
}

/// A number from a file that may be absent (None) or fail (a problem).
fn optional_u64(
    file: Option<&mut OpenFile>,
    buf: &mut Vec<u8>,
    problems: &mut Vec<Error>,
) -> Option<u64> {
    file.and_then(|f| optional(f.parse(buf, parse_u64), problems))
}

/// A file that should be there: every failure is a problem.
fn required<T>(r: Result<T>, problems: &mut Vec<Error>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(e);
            None
        }
    }
}

impl Reader {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Reader {
            proc_cgroup: OpenFile::new(under_root(&root, "/proc/self/cgroup")),
            statm: OpenFile::new(under_root(&root, "/proc/self/statm")),
            meminfo: OpenFile::new(under_root(&root, "/proc/meminfo")),
            system_pressure: OpenFile::new(under_root(&root, "/proc/pressure/memory")),
            root,
            state: State::Unlocated,
            proc_cgroup_text: String::new(),
            last_locate: None,
            buf: Vec::new(),
            page_size: page_size(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn location(&self) -> Option<&Location> {
        match &self.state {
            State::Located(f) => Some(&f.location),
            _ => None,
        }
    }

    /// Locate (again) when never done, when `/proc/self/cgroup` changed, or
    /// when `force` is set.
    fn ensure_located(&mut self, force: bool) {
        let due = force
            || self
                .last_locate
                .is_none_or(|t| t.elapsed() >= RELOCATE_EVERY);
        if !due {
            return;
        }
        self.last_locate = Some(Instant::now());
        let current = self.proc_cgroup.read(&mut self.buf).map(str::to_string);
        let changed = match &current {
            Ok(text) => *text != self.proc_cgroup_text,
            Err(_) => true,
        };
        if !changed && !force && !matches!(self.state, State::Unlocated) {
            return;
        }
        if let Ok(text) = current {
            self.proc_cgroup_text = text;
        }
        let root = &self.root;
        self.state = match guard::catch("locating the cgroup", || {
            locate(root).map(|found| match found {
                Located::Found(loc) => State::Located(Box::new(CgroupFiles::new(loc))),
                Located::NoMemoryController => State::NoMemoryController,
            })
        }) {
            Ok(Ok(state)) => state,
            Ok(Err(e)) => State::Failed(e),
            Err(panic) => State::Failed(Error::Bug {
                path: under_root(root, "/proc/self/mountinfo"),
                panic,
            }),
        };
    }

    /// Read everything once. Never fails: what cannot be read is `None` and
    /// its error is in `problems`.
    pub fn snapshot(&mut self) -> Snapshot {
        self.ensure_located(false);
        let mut snap = Snapshot::default();
        let buf = &mut self.buf;
        let mut problems = Vec::new();

        let own = required(
            self.statm
                .parse(buf, |t| procs::parse_statm(t, self.page_size)),
            &mut problems,
        );
        snap.rss = own.map(|r| r.rss);
        snap.anon = own.map(|r| r.anon);
        if let Some(mi) = required(self.meminfo.parse(buf, parse_meminfo), &mut problems) {
            snap.mem_total = mi.mem_total;
            snap.mem_available = mi.mem_available;
            snap.swap_total = mi.swap_total;
        }

        let mut usage = None;
        if let State::Located(files) = &mut self.state {
            usage = files.usage.as_mut().map(|f| f.parse(buf, parse_u64));
        }
        // A failed usage read may mean the cgroup went away: look again now.
        if matches!(usage, Some(Err(_))) {
            self.ensure_located(true);
            if let State::Located(files) = &mut self.state {
                usage = files
                    .usage
                    .as_mut()
                    .map(|f| f.parse(&mut self.buf, parse_u64));
            }
        }
        let buf = &mut self.buf;

        match &mut self.state {
            State::Located(files) => {
                snap.failed.usage = matches!(usage, Some(Err(_)));
                snap.usage = usage.and_then(|r| required(r, &mut problems));
                snap.v2_root = files.v2_root;
                read_cgroup(files, buf, &mut snap, &mut problems);
                read_processes(
                    files,
                    &self.root,
                    self.page_size,
                    buf,
                    &mut snap,
                    &mut problems,
                );
                snap.location = Some(files.location.clone());
            }
            State::Failed(e) => {
                snap.locate_error = Some(e.to_string());
                snap.locate_error_path = Some(e.path().to_path_buf());
            }
            State::NoMemoryController | State::Unlocated => {}
        }

        if snap.pressure.is_none() {
            snap.pressure = optional(
                self.system_pressure.parse(buf, parse_pressure),
                &mut problems,
            )
            .map(|p| (p, PressureScope::System));
        }
        snap.problems = problems;
        snap
    }
}

impl Reader {
    /// The usage (`memory.current` / `memory.usage_in_bytes`), the one
    /// number a sample between two snapshots needs. The leaf's limit file
    /// and the one that binds are read too ([`tick_limits`]), so that a
    /// limit changed there is seen at once. None (take a full snapshot
    /// instead) where there is no cgroup usage file (no memory controller,
    /// the v2 root), before the first snapshot, when one of those limit
    /// files differs from the last snapshot's, or when any read fails: the
    /// snapshot reports it, and looks for the cgroup again. Does not look
    /// for a move to another cgroup: snapshots do that.
    pub fn tick(&mut self) -> Option<u64> {
        let State::Located(files) = &mut self.state else {
            return None;
        };
        let buf = &mut self.buf;
        let usage = files.usage.as_mut()?.parse(buf, parse_u64).ok()?;
        for &(i, was) in files.tick_limits.as_ref()? {
            match files.limits.get_mut(i)?.parse(buf, parse_limit) {
                Ok(v) if v == was => {}
                // Absent then and now (above the leaf: the v2 root has none).
                Err(e) if e.is_not_found() && was.is_none() => {}
                _ => return None,
            }
        }
        Some(usage)
    }

    /// `memory.stat`'s inactive file, now (for the working set, where a
    /// [`Reader::tick`]'s usage reaches a threshold); None as for a tick.
    pub fn inactive_file(&mut self) -> Option<u64> {
        let State::Located(files) = &mut self.state else {
            return None;
        };
        let raw = files.stat.parse(&mut self.buf, parse_flat_keyed).ok()?;
        inactive_in(&raw, files.location.version)
    }
}

/// The limit files a tick reads again, with what each said: the leaf's
/// (`docker update` and Kubernetes' in-place resize write the container's
/// own cgroup) and `smallest`, the index of the one that binds, where it
/// is another (a pod's limit above an unlimited container). A limit
/// written in any other ancestor is seen at the next snapshot, within
/// [`crate::watch`]'s snapshot period.
/// Each pread of a cgroup file costs a few microseconds; a tick is taken
/// up to a few hundred times a second where no kernel wake-up can be armed.
fn tick_limits(limits: &[Option<u64>], smallest: Option<usize>) -> Vec<(usize, Option<u64>)> {
    let mut read = Vec::with_capacity(2);
    if let Some(&leaf) = limits.first() {
        read.push((0, leaf));
    }
    if let Some(i) = smallest.filter(|&i| i != 0) {
        read.push((i, limits[i]));
    }
    read
}

/// The working set: the usage less the inactive file, with the usage read
/// before `memory.stat` and again after it (`after`; None where that read
/// failed). The two files are read one after the other, not at once: page
/// cache freed in between (a large file deleted, or truncated, while this
/// thread waited for a CPU) leaves the first usage counting it while the
/// inactive file no longer does, and a working set near the limit that
/// was never there. The smaller of the two usages is the one the inactive
/// file can be taken from; memory that grows in between is seen by the
/// next sample.
fn working_set(before: u64, after: Option<u64>, inactive: u64) -> u64 {
    before.min(after.unwrap_or(before)).saturating_sub(inactive)
}

fn read_cgroup(
    files: &mut CgroupFiles,
    buf: &mut Vec<u8>,
    snap: &mut Snapshot,
    problems: &mut Vec<Error>,
) {
    let version = files.location.version;
    #[cfg(test)]
    tests::before_stat();
    let raw_stat = required(files.stat.parse(buf, parse_flat_keyed), problems);
    let usage_after = files
        .usage
        .as_mut()
        .and_then(|f| f.parse(buf, parse_u64).ok());
    snap.failed.stat = raw_stat.is_none();
    let before_limits = problems.len();

    // Limits up the hierarchy. A missing file is normal (the v2 root has none).
    let mut limits = Vec::with_capacity(files.limits.len());
    for (i, f) in files.limits.iter_mut().enumerate() {
        let r = f.parse(buf, parse_limit);
        // A missing limit file is normal above the leaf (the v2 root has none).
        let v = if i == 0 && !files.v2_root {
            required(r, problems)
        } else {
            optional(r, problems)
        };
        if i == 0 {
            snap.leaf_limit = v.flatten();
        }
        limits.push(v.flatten());
    }
    snap.failed.limit = problems.len() > before_limits;
    // The directory with the smallest limit, the nearest the leaf on a tie.
    let smallest = limits
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (v, i)))
        .min();
    files.tick_limits =
        (!snap.failed.limit).then(|| tick_limits(&limits, smallest.map(|(_, i)| i)));
    let mut highs = Vec::with_capacity(files.highs.len());
    for f in files.highs.iter_mut() {
        highs.push(optional(f.parse(buf, parse_limit), problems).flatten());
    }

    let stat = match version {
        CgroupVersion::V2 => raw_stat.map(MemoryStat::from_v2),
        CgroupVersion::V1 => {
            let kmem = optional_u64(files.kmem.as_mut(), buf, problems);
            let tcp = optional_u64(files.kmem_tcp.as_mut(), buf, problems);
            raw_stat.map(|raw| MemoryStat::from_v1(raw, kmem, tcp))
        }
    };
    if let Some(h) = stat.as_ref().and_then(|s| s.hierarchical_memory_limit) {
        limits.push(Some(h));
    }
    snap.cgroup_limit = limits.into_iter().flatten().min();
    // An ancestor holds the limit when its file says the effective limit and
    // the leaf's says more (not when memory.stat's hierarchical limit is
    // smaller still: that ancestor is out of view).
    let depth = match smallest {
        Some((v, i)) if i > 0 && !snap.failed.limit && snap.cgroup_limit == Some(v) => Some(i),
        _ => None,
    };
    snap.leaf_high = match files.soft_limit.as_mut() {
        Some(f) => optional(f.parse(buf, parse_limit), problems).flatten(),
        None => highs.first().copied().flatten(),
    };
    snap.cgroup_high = highs.into_iter().flatten().min();

    snap.working_set = match (snap.usage, stat.as_ref()) {
        (Some(u), Some(s)) => s.inactive_file.map(|i| working_set(u, usage_after, i)),
        _ => None,
    };
    snap.stat = stat;

    let raw_events = files
        .events
        .as_mut()
        .map(|f| f.parse(buf, parse_flat_keyed));
    if let Some(raw) = raw_events.and_then(|r| required(r, problems)) {
        let g = |k: &str| lookup(&raw, k);
        snap.events = Some(match version {
            CgroupVersion::V2 => Events {
                low: g("low"),
                high: g("high"),
                max: g("max"),
                oom: g("oom"),
                oom_kill: g("oom_kill"),
                oom_group_kill: g("oom_group_kill"),
                under_oom: None,
                failcnt: None,
            },
            CgroupVersion::V1 => Events {
                oom_kill: g("oom_kill"),
                under_oom: g("under_oom"),
                failcnt: optional_u64(files.failcnt.as_mut(), buf, problems),
                ..Events::default()
            },
        });
    }

    if let Some(f) = files.pressure.as_mut() {
        snap.pressure =
            optional(f.parse(buf, parse_pressure), problems).map(|p| (p, PressureScope::Cgroup));
    }
    read_peak_and_swap(files, buf, snap, problems);
    read_limiting(files, depth, buf, snap, problems);
}

/// The ancestor that holds the limit, at `depth` (None: the leaf holds it,
/// or none is visible). Follows it when the limits change.
fn read_limiting(
    files: &mut CgroupFiles,
    depth: Option<usize>,
    buf: &mut Vec<u8>,
    snap: &mut Snapshot,
    problems: &mut Vec<Error>,
) {
    let Some(depth) = depth else {
        files.limiting = None;
        return;
    };
    if files.limiting.as_ref().is_none_or(|l| l.depth != depth) {
        files.limiting = LimitingFiles::new(&files.location, depth);
    }
    let Some(l) = files.limiting.as_mut() else {
        return;
    };
    let version = files.location.version;
    let usage = optional(l.usage.parse(buf, parse_u64), problems);
    let stat = optional(l.stat.parse(buf, parse_flat_keyed), problems);
    let usage_after = l.usage.parse(buf, parse_u64).ok();
    let inactive = stat.as_ref().and_then(|raw| inactive_in(raw, version));
    let failures = match l.failures_key {
        None => optional(l.failures.parse(buf, parse_u64), problems),
        Some(key) => optional(l.failures.parse(buf, parse_flat_keyed), problems)
            .and_then(|raw| lookup(&raw, key)),
    };
    let memsw_usage = l
        .memsw
        .as_mut()
        .and_then(|f| optional(f.parse(buf, parse_u64), problems));
    snap.limiting = Some(LimitingCgroup {
        path: l.path.clone(),
        dir: l.dir.clone(),
        depth,
        usage,
        working_set: match (usage, inactive) {
            (Some(u), Some(i)) => Some(working_set(u, usage_after, i)),
            _ => None,
        },
        failures,
        memsw_limit: stat
            .as_ref()
            .and_then(|raw| lookup(raw, "hierarchical_memsw_limit"))
            .and_then(crate::parse::limit_from_value)
            .filter(|_| memsw_usage.is_some()),
        memsw_usage,
    });
}

/// The processes of the cgroup: scanned again when the last scan is
/// [`procs::SCAN_EVERY`] old or failed, else the last scan.
fn read_processes(
    files: &mut CgroupFiles,
    root: &Path,
    page_size: u64,
    buf: &mut Vec<u8>,
    snap: &mut Snapshot,
    problems: &mut Vec<Error>,
) {
    let due = files
        .processes_at
        .is_none_or(|t| t.elapsed() >= procs::SCAN_EVERY);
    if due {
        files.processes = optional(
            procs::scan(&mut files.procs, root, page_size, buf),
            problems,
        );
        files.processes_at = files.processes.is_some().then(Instant::now);
    }
    snap.processes = files.processes.clone();
}

/// Peak usage and swap. Every file is optional: older kernels have no
/// `memory.peak`, and without swap accounting there are no swap files.
fn read_peak_and_swap(
    files: &mut CgroupFiles,
    buf: &mut Vec<u8>,
    snap: &mut Snapshot,
    problems: &mut Vec<Error>,
) {
    snap.peak = optional_u64(files.peak.as_mut(), buf, problems);
    let swap = optional_u64(files.swap.as_mut(), buf, problems);
    match files.location.version {
        CgroupVersion::V2 => {
            snap.swap = swap;
            // A limit file that is absent (or `max`) does not limit.
            snap.swap_limit = files
                .swap_limits
                .iter_mut()
                .filter_map(|f| optional(f.parse(buf, parse_limit), problems).flatten())
                .min();
        }
        CgroupVersion::V1 => {
            // memsw counts memory and swap together; the two files are read
            // moments apart, so the difference can come out below 0.
            snap.swap = match (swap, snap.usage) {
                (Some(memsw), Some(usage)) => Some(memsw.saturating_sub(usage)),
                _ => None,
            };
            // hierarchical_memsw_limit: the smallest memory+swap limit from
            // the leaf up, printed only with swap accounting.
            snap.swap_limit = snap
                .stat
                .as_ref()
                .and_then(|s| s.hierarchical_memsw_limit)
                .filter(|_| snap.swap.is_some())
                .map(|memsw| memsw.saturating_sub(snap.cgroup_limit.unwrap_or(0)));
        }
    }
    // No swap space on the host: no swap limit is usable.
    if snap.swap.is_some() && snap.swap_total == Some(0) {
        snap.swap_limit = Some(0);
    }
}

/// Read a root's snapshot once without keeping files open (for tools).
pub fn snapshot_once(root: &Path) -> Snapshot {
    Reader::new(root).snapshot()
}

#[cfg(test)]
mod timing {
    #[test]
    #[ignore]
    fn snapshot_speed() {
        let mut r = super::Reader::new("/");
        let _ = r.snapshot();
        let n = 20000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(r.snapshot());
        }
        eprintln!(
            "snapshot: {:.2} us",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}

#[cfg(test)]
mod tests;
