//! This process's anonymous memory split by who made it, read fresh from
//! any thread: what the C allocator (malloc) holds against the rest.
//!
//! The sampler thread cannot ask V8 for its numbers; JavaScript writes them
//! when it runs, and a busy JavaScript thread leaves them seconds old. The
//! allocator's totals answer the question the verdict needs without V8:
//! Node's ArrayBuffer allocator (Buffers, ArrayBuffers, typed arrays) and
//! native code take their memory from malloc, while V8 maps its heap pages
//! itself (`mmap`), outside malloc. So of the process's resident anonymous
//! memory (`/proc/self/statm`: resident less shared pages), what malloc
//! holds is outside the V8 heap, and the rest is the V8 heaps (of every
//! isolate: workers too) with thread stacks and V8's code space.
//!
//! glibc's `mallinfo2()` (2.33+) gives the totals, callable from any
//! thread; glibc 2.28-2.32 only has `mallinfo()`, whose `int` fields wrap
//! past 4 GiB (used only below that). Either walks every free chunk with
//! the arena locked: microseconds on a tidy heap, tens of milliseconds on a
//! badly fragmented one, so readings are paced by their cost
//! ([`split_if_due`]). Both are looked up at run
//! time (`dlsym`), so the binary loads where neither exists (musl) and the
//! split is then absent. A preloaded allocator (jemalloc, tcmalloc) that
//! does not answer `mallinfo` itself makes glibc's totals meaningless: the
//! functions are used only once a probe showed that the `malloc` the
//! process calls moves them.

use std::ffi::{c_int, c_void, CStr};
use std::path::Path;
use std::sync::OnceLock;

/// glibc's `struct mallinfo2`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Mallinfo2 {
    arena: usize,
    ordblks: usize,
    smblks: usize,
    hblks: usize,
    hblkhd: usize,
    usmblks: usize,
    fsmblks: usize,
    uordblks: usize,
    fordblks: usize,
    keepcost: usize,
}

/// glibc's `struct mallinfo` (before 2.33): the same fields as `int`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Mallinfo {
    arena: c_int,
    ordblks: c_int,
    smblks: c_int,
    hblks: c_int,
    hblkhd: c_int,
    usmblks: c_int,
    fsmblks: c_int,
    uordblks: c_int,
    fordblks: c_int,
    keepcost: c_int,
}

/// Which allocator call gave the totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Mallinfo2,
    Mallinfo,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Mallinfo2 => "mallinfo2",
            Source::Mallinfo => "mallinfo",
        }
    }
}

#[derive(Clone, Copy)]
enum Found {
    Two(unsafe extern "C" fn() -> Mallinfo2),
    One(unsafe extern "C" fn() -> Mallinfo),
    None,
}

/// The process's anonymous memory and what malloc holds of it, read now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// Resident anonymous memory of this process (`RssAnon`).
    pub anon: u64,
    /// What malloc has taken from the system: its arenas and its own
    /// mappings of large blocks (`arena + hblkhd`), free chunks inside the
    /// arenas included (most stay resident once touched).
    pub malloc: u64,
    /// Of that, handed out and not yet freed (`uordblks + hblkhd`).
    pub malloc_in_use: u64,
    pub source: Source,
    /// Wall-clock time of the reading, Unix ms.
    pub timestamp_ms: f64,
}

impl Split {
    /// Anonymous memory malloc does not hold: the V8 heaps, thread stacks,
    /// V8's code space and other direct mappings.
    pub fn outside_malloc(&self) -> u64 {
        self.anon.saturating_sub(self.malloc)
    }
}

fn found() -> Found {
    static FOUND: OnceLock<Found> = OnceLock::new();
    *FOUND.get_or_init(look_up)
}

fn symbol(name: &CStr) -> *mut c_void {
    // SAFETY: a NUL-terminated name; RTLD_DEFAULT (0 on glibc and musl)
    // searches the process's global scope.
    unsafe { libc::dlsym(std::ptr::null_mut(), name.as_ptr()) }
}

/// The totals' in-use bytes (`uordblks + hblkhd`) from what was found.
fn in_use(f: Found) -> Option<u64> {
    malloc_totals_of(f, 0).map(|(_, used, _)| used)
}

/// Does the `malloc` this process calls report to `f`? One block of
/// [`PROBE`] bytes, allocated and freed (never touched, so never resident),
/// must move the totals by its size. A preloaded allocator leaves glibc's
/// totals where they were. Other threads allocate meanwhile: a few tries.
fn reports_malloc(f: Found) -> bool {
    (0..5).any(|_| {
        let Some(before) = in_use(f) else {
            return false;
        };
        // SAFETY: a plain allocation, freed below.
        let p = unsafe { libc::malloc(PROBE) };
        if p.is_null() {
            return false;
        }
        let during = in_use(f);
        // SAFETY: the block allocated above.
        unsafe { libc::free(std::hint::black_box(p)) };
        during.is_some_and(|d| {
            let grew = d.wrapping_sub(before);
            grew >= PROBE as u64 && grew <= PROBE as u64 + 64 * 1024
        })
    })
}

