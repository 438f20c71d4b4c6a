'use strict'
// /metrics: prometheus() text, the prom-client registration and the
// OpenTelemetry instruments, on the fixture trees (exact values from each
// tree's expected.json). The exposition is validated by the official Python
// Prometheus client's parser (CI installs it), plus a strict line check here.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const oomguard = require('..')
const { prometheus, registerPromClient, observeMemory, getMemoryMetrics } = oomguard
const core = require('../lib/core/metrics.js')
const { version: VERSION } = require('../package.json')

const promClient = require('prom-client')
const { MeterProvider, MetricReader, InMemoryMetricExporter, PeriodicExportingMetricReader, AggregationTemporality, DataPointType } = require('@opentelemetry/sdk-metrics')
const otelApi = require('@opentelemetry/api')

const REPO = path.join(__dirname, '..')
const FIXTURES = path.join(__dirname, 'fixtures')
const fixture = (name) => path.join(FIXTURES, name)
const expected = (name) => JSON.parse(fs.readFileSync(path.join(FIXTURES, name, 'expected.json'), 'utf8'))
const FIXTURE_NAMES = fs.readdirSync(FIXTURES).filter((d) => fs.existsSync(path.join(FIXTURES, d, 'expected.json')))

const RESERVED = ['container_memory_', 'process_', 'nodejs_']
const FAMILIES = [
  'info',
  'memory_limit_bytes',
  'memory_high_bytes',
  'memory_usage_bytes',
  'memory_working_set_bytes',
  'memory_peak_bytes',
  'memory_swap_bytes',
  'memory_swap_limit_bytes',
  'memory_usage_ratio',
  'memory_headroom_bytes',
  'memory_stat_bytes',
  'memory_events_total',
  'memory_under_oom',
  'memory_pressure_ratio',
  'memory_pressure_stall_seconds_total',
  'memory_stalled',
  'process_resident_memory_bytes',
  'cgroup_processes',
  'cgroup_largest_process_resident_memory_bytes',
  'v8_heap_used_bytes',
  'v8_heap_total_bytes',
  'v8_heap_limit_bytes',
  'v8_heap_limit_ratio',
]
const MONITOR_FAMILIES = ['monitor_level', 'monitor_threshold_ratio', 'monitor_stalled_seconds_total']
const COUNTERS = new Set(['memory_events_total', 'memory_pressure_stall_seconds_total', 'monitor_stalled_seconds_total'])

// ---------------------------------------------------------------------------
// The Python parser.

const PARSER = `
import sys, json, math
from prometheus_client.parser import text_string_to_metric_families as prom
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
parse = om if sys.argv[1] == 'openmetrics' else prom
out = []
for f in parse(sys.stdin.read()):
    out.append({'name': f.name, 'type': f.type, 'help': f.documentation,
                'samples': [{'name': s.name, 'labels': s.labels,
                             'value': s.value if math.isfinite(s.value) else str(s.value)} for s in f.samples]})
print(json.dumps(out))
`
const havePython = spawnSync('python3', ['-c', 'import prometheus_client'], { encoding: 'utf8' }).status === 0
const parserSkip = havePython ? false : 'python3 with prometheus_client is not installed (pip install prometheus-client)'
if (!havePython && process.env.CI) throw new Error(`CI must have the Prometheus parser: ${parserSkip}`)

/** Parse with prometheus_client; returns [{ name, type, help, samples }]. */
function parse(text, format = 'prometheus') {
  const r = spawnSync('python3', ['-c', PARSER, format], { input: text, encoding: 'utf8' })
  assert.equal(r.status, 0, `the Python parser rejected the exposition:\n${r.stderr}\n---\n${text}`)
  return JSON.parse(r.stdout)
}

