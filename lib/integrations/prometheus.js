'use strict'
// prometheus(): one getMemoryMetrics() snapshot in the Prometheus text
// exposition format 0.0.4. The family table below is also what
// lib/integrations/prom-client.js registers, so both print the same names, types and labels.
//
// Naming: one prefix (default `oomguard_`) for every family, so nothing
// collides with cAdvisor's `container_memory_*` or prom-client's default
// `process_*` / `nodejs_*`. Units are in the names (`_bytes`, `_ratio`,
// `_seconds`), counters end in `_total`. A value that is not known (null) is
// not printed at all: no series rather than a made-up 0. HELP and TYPE are
// printed for every family, with or without series.

const core = require('../core/metrics.js')
const { invalidType, outOfRange, metricsConfig, monitorLevel, table, DEFAULT_PREFIX } = require('../core/options.js')
const { version: VERSION } = require('../../package.json')

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
// No colons (reserved for recording rules), no leading `__` (reserved).
const PREFIX_RE = /^(?!__)[a-zA-Z_][a-zA-Z0-9_]*$/
// Namespaces of other exporters a name must stay out of.
const RESERVED = ['container_memory_', 'process_', 'nodejs_']

// The breakdown kinds and the event counters, with their result keys; the
// OpenTelemetry integration uses the same lists.
const STAT_KINDS = ['anon', 'file', 'shmem', 'kernel', 'sock', 'slab']
const EVENTS = [
  ['low', 'low'],
  ['high', 'high'],
  ['max', 'max'],
  ['oom', 'oom'],
  ['oom_kill', 'oomKill'],
  ['oom_group_kill', 'oomGroupKill'],
  ['failcnt', 'failcnt'],
]
const PRESSURE_KINDS = ['some', 'full']
const PRESSURE_WINDOWS = [
  ['10s', 'avg10'],
  ['60s', 'avg60'],
  ['300s', 'avg300'],
]

/**
 * Reads a result object defensively: a ready `options.metrics` object comes
 * from the caller, so every field is checked before it reaches the output,
 * only own properties count (a polluted Object.prototype forges nothing),
 * and each property is read once (a getter cannot change its answer).
 */
class Reader {
  constructor(m, name) {
    this.m = m
    this.name = name
    this.seen = new Map()
  }

  /** A number or null at a dotted path. */
  num(path) {
    const v = this.get(path)
    if (v === undefined || v === null) return null
    if (typeof v !== 'number' || !Number.isFinite(v)) throw invalidType(`${this.name}.${path}`, 'a finite number or null', v)
    return v
  }

  /** A string or null at a dotted path. */
  str(path) {
    const v = this.get(path)
    if (v === undefined || v === null) return null
    if (typeof v !== 'string') throw invalidType(`${this.name}.${path}`, 'a string or null', v)
    return v
  }

  get(path) {
    if (this.seen.has(path)) return this.seen.get(path)
    const dot = path.lastIndexOf('.')
    const parent = dot === -1 ? this.m : this.get(path.slice(0, dot))
    const key = path.slice(dot + 1)
    let v
    if (parent === undefined || parent === null) v = null
    else if (typeof parent !== 'object') throw invalidType(`${this.name}.${path}`, 'part of a getMemoryMetrics() result', parent)
    else v = Object.hasOwn(parent, key) ? parent[key] : undefined
    this.seen.set(path, v)
    return v
  }
}

/**
 * Every family: name suffix, type, help, label names, the prom-client
 * cluster aggregator (cgroup-wide numbers are the same in every worker:
 * `first`; per-process bytes add up: `sum`), and the samples it takes from a
 * snapshot. `monitor: true` families exist only with `options.monitor`.
 */
