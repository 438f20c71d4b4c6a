//! The processes in the cgroup: `cgroup.procs`, and each one's resident
//! memory (`/proc/<pid>/statm`) and name (`/proc/<pid>/comm`).
//!
//! Two figures per process. `rss` (statm's resident) is what `ps` and `top`
//! show; it counts mapped file pages, which are charged to whichever cgroup
//! first read them (node's binary is mapped by every node process), so RSS
//! can add up to more than the cgroup holds, and one process's RSS can
//! exceed its working set. `anon` (resident minus shared: the kernel's
//! `RssAnon`, exactly) is the anonymous memory the process itself put
//! there, charged to the cgroup it was touched in and never inactive page
//! cache, so it is part of the working set. Shares of the working set are
//! of `anon`: they add up to at most 100%, except where processes share
//! anonymous pages (after `fork()`, counted in each) or a process brought a
//! charge from another cgroup (v1 does not move charges with a process).
//! Shared memory (tmpfs, /dev/shm) is left out: several processes map the
//! same pages, and the cgroup's `shmem` counts it once.
//!
//! A scan opens two files per process, so it is not done on every read: the
//! reader keeps the last scan and repeats it at most every [`SCAN_EVERY`]
//! (measured in benchmark/README.md).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{ParseError, Result};
use crate::file::OpenFile;
use crate::locate::under_root;

/// At most this many processes are listed, largest resident set first.
pub const MAX_LISTED: usize = 16;

/// At most this many pids of `cgroup.procs` have their `statm` read in one
/// scan (the lowest pids); `count` still counts them all. Bounds a scan of a
/// cgroup that holds a whole host (the v2 root) to a few milliseconds.
pub const MAX_SCANNED: usize = 512;

/// How long a scan stands before the next read repeats it.
pub const SCAN_EVERY: Duration = Duration::from_secs(1);

/// This process's resident anonymous memory (its RSS where that is unknown)
/// is a "small part" of the charge below this
/// share of the cgroup's working set: the last-words verdict is then
/// `another-process` when the cgroup holds other processes.
pub const SMALL_SHARE: f64 = 0.25;

/// One process of the cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CgroupProcess {
    pub pid: u32,
    /// `/proc/<pid>/comm` (at most 15 bytes, the kernel's task name); None when unreadable.
    pub command: Option<String>,
    /// Resident set, bytes; None when unreadable (the process exited, or
    /// `/proc` is mounted with `hidepid`).
    pub rss: Option<u64>,
    /// Resident anonymous memory, bytes: what shares of the working set are
    /// of (see the module's comment). None as for `rss`.
    pub anon: Option<u64>,
}

/// The result of one scan.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Processes {
    /// Processes in `cgroup.procs`: distinct pids, plus those outside this
    /// pid namespace (listed as 0; counted, never listed).
    pub count: usize,
    /// The largest by resident anonymous memory (then resident set), at
    /// most [`MAX_LISTED`]; unknown sizes last.
    pub largest: Vec<CgroupProcess>,
    /// When the scan was made, milliseconds since the epoch.
    pub timestamp_ms: f64,
}

impl Processes {
    /// The largest process, when any has a known size.
    pub fn top(&self) -> Option<&CgroupProcess> {
        self.largest.first().filter(|p| p.rss.is_some())
    }
}

/// A process's resident memory, from `/proc/<pid>/statm`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resident {
    /// Resident set (statm's second field), bytes.
    pub rss: u64,
    /// Resident anonymous memory (resident minus shared, the third field:
    /// file and shmem pages; the kernel's `RssAnon`), bytes.
    pub anon: u64,
}

/// `/proc/<pid>/statm`: resident and shared pages, in bytes.
pub fn parse_statm(text: &str, page_size: u64) -> std::result::Result<Resident, ParseError> {
    let mut fields = text.lines().next().unwrap_or("").split_ascii_whitespace();
    let _size = fields.next();
    let pages = |what: &str, v: Option<&str>| -> std::result::Result<u64, ParseError> {
        let v = v.ok_or_else(|| ParseError::new(1, format!("no {what} field")))?;
        v.parse::<u64>()
            .ok()
            .and_then(|p| p.checked_mul(page_size))
            .ok_or_else(|| ParseError::new(1, format!("{what} is not a number of pages: {v:?}")))
    };
    let rss = pages("resident", fields.next())?;
    let shared = pages("shared", fields.next())?;
    Ok(Resident {
        rss,
        anon: rss.saturating_sub(shared),
    })
}

