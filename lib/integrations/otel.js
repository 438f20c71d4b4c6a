'use strict'
// observeMemory(): the memory numbers as OpenTelemetry asynchronous
// instruments on a Meter the caller passes in. One batch callback reads one
// getMemoryMetrics() snapshot (and one v8.getHeapSpaceStatistics()) per
// collection and observes every instrument from it.
//
// @opentelemetry/api is an optional peer dependency and is never required:
// everything goes through the Meter given. Semantic-convention names are used
// where the conventions have one; `oomguard.*` names where they do not (the
// mapping is in docs-metrics.md).

const v8 = require('node:v8')
const core = require('../core/metrics.js')
const { invalidType, metricsConfig, monitorLevel } = require('../core/options.js')
const { readOptions, VERSION, STAT_KINDS, EVENTS, monitorStalledSeconds } = require('./prometheus.js')

// @opentelemetry/api's ValueType enum (INT = 0, DOUBLE = 1), without requiring it.
const INT = 0
const DOUBLE = 1

const WINDOWS = [
  ['10s', 'avg10'],
  ['60s', 'avg60'],
  ['300s', 'avg300'],
]

// [name, kind, unit, valueType, description]. kind: gauge, updown (a level
// the conventions model as an UpDownCounter), counter (monotonic).
const INSTRUMENTS = [
  ['container.memory.usage', 'updown', 'By', INT, 'Memory charged to the cgroup, page cache included: v2 memory.current, v1 memory.usage_in_bytes.'],
  ['container.memory.working_set', 'updown', 'By', INT, 'Usage minus inactive page cache (inactive_file), as kubelet and cAdvisor count the working set.'],
  ['container.memory.available', 'updown', 'By', INT, 'The cgroup memory limit minus the working set (at least 0); absent without a cgroup limit.'],
  ['container.memory.rss', 'updown', 'By', INT, 'Anonymous memory of the cgroup: v2 memory.stat anon, v1 total_rss.'],
  ['process.memory.usage', 'updown', 'By', INT, 'Resident set size of this process (/proc/self/statm).'],
  ['v8js.memory.heap.used', 'updown', 'By', INT, 'V8 heap space used (v8.getHeapSpaceStatistics() space_used_size), per heap space.'],
  ['v8js.memory.heap.space.size', 'updown', 'By', INT, 'V8 heap space reserved (v8.getHeapSpaceStatistics() space_size), per heap space.'],
  ['oomguard.info', 'gauge', '1', INT, 'Always 1; attributes: the memory cgroup version and path, and the oomguard version.'],
  ['oomguard.memory.limit', 'gauge', 'By', INT, 'The memory limit everything is measured against: the effective cgroup limit, else the host MemTotal; oomguard.source says which.'],
  ['oomguard.memory.high', 'gauge', 'By', INT, 'cgroup v2 memory.high, smallest up the hierarchy: the kernel throttles above it.'],
  ['oomguard.memory.peak', 'gauge', 'By', INT, 'The most memory the cgroup was charged since it was created: v2 memory.peak, v1 memory.max_usage_in_bytes.'],
  ['oomguard.memory.swap.usage', 'gauge', 'By', INT, 'Swap the cgroup uses: v2 memory.swap.current, v1 memory.memsw.usage_in_bytes minus memory.usage_in_bytes.'],
  [
    'oomguard.memory.swap.limit',
    'gauge',
    'By',
    INT,
    'The most swap the cgroup may use (v2 memory.swap.max, v1 memsw limit minus the memory limit; 0 where the host has no swap space); the kernel OOM-kills only when memory and swap both reach their limits.',
  ],
  ['oomguard.memory.utilization', 'gauge', '1', DOUBLE, 'Working set (host used memory without a memory cgroup) divided by the limit; at 1 the kernel OOM-kills.'],
  ['oomguard.memory.headroom', 'gauge', 'By', INT, 'The limit minus the working set (host used memory without a memory cgroup).'],
  ['oomguard.memory.stat', 'gauge', 'By', INT, 'memory.stat breakdown by oomguard.stat.kind; kinds overlap (shmem is in file, slab in kernel).'],
  ['oomguard.memory.events', 'counter', '{event}', INT, 'Memory event counts since the cgroup was created (v2 memory.events, v1 oom_kill and failcnt), by oomguard.event.'],
  ['oomguard.memory.under_oom', 'gauge', '1', INT, 'cgroup v1 memory.oom_control under_oom: 1 while the cgroup is out of memory.'],
  ['oomguard.memory.pressure.stall_ratio', 'gauge', '1', DOUBLE, 'Memory pressure (PSI): share of time tasks stalled on memory over the window (kernel percent / 100).'],
  ['oomguard.memory.pressure.stall_time', 'counter', 's', DOUBLE, 'Memory pressure (PSI) total stall time.'],
  ['oomguard.cgroup.processes', 'gauge', '{process}', INT, 'Processes in the memory cgroup (its cgroup.procs), scanned at most once a second.'],
  ['oomguard.cgroup.largest_process.rss', 'gauge', 'By', INT, 'Resident set size of the largest process in the memory cgroup.'],
  [
    'oomguard.memory.stalled',
    'gauge',
    '1',
    INT,
    'cgroup stuck at its limit without an OOM kill: 1 while a watch() monitor with stall detection on the same root sees it stalled, 0 when not; absent without such a monitor.',
  ],
  ['oomguard.v8.heap.limit', 'gauge', 'By', INT, 'V8 heap limit (v8.getHeapStatistics().heap_size_limit).'],
  ['oomguard.v8.heap.limit_ratio', 'gauge', '1', DOUBLE, 'V8 heap limit divided by the memory limit; at or above 1 the kernel OOM-kills before V8 reports heap exhaustion.'],
]
const MONITOR_INSTRUMENTS = [
  ['oomguard.monitor.level', 'gauge', '{level}', INT, 'The watch() monitor level: how many of its thresholds are reached (0 = below all).'],
  ['oomguard.monitor.threshold', 'gauge', '1', DOUBLE, 'The watch() monitor thresholds, as ratios of the limit, by oomguard.level.'],
  ['oomguard.monitor.stalled_time', 'counter', 's', DOUBLE, 'Time the watch() monitor has seen its cgroup stalled at the limit since it started.'],
]