const FAMILIES = table(
  [
    {
      name: 'info',
      type: 'gauge',
      help: 'Always 1; labels: the memory cgroup version and path, and the oomguard version.',
      labels: ['cgroup_version', 'cgroup_path', 'version'],
      aggregator: 'first',
      samples(r) {
        const v = r.num('cgroup.version')
        const p = r.str('cgroup.path')
        const labels = {}
        if (v !== null) labels.cgroup_version = String(v)
        if (p !== null) labels.cgroup_path = p
        labels.version = VERSION
        return [[labels, 1]]
      },
    },
    {
      name: 'memory_limit_bytes',
      type: 'gauge',
      help: 'The memory limit everything is measured against: the effective cgroup limit (smallest up the hierarchy: v2 memory.max, v1 memory.limit_in_bytes), else the host MemTotal; source says which.',
      labels: ['source'],
      aggregator: 'first',
      samples(r) {
        const source = r.str('source')
        return [[source === null ? {} : { source }, r.num('limitBytes')]]
      },
    },
    {
      name: 'memory_high_bytes',
      type: 'gauge',
      help: 'cgroup v2 memory.high, smallest up the hierarchy: the kernel throttles and reclaims above it. Absent when unset or on v1.',
      aggregator: 'first',
      samples: (r) => [[null, r.num('highBytes')]],
    },
    {
      name: 'memory_usage_bytes',
      type: 'gauge',
      help: 'Memory charged to the cgroup, page cache included: v2 memory.current, v1 memory.usage_in_bytes.',
      aggregator: 'first',
      samples: (r) => [[null, r.num('usageBytes')]],
    },
    {
      name: 'memory_working_set_bytes',
      type: 'gauge',
      help: 'Usage minus inactive page cache (inactive_file), as kubelet and cAdvisor count the working set.',
      aggregator: 'first',
      samples: (r) => [[null, r.num('workingSetBytes')]],
    },
    {
      name: 'memory_peak_bytes',
      type: 'gauge',
      help: 'The most memory the cgroup was charged since it was created: v2 memory.peak (kernel 5.19+), v1 memory.max_usage_in_bytes.',
      aggregator: 'first',
      samples: (r) => [[null, r.num('peakBytes')]],
    },
    {
      name: 'memory_swap_bytes',
      type: 'gauge',
      help: 'Swap the cgroup uses: v2 memory.swap.current, v1 memory.memsw.usage_in_bytes minus memory.usage_in_bytes. Absent where the kernel accounts no swap.',
      aggregator: 'first',
      samples: (r) => [[null, r.num('swapBytes')]],
    },
    {
      name: 'memory_swap_limit_bytes',
      type: 'gauge',
      help: 'The most swap the cgroup may use: v2 memory.swap.max (smallest up the hierarchy), v1 memory.memsw.limit_in_bytes (smallest up the hierarchy: memory.stat hierarchical_memsw_limit) minus the memory limit. With swap the kernel OOM-kills only when memory and swap both reach their limits. 0 where the host has no swap space (SwapTotal 0 in /proc/meminfo). Absent when unlimited or not accounted.',
      aggregator: 'first',
      samples: (r) => [[null, r.num('swapLimitBytes')]],
    },
    {
      name: 'memory_usage_ratio',
      type: 'gauge',
      help: 'Working set (host used memory without a memory cgroup) divided by the limit; at 1 the kernel OOM-kills.',
      aggregator: 'first',
      samples: (r) => [[null, r.num('usageRatio')]],
    },
    {
      name: 'memory_headroom_bytes',
      type: 'gauge',
      help: 'The limit minus the working set (host used memory without a memory cgroup): what is left before the OOM killer.',
      aggregator: 'first',
      samples: (r) => [[null, r.num('headroomBytes')]],
    },
    {
      name: 'memory_stat_bytes',
      type: 'gauge',
      help: 'memory.stat breakdown (v1: total_rss, total_cache, total_shmem, memory.kmem.*); kinds overlap (shmem is in file, slab in kernel), do not sum them.',
      labels: ['kind'],
      aggregator: 'first',
      samples: (r) => STAT_KINDS.map((kind) => [{ kind }, r.num(`stat.${kind}`)]),
    },
    {
      name: 'memory_events_total',
      type: 'counter',
      help: 'Memory event counts since the cgroup was created: v2 memory.events (low, high, max, oom, oom_kill, oom_group_kill), v1 memory.oom_control oom_kill and memory.failcnt (failcnt).',
      labels: ['event'],
      aggregator: 'first',
      samples: (r) => EVENTS.map(([event, key]) => [{ event }, r.num(`events.${key}`)]),
    },
    {
      name: 'memory_under_oom',
      type: 'gauge',
      help: 'cgroup v1 memory.oom_control under_oom: 1 while the cgroup is out of memory (OOM killer disabled or acting).',
      aggregator: 'max',
      samples: (r) => [[null, r.num('events.underOom')]],
    },
    {
      name: 'memory_pressure_ratio',
      type: 'gauge',
      help: 'Memory pressure (PSI): share of time some or all tasks stalled on memory, averaged over the window (kernel percent / 100); scope cgroup is the cgroup v2 memory.pressure, system is /proc/pressure/memory.',
      labels: ['kind', 'window', 'scope'],
      aggregator: 'first',
      samples(r) {
        const out = []
        const scope = r.str('pressure.scope')
        for (const kind of PRESSURE_KINDS) {
          for (const [window, key] of PRESSURE_WINDOWS) {
            const pct = r.num(`pressure.${kind}.${key}`)
            const labels = scope === null ? { kind, window } : { kind, window, scope }
            out.push([labels, pct === null ? null : pct / 100])
          }
        }
        return out
      },
    },
    {
      name: 'memory_pressure_stall_seconds_total',
      type: 'counter',
      help: 'Memory pressure (PSI) total stall time: time some or all tasks stalled on memory, seconds.',
      labels: ['kind', 'scope'],
      aggregator: 'first',
      samples(r) {
        const scope = r.str('pressure.scope')
        return PRESSURE_KINDS.map((kind) => {
          const us = r.num(`pressure.${kind}.totalUs`)
          return [scope === null ? { kind } : { kind, scope }, us === null ? null : us / 1e6]
        })
      },
    },
    {
      name: 'memory_stalled',
      type: 'gauge',
      help: 'cgroup stuck at its limit without an OOM kill: 1 while a watch() monitor with stall detection on the same root sees the working set at the limit, charges failing (v1 memory.failcnt, v2 memory.events max), memory pressure and refaults, sustained; 0 when not; absent without such a monitor.',
      aggregator: 'max',
      samples(r) {
        const v = r.get('stalled')
        if (v === undefined || v === null) return [[null, null]]
        if (typeof v !== 'boolean') throw invalidType(`${r.name}.stalled`, 'a boolean or null', v)
        return [[null, v ? 1 : 0]]
      },
    },
    {
      name: 'process_resident_memory_bytes',
      type: 'gauge',
      help: 'Resident set size of this process (/proc/self/statm), bytes.',
      aggregator: 'sum',
      samples: (r) => [[null, r.num('rssBytes')]],
    },
    {
      name: 'cgroup_processes',
      type: 'gauge',
      help: 'Processes in the memory cgroup (its cgroup.procs; processes in child cgroups are not counted). Scanned at most once a second.',
      aggregator: 'first',
      samples: (r) => [[null, r.num('processes.count')]],
    },
    {
      name: 'cgroup_largest_process_resident_memory_bytes',
      type: 'gauge',
      help: 'Resident set size of the largest process in the memory cgroup (by resident anonymous memory; /proc/<pid>/statm of each in cgroup.procs), bytes; compare with process_resident_memory_bytes to see whether another process fills the cgroup.',
      aggregator: 'first',
      samples: (r) => [[null, r.num('processes.largest.0.rssBytes')]],
    },
    {
      name: 'v8_heap_used_bytes',
      type: 'gauge',
      help: 'V8 heap in use (process.memoryUsage().heapUsed), bytes.',
      aggregator: 'sum',
      samples: (r) => [[null, r.num('v8.heapUsedBytes')]],
    },
    {
      name: 'v8_heap_total_bytes',
      type: 'gauge',
      help: 'V8 heap reserved (process.memoryUsage().heapTotal), bytes.',
      aggregator: 'sum',
      samples: (r) => [[null, r.num('v8.heapTotalBytes')]],
    },
    {
      name: 'v8_heap_limit_bytes',
      type: 'gauge',
      help: 'V8 heap limit (v8.getHeapStatistics().heap_size_limit), bytes.',
      aggregator: 'sum',
      samples: (r) => [[null, r.num('v8.heapSizeLimitBytes')]],
    },
    {
      name: 'v8_heap_limit_ratio',
      type: 'gauge',
      help: 'V8 heap limit divided by the memory limit; at or above 1 the kernel OOM-kills before V8 reports heap exhaustion.',
      aggregator: 'max',
      samples: (r) => [[null, r.num('heapLimitRatio')]],
    },
    {
      name: 'monitor_level',
      type: 'gauge',
      help: 'The watch() monitor level: how many of its thresholds its basis (the working set by default) is at or above, as a ratio of the limit (0 = below all).',
      monitor: true,
      aggregator: 'max',
      samples: (r, monitor) => [[null, monitorLevel(monitor)]],
    },
    {
      name: 'monitor_threshold_ratio',
      type: 'gauge',
      help: 'The watch() monitor thresholds, as ratios of the limit; level N is reached at threshold N.',
      labels: ['level'],
      monitor: true,
      aggregator: 'first',
      samples: (r, monitor) => monitor.thresholds.map((t, i) => [{ level: String(i + 1) }, t]),
    },
    {
      name: 'monitor_stalled_seconds_total',
      type: 'counter',
      help: 'Seconds the watch() monitor has seen its cgroup stalled at the limit (see memory_stalled) since it started.',
      monitor: true,
      aggregator: 'max',
      samples: (r, monitor) => [[null, monitorStalledSeconds(monitor)]],
    },
  ],
  ['name', 'type', 'help', 'labels', 'aggregator', 'samples', 'monitor'],
)