/// The pids `cgroup.procs` lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pids {
    /// Sorted, without duplicates (v1 may list a pid twice).
    pub visible: Vec<u32>,
    /// Lines of `0`: on v2 a process outside this process's pid namespace
    /// (a container's view of a cgroup shared with the host) is listed as 0.
    pub hidden: usize,
}

/// `cgroup.procs`: one pid per line.
pub fn parse_pids(text: &str) -> std::result::Result<Pids, ParseError> {
    let mut out = Pids::default();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let pid = t
            .parse::<u32>()
            .map_err(|_| ParseError::new(i + 1, format!("not a pid: {t:?}")))?;
        if pid == 0 {
            out.hidden += 1;
        } else {
            out.visible.push(pid);
        }
    }
    out.visible.sort_unstable();
    out.visible.dedup();
    Ok(out)
}

/// Names are cut to this many bytes (the kernel's are at most 15; a
/// fixture's may be anything).
const MAX_COMMAND: usize = 64;

/// `/proc/<pid>/comm`: the name without its newline, at most [`MAX_COMMAND`] bytes.
pub fn parse_comm(text: &str) -> std::result::Result<String, ParseError> {
    let mut s = text.strip_suffix('\n').unwrap_or(text);
    if s.len() > MAX_COMMAND {
        let mut end = MAX_COMMAND;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s = &s[..end];
    }
    Ok(s.to_string())
}

