// The public types of oomguard, written here once. A reading's shape
// (MemoryMetrics and its sections) is declared in this file only: the native
// side fills numbered slots (src/napi/slots.rs) that lib/core/metrics.js names, and
// __test__/api.test.js checks that every field here is one getMemoryMetrics()
// returns, and the reverse. The types the native side does build (the cgroup,
// the processes, a diagnosis) come from the generated ../index.d.ts.
import type { CgroupInfo, CgroupProcesses, Diagnosis } from '../index'

export type { CgroupInfo, CgroupProcess, CgroupProcesses, Diagnosis } from '../index'

/** One reading of the process's memory as the kernel and V8 see it. */
export interface MemoryMetrics {
  /** When this was read, milliseconds since the epoch. */
  timestampMs: number
  /**
   * Where `limitBytes` came from: the cgroup (`cgroup-v1`, `cgroup-v2`) or,
   * with no cgroup limit anywhere, the host's MemTotal (`host`).
   */
  source: 'cgroup-v1' | 'cgroup-v2' | 'host' | null
  /**
   * The limit everything is measured against, bytes: the effective cgroup
   * limit, else MemTotal.
   */
  limitBytes: number | null
  /**
   * The effective cgroup limit: the smallest on the path up the hierarchy
   * (v2 `memory.max`; v1 `memory.limit_in_bytes` and `hierarchical_memory_limit`).
   * `null` when unlimited.
   */
  cgroupLimitBytes: number | null
  /** This cgroup's own limit (without its parents'), bytes; `null` when unlimited. */
  leafLimitBytes: number | null
  /** v2: the smallest `memory.high` up the hierarchy (throttling starts there), bytes. */
  highBytes: number | null
  /**
   * This cgroup's own soft ceiling, the one Node reads beside the limit:
   * v2 `memory.high`, v1 `memory.soft_limit_in_bytes`; `null` when unlimited.
   */
  leafHighBytes: number | null
  /**
   * The memory Node sizes its default heap from, bytes: libuv's
   * `uv_get_constrained_memory()`, the smaller of this cgroup's own
   * `leafHighBytes` and `leafLimitBytes` (parents are not looked at),
   * capped at the host's MemTotal; MemTotal when both are unlimited.
   */
  constrainedMemoryBytes: number | null
  /** Memory charged to the cgroup: v2 `memory.current`, v1 `memory.usage_in_bytes`. */
  usageBytes: number | null
  /**
   * Usage minus inactive page cache (`inactive_file`), never below 0; what
   * kubelet and cAdvisor call the working set.
   */
  workingSetBytes: number | null
  /**
   * The most the cgroup was charged since it was created, bytes: v2
   * `memory.peak` (kernel 5.19+), v1 `memory.max_usage_in_bytes`; `null`
   * where the kernel has none.
   */
  peakBytes: number | null
  /**
   * Swap the cgroup uses, bytes: v2 `memory.swap.current`, v1
   * `memory.memsw.usage_in_bytes - memory.usage_in_bytes` (at least 0);
   * `null` where the kernel accounts no swap.
   */
  swapBytes: number | null
  /**
   * The most swap the cgroup may use, bytes: v2 the smallest
   * `memory.swap.max` up the hierarchy, v1 the smallest
   * `memory.memsw.limit_in_bytes` up the hierarchy (memory plus swap, read
   * as `memory.stat` `hierarchical_memsw_limit`) minus the memory limit.
   * `0` where the host has no swap space (`hostSwapTotalBytes` 0), whatever
   * the cgroup's files allow: nothing can be swapped out there.
   * `null` when unlimited, and where the kernel accounts no swap (`swapBytes` is then `null` too).
   * The kernel OOM-kills only when memory and swap are both at their limits.
   */
  swapLimitBytes: number | null
  /**
   * The number ratios use: the cgroup's working set; the host's
   * MemTotal - MemAvailable where there is no cgroup to measure (no memory
   * controller, the v2 root). `null` when the files it needs failed to read.
   */
  basisBytes: number | null
  /** `basisBytes / limitBytes`. */
  usageRatio: number | null
  /** `limitBytes - basisBytes`. */
  headroomBytes: number | null
  /** V8 `heap_size_limit / limitBytes`; at or above 1 the kernel kills before V8 gives up. */
  heapLimitRatio: number | null
  /**
   * Whether the cgroup is stuck at its limit without an OOM kill, as the
   * sampler of a `watch()` monitor on the same root judges it (a stall is
   * judged over seconds; one reading cannot tell). `null` when no monitor
   * with stall detection watches this root.
   */
  stalled: boolean | null
  /** Where the cgroup is; `null` without a memory cgroup. */
  cgroup: CgroupInfo | null
  /** `memory.stat`; `null` without a memory cgroup or when unreadable. */
  stat: MemoryStat | null
  /** Event counters; `null` without a memory cgroup or when unreadable. */
  events: MemoryEvents | null
  /** PSI; `null` where the kernel has none. */
  pressure: MemoryPressure | null
  /**
   * The parent cgroup that holds the limit, where this cgroup's own does not
   * (`null` where it does, without a limit, or where that cgroup is out of
   * view): a pod's cgroup above a container without a limit of its own.
   */
  limitingCgroup: LimitingCgroup | null
  /** Process RSS from `/proc/self/statm`, bytes. */
  rssBytes: number | null
  /**
   * This process's resident anonymous memory (resident minus shared of
   * `/proc/self/statm`, the kernel's `RssAnon`), bytes, read with
   * `rssBytes`: the memory it put in the cgroup, part of the working set
   * (RSS also counts mapped files charged elsewhere, and can exceed the
   * working set).
   */
  anonBytes: number | null
  /**
   * The processes in the memory cgroup, largest first; `null` without a
   * memory cgroup or when `cgroup.procs` could not be read.
   */
  processes: CgroupProcesses | null
  /** `MemTotal` from `/proc/meminfo`, bytes. */
  hostTotalBytes: number | null
  /** `MemAvailable` from `/proc/meminfo`, bytes. */
  hostAvailableBytes: number | null
  /** `SwapTotal` from `/proc/meminfo`, bytes: the host's swap space (0: none). */
  hostSwapTotalBytes: number | null
  /** The V8 numbers used. */
  v8: V8Metrics
  /** Findings, most important first. */
  diagnoses: Array<Diagnosis>
}

/**
 * `memory.stat` in the cgroup v2 vocabulary, bytes unless noted. On v1 the
 * hierarchical `total_*` fields are used (`total_rss` is `anon`,
 * `total_cache` is `file`). A field the kernel did not print is `null`.
 */