const CREATE = {
  gauge: 'createObservableGauge',
  updown: 'createObservableUpDownCounter',
  counter: 'createObservableCounter',
}

function isMeter(meter) {
  return (
    meter !== null &&
    typeof meter === 'object' &&
    Object.values(CREATE).every((m) => typeof meter[m] === 'function') &&
    typeof meter.addBatchObservableCallback === 'function' &&
    typeof meter.removeBatchObservableCallback === 'function'
  )
}

/**
 * Observe the memory numbers on an OpenTelemetry Meter, one snapshot per
 * collection. Options: `root` (passed to getMemoryMetrics()), `monitor` (a
 * watch() Monitor: adds its level and thresholds). Returns
 * `{ names, unregister() }`; unregister() removes the batch callback (the
 * instruments then report nothing).
 */
function observeMemory(meter, options) {
  if (!isMeter(meter)) throw invalidType('meter', 'an OpenTelemetry Meter (metrics.getMeter(name))', meter)
  // One snapshot of the options (lib/core/options.js): own properties, read once.
  const o = metricsConfig(options)
  const read = readOptions(o)
  const monitor = o.monitor

  const specs = monitor === undefined ? INSTRUMENTS : [...INSTRUMENTS, ...MONITOR_INSTRUMENTS]
  const inst = {}
  for (const [name, kind, unit, valueType, description] of specs) {
    inst[name] = meter[CREATE[kind]](name, { description, unit, valueType })
  }

  const callback = (result) => {
    const m = core.getMemoryMetrics(null, read)
    const obs = (name, value, attributes) => {
      if (typeof value === 'number' && Number.isFinite(value)) result.observe(inst[name], value, attributes)
    }
    obs('container.memory.usage', m.usageBytes)
    obs('container.memory.working_set', m.workingSetBytes)
    if (m.cgroupLimitBytes !== null && m.workingSetBytes !== null) {
      obs('container.memory.available', Math.max(0, m.cgroupLimitBytes - m.workingSetBytes))
    }
    obs('container.memory.rss', m.stat === null ? null : m.stat.anon)
    obs('process.memory.usage', m.rssBytes)
    for (const s of v8.getHeapSpaceStatistics()) {
      const a = { 'v8js.heap.space.name': s.space_name }
      obs('v8js.memory.heap.used', s.space_used_size, a)
      obs('v8js.memory.heap.space.size', s.space_size, a)
    }

    const info = { 'oomguard.version': VERSION }
    if (m.cgroup !== null) {
      info['oomguard.cgroup.version'] = m.cgroup.version
      info['oomguard.cgroup.path'] = m.cgroup.path
    }
    obs('oomguard.info', 1, info)
    obs('oomguard.memory.limit', m.limitBytes, m.source === null ? undefined : { 'oomguard.source': m.source })
    obs('oomguard.memory.high', m.highBytes)
    obs('oomguard.memory.peak', m.peakBytes)
    obs('oomguard.memory.swap.usage', m.swapBytes)
    obs('oomguard.memory.swap.limit', m.swapLimitBytes)
    obs('oomguard.memory.utilization', m.usageRatio)
    obs('oomguard.memory.headroom', m.headroomBytes)
    if (m.stat !== null) {
      for (const kind of STAT_KINDS) obs('oomguard.memory.stat', m.stat[kind], { 'oomguard.stat.kind': kind })
    }
    if (m.events !== null) {
      for (const [event, key] of EVENTS) obs('oomguard.memory.events', m.events[key], { 'oomguard.event': event })
      obs('oomguard.memory.under_oom', m.events.underOom)
    }
    const p = m.pressure
    if (p !== null) {
      for (const kind of ['some', 'full']) {
        const line = p[kind]
        if (line === null) continue
        for (const [window, key] of WINDOWS) {
          obs('oomguard.memory.pressure.stall_ratio', line[key] / 100, {
            'oomguard.pressure.kind': kind,
            'oomguard.pressure.window': window,
            'oomguard.pressure.scope': p.scope,
          })
        }
        obs('oomguard.memory.pressure.stall_time', line.totalUs / 1e6, { 'oomguard.pressure.kind': kind, 'oomguard.pressure.scope': p.scope })
      }
    }
    if (m.processes !== null) {
      obs('oomguard.cgroup.processes', m.processes.count)
      if (m.processes.largest.length > 0) obs('oomguard.cgroup.largest_process.rss', m.processes.largest[0].rssBytes)
    }
    if (typeof m.stalled === 'boolean') obs('oomguard.memory.stalled', m.stalled ? 1 : 0)
    obs('oomguard.v8.heap.limit', m.v8.heapSizeLimitBytes)
    obs('oomguard.v8.heap.limit_ratio', m.heapLimitRatio)

    if (monitor !== undefined) {
      obs('oomguard.monitor.level', monitorLevel(monitor))
      monitor.thresholds.forEach((t, i) => {
        obs('oomguard.monitor.threshold', t, { 'oomguard.level': i + 1 })
      })
      obs('oomguard.monitor.stalled_time', monitorStalledSeconds(monitor))
    }
  }

  const observables = Object.values(inst)
  meter.addBatchObservableCallback(callback, observables)
  let registered = true
  return {
    names: specs.map((s) => s[0]),
    /** Remove the batch callback. Idempotent. */
    unregister() {
      if (!registered) return
      registered = false
      meter.removeBatchObservableCallback(callback, observables)
    },
  }
}

module.exports = { observeMemory }
