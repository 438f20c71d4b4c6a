'use strict'
// getMemoryMetrics() off Linux: no cgroups, no /proc. The same shape, with
// every cgroup field null, the host's memory from the os module and the V8
// numbers as on Linux.

const os = require('node:os')

const NO_MEMORY_CGROUP = Object.freeze({
  code: 'NO_MEMORY_CGROUP',
  severity: 'info',
  message: `No cgroup memory controller on ${process.platform}; numbers are the host's.`,
  limitBytes: null,
  heapSizeLimitBytes: null,
  recommendedMaxOldSpaceSizeMib: null,
  recommendedMaxSemiSpaceSizeMib: null,
  recommendedMaxOldSpaceSizePercentage: null,
  nodeOptions: null,
  percentageNodeOptions: null,
  modelledHeapSizeLimitBytes: null,
  oomKillCount: null,
  path: null,
})
const DIAGNOSES = Object.freeze([NO_MEMORY_CGROUP])

const nn = (x) => (x === x ? x : null) // NaN is null

/** `v` = [rss, heapTotal, heapUsed, external, arrayBuffers, heapSizeLimit], NaN when unknown. */
function portableMetrics(v) {
  const total = os.totalmem()
  const available = os.freemem()
  const used = total - available
  const heapLimit = nn(v[5])
  return {
    timestampMs: Date.now(),
    source: 'host',
    cgroup: null,
    limitBytes: total,
    cgroupLimitBytes: null,
    leafLimitBytes: null,
    highBytes: null,
    leafHighBytes: null,
    constrainedMemoryBytes: total,
    usageBytes: null,
    workingSetBytes: null,
    peakBytes: null,
    swapBytes: null,
    swapLimitBytes: null,
    basisBytes: used,
    usageRatio: used / total,
    headroomBytes: available,
    heapLimitRatio: heapLimit === null ? null : heapLimit / total,
    stalled: null,
    rssBytes: process.memoryUsage.rss(),
    hostTotalBytes: total,
    hostAvailableBytes: available,
    stat: null,
    events: null,
    pressure: null,
    processes: null,
    v8: {
      rssBytes: nn(v[0]),
      heapTotalBytes: nn(v[1]),
      heapUsedBytes: nn(v[2]),
      externalBytes: nn(v[3]),
      arrayBuffersBytes: nn(v[4]),
      heapSizeLimitBytes: heapLimit,
    },
    diagnoses: DIAGNOSES,
  }
}

module.exports = { portableMetrics }