export interface MemoryStat {
  /** Anonymous memory (heap, stacks, Buffers): v2 `anon`, v1 `total_rss`. */
  anon: number | null
  /** Page cache including tmpfs/shmem: v2 `file`, v1 `total_cache`. */
  file: number | null
  /** Kernel memory: v2 `kernel`, v1 `memory.kmem.usage_in_bytes`. */
  kernel: number | null
  /** Kernel stacks: v2 `kernel_stack`. */
  kernelStack: number | null
  /** Page tables: v2 `pagetables`. */
  pagetables: number | null
  /** Socket buffers: v2 `sock`, v1 `memory.kmem.tcp.usage_in_bytes`. */
  sock: number | null
  /** tmpfs, /dev/shm and shared anonymous memory: v2 `shmem`, v1 `total_shmem`. */
  shmem: number | null
  /** Mapped files: v2 `file_mapped`, v1 `total_mapped_file`. */
  fileMapped: number | null
  /** Dirty page cache: v2 `file_dirty`, v1 `total_dirty`. */
  fileDirty: number | null
  /** Page cache under writeback: v2 `file_writeback`, v1 `total_writeback`. */
  fileWriteback: number | null
  /** Transparent huge pages of anonymous memory: v2 `anon_thp`, v1 `total_rss_huge`. */
  anonThp: number | null
  /** v2 `inactive_anon`, v1 `total_inactive_anon`. */
  inactiveAnon: number | null
  /** v2 `active_anon`, v1 `total_active_anon`. */
  activeAnon: number | null
  /**
   * Reclaimable page cache; subtracted from usage for the working set.
   * v2 `inactive_file`, v1 `total_inactive_file`.
   */
  inactiveFile: number | null
  /** v2 `active_file`, v1 `total_active_file`. */
  activeFile: number | null
  /** v2 `unevictable`, v1 `total_unevictable`. */
  unevictable: number | null
  /** Slab: v2 `slab` (v1 has none). */
  slab: number | null
  /** v2 `slab_reclaimable`. */
  slabReclaimable: number | null
  /** v2 `slab_unreclaimable`. */
  slabUnreclaimable: number | null
  /** Page faults (a count): v2 `pgfault`, v1 `total_pgfault`. */
  pgfault: number | null
  /** Major page faults (a count): v2 `pgmajfault`, v1 `total_pgmajfault`. */
  pgmajfault: number | null
  /**
   * Every line of `memory.stat` as the kernel printed it, in its order and
   * its own names (v1 prints both local and `total_*` fields). Values at or
   * above the v1 unlimited value (`9223372036854771712`) are `null`.
   */
  raw: Record<string, number | null>
}

/**
 * Memory events: counters since the cgroup was created (`underOom` is a 0/1 state). v2 `memory.events`;
 * v1 `memory.oom_control` and `memory.failcnt`. `null` where the kernel has no such counter.
 */
export interface MemoryEvents {
  /** v2 `low`: reclaimed below memory.low. */
  low: number | null
  /** v2 `high`: throttled over memory.high. */
  high: number | null
  /** v2 `max`: usage reached memory.max. */
  max: number | null
  /** v2 `oom`: the cgroup ran out of memory. */
  oom: number | null
  /**
   * Processes OOM-killed in this cgroup: v2 `memory.events` `oom_kill`,
   * v1 `memory.oom_control` `oom_kill`.
   */
  oomKill: number | null
  /** v2 `oom_group_kill`. */
  oomGroupKill: number | null
  /** v1 `memory.oom_control` `under_oom`. */
  underOom: number | null
  /** v1 `memory.failcnt`: times usage hit the limit. */
  failcnt: number | null
}

/**
 * The parent cgroup whose limit is the effective one (`cgroupLimitBytes`).
 * The kernel counts the failed charges of every cgroup below it there, and
 * what sits at the limit is everything charged to it, other cgroups' memory
 * included: a stall is judged by these numbers. `null` where unreadable.
 */
export interface LimitingCgroup {
  /** Its cgroup path, as `/proc/self/cgroup` would print it. */
  path: string
  /** Memory charged to it: v2 `memory.current`, v1 `memory.usage_in_bytes`. */
  usageBytes: number | null
  /** Its usage minus its inactive page cache (`memory.stat` `inactive_file` / `total_inactive_file`). */
  workingSetBytes: number | null
  /** Its failed charges: v1 `memory.failcnt`, v2 `memory.events` `max`. */
  failures: number | null
  /** v1: its `memory.memsw.usage_in_bytes` (memory plus swap); `null` on v2 and without swap accounting. */
  memswUsageBytes: number | null
  /** v1: its `memory.stat` `hierarchical_memsw_limit`, the smallest memory+swap limit from it up; `null` when unlimited, on v2 and without swap accounting. */
  memswLimitBytes: number | null
}

/** Memory pressure (PSI). */
export interface MemoryPressure {
  /** `cgroup`: the cgroup's v2 `memory.pressure`; `system`: `/proc/pressure/memory`. */
  scope: 'cgroup' | 'system'
  /** Some tasks stalled on memory. */
  some: PressureLine
  /** All tasks stalled on memory. */
  full: PressureLine | null
}

/** One PSI line. */
export interface PressureLine {
  /** Percent of time stalled, 10 s average. */
  avg10: number
  /** Percent of time stalled, 60 s average. */
  avg60: number
  /** Percent of time stalled, 300 s average. */
  avg300: number
  /** Total stall time, microseconds. */
  totalUs: number
}

/** The V8 numbers used. */
export interface V8Metrics {
  /** `process.memoryUsage().rss`, bytes. */
  rssBytes: number | null
  /** `heapTotal`, bytes. */
  heapTotalBytes: number | null
  /** `heapUsed`, bytes. */
  heapUsedBytes: number | null
  /** `external`, bytes. */
  externalBytes: number | null
  /** `arrayBuffers`, bytes. */
  arrayBuffersBytes: number | null
  /** `v8.getHeapStatistics().heap_size_limit`, bytes. */
  heapSizeLimitBytes: number | null
}

/**
 * The V8 and process numbers passed in: `process.memoryUsage()` plus
 * `heapSizeLimit` from `v8.getHeapStatistics().heap_size_limit`. All bytes.
 */
export interface MemoryUsageInput {
  /** Resident set size of the process, bytes (`process.memoryUsage().rss`). */
  rss?: number
  /** V8 heap reserved, bytes. */
  heapTotal?: number
  /** V8 heap in use, bytes. */
  heapUsed?: number
  /** Memory of C++ objects bound to JS objects, including ArrayBuffers, bytes. */
  external?: number
  /** ArrayBuffer and SharedArrayBuffer backing stores (all Buffers), bytes. */
  arrayBuffers?: number
  /** V8's heap limit (`v8.getHeapStatistics().heap_size_limit`), bytes. */
  heapSizeLimit?: number
}

