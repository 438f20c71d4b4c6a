'use strict'
// getMemoryMetrics() off Linux: no cgroups, no /proc. The same object as on
// Linux, built by the same function from the same slot list (lib/core/reading.js):
// every cgroup field null, the host's memory from the os module and the V8
// numbers as on Linux.

const os = require('node:os')
const { SLOT, RAW_COUNT, RAW_START, INPUT, V8_INPUTS, builder, nn, flag, raw } = require('./reading.js')
const { noMemoryCgroup } = require('./diagnoses.json')

/**
 * A diagnosis declared in lib/core/diagnoses.json, with a diagnosis's other
 * fields (the generated Diagnosis type), none of which applies without the
 * addon. __test__/portable.test.js checks the keys against Linux's.
 */
function declaredDiagnosis(declared, message, path = null) {
  return Object.freeze({
    code: declared.code,
    severity: declared.severity,
    message,
    limitBytes: null,
    heapSizeLimitBytes: null,
    recommendedMaxOldSpaceSizeMib: null,
    recommendedMaxSemiSpaceSizeMib: null,
    recommendedMaxOldSpaceSizePercentage: null,
    nodeOptions: null,
    percentageNodeOptions: null,
    modelledHeapSizeLimitBytes: null,
    oomKillCount: null,
    path,
  })
}

const NO_MEMORY_CGROUP = declaredDiagnosis(noMemoryCgroup, noMemoryCgroup.offLinux.replace('{platform}', process.platform))

// What describe() gives on Linux: no cgroup, no raw memory.stat, no processes.
const SHAPE = Object.freeze({
  source: 'host',
  cgroup: null,
  rawKeys: Object.freeze([]),
  pressureScope: null,
  limitingCgroupPath: null,
  diagnoses: Object.freeze([NO_MEMORY_CGROUP]),
  processes: null,
})

const HEAP_LIMIT = V8_INPUTS.findIndex(([key]) => key === 'heapSizeLimit')
const buf = new Float64Array(RAW_START)

/** `v`: the caller's V8 numbers in lib/core/reading.js's V8_INPUTS order, NaN when unknown. */
function portableMetrics(v) {
  const total = os.totalmem()
  const available = os.freemem()
  const used = total - available
  buf.fill(NaN)
  buf[SLOT.timestampMs] = Date.now()
  buf[SLOT.limitBytes] = total
  buf[SLOT.constrainedMemoryBytes] = total
  buf[SLOT.basisBytes] = used
  buf[SLOT.usageRatio] = used / total
  buf[SLOT.headroomBytes] = available
  buf[SLOT.heapLimitRatio] = v[HEAP_LIMIT] / total
  buf[SLOT.rssBytes] = process.memoryUsage.rss()
  buf[SLOT.hostTotalBytes] = total
  buf[SLOT.hostAvailableBytes] = available
  buf[SLOT[INPUT]] = 1
  for (let i = 0; i < V8_INPUTS.length; i++) buf[V8_INPUTS[i][1]] = v[i]
  buf[RAW_COUNT] = 0
  return builder()(nn, flag, raw, buf, SHAPE)
}

module.exports = { portableMetrics, declaredDiagnosis }
