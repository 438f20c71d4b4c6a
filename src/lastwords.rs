//! Last words: one JSON line, written by the sampler thread itself when the
//! highest threshold is crossed, so that it exists even if the kernel's
//! SIGKILL comes a few milliseconds later and the JavaScript thread is busy.
//! It goes to stderr and, when asked, to a file (Kubernetes'
//! `terminationMessagePath`, read up to 4096 bytes; the file holds only the
//! latest record, and a record always fits).

use std::ffi::CString;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;

use crate::reader::Snapshot;
use crate::watch::{LastWordsConfig, V8Known};

/// Kubernetes reads at most this much of a termination message file.
pub const MAX_BYTES: usize = 4096;

/// The likeliest cause of the growth, from the breakdown and V8's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    V8Heap,
    OutsideHeap,
    PageCache,
    Kernel,
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::V8Heap => "v8-heap",
            Verdict::OutsideHeap => "outside-heap",
            Verdict::PageCache => "page-cache",
            Verdict::Kernel => "kernel",
            Verdict::Unknown => "unknown",
        }
    }
}

/// Decide the verdict and say why, in one sentence.
pub fn verdict(snap: &Snapshot, basis: f64, v8: Option<V8Known>) -> (Verdict, String) {
    let Some(s) = snap.stat.as_ref() else {
        return (Verdict::Unknown, "memory.stat could not be read".into());
    };
    let mib = |b: f64| format!("{:.0} MiB", b / 1048576.0);
    let g = |v: Option<u64>| v.unwrap_or(0) as f64;
    let basis = basis.max(1.0);
    let kernel = g(s.kernel) + g(s.sock);
    let shmem = g(s.shmem);
    // Page cache the working set still counts: tmpfs/shmem and active file pages.
    let cache = shmem + (g(s.file) - shmem - g(s.inactive_file)).max(0.0);
    let anon = g(s.anon);
    if kernel >= 0.4 * basis {
        return (
            Verdict::Kernel,
            format!(
                "kernel memory ({}, sockets included) is {:.0}% of the working set",
                mib(kernel),
                100.0 * kernel / basis
            ),
        );
    }
    if cache >= 0.5 * basis {
        return (
            Verdict::PageCache,
            format!(
                "page cache that cannot be dropped (tmpfs/shmem {}, active file {}) is {:.0}% of the working set",
                mib(shmem),
                mib(cache - shmem),
                100.0 * cache / basis
            ),
        );
    }
    match v8.and_then(|v| v.heap_total) {
        Some(heap) if heap >= 0.5 * anon => (
            Verdict::V8Heap,
            format!("the V8 heap ({}) is most of the anonymous memory ({})", mib(heap), mib(anon)),
        ),
        Some(heap) => (
            Verdict::OutsideHeap,
            format!(
                "anonymous memory ({}) is mostly outside the V8 heap ({}): Buffers, ArrayBuffers, native allocations",
                mib(anon),
                mib(heap)
            ),
        ),
        None => (
            Verdict::Unknown,
            format!("anonymous memory is {}; no V8 numbers were known", mib(anon)),
        ),
    }
}

fn num(out: &mut String, v: Option<f64>) {
    match v {
        Some(v) if v.is_finite() => {
            if v.fract() == 0.0 && v.abs() < 9.0e15 {
                let _ = write!(out, "{}", v as i64);
            } else {
                let _ = write!(out, "{v:.4}");
            }
        }
        _ => out.push_str("null"),
    }
}

fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// UTC time as RFC 3339 with milliseconds, from Unix milliseconds.
pub fn iso_time(ms: f64) -> String {
    let ms = ms.max(0.0) as i64;
    let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Build the record: one line of JSON with a stable shape.
#[allow(clippy::too_many_arguments)]
pub fn record(
    snap: &Snapshot,
    basis: f64,
    ratio: f64,
    threshold: f64,
    growth: f64,
    time_to_limit_ms: Option<f64>,
    v8: Option<V8Known>,
    now_ms: f64,
) -> String {
    let f = |v: Option<u64>| v.map(|v| v as f64);
    let mut o = String::with_capacity(1024);
    o.push_str("{\"oomguard\":\"last-words\",\"version\":1,\"time\":");
    string(&mut o, &iso_time(now_ms));
    let _ = write!(o, ",\"pid\":{}", std::process::id());
    o.push_str(",\"source\":");
    match snap.limit() {
        Some((_, s)) => string(&mut o, s.as_str()),
        None => o.push_str("null"),
    }
    o.push_str(",\"cgroup\":");
    match &snap.location {
        Some(l) => string(&mut o, &l.cgroup_path),
        None => o.push_str("null"),
    }
    o.push_str(",\"limitBytes\":");
    num(&mut o, snap.limit().map(|(l, _)| l as f64));
    o.push_str(",\"usageBytes\":");
    num(&mut o, f(snap.usage));
    o.push_str(",\"workingSetBytes\":");
    num(&mut o, f(snap.working_set));
    o.push_str(",\"basisBytes\":");
    num(&mut o, Some(basis));
    o.push_str(",\"ratio\":");
    num(&mut o, Some(ratio));
    o.push_str(",\"threshold\":");
    num(&mut o, Some(threshold));
    o.push_str(",\"growthBytesPerSec\":");
    num(&mut o, Some(growth.round()));
    o.push_str(",\"timeToLimitMs\":");
    num(&mut o, time_to_limit_ms.map(f64::round));
    o.push_str(",\"breakdown\":");
    match &snap.stat {
        Some(s) => {
            for (i, (k, v)) in [
                ("anon", s.anon),
                ("file", s.file),
                ("shmem", s.shmem),
                ("kernel", s.kernel),
                ("sock", s.sock),
                ("slab", s.slab),
            ]
            .into_iter()
            .enumerate()
            {
                o.push_str(if i == 0 { "{\"" } else { ",\"" });
                o.push_str(k);
                o.push_str("\":");
                num(&mut o, f(v));
            }
            o.push('}');
        }
        None => o.push_str("null"),
    }
    o.push_str(",\"v8\":");
    match v8 {
        Some(v) => {
            o.push_str("{\"heapUsedBytes\":");
            num(&mut o, v.heap_used);
            o.push_str(",\"heapTotalBytes\":");
            num(&mut o, v.heap_total);
            o.push_str(",\"externalBytes\":");
            num(&mut o, v.external);
            o.push_str(",\"arrayBuffersBytes\":");
            num(&mut o, v.array_buffers);
            o.push_str(",\"heapSizeLimitBytes\":");
            num(&mut o, v.heap_size_limit);
            o.push_str(",\"ageMs\":");
            num(&mut o, Some((now_ms - v.timestamp_ms).max(0.0).round()));
            o.push('}');
        }
        None => o.push_str("null"),
    }
    let (verdict, reason) = verdict(snap, basis, v8);
    o.push_str(",\"verdict\":");
    string(&mut o, verdict.as_str());
    o.push_str(",\"reason\":");
    string(&mut o, &reason);
    o.push_str("}\n");
    if o.len() > MAX_BYTES {
        // Never happens with kernel-sized numbers; keep the promise anyway.
        o.truncate(MAX_BYTES - 1);
        o.push('\n');
    }
    o
}

fn write_fd(fd: libc::c_int, bytes: &[u8]) -> bool {
    let mut off = 0;
    while off < bytes.len() {
        // SAFETY: the slice is valid for its length.
        let n = unsafe { libc::write(fd, bytes[off..].as_ptr().cast(), bytes.len() - off) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        off += n as usize;
    }
    true
}

/// Write the record where the config says; returns where it went (for the
/// JS event), e.g. `["stderr", "/dev/termination-log"]`.
pub fn write(line: &str, cfg: &LastWordsConfig) -> Vec<String> {
    let mut went = Vec::new();
    if cfg.stderr && write_fd(2, line.as_bytes()) {
        went.push("stderr".to_string());
    }
    if let Some(path) = &cfg.path {
        if let Ok(c) = CString::new(path.as_os_str().as_bytes()) {
            // SAFETY: plain syscalls on a valid path and our own fd.
            unsafe {
                let fd = libc::open(
                    c.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                    0o644,
                );
                if fd >= 0 {
                    if write_fd(fd, line.as_bytes()) {
                        went.push(path.display().to_string());
                    }
                    libc::close(fd);
                }
            }
        }
    }
    went
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stat::MemoryStat;

    fn snap(anon: u64, file: u64, inactive_file: u64, shmem: u64, kernel: u64) -> Snapshot {
        Snapshot {
            usage: Some(anon + file + kernel),
            working_set: Some(anon + file + kernel - inactive_file),
            stat: Some(MemoryStat {
                anon: Some(anon),
                file: Some(file),
                inactive_file: Some(inactive_file),
                shmem: Some(shmem),
                kernel: Some(kernel),
                sock: Some(0),
                ..MemoryStat::default()
            }),
            ..Snapshot::default()
        }
    }

    const MIB: u64 = 1 << 20;

    fn v8(heap: f64) -> Option<V8Known> {
        Some(V8Known {
            timestamp_ms: 0.0,
            heap_total: Some(heap),
            heap_used: Some(heap),
            ..V8Known::default()
        })
    }

    #[test]
    fn verdicts() {
        let cases: &[(&str, Snapshot, Option<V8Known>, Verdict)] = &[
            (
                "js objects",
                snap(200 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB),
                v8(180.0 * MIB as f64),
                Verdict::V8Heap,
            ),
            (
                "buffers",
                snap(200 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB),
                v8(20.0 * MIB as f64),
                Verdict::OutsideHeap,
            ),
            (
                "tmpfs",
                snap(30 * MIB, 200 * MIB, 10 * MIB, 180 * MIB, 5 * MIB),
                v8(20.0 * MIB as f64),
                Verdict::PageCache,
            ),
            (
                "sockets/slab",
                snap(30 * MIB, 5 * MIB, 4 * MIB, 0, 120 * MIB),
                v8(20.0 * MIB as f64),
                Verdict::Kernel,
            ),
            (
                "no v8",
                snap(200 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB),
                None,
                Verdict::Unknown,
            ),
        ];
        for (name, s, v, want) in cases {
            let basis = s.working_set.unwrap() as f64;
            assert_eq!(verdict(s, basis, *v).0, *want, "case {name}");
        }
    }

    #[test]
    fn record_is_one_line_of_json_that_fits() {
        let s = snap(200 * MIB, 5 * MIB, 4 * MIB, 0, 5 * MIB);
        let line = record(&s, 2e8, 0.95, 0.95, 1e8, Some(120.4), v8(1.8e8), 1.7e12);
        assert!(line.ends_with("}\n") && line.matches('\n').count() == 1);
        assert!(line.len() < MAX_BYTES);
        assert!(line.contains("\"verdict\":\"v8-heap\""), "{line}");
        assert!(line.contains("\"timeToLimitMs\":120"), "{line}");
        assert!(line.contains("\"slab\":null"), "{line}");
    }

    #[test]
    fn iso_times() {
        assert_eq!(iso_time(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_time(951_782_400_123.0), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso_time(1_795_601_717_478.0), "2026-11-25T10:15:17.478Z");
    }
}
