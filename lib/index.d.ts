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
