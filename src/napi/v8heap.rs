//! V8's sampling heap profiler through the V8 API node itself exports (the
//! route @datadog/pprof takes, without a build per Node ABI): started
//! without `kSamplingForceGC`, so reading the profile is a walk of the
//! sampled tree, not a full garbage collection first (what the inspector's
//! `HeapProfiler.getSamplingProfile` costs: about 0.9 ms per MiB of live
//! heap). lib/core/heap-profile.js uses it where [`v8_heap_unavailable`] says nothing
//! against it, else the inspector.
//!
//! Five functions, looked up in the running executable with `dlsym`
//! (node links with `-rdynamic`; they are `T` symbols in `nm -D`):
//! `v8::Isolate::GetCurrent()`, `v8::Isolate::GetHeapProfiler()`,
//! `v8::HeapProfiler::StartSamplingHeapProfiler(uint64_t, int,
//! SamplingFlags)`, `StopSamplingHeapProfiler()` and
//! `GetAllocationProfile()`. Non-virtual members in the Itanium C++ ABI take
//! `this` as their first argument.
//!
//! The profile's memory layout, checked with `offsetof`/`sizeof` against
//! `include/node/v8-profiler.h` of Node 20.20.2 (V8 11.3), 22.20.0 (V8 12.4)
//! and 24.19.0 (V8 13.6), identical in all three (x86-64 and aarch64 are
//! both LP64; node is built with libstdc++, musl builds included, whose
//! `std::vector` is three pointers: begin, end, end of storage):
//!
//! - `AllocationProfile`: polymorphic; its vtable in declaration order:
//!   `GetRootNode()` (slot 0), `GetSamples()` (1), then the virtual
//!   destructor's two entries, complete (2) and deleting (3).
//! - `AllocationProfile::Node` (88 bytes): `Local<String> name` @0,
//!   `Local<String> script_name` @8, `int script_id` @16, `start_position`
//!   @20, `line_number` @24 (1-based), `column_number` @28 (1-based),
//!   `uint32_t node_id` @32, `std::vector<Node*> children` @40,
//!   `std::vector<Allocation> allocations` @64.
//! - `Allocation` (16 bytes): `size_t size` @0, `unsigned count` @8 (scaled
//!   for the sampling).
//! - `Sample` (32 bytes): `uint32_t node_id` @0, `size_t size` @8,
//!   `unsigned count` @16, `uint64_t sample_id` @24.
//!
//! A `Local<T>` is one pointer, and in node a `napi_value` is a
//! `Local<Value>`'s pointer (`v8impl::JsValueFromV8LocalValue` is a
//! `reinterpret_cast`): the names V8 puts in the profile are handed to
//! JavaScript as they are, inside this call's handle scope (V8 opens one
//! for every API callback).
//!
//! The profile is built in the inspector's shape (`{ head, samples }`,
//! `callFrame.lineNumber` 0-based, `selfSize` = Σ size × count), so that
//! lib/core/heap-profile.js reads either route alike.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::OnceLock;

use napi::bindgen_prelude::*;
use napi::{sys, Env, Unknown};
use napi_derive::napi;

use super::{internal_error, running_node};
use crate::guard;

/// The (Node major, V8 major) pairs whose `v8-profiler.h` layout is checked
/// (see the module's comment). Both must match: the V8 version comes from
/// JavaScript (`process.versions.v8`, which code can redefine), the Node
/// version from N-API (which it cannot), and a Node major keeps its V8 major
/// for its whole release line.
const VERIFIED: &[(u32, u32)] = &[(20, 11), (22, 12), (24, 13)];

/// `HeapProfiler::kSamplingNoFlags`: no forced GC before a read; samples of
/// objects the GC has freed are dropped (the live heap only).
const SAMPLING_NO_FLAGS: c_int = 0;

/// More nodes than this in one profile are not walked (a deep, wide tree
/// from a peer sampling at a small interval); the read fails instead.
const MAX_NODES: usize = 1_000_000;
const MAX_SAMPLES: usize = 10_000_000;

type GetCurrentFn = unsafe extern "C" fn() -> *mut c_void;
type GetHeapProfilerFn = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
type StartFn = unsafe extern "C" fn(*mut c_void, u64, c_int, c_int) -> bool;
type StopFn = unsafe extern "C" fn(*mut c_void);
type GetProfileFn = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
type VirtualFn = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
type DeleteFn = unsafe extern "C" fn(*mut c_void);

struct Api {
    get_current: GetCurrentFn,
    get_heap_profiler: GetHeapProfilerFn,
    start: StartFn,
    stop: StopFn,
    get_profile: GetProfileFn,
}

