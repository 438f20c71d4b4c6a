//! Writing, without ever blocking.

use super::*;

fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Write all of `bytes`: at the file offset `at` onwards (`pwrite`), or at
/// the descriptor's position (`write`, for stderr) when `at` is None.
fn write_all_at(fd: libc::c_int, bytes: &[u8], at: Option<u64>) -> std::io::Result<()> {
    let mut off = 0;
    while off < bytes.len() {
        let rest = &bytes[off..];
        // SAFETY: the slice is valid for its length.
        let n = unsafe {
            match at {
                Some(base) => libc::pwrite(
                    fd,
                    rest.as_ptr().cast(),
                    rest.len(),
                    (base + off as u64) as libc::off_t,
                ),
                None => libc::write(fd, rest.as_ptr().cast(), rest.len()),
            }
        };
        if n < 0 {
            let e = last_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        off += n as usize;
    }
    Ok(())
}

/// A write that failed: the errno (0 when none applies) and what to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteError {
    pub errno: i32,
    pub message: String,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Write a line to stderr if it can take it now: never blocks on a full pipe.
pub fn write_stderr(line: &str) -> bool {
    let mut p = libc::pollfd {
        fd: 2,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    let ready = unsafe { libc::poll(&mut p, 1, 0) } == 1 && p.revents & libc::POLLOUT != 0;
    // A free pipe buffer slot is a page: a line under MAX_LINE fits whole.
    ready && line.len() < MAX_LINE && write_all_at(2, line.as_bytes(), None).is_ok()
}

/// An fd closed on drop.
struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: our own descriptor.
        unsafe { libc::close(self.0) };
    }
}

fn open_nonblocking(path: &Path, flags: libc::c_int) -> std::io::Result<(Fd, libc::stat)> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path contains NUL")
    })?;
    // SAFETY: a valid NUL-terminated path; the fd is owned by Fd.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            flags | libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY,
            0o644,
        )
    };
    if fd < 0 {
        return Err(last_error());
    }
    let fd = Fd(fd);
    // SAFETY: st is written by fstat on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.0, &mut st) } != 0 {
        return Err(last_error());
    }
    Ok((fd, st))
}

fn is_regular(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFREG
}

fn describe(path: &Path, what: &str, e: std::io::Error) -> WriteError {
    let errno = e.raw_os_error().unwrap_or(0);
    let hint = match e.raw_os_error() {
        Some(libc::ENXIO) => " (a FIFO without a reader?)",
        Some(libc::EAGAIN) => " (it would block)",
        Some(libc::ENOENT) => " (its directory does not exist)",
        Some(libc::EISDIR) => " (it is a directory)",
        _ => "",
    };
    WriteError {
        errno,
        message: format!("{what} {}: {e}{hint}", path.display()),
    }
}

/// Replace the file's content with `line` (one JSON object on one line
/// ending in `\n`, shorter than [`MAX_BYTES`]). A regular file is rewritten
/// in place by one `pwrite` at offset 0 of at most one page, never
/// truncated first: when the new record is shorter than what the file
/// holds, spaces before its closing brace make up the difference (JSON
/// allows them), so the file is one complete record at every instant. That
/// matters at the limit: there, the write itself can be what makes the
/// kernel kill the process (its page has to be charged to the full cgroup),
/// and a kill between a truncation and the write would leave an empty file.
/// Only a file longer than a page (not ours) is cut to the page once.
/// Anything else (a FIFO, a device) gets a plain write.
///
/// A file this process's monitors hold (src/watch/owner.rs) is written through
/// their descriptor, and only by the process that owns its record.
pub fn write_file(path: &Path, line: &str) -> Result<(), WriteError> {
    if let Some(r) = owner::with_access(path, |a| match a {
        Access::Owner(fd) => {
            // SAFETY: st is written by fstat on success.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            if unsafe { libc::fstat(fd, &mut st) } != 0 {
                return Err(describe(path, "cannot write", last_error()));
            }
            write_at(fd, &st, path, line)
        }
        Access::NotOwner(message) => Err(WriteError {
            errno: libc::EWOULDBLOCK,
            message,
        }),
    }) {
        return r;
    }
    let (fd, st) =
        open_nonblocking(path, libc::O_CREAT).map_err(|e| describe(path, "cannot open", e))?;
    write_at(fd.0, &st, path, line)
}

/// [`write_file`]'s write, to an open descriptor of `path` whose `fstat` is `st`.
fn write_at(fd: libc::c_int, st: &libc::stat, path: &Path, line: &str) -> Result<(), WriteError> {
    if !is_regular(st) {
        return write_all_at(fd, line.as_bytes(), None)
            .map_err(|e| describe(path, "cannot write", e));
    }
    let body = line.trim_end_matches('\n');
    let (head, close) = match body.strip_suffix('}') {
        Some(h) => (h, "}"),
        None => (body, ""),
    };
    let size = st.st_size.max(0) as usize;
    let len = (body.len() + 1).min(MAX_BYTES);
    let total = len.max(size.min(MAX_BYTES));
    let mut buf = [b' '; MAX_BYTES];
    let keep = head.len().min(total - 1 - close.len());
    buf[..keep].copy_from_slice(&head.as_bytes()[..keep]);
    buf[total - 1 - close.len()..total - 1].copy_from_slice(close.as_bytes());
    buf[total - 1] = b'\n';
    write_all_at(fd, &buf[..total], Some(0)).map_err(|e| describe(path, "cannot write", e))?;
    if size > MAX_BYTES {
        // SAFETY: our own descriptor. A failure leaves a whole record in the first page.
        unsafe { libc::ftruncate(fd, total as libc::off_t) };
    }
    Ok(())
}

/// Empty the file (a clean shutdown below every threshold). Only regular
/// files; a missing one is fine.
pub fn empty_file(path: &Path) -> Result<(), WriteError> {
    // A held file: only its owner empties it, through its descriptor.
    if let Some(r) = owner::with_access(path, |a| match a {
        // SAFETY: the owner's descriptor, open while the registry is locked.
        Access::Owner(fd) if unsafe { libc::ftruncate(fd, 0) } != 0 => {
            Err(describe(path, "cannot empty", last_error()))
        }
        _ => Ok(()),
    }) {
        return r;
    }
    match open_nonblocking(path, 0) {
        Ok((fd, st)) => {
            // SAFETY: our own descriptor.
            if is_regular(&st) && st.st_size > 0 && unsafe { libc::ftruncate(fd.0, 0) } != 0 {
                return Err(describe(path, "cannot empty", last_error()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(describe(path, "cannot open", e)),
    }
}
