//! Opening and reading kernel files so that nothing a root holds can hang,
//! exhaust or redirect the reader. Every file is opened with
//! `O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY` (a FIFO opens at once
//! instead of waiting for a writer), checked once with `fstat` and `fstatfs`
//! (only regular files are read: a FIFO, device, socket or directory in place
//! of a kernel file is refused), and read into a buffer that never grows past
//! [`MAX_BYTES`] + 1: a longer file is malformed, not a reason to allocate.
//! The checks happen once per open; each later read is one `pread`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use crate::error::{Error, ParseError, Result};
use crate::guard;

/// The most a kernel memory file may hold. `memory.stat` is about 3 KiB,
/// `/proc/self/mountinfo` a few KiB even on busy hosts.
pub const MAX_BYTES: usize = 64 * 1024;

/// The buffer a reader starts with; it doubles up to [`MAX_BYTES`] + 1 for
/// a longer file and stays at that size.
const START_BYTES: usize = 16 * 1024;

/// Filesystems whose files are the kernel's own text (seq_file): a short
/// read is the end of the file, and `st_size` means nothing.
const KERNEL_FS: &[i64] = &[
    0x9fa0,      // PROC_SUPER_MAGIC
    0x0027_e0eb, // CGROUP_SUPER_MAGIC
    0x6367_7270, // CGROUP2_SUPER_MAGIC
    0x6265_6572, // SYSFS_MAGIC
];

/// Kernel files printed record by record (a seq_file iterator): one read
/// returns at most about a page, so a short read is not the end of them.
/// Every other kernel file oomguard reads is printed in one go.
const PRINTED_BY_RECORD: &[&str] = &[
    "cgroup.procs",
    "cgroup.threads",
    "tasks",
    "mountinfo",
    "maps",
];

/// An open, checked file.
#[derive(Debug)]
pub struct Checked {
    file: File,
    /// On procfs, cgroupfs or sysfs.
    kernel: bool,
    /// A short read is the end of the file (a one-go kernel file).
    short_is_end: bool,
}