/** Options shared by the readers. */
export interface MetricsOptions {
  /** A directory that stands in for `/` (a fixture tree). Default `/`. */
  root?: string
}

/**
 * Read the process's memory as the kernel counts it (its memory cgroup: v1,
 * v2 or hybrid) and combine it with V8's numbers.
 *
 * - `getMemoryMetrics()` calls `process.memoryUsage()` and
 *   `v8.getHeapStatistics()` itself;
 * - `getMemoryMetrics(process.memoryUsage())` uses the numbers passed in.
 *
 * Never throws because a kernel file is missing or unreadable: that part is
 * `null` and a diagnosis says why. Throws a `TypeError` or `RangeError` that
 * names the field for bad input.
 */
export declare function getMemoryMetrics(usage?: MemoryUsageInput | null, options?: MetricsOptions | null): MemoryMetrics

// ---------------------------------------------------------------------------
// watch(): warnings before the kernel's OOM killer acts.

import type { EventEmitter } from 'node:events'

// Generated from lib/core/options.json (node lib/core/options.js --readme):
// options:watch-interface
/** What a monitor compares with the limit (`basis`). */
export type WatchBasis = 'workingSet' | 'usage' | 'rss'

export interface WatchOptions {
  /** Ratios of the limit, ascending, each in (0, 1); 1 to 16 of them, no holes. Default `[0.8, 0.9, 0.95]`. */
  thresholds?: readonly number[]
  /**
   * What is compared with the limit. `workingSet` (default): usage minus
   * inactive page cache, what kubelet evicts by; `usage`: everything charged
   * (`memory.current` / `memory.usage_in_bytes`), page cache included;
   * `rss`: this process's resident set (`/proc/self/statm`).
   */
  basis?: WatchBasis
  /** A level is left only when the ratio falls this far below its threshold: 0 to 0.5, below the lowest threshold. Default `0.05`, at most half the lowest threshold. */
  hysteresis?: number
  /** Shortest sampling interval, ms (0.1 to 60000), used close to a threshold. Default `1`. */
  minIntervalMs?: number
  /** Longest sampling interval, ms (`minIntervalMs` to 3600000), used far from every threshold or where the kernel wakes the sampler (v1). Default `5000`. */
  maxIntervalMs?: number
  /**
   * The line the sampler thread writes itself when the highest threshold is
   * crossed. `true` (default): to stderr. `false`: not at all.
   * `{ path }`: also to that file, truncated to the latest record (for
   * Kubernetes, the container's `terminationMessagePath`, `/dev/termination-log`).
   * The path is checked by `watch()`: no NUL byte, its directory exists, and
   * it is not a directory; else a RangeError naming `options.lastWords.path`.
   */
  lastWords?: boolean | { path?: string; stderr?: boolean }
  /**
   * Stall detection: the cgroup stuck at its limit while the kernel does not
   * OOM-kill (working set within `margin` of the limit, charges failing,
   * memory pressure or refaults, for `sustainMs`). `false` turns it off.
   * `sustainMs`: 0 to 600000; `margin`: 0 to 0.49.
   * Default `{ sustainMs: 3000, margin: 0.1 }`.
   */
  stall?: boolean | { sustainMs?: number; margin?: number }
  /**
   * End the process when a stall has lasted `afterMs` (0 to 86400000, default 30000): the
   * sampler thread itself writes the final record (verdict `stall`) and
   * exits with status 75, even while JavaScript is stuck. Default: report only.
   */
  onStall?: { action: 'exit'; afterMs?: number } | null
  /**
   * Where the memory went: V8's sampling heap profiler in this thread's
   * isolate. `'threshold'` (default): sampling starts when the monitor first
   * reaches its first threshold; `'start'`: at once; `'off'` or `false`: never.
   * The top allocation sites go on `threshold` and `stall` events and into
   * the last-words record; with `dir`, a gzipped pprof file is written at
   * each level and stall. `intervalBytes` (default 524288, 1024 to 1073741824): mean bytes
   * between samples. `maxFiles` (20; 1 to 10000) and `maxBytes` (64 MiB; 4096 to 2^40) bound `dir`.
   * `buffers` (default true): while sampling, also sample where Buffers
   * are allocated (Buffer.alloc, allocUnsafe, allocUnsafeSlow, from, concat
   * wrapped), which V8's sampler cannot see. `route`: `'auto'` (default: V8's
   * own API where this Node version's layout was checked, else node:inspector)
   * or `'inspector'` (a full GC before each read).
   */
  heapProfile?:
    | boolean
    | 'threshold'
    | 'start'
    | 'off'
    | { start?: 'threshold' | 'start' | 'off'; intervalBytes?: number; dir?: string; maxFiles?: number; maxBytes?: number; buffers?: boolean; route?: 'auto' | 'inspector' }
  /** A directory that stands in for `/` (fixture trees). Default `/`. */
  root?: string
}
// /options:watch-interface

/** One allocation site of the memory still live, from the sampling heap profile. */
export interface HeapSite {
  /** The allocating function; `(anonymous)` when it has no name. An inlined function counts as its caller. */
  functionName: string
  /** The script, relative to the working directory when under it. */
  file: string
  line: number | null
  column: number | null
  /** Sampled live bytes allocated here. */
  bytes: number
  /** bytes / the sampled live heap. */
  share: number
  /** Calling frames, nearest first: `fn (file:line:column)`. */
  stack: string[]
}

/** The heap profile's part of a `threshold` or `stall` event. */
export interface HeapProfileSites {
  /** `main`, or `worker N` (the worker's threadId). */
  isolate?: string
  /** How the profile is read: `'v8'` (V8's API from the addon, no forced GC) or `'inspector'` (node:inspector, a full GC per read). */
  route?: 'v8' | 'inspector'
  /** When the profile was read (ISO 8601), and its age at the event, ms. */
  takenAt?: string
  ageMs?: number
  /** How long sampling had run when it was read, ms. */
  sinceMs?: number
  intervalBytes?: number
  /** How long reading it stopped this thread, ms. */
  pauseMs?: number
  /** The sampled live heap, bytes (allocations since sampling started). */
  sampledBytes?: number
  heapUsedBytes?: number
  /** The process's memory outside the V8 heap (rss − heapUsed): Buffers, ArrayBuffers, native; V8's profile cannot see it. null where the RSS could not be read. */
  outsideHeapBytes?: number | null
  /** The pprof file of this level or stall, if `dir` is set. */
  file?: string | null
  fileError?: string | null
  /**
   * Why no fresh read was made: `'rate'` (the last read is recent; its sites are given),
   * `'limit-nearer-than-pause'`, `'just-started'`, `'read-failed'`, `'unavailable'`, `'error'`; null when fresh.
   */
  skipped: string | null
  error?: string | null
  /** Heaviest first. */
  sites: HeapSite[]
  /**
   * Where the live Buffers were allocated, sampled apart (`heapProfile.buffers`,
   * on by default): Buffer.alloc, allocUnsafe, allocUnsafeSlow, from and
   * concat, each sample's JavaScript stack; `line` is the allocating call's.
   * `share` is of `sampledBytes`, the estimated live Buffer bytes. null when off.
   */
  buffers?: { sampledBytes: number; sites: HeapSite[] } | null
}

