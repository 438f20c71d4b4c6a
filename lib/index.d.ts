import type { MemoryMetrics, MemoryUsageInput, MetricsOptions } from '../index'

export type {
  CgroupInfo,
  Diagnosis,
  MemoryEvents,
  MemoryMetrics,
  MemoryPressure,
  MemoryStat,
  MemoryUsageInput,
  MetricsOptions,
  PressureLine,
  V8Metrics,
} from '../index'

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

export interface WatchOptions {
  /** Ratios of the limit, ascending, each in (0, 1). Default `[0.8, 0.9, 0.95]`. */
  thresholds?: number[]
  /**
   * What is compared with the limit. `workingSet` (default): usage minus
   * inactive page cache, what kubelet evicts by; `usage`: everything charged
   * (`memory.current` / `memory.usage_in_bytes`), page cache included;
   * `rss`: this process's resident set (`/proc/self/statm`).
   */
  basis?: 'workingSet' | 'usage' | 'rss'
  /** A level is left only when the ratio falls this far below its threshold. Default 0.05. */
  hysteresis?: number
  /** Shortest sampling interval, ms, used close to a threshold. Default 1. */
  minIntervalMs?: number
  /** Longest sampling interval, ms, used far from every threshold. Default 1000. */
  maxIntervalMs?: number
  /**
   * The line the sampler thread writes itself when the highest threshold is
   * crossed. `true` (default): to stderr. `false`: not at all.
   * `{ path }`: also to that file, truncated to the latest record (for
   * Kubernetes, the container's `terminationMessagePath`, `/dev/termination-log`).
   */
  lastWords?: boolean | { path?: string; stderr?: boolean }
  /** A directory that stands in for `/` (fixture trees). Default `/`. */
  root?: string
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
  /** Where the last-words line went (`stderr`, a path), when this crossing wrote one. */
  lastWords: string | null
  /** V8's numbers when the event reached JavaScript. */
  v8: WatchV8
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
}

export declare class Monitor extends EventEmitter {
  /** The thresholds in force. */
  readonly thresholds: readonly number[]
  readonly basis: 'workingSet' | 'usage' | 'rss'
  /** How many thresholds the basis is at or above (0 = below all). No I/O: nanoseconds. */
  readonly level: number
  /** True at or above the highest threshold. */
  readonly critical: boolean
  /** The latest sample. No I/O. */
  readonly current: MonitorSample
  readonly closed: boolean
  /** Stop watching. Idempotent. */
  close(): void
  /** Keep the process alive while the monitor runs (monitors are unref'd by default). */
  ref(): this
  unref(): this
  hasRef(): boolean
  on(event: 'threshold' | 'recovered', listener: (event: ThresholdEvent) => void): this
  on(event: 'error', listener: (error: Error) => void): this
  once(event: 'threshold' | 'recovered', listener: (event: ThresholdEvent) => void): this
  once(event: 'error', listener: (error: Error) => void): this
}

/**
 * Start a monitor. A native thread (one per process, shared by all monitors
 * and worker threads) samples the cgroup at an interval that shrinks near a
 * threshold, and emits `threshold` when the basis crosses one upward,
 * `recovered` when it falls back below it minus the hysteresis, and `error`
 * (once) when the files become unreadable. `listener` is attached to `threshold`.
 */
export declare function watch(listener?: (event: ThresholdEvent) => void): Monitor
export declare function watch(options?: WatchOptions | null, listener?: (event: ThresholdEvent) => void): Monitor

/** The defaults of `watch()`. */
export declare const WATCH_DEFAULTS: Readonly<{
  thresholds: readonly number[]
  basis: 'workingSet'
  hysteresis: number
  minIntervalMs: number
  maxIntervalMs: number
  lastWords: Readonly<{ stderr: boolean; path: undefined }>
}>
