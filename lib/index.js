'use strict'
// The hand-written JavaScript layer: the native addon (../index.js, generated
// by napi-rs) cannot call process.memoryUsage() or v8.getHeapStatistics()
// itself, so this fills them in when the caller leaves them out.

const v8 = require('node:v8')
const native = require('../index.js')

let heapSizeLimit = null
function currentHeapSizeLimit() {
  // heap_size_limit is fixed at start-up (flags, cgroup); reading it once is enough.
  if (heapSizeLimit === null) heapSizeLimit = v8.getHeapStatistics().heap_size_limit
  return heapSizeLimit
}

function v8Usage(usage) {
  if (usage === undefined || usage === null) {
    const u = process.memoryUsage()
    u.heapSizeLimit = currentHeapSizeLimit()
    return u
  }
  if (typeof usage === 'object' && usage.heapSizeLimit === undefined) {
    // Keep the caller's object untouched; add the heap limit V8 knows.
    return {
      rss: usage.rss,
      heapTotal: usage.heapTotal,
      heapUsed: usage.heapUsed,
      external: usage.external,
      arrayBuffers: usage.arrayBuffers,
      heapSizeLimit: currentHeapSizeLimit(),
    }
  }
  return usage // the native side validates it and names bad fields
}

/**
 * @param {import('../index').MemoryUsageInput | null} [usage]
 * @param {import('../index').MetricsOptions | null} [options]
 * @returns {import('../index').MemoryMetrics}
 */
function getMemoryMetrics(usage, options) {
  return native.getMemoryMetrics(v8Usage(usage), options)
}

module.exports = {
  ...native,
  getMemoryMetrics,
}