/** What `stall` and `stall-end` events carry. */
export interface StallEvent {
  verdict: 'stall'
  /** Which memory fills the limit: the verdict a kill's last words would have. */
  cause: 'v8-heap' | 'outside-heap' | 'page-cache' | 'kernel' | 'unknown'
  /** One sentence: for how long, on what evidence, and what fills the limit. */
  reason: string
  /** How long the stall has lasted (`stall`) or lasted (`stall-end`), ms. */
  durationMs: number
  /** Working set / limit in the last window. */
  workingSetRatio: number | null
  /**
   * Failed charges per second in the last window; null where it is not known,
   * as on cgroup v1 with a memory+swap limit that binds (the kernel counts no
   * failed memory+swap charge): `decidedBy` is `'refaults'` then.
   */
  failuresPerSec: number | null
  /** Which counter: v1 `memory.failcnt`, v2 `memory.events max`. */
  failureCounter: 'memory.failcnt' | 'memory.events max' | null
  /**
   * Where a parent cgroup holds the limit (a pod's cgroup above a container
   * without one, Docker's `--cgroup-parent`): its cgroup path. The kernel
   * counts the failed charges there, and what sits at the limit is
   * everything charged to it, so `failuresPerSec` and `workingSetRatio` are
   * that cgroup's. `null` where the process's own cgroup holds the limit.
   */
  limitingCgroup: string | null
  /**
   * Pressure in the last window: share of the time tasks stalled on memory,
   * and the kernel's 10 s average (both ratios). `cgroup`: the cgroup's own
   * `full` (v2); `system`: `/proc/pressure/memory` `some` (v1: the whole machine).
   */
  pressure: { scope: 'cgroup' | 'system'; kind: 'some' | 'full'; ratio: number; avg10: number } | null
  /** Refaults (evicted pages faulted back) per second in the last window. */
  refaultsPerSec: number | null
  /**
   * Which rule judged the last window a stall: `'charge-failures'` (the
   * failure rate with pressure or refaults), or `'refaults'` (cgroup v1, the
   * memory+swap limit binding, so no failed charge is counted: refaults at a
   * rate far above a healthy one); null when the last window was calm.
   */
  decidedBy: 'charge-failures' | 'refaults' | null
  ratio: number | null
  basisBytes: number | null
  limitBytes: number | null
  timestampMs: number
  /** Where the stall record went (`stall` only). */
  lastWords: string | null
  /** The top allocation sites (`stall` only; null when `heapProfile` is off). */
  heapProfile?: HeapProfileSites | null
}

/** The V8 numbers at the time of an event, bytes. */
export interface WatchV8 {
  heapUsedBytes: number
  heapTotalBytes: number
  externalBytes: number
  arrayBuffersBytes: number
  rssBytes: number
  heapSizeLimitBytes: number
}

/** What `threshold` and `recovered` events carry. */
export interface ThresholdEvent {
  /** Thresholds now at or below the ratio (1-based for `threshold`: the level reached). */
  level: number
  /** The threshold crossed (a ratio). */
  threshold: number
  /** basis / limit. */
  ratio: number
  /** The basis (working set by default), bytes. */
  basisBytes: number
  /** The effective limit, bytes. */
  limitBytes: number
  /** limit - basis, bytes. */
  headroomBytes: number
  /** Recent growth of the basis (exponentially weighted slope), bytes per second. */
  growthBytesPerSec: number
  /** Milliseconds until the limit at that rate; `null` when not growing. */
  timeToLimitMs: number | null
  /** When the sampler saw it, ms since the epoch. */
  timestampMs: number
  /**
   * Where this sample's last-words record went (`stderr`, a path, comma-separated), on the
   * event for the level the record is about; `null` when none was written (or none could be).
   */
  lastWords: string | null
  /** Why the record could not be written where asked (naming the file); `null` when it could. */
  lastWordsError: string | null
  /** V8's numbers when the event reached JavaScript. */
  v8: WatchV8
  /** The top allocation sites (`threshold` only; null when `heapProfile` is off). */
  heapProfile?: HeapProfileSites | null
}

/**
 * What `limit` events carry: the limit changed under the running process
 * (`docker update --memory`, an in-place pod resize, a write to the cgroup's
 * limit file). Emitted within one sampling interval of the change, before any
 * `threshold` or `recovered` event the new limit causes; the thresholds apply
 * to the new limit from that sample on.
 */
export interface LimitEvent {
  /** The limit before, bytes. */
  previousLimitBytes: number
  /** The new effective limit, bytes. */
  limitBytes: number
  /** Where the new limit comes from: `host` when no cgroup limit is left. */
  source: 'cgroup-v1' | 'cgroup-v2' | 'host'
  /** The monitor's level against the new limit. */
  level: number
  /** basis / new limit. */
  ratio: number
  basisBytes: number
  headroomBytes: number
  /** When the sampler saw it, ms since the epoch. */
  timestampMs: number
  /** V8's heap limit, bytes: fixed when node started, so it does not follow the limit. */
  heapSizeLimitBytes: number | null
  /**
   * The heap limit against the new limit: `'fits'` (at most 80% of it),
   * `'near'` (above 80%: little room outside the heap), `'above'` (at or
   * above the limit: the kernel kills before V8 reports heap exhaustion);
   * `null` without a cgroup limit or a heap number.
   */
  heapLimit: 'fits' | 'near' | 'above' | null
  /** The `HEAP_LIMIT_*` diagnosis for the new limit, as `getMemoryMetrics().diagnoses` has it; `null` when it fits. */
  diagnosis: Diagnosis | null
  /** V8's numbers when the event reached JavaScript. */
  v8: WatchV8
}

/** What a monitor's `error` event carries. */
export interface WatchError extends Error {
  code: 'ERR_OOMGUARD_READ' | 'ERR_OOMGUARD_LAST_WORDS' | 'ERR_OOMGUARD_INTERNAL' | 'ERR_OOMGUARD_V8'
}

