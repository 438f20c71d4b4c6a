//! Kernel wake-ups for the sampler thread: something to `poll` besides the
//! clock. cgroup v1 signals an eventfd when usage crosses a registered value
//! (`cgroup.event_control`, needs write access); cgroup v2 modifies
//! `memory.events` on `high` and `max` breaches (inotify). Either only makes
//! the sampler look now; when registration is refused, the interval policy
//! alone does the work. A wake eventfd lets other threads interrupt the wait.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use crate::locate::{CgroupVersion, Location};

fn eventfd() -> Option<OwnedFd> {
    // SAFETY: plain syscall; the fd is owned on success.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

fn open(path: &Path, flags: libc::c_int) -> Option<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: c is a valid NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

fn write_all(fd: RawFd, bytes: &[u8]) -> bool {
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    n == bytes.len() as isize
}

/// A v1 usage threshold registration: the eventfd and the usage file it
/// watches. Closing the eventfd unregisters it.
struct UsageThreshold {
    event: OwnedFd,
    _usage: OwnedFd,
}

pub struct Triggers {
    wake: Option<OwnedFd>,
    usage: Vec<UsageThreshold>,
    inotify: Option<OwnedFd>,
}

impl Default for Triggers {
    fn default() -> Self {
        Triggers {
            wake: eventfd(),
            usage: Vec::new(),
            inotify: None,
        }
    }
}

impl Triggers {
    /// Drop every kernel registration (the wake fd stays).
    pub fn clear(&mut self) {
        self.usage.clear();
        self.inotify = None;
    }

    /// v1: ask the kernel to signal when usage crosses `bytes`. Silently does
    /// nothing where that is refused (no write access, v2, a fixture tree).
    pub fn add_usage_threshold(&mut self, loc: &Location, bytes: u64) {
        if loc.version != CgroupVersion::V1 {
            return;
        }
        let (Some(event), Some(usage), Some(control)) = (
            eventfd(),
            open(&loc.dir.join("memory.usage_in_bytes"), libc::O_RDONLY),
            open(&loc.dir.join("cgroup.event_control"), libc::O_WRONLY),
        ) else {
            return;
        };
        let line = format!("{} {} {}", event.as_raw_fd(), usage.as_raw_fd(), bytes);
        if write_all(control.as_raw_fd(), line.as_bytes()) {
            self.usage.push(UsageThreshold {
                event,
                _usage: usage,
            });
        }
    }

    /// v2: wake on changes to `memory.events` (the kernel notifies on high,
    /// max and oom events).
    pub fn add_events_watch(&mut self, loc: &Location) {
        if loc.version != CgroupVersion::V2 || self.inotify.is_some() {
            return;
        }
        let Ok(c) = CString::new(loc.dir.join("memory.events").as_os_str().as_bytes()) else {
            return;
        };
        // SAFETY: plain syscalls on fds we own.
        unsafe {
            let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
            if fd < 0 {
                return;
            }
            let owned = OwnedFd::from_raw_fd(fd);
            if libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_MODIFY) >= 0 {
                self.inotify = Some(owned);
            }
        }
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
        if self.inotify.is_some() {
            out.push("inotify memory.events".to_string());
        }
        out
    }

    pub fn poll_fds(&self) -> Vec<RawFd> {
        let mut fds: Vec<RawFd> = self.usage.iter().map(|u| u.event.as_raw_fd()).collect();
        fds.extend(self.wake.iter().map(|f| f.as_raw_fd()));
        fds.extend(self.inotify.iter().map(|f| f.as_raw_fd()));
        fds
    }

    /// Sleep until `timeout` passes or one of `fds` is readable.
    pub fn wait(fds: &[RawFd], timeout: Duration) {
        if fds.is_empty() {
            std::thread::sleep(timeout);
            return;
        }
        let mut pfds: Vec<libc::pollfd> = fds
            .iter()
            .map(|&fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // Round up so a sub-millisecond interval does not become a busy loop.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: pfds is a valid array of pollfd.
        unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    }

    /// Consume pending notifications so the next poll waits again.
    pub fn drain(&self) {
        let mut buf = [0u8; 512];
        for fd in self.poll_fds() {
            // SAFETY: nonblocking reads into a local buffer.
            unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        }
    }

    /// Interrupt a `wait` from another thread.
    pub fn wake(&self) {
        if let Some(fd) = &self.wake {
            write_all(fd.as_raw_fd(), &1u64.to_ne_bytes());
        }
    }
}
