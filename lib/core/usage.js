'use strict'
// The V8 numbers now, without ever throwing: process.memoryUsage() and the
// heap limit. process.memoryUsage() opens /proc/self/stat for the RSS, so it
// throws when the process has no file descriptor left (EMFILE) or /proc is
// gone; then the heap figures come from v8.getHeapStatistics() (no file),
// `rss` and `arrayBuffers` are NaN (unknown) and `error` says why. Used by
// the monitors' dispatch (lib/core/watch.js) and getMemoryMetrics() (lib/core/metrics.js).

// node:v8 on first use (start-up time); a builtin, so it loads with no descriptor left.
const v8 = { getHeapStatistics: () => require('node:v8').getHeapStatistics() }

let heapSizeLimit = 0
/** Fixed at start-up (flags, cgroup): read once. */
function heapLimit() {
  if (heapSizeLimit === 0) heapSizeLimit = v8.getHeapStatistics().heap_size_limit
  return heapSizeLimit
}

/**
 * `{ rss, heapTotal, heapUsed, external, arrayBuffers, heapSizeLimit, error }`:
 * process.memoryUsage()'s keys (NaN where unknown), and `error` null or the
 * Error process.memoryUsage() threw. `deferHeapLimit`: NaN for the heap
 * limit where it was never read, instead of reading it now.
 */
function usageNow(deferHeapLimit = false) {
  let u
  try {
    u = process.memoryUsage()
  } catch (err) {
    let h = null
    try {
      h = v8.getHeapStatistics()
    } catch {}
    u = {
      rss: NaN,
      heapTotal: h ? h.total_heap_size : NaN,
      heapUsed: h ? h.used_heap_size : NaN,
      external: h ? h.external_memory : NaN,
      arrayBuffers: NaN,
      error: err,
    }
  }
  if (u.error === undefined) u.error = null
  try {
    // Unknown (NaN) until first read where the caller can wait for it: the
    // read loads node:v8, about 2 ms of a process's start-up.
    u.heapSizeLimit = deferHeapLimit && heapSizeLimit === 0 ? NaN : heapLimit()
  } catch {
    u.heapSizeLimit = NaN
  }
  return u
}

/** A one-line reason from what usageNow() caught. */
function usageError(err) {
  return (err && (err.code || err.message)) || String(err)
}

module.exports = { usageNow, heapLimit, usageError, heapLimitKnown: () => heapSizeLimit !== 0 }
