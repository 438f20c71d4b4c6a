//! The reading path against hostile trees built on the fly: FIFOs,
//! devices, directories and oversized files in place of kernel files,
//! and paths that climb out of the root.
use super::*;
use crate::file::MAX_BYTES;
use std::fs;
use std::time::Instant;

thread_local! {
    /// Run by [`read_cgroup`] between its usage and `memory.stat` reads.
    static BEFORE_STAT: std::cell::RefCell<Option<Box<dyn FnMut()>>> =
        const { std::cell::RefCell::new(None) };
}

pub(super) fn before_stat() {
    BEFORE_STAT.with(|h| {
        if let Some(f) = h.borrow_mut().as_mut() {
            f()
        }
    });
}

#[test]
fn page_cache_freed_between_the_reads_is_no_working_set() {
    // 200 MiB used, 150 MiB of it inactive page cache; between the
    // usage read and memory.stat the file is deleted: 60 MiB used,
    // 10 MiB inactive. The working set is 50 MiB, not 190.
    let t = Tree::v2("freed-between");
    let mib = 1u64 << 20;
    t.write(
        "sys/fs/cgroup/app/memory.current",
        &format!("{}\n", 200 * mib),
    );
    t.write(
        "sys/fs/cgroup/app/memory.stat",
        &format!(
            "anon {}\nfile {}\ninactive_file {}\n",
            50 * mib,
            150 * mib,
            150 * mib
        ),
    );
    let mut r = Reader::new(&t.0);
    assert_eq!(r.snapshot().working_set, Some(50 * mib), "steady");
    let root = t.0.clone();
    BEFORE_STAT.with(|h| {
        *h.borrow_mut() = Some(Box::new(move || {
            let w = |rel: &str, text: String| fs::write(root.join(rel), text).unwrap();
            w(
                "sys/fs/cgroup/app/memory.current",
                format!("{}\n", 60 * mib),
            );
            w(
                "sys/fs/cgroup/app/memory.stat",
                format!(
                    "anon {}\nfile {}\ninactive_file {}\n",
                    50 * mib,
                    10 * mib,
                    10 * mib
                ),
            );
        }))
    });
    let s = r.snapshot();
    BEFORE_STAT.with(|h| *h.borrow_mut() = None);
    assert_eq!(s.usage, Some(200 * mib), "the usage as read first");
    assert_eq!(s.working_set, Some(50 * mib), "not 190 MiB");
    // Growth in between is the next sample's: the first usage stands.
    assert_eq!(working_set(100, Some(120), 30), 70);
    assert_eq!(working_set(100, None, 30), 70, "the second read failed");
    assert_eq!(working_set(100, Some(20), 30), 0);
}

/// A scratch root under the temporary directory, removed on drop.
struct Tree(PathBuf);