/**
 * Seconds stalled from a monitor's `current` (a watch() Monitor has it);
 * null for a closed monitor, one without stall detection, or anything else.
 */
function monitorStalledSeconds(snap) {
  const m = snap.monitor
  if (m.closed === true) return null
  const c = m.current
  const v = c !== null && typeof c === 'object' ? c.stalledSeconds : undefined
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null
}

/** The families for one configuration: full names, in output order. */
function familyDefs(prefix, withMonitor) {
  return FAMILIES.filter((f) => withMonitor || !f.monitor).map((f) => ({
    name: prefix + f.name,
    type: f.type,
    help: f.help,
    labels: f.labels || [],
    aggregator: f.aggregator,
    samples: f.samples,
  }))
}

/**
 * The samples of every family for one snapshot, null values dropped:
 * `[{ name, help, type, aggregator, values: [{ labels, value }] }]`.
 * `monitor` is a monitorSnapshot() (lib/core/options.js): its level is read
 * once here, its thresholds were copied when the options were read.
 */
function collect(defs, metrics, monitor, name = 'metrics') {
  const r = new Reader(metrics, name)
  return defs.map((d) => {
    const values = []
    for (const [labels, value] of d.samples(r, monitor)) {
      if (value !== null) values.push({ labels: labels || {}, value })
    }
    return { name: d.name, help: d.help, type: d.type, aggregator: d.aggregator, values }
  })
}