/// The probe's size: below glibc's mmap threshold (128 KiB by default), so
/// the block comes from an arena. A block above it would be mmapped, and
/// freeing an mmapped block raises glibc's dynamic mmap threshold to its
/// size: every later allocation up to that size would then come from the
/// arenas and stay resident after free (measured: a process that freed
/// 230 MiB of 1 MiB Buffers kept its RSS, and its cgroup stayed at 92%).
const PROBE: usize = 64 << 10;

fn look_up() -> Found {
    let two = symbol(c"mallinfo2");
    if !two.is_null() {
        // SAFETY: glibc's mallinfo2 has this signature.
        let f = Found::Two(unsafe {
            std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> Mallinfo2>(two)
        });
        if reports_malloc(f) {
            return f;
        }
    }
    let one = symbol(c"mallinfo");
    if !one.is_null() {
        // SAFETY: mallinfo (glibc, or an allocator that answers it) has this signature.
        let f = Found::One(unsafe {
            std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> Mallinfo>(one)
        });
        if reports_malloc(f) {
            return f;
        }
    }
    Found::None
}

/// Which allocator call the split would use here, if any.
pub fn source() -> Option<Source> {
    match found() {
        Found::Two(_) => Some(Source::Mallinfo2),
        Found::One(_) => Some(Source::Mallinfo),
        Found::None => None,
    }
}

/// malloc's totals now: (taken from the system, in use), bytes.
fn malloc_totals(anon: u64) -> Option<(u64, u64, Source)> {
    malloc_totals_of(found(), anon)
}

fn malloc_totals_of(found: Found, anon: u64) -> Option<(u64, u64, Source)> {
    match found {
        // SAFETY: the function was found in the allocator's own object.
        Found::Two(f) => {
            let m = unsafe { f() };
            let big = m.hblkhd as u64;
            Some((
                m.arena as u64 + big,
                m.uordblks as u64 + big,
                Source::Mallinfo2,
            ))
        }
        Found::One(f) => {
            // The int fields wrap past 4 GiB: meaningless once the process
            // could hold that much.
            if anon >= 1 << 32 {
                return None;
            }
            // SAFETY: as above.
            let m = unsafe { f() };
            let u = |v: c_int| v as u32 as u64;
            let big = u(m.hblkhd);
            Some((u(m.arena) + big, u(m.uordblks) + big, Source::Mallinfo))
        }
        Found::None => None,
    }
}

/// `/proc/self/statm` now, through a descriptor opened once (the first
/// reading, when a monitor starts) and kept: a process that has used up its
/// descriptors (EMFILE) still gets its split, and the sampler never takes a
/// descriptor from the host for a moment (a service at its limit that got
/// one freed by us would see process.memoryUsage() work and fail by turns).
fn statm_text() -> Option<String> {
    use std::sync::Mutex;
    static HELD: Mutex<Option<crate::file::Checked>> = Mutex::new(None);
    let path = Path::new("/proc/self/statm");
    let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
    if held.is_none() {
        *held = Some(crate::file::Checked::open(path).ok()?);
    }
    let mut buf = Vec::new();
    let n = held.as_ref()?.read(&mut buf, path).ok()?;
    buf.truncate(n);
    String::from_utf8(buf).ok()
}

/// The split now, for this process as `root` shows it: only for the real
/// root (`/`): malloc's totals are this process's, and a root that stands
/// for another system (tests, fixtures) has its own `/proc/self`.
pub fn split(root: &Path, now_ms: f64) -> Option<Split> {
    if root != Path::new("/") {
        return None;
    }
    let page = crate::file::page_size();
    let anon = crate::parse::parse_statm_anon(&statm_text()?, page).ok()?;
    let (malloc, malloc_in_use, source) = malloc_totals(anon)?;
    Some(Split {
        anon,
        malloc,
        malloc_in_use,
        source,
        timestamp_ms: now_ms,
    })
}

/// The split's reading may take at most this share of the time: glibc's
/// totals walk every free chunk with the arena locked (about 38 ms with
/// 100,000 free chunks, during which the other threads' mallocs wait).
pub const DUTY: u32 = 20;