/// Read `cgroup.procs` and each listed process's size and name under `root`.
pub fn scan(
    procs: &mut OpenFile,
    root: &Path,
    page_size: u64,
    buf: &mut Vec<u8>,
) -> Result<Arc<Processes>> {
    let Pids {
        visible: pids,
        hidden,
    } = procs.parse(buf, parse_pids)?;
    let proc_file =
        |pid: u32, name: &str| OpenFile::new(under_root(root, &format!("/proc/{pid}/{name}")));
    let mut list: Vec<CgroupProcess> = pids
        .iter()
        .take(MAX_SCANNED)
        .map(|&pid| {
            let r = proc_file(pid, "statm")
                .parse(buf, |t| parse_statm(t, page_size))
                .ok();
            CgroupProcess {
                pid,
                command: None,
                rss: r.map(|r| r.rss),
                anon: r.map(|r| r.anon),
            }
        })
        .collect();
    // Largest first; unknown sizes last; ties by pid.
    list.sort_by(|a, b| {
        (b.anon, b.rss)
            .cmp(&(a.anon, a.rss))
            .then(a.pid.cmp(&b.pid))
    });
    list.truncate(MAX_LISTED);
    for p in list.iter_mut() {
        p.command = proc_file(p.pid, "comm").parse(buf, parse_comm).ok();
    }
    Ok(Arc::new(Processes {
        count: pids.len() + hidden,
        largest: list,
        timestamp_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids() {
        let cases: &[(&str, &str, Option<Vec<u32>>)] = &[
            ("empty", "", Some(vec![])),
            ("one", "42\n", Some(vec![42])),
            (
                "unsorted with a duplicate (v1)",
                "7\n3\n7\n",
                Some(vec![3, 7]),
            ),
            ("no trailing newline", "1\n2", Some(vec![1, 2])),
            ("blank lines", "\n5\n\n", Some(vec![5])),
            ("garbage", "12\nabc\n", None),
            ("negative", "-1\n", None),
            ("too large", "4294967296\n", None),
        ];
        for (name, text, want) in cases {
            assert_eq!(
                parse_pids(text).ok().map(|p| p.visible),
                *want,
                "case {name}"
            );
        }
        let ns = parse_pids("0\n12\n0\n").unwrap();
        assert_eq!(
            (ns.visible, ns.hidden),
            (vec![12], 2),
            "0: outside this pid namespace, each one counted"
        );
        assert_eq!(
            parse_pids("1\nx\n").unwrap_err().line,
            2,
            "the error names the line"
        );
    }

    #[test]
    fn statm() {
        assert_eq!(
            parse_statm("100 25 3 4 0 5 0\n", 4096).unwrap(),
            Resident {
                rss: 25 * 4096,
                anon: 22 * 4096
            }
        );
        assert_eq!(
            parse_statm("1 5 9 0 0 0 0", 4096).unwrap().anon,
            0,
            "shared above resident (read moments apart): never below 0"
        );
        for bad in [
            "",
            "100",
            "100 25",
            "100 x 3",
            "100 25 -1",
            "1 18446744073709551615 0",
        ] {
            assert_eq!(parse_statm(bad, 4096).unwrap_err().line, 1, "{bad:?}");
        }
    }

    /// Resident minus shared of statm is the kernel's RssAnon: this
    /// process's, read both ways back to back.
    #[test]
    fn statm_anon_is_rss_anon() {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
        let keep: Vec<u8> = vec![1; 8 << 20];
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        std::hint::black_box(&keep);
        let anon = parse_statm(&statm, page).unwrap().anon;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        assert!(anon >= 8 << 20, "{anon}");
        // The two reads are moments apart (other test threads allocate).
        assert!(
            anon.abs_diff(kib * 1024) <= 4 << 20,
            "statm {anon}, RssAnon {} kB",
            kib
        );
    }

    #[test]
    fn comm() {
        assert_eq!(parse_comm("node\n").unwrap(), "node");
        assert_eq!(parse_comm("a b\n").unwrap(), "a b", "names may hold spaces");
        assert_eq!(parse_comm("x").unwrap(), "x");
        assert_eq!(
            parse_comm(&"é".repeat(40)).unwrap().len(),
            64,
            "cut at a character boundary"
        );
    }

    #[test]
    fn a_fixture_root_scan() {
        let dir = std::env::temp_dir().join(format!("oomguard-procs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let w = |p: &str, s: &str| {
            let f = dir.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, s).unwrap();
        };
        // size, resident, shared (file and shmem) pages.
        let statm = |rss: u64, shared: u64| format!("1000 {rss} {shared} 1 0 10 0\n");
        w("cg/cgroup.procs", "30\n10\n20\n40\n50\n");
        w("proc/10/statm", &statm(20, 4));
        w("proc/10/comm", "small\n");
        // The most RSS, mostly mapped files: not the largest.
        w("proc/50/statm", &statm(400, 392));
        w("proc/20/statm", &statm(250, 50));
        w("proc/20/comm", "big\n");
        w("proc/30/statm", &statm(200, 0)); // a tie: lower pid first
                                            // 40 has exited: no files
        let mut procs = OpenFile::new(dir.join("cg/cgroup.procs"));
        let mut buf = Vec::new();
        let p = scan(&mut procs, &dir, 4096, &mut buf).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(p.count, 5);
        let got: Vec<_> = p
            .largest
            .iter()
            .map(|p| (p.pid, p.command.as_deref(), p.rss, p.anon))
            .collect();
        let k = 4096;
        assert_eq!(
            got,
            vec![
                (20, Some("big"), Some(250 * k), Some(200 * k)),
                (30, None, Some(200 * k), Some(200 * k)),
                (10, Some("small"), Some(20 * k), Some(16 * k)),
                (50, None, Some(400 * k), Some(8 * k)),
                (40, None, None, None),
            ]
        );
        assert_eq!(p.top().map(|t| t.pid), Some(20));
    }
}

#[cfg(test)]
mod timing {
    /// `cargo test --release procs::timing -- --ignored --nocapture`: the
    /// cost of one scan of this process's own cgroup.
    #[test]
    #[ignore]
    fn scan_speed() {
        let loc = match crate::locate::locate(std::path::Path::new("/")) {
            Ok(crate::locate::Located::Found(l)) => l,
            _ => return,
        };
        let mut procs = crate::file::OpenFile::new(loc.dir.join("cgroup.procs"));
        let mut buf = Vec::new();
        let root = std::path::Path::new("/");
        let first = super::scan(&mut procs, root, 4096, &mut buf).unwrap();
        let n = 2000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(super::scan(&mut procs, root, 4096, &mut buf).unwrap());
        }
        eprintln!(
            "scan of {} processes: {:.1} us",
            first.count,
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}