impl Tree {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "oomguard-reader-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Tree(dir)
    }

    /// A tree whose process has these `/proc/self/cgroup` and
    /// `mountinfo` lines, with its statm and the host's meminfo.
    fn process(name: &str, cgroup: &str, mountinfo: &str) -> Self {
        let t = Tree::new(name);
        t.write("proc/self/cgroup", cgroup);
        t.write("proc/self/mountinfo", mountinfo);
        t.write("proc/self/statm", "1000 250 10 1 0 100 0\n");
        t.write(
            "proc/meminfo",
            "MemTotal: 1048576 kB\nMemAvailable: 524288 kB\n",
        );
        t
    }

    /// A v2 tree: the process in `/app` with a 256 MiB limit.
    fn v2(name: &str) -> Self {
        let t = Tree::process(
            name,
            "0::/app\n",
            "30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        t.write("sys/fs/cgroup/cgroup.controllers", "memory\n");
        t.write("sys/fs/cgroup/app/memory.current", "1000\n");
        t.write("sys/fs/cgroup/app/memory.max", "268435456\n");
        t.write("sys/fs/cgroup/app/memory.high", "max\n");
        t.write(
            "sys/fs/cgroup/app/memory.stat",
            "anon 600\nfile 400\ninactive_file 100\n",
        );
        t.write(
            "sys/fs/cgroup/app/memory.events",
            "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
        );
        t
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    /// Put `make` in place of the file at `rel`.
    fn replace(&self, rel: &str, make: impl FnOnce(&Path)) {
        let p = self.path(rel);
        let _ = fs::remove_file(&p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        make(&p);
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn fifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

fn read_one(p: &Path) -> Result<String> {
    let mut buf = Vec::new();
    OpenFile::new(p.to_path_buf())
        .read(&mut buf)
        .map(str::to_string)
}

#[test]
fn kernel_files_read_whole() {
    let text = read_one(Path::new("/proc/self/statm")).unwrap();
    assert!(crate::procs::parse_statm(&text, 4096).unwrap().rss > 0);
    // Printed record by record, often longer than a page: read to the end.
    let path = Path::new("/proc/self/mountinfo");
    let text = crate::file::read_text(path).unwrap();
    assert!(parse_mountinfo_ok(&text));
    assert_eq!(
        text,
        fs::read_to_string(path).unwrap(),
        "whole, not one page"
    );
    // Make /proc/self/maps several pages long: 300 mappings that cannot merge.
    let page = page_size() as usize;
    let maps: Vec<usize> = (0..300)
        .map(|i| {
            let prot = if i % 2 == 0 {
                libc::PROT_READ
            } else {
                libc::PROT_NONE
            };
            // SAFETY: a fresh anonymous private mapping, unmapped below.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    page,
                    prot,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(p, libc::MAP_FAILED);
            p as usize
        })
        .collect();
    let text = crate::file::read_text(Path::new("/proc/self/maps")).unwrap();
    let kept = read_one(Path::new("/proc/self/maps")).unwrap();
    let lines = text.lines().count();
    for p in maps {
        // SAFETY: mapped above with this length.
        unsafe { libc::munmap(p as *mut libc::c_void, page) };
    }
    assert!(text.len() > 3 * page, "maps is {} bytes", text.len());
    assert!(lines >= 300, "{lines} lines: read to the end");
    assert!(
        kept.lines().count() >= 300,
        "a kept file printed by record: to the end"
    );
}

fn parse_mountinfo_ok(text: &str) -> bool {
    crate::parse::parse_mountinfo(text).is_ok_and(|m| !m.is_empty())
}

#[test]
fn fifo_is_refused_without_waiting() {
    let t = Tree::new("fifo");
    t.replace("memory.current", fifo);
    let start = Instant::now();
    let err = read_one(&t.path("memory.current")).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "did not wait for a writer"
    );
    assert!(matches!(err, Error::Refused { .. }), "{err}");
    assert!(err.to_string().contains("a FIFO"), "{err}");
    assert_eq!(err.path(), t.path("memory.current"), "names the path");
}

#[test]
fn devices_and_directories_are_refused() {
    let t = Tree::new("dev");
    t.replace("memory.stat", |p| {
        std::os::unix::fs::symlink("/dev/zero", p).unwrap()
    });
    let err = read_one(&t.path("memory.stat")).unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err}");
    assert!(err.to_string().contains("character device"), "{err}");

    t.replace("memory.events", |p| fs::create_dir(p).unwrap());
    let err = read_one(&t.path("memory.events")).unwrap_err();
    assert!(err.to_string().contains("Is a directory"), "{err}");
    assert!(!err.is_not_found());
}

#[test]
fn symlink_loops_and_vanished_files_are_errors() {
    let t = Tree::new("loop");
    t.replace("a", |p| std::os::unix::fs::symlink("b", p).unwrap());
    t.replace("b", |p| std::os::unix::fs::symlink("a", p).unwrap());
    let err = read_one(&t.path("a")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");

    t.write("gone", "1\n");
    let mut f = OpenFile::new(t.path("gone"));
    let mut buf = Vec::new();
    assert_eq!(f.read(&mut buf).unwrap(), "1\n");
    fs::remove_file(t.path("gone")).unwrap();
    // An ordinary file keeps its text after unlink: the reader says it is gone.
    assert!(f.read(&mut buf).unwrap_err().is_not_found());
    assert!(OpenFile::new(t.path("gone"))
        .read(&mut buf)
        .unwrap_err()
        .is_not_found());
}

#[test]
fn reads_are_bounded() {
    let t = Tree::new("big");
    let exact = "7".repeat(MAX_BYTES);
    t.write("exact", &exact);
    assert_eq!(read_one(&t.path("exact")).unwrap().len(), MAX_BYTES);

    t.write("over", &"7".repeat(MAX_BYTES + 1));
    let err = read_one(&t.path("over")).unwrap_err();
    assert!(matches!(err, Error::Parse { .. }), "malformed: {err}");
    assert!(err.to_string().contains("longer than 65536 bytes"), "{err}");

    t.write("junk", &"x".repeat(10 << 20));
    let mut buf = Vec::new();
    let mut f = OpenFile::new(t.path("junk"));
    assert!(f.read(&mut buf).is_err());
    assert!(
        buf.len() <= MAX_BYTES + 1,
        "buffer stays bounded: {}",
        buf.len()
    );

    // A file that grows past the bound after it was opened.
    t.write("grows", "1\n");
    let mut f = OpenFile::new(t.path("grows"));
    assert_eq!(f.read(&mut buf).unwrap(), "1\n");
    fs::write(t.path("grows"), "1".repeat(1 << 20)).unwrap();
    assert!(f
        .read(&mut buf)
        .unwrap_err()
        .to_string()
        .contains("longer than"));
    assert!(buf.len() <= MAX_BYTES + 1);
}

#[test]
fn a_sound_tree_reads() {
    let t = Tree::v2("sound");
    let s = Reader::new(&t.0).snapshot();
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(s.usage, Some(1000));
    assert_eq!(s.working_set, Some(900));
    assert_eq!(s.cgroup_limit, Some(268435456));
    assert_eq!(s.location.unwrap().dir, t.path("sys/fs/cgroup/app"));
}

#[test]
fn a_tick_reads_the_leaf_and_the_binding_limit() {
    // The process in /k/pod/app: no limit of its own, 256 MiB on the
    // pod, 1 GiB above it.
    let t = Tree::v2("tick-limits");
    t.write("proc/self/cgroup", "0::/k/pod/app\n");
    for (dir, max) in [
        ("k", "1073741824"),
        ("k/pod", "268435456"),
        ("k/pod/app", "max"),
    ] {
        t.write(&format!("sys/fs/cgroup/{dir}/memory.max"), max);
    }
    t.write("sys/fs/cgroup/k/pod/app/memory.current", "1000\n");
    t.write("sys/fs/cgroup/k/pod/app/memory.stat", "inactive_file 100\n");
    let mut r = Reader::new(&t.0);
    assert_eq!(r.tick(), None, "before the first snapshot");
    let limit = |r: &mut Reader| r.snapshot().cgroup_limit;
    assert_eq!(limit(&mut r), Some(268435456));
    assert_eq!(r.tick(), Some(1000));
    // The binding limit (the pod's) changes: the tick sees it.
    t.write("sys/fs/cgroup/k/pod/memory.max", "209715200");
    assert_eq!(r.tick(), None, "the pod's limit changed");
    assert_eq!(limit(&mut r), Some(209715200));
    // The leaf's: the tick sees it.
    t.write("sys/fs/cgroup/k/pod/app/memory.max", "104857600");
    assert_eq!(r.tick(), None, "the leaf's limit changed");
    assert_eq!(limit(&mut r), Some(104857600));
    // The leaf binds now; a write above it waits for the next snapshot.
    t.write("sys/fs/cgroup/k/memory.max", "52428800");
    assert_eq!(
        r.tick(),
        Some(1000),
        "another ancestor's limit is not read by a tick"
    );
    assert_eq!(limit(&mut r), Some(52428800), "the snapshot reads it");
    // Now k binds: the tick reads it (and the leaf).
    t.write("sys/fs/cgroup/k/memory.max", "41943040");
    assert_eq!(r.tick(), None, "the binding limit changed");
    assert_eq!(limit(&mut r), Some(41943040));
    t.write("sys/fs/cgroup/k/pod/app/memory.current", "2000\n");
    assert_eq!(r.tick(), Some(2000));
    // A failed read of a file the tick reads: a snapshot is due.
    t.write("sys/fs/cgroup/k/pod/app/memory.max", "bogus");
    assert_eq!(r.tick(), None, "the leaf's limit file does not parse");
}

fn problem_paths(s: &Snapshot) -> Vec<PathBuf> {
    s.problems.iter().map(|p| p.path().to_path_buf()).collect()
}

#[test]
fn hostile_files_are_problems_naming_them() {
    type Make = fn(&Path);
    let cases: &[(&str, &str, Make)] = &[
        (
            "fifo memory.current",
            "sys/fs/cgroup/app/memory.current",
            fifo,
        ),
        ("fifo meminfo", "proc/meminfo", fifo),
        (
            "/dev/zero as memory.stat",
            "sys/fs/cgroup/app/memory.stat",
            |p| std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
        ),
        ("10 MB memory.stat", "sys/fs/cgroup/app/memory.stat", |p| {
            fs::write(p, "anon 1\n".repeat(1_500_000)).unwrap()
        }),
        (
            "directory memory.max",
            "sys/fs/cgroup/app/memory.max",
            |p| fs::create_dir(p).unwrap(),
        ),
    ];
    for (name, rel, make) in cases {
        let t = Tree::v2(&name.replace(['/', ' ', '.'], "_"));
        t.replace(rel, *make);
        let start = Instant::now();
        let s = Reader::new(&t.0).snapshot();
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{name}: returned at once"
        );
        assert!(
            problem_paths(&s).contains(&t.path(rel)),
            "{name}: {:?}",
            s.problems
        );
    }
}

#[test]
fn fifo_proc_self_cgroup_is_a_locate_error() {
    let t = Tree::v2("fifo-cgroup");
    t.replace("proc/self/cgroup", fifo);
    let s = Reader::new(&t.0).snapshot();
    assert!(s.location.is_none());
    let err = s.locate_error.expect("a locate error");
    assert!(
        err.contains("proc/self/cgroup") && err.contains("FIFO"),
        "{err}"
    );
}

#[test]
fn escaping_paths_are_never_read() {
    // Plant a file where the escape would lead: it must not be read.
    let outside = Tree::new("outside");
    outside.write("x/memory.current", "4242\n");
    let outside_rel = outside.0.strip_prefix("/").unwrap().display().to_string();
    let cases = [
        (
            "cgroup path",
            format!("0::/../../../../../../../../{outside_rel}/x\n"),
            "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n".to_string(),
        ),
        (
            "mount point",
            "0::/x\n".to_string(),
            format!("30 1 0:26 / /../../../../../../../../{outside_rel} rw - cgroup2 cgroup2 rw\n"),
        ),
    ];
    for (name, cgroup, mountinfo) in cases {
        let t = Tree::v2(&format!("escape-{}", name.replace(' ', "-")));
        t.write("proc/self/cgroup", &cgroup);
        t.write("proc/self/mountinfo", &mountinfo);
        let s = Reader::new(&t.0).snapshot();
        assert_eq!(s.usage, None, "{name}: nothing read outside the root");
        assert!(s.location.is_none(), "{name}");
        let err = s.locate_error.expect("a locate error");
        assert!(err.contains("climbs out of the root"), "{name}: {err}");
    }
}

/// A v1 tree: the process in `/pod/app` under `/sys/fs/cgroup/memory`,
/// the leaf unlimited, the pod at 256 MiB with its counters.
fn v1_pod(name: &str) -> Tree {
    let t = Tree::process(
        name,
        "4:memory:/pod/app\n0::/\n",
        "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n",
    );
    let unlimited = "9223372036854771712\n";
    t.write("sys/fs/cgroup/memory/memory.limit_in_bytes", unlimited);
    t.write(
        "sys/fs/cgroup/memory/pod/memory.limit_in_bytes",
        "268435456\n",
    );
    t.write(
        "sys/fs/cgroup/memory/pod/memory.usage_in_bytes",
        "268000000\n",
    );
    t.write("sys/fs/cgroup/memory/pod/memory.failcnt", "9500000\n");
    t.write(
        "sys/fs/cgroup/memory/pod/memory.memsw.usage_in_bytes",
        "268100000\n",
    );
    t.write(
        "sys/fs/cgroup/memory/pod/memory.stat",
        "total_inactive_file 8000000\nhierarchical_memory_limit 268435456\nhierarchical_memsw_limit 9223372036854771712\n",
    );
    let leaf = "sys/fs/cgroup/memory/pod/app";
    t.write(&format!("{leaf}/memory.limit_in_bytes"), unlimited);
    t.write(&format!("{leaf}/memory.usage_in_bytes"), "100000000\n");
    t.write(&format!("{leaf}/memory.failcnt"), "0\n");
    t.write(
        &format!("{leaf}/memory.memsw.usage_in_bytes"),
        "100000000\n",
    );
    t.write(
        &format!("{leaf}/memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
    );
    t.write(
        &format!("{leaf}/memory.stat"),
        "total_inactive_file 1000000\nhierarchical_memory_limit 268435456\nhierarchical_memsw_limit 9223372036854771712\n",
    );
    t
}

#[test]
fn the_limiting_ancestor_is_read_and_followed() {
    let t = v1_pod("limiting-v1");
    let mut r = Reader::new(&t.0);
    let s = r.snapshot();
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(s.cgroup_limit, Some(268435456));
    assert_eq!(
        s.events.as_ref().unwrap().failcnt,
        Some(0),
        "the leaf's own"
    );
    let l = s.limiting.expect("the pod holds the limit");
    assert_eq!(
        l,
        LimitingCgroup {
            path: "/pod".into(),
            dir: t.path("sys/fs/cgroup/memory/pod"),
            depth: 1,
            usage: Some(268000000),
            working_set: Some(260000000),
            failures: Some(9500000),
            memsw_usage: Some(268100000),
            memsw_limit: None,
        }
    );
    // Kept open: the next snapshot reads the new count.
    t.write("sys/fs/cgroup/memory/pod/memory.failcnt", "9600000\n");
    assert_eq!(r.snapshot().limiting.unwrap().failures, Some(9600000));

    // The limit rewritten: the leaf's own equal to the pod's (the leaf
    // decides a tie), then smaller (the leaf), then the pod's again.
    let leaf_limit = "sys/fs/cgroup/memory/pod/app/memory.limit_in_bytes";
    t.write(leaf_limit, "268435456\n");
    assert_eq!(r.snapshot().limiting, None, "a tie: the leaf's own");
    t.write(leaf_limit, "134217728\n");
    let s = r.snapshot();
    assert_eq!((s.limiting, s.cgroup_limit), (None, Some(134217728)));
    t.write(leaf_limit, "9223372036854771712\n");
    assert_eq!(r.snapshot().limiting.unwrap().depth, 1);
    // Moved up to the top of the hierarchy: followed.
    t.write("sys/fs/cgroup/memory/memory.limit_in_bytes", "200000000\n");
    t.write("sys/fs/cgroup/memory/memory.failcnt", "77\n");
    let l = r.snapshot().limiting.unwrap();
    assert_eq!((l.path.as_str(), l.depth, l.failures), ("/", 2, Some(77)));
    assert_eq!(l.usage, None, "absent files are unknown, not 0");

    // A smaller limit out of view (memory.stat's hierarchical limit):
    // no visible directory holds it.
    t.write(
        "sys/fs/cgroup/memory/memory.limit_in_bytes",
        "9223372036854771712\n",
    );
    t.write(
        "sys/fs/cgroup/memory/pod/app/memory.stat",
        "total_inactive_file 1000000\nhierarchical_memory_limit 100000000\n",
    );
    let s = r.snapshot();
    assert_eq!((s.limiting, s.cgroup_limit), (None, Some(100000000)));
}

#[test]
fn the_limiting_ancestor_on_v2_and_its_hostile_files() {
    let t = Tree::v2("limiting-v2");
    t.write("proc/self/cgroup", "0::/pod/app\n");
    let leaf = "sys/fs/cgroup/pod/app";
    for f in [
        "memory.current",
        "memory.high",
        "memory.stat",
        "memory.events",
    ] {
        fs::rename(t.path(&format!("sys/fs/cgroup/app/{f}")), {
            fs::create_dir_all(t.path(leaf)).unwrap();
            t.path(&format!("{leaf}/{f}"))
        })
        .unwrap();
    }
    t.write(&format!("{leaf}/memory.max"), "max\n");
    t.write("sys/fs/cgroup/pod/memory.max", "268435456\n");
    t.write("sys/fs/cgroup/pod/memory.current", "268000000\n");
    t.write(
        "sys/fs/cgroup/pod/memory.stat",
        "anon 1\ninactive_file 4000000\n",
    );
    t.write(
        "sys/fs/cgroup/pod/memory.events",
        "low 0\nhigh 0\nmax 238907\noom 0\noom_kill 0\n",
    );
    let s = Reader::new(&t.0).snapshot();
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    let l = s.limiting.expect("the pod holds the limit");
    assert_eq!(l.path, "/pod");
    assert_eq!(l.failures, Some(238907));
    assert_eq!(l.working_set, Some(264000000));
    assert_eq!((l.memsw_usage, l.memsw_limit), (None, None), "v1 only");
    assert_eq!(s.events.unwrap().max, Some(0), "the leaf's own");

    // A FIFO in place of the pod's memory.events: a problem naming it,
    // at once, and the count unknown.
    t.replace("sys/fs/cgroup/pod/memory.events", fifo);
    let start = Instant::now();
    let s = Reader::new(&t.0).snapshot();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(
        problem_paths(&s).contains(&t.path("sys/fs/cgroup/pod/memory.events")),
        "{:?}",
        s.problems
    );
    assert_eq!(s.limiting.unwrap().failures, None);
}

#[test]
fn ancestor_paths() {
    for (path, depth, want) in [
        ("/a/b/c", 1, "/a/b"),
        ("/a/b/c", 2, "/a"),
        ("/a/b/c", 3, "/"),
        ("/a/b/c/", 1, "/a/b"),
        ("/a", 5, "/"),
    ] {
        assert_eq!(ancestor_path(path, depth), want, "{path} {depth}");
    }
}
