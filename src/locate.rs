//! Finding the process's memory cgroup directory from `/proc/self/cgroup` and
//! `/proc/self/mountinfo`, under an injected root that stands in for `/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::parse::{parse_mountinfo, parse_proc_cgroup, MountInfo, ProcCgroupLine};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

impl CgroupVersion {
    pub fn number(self) -> u32 {
        match self {
            CgroupVersion::V1 => 1,
            CgroupVersion::V2 => 2,
        }
    }
}

/// Where the memory controller's files for this process are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub version: CgroupVersion,
    /// The path as `/proc/self/cgroup` prints it.
    pub cgroup_path: String,
    /// The mount point of the hierarchy, with the root prefix applied.
    pub mount_point: PathBuf,
    /// The cgroup's own directory, with the root prefix applied.
    pub dir: PathBuf,
    /// False when the computed directory did not exist and `dir` is the mount
    /// point instead (the fallback libuv uses).
    pub resolved: bool,
}

impl Location {
    /// Directories from the cgroup's own up to the mount point (the top of the
    /// hierarchy this process can see), leaf first.
    pub fn ancestry(&self) -> Vec<PathBuf> {
        let mut out = vec![self.dir.clone()];
        let mut cur = self.dir.as_path();
        while cur != self.mount_point {
            match cur.parent() {
                Some(p) if p.starts_with(&self.mount_point) => {
                    out.push(p.to_path_buf());
                    cur = p;
                }
                _ => break,
            }
        }
        out
    }
}

/// What locating found: a location, or why there is none.
#[derive(Debug)]
pub enum Located {
    Found(Location),
    /// The process's hierarchies do not include the memory controller
    /// (or no cgroup filesystem is mounted).
    NoMemoryController,
}

/// Join an absolute kernel path under the injected root. The path must be
/// normalized ([`normalize`]) when it comes from a file under the root.
pub fn under_root(root: &Path, absolute: &str) -> PathBuf {
    root.join(absolute.trim_start_matches('/'))
}

/// Resolve `.`, `..` and repeated slashes of an absolute path lexically.
/// None when a `..` climbs above `/`: such a path would lead outside the
/// root once joined under it.
pub fn normalize(absolute: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in absolute.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    let mut out = String::with_capacity(absolute.len());
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

pub use crate::file::read_text;

fn escapes(file: &Path, what: &str, path: &str) -> Error {
    Error::refused(
        file,
        format!("the {what} {path:?} climbs out of the root with \"..\""),
    )
}

/// Split `path` against the mount's `root` field: the part of the cgroup path
/// below the mount's root, or None when the path is not under it.
fn relative_to_mount_root<'a>(path: &'a str, mount_root: &str) -> Option<&'a str> {
    if mount_root == "/" {
        return Some(path.trim_start_matches('/'));
    }
    let rest = path.strip_prefix(mount_root)?;
    if rest.is_empty() || rest.starts_with('/') {
        Some(rest.trim_start_matches('/'))
    } else {
        None
    }
}

