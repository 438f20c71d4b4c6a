//! The sampler's own flight recorder, for the kill benchmark
//! (`benchmark/watch-kills.js`) and nothing else: with the internal
//! variable `OOMGUARD_SAMPLER_TRACE` naming an existing regular file of at
//! least 64 KiB, read once, the sampler thread maps it shared and writes one
//! 64-byte record per pass, step, wait and wake-up into it, as a ring. No
//! system call and no allocation per record: the pages were written (and
//! charged) by whoever made the file, so a process at its memory limit can
//! still record what its sampler did up to the kill.
//!
//! Layout (little-endian): bytes 0..8 the number of records written (u64);
//! records from byte 64, each `kind u32, level u32, wall_ms f64, ratio f64,
//! a f64, b f64, c f64, i1 i32, i2 i32, i3 i32, pad u32`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};

pub const PASS: u32 = 1;
pub const STEP: u32 = 2;
pub const WAIT: u32 = 3;
pub const WOKE: u32 = 4;

const RECORD: usize = 64;

struct Map {
    ptr: *mut u8,
    slots: usize,
}

// SAFETY: the mapping lives for the whole process; slots are claimed with an
// atomic counter, so no two writers share one.
unsafe impl Send for Map {}
unsafe impl Sync for Map {}

static MAP: once_cell::sync::Lazy<Option<Map>> = once_cell::sync::Lazy::new(|| {
    let path = std::env::var_os("OOMGUARD_SAMPLER_TRACE")?;
    let c = CString::new(path.as_bytes()).ok()?;
    // SAFETY: plain syscalls; the mapping is never unmapped.
    unsafe {
        let fd = libc::open(
            c.as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return None;
        }
        let mut st: libc::stat = std::mem::zeroed();
        let ok = libc::fstat(fd, &mut st) == 0
            && st.st_mode & libc::S_IFMT == libc::S_IFREG
            && st.st_size >= 65536;
        let len = st.st_size as usize;
        let p = if ok {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        } else {
            libc::MAP_FAILED
        };
        libc::close(fd);
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(Map {
            ptr: p.cast(),
            slots: (len - RECORD) / RECORD,
        })
    }
});

/// Is the trace on? (Checked once; false unless the variable names a usable file.)
pub fn enabled() -> bool {
    MAP.is_some()
}

/// One record. Does nothing when the trace is off.
#[allow(clippy::too_many_arguments)]
pub fn record(
    kind: u32,
    level: u32,
    wall_ms: f64,
    ratio: f64,
    a: f64,
    b: f64,
    c: f64,
    i: [i32; 3],
) {
    let Some(m) = MAP.as_ref() else { return };
    // SAFETY: the header is 8-aligned inside the mapping; each slot is
    // inside it and written by the claimer only.
    unsafe {
        let count = &*(m.ptr as *const AtomicU64);
        let n = count.fetch_add(1, Ordering::AcqRel) as usize;
        let at = m.ptr.add(RECORD + (n % m.slots) * RECORD);
        let mut rec = [0u8; RECORD];
        rec[0..4].copy_from_slice(&kind.to_le_bytes());
        rec[4..8].copy_from_slice(&level.to_le_bytes());
        for (k, v) in [wall_ms, ratio, a, b, c].into_iter().enumerate() {
            rec[8 + k * 8..16 + k * 8].copy_from_slice(&v.to_le_bytes());
        }
        for (k, v) in i.into_iter().enumerate() {
            rec[48 + k * 4..52 + k * 4].copy_from_slice(&v.to_le_bytes());
        }
        std::ptr::copy_nonoverlapping(rec.as_ptr(), at, RECORD);
    }
}