/** The latest sample, as `monitor.current` returns it. */
export interface MonitorSample {
  level: number
  timestampMs: number | null
  ratio: number | null
  basisBytes: number | null
  limitBytes: number | null
  headroomBytes: number | null
  growthBytesPerSec: number | null
  timeToLimitMs: number | null
  usageBytes: number | null
  workingSetBytes: number | null
  rssBytes: number | null
  /** Where the limit came from; `host` without a memory cgroup. */
  source: 'cgroup-v1' | 'cgroup-v2' | 'host' | null
  /** Samples taken so far. */
  samples: number
  /** The sampler's current interval for this monitor, ms. */
  intervalMs: number | null
  /** True while reads fail; the numbers are then the last good ones. */
  failing: boolean
  /** True while stalled at the limit; `null` with `stall: false`. */
  stalled: boolean | null
  /** How long the current stall has lasted, ms; `null` when not stalled. */
  stallDurationMs: number | null
  /** Seconds spent stalled since the monitor started; `null` with `stall: false`. */
  stalledSeconds: number | null
}

/** `monitor.lastWordsFile`: who owns the record in the last-words file. */
export interface LastWordsFile {
  path: string
  /** True: this process writes the record; false: another does (`holderPid`), or did and died. */
  owner: boolean | null
  /** The process holding the file's lock, where this one does not and `/proc/locks` shows it. */
  holderPid: number | null
  holderCommand: string | null
}

export declare class Monitor extends EventEmitter {
  /** The same as watch(options) without a listener: the options are validated the same way. */
  constructor(options?: WatchOptions | null)
  /** The thresholds in force. */
  readonly thresholds: readonly number[]
  readonly basis: WatchBasis
  /** How many thresholds the basis is at or above (0 = below all). No I/O: nanoseconds. */
  readonly level: number
  /** True at or above the highest threshold. */
  readonly critical: boolean
  /** True while stalled at the limit; `null` with `stall: false`. No I/O. */
  readonly stalled: boolean | null
  /** The latest sample. No I/O. */
  readonly current: MonitorSample
  readonly closed: boolean
  /**
   * The last-words file and whether this process owns its record (the first process to
   * open it takes an exclusive `flock` for its lifetime; only the owner writes or empties
   * it). `null` without `lastWords.path`. `owner: null` where the path is not a regular file.
   */
  readonly lastWordsFile: LastWordsFile | null
  /** Stop watching. Idempotent. */
  close(): void
  /** Keep the process alive while the monitor runs (monitors are unref'd by default). */
  ref(): this
  unref(): this
  hasRef(): boolean
  on(event: 'threshold' | 'recovered', listener: (event: ThresholdEvent) => void): this
  /**
   * `error.code`: `ERR_OOMGUARD_READ` (the files became unreadable; the last good sample is
   * kept), `ERR_OOMGUARD_LAST_WORDS` (the last-words file could not be written) or
   * `ERR_OOMGUARD_INTERNAL` (a bug, caught; sampling goes on) or `ERR_OOMGUARD_V8`
   * (`process.memoryUsage()` failed, e.g. EMFILE: the RSS is null and the heap figures come
   * from `v8.getHeapStatistics()`). Each is said once until it clears.
   */
  on(event: 'error', listener: (error: WatchError) => void): this
  on(event: 'limit', listener: (event: LimitEvent) => void): this
  on(event: 'stall' | 'stall-end', listener: (event: StallEvent) => void): this
  once(event: 'threshold' | 'recovered', listener: (event: ThresholdEvent) => void): this
  once(event: 'error', listener: (error: WatchError) => void): this
  once(event: 'limit', listener: (event: LimitEvent) => void): this
  once(event: 'stall' | 'stall-end', listener: (event: StallEvent) => void): this
}

/**
 * Start a monitor. A native thread (one per process, shared by all monitors
 * and worker threads) samples the cgroup at an interval that shrinks near a
 * threshold, and emits `threshold` when the basis crosses one upward,
 * `recovered` when it falls back below it minus the hysteresis, `limit` when
 * the limit changes, and `error` (once) when the files become unreadable.
 * `listener` is attached to `threshold`.
 */
export declare function watch(listener?: (event: ThresholdEvent) => void): Monitor
export declare function watch(options?: WatchOptions | null, listener?: (event: ThresholdEvent) => void): Monitor

// options:watch-defaults
/** The defaults of `watch()`. */
export declare const WATCH_DEFAULTS: Readonly<{
  thresholds: readonly number[]
  basis: 'workingSet'
  hysteresis: number
  minIntervalMs: number
  maxIntervalMs: number
  lastWords: Readonly<{ path: undefined; stderr: boolean }>
  stall: Readonly<{ sustainMs: number; margin: number }>
  heapProfile: Readonly<{ start: 'threshold'; intervalBytes: number; dir: undefined; maxFiles: number; maxBytes: number; buffers: boolean; route: 'auto' }>
}>
// /options:watch-defaults

/** One file or package the loader tried, and why it did not load. */
export interface NativeAddonAttempt {
  /** The file's path, or `<package> (package)` where the package could not be resolved. */
  readonly file: string
  /** The loader's own error, with what the file is where that tells more (truncated, built for another arch). */
  readonly error: string
}

/**
 * Which native addon loaded, from where, or why none did. Frozen. Without
 * it, `getMemoryMetrics()` reads the same kernel files from JavaScript (with
 * the `NATIVE_UNAVAILABLE` diagnosis), `watch()` polls them on a timer
 * (no last words, no stall detection), and one warning (code
 * `OOMGUARD_NATIVE_UNAVAILABLE`) names the cause. `OOMGUARD_NATIVE=0` loads none.
 */
export interface NativeAddon {
  /** True when the addon loaded. */
  readonly loaded: boolean
  /** The `.node` file that loaded, else null. */
  readonly file: string | null
  /** The target it was built for, e.g. `linux-x64-gnu`; null when none loaded. */
  readonly target: string | null
  /** This process's libc: `gnu` (glibc) or `musl`; null off Linux, with `OOMGUARD_NATIVE=0`, or when it cannot be told. */
  readonly libc: 'gnu' | 'musl' | null
  /** Why none loaded (the platform and libc detected, what was tried); null when one did. */
  readonly reason: string | null
  /** Each file or package tried before the one that loaded, or all of them when none did. */
  readonly tried: readonly NativeAddonAttempt[]
}

/** Which native addon loaded, or why none did. */
export declare const nativeAddon: NativeAddon

// ---------------------------------------------------------------------------
// shed(): load shedding for node:http, Express and Connect (lib/integrations/shed.js).

import type { IncomingMessage, ServerResponse } from 'node:http'

