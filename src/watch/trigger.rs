//! Kernel wake-ups for the sampler thread: something to `poll` besides the
//! clock. cgroup v1 signals an eventfd when usage crosses a registered value
//! (`cgroup.event_control`, needs write access); cgroup v2 modifies
//! `memory.events` on `high` and `max` breaches (inotify). Either only makes
//! the sampler look now; when registration is refused, the interval policy
//! alone does the work. The sampler thread owns its `Triggers` alone:
//! registering can block in the kernel, and no other thread waits on that.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::locate::{CgroupVersion, Location};

fn eventfd() -> Option<OwnedFd> {
    // SAFETY: plain syscall; the fd is owned on success.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Open a cgroup file without blocking (a FIFO planted in a root opens at
/// once or fails), and only when it is on a cgroup filesystem: a trigger is
/// registered by writing to `cgroup.event_control`, and a root's regular
/// file or symlink must never receive that write.
fn open(path: &Path, flags: libc::c_int) -> Option<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: c is a valid NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            flags | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY,
        )
    };
    let fd = (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })?;
    crate::file::on_kernel_fs(fd.as_raw_fd()).then_some(fd)
}

fn write_all(fd: RawFd, bytes: &[u8]) -> bool {
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    n == bytes.len() as isize
}

/// v1: ask the kernel to signal an eventfd when usage crosses `bytes`.
fn register_usage_threshold(loc: &Location, bytes: u64) -> Option<UsageThreshold> {
    if loc.version != CgroupVersion::V1 {
        return None;
    }
    let event = eventfd()?;
    let usage = open(&loc.dir.join("memory.usage_in_bytes"), libc::O_RDONLY)?;
    let control = open(&loc.dir.join("cgroup.event_control"), libc::O_WRONLY)?;
    let line = format!("{} {} {}", event.as_raw_fd(), usage.as_raw_fd(), bytes);
    write_all(control.as_raw_fd(), line.as_bytes()).then_some(UsageThreshold {
        event,
        _usage: usage,
    })
}

/// v2: an inotify instance that wakes on changes to `memory.events` of the
/// cgroup and each ancestor up to the mount point: the kernel records high
/// and max events on the cgroup whose limit was hit, which may be a parent.
fn watch_events(loc: &Location) -> Option<OwnedFd> {
    if loc.version != CgroupVersion::V2 {
        return None;
    }
    // SAFETY: plain syscalls on an fd we own.
    unsafe {
        let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let owned = OwnedFd::from_raw_fd(fd);
        let mut watched = 0;
        for dir in loc.ancestry() {
            let Ok(c) = CString::new(dir.join("memory.events").as_os_str().as_bytes()) else {
                continue;
            };
            if libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_MODIFY) >= 0 {
                watched += 1;
            }
        }
        (watched > 0).then_some(owned)
    }
}

/// A v1 usage threshold registration: the eventfd and the usage file it
/// watches. Closing the eventfd unregisters it.
struct UsageThreshold {
    event: OwnedFd,
    _usage: OwnedFd,
}

#[derive(Default)]
pub struct Triggers {
    /// (cgroup dir, bytes) -> registration
    usage: HashMap<(PathBuf, u64), UsageThreshold>,
    /// cgroup dir -> inotify instance watching its memory.events
    inotify: HashMap<PathBuf, OwnedFd>,
}

impl Triggers {
    /// Make the registrations exactly `usage` (v1 usage thresholds) and
    /// `events` (v2 `memory.events` watches): keep those already in force,
    /// drop the rest, add the new ones. What the kernel refuses (no write
    /// access, a fixture tree) is silently left out.
    pub fn set(&mut self, usage: &[(Location, u64)], events: &[Location]) {
        self.usage
            .retain(|(dir, bytes), _| usage.iter().any(|(l, b)| l.dir == *dir && b == bytes));
        for (loc, bytes) in usage {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                self.usage.entry((loc.dir.clone(), *bytes))
            {
                if let Some(reg) = register_usage_threshold(loc, *bytes) {
                    slot.insert(reg);
                }
            }
        }
        self.inotify
            .retain(|dir, _| events.iter().any(|l| l.dir == *dir));
        for loc in events {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                self.inotify.entry(loc.dir.clone())
            {
                if let Some(fd) = watch_events(loc) {
                    slot.insert(fd);
                }
            }
        }
    }

    /// Is a v1 usage trigger registered for `dir` at `bytes`?
    pub fn has_usage_threshold(&self, dir: &Path, bytes: u64) -> bool {
        self.usage.contains_key(&(dir.to_path_buf(), bytes))
    }

    /// Names of the wake-ups in force, for reports and tests.
    pub fn kinds(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.usage.is_empty() {
            out.push(format!(
                "cgroup.event_control ({} thresholds)",
                self.usage.len()
            ));
        }
        if !self.inotify.is_empty() {
            out.push(format!(
                "inotify memory.events ({} cgroups)",
                self.inotify.len()
            ));
        }
        out
    }

    /// The fds to poll. `with_events`: include the v2 `memory.events`
    /// watches (left out for a while after one fired: a cgroup full of page
    /// cache hits `max` constantly, which says nothing new).
    pub fn poll_fds(&self, with_events: bool) -> Vec<RawFd> {
        let mut fds = Vec::new();
        self.poll_fds_into(with_events, &mut fds);
        fds
    }

    /// [`Triggers::poll_fds`] into `fds` (cleared first): the sampler
    /// reuses one vector, no allocation per pass.
    pub fn poll_fds_into(&self, with_events: bool, fds: &mut Vec<RawFd>) {
        fds.clear();
        fds.extend(self.usage.values().map(|u| u.event.as_raw_fd()));
        if with_events {
            fds.extend(self.inotify.values().map(|f| f.as_raw_fd()));
        }
    }