const escapeHelp = (s) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
const escapeLabel = (s) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')

/** Text exposition format 0.0.4. */
function render(families) {
  let out = ''
  for (const f of families) {
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`
    for (const { labels, value } of f.values) {
      const keys = Object.keys(labels)
      let l = ''
      if (keys.length > 0) l = `{${keys.map((k) => `${k}="${escapeLabel(labels[k])}"`).join(',')}}`
      out += `${f.name}${l} ${String(value)}\n`
    }
  }
  return out
}

// ---------------------------------------------------------------------------
// Options shared with lib/integrations/prom-client.js and lib/otel.js.

/** `options.prefix`, from a metricsConfig() snapshot. */
function prefixOption(value) {
  const prefix = value === undefined ? DEFAULT_PREFIX : value
  if (typeof prefix !== 'string') throw invalidType('options.prefix', 'a string', prefix)
  if (!PREFIX_RE.test(prefix)) {
    throw outOfRange('options.prefix', 'a metric name prefix: a letter or _, then letters, digits or _ (no colons, no leading __)', JSON.stringify(prefix))
  }
  for (const f of FAMILIES) {
    const full = prefix + f.name
    const taken = RESERVED.find((r) => full.startsWith(r))
    if (taken !== undefined) {
      throw outOfRange('options.prefix', `a prefix that keeps names out of ${RESERVED.map((r) => `${r}*`).join(', ')} (cAdvisor, prom-client): ${full} is in ${taken}*`, JSON.stringify(prefix))
    }
  }
  return prefix
}

/** `options.root` as getMemoryMetrics() takes it, from a metricsConfig() snapshot. */
function readOptions(c) {
  return c.root === undefined ? undefined : { root: c.root }
}

/**
 * The Prometheus text exposition format (0.0.4) for one snapshot of the
 * process's memory. Serve it with `prometheus.contentType`.
 *
 * Options: `prefix` (default `oomguard_`), `monitor` (a watch() Monitor:
 * adds its level and thresholds), `root` (passed to getMemoryMetrics()),
 * `metrics` (a getMemoryMetrics() result to format instead of reading one).
 */
function prometheus(options) {
  // One snapshot of the options (lib/core/options.js): own properties, read once.
  const c = metricsConfig(options)
  const prefix = prefixOption(c.prefix)
  const monitor = c.monitor
  let metrics = c.metrics
  if (metrics === undefined || metrics === null) {
    metrics = core.getMemoryMetrics(null, readOptions(c))
  } else {
    if (typeof metrics !== 'object' || Array.isArray(metrics)) throw invalidType('options.metrics', 'a getMemoryMetrics() result', metrics)
    if (c.root !== undefined) throw outOfRange('options.root', 'left out when options.metrics is given (the metrics were already read)', JSON.stringify(c.root))
  }
  return render(collect(familyDefs(prefix, monitor !== undefined), metrics, monitor, 'options.metrics'))
}

Object.defineProperty(prometheus, 'contentType', { value: CONTENT_TYPE, enumerable: true })

module.exports = {
  prometheus,
  STAT_KINDS,
  EVENTS,
  DEFAULT_PREFIX,
  CONTENT_TYPE,
  familyDefs,
  collect,
  render,
  monitorStalledSeconds,
  prefixOption,
  readOptions,
  VERSION,
}