fn lookup(names: &[&CStr]) -> Option<*mut c_void> {
    names.iter().find_map(|n| {
        // SAFETY: dlsym with a NUL-terminated name; RTLD_DEFAULT searches the executable and its libraries.
        let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, n.as_ptr()) };
        (!p.is_null()).then_some(p)
    })
}

/// The five functions, looked up once; the first one missing, if any.
fn api() -> &'static std::result::Result<Api, &'static str> {
    static API: OnceLock<std::result::Result<Api, &'static str>> = OnceLock::new();
    API.get_or_init(|| {
        let get = |names: &[&CStr], what: &'static str| lookup(names).ok_or(what);
        let get_current = get(
            &[c"_ZN2v87Isolate10GetCurrentEv"],
            "v8::Isolate::GetCurrent",
        )?;
        let get_heap_profiler = get(
            &[c"_ZN2v87Isolate15GetHeapProfilerEv"],
            "v8::Isolate::GetHeapProfiler",
        )?;
        // uint64_t is `unsigned long` (m) on LP64 Linux, `unsigned long long` (y) elsewhere.
        let start = get(
            &[
                c"_ZN2v812HeapProfiler25StartSamplingHeapProfilerEmiNS0_13SamplingFlagsE",
                c"_ZN2v812HeapProfiler25StartSamplingHeapProfilerEyiNS0_13SamplingFlagsE",
            ],
            "v8::HeapProfiler::StartSamplingHeapProfiler",
        )?;
        let stop = get(
            &[c"_ZN2v812HeapProfiler24StopSamplingHeapProfilerEv"],
            "v8::HeapProfiler::StopSamplingHeapProfiler",
        )?;
        let get_profile = get(
            &[c"_ZN2v812HeapProfiler20GetAllocationProfileEv"],
            "v8::HeapProfiler::GetAllocationProfile",
        )?;
        // SAFETY: each symbol is the function of that mangled name and signature.
        unsafe {
            Ok(Api {
                get_current: std::mem::transmute::<*mut c_void, GetCurrentFn>(get_current),
                get_heap_profiler: std::mem::transmute::<*mut c_void, GetHeapProfilerFn>(
                    get_heap_profiler,
                ),
                start: std::mem::transmute::<*mut c_void, StartFn>(start),
                stop: std::mem::transmute::<*mut c_void, StopFn>(stop),
                get_profile: std::mem::transmute::<*mut c_void, GetProfileFn>(get_profile),
            })
        }
    })
}