fn kind_of(ft: std::fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Is the open descriptor on procfs, cgroupfs (v1 or v2) or sysfs?
pub fn on_kernel_fs(fd: RawFd) -> bool {
    // SAFETY: fstatfs writes into the zeroed struct we own; a bad fd is an error return.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::fstatfs(fd, &mut fs) };
    rc == 0 && KERNEL_FS.contains(&(fs.f_type as i64))
}

fn too_long(path: &Path) -> Error {
    Error::parse(
        path,
        ParseError::new(
            0,
            format!("longer than {MAX_BYTES} bytes: not a kernel memory file"),
        ),
    )
}

impl Checked {
    /// Open `path` without blocking and refuse anything but a regular file.
    pub fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            // The kernel's own words, as a read(2) of it would say.
            return Err(Error::io(path, io::Error::from_raw_os_error(libc::EISDIR)));
        }
        if !ft.is_file() {
            return Err(Error::refused(
                path,
                format!("{}, not a regular file", kind_of(ft)),
            ));
        }
        let kernel = on_kernel_fs(file.as_raw_fd());
        if !kernel && meta.len() > MAX_BYTES as u64 {
            return Err(too_long(path));
        }
        let by_record = path
            .file_name()
            .is_some_and(|n| PRINTED_BY_RECORD.iter().any(|r| n == *r));
        Ok(Checked {
            file,
            kernel,
            short_is_end: kernel && !by_record,
        })
    }

    /// Read the whole file from offset 0 into `buf`; returns the length.
    /// For the files the kernel prints in one go (the memory controller's
    /// files, `statm`, `meminfo`, PSI) a short read is the end, which saves
    /// a second syscall; the others ([`PRINTED_BY_RECORD`], ordinary files)
    /// are read until a read returns 0. More than [`MAX_BYTES`] is an error
    /// naming `path`; `buf` never grows past [`MAX_BYTES`] + 1.
    pub fn read(&self, buf: &mut Vec<u8>, path: &Path) -> Result<usize> {
        self.read_from_start(buf, path, self.short_is_end)
    }

    /// [`Checked::read`], always until a read returns 0.
    pub fn read_to_end(&self, buf: &mut Vec<u8>, path: &Path) -> Result<usize> {
        self.read_from_start(buf, path, false)
    }

    fn read_from_start(&self, buf: &mut Vec<u8>, path: &Path, short_is_end: bool) -> Result<usize> {
        if !self.kernel {
            // A removed kernel file fails to read; a removed ordinary file
            // (a fixture tree's) would go on reading its old text: say it
            // is gone instead, so the reader looks again.
            let meta = self.file.metadata().map_err(|e| Error::io(path, e))?;
            if meta.nlink() == 0 {
                return Err(Error::io(path, io::ErrorKind::NotFound.into()));
            }
        }
        if buf.len() < START_BYTES {
            buf.resize(START_BYTES, 0);
        }
        let mut n = 0;
        loop {
            if n == buf.len() {
                if n > MAX_BYTES {
                    return Err(too_long(path));
                }
                buf.resize((n * 2).min(MAX_BYTES + 1), 0);
            }
            match self.file.read_at(&mut buf[n..], n as u64) {
                Ok(0) => break,
                Ok(k) if short_is_end && n + k < buf.len() => {
                    n += k;
                    break;
                }
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        if n > MAX_BYTES {
            return Err(too_long(path));
        }
        Ok(n)
    }
}

/// Open, check and read `path` once, as text.
pub fn read_text(path: &Path) -> Result<String> {
    let mut buf = Vec::new();
    let n = Checked::open(path)?.read_to_end(&mut buf, path)?;
    buf.truncate(n);
    String::from_utf8(buf)
        .map_err(|e| Error::parse(path, ParseError::new(0, format!("not UTF-8: {e}"))))
}

/// A file kept open for repeated `pread`s. Opening checks it once
/// ([`Checked::open`]: non-blocking, regular files only); each read is one
/// bounded `pread` on the kept descriptor.
#[derive(Debug)]
pub struct OpenFile {
    path: PathBuf,
    file: Option<Checked>,
    /// The file did not exist when first opened. It is not looked for again
    /// (an absent controller file stays absent); relocating builds new
    /// `OpenFile`s, which look again.
    missing: bool,
}

impl OpenFile {
    pub fn new(path: PathBuf) -> Self {
        OpenFile {
            path,
            file: None,
            missing: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read the whole file into `buf` and return it as text. Opens the file
    /// on first use; if a read on an open descriptor fails (the cgroup was
    /// removed, for example), opens it again once.
    pub fn read<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<&'b str> {
        let n = match &self.file {
            Some(f) => match f.read(buf, &self.path) {
                Ok(n) => n,
                Err(Error::Io { .. }) => {
                    self.file = None;
                    return self.read_fresh(buf);
                }
                Err(e) => return Err(e),
            },
            None => return self.read_fresh(buf),
        };
        self.text(buf, n)
    }

    fn read_fresh<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<&'b str> {
        if self.missing {
            return Err(Error::io(&self.path, io::ErrorKind::NotFound.into()));
        }
        let file = Checked::open(&self.path).inspect_err(|e| {
            self.missing = e.is_not_found();
        })?;
        let n = file.read(buf, &self.path)?;
        self.file = Some(file);
        self.text(buf, n)
    }

    fn text<'b>(&self, buf: &'b [u8], n: usize) -> Result<&'b str> {
        std::str::from_utf8(&buf[..n])
            .map_err(|e| Error::parse(&self.path, ParseError::new(0, format!("not UTF-8: {e}"))))
    }

    /// Read and parse; parse errors name this file. A panic in the parser
    /// (a bug) is caught here and is this file's error: only the values from
    /// this file are lost.
    pub fn parse<T>(
        &mut self,
        buf: &mut Vec<u8>,
        f: impl FnOnce(&str) -> std::result::Result<T, ParseError>,
    ) -> Result<T> {
        let text = self.read(buf)?;
        let path = &self.path;
        match guard::catch("parsing", || {
            guard::failpoint(|| {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                format!("parse:{name}")
            });
            f(text)
        }) {
            Ok(r) => r.map_err(|e| Error::parse(path, e)),
            Err(panic) => Err(Error::Bug {
                path: path.clone(),
                panic,
            }),
        }
    }

    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }
}

/// The page size, for page counts the kernel gives (`statm`).
pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
}