/** What the health route answers (JSON), and what `guard.health()` returns. No I/O. */
export interface ShedHealth {
  /** `shedding` while requests get 503 (the health route then answers 503 too). */
  status: 'ok' | 'shedding'
  /** The monitor's level now: how many thresholds the basis is at or above. */
  level: number
  /** The level at which requests are shed (`options.level`). */
  shedLevel: number
  /** The monitor's thresholds (ratios of the limit). */
  thresholds: number[]
  /** What the ratio measures: `workingSet` unless the monitor was made otherwise. */
  basis: WatchBasis | null
  /** basis / limit; `null` before the first sample. */
  ratio: number | null
  limitBytes: number | null
  workingSetBytes: number | null
  usageBytes: number | null
  basisBytes: number | null
  /** limit - basis, bytes. */
  headroomBytes: number | null
  growthBytesPerSec: number | null
  /** Milliseconds until the limit at the current growth rate; `null` when not growing. */
  timeToLimitMs: number | null
  source: 'cgroup-v1' | 'cgroup-v2' | 'host' | null
  /** True while the monitor's reads fail (the numbers are the last good ones). */
  failing: boolean
  /** When the sampler took the numbers (ISO 8601). */
  sampledAt: string | null
  /** Requests answered 503 so far by this guard (or plugin). */
  shedTotal: number
  /** The `Retry-After` seconds while shedding, else `null`. */
  retryAfter: number | null
}

// options:shed-interface
/** Options of `shed()` (and of the Fastify plugin, `oomguard/fastify`). */
export interface ShedOptions<Req = IncomingMessage, Res = ServerResponse> {
  /**
   * The monitor to read. Default: `shed()` creates one with
   * `watch(options.watch)` and owns it: `guard.close()` closes it. A monitor
   * passed in is never closed by the guard.
   */
  monitor?: Monitor
  /** Options for the monitor `shed()` creates (only without `monitor`). */
  watch?: WatchOptions
  /**
   * Shed while `monitor.level >= level`, a whole number from 1 to
   * `monitor.thresholds.length` (default: the highest, i.e. at or above the
   * last threshold; with the default thresholds, 95% of the limit). Shedding
   * stops when the monitor leaves that level (its threshold minus the
   * hysteresis). To shed at another ratio, give the monitor that threshold:
   * `shed({ watch: { thresholds: [0.85] } })`.
   */
  level?: number
  /** The `Retry-After` header, whole seconds (0 to 2^31-1). Default 10. */
  retryAfter?: number
  /**
   * Requests that are never shed (at most 1024 paths). Paths are compared with the request's path
   * (query string ignored), as prefixes at a `/` boundary: `/health` covers
   * `/health` and `/health/db`, not `/healthy`. Default: `/health`, `/healthz`, `/ready`, `/readyz`, `/live`, `/livez`, `/metrics`. `[]`
   * excludes nothing. A function decides per request instead (it receives
   * the framework's request object; it runs only while shedding).
   */
  exclude?: readonly string[] | ((req: Req) => boolean)
  /**
   * The memory health route (GET/HEAD): JSON `ShedHealth`, 200 when `ok`,
   * 503 with `Retry-After` when `shedding`. Exact path, query string allowed.
   * Default `/health/memory`; `false` for none.
   */
  healthPath?: string | false | null
  /** Called after each 503 is sent (for logs, metrics). It must not throw. */
  onShed?: (req: Req, res: Res) => void
}
// /options:shed-interface

/** Connect/Express-style middleware with the shedding state attached. */
/** The state of a load-shedding guard (middleware or Fastify plugin). */
export interface ShedState {
  /** The monitor read on each request (created by `shed()` unless passed in). */
  readonly monitor: Monitor
  /** The level at which requests are shed. */
  readonly level: number
  readonly retryAfter: number
  readonly healthPath: string | null
  /** True while requests are being shed. No I/O. */
  readonly shedding: boolean
  /** Requests answered 503 so far. */
  readonly shedTotal: number
  /** The health route's body, now. No I/O. */
  health(): ShedHealth
}