/// The latest split for `root`, and whether it was read just now. A
/// reading is due when the last one's cost allows: after a reading that
/// took `d`, the next waits `d * (DUTY - 1)` (so at most 1/[`DUTY`] of the
/// time goes to it; about 5 µs a reading on a tidy heap, so no wait worth
/// the name). Otherwise the last split read in this process (by any
/// monitor), with its own timestamp. None where none was ever read.
pub fn split_if_due(root: &Path, now_ms: f64) -> Option<(Split, bool)> {
    if root != Path::new("/") {
        return None;
    }
    type State = (Option<std::time::Instant>, Option<Split>);
    static STATE: std::sync::Mutex<State> = std::sync::Mutex::new((None, None));
    let start = std::time::Instant::now();
    {
        let st = STATE.lock().unwrap_or_else(|p| p.into_inner());
        if st.0.is_some_and(|n| start < n) {
            return st.1.map(|s| (s, false));
        }
    }
    let s = split(root, now_ms);
    let took = start.elapsed();
    let mut st = STATE.lock().unwrap_or_else(|p| p.into_inner());
    st.0 = Some(std::time::Instant::now() + took * (DUTY - 1));
    match s {
        Some(s) => {
            st.1 = Some(s);
            Some((s, true))
        }
        None => st.1.map(|s| (s, false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_answers_and_malloc_grows_what_it_says() {
        // The test binary links glibc (the gnu target): mallinfo2 or mallinfo is there.
        if cfg!(target_env = "musl") {
            assert_eq!(source(), None);
            return;
        }
        assert!(source().is_some());
        let before = split(Path::new("/"), 0.0).expect("a split on glibc");
        assert!(before.anon > 0 && before.malloc > 0);
        // 64 MiB from malloc, touched: malloc's totals and the anonymous
        // memory both grow by about that much.
        let v: Vec<u8> = std::hint::black_box(vec![1; 64 << 20]);
        let after = split(Path::new("/"), 0.0).unwrap();
        // Other tests run beside this one in the same process: margins.
        let grew = after.malloc as i64 - before.malloc as i64;
        assert!(grew >= 48 << 20, "malloc grew by {grew}");
        let anon = after.anon as i64 - before.anon as i64;
        assert!(anon >= 48 << 20, "anonymous memory grew by {anon}");
        // And a direct mapping (as V8 makes its heap pages) is not malloc's.
        // SAFETY: a fresh private anonymous mapping, unmapped below.
        let len = 64 << 20;
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: inside the mapping.
        unsafe { std::ptr::write_bytes(p.cast::<u8>(), 3, len) };
        let mapped = split(Path::new("/"), 0.0).unwrap();
        let out = mapped.outside_malloc() as i64 - after.outside_malloc() as i64;
        assert!(
            out >= 48 << 20,
            "outside malloc grew by {out} with a 64 MiB mapping: {after:?} -> {mapped:?}"
        );
        // SAFETY: the mapping made above.
        unsafe { libc::munmap(p, len) };
        std::hint::black_box(&v);
        drop(v);
    }

    #[test]
    fn the_older_mallinfo_reads_the_same_and_the_probe_accepts_it() {
        // glibc 2.28-2.32 has only mallinfo(): the same totals in ints.
        if cfg!(target_env = "musl") {
            return;
        }
        let one = symbol(c"mallinfo");
        assert!(!one.is_null(), "glibc still exports mallinfo");
        // SAFETY: glibc's mallinfo, as look_up takes it.
        let f = Found::One(unsafe {
            std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> Mallinfo>(one)
        });
        assert!(reports_malloc(f), "the probe moves mallinfo's totals");
        let (held, used, source) = malloc_totals_of(f, 0).unwrap();
        assert_eq!(source, Source::Mallinfo);
        let (held2, used2, _) = malloc_totals_of(found(), 0).unwrap();
        let near = |a: u64, b: u64| a.abs_diff(b) < 16 << 20;
        assert!(
            near(held, held2) && near(used, used2),
            "{held}/{used} vs {held2}/{used2}"
        );
        // Past 4 GiB of anonymous memory the ints may have wrapped: no totals.
        assert_eq!(malloc_totals_of(f, 1 << 32), None);
        // Nothing found: no split.
        assert!(!reports_malloc(Found::None));
    }

    #[test]
    fn a_reading_waits_for_its_cost_and_the_last_one_stands_in() {
        if cfg!(target_env = "musl") {
            return;
        }
        let root = Path::new("/");
        // Other tests may have read just now: wait until a reading is due.
        let t0 = std::time::Instant::now();
        let first = loop {
            match split_if_due(root, 1.0) {
                Some((s, true)) => break s,
                _ => {
                    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        };
        assert_eq!(first.timestamp_ms, 1.0);
        // At once again: not due; the last reading stands in (this one's,
        // unless a test beside this one read in between), not one read now.
        let (again, fresh) = split_if_due(root, 2.0).unwrap();
        assert!(!fresh);
        assert_ne!(again.timestamp_ms, 2.0);
    }

    #[test]
    fn no_split_for_a_fixture_root() {
        assert_eq!(split(Path::new("/tmp/some-fixture"), 0.0), None);
        assert_eq!(split_if_due(Path::new("/tmp/some-fixture"), 0.0), None);
    }
}
