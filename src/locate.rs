//! Finding the process's memory cgroup directory from `/proc/self/cgroup` and
//! `/proc/self/mountinfo`, under an injected root that stands in for `/`.

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
        let v1_mounts: Vec<&MountInfo> = mounts
            .iter()
            .filter(|m| m.fs_type == "cgroup" && m.super_options.iter().any(|o| o == "memory"))
            .collect();
        let files = (cgroup_file.as_path(), mountinfo_file.as_path());
        if let Some(loc) = resolve(root, CgroupVersion::V1, line, &v1_mounts, files)? {
            return Ok(Located::Found(loc));
        }
    }
    if let Some(line) = lines
        .iter()
        .find(|l| l.hierarchy_id == 0 && l.controllers.is_empty())
    {
        let v2_mounts: Vec<&MountInfo> = mounts.iter().filter(|m| m.fs_type == "cgroup2").collect();
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
}