    /// Sleep until `timeout` passes or one of `fds` is readable. Returns
    /// whether any may be readable: false only when the time ran out with
    /// none ready (nothing to read or drain then: a read would be one
    /// syscall per pass for nothing).
    pub fn wait(fds: &[RawFd], timeout: Duration) -> bool {
        if fds.is_empty() {
            std::thread::sleep(timeout);
            return false;
        }
        let pollfd = |fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // On the stack for the usual few fds (no allocation per pass).
        const ON_STACK: usize = 8;
        let mut small = [pollfd(-1); ON_STACK];
        let mut large: Vec<libc::pollfd>;
        let pfds: &mut [libc::pollfd] = if fds.len() <= ON_STACK {
            for (p, &fd) in small.iter_mut().zip(fds) {
                *p = pollfd(fd);
            }
            &mut small[..fds.len()]
        } else {
            large = fds.iter().map(|&fd| pollfd(fd)).collect();
            &mut large
        };
        // ppoll: the interval to the nanosecond. poll's milliseconds, rounded
        // up, made every wake-up up to 1 ms late, and at 2 GiB/s the gap
        // between two thresholds 5% apart of a 256 MiB limit is 6 ms.
        // tv_sec's type is inferred (`as _`): naming libc::time_t is
        // deprecated on musl, where it is to become 64-bit on 32-bit targets.
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i32::MAX as u64) as _,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: pfds is a valid array of pollfd, ts a valid timespec.
        let n = unsafe {
            libc::ppoll(
                pfds.as_mut_ptr(),
                pfds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        // An error (EINTR) counts as ready: reading is always safe.
        n != 0
    }

    /// Consume pending notifications so the next poll waits again. Returns
    /// true when a `memory.events` watch had fired.
    pub fn drain(&self) -> bool {
        let mut buf = [0u8; 512];
        for u in self.usage.values() {
            // SAFETY: nonblocking reads into a local buffer.
            unsafe { libc::read(u.event.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        }
        let mut events = false;
        for fd in self.inotify.values() {
            // SAFETY: as above.
            events |= unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0;
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::Instant;

    /// A scratch cgroup directory under the temporary directory, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let d = std::env::temp_dir()
                .join(format!("oomguard-trigger-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(d.join("app")).unwrap();
            Dir(d)
        }

        fn location(&self, version: CgroupVersion) -> Location {
            Location {
                version,
                cgroup_path: "/app".into(),
                mount_point: self.0.clone(),
                dir: self.0.join("app"),
                resolved: true,
            }
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn v2_memory_events_changes_wake_the_poll() {
        let d = Dir::new("v2");
        let events = d.0.join("app/memory.events");
        fs::write(&events, "max 0\n").unwrap();
        let loc = d.location(CgroupVersion::V2);
        let mut t = Triggers::default();
        t.set(&[], std::slice::from_ref(&loc));
        assert_eq!(t.kinds(), vec!["inotify memory.events (1 cgroups)"]);
        assert!(t.poll_fds(false).is_empty(), "events left out on request");
        let fds = t.poll_fds(true);
        assert_eq!(fds.len(), 1);
        assert!(!t.drain(), "nothing fired yet");

        assert!(
            !Triggers::wait(&fds, Duration::from_millis(20)),
            "the time ran out, nothing ready"
        );
        fs::write(&events, "max 1\n").unwrap();
        let start = Instant::now();
        assert!(Triggers::wait(&fds, Duration::from_secs(10)), "ready");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "woken by the change"
        );
        assert!(t.drain(), "the watch fired");
        assert!(!t.drain(), "drained");

        // Dropped when no longer asked for.
        t.set(&[], &[]);
        assert!(t.kinds().is_empty());
        assert!(t.poll_fds(true).is_empty());
    }

    #[test]
    fn wait_without_fds_sleeps_the_timeout() {
        let start = Instant::now();
        assert!(!Triggers::wait(&[], Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn v1_thresholds_are_never_written_outside_cgroupfs() {
        let d = Dir::new("v1");
        let control = d.0.join("app/cgroup.event_control");
        fs::write(&control, "").unwrap();
        fs::write(d.0.join("app/memory.usage_in_bytes"), "100\n").unwrap();
        let loc = d.location(CgroupVersion::V1);
        let mut t = Triggers::default();
        t.set(&[(loc.clone(), 4096)], &[]);
        assert!(!t.has_usage_threshold(&loc.dir, 4096));
        assert!(t.kinds().is_empty());
        assert_eq!(fs::read_to_string(&control).unwrap(), "", "nothing written");

        // A FIFO without a reader in place of cgroup.event_control: no wait.
        fs::remove_file(&control).unwrap();
        let c = CString::new(control.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut t = Triggers::default();
            t.set(&[(loc.clone(), 4096)], &[]);
            tx.send(t.has_usage_threshold(&loc.dir, 4096)).unwrap();
        });
        let registered = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("set() returned at once");
        assert!(!registered);
    }

    #[test]
    fn versions_only_get_their_own_kind() {
        let d = Dir::new("kinds");
        fs::write(d.0.join("app/memory.events"), "max 0\n").unwrap();
        let mut t = Triggers::default();
        // A v1 location gets no inotify watch, a v2 one no usage threshold.
        t.set(
            &[(d.location(CgroupVersion::V2), 10)],
            &[d.location(CgroupVersion::V1)],
        );
        assert!(t.kinds().is_empty());
    }
}