/** Stricter than the parser: the 0.0.4 grammar as this module writes it. */
function lint(text) {
  assert.ok(text.endsWith('\n'), 'ends with a newline')
  const NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
  const help = new Map()
  const type = new Map()
  const seen = new Set()
  for (const line of text.slice(0, -1).split('\n')) {
    let m
    if ((m = /^# HELP (\S+) (.*)$/.exec(line))) {
      assert.ok(NAME.test(m[1]), line)
      assert.ok(!help.has(m[1]), `one HELP for ${m[1]}`)
      help.set(m[1], m[2])
    } else if ((m = /^# TYPE (\S+) (gauge|counter)$/.exec(line))) {
      assert.ok(help.has(m[1]) && !type.has(m[1]), `TYPE after HELP, once: ${line}`)
      type.set(m[1], m[2])
    } else if ((m = /^([a-zA-Z_][a-zA-Z0-9_]*)(?:\{(.*)\})? (\S+)$/.exec(line))) {
      assert.ok(type.has(m[1]), `sample after its family's TYPE: ${line}`)
      assert.ok(Number.isFinite(Number(m[3])), `a finite value: ${line}`)
      if (m[2] !== undefined) {
        assert.match(m[2], /^[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*$/, line)
      }
      const key = `${m[1]}{${m[2] || ''}}`
      assert.ok(!seen.has(key), `no duplicate series: ${line}`)
      seen.add(key)
    } else {
      assert.fail(`not a 0.0.4 line: ${JSON.stringify(line)}`)
    }
  }
  return { help, type }
}

/** Parse and lint; returns a Map name -> family (name as written, `_total` kept for counters). */
function exposition(text) {
  const { type } = lint(text)
  const families = parse(text)
  const byName = new Map()
  for (const f of families) {
    const written = f.type === 'counter' ? `${f.name}_total` : f.name
    assert.ok(type.has(written), `${written} was written`)
    assert.equal(f.type, type.get(written))
    byName.set(written, f)
  }
  assert.equal(byName.size, type.size, 'every family parsed')
  return byName
}

/** The one sample of `family` whose labels include `labels`; undefined when none. */
function sample(families, name, labels = {}) {
  const f = families.get(name)
  assert.ok(f, `family ${name}`)
  const hits = f.samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  assert.ok(hits.length <= 1, `at most one ${name} ${JSON.stringify(labels)}`)
  return hits[0]
}
function value(families, name, labels) {
  const s = sample(families, name, labels)
  return s === undefined ? undefined : s.value
}

function countReads(t) {
  const original = core.getMemoryMetrics
  const calls = { n: 0 }
  core.getMemoryMetrics = (...args) => {
    calls.n++
    return original(...args)
  }
  t.after(() => {
    core.getMemoryMetrics = original
  })
  return calls
}

// ---------------------------------------------------------------------------
// prometheus()

test('prometheus(): v2-busy, exact values, parsed by prometheus_client', { skip: parserSkip }, () => {
  const e = expected('v2-busy')
  const f = exposition(prometheus({ root: fixture('v2-busy') }))
  assert.deepEqual(
    [...f.keys()],
    FAMILIES.map((n) => `oomguard_${n}`),
  )
  assert.deepEqual(sample(f, 'oomguard_info').labels, { cgroup_version: '2', cgroup_path: '/fxcap/busy', version: VERSION })
  assert.equal(value(f, 'oomguard_info'), 1)
  assert.deepEqual(sample(f, 'oomguard_memory_limit_bytes').labels, { source: 'cgroup-v2' })
  assert.equal(value(f, 'oomguard_memory_limit_bytes', { source: 'cgroup-v2' }), 268435456)
  assert.equal(value(f, 'oomguard_memory_high_bytes'), 209715200)
  assert.equal(value(f, 'oomguard_memory_usage_bytes'), e.usageBytes)
  assert.equal(value(f, 'oomguard_memory_working_set_bytes'), e.workingSetBytes)
  assert.equal(value(f, 'oomguard_memory_usage_ratio'), e.workingSetBytes / e.limitBytes)
  assert.equal(value(f, 'oomguard_memory_headroom_bytes'), e.limitBytes - e.workingSetBytes)
  const stat = Object.fromEntries(f.get('oomguard_memory_stat_bytes').samples.map((s) => [s.labels.kind, s.value]))
  assert.deepEqual(stat, { anon: e.anon, file: e.file, shmem: e.shmem, kernel: e.kernel, sock: e.sock, slab: 1630552 })
  const events = Object.fromEntries(f.get('oomguard_memory_events_total').samples.map((s) => [s.labels.event, s.value]))
  assert.deepEqual(events, { low: 0, high: 0, max: 0, oom: 0, oom_kill: e.oomKill, oom_group_kill: 0 })
  assert.equal(f.get('oomguard_memory_events_total').type, 'counter')
  assert.equal(f.get('oomguard_memory_under_oom').samples.length, 0, 'under_oom is v1 only')
  const pressure = f.get('oomguard_memory_pressure_ratio').samples
  assert.equal(pressure.length, 6)
  for (const s of pressure) {
    assert.equal(s.labels.scope, 'cgroup')
    assert.ok(['some', 'full'].includes(s.labels.kind) && ['10s', '60s', '300s'].includes(s.labels.window))
    assert.equal(s.value, 0)
  }
  assert.equal(value(f, 'oomguard_memory_pressure_stall_seconds_total', { kind: 'some' }), 0)
  assert.equal(value(f, 'oomguard_process_resident_memory_bytes'), e.rssBytes)
  assert.ok(value(f, 'oomguard_v8_heap_used_bytes') > 0)
  assert.ok(value(f, 'oomguard_v8_heap_total_bytes') >= value(f, 'oomguard_v8_heap_used_bytes'))
  const heapLimit = value(f, 'oomguard_v8_heap_limit_bytes')
  assert.ok(heapLimit > 0)
  assert.equal(value(f, 'oomguard_v8_heap_limit_ratio'), heapLimit / e.limitBytes)
})

test('prometheus(): v1-oom-after, the OOM kill and failcnt as counters, PSI in ratios and seconds', { skip: parserSkip }, () => {
  const e = expected('v1-oom-after')
  const f = exposition(prometheus({ root: fixture('v1-oom-after') }))
  assert.equal(value(f, 'oomguard_memory_limit_bytes', { source: 'cgroup-v1' }), 67108864)
  const events = Object.fromEntries(f.get('oomguard_memory_events_total').samples.map((s) => [s.labels.event, s.value]))
  assert.deepEqual(events, { oom_kill: 1, failcnt: 80 }, 'v1 has no low/high/max/oom counters: no series')
  assert.equal(e.oomKill, 1)
  assert.equal(value(f, 'oomguard_memory_under_oom'), 0)
  assert.equal(f.get('oomguard_memory_high_bytes').samples.length, 0, 'no memory.high on v1')
  assert.equal(value(f, 'oomguard_memory_stat_bytes', { kind: 'slab' }), undefined, 'v1 has no slab line')
  assert.equal(value(f, 'oomguard_memory_stat_bytes', { kind: 'kernel' }), e.kernel)
  // /proc/pressure/memory: some avg60=0.13 avg300=0.10 total=812050; full avg300=0.01 total=370232
  assert.equal(value(f, 'oomguard_memory_pressure_ratio', { kind: 'some', window: '60s', scope: 'system' }), 0.0013)
  assert.equal(value(f, 'oomguard_memory_pressure_ratio', { kind: 'some', window: '300s' }), 0.001)
  assert.equal(value(f, 'oomguard_memory_pressure_ratio', { kind: 'full', window: '300s' }), 0.0001)
  assert.equal(value(f, 'oomguard_memory_pressure_stall_seconds_total', { kind: 'some', scope: 'system' }), 0.81205)
  assert.equal(value(f, 'oomguard_memory_pressure_stall_seconds_total', { kind: 'full' }), 0.370232)
  assert.deepEqual(sample(f, 'oomguard_info').labels, { cgroup_version: '1', cgroup_path: '/kubepods.slice/pod7f3a', version: VERSION })
})

test('prometheus(): v2-oom-after, memory.events counters', { skip: parserSkip }, () => {
  const f = exposition(prometheus({ root: fixture('v2-oom-after') }))
  const events = Object.fromEntries(f.get('oomguard_memory_events_total').samples.map((s) => [s.labels.event, s.value]))
  assert.deepEqual(events, { low: 0, high: 0, max: 41, oom: 1, oom_kill: 1, oom_group_kill: 0 })
  assert.equal(value(f, 'oomguard_memory_pressure_stall_seconds_total', { kind: 'full', scope: 'cgroup' }), 0.000296)
})

test('prometheus(): every fixture matches expected.json; null means no series, HELP/TYPE always', { skip: parserSkip }, () => {
  for (const name of FIXTURE_NAMES) {
    const e = expected(name)
    const f = exposition(prometheus({ root: fixture(name) }))
    assert.deepEqual(
      [...f.keys()],
      FAMILIES.map((n) => `oomguard_${n}`),
      `${name}: every family, in order`,
    )
    for (const [fam, want] of [
      ['oomguard_memory_usage_bytes', e.usageBytes],
      ['oomguard_memory_working_set_bytes', e.workingSetBytes],
      ['oomguard_memory_high_bytes', e.highBytes],
      ['oomguard_memory_peak_bytes', e.peakBytes],
      ['oomguard_memory_swap_bytes', e.swapBytes],
      ['oomguard_memory_swap_limit_bytes', e.swapLimitBytes],
      ['oomguard_process_resident_memory_bytes', e.rssBytes],
    ]) {
      assert.equal(value(f, fam) ?? null, want, `${name}: ${fam}`)
    }
    assert.equal(value(f, 'oomguard_memory_limit_bytes', { source: e.source }), e.limitBytes, `${name}: limit`)
    for (const kind of ['anon', 'file', 'shmem', 'kernel', 'sock']) {
      assert.equal(value(f, 'oomguard_memory_stat_bytes', { kind }) ?? null, e[kind], `${name}: stat ${kind}`)
    }
    assert.equal(value(f, 'oomguard_memory_events_total', { event: 'oom_kill' }) ?? null, e.oomKill, `${name}: oom_kill`)
    for (const s of f.get('oomguard_memory_pressure_ratio').samples) assert.equal(s.labels.scope, e.pressureScope, `${name}: PSI scope`)
    const info = sample(f, 'oomguard_info').labels
    assert.equal(info.cgroup_version, e.version === null ? undefined : String(e.version), `${name}: info`)
    for (const n of f.keys()) {
      assert.ok(!RESERVED.some((r) => n.startsWith(r)), `${n} stays out of cAdvisor's and prom-client's names`)
    }
  }
})

test('prometheus(): peak and swap on v2-swap (swap.max up the hierarchy) and v1-swap (memsw)', { skip: parserSkip }, () => {
  const v2 = exposition(prometheus({ root: fixture('v2-swap') }))
  assert.equal(value(v2, 'oomguard_memory_peak_bytes'), 201158656)
  assert.equal(value(v2, 'oomguard_memory_swap_bytes'), 52428800)
  assert.equal(value(v2, 'oomguard_memory_swap_limit_bytes'), 134217728)
  const v1 = exposition(prometheus({ root: fixture('v1-swap') }))
  assert.equal(value(v1, 'oomguard_memory_swap_bytes'), 52428800)
  assert.equal(value(v1, 'oomguard_memory_swap_limit_bytes'), 134217728)
  // A host without swap space, Docker's default memory+swap of twice the
  // limit (268435456 of swap before): no swap is usable.
  const noSwap = exposition(prometheus({ root: fixture('v1-no-host-swap') }))
  assert.equal(value(noSwap, 'oomguard_memory_swap_limit_bytes'), 0)
  assert.equal(value(exposition(prometheus({ root: fixture('v2-swap-off') })), 'oomguard_memory_swap_limit_bytes'), 0, 'memory.swap.max 0')
  for (const fam of ['memory_peak_bytes', 'memory_swap_bytes', 'memory_swap_limit_bytes']) assert.equal(v1.get(`oomguard_${fam}`).type, 'gauge')
  const none = exposition(prometheus({ root: fixture('v1-no-swap-accounting') }))
  assert.equal(none.get('oomguard_memory_swap_bytes').samples.length, 0, 'no swap accounting: no series, never 0')
  assert.equal(value(none, 'oomguard_memory_peak_bytes'), 200421376)
})

test('prometheus(): no-memory-controller prints no cgroup series, never a 0 for unknown', { skip: parserSkip }, () => {
  const text = prometheus({ root: fixture('no-memory-controller') })
  const f = exposition(text)
  for (const fam of [
    'memory_usage_bytes',
    'memory_working_set_bytes',
    'memory_high_bytes',
    'memory_peak_bytes',
    'memory_swap_bytes',
    'memory_swap_limit_bytes',
    'memory_stat_bytes',
    'memory_events_total',
    'memory_under_oom',
  ]) {
    assert.equal(f.get(`oomguard_${fam}`).samples.length, 0, `${fam}: no series`)
    assert.match(text, new RegExp(`^# HELP oomguard_${fam} .+\n# TYPE oomguard_${fam} (gauge|counter)$`, 'm'))
  }
  assert.equal(value(f, 'oomguard_memory_limit_bytes', { source: 'host' }), expected('no-memory-controller').limitBytes)
  assert.deepEqual(sample(f, 'oomguard_info').labels, { version: VERSION }, 'no cgroup labels without a cgroup')
  // The ratio is still known (host used memory over MemTotal), so it is printed.
  const m = getMemoryMetrics(null, { root: fixture('no-memory-controller') })
  assert.equal(value(f, 'oomguard_memory_usage_ratio'), m.usageRatio)
})

test('prometheus(): the unreadable fixture leaves memory.stat and memory.events out', { skip: parserSkip }, () => {
  const f = exposition(prometheus({ root: fixture('unreadable') }))
  assert.equal(f.get('oomguard_memory_stat_bytes').samples.length, 0)
  assert.equal(f.get('oomguard_memory_events_total').samples.length, 0)
  assert.equal(f.get('oomguard_memory_working_set_bytes').samples.length, 0, 'no inactive_file, no working set')
  assert.equal(value(f, 'oomguard_memory_usage_bytes'), expected('unreadable').usageBytes)
})

test('prometheus(): options.prefix', { skip: parserSkip }, () => {
  const f = exposition(prometheus({ root: fixture('v2-busy'), prefix: 'myapp_mem_' }))
  assert.deepEqual(
    [...f.keys()],
    FAMILIES.map((n) => `myapp_mem_${n}`),
  )
  assert.equal(value(f, 'myapp_mem_memory_limit_bytes', { source: 'cgroup-v2' }), 268435456)
  assert.ok(exposition(prometheus({ prefix: '_x' })).has('_xinfo'))
})

test('prometheus(): options.metrics formats a given snapshot; label values are escaped', { skip: parserSkip }, (t) => {
  const calls = countReads(t)
  const m = getMemoryMetrics(null, { root: fixture('v2-busy') })
  calls.n = 0
  const odd = 'a "quoted" \\ back\\slash\nnew line'
  const snapshot = { ...m, cgroup: { ...m.cgroup, path: odd } }
  const text = prometheus({ metrics: snapshot })
  assert.equal(calls.n, 0, 'nothing read')
  assert.ok(text.includes('cgroup_path="a \\"quoted\\" \\\\ back\\\\slash\\nnew line"'), text.split('\n')[2])
  const f = exposition(text)
  assert.equal(sample(f, 'oomguard_info').labels.cgroup_path, odd, 'the parser reads back the exact value')
  assert.equal(value(f, 'oomguard_v8_heap_used_bytes'), m.v8.heapUsedBytes)
  // A snapshot with parts missing prints what it has.
  const g = exposition(prometheus({ metrics: { limitBytes: 5, source: 'host', v8: { heapUsedBytes: 1 } } }))
  assert.equal(value(g, 'oomguard_memory_limit_bytes', { source: 'host' }), 5)
  assert.equal(value(g, 'oomguard_v8_heap_used_bytes'), 1)
  assert.equal(g.get('oomguard_memory_usage_bytes').samples.length, 0)
  assert.deepEqual(sample(g, 'oomguard_info').labels, { version: VERSION })
})

test('prometheus(): options.monitor adds the level and the thresholds', { skip: parserSkip }, () => {
  const fake = { level: 2, thresholds: [0.5, 0.7, 0.9] }
  const f = exposition(prometheus({ root: fixture('v2-busy'), monitor: fake }))
  assert.deepEqual(
    [...f.keys()],
    [...FAMILIES, ...MONITOR_FAMILIES].map((n) => `oomguard_${n}`),
  )
  assert.equal(value(f, 'oomguard_monitor_level'), 2)
  assert.deepEqual(
    f.get('oomguard_monitor_threshold_ratio').samples.map((s) => [s.labels.level, s.value]),
    [
      ['1', 0.5],
      ['2', 0.7],
      ['3', 0.9],
    ],
  )
  const closed = exposition(prometheus({ root: fixture('v2-busy'), monitor: { ...fake, closed: true } }))
  assert.equal(closed.get('oomguard_monitor_level').samples.length, 0, 'a closed monitor has no level')
  assert.equal(closed.get('oomguard_monitor_threshold_ratio').samples.length, 3)
})

test('prometheus(): a real watch() monitor on v2-busy (ratio 0.515)', { skip: parserSkip }, async (t) => {
  const monitor = oomguard.watch({ root: fixture('v2-busy'), thresholds: [0.5, 0.9], lastWords: false })
  t.after(() => monitor.close())
  const deadline = Date.now() + 5000
  while (monitor.current.samples === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
  const f = exposition(prometheus({ root: fixture('v2-busy'), monitor }))
  assert.equal(value(f, 'oomguard_monitor_level'), 1)
  assert.equal(value(f, 'oomguard_monitor_threshold_ratio', { level: '2' }), 0.9)
})

test('prometheus(): contentType, and text served from a live read', () => {
  assert.equal(prometheus.contentType, 'text/plain; version=0.0.4; charset=utf-8')
  const text = prometheus()
  assert.match(text, /^oomguard_memory_limit_bytes\{source="(cgroup-v1|cgroup-v2|host)"\} \d+$/m)
  assert.match(text, /^oomguard_v8_heap_used_bytes \d+$/m)
  lint(text)
})

test('bad options: TypeError or RangeError naming the option', () => {
  const cases = [
    [() => prometheus('x'), TypeError, /^options must be an object, got a string$/],
    [() => prometheus([]), TypeError, /^options must be an object/],
    [() => prometheus({ prefix: 1 }), TypeError, /^options\.prefix must be a string, got a number$/],
    [() => prometheus({ prefix: '' }), RangeError, /^options\.prefix must be a metric name prefix/],
    [() => prometheus({ prefix: 'my-app_' }), RangeError, /^options\.prefix must be/],
    [() => prometheus({ prefix: 'app:' }), RangeError, /^options\.prefix must be/],
    [() => prometheus({ prefix: '1app_' }), RangeError, /^options\.prefix must be/],
    [() => prometheus({ prefix: '__app_' }), RangeError, /^options\.prefix must be/],
    [() => prometheus({ prefix: 'container_' }), RangeError, /^options\.prefix must be a prefix that keeps names out of container_memory_\*/],
    [() => prometheus({ prefix: 'process_' }), RangeError, /^options\.prefix .*process_/],
    [() => prometheus({ prefix: 'nodejs_' }), RangeError, /^options\.prefix .*nodejs_/],
    [() => prometheus({ root: 5 }), TypeError, /^options\.root must be a string/],
    [() => prometheus({ root: '' }), RangeError, /^options\.root must be/],
    [() => prometheus({ monitor: {} }), TypeError, /^options\.monitor must be a Monitor from watch\(\)/],
    [() => prometheus({ monitor: 3 }), TypeError, /^options\.monitor must be/],
    [() => prometheus({ metrics: 'x' }), TypeError, /^options\.metrics must be a getMemoryMetrics\(\) result/],
    [() => prometheus({ metrics: { usageBytes: '12' } }), TypeError, /^options\.metrics\.usageBytes must be a finite number or null, got a string$/],
    [() => prometheus({ metrics: { stat: { anon: NaN } } }), TypeError, /^options\.metrics\.stat\.anon must be a finite number/],
    [() => prometheus({ metrics: { cgroup: { path: 1 } } }), TypeError, /^options\.metrics\.cgroup\.path must be a string or null/],
    [() => prometheus({ metrics: { stat: 7 } }), TypeError, /^options\.metrics\.stat\.anon must be part of a getMemoryMetrics\(\) result/],
    [() => prometheus({ metrics: {}, root: '/x' }), RangeError, /^options\.root must be left out when options\.metrics is given/],
    [() => registerPromClient('x'), TypeError, /^options must be an object/],
    [() => registerPromClient({ register: {} }), TypeError, /^options\.register must be a prom-client Registry, got an object$/],
    [() => registerPromClient({ register: new promClient.Registry(), prefix: 'a-b' }), RangeError, /^options\.prefix must be/],
    [() => registerPromClient({ register: new promClient.Registry(), monitor: [] }), TypeError, /^options\.monitor must be/],
    [() => registerPromClient({ register: new promClient.Registry(), root: 1 }), TypeError, /^options\.root must be a string/],
    [() => observeMemory(), TypeError, /^meter must be an OpenTelemetry Meter/],
    [() => observeMemory({ createObservableGauge() {} }), TypeError, /^meter must be an OpenTelemetry Meter/],
    [() => observeMemory(otelApi.metrics.getMeter('t'), 'x'), TypeError, /^options must be an object/],
    [() => observeMemory(otelApi.metrics.getMeter('t'), { monitor: 1 }), TypeError, /^options\.monitor must be/],
    [() => observeMemory(otelApi.metrics.getMeter('t'), { root: false }), TypeError, /^options\.root must be a string/],
  ]
  for (const [fn, Type, message] of cases) {
    assert.throws(fn, (err) => {
      assert.ok(err instanceof Type, `${err.constructor.name}: ${err.message}`)
      assert.match(err.message, message)
      assert.equal(err.code, Type === TypeError ? 'ERR_INVALID_ARG_TYPE' : 'ERR_OUT_OF_RANGE')
      return true
    })
  }
})

// ---------------------------------------------------------------------------
// prom-client

/** The parsed families, minus the V8/process numbers that move between reads. */
function stable(families) {
  const out = {}
  for (const [name, f] of families) {
    if (/_v8_heap_(used|total)_bytes$/.test(name)) {
      out[name] = { type: f.type, help: f.help, labels: f.samples.map((s) => s.labels) }
    } else {
      out[name] = f
    }
  }
  return out
}

test('prom-client: a fresh Registry prints what prometheus() prints; parsed by prometheus_client', { skip: parserSkip }, async () => {
  for (const name of ['v2-busy', 'v1-oom-after', 'no-memory-controller']) {
    const registry = new promClient.Registry()
    const reg = registerPromClient({ register: registry, root: fixture(name) })
    assert.deepEqual(
      reg.names,
      FAMILIES.map((n) => `oomguard_${n}`),
    )
    const fromRegistry = exposition((await registry.metrics()).replace(/\n\n/g, '\n'))
    const direct = exposition(prometheus({ root: fixture(name) }))
    assert.deepEqual(stable(fromRegistry), stable(direct), name)
    for (const n of FAMILIES) assert.equal(fromRegistry.get(`oomguard_${n}`).type, COUNTERS.has(n) ? 'counter' : 'gauge')
  }
  const registry = new promClient.Registry()
  registerPromClient({ register: registry, root: fixture('v1-oom-after') })
  const f = parse(await registry.metrics())
  const events = f.find((x) => x.name === 'oomguard_memory_events')
  assert.equal(events.type, 'counter')
  assert.deepEqual(
    events.samples.find((s) => s.labels.event === 'oom_kill'),
    { name: 'oomguard_memory_events_total', labels: { event: 'oom_kill' }, value: 1 },
  )
})

test('prom-client: beside collectDefaultMetrics(), no name collides; monitor and prefix', { skip: parserSkip }, async () => {
  const registry = new promClient.Registry()
  promClient.collectDefaultMetrics({ register: registry })
  const reg = registerPromClient({ register: registry, root: fixture('v2-busy'), monitor: { level: 1, thresholds: [0.5, 0.9] }, prefix: 'svc_' })
  assert.deepEqual(
    reg.names,
    [...FAMILIES, ...MONITOR_FAMILIES].map((n) => `svc_${n}`),
  )
  const text = await registry.metrics()
  const families = parse(text)
  const names = families.map((x) => x.name)
  assert.equal(new Set(names).size, names.length, 'unique family names')
  assert.ok(names.includes('process_resident_memory_bytes') && names.includes('nodejs_heap_size_used_bytes'), 'the defaults are there')
  const ours = families.filter((x) => x.name.startsWith('svc_'))
  assert.equal(ours.length, FAMILIES.length + MONITOR_FAMILIES.length)
  assert.equal(families.find((x) => x.name === 'svc_monitor_level').samples[0].value, 1)
  assert.equal(families.find((x) => x.name === 'svc_memory_limit_bytes').samples[0].labels.source, 'cgroup-v2')
})

test('prom-client: one getMemoryMetrics() snapshot per scrape', async (t) => {
  const calls = countReads(t)
  const registry = new promClient.Registry()
  registerPromClient({ register: registry, root: fixture('v2-busy') })
  assert.equal(calls.n, 0, 'registering reads nothing')
  await registry.metrics()
  assert.equal(calls.n, 1, 'one read for all the families of a scrape')
  await registry.metrics()
  assert.equal(calls.n, 2, 'the next scrape reads afresh')
  const json = await registry.getMetricsAsJSON()
  assert.equal(calls.n, 3)
  assert.equal(json.find((m) => m.name === 'oomguard_memory_limit_bytes').values[0].value, 268435456)
  await registry.getSingleMetricAsString('oomguard_memory_usage_bytes')
  assert.equal(calls.n, 4)
})

test('prom-client: unregister(), twice on one registry, resetMetrics(), default labels', async () => {
  const registry = new promClient.Registry()
  const other = new promClient.Gauge({ name: 'app_things', help: 'things', registers: [registry] })
  other.set(3)
  const reg = registerPromClient({ register: registry, root: fixture('v2-busy') })
  assert.throws(
    () => registerPromClient({ register: registry }),
    (err) => err.code === 'ERR_OOMGUARD_DUPLICATE_METRIC' && /oomguard_info is already registered/.test(err.message),
  )
  registry.resetMetrics()
  registry.setDefaultLabels({ pod: 'p-1' })
  const text = await registry.metrics()
  assert.match(text, /^oomguard_memory_limit_bytes\{source="cgroup-v2",pod="p-1"\} 268435456$/m)
  assert.match(text, /^oomguard_info\{cgroup_version="2",cgroup_path="\/fxcap\/busy",version="[^"]+",pod="p-1"\} 1$/m)
  reg.unregister()
  reg.unregister()
  assert.deepEqual(
    registry.getMetricsAsArray().map((m) => m.name),
    ['app_things'],
    'only what was there before remains',
  )
  const again = registerPromClient({ register: registry, root: fixture('v1-oom-after') })
  assert.match(await registry.metrics(), /^oomguard_memory_events_total\{event="oom_kill",pod="p-1"\} 1$/m)
  again.unregister()
})

test('prom-client: an OpenMetrics registry; parsed by the OpenMetrics parser', { skip: parserSkip }, async () => {
  const registry = new promClient.Registry(promClient.Registry.OPENMETRICS_CONTENT_TYPE)
  const reg = registerPromClient({ register: registry, root: fixture('v2-oom-after') })
  const text = await registry.metrics()
  const families = parse(text, 'openmetrics')
  const events = families.find((x) => x.name === 'oomguard_memory_events')
  assert.equal(events.type, 'counter')
  assert.equal(events.samples.find((s) => s.labels.event === 'oom_kill').name, 'oomguard_memory_events_total')
  assert.equal(events.samples.find((s) => s.labels.event === 'max').value, 41)
  const stall = families.find((x) => x.name === 'oomguard_memory_pressure_stall_seconds')
  assert.equal(stall.samples.find((s) => s.labels.kind === 'full').value, 0.000296)
  reg.unregister()
  assert.equal(registry.getMetricsAsArray().length, 0, 'unregistered although prom-client renamed the counters')
})

test("prom-client: the default is prom-client's global registry", async () => {
  const reg = registerPromClient({ root: fixture('v2-busy') })
  try {
    assert.match(await promClient.register.metrics(), /^oomguard_memory_usage_bytes 181149696$/m)
  } finally {
    reg.unregister()
  }
  assert.equal(promClient.register.getSingleMetric('oomguard_info'), undefined)
})

// ---------------------------------------------------------------------------
// Optional peer dependencies

function node(script) {
  const r = spawnSync(process.execPath, ['-e', script], { cwd: REPO, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  return r.stdout
}

test("require('oomguard') loads neither prom-client nor @opentelemetry/api", () => {
  const out = node(`
    const o = require('.')
    o.prometheus()
    const loaded = Object.keys(require.cache).filter((f) => /node_modules[\\\\/](prom-client|@opentelemetry)[\\\\/]/.test(f))
    console.log(JSON.stringify({ loaded, fns: [typeof o.prometheus, typeof o.registerPromClient, typeof o.observeMemory] }))`)
  assert.deepEqual(JSON.parse(out), { loaded: [], fns: ['function', 'function', 'function'] })
})

test('without prom-client installed: a clear error, unless a registry is passed', () => {
  const out = node(`
    const Module = require('module')
    const resolve = Module._resolveFilename
    Module._resolveFilename = function (request, ...rest) {
      if (request === 'prom-client') {
        const e = new Error("Cannot find module 'prom-client'")
        e.code = 'MODULE_NOT_FOUND'
        throw e
      }
      return resolve.call(this, request, ...rest)
    }
    const o = require('.')
    let error
    try { o.registerPromClient() } catch (e) { error = { code: e.code, message: e.message } }
    const metrics = {}
    const registry = { registerMetric: (m) => { metrics[m.name] = m }, getSingleMetric: (n) => metrics[n], removeSingleMetric: (n) => delete metrics[n] }
    o.registerPromClient({ register: registry, root: '__test__/fixtures/v2-busy' })
    console.log(JSON.stringify({ error, limit: metrics.oomguard_memory_limit_bytes.get().values }))`)
  const r = JSON.parse(out)
  assert.equal(r.error.code, 'ERR_OOMGUARD_PEER_MISSING')
  assert.match(r.error.message, /npm install prom-client/)
  assert.deepEqual(r.limit, [{ labels: { source: 'cgroup-v2' }, value: 268435456 }])
})

// ---------------------------------------------------------------------------
// OpenTelemetry

class TestReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

async function otelCollect(reader) {
  const { resourceMetrics, errors } = await reader.collect()
  assert.deepEqual(errors, [])
  const out = new Map()
  for (const sm of resourceMetrics.scopeMetrics) for (const m of sm.metrics) out.set(m.descriptor.name, m)
  return out
}
const point = (m, attrs = {}) => {
  const hits = m.dataPoints.filter((d) => Object.entries(attrs).every(([k, v]) => d.attributes[k] === v))
  assert.equal(hits.length, 1, `${m.descriptor.name} ${JSON.stringify(attrs)}`)
  return hits[0].value
}

const OTEL = {
  // name: [unit, kind]
  'container.memory.usage': ['By', 'updown'],
  'container.memory.working_set': ['By', 'updown'],
  'container.memory.available': ['By', 'updown'],
  'container.memory.rss': ['By', 'updown'],
  'process.memory.usage': ['By', 'updown'],
  'v8js.memory.heap.used': ['By', 'updown'],
  'v8js.memory.heap.space.size': ['By', 'updown'],
  'oomguard.info': ['1', 'gauge'],
  'oomguard.memory.limit': ['By', 'gauge'],
  'oomguard.memory.high': ['By', 'gauge'],
  'oomguard.memory.peak': ['By', 'gauge'],
  'oomguard.memory.swap.usage': ['By', 'gauge'],
  'oomguard.memory.swap.limit': ['By', 'gauge'],
  'oomguard.memory.utilization': ['1', 'gauge'],
  'oomguard.memory.headroom': ['By', 'gauge'],
  'oomguard.memory.stat': ['By', 'gauge'],
  'oomguard.memory.events': ['{event}', 'counter'],
  'oomguard.memory.under_oom': ['1', 'gauge'],
  'oomguard.memory.pressure.stall_ratio': ['1', 'gauge'],
  'oomguard.memory.pressure.stall_time': ['s', 'counter'],
  'oomguard.cgroup.processes': ['{process}', 'gauge'],
  'oomguard.cgroup.largest_process.rss': ['By', 'gauge'],
  'oomguard.memory.stalled': ['1', 'gauge'],
  'oomguard.v8.heap.limit': ['By', 'gauge'],
  'oomguard.v8.heap.limit_ratio': ['1', 'gauge'],
}

test('OpenTelemetry: names, units, instrument kinds and values on v2-busy, one snapshot per collection', async (t) => {
  const calls = countReads(t)
  const reader = new TestReader()
  const provider = new MeterProvider({ readers: [reader] })
  t.after(() => provider.shutdown())
  const reg = observeMemory(provider.getMeter('test'), { root: fixture('v2-busy') })
  assert.deepEqual(reg.names, Object.keys(OTEL))
  assert.equal(calls.n, 0)
  const got = await otelCollect(reader)
  assert.equal(calls.n, 1, 'one getMemoryMetrics() for every instrument')
  const e = expected('v2-busy')

  for (const [name, [unit, kind]] of Object.entries(OTEL)) {
    if (['oomguard.memory.under_oom', 'oomguard.cgroup.processes', 'oomguard.cgroup.largest_process.rss'].includes(name)) {
      assert.ok(!got.has(name) || got.get(name).dataPoints.length === 0, `${name}: v1 only or no cgroup.procs here`)
      continue
    }
    if (name === 'oomguard.memory.stalled') {
      assert.ok(!got.has(name) || got.get(name).dataPoints.length === 0, 'stalled is known only with a monitor on the root')
      continue
    }
    const m = got.get(name)
    assert.ok(m, name)
    assert.equal(m.descriptor.unit, unit, `${name} unit`)
    assert.ok(m.descriptor.description.length > 0)
    if (kind === 'gauge') assert.equal(m.dataPointType, DataPointType.GAUGE, name)
    else {
      assert.equal(m.dataPointType, DataPointType.SUM, name)
      assert.equal(m.isMonotonic, kind === 'counter', `${name} monotonic`)
    }
  }
  assert.equal(point(got.get('container.memory.usage')), e.usageBytes)
  assert.equal(point(got.get('container.memory.working_set')), e.workingSetBytes)
  assert.equal(point(got.get('container.memory.available')), e.limitBytes - e.workingSetBytes)
  assert.equal(point(got.get('container.memory.rss')), e.anon)
  assert.equal(point(got.get('process.memory.usage')), e.rssBytes)
  assert.equal(point(got.get('oomguard.memory.limit'), { 'oomguard.source': 'cgroup-v2' }), 268435456)
  assert.equal(point(got.get('oomguard.memory.high')), 209715200)
  assert.equal(point(got.get('oomguard.memory.peak')), e.peakBytes)
  assert.equal(point(got.get('oomguard.memory.swap.usage')), 0)
  assert.equal(point(got.get('oomguard.memory.swap.limit')), 0, 'the captured host has no swap space (SwapTotal 0): no swap is usable')
  assert.equal(point(got.get('oomguard.memory.utilization')), e.workingSetBytes / e.limitBytes)
  assert.equal(point(got.get('oomguard.memory.headroom')), e.limitBytes - e.workingSetBytes)
  for (const kind of ['anon', 'file', 'shmem', 'kernel', 'sock']) {
    assert.equal(point(got.get('oomguard.memory.stat'), { 'oomguard.stat.kind': kind }), e[kind], kind)
  }
  assert.equal(point(got.get('oomguard.memory.stat'), { 'oomguard.stat.kind': 'slab' }), 1630552)
  assert.equal(got.get('oomguard.memory.events').dataPoints.length, 6)
  assert.equal(point(got.get('oomguard.memory.events'), { 'oomguard.event': 'oom_kill' }), 0)
  assert.equal(point(got.get('oomguard.memory.pressure.stall_ratio'), { 'oomguard.pressure.kind': 'full', 'oomguard.pressure.window': '60s', 'oomguard.pressure.scope': 'cgroup' }), 0)
  assert.deepEqual(got.get('oomguard.info').dataPoints[0].attributes, { 'oomguard.version': VERSION, 'oomguard.cgroup.version': 2, 'oomguard.cgroup.path': '/fxcap/busy' })
  const spaces = got.get('v8js.memory.heap.used').dataPoints
  assert.ok(spaces.length >= 4 && spaces.every((d) => typeof d.attributes['v8js.heap.space.name'] === 'string'), 'per heap space')
  assert.ok(point(got.get('v8js.memory.heap.used'), { 'v8js.heap.space.name': 'old_space' }) > 0)
  assert.ok(point(got.get('oomguard.v8.heap.limit')) > 0)

  await otelCollect(reader)
  assert.equal(calls.n, 2, 'one read per collection')
  reg.unregister()
  reg.unregister()
  await otelCollect(reader)
  // (The SDK keeps exporting the last cumulative points of the instruments;
  // what unregister() stops is the callback, so nothing is read any more.)
  assert.equal(calls.n, 2, 'no read after unregister()')
})

test('OpenTelemetry: v1-oom-after through InMemoryMetricExporter; the OOM kill counter', async (t) => {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
  const provider = new MeterProvider({ readers: [reader] })
  t.after(() => provider.shutdown())
  observeMemory(provider.getMeter('test'), { root: fixture('v1-oom-after'), monitor: { level: 1, thresholds: [0.5, 0.9] } })
  await reader.forceFlush()
  const got = new Map()
  for (const rm of exporter.getMetrics()) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) got.set(m.descriptor.name, m)
  const events = got.get('oomguard.memory.events')
  assert.equal(events.isMonotonic, true)
  assert.equal(point(events, { 'oomguard.event': 'oom_kill' }), 1)
  assert.equal(point(events, { 'oomguard.event': 'failcnt' }), 80)
  assert.equal(events.dataPoints.length, 2)
  assert.equal(point(got.get('oomguard.memory.under_oom')), 0)
  assert.equal(point(got.get('oomguard.memory.limit'), { 'oomguard.source': 'cgroup-v1' }), 67108864)
  assert.equal(point(got.get('oomguard.memory.pressure.stall_time'), { 'oomguard.pressure.kind': 'some', 'oomguard.pressure.scope': 'system' }), 0.81205)
  assert.equal(got.get('oomguard.memory.high'), undefined, 'no memory.high on v1: no data point')
  assert.equal(point(got.get('oomguard.monitor.level')), 1)
  assert.equal(point(got.get('oomguard.monitor.threshold'), { 'oomguard.level': 2 }), 0.9)
})

test('OpenTelemetry: peak and swap on v2-swap and v1-swap; none without swap accounting', async (t) => {
  for (const name of ['v2-swap', 'v1-swap', 'v1-no-host-swap', 'v2-swap-off', 'v1-no-swap-accounting']) {
    const e = expected(name)
    const reader = new TestReader()
    const provider = new MeterProvider({ readers: [reader] })
    t.after(() => provider.shutdown())
    observeMemory(provider.getMeter('test'), { root: fixture(name) })
    const got = await otelCollect(reader)
    const points = (n) => (got.has(n) ? got.get(n).dataPoints.length : 0)
    assert.equal(point(got.get('oomguard.memory.peak')), e.peakBytes, `${name}: peak`)
    if (e.swapBytes === null) {
      assert.equal(points('oomguard.memory.swap.usage'), 0, `${name}: no swap accounting, no data point`)
      assert.equal(points('oomguard.memory.swap.limit'), 0, `${name}: no swap limit data point`)
    } else {
      assert.equal(point(got.get('oomguard.memory.swap.usage')), e.swapBytes, `${name}: swap`)
      assert.equal(point(got.get('oomguard.memory.swap.limit')), e.swapLimitBytes, `${name}: swap limit`)
    }
  }
})

test('processes: the count and the largest RSS in Prometheus and OpenTelemetry (v2-processes)', { skip: parserSkip }, async (t) => {
  const f = exposition(prometheus({ root: fixture('v2-processes') }))
  assert.equal(value(f, 'oomguard_cgroup_processes'), 21)
  assert.equal(value(f, 'oomguard_cgroup_largest_process_resident_memory_bytes'), 90 * 1024 * 1024)
  const busy = exposition(prometheus({ root: fixture('v2-busy') }))
  assert.equal(busy.get('oomguard_cgroup_processes').samples.length, 0, 'no cgroup.procs: no series')
  assert.equal(busy.get('oomguard_cgroup_largest_process_resident_memory_bytes').samples.length, 0)
  const reader = new TestReader()
  const provider = new MeterProvider({ readers: [reader] })
  t.after(() => provider.shutdown())
  observeMemory(provider.getMeter('test'), { root: fixture('v2-processes') })
  const got = await otelCollect(reader)
  assert.equal(point(got.get('oomguard.cgroup.processes')), 21)
  assert.equal(point(got.get('oomguard.cgroup.largest_process.rss')), 90 * 1024 * 1024)
})

test('OpenTelemetry: no memory controller leaves the container.* instruments empty', async (t) => {
  const reader = new TestReader()
  const provider = new MeterProvider({ readers: [reader] })
  t.after(() => provider.shutdown())
  observeMemory(provider.getMeter('test'), { root: fixture('no-memory-controller') })
  const got = await otelCollect(reader)
  for (const name of ['container.memory.usage', 'container.memory.working_set', 'container.memory.available', 'container.memory.rss', 'oomguard.memory.stat', 'oomguard.memory.events']) {
    assert.ok(!got.has(name) || got.get(name).dataPoints.length === 0, name)
  }
  assert.equal(point(got.get('oomguard.memory.limit'), { 'oomguard.source': 'host' }), expected('no-memory-controller').limitBytes)
  assert.deepEqual(got.get('oomguard.info').dataPoints[0].attributes, { 'oomguard.version': VERSION })
})

test("OpenTelemetry: the API's global (no-op) meter is accepted", () => {
  const reg = observeMemory(otelApi.metrics.getMeter('noop'))
  reg.unregister()
})