/// Is the directory `inner` the directory `outer` or below it? Both normalized.
fn at_or_below(inner: &str, outer: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The mounts among `mounts` that `wanted` picks and that this process sees.
///
/// Where several mounts share a mount point, or one is mounted on a directory
/// above another's mount point, the one on top hides the other: the later one
/// in mountinfo (a mount goes on top of what is there), or the one mounted on
/// the other (its parent ids lead there, whatever the order). A mount is never
/// hidden by one it is mounted inside, listed before it or not (a mount moved
/// there with `mount --move` keeps its place in the list). Nor by one on `/`:
/// a lookup starts at the process's root and does not enter what is mounted on
/// top of it (the process sees that only once it chroots into it). Mounts
/// whose point climbs out of the root (`..`) hide nothing; a wanted one is
/// kept, for [`resolve`] to refuse.
///
/// Linear in the number of mounts for each wanted one, whatever cycles or
/// repeats the ids make (the first of a repeated id is the one a parent id
/// names).
pub fn visible_mounts(
    mounts: &[MountInfo],
    wanted: impl Fn(&MountInfo) -> bool,
) -> Vec<&MountInfo> {
    visible_indices(mounts, wanted)
        .into_iter()
        .map(|i| &mounts[i])
        .collect()
}

/// [`visible_mounts`] as indices into `mounts`, in order.
fn visible_indices(mounts: &[MountInfo], wanted: impl Fn(&MountInfo) -> bool) -> Vec<usize> {
    let n = mounts.len();
    let points: Vec<Option<String>> = mounts.iter().map(|m| normalize(&m.mount_point)).collect();
    let mut by_id: HashMap<u64, usize> = HashMap::with_capacity(n);
    for (i, m) in mounts.iter().enumerate() {
        by_id.entry(m.id).or_insert(i);
    }
    let parent: Vec<Option<usize>> = mounts
        .iter()
        .enumerate()
        .map(|(i, m)| by_id.get(&m.parent_id).copied().filter(|&p| p != i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, p) in parent.iter().enumerate() {
        if let Some(p) = *p {
            children[p].push(i);
        }
    }
    let mut out = Vec::new();
    for i in (0..n).filter(|&i| wanted(&mounts[i])) {
        let Some(point) = &points[i] else {
            out.push(i);
            continue;
        };
        // The mounts `i` is mounted inside, and those mounted inside it.
        let mut above = vec![false; n];
        let mut cur = parent[i];
        while let Some(p) = cur.filter(|&p| !above[p] && p != i) {
            above[p] = true;
            cur = parent[p];
        }
        let mut below = vec![false; n];
        let mut stack = children[i].clone();
        while let Some(k) = stack.pop() {
            if k != i && !below[k] {
                below[k] = true;
                stack.extend_from_slice(&children[k]);
            }
        }
        let hidden = (0..n).any(|top| {
            top != i
                && !above[top]
                && (top > i || below[top])
                && points[top]
                    .as_deref()
                    .is_some_and(|top_point| top_point != "/" && at_or_below(point, top_point))
        });
        if !hidden {
            out.push(i);
        }
    }
    out
}

/// Pick the mount whose root holds the path (the longest such root), else the first.
fn choose_mount<'m>(
    mounts: &[&'m MountInfo],
    path: &str,
) -> Option<(&'m MountInfo, Option<String>)> {
    let best = mounts
        .iter()
        .filter_map(|m| relative_to_mount_root(path, &m.root).map(|rel| (*m, rel.to_string())))
        .max_by_key(|(m, _)| m.root.len());
    match best {
        Some((m, rel)) => Some((m, Some(rel))),
        None => mounts.first().map(|m| (*m, None)),
    }
}

/// Where the files are, from the normalized cgroup path and mounts.
/// Errors when a path from the files would lead outside the root.
fn resolve(
    root: &Path,
    version: CgroupVersion,
    line: &ProcCgroupLine,
    mounts: &[&MountInfo],
    files: (&Path, &Path),
) -> Result<Option<Location>> {
    let (cgroup_file, mountinfo_file) = files;
    let path =
        normalize(&line.path).ok_or_else(|| escapes(cgroup_file, "cgroup path", &line.path))?;
    let mut normalized = Vec::with_capacity(mounts.len());
    for m in mounts {
        let mount_point = normalize(&m.mount_point)
            .ok_or_else(|| escapes(mountinfo_file, "mount point", &m.mount_point))?;
        // A mount root above this namespace's (`/..`, as the kernel prints it
        // for a cgroup outside the namespace) is kept as printed: it holds
        // no normalized path, so only the first-mount fallback can pick it.
        let mount_root = normalize(&m.root).unwrap_or_else(|| m.root.clone());
        normalized.push(MountInfo {
            id: m.id,
            parent_id: m.parent_id,
            root: mount_root,
            mount_point,
            fs_type: m.fs_type.clone(),
            super_options: Vec::new(),
        });
    }
    let refs: Vec<&MountInfo> = normalized.iter().collect();
    let Some((mount, rel)) = choose_mount(&refs, &path) else {
        return Ok(None);
    };
    let mount_point = under_root(root, &mount.mount_point);
    let candidate = rel.as_ref().map(|rel| {
        if rel.is_empty() {
            mount_point.clone()
        } else {
            mount_point.join(rel)
        }
    });
    let (dir, resolved) = match candidate {
        Some(dir) if dir.is_dir() => (dir, true),
        _ => (mount_point.clone(), false),
    };
    Ok(Some(Location {
        version,
        cgroup_path: line.path.clone(),
        mount_point,
        dir,
        resolved,
    }))
}

/// Does this cgroup2 directory have the memory controller?
fn v2_has_memory(loc: &Location) -> bool {
    if loc.dir.join("memory.current").exists() || loc.dir.join("memory.stat").exists() {
        return true;
    }
    match read_text(&loc.dir.join("cgroup.controllers")) {
        Ok(text) => text.split_ascii_whitespace().any(|c| c == "memory"),
        Err(_) => false,
    }
}

/// Locate the memory cgroup of the process as seen under `root`.
/// The memory controller decides the version: on a hybrid system a v1 memory
/// hierarchy wins over a cgroup2 mount without memory.
pub fn locate(root: &Path) -> Result<Located> {
    let cgroup_file = under_root(root, "/proc/self/cgroup");
    let lines =
        parse_proc_cgroup(&read_text(&cgroup_file)?).map_err(|e| Error::parse(&cgroup_file, e))?;
    let mountinfo_file = under_root(root, "/proc/self/mountinfo");
    let mounts = parse_mountinfo(&read_text(&mountinfo_file)?)
        .map_err(|e| Error::parse(&mountinfo_file, e))?;

    let v1_line = lines
        .iter()
        .find(|l| l.hierarchy_id != 0 && l.controllers.iter().any(|c| c == "memory"));
    if let Some(line) = v1_line {
        let v1_mounts = visible_mounts(&mounts, |m| {
            m.fs_type == "cgroup" && m.super_options.iter().any(|o| o == "memory")
        });
        let files = (cgroup_file.as_path(), mountinfo_file.as_path());
        if let Some(loc) = resolve(root, CgroupVersion::V1, line, &v1_mounts, files)? {
            return Ok(Located::Found(loc));
        }
    }
    if let Some(line) = lines
        .iter()
        .find(|l| l.hierarchy_id == 0 && l.controllers.is_empty())
    {
        let v2_mounts = visible_mounts(&mounts, |m| m.fs_type == "cgroup2");
        let files = (cgroup_file.as_path(), mountinfo_file.as_path());
        if let Some(loc) = resolve(root, CgroupVersion::V2, line, &v2_mounts, files)? {
            if v2_has_memory(&loc) {
                return Ok(Located::Found(loc));
            }
        }
    }
    Ok(Located::NoMemoryController)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            ("plain", "/a/b", "/", Some("a/b")),
            ("namespace root", "/", "/", Some("")),
            (
                "docker v1 without cgroupns",
                "/docker/abc",
                "/docker/abc",
                Some(""),
            ),
            (
                "below the mount root",
                "/docker/abc/x",
                "/docker/abc",
                Some("x"),
            ),
            (
                "sibling prefix is not a parent",
                "/docker/abcdef",
                "/docker/abc",
                None,
            ),
            ("elsewhere", "/other", "/docker/abc", None),
        ];
        for (name, path, root, want) in cases {
            assert_eq!(relative_to_mount_root(path, root), *want, "case {name}");
        }
    }

    #[test]
    fn normalize_cases() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("root", "/", Some("/")),
            ("plain", "/a/b", Some("/a/b")),
            ("dot and slashes", "/a/./b//c/", Some("/a/b/c")),
            ("dot-dot inside", "/a/b/../c", Some("/a/c")),
            ("back to the top", "/a/..", Some("/")),
            ("climbs out", "/..", None),
            ("climbs far out", "/../../../../tmp/x", None),
            ("out and back in", "/a/../../a", None),
            ("dots in a name", "/a/..b/c..", Some("/a/..b/c..")),
        ];
        for (name, path, want) in cases {
            assert_eq!(normalize(path).as_deref(), *want, "case {name}");
        }
    }

    /// The ids `visible_mounts` keeps of the cgroup mounts (v1 memory or
    /// cgroup2) in a mountinfo text.
    fn visible_ids(mountinfo: &str) -> Vec<u64> {
        let mounts = parse_mountinfo(mountinfo).unwrap();
        visible_mounts(&mounts, |m| m.fs_type.starts_with("cgroup"))
            .iter()
            .map(|m| m.id)
            .collect()
    }

    #[test]
    fn the_mount_on_top_is_the_visible_one() {
        const SYS: &str = "23 27 0:22 / /sys rw - sysfs sysfs rw\n\
                           31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n";
        let cases: &[(&str, &str, &[u64])] = &[
            (
                "one mount",
                "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
                &[35],
            ),
            (
                "a bind on the same point (docker -v /sys/fs/cgroup/memory:...)",
                "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 50 35 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
                &[50],
            ),
            (
                "three on one point: the last",
                "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 50 35 0:32 /a /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 51 50 0:32 /a/b /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
                &[51],
            ),
            (
                "the same point spelled with a trailing slash",
                "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 50 35 0:32 / /sys/fs/cgroup//memory/ rw - cgroup cgroup rw,memory\n",
                &[50],
            ),
            (
                "on top though listed first (moved there): parent ids decide",
                "50 35 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
                &[50],
            ),
            (
                "cgroup2 stacked",
                "32 23 0:28 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n\
                 45 32 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
                &[45],
            ),
            (
                "hybrid: each hierarchy's top mount",
                "35 31 0:32 /p /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 41 31 0:38 /p /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                 42 35 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 43 41 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
                &[42, 43],
            ),
            (
                "a later mount on a parent directory covers",
                "35 31 0:32 /p /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 60 31 0:40 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
                 61 60 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
                &[61],
            ),
            (
                "covered, nothing mounted again below",
                "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 60 31 0:40 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n",
                &[],
            ),
            (
                "not covered by a later mount on /: lookups start below it",
                "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 90 27 0:50 / / rw - overlay overlay rw\n",
                &[35],
            ),
            (
                "not covered by the mount it was moved inside, listed after it",
                "35 80 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 80 31 0:40 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n",
                &[35],
            ),
            (
                "a later mount below does not cover",
                "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 70 35 0:41 / /sys/fs/cgroup/memory/sub rw - tmpfs tmpfs rw\n",
                &[35],
            ),
            (
                "a sibling sharing a prefix does not cover",
                "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 70 31 0:41 / /sys/fs/cgroup/mem rw - tmpfs tmpfs rw\n\
                 71 31 0:42 / /sys/fs/cgroup/memory2 rw - tmpfs tmpfs rw\n",
                &[35],
            ),
            (
                "mounted inside the covering mount at any depth",
                "60 31 0:40 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
                 61 60 0:41 / /sys/fs/cgroup/x rw - tmpfs tmpfs rw\n\
                 35 61 0:32 / /sys/fs/cgroup/x/memory rw - cgroup cgroup rw,memory\n\
                 62 23 0:42 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n",
                &[],
            ),
        ];
        for (name, lines, want) in cases {
            let text = format!("{SYS}{lines}");
            assert_eq!(visible_ids(&text), *want, "case {name}");
        }
    }

    #[test]
    fn odd_mount_ids_end_and_decide_by_order() {
        let cases: &[(&str, &str, &[u64])] = &[
            (
                "a parent cycle: neither is inside the other, the later wins",
                "1 2 0:1 / /c rw - cgroup2 cgroup2 rw\n\
                 2 1 0:1 /x /c rw - cgroup2 cgroup2 rw\n",
                &[1, 2],
            ),
            (
                "its own parent",
                "5 5 0:1 / /c rw - cgroup2 cgroup2 rw\n\
                 6 6 0:1 / /c rw - cgroup2 cgroup2 rw\n",
                &[6],
            ),
            (
                "a repeated id: the first is the one parent ids name",
                "7 1 0:1 / /c rw - cgroup2 cgroup2 rw\n\
                 7 1 0:1 /x /c rw - cgroup2 cgroup2 rw\n\
                 8 7 0:1 / /c/d rw - cgroup2 cgroup2 rw\n",
                &[7, 8],
            ),
            (
                "an unknown parent",
                "9 999 0:1 / /c rw - cgroup2 cgroup2 rw\n\
                 10 998 0:1 / /c rw - cgroup2 cgroup2 rw\n",
                &[10],
            ),
            (
                "a mount point that climbs out hides nothing and is kept",
                "11 1 0:1 / /c rw - cgroup2 cgroup2 rw\n\
                 12 1 0:1 / /../.. rw - cgroup2 cgroup2 rw\n",
                &[11, 12],
            ),
        ];
        for (name, text, want) in cases {
            assert_eq!(visible_ids(text), *want, "case {name}");
        }
    }

    #[test]
    fn ancestry_stops_at_mount_point() {
        let loc = Location {
            version: CgroupVersion::V2,
            cgroup_path: "/a/b".into(),
            mount_point: PathBuf::from("/r/sys/fs/cgroup"),
            dir: PathBuf::from("/r/sys/fs/cgroup/a/b"),
            resolved: true,
        };
        assert_eq!(
            loc.ancestry(),
            vec![
                PathBuf::from("/r/sys/fs/cgroup/a/b"),
                PathBuf::from("/r/sys/fs/cgroup/a"),
                PathBuf::from("/r/sys/fs/cgroup")
            ]
        );
        let at_mount = Location {
            dir: PathBuf::from("/r/sys/fs/cgroup"),
            ..loc
        };
        assert_eq!(at_mount.ancestry(), vec![PathBuf::from("/r/sys/fs/cgroup")]);
    }

    /// Mount points that overlap, repeat, climb out or are spelled oddly.
    const POINTS: &[&str] = &[
        "/",
        "/c",
        "/c/",
        "//c",
        "/c/d",
        "/c/./d",
        "/c/d/e",
        "/cd",
        "/c/../c",
        "/x",
        "/..",
        "/../c",
        "/c/d\\040e",
    ];

    /// One mountinfo line: (id, parent id, index in POINTS, wanted).
    type Line = (u64, u64, usize, bool);

    fn mountinfo(lines: &[Line]) -> String {
        lines
            .iter()
            .map(|&(id, parent, point, wanted)| {
                let fs = if wanted { "cgroup2" } else { "tmpfs" };
                format!("{id} {parent} 0:1 / {} rw - {fs} none rw\n", POINTS[point])
            })
            .collect()
    }

    fn cgroup2(m: &MountInfo) -> bool {
        m.fs_type == "cgroup2"
    }

    /// The rule where no parent id names a listed mount: order alone
    /// decides. Written out separately from `visible_indices`.
    fn by_order_alone(mounts: &[MountInfo]) -> Vec<usize> {
        let points: Vec<Option<String>> =
            mounts.iter().map(|m| normalize(&m.mount_point)).collect();
        (0..mounts.len())
            .filter(|&i| cgroup2(&mounts[i]))
            .filter(|&i| {
                let Some(p) = &points[i] else { return true };
                !(i + 1..mounts.len()).any(|j| match &points[j] {
                    Some(q) if q != "/" => p == q || p.starts_with(&format!("{q}/")),
                    _ => false,
                })
            })
            .collect()
    }

    fn line() -> impl Strategy<Value = Line> {
        (0u64..10, 0u64..12, 0..POINTS.len(), any::<bool>())
    }

    use crate::parse::tests::config;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(config(2000))]

        /// Any ids (repeated, cyclic, self-parented, unknown) and points:
        /// no panic, and what comes back is wanted, each once, in order.
        #[test]
        fn visible_is_an_ordered_subset_of_wanted(lines in proptest::collection::vec(line(), 0..24)) {
            let mounts = parse_mountinfo(&mountinfo(&lines)).unwrap();
            let got = visible_indices(&mounts, cgroup2);
            prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
            prop_assert!(got.iter().all(|&i| cgroup2(&mounts[i])));
            // The last wanted mount is seen unless a mount sits on it.
            if let Some(last) = (0..mounts.len()).rev().find(|&i| cgroup2(&mounts[i])) {
                let later = &mounts[last + 1..];
                if later.is_empty() {
                    let mounted_on = mounts.iter().any(|m| m.parent_id == mounts[last].id);
                    prop_assert!(mounted_on || got.last() == Some(&last), "{got:?}");
                }
            }
        }

        /// Where parent ids name no listed mount, the later mount on the same
        /// point or a directory above (not `/`) hides the earlier one.
        #[test]
        fn without_parents_the_later_mount_is_on_top(
            lines in proptest::collection::vec((0..POINTS.len(), any::<bool>()), 0..24)
        ) {
            let lines: Vec<Line> = lines
                .iter()
                .enumerate()
                .map(|(i, &(point, wanted))| (i as u64 + 1, 1000 + i as u64, point, wanted))
                .collect();
            let mounts = parse_mountinfo(&mountinfo(&lines)).unwrap();
            prop_assert_eq!(visible_indices(&mounts, cgroup2), by_order_alone(&mounts));
        }

        /// A stack of mounts on one point, each mounted on the one before:
        /// the top of the stack is seen, in whatever order mountinfo lists
        /// them, and mounts elsewhere do not change that.
        #[test]
        fn the_top_of_a_stack_whatever_the_order(
            depth in 1usize..8,
            point in proptest::sample::select(vec![1usize, 2, 3, 4, 5, 6, 7, 8, 12]),
            others in proptest::collection::vec(any::<bool>(), 0..6),
            seed in any::<u64>(),
        ) {
            // The stack's points are all normalizable and not "/"; the other
            // mounts sit on "/x", which covers none of them.
            let mut lines: Vec<Line> = (0..depth)
                .map(|k| (100 + k as u64, if k == 0 { 1 } else { 99 + k as u64 }, point, true))
                .collect();
            lines.extend(others.iter().enumerate().map(|(k, &wanted)| (200 + k as u64, 1, 9, wanted)));
            // A deterministic shuffle from the seed.
            let mut order: Vec<usize> = (0..lines.len()).collect();
            let mut x = seed | 1;
            for i in (1..order.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                order.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let shuffled: Vec<Line> = order.iter().map(|&i| lines[i]).collect();
            let mounts = parse_mountinfo(&mountinfo(&shuffled)).unwrap();
            let seen: Vec<u64> = visible_indices(&mounts, cgroup2)
                .into_iter()
                .map(|i| mounts[i].id)
                .filter(|&id| (100..200).contains(&id))
                .collect();
            prop_assert_eq!(seen, vec![99 + depth as u64]);
        }
    }

    #[test]
    fn many_mounts_stay_linear_per_wanted_one() {
        // 4000 wanted mounts on one point, each mounted on the one before
        // (the longest parent walks) and listed in reverse (every one a
        // candidate to hide every other): far more than the 64 KiB that is
        // read of mountinfo holds. Cubic work would take minutes.
        let n = 4000u64;
        let text: String = (0..n)
            .rev()
            .map(|k| format!("{} {} 0:1 / /c rw - cgroup2 none rw\n", k + 10, k + 9))
            .collect();
        let mounts = parse_mountinfo(&text).unwrap();
        let t0 = std::time::Instant::now();
        let seen: Vec<u64> = visible_mounts(&mounts, cgroup2)
            .iter()
            .map(|m| m.id)
            .collect();
        let took = t0.elapsed();
        assert_eq!(seen, vec![n + 9], "the top of the stack");
        assert!(took.as_secs() < 10, "{took:?}");
    }
}
