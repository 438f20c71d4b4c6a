//! One record, one writer. Every node process in a container may start a
//! monitor that names the same last-words file (`NODE_OPTIONS` and
//! `OOMGUARD_LAST_WORDS_PATH` are inherited); only one may write it, or a
//! process that merely looked (npm, a doctor, a child) would overwrite the
//! record of the one that is killed.
//!
//! A monitor with a last-words file opens it when it starts (a regular
//! file, created empty if missing; non-blocking, close-on-exec) and keeps
//! it open while any monitor of this process names it. The first process to take an exclusive,
//! non-blocking `flock` on it owns the record; the kernel drops the lock
//! when that process dies, SIGKILL included, so no stale owner survives it.
//! Records are written through the held descriptor, so a process that has
//! used up its descriptors (EMFILE) still writes them.
//!
//! A process that does not own the record never writes or empties it. It
//! takes the record over only where the lock is free again and the file is
//! empty: the owner exited cleanly. A file with a record and no live owner
//! holds the last words of a process that died, and they stay.
//!
//! Who holds a lock or a listening port is found in `/proc` (`/proc/locks`,
//! `/proc/net/tcp{,6}` and `/proc/<pid>/fd`), with bounded reads, for a
//! message that names the process.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::file;

/// A process named by pid, with its command (`/proc/<pid>/comm`) where readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub command: Option<String>,
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.command {
            Some(c) => write!(f, "pid {} ({c})", self.pid),
            None => write!(f, "pid {}", self.pid),
        }
    }
}

/// Whether this process owns a last-words file, and who does where it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    pub owner: bool,
    /// The process holding the lock, where this one does not and `/proc/locks` names it.
    pub holder: Option<Process>,
}

/// A last-words file this process keeps open.
struct Held {
    path: PathBuf,
    /// [`UNOPENED`] while its directory is missing, [`NOT_HELD`] for a path
    /// that is not a regular file this process can open (counted, never used).
    fd: libc::c_int,
    dev: u64,
    ino: u64,
    owner: bool,
    /// Monitors naming it.
    users: usize,
    holder: Option<Process>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.fd >= 0 {
            // SAFETY: our own descriptor; closing it drops the lock.
            unsafe { libc::close(self.fd) };
        }
    }
}

/// Open `path` for writing without blocking (created with `create`) and
/// check it is a regular file: the descriptor and its device and inode.
fn open_regular(path: &Path, create: bool) -> Result<(libc::c_int, u64, u64), i32> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)?;
    let flags = libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: a valid NUL-terminated path; the descriptor is closed below or by Held.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            flags | if create { libc::O_CREAT } else { 0 },
            0o644,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    match fstat(fd) {
        Some(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => Ok((fd, st.st_dev, st.st_ino)),
        _ => {
            // SAFETY: our own descriptor.
            unsafe { libc::close(fd) };
            Err(libc::EINVAL)
        }
    }
}

static HELD: Mutex<Vec<Held>> = Mutex::new(Vec::new());

/// A held path without a descriptor yet: the first record creates the file.
const UNOPENED: libc::c_int = -1;
/// A path its monitors name but this process does not hold: each record
/// opens it itself. Kept so that every hold has its release.
const NOT_HELD: libc::c_int = -2;

fn held() -> MutexGuard<'static, Vec<Held>> {
    HELD.lock().unwrap_or_else(|p| p.into_inner())
}