export interface ShedMiddleware extends ShedState {
  (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void
  /**
   * A plain node:http handler that sheds, then calls `handler`:
   * `http.createServer(guard.wrap(handler))`. Allocates nothing per request.
   */
  wrap<R>(handler: (req: IncomingMessage, res: ServerResponse) => R): (req: IncomingMessage, res: ServerResponse) => R | undefined
  /**
   * Stop: the guard then passes every request on (no shedding, no health
   * route), and closes the monitor if `shed()` created it. Idempotent.
   */
  close(): void
}

/**
 * Load shedding. Returns middleware for node:http, Express and Connect that,
 * while the container's memory is at or above `options.level` of the monitor,
 * answers `503 Service Unavailable` with `Retry-After` and a small JSON body
 * (`{ statusCode, code: 'OOMGUARD_SHEDDING', error, message }`) instead of
 * calling `next()`. Health and metrics paths pass (`options.exclude`), and
 * `options.healthPath` answers the memory state.
 *
 * The per-request check reads `monitor.level` only (shared memory the native
 * sampler writes): no file read, no native call.
 *
 * ```js
 * app.use(shed())                                       // Express, Connect
 * const guard = shed()
 * http.createServer(guard.wrap(handler))                // node:http
 * http.createServer((req, res) => guard(req, res, () => handler(req, res)))
 * ```
 *
 * Paths are matched against `req.url` as the middleware sees it: in Express,
 * mount it with `app.use(guard)` at the top so that is the full path.
 * Throws a `TypeError` or `RangeError` naming the option for bad options.
 */
export declare function shed(options?: ShedOptions | null): ShedMiddleware

/** The defaults of `shed()`. */
export declare const SHED_DEFAULTS: Readonly<{
  retryAfter: number
  exclude: readonly string[]
  healthPath: string
}>

// ---------------------------------------------------------------------------
// Metrics: Prometheus text, prom-client, OpenTelemetry (lib/integrations/prometheus.js,
// lib/integrations/prom-client.js, lib/integrations/otel.js). The names are listed in docs-metrics.md.
// prom-client and @opentelemetry/api are optional peer dependencies, so their
// types are described structurally here rather than imported.

/** What the metrics integrations read from a watch() monitor (a `Monitor` fits). */
export interface MonitorLike {
  readonly level: number
  readonly thresholds: readonly number[]
  /** When `true`, the level is not reported (the thresholds still are). */
  readonly closed?: boolean
}

/** Options of `prometheus()`. */
export interface PrometheusOptions {
  /**
   * The prefix of every metric name. Default `oomguard_`. Must be a metric
   * name prefix (`[a-zA-Z_][a-zA-Z0-9_]*`, no colons, no leading `__`) that
   * keeps the names out of `container_memory_*`, `process_*` and `nodejs_*`
   * (cAdvisor, prom-client); else a `RangeError` naming `options.prefix`.
   */
  prefix?: string
  /** Also report this monitor's level and thresholds. */
  monitor?: MonitorLike | null
  /** A directory that stands in for `/` (passed to getMemoryMetrics()). Not with `metrics`. */
  root?: string
  /** A `getMemoryMetrics()` result to format instead of reading one. */
  metrics?: MemoryMetrics | null
}

/**
 * One snapshot of the process's memory in the Prometheus text exposition
 * format 0.0.4: HELP and TYPE for every family, gauges for levels, counters
 * (`_total`) for the kernel's event counts, no series where a value is not
 * known. Serve it with the `Content-Type` `prometheus.contentType`.
 *
 * ```js
 * if (req.url === '/metrics') {
 *   res.writeHead(200, { 'Content-Type': prometheus.contentType })
 *   res.end(prometheus({ monitor }))
 * }
 * ```
 *
 * Throws a `TypeError` or `RangeError` naming the option for bad options.
 */
export declare const prometheus: {
  (options?: PrometheusOptions | null): string
  /** `text/plain; version=0.0.4; charset=utf-8` */
  readonly contentType: string
}

/** The part of a prom-client `Registry` that `registerPromClient()` uses. */
export interface PromClientRegistryLike {
  // biome-ignore lint/suspicious/noExplicitAny: a stand-in for prom-client's type (not a dependency): any fits every version
  registerMetric(metric: any): void
  getSingleMetric(name: string): unknown
  removeSingleMetric(name: string): void
}

/** Options of `registerPromClient()`. */
export interface PromClientOptions {
  /**
   * The registry to register on. Default: prom-client's global `register`
   * (prom-client is then required; without it an error with code
   * `ERR_OOMGUARD_PEER_MISSING` is thrown).
   */
  register?: PromClientRegistryLike | null
  /** The prefix of every metric name, as in `prometheus()`. Default `oomguard_`. */
  prefix?: string
  /** Also report this monitor's level and thresholds. */
  monitor?: MonitorLike | null
  /** A directory that stands in for `/` (passed to getMemoryMetrics()). */
  root?: string
}

/** What the integrations return. */
export interface MetricsRegistration {
  /** The metric (or instrument) names registered. */
  readonly names: readonly string[]
  /** Remove them (prom-client) or the collection callback (OpenTelemetry). Idempotent. */
  unregister(): void
}

/**
 * Register the memory metrics on a prom-client registry, with the same names,
 * types and labels as `prometheus()`. Each scrape reads one getMemoryMetrics()
 * snapshot, shared by all the families. Throws an error with code
 * `ERR_OOMGUARD_DUPLICATE_METRIC` when a name is already registered.
 *
 * ```js
 * const client = require('prom-client')
 * client.collectDefaultMetrics()
 * registerPromClient({ register: client.register })
 * ```
 */
export declare function registerPromClient(options?: PromClientOptions | null): MetricsRegistration

/** The part of an OpenTelemetry `Meter` that `observeMemory()` uses. */
export interface OtelMeterLike {
  // biome-ignore lint/suspicious/noExplicitAny: a stand-in for @opentelemetry/api's type (not a dependency): any fits every version
  createObservableGauge(name: string, options?: any): any
  // biome-ignore lint/suspicious/noExplicitAny: a stand-in for @opentelemetry/api's type (not a dependency): any fits every version
  createObservableCounter(name: string, options?: any): any
  // biome-ignore lint/suspicious/noExplicitAny: a stand-in for @opentelemetry/api's type (not a dependency): any fits every version
  createObservableUpDownCounter(name: string, options?: any): any
  // biome-ignore lint/suspicious/noExplicitAny: a stand-in for @opentelemetry/api's type (not a dependency): any fits every version
  addBatchObservableCallback(callback: (observableResult: any) => void, observables: any[]): void
  // biome-ignore lint/suspicious/noExplicitAny: a stand-in for @opentelemetry/api's type (not a dependency): any fits every version
  removeBatchObservableCallback(callback: (observableResult: any) => void, observables: any[]): void
}

/** Options of `observeMemory()`. */
export interface OtelOptions {
  /** Also report this monitor's level and thresholds. */
  monitor?: MonitorLike | null
  /** A directory that stands in for `/` (passed to getMemoryMetrics()). */
  root?: string
}

/**
 * Observe the memory numbers on an OpenTelemetry Meter: asynchronous
 * instruments with semantic-convention names where they exist
 * (`container.memory.usage`, `container.memory.working_set`,
 * `container.memory.available`, `container.memory.rss`,
 * `process.memory.usage`, `v8js.memory.heap.used` and
 * `v8js.memory.heap.space.size` per `v8js.heap.space.name`), `oomguard.*`
 * otherwise. One batch callback: one snapshot per collection.
 * `unregister()` removes the callback.
 *
 * ```js
 * const { metrics } = require('@opentelemetry/api')
 * observeMemory(metrics.getMeter('my-service'))
 * ```
 */
export declare function observeMemory(meter: OtelMeterLike, options?: OtelOptions | null): MetricsRegistration

// ---------------------------------------------------------------------------
// doctor: the report `oomguard doctor` prints (lib/integrations/doctor.js).

/** The mark of one checklist item: `manual` is "check by hand" (not checkable from inside). */
export type DoctorCheckStatus = 'pass' | 'warn' | 'fail' | 'manual'

/** One item of the doctor's sizing checklist. */
export interface DoctorCheck {
  /**
   * Stable identifier: `limit-set`, `heap-below-limit`, `native-headroom`,
   * `workers`, `usage-now`, `oom-kills`, `pressure`, `files-readable` (only
   * with a memory cgroup), `pod-limits`.
   */
  id: string
  title: string
  status: DoctorCheckStatus
  /** What was found, one or two sentences. */
  detail: string
  /** What to check by hand (with `status: 'manual'`, and where a by-hand check helps). */
  howTo?: string
  /** A command for the check by hand. */
  command?: string
}

/** One segment of the breakdown bar, bytes and share of the limit. */
export interface DoctorSegment {
  /** `free` is limit - usage; `file` is page cache without shmem; `other` is charged but in none of the others; `used` replaces them when memory.stat is unreadable. */
  key: 'anon' | 'file' | 'shmem' | 'kernel' | 'other' | 'used' | 'free'
  label: string
  bytes: number
  ratio: number
}

/** What `doctor.diagnose()` returns, and what `oomguard doctor --json` prints. */
export interface DoctorReport {
  oomguard: 'doctor'
  /** The report's format version. */
  version: 1
  /** When the metrics were read (ISO 8601). */
  time: string | null
  cgroup: CgroupInfo | null
  limit: {
    bytes: number | null
    source: MemoryMetrics['source']
    /** Where the limit came from, in words (which file, this cgroup or a parent, or the host). */
    origin: string
    cgroupLimitBytes: number | null
    leafLimitBytes: number | null
    highBytes: number | null
    leafHighBytes: number | null
    constrainedMemoryBytes: number | null
    hostTotalBytes: number | null
  }
  memory: {
    usageBytes: number | null
    workingSetBytes: number | null
    basisBytes: number | null
    usageRatio: number | null
    headroomBytes: number | null
    /**
     * The doctor's own processes (it, and the npm/npx that started it), by
     * their resident anonymous memory, and the usage, working set,
     * ratio and headroom without them: the checks count the service alone.
     * `null` where the doctor does not run in the cgroup it reads (`--root`).
     */
    doctor: {
      bytes: number
      processes: Array<{ pid: number; command: string | null; bytes: number }>
      usageBytes: number | null
      workingSetBytes: number | null
      usageRatio: number | null
      headroomBytes: number | null
    } | null
  }
  /** The charged memory against the limit; `null` without cgroup usage. */
  breakdown: { limitBytes: number; usageBytes: number; segments: DoctorSegment[] } | null
  heap: {
    heapSizeLimitBytes: number | null
    /** `process`: the doctor process's own heap limit; `flag`: given with --heap-limit (`env.heapLimitFrom`). */
    from: 'process' | 'flag'
    nodeVersion: string | null
    nodeOptions: string | null
    /** The container limit (cgroup), `null` when the limit is the host's. */
    containerLimitBytes: number | null
    ratio: number | null
    /** The heap band (lib/core/heap-band.json): pass within [low, high] of the limit, advice aims at target. */
    band: HeapBand
    /** From the HEAP_LIMIT_* diagnoses: `fail` at or above the limit, `warn` above the band (80%). */
    verdict: 'pass' | 'warn' | 'fail' | 'unknown'
    message: string
    /** The diagnosis's `recommendedMaxOldSpaceSizeMib`, when there is one. */
    recommendedMaxOldSpaceSizeMib: number | null
    /** `NODE_OPTIONS="..."` (the advice's first option), when the heap limit is not in the band. */
    recommendation: string | null
    /** The advice for this container, measured where the doctor runs in it; `null` without a container limit. */
    advice: HeapAdvice | null
    /** Where node's default heap limit comes from (libuv's constrained memory); `null` when unknown. */
    nodeSizing: {
      constrainedMemoryBytes: number
      /** `max`: this cgroup's limit; `high`: its memory.high (v1 soft limit), below the limit; `host`: the host's memory. */
      from: 'max' | 'high' | 'host'
      defaultHeapLimitBytes: number | null
      text: string
    } | null
  }
  oomKills: {
    count: number | null
    /** `memory.events` (v2) or `memory.oom_control` (v1). */
    file: string | null
    events: MemoryEvents | null
  }
  pressure: { scope: 'cgroup' | 'system'; some: PressureLine; full: PressureLine | null } | null
  /** Peak and swap; `null` without a memory cgroup. */
  swap: {
    peakBytes: number | null
    swapBytes: number | null
    swapLimitBytes: number | null
    /** The host's swap space (`SwapTotal`); 0: none, and the swap text says so. */
    hostSwapTotalBytes: number | null
    /** When the kernel kills with (or without) swap, in words. */
    message: string
  } | null
  /** The processes of the cgroup; `null` without a process list. */
  processes: {
    count: number
    /**
     * Largest first; `share` is `anonBytes` (resident anonymous memory)
     * over the working set: the shares add up to at most 1 unless
     * processes share pages after fork() or brought charges from another cgroup
     * (the text says so where one is over 1).
     */
    largest: Array<{ pid: number; command: string | null; rssBytes: number | null; anonBytes: number | null; share: number | null }>
    /** When the list was read (milliseconds since the epoch). */
    timestampMs: number | null
    /** This process's RSS, resident anonymous memory, and its share of the working set. */
    selfRssBytes: number | null
    selfAnonBytes: number | null
    selfShare: number | null
  } | null
  checks: DoctorCheck[]
  summary: { pass: number; warn: number; fail: number; manual: number }
  diagnoses: Diagnosis[]
}

/** The heap band: shares of the container limit. */
export interface HeapBand {
  low: number
  target: number
  high: number
}

/** Heap flags for a container and the heap limit each gives. */
export interface HeapAdvice {
  band: HeapBand
  limitBytes: number
  /** `floor(limit x target)` in whole MiB, bytes. */
  targetBytes: number
  /** The Node version the advice is for. */
  nodeVersion: string
  /** Whether the figures were measured (node started with the flags in this cgroup) or modelled. */
  measured: boolean
  /** Why not measured, when not. */
  note: string | null
  /** The heap limit node has without heap flags, bytes. */
  defaultHeapLimitBytes: number
  /** The percentage form first where node has it, then the fixed-MiB form. */
  options: Array<{
    form: 'percentage' | 'fixed'
    nodeOptions: string
    heapSizeLimitBytes: number
    ratio: number
    inBand: boolean
    measured: boolean
  }>
}

/** What the doctor cannot read from the metrics; all optional. */
export interface DoctorEnv {
  /** Where `metrics.v8.heapSizeLimitBytes` came from (default `process`). */
  heapLimitFrom?: 'process' | 'flag'
  /** `process.version`, shown when the heap limit is the process's own. */
  nodeVersion?: string | null
  /** `process.env.NODE_OPTIONS`, shown when the heap limit is the process's own. */
  nodeOptions?: string | null
  /** The service's worker thread count; without it the workers check is by hand. */
  workers?: number | null
  /** The heap advice (`oomguard doctor` measures it); without it the report has no advice. */
  heapAdvice?: HeapAdvice | null
  /** Node's default heap limit, bytes, where there is no container limit to advise for. */
  defaultHeapLimitBytes?: number | null
  /**
   * An earlier `getMemoryMetrics()` of the same cgroup: adds the
   * `charge-failures` check (failed charges, pressure and refaults since
   * then). The CLI takes one half a second before, on the live system.
   */
  earlier?: MemoryMetrics | null
  /**
   * The doctor's own processes in the cgroup it reads (it, and the npm/npx
   * that started it), by resident anonymous memory: the report
   * counts the service without them (`memory.doctor`). The CLI gathers it.
   */
  own?: { bytes: number; processes: Array<{ pid: number; command: string | null; bytes: number }> } | null
}

/** The doctor as pure functions (`oomguard doctor` is diagnose + render). */
export declare const doctor: Readonly<{
  /** Build the report from one `getMemoryMetrics()` result (the report reads its `diagnoses`). */
  buildReport(metrics: MemoryMetrics, env?: DoctorEnv | null): DoctorReport
  /** The same function as `buildReport`, under its earlier name. */
  diagnose(metrics: MemoryMetrics, env?: DoctorEnv | null): DoctorReport
  /** The report as text; `color: true` adds ANSI colours. */
  render(report: DoctorReport, options?: { color?: boolean } | null): string
  /** Whether to colour: FORCE_COLOR, then NO_COLOR, then `stream.isTTY` (and TERM not `dumb`). */
  useColor(stream: { isTTY?: boolean } | null | undefined, env: Record<string, string | undefined>): boolean
}>