/// The major of a `process.versions.v8` string (`13.6.233.17-node.51`).
fn v8_major(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

/// Why this route cannot be used in this process, or `None`.
fn why_not(node_major: u32, v8_version: &str) -> Option<String> {
    if !cfg!(all(target_os = "linux", target_pointer_width = "64")) {
        return Some("the V8 route is checked on 64-bit Linux only".into());
    }
    let v8 = v8_major(v8_version);
    if !VERIFIED
        .iter()
        .any(|&(n, v)| n == node_major && Some(v) == v8)
    {
        return Some(format!(
            "node {node_major} with V8 {v8_version}: its AllocationProfile layout is not one oomguard checked ({})",
            VERIFIED
                .iter()
                .map(|(n, v)| format!("node {n} with V8 {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    match api() {
        Ok(_) => None,
        Err(missing) => Some(format!("{missing} is not exported by this node")),
    }
}

/// This thread's isolate's heap profiler, or why not.
fn profiler(
    node_major: u32,
    v8_version: &str,
) -> std::result::Result<(&'static Api, *mut c_void), String> {
    if let Some(why) = why_not(node_major, v8_version) {
        return Err(why);
    }
    let Ok(api) = api() else {
        return Err("no V8 API".into());
    };
    // SAFETY: called on a JavaScript thread, inside a callback: V8 has an entered isolate.
    let isolate = unsafe { (api.get_current)() };
    if isolate.is_null() {
        return Err("no current isolate".into());
    }
    // SAFETY: a live isolate.
    let hp = unsafe { (api.get_heap_profiler)(isolate) };
    if hp.is_null() {
        return Err("no heap profiler".into());
    }
    Ok((api, hp))
}

/// Why the V8 route cannot be used here (this `process.versions.v8`, this
/// node's exports), or `null` (internal).
#[napi]
pub fn v8_heap_unavailable(env: &Env, v8_version: String) -> Option<String> {
    let node = running_node(env).major;
    guard::catch("v8HeapUnavailable", || why_not(node, &v8_version))
        .unwrap_or_else(|p| Some(p.to_string()))
}

/// Start V8's sampler in this thread's isolate: `'started'`, or `'peer'`
/// when one already runs (V8 has one per isolate: another profiler's,
/// read but never stopped here). Throws why not (internal).
#[napi]
pub fn v8_heap_start(
    env: &Env,
    v8_version: String,
    interval_bytes: f64,
    stack_depth: u32,
) -> Result<String> {
    let node = running_node(env).major;
    guard::catch("v8HeapStart", || {
        let (api, hp) = profiler(node, &v8_version)?;
        let interval = if interval_bytes.is_finite() && interval_bytes >= 1.0 {
            interval_bytes as u64
        } else {
            512 * 1024
        };
        let depth = c_int::try_from(stack_depth.clamp(1, 1024)).unwrap_or(64);
        // SAFETY: this isolate's profiler, on its thread.
        let started = unsafe { (api.start)(hp, interval, depth, SAMPLING_NO_FLAGS) };
        Ok::<_, String>(if started { "started" } else { "peer" }.to_string())
    })
    .map_err(internal_error)?
    .map_err(|why| Error::new(Status::GenericFailure, why))
}

/// Stop V8's sampler in this thread's isolate (only one this route started:
/// lib/core/heap-profile.js keeps track); no profile is built (internal).
#[napi]
pub fn v8_heap_stop(env: &Env, v8_version: String) -> bool {
    let node = running_node(env).major;
    guard::catch("v8HeapStop", || match profiler(node, &v8_version) {
        Ok((api, hp)) => {
            // SAFETY: this isolate's profiler, on its thread.
            unsafe { (api.stop)(hp) };
            true
        }
        Err(_) => false,
    })
    .unwrap_or(false)
}

/// Calls the profile's deleting destructor when dropped.
struct Profile(*mut c_void);

impl Drop for Profile {
    fn drop(&mut self) {
        // SAFETY: a profile GetAllocationProfile returned, deleted once; vtable slot 3.
        unsafe {
            let vtable = *(self.0 as *const *const DeleteFn);
            (*vtable.add(3))(self.0);
        }
    }
}

/// `(begin, length)` of a `std::vector<T>` at `at`, `None` when it does not look like one.
///
/// # Safety
/// `at` points at a `std::vector<T>` (libstdc++: begin, end, end of storage).
unsafe fn vector<T>(at: *const u8, max: usize) -> Option<(*const T, usize)> {
    let begin = ptr::read_unaligned(at as *const *const T);
    let end = ptr::read_unaligned(at.add(8) as *const *const T);
    if begin.is_null() || end.is_null() {
        return (begin == end).then_some((ptr::null(), 0));
    }
    let bytes = (end as usize).checked_sub(begin as usize)?;
    let size = std::mem::size_of::<T>();
    if !bytes.is_multiple_of(size)
        || bytes / size > max
        || !(begin as usize).is_multiple_of(std::mem::align_of::<T>())
    {
        return None;
    }
    Some((begin, bytes / size))
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Allocation {
    size: usize,
    count: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Sample {
    node_id: u32,
    size: usize,
    count: u32,
    sample_id: u64,
}

const _: () = assert!(std::mem::size_of::<Allocation>() == 16);
const _: () = assert!(std::mem::size_of::<Sample>() == 32);

/// Builds the JavaScript objects with raw N-API calls, the keys created once per read.
struct Js {
    env: sys::napi_env,
    keys: [sys::napi_value; KEYS.len()],
}

const KEYS: [&CStr; 14] = [
    c"head",
    c"samples",
    c"callFrame",
    c"functionName",
    c"scriptId",
    c"url",
    c"lineNumber",
    c"columnNumber",
    c"selfSize",
    c"id",
    c"children",
    c"size",
    c"nodeId",
    c"ordinal",
];
const K_HEAD: usize = 0;
const K_SAMPLES: usize = 1;
const K_CALL_FRAME: usize = 2;
const K_FUNCTION_NAME: usize = 3;
const K_SCRIPT_ID: usize = 4;
const K_URL: usize = 5;
const K_LINE: usize = 6;
const K_COLUMN: usize = 7;
const K_SELF_SIZE: usize = 8;
const K_ID: usize = 9;
const K_CHILDREN: usize = 10;
const K_SIZE: usize = 11;
const K_NODE_ID: usize = 12;
const K_ORDINAL: usize = 13;

fn check(status: sys::napi_status) -> std::result::Result<(), String> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(format!("N-API status {status}"))
    }
}

impl Js {
    fn new(env: sys::napi_env) -> std::result::Result<Self, String> {
        let mut keys = [ptr::null_mut(); KEYS.len()];
        for (k, name) in keys.iter_mut().zip(KEYS) {
            // SAFETY: a NUL-terminated key, a live env.
            check(unsafe {
                sys::napi_create_string_utf8(env, name.as_ptr() as *const c_char, -1, k)
            })?;
        }
        Ok(Js { env, keys })
    }
    fn object(&self) -> std::result::Result<sys::napi_value, String> {
        let mut v = ptr::null_mut();
        // SAFETY: a live env.
        check(unsafe { sys::napi_create_object(self.env, &mut v) })?;
        Ok(v)
    }
    fn array(&self, len: usize) -> std::result::Result<sys::napi_value, String> {
        let mut v = ptr::null_mut();
        // SAFETY: a live env.
        check(unsafe { sys::napi_create_array_with_length(self.env, len, &mut v) })?;
        Ok(v)
    }
    fn number(&self, x: f64) -> std::result::Result<sys::napi_value, String> {
        let mut v = ptr::null_mut();
        // SAFETY: a live env.
        check(unsafe { sys::napi_create_double(self.env, x, &mut v) })?;
        Ok(v)
    }
    fn string(&self, s: &str) -> std::result::Result<sys::napi_value, String> {
        let mut v = ptr::null_mut();
        // SAFETY: a live env, a UTF-8 slice with its length.
        check(unsafe {
            sys::napi_create_string_utf8(
                self.env,
                s.as_ptr() as *const c_char,
                s.len() as isize,
                &mut v,
            )
        })?;
        Ok(v)
    }
    /// A `Local<String>` of the profile (a pointer to its handle slot), `''` when empty.
    fn local(&self, slot: *const u8) -> std::result::Result<sys::napi_value, String> {
        // SAFETY: `slot` is a `Local<String>` field of a live node.
        let local = unsafe { ptr::read_unaligned(slot as *const sys::napi_value) };
        if local.is_null() {
            return self.string("");
        }
        let mut t = 0;
        // SAFETY: a Local of this scope is a napi_value in node.
        check(unsafe { sys::napi_typeof(self.env, local, &mut t) })?;
        if t == sys::ValueType::napi_string {
            Ok(local)
        } else {
            self.string("")
        }
    }
    fn set(
        &self,
        obj: sys::napi_value,
        key: usize,
        v: sys::napi_value,
    ) -> std::result::Result<(), String> {
        // SAFETY: live values of this env.
        check(unsafe { sys::napi_set_property(self.env, obj, self.keys[key], v) })
    }
    fn set_element(
        &self,
        arr: sys::napi_value,
        i: usize,
        v: sys::napi_value,
    ) -> std::result::Result<(), String> {
        // SAFETY: live values of this env.
        check(unsafe { sys::napi_set_element(self.env, arr, i as u32, v) })
    }

    /// One `AllocationProfile::Node` as the inspector's `SamplingHeapProfileNode` (children empty, filled by the caller).
    ///
    /// # Safety
    /// `node` points at a live `AllocationProfile::Node`.
    unsafe fn node(
        &self,
        node: *const u8,
    ) -> std::result::Result<(sys::napi_value, *const *const u8, usize), String> {
        let int = |at: usize| ptr::read_unaligned(node.add(at) as *const i32);
        let (children, n_children) = vector::<*const u8>(node.add(40), MAX_NODES)
            .ok_or("a node's children are not a vector")?;
        let (allocs, n_allocs) = vector::<Allocation>(node.add(64), MAX_SAMPLES)
            .ok_or("a node's allocations are not a vector")?;
        let mut self_size = 0f64;
        for i in 0..n_allocs {
            let a = ptr::read(allocs.add(i));
            self_size += a.size as f64 * a.count as f64;
        }
        let cf = self.object()?;
        self.set(cf, K_FUNCTION_NAME, self.local(node)?)?;
        self.set(cf, K_SCRIPT_ID, self.string(&int(16).to_string())?)?;
        self.set(cf, K_URL, self.local(node.add(8))?)?;
        self.set(cf, K_LINE, self.number(f64::from(int(24)) - 1.0)?)?;
        self.set(cf, K_COLUMN, self.number(f64::from(int(28)) - 1.0)?)?;
        let o = self.object()?;
        self.set(o, K_CALL_FRAME, cf)?;
        self.set(o, K_SELF_SIZE, self.number(self_size)?)?;
        self.set(
            o,
            K_ID,
            self.number(f64::from(ptr::read_unaligned(node.add(32) as *const u32)))?,
        )?;
        Ok((o, children, n_children))
    }
}

/// Read the profile of this thread's isolate in the inspector's shape; `null`
/// when no sampler runs; throws when the profile does not look as checked.
fn read(
    env: sys::napi_env,
    node_major: u32,
    v8_version: &str,
) -> std::result::Result<sys::napi_value, String> {
    let (api, hp) = profiler(node_major, v8_version)?;
    let js = Js::new(env)?;
    // SAFETY: this isolate's profiler, on its thread; the profile is ours to delete (Profile's drop).
    let raw = unsafe { (api.get_profile)(hp) };
    if raw.is_null() {
        let mut v = ptr::null_mut();
        // SAFETY: a live env.
        check(unsafe { sys::napi_get_null(env, &mut v) })?;
        return Ok(v);
    }
    let profile = Profile(raw);
    // SAFETY: vtable slots 0 (GetRootNode) and 1 (GetSamples) of a live AllocationProfile.
    let (root, samples) = unsafe {
        let vtable = *(profile.0 as *const *const VirtualFn);
        (
            (*vtable)(profile.0) as *const u8,
            (*vtable.add(1))(profile.0) as *const u8,
        )
    };
    if root.is_null() || samples.is_null() {
        return Err("the profile has no root or no samples".into());
    }
    // SAFETY: the root node of the live profile; every child pointer is a node of it.
    let head = unsafe {
        let (head, children, n) = js.node(root)?;
        let mut walked = 1usize;
        let mut stack = vec![(head, children, n)];
        while let Some((obj, children, n)) = stack.pop() {
            let arr = js.array(n)?;
            js.set(obj, K_CHILDREN, arr)?;
            for i in 0..n {
                let child = *children.add(i);
                if child.is_null() {
                    return Err("a null child node".into());
                }
                walked += 1;
                if walked > MAX_NODES {
                    return Err(format!("more than {MAX_NODES} nodes"));
                }
                let (c, cc, cn) = js.node(child)?;
                js.set_element(arr, i, c)?;
                stack.push((c, cc, cn));
            }
        }
        head
    };
    // SAFETY: the samples vector of the live profile.
    let (s, n) =
        unsafe { vector::<Sample>(samples, MAX_SAMPLES) }.ok_or("the samples are not a vector")?;
    let arr = js.array(n)?;
    for i in 0..n {
        // SAFETY: within the vector.
        let sample = unsafe { ptr::read(s.add(i)) };
        let o = js.object()?;
        js.set(
            o,
            K_SIZE,
            js.number(sample.size as f64 * f64::from(sample.count))?,
        )?;
        js.set(o, K_NODE_ID, js.number(f64::from(sample.node_id))?)?;
        js.set(o, K_ORDINAL, js.number(sample.sample_id as f64)?)?;
        js.set_element(arr, i, o)?;
    }
    let out = js.object()?;
    js.set(out, K_HEAD, head)?;
    js.set(out, K_SAMPLES, arr)?;
    drop(profile);
    Ok(out)
}

/// This thread's sampling heap profile, in the shape of the inspector's
/// `HeapProfiler.getSamplingProfile` result's `profile`, or `null` when no
/// sampler runs (internal).
#[napi]
pub fn v8_heap_read(env: &Env, v8_version: String) -> Result<Unknown<'_>> {
    let node = running_node(env).major;
    let raw = env.raw();
    let v = guard::catch("v8HeapRead", || read(raw, node, &v8_version))
        .map_err(internal_error)?
        .map_err(|why| Error::new(Status::GenericFailure, why))?;
    // SAFETY: a value of this env, made in this call.
    Ok(unsafe { Unknown::from_raw_unchecked(raw, v) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_checked_pair_of_node_and_v8_majors_passes_the_version_gate() {
        let checked = |node, v8: &str| {
            why_not(node, v8).is_none_or(|why| !why.contains("not one oomguard checked"))
        };
        assert!(checked(20, "11.3.244.8-node.38"));
        assert!(checked(22, "12.4.254.21-node.33"));
        assert!(checked(24, "13.6.233.17-node.51"));
        // A newer V8, an odd one, and a V8 string that does not match node's own major.
        assert!(!checked(26, "14.1.146.11-node.14"));
        assert!(!checked(21, "11.8.172.17-node.18"));
        assert!(!checked(20, "13.6.233.17-node.51"));
        assert!(!checked(24, "v13.6"));
        assert!(!checked(24, ""));
        assert!(!checked(0, "garbage"));
    }

    #[test]
    fn outside_node_the_symbols_are_missing_and_said_so() {
        // This test binary is not node: no V8 API to find.
        let why = why_not(24, "13.6.233.17-node.51").unwrap();
        assert!(why.contains("is not exported by this node"), "{why}");
    }
}