fn try_lock(fd: libc::c_int) -> bool {
    loop {
        // SAFETY: a descriptor we own.
        if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return true;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}

fn fstat(fd: libc::c_int) -> Option<libc::stat> {
    // SAFETY: st is written by fstat on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st)
}

/// Open and lock `path` for a monitor starting now. `None` where it is not
/// a regular file this process can open for writing: then nothing is held
/// and each record opens the path itself (and says why it cannot). A path
/// whose directory has gone since it was checked is held without a
/// descriptor; the first record tries to create it.
pub fn hold(path: &Path) -> Option<Ownership> {
    let mut list = held();
    if let Some(h) = list.iter_mut().find(|h| h.path == path) {
        h.users += 1;
        return (h.fd != NOT_HELD).then(|| ownership_of(h));
    }
    let (fd, dev, ino) = match open_regular(path, true) {
        Ok(opened) => opened,
        Err(libc::ENOENT) => (UNOPENED, 0, 0),
        Err(_) => (NOT_HELD, 0, 0),
    };
    // The same file by another name (a symlink): one descriptor, or this
    // process's own lock would refuse it.
    if fd >= 0 {
        if let Some(h) = list
            .iter_mut()
            .find(|h| h.fd >= 0 && h.dev == dev && h.ino == ino)
        {
            // SAFETY: our own descriptor.
            unsafe { libc::close(fd) };
            h.users += 1;
            return Some(ownership_of(h));
        }
    }
    if fd == NOT_HELD {
        list.push(Held {
            path: path.to_path_buf(),
            fd,
            dev,
            ino,
            owner: false,
            users: 1,
            holder: None,
        });
        return None;
    }
    let owner = fd < 0 || try_lock(fd);
    let holder = if owner { None } else { lock_holder(dev, ino) };
    let h = Held {
        path: path.to_path_buf(),
        fd,
        dev,
        ino,
        owner,
        users: 1,
        holder,
    };
    let o = ownership_of(&h);
    list.push(h);
    Some(o)
}

fn ownership_of(h: &Held) -> Ownership {
    Ownership {
        owner: h.owner,
        holder: if h.owner { None } else { h.holder.clone() },
    }
}

/// A monitor naming `path` has stopped; the last one closes it (and drops the lock).
pub fn release(path: &Path) {
    let mut list = held();
    if let Some(i) = list.iter().position(|h| h.path == path) {
        list[i].users -= 1;
        if list[i].users == 0 {
            list.swap_remove(i);
        }
    }
}

/// Whether this process owns `path`, as held by its monitors (`None`: not held).
pub fn ownership(path: &Path) -> Option<Ownership> {
    held()
        .iter()
        .find(|h| h.path == path && h.fd != NOT_HELD)
        .map(ownership_of)
}

/// What a write to a held file may do.
pub enum Access {
    /// This process owns it: write through this descriptor.
    Owner(libc::c_int),
    /// Another process does (or did, and left its last words): the message says which.
    NotOwner(String),
}

/// Run `f` with the access this process has to `path`: `None` where it is
/// not held (the caller opens the path itself). A process that does not
/// own the file takes it over here only where its owner is gone and the file
/// is empty (a clean exit); a record left by a process that died stays.
pub fn with_access<R>(path: &Path, f: impl FnOnce(Access) -> R) -> Option<R> {
    let mut list = held();
    let h = list
        .iter_mut()
        .find(|h| h.path == path && h.fd != NOT_HELD)?;
    if h.fd == UNOPENED {
        // The first record: create the file, and own it only as a taker-over
        // would (another process may have created and locked it meanwhile).
        let (fd, dev, ino) = open_regular(path, true).ok()?;
        (h.fd, h.dev, h.ino, h.owner) = (fd, dev, ino, false);
    }
    if !h.owner && try_lock(h.fd) {
        if fstat(h.fd).is_some_and(|st| st.st_size == 0) {
            h.owner = true;
            h.holder = None;
        } else {
            // SAFETY: our own descriptor; the lock goes back unused.
            unsafe { libc::flock(h.fd, libc::LOCK_UN) };
            h.holder = None;
            return Some(f(Access::NotOwner(format!(
                "not written to {}: it holds the record of a process that has ended, and a process's last words are never overwritten by another",
                path.display()
            ))));
        }
    }
    if h.owner {
        return Some(f(Access::Owner(h.fd)));
    }
    if h.holder.is_none() {
        h.holder = lock_holder(h.dev, h.ino);
    }
    let who = h
        .holder
        .as_ref()
        .map_or_else(|| "another process".to_string(), |p| p.to_string());
    Some(f(Access::NotOwner(format!(
        "not written to {}: {who} owns it (the first monitor to open a last-words file owns its record; give each service its own path)",
        path.display()
    ))))
}

// ---------------------------------------------------------------------------
// Who holds it: /proc.

/// The program a process runs: the file name of its `argv[0]`
/// (`/proc/<pid>/cmdline`), else `/proc/<pid>/comm`, trimmed. Not comm
/// first: that is the main thread's name, which a program may set (Node 24
/// names its main thread `MainThread`).
pub fn command(pid: u32) -> Option<String> {
    let from_cmdline = file::read_text(Path::new(&format!("/proc/{pid}/cmdline")))
        .ok()
        .and_then(|t| program_name(&t));
    from_cmdline.or_else(|| {
        let text = file::read_text(Path::new(&format!("/proc/{pid}/comm"))).ok()?;
        let c = text.trim_end_matches('\n');
        (!c.is_empty()).then(|| c.chars().take(64).collect())
    })
}

/// The file name of the first NUL-separated field of a `cmdline`, at most 64
/// characters; None where it is empty.
fn program_name(cmdline: &str) -> Option<String> {
    let argv0 = cmdline.split('\0').next().unwrap_or("");
    let name = argv0.rsplit('/').next().unwrap_or("");
    (!name.is_empty()).then(|| name.chars().take(64).collect())
}

fn process(pid: u32) -> Process {
    Process {
        pid,
        command: command(pid),
    }
}

/// The process holding a `flock` on the file `dev`/`ino`, from `/proc/locks`.
fn lock_holder(dev: u64, ino: u64) -> Option<Process> {
    let text = file::read_text(Path::new("/proc/locks")).ok()?;
    let pid = locks_holder(
        &text,
        libc::major(dev as libc::dev_t) as u64,
        libc::minor(dev as libc::dev_t) as u64,
        ino,
    )?;
    Some(process(pid))
}

/// The pid holding a FLOCK on `major:minor:ino` in `/proc/locks` text
/// (`1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`; waiters, `1: -> FLOCK ...`, skipped).
pub fn locks_holder(text: &str, major: u64, minor: u64, ino: u64) -> Option<u32> {
    for line in text.lines() {
        let mut f = line.split_whitespace().skip(1);
        let kind = f.next()?;
        if kind != "FLOCK" {
            continue;
        }
        let (_, _, pid, id) = (f.next(), f.next(), f.next(), f.next());
        let (Some(pid), Some(id)) = (pid, id) else {
            continue;
        };
        let mut parts = id.split(':');
        let (Some(ma), Some(mi), Some(i)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let same = u64::from_str_radix(ma, 16).ok() == Some(major)
            && u64::from_str_radix(mi, 16).ok() == Some(minor)
            && i.parse::<u64>().ok() == Some(ino);
        if same {
            if let Ok(p) = pid.parse::<u32>() {
                if p > 0 {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// The socket inode listening on TCP `port` in `/proc/net/tcp`-format text.
pub fn listening_inode(text: &str, port: u16) -> Option<u64> {
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        if f.len() < 10 || f[3] != "0A" {
            continue;
        }
        let local_port = f[1]
            .rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok());
        if local_port == Some(port) {
            if let Ok(inode) = f[9].parse::<u64>() {
                if inode > 0 {
                    return Some(inode);
                }
            }
        }
    }
    None
}

/// At most this many processes and descriptors are looked at for a socket's owner.
const MAX_PIDS: usize = 4096;
const MAX_FDS: usize = 65536;

/// The process that holds the socket listening on TCP `port` (IPv4 or
/// IPv6) in this network namespace, where `/proc` shows it.
pub fn port_holder(port: u16) -> Option<Process> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|p| {
        let text = file::read_text(Path::new(p)).ok()?;
        listening_inode(&text, port)
    })?;
    let want = format!("socket:[{inode}]");
    let mut fds_seen = 0;
    let procs = std::fs::read_dir("/proc").ok()?;
    for entry in procs.flatten().take(MAX_PIDS * 2) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            fds_seen += 1;
            if fds_seen > MAX_FDS {
                return None;
            }
            if std::fs::read_link(fd.path())
                .is_ok_and(|l| l.as_os_str().as_bytes() == want.as_bytes())
            {
                return Some(process(pid));
            }
        }
    }
    None
}

/// The value of `name` in the initial environment of `pid` (`/proc/<pid>/environ`), where readable.
pub fn environ_value(pid: u32, name: &str) -> Option<String> {
    let mut buf = Vec::new();
    let path = PathBuf::from(format!("/proc/{pid}/environ"));
    let n = file::Checked::open(&path)
        .ok()?
        .read_to_end(&mut buf, &path)
        .ok()?;
    buf[..n].split(|&b| b == 0).find_map(|kv| {
        let rest = kv.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(rest).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_is_argv0s_file_name() {
        assert_eq!(
            program_name("/usr/local/bin/node\0server.js\0").as_deref(),
            Some("node")
        );
        assert_eq!(program_name("node\0").as_deref(), Some("node"));
        assert_eq!(program_name(""), None, "a kernel thread has no cmdline");
        assert_eq!(program_name("/\0"), None);
        assert_eq!(program_name(&"x".repeat(200)).map(|n| n.len()), Some(64));
    }

    #[test]
    fn locks_name_the_holder_of_this_file_only() {
        let text = "1: POSIX  ADVISORY  WRITE 77 08:01:1234 0 EOF\n\
                    2: FLOCK  ADVISORY  WRITE 88 08:01:999 0 EOF\n\
                    3: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF\n\
                    3: -> FLOCK  ADVISORY  WRITE 5 fd:01:1234 0 EOF\n\
                    garbage\n";
        assert_eq!(locks_holder(text, 0xfd, 1, 1234), Some(4242));
        assert_eq!(
            locks_holder(text, 8, 1, 1234),
            None,
            "a POSIX lock is not ours"
        );
        assert_eq!(locks_holder(text, 8, 1, 999), Some(88));
        assert_eq!(locks_holder("", 8, 1, 999), None);
    }

    #[test]
    fn the_listening_socket_of_a_port() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:24F8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:24F8 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 31338 1 0000000000000000 20 4 30 10 -1\n\
   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(
            listening_inode(text, 9464),
            Some(31337),
            "the LISTEN entry, not the connection"
        );
        assert_eq!(listening_inode(text, 8080), None, "inode 0: not visible");
        assert_eq!(listening_inode(text, 1), None);
    }

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("oomguard-owner-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn one_owner_per_file_and_a_dead_processs_record_stays() {
        let dir = temp("one");
        let path = dir.join("record");
        // Another owner: a descriptor of another open file description, locked.
        std::fs::write(&path, "").unwrap();
        let other = std::fs::File::open(&path).unwrap();
        use std::os::unix::io::AsRawFd;
        assert!(try_lock(other.as_raw_fd()));
        let o = hold(&path).unwrap();
        assert!(!o.owner);
        assert_eq!(
            o.holder.map(|p| p.pid),
            Some(std::process::id()),
            "/proc/locks names the holder"
        );
        let said = with_access(&path, |a| match a {
            Access::Owner(_) => String::new(),
            Access::NotOwner(m) => m,
        })
        .unwrap();
        assert!(said.contains("owns it"), "{said}");
        // The owner leaves a record and dies: the record stays.
        std::fs::write(&path, "{\"pid\":1}\n").unwrap();
        drop(other);
        let said = with_access(&path, |a| match a {
            Access::Owner(_) => String::new(),
            Access::NotOwner(m) => m,
        })
        .unwrap();
        assert!(said.contains("never overwritten"), "{said}");
        // The owner exited cleanly (the file empty): taken over.
        std::fs::write(&path, "").unwrap();
        assert!(with_access(&path, |a| matches!(a, Access::Owner(_))).unwrap());
        assert!(ownership(&path).unwrap().owner);
        // A second monitor of this process shares it; the last release closes it.
        assert!(hold(&path).unwrap().owner);
        release(&path);
        assert!(ownership(&path).is_some());
        release(&path);
        assert!(ownership(&path).is_none());
        assert!(hold(&dir).is_none(), "a directory is not held");
        assert!(ownership(&dir).is_none());
        assert!(with_access(&dir, |_| ()).is_none());
        // Its release is counted: it never closes a file held under the same path.
        release(&dir);
        assert!(held().iter().all(|h| h.path != dir));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_file_is_created_empty_at_start_and_owned() {
        let dir = temp("missing");
        let path = dir.join("record");
        assert!(hold(&path).unwrap().owner);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"",
            "created empty at start, so that it can be locked"
        );
        assert!(with_access(&path, |a| matches!(a, Access::Owner(_))).unwrap());
        release(&path);
        // A directory that has gone: held without a descriptor; a record cannot create it.
        let gone = dir.join("gone").join("record");
        assert!(hold(&gone).unwrap().owner);
        assert!(
            with_access(&gone, |_| ()).is_none(),
            "the caller opens the path itself and says why it cannot"
        );
        release(&gone);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
