'use strict'
// Prototype pollution reaches no option. Every public function that takes
// options runs in a child process whose Object.prototype carries a value for
// each option that function knows (thresholds, lastWords { path: a temp
// file }, root, basis, metrics, monitor, prefix, ...), is called with `{}` or
// no options, and must behave exactly as without the pollution: the temp
// file is never created, the fixture root is never read, no forged number
// reaches the output.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const REPO = path.join(__dirname, '..')
const FIXTURE = path.join(__dirname, 'fixtures', 'v2-busy')
const FIXTURE_LIMIT = 268435456 // v2-busy memory.max
const FIXTURE_CGROUP = '/fxcap/busy'
const FORGED = 4242424242

const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-pollution-'))
test.after(() => fs.rmSync(WORK, { recursive: true, force: true }))

let files = 0
/** A last-words path in an existing directory that must never come to exist. */
function trap() {
  return path.join(WORK, `last-words-${files++}`)
}

// The values a polluted prototype offers: each would change the behaviour
// if it were read (thresholds that every sample crosses, a last-words file,
// a fixture root, forged metrics and monitors, ...).
function pollution(lastWordsFile) {
  return `
const P = Object.prototype
const LW = ${JSON.stringify(lastWordsFile)}
const FX = ${JSON.stringify(FIXTURE)}
const FORGED = ${FORGED}
const values = {
  // watch()
  thresholds: [0.0001], basis: 'rss', hysteresis: 0.00001, minIntervalMs: 0.1, maxIntervalMs: 0.1,
  lastWords: { path: LW, stderr: true }, path: LW, stderr: true, root: FX,
  // getMemoryMetrics(usage)
  rss: FORGED, heapTotal: FORGED, heapUsed: FORGED, external: FORGED, arrayBuffers: FORGED, heapSizeLimit: 1,
  // shed() and the Fastify plugin
  monitor: { level: 1, thresholds: [0.0001], closed: false }, watch: { thresholds: [0.0001], lastWords: { path: LW } },
  level: 1, retryAfter: 77, exclude: ['/forged'], healthPath: '/forged', onShed() { process.stdout.write('FORGED onShed\\n') },
  // prometheus(), registerPromClient(), observeMemory()
  metrics: { limitBytes: FORGED, source: 'host', diagnoses: [], v8: {} }, prefix: 'forged_',
  register: { registerMetric() { throw new Error('FORGED register') }, getSingleMetric() {}, removeSingleMetric() {} },
  // the doctor
  heapLimitFrom: 'flag', workers: 99, nodeOptions: '--forged', nodeVersion: 'forged', color: true, diagnoses: [],
  // the register's variables (process.env falls through to Object.prototype)
  OOMGUARD_THRESHOLDS: '0.0001', OOMGUARD_BASIS: 'rss', OOMGUARD_LAST_WORDS_PATH: LW, OOMGUARD_LAST_WORDS_STDERR: '1',
  OOMGUARD_ROOT: FX, OOMGUARD_METRICS_PORT: '0', OOMGUARD_LOG_FORMAT: 'text', OOMGUARD_MAX_INTERVAL_MS: '0.1',
  OOMGUARD_DISABLE: '1',
  // the doctor's environment (process.env falls through too)
  FORCE_COLOR: '1', NODE_OPTIONS: '--forged-node-options',
  // names the option tables use internally: an entry that does not declare one must not inherit it
  copy() { return 'FORGED copy' }, fields: [{ key: 'path', env: 'OOMGUARD_ROOT', check: () => LW, fromEnv: () => LW }],
  effectiveDefault() { return 0.0001 }, envCheck() { return 'FORGED envCheck' }, labels: ['forged'], values: ['forged'],
}
const skip = (process.env.POLLUTION_SKIP || '').split(',')
for (const [k, v] of Object.entries(values)) {
  if (skip.includes(k)) continue
  Object.defineProperty(P, k, { value: v, writable: true, configurable: true, enumerable: false })
}
`
}

/** Run `body` after polluting Object.prototype; returns the JSON it prints last. */
function polluted(body, { skip = [], lastWordsFile = trap(), args = [], preload = false } = {}) {
  const script = `${pollution(lastWordsFile)}\n${body}`
  let r
  if (preload) {
    const file = path.join(WORK, `preload-${files++}.js`)
    fs.writeFileSync(file, pollution(lastWordsFile))
    r = spawnSync(process.execPath, ['-r', file, ...args], { cwd: REPO, encoding: 'utf8', timeout: 30_000, env: { ...process.env, POLLUTION_SKIP: skip.join(',') } })
  } else {
    r = spawnSync(process.execPath, ['-e', script, ...args], { cwd: REPO, encoding: 'utf8', timeout: 30_000, env: { ...process.env, POLLUTION_SKIP: skip.join(',') } })
  }
  const what = `exit ${r.status} ${r.signal || ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`
  assert.equal(r.signal, null, what)
  assert.doesNotMatch(r.stdout, /FORGED/, what)
  assert.doesNotMatch(r.stderr, /FORGED/, what)
  assert.equal(fs.existsSync(lastWordsFile), false, `the polluted last-words path was created\n${what}`)
  // A last-words line is possible on a machine near its limit, but never one from the polluted thresholds or root.
  assert.doesNotMatch(r.stderr, /"threshold":0\.0001|\/fxcap\/busy/, `the polluted thresholds or root were not used\n${what}`)
  return { r, what, out: r.status === 0 && !preload ? JSON.parse(r.stdout.trim().split('\n').pop()) : null }
}

const SAMPLES = `
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
async function sampled(m) {
  for (let i = 0; i < 400 && m.current.samples < 3; i++) await sleep(5)
  await sleep(200) // long enough for a crossing, and the last words, with the polluted settings
  return m.current
}
`

test('the pollution itself would take effect if it were read', () => {
  // The same values, passed as own properties, change what the functions do:
  // so the tests below, which see no change, would see one.
  const lw = trap()
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `${SAMPLES}
    const oomguard = require('.')
    ;(async () => {
      const m = oomguard.watch({ thresholds: [0.0001], root: ${JSON.stringify(FIXTURE)}, lastWords: { path: ${JSON.stringify(lw)}, stderr: false } })
      await sampled(m)
      m.close()
      console.log(JSON.stringify({ limit: m.current.limitBytes }))
    })()`,
    ],
    { cwd: REPO, encoding: 'utf8', timeout: 30_000 },
  )
  assert.equal(r.status, 0, r.stderr)
  assert.equal(JSON.parse(r.stdout).limit, FIXTURE_LIMIT)
  assert.equal(fs.existsSync(lw), true, 'the last-words file is written when the options are really given')
})

test('watch() and watch({}): the defaults, the live cgroup, no last-words file', () => {
  for (const call of ['oomguard.watch()', 'oomguard.watch({})', 'oomguard.watch(() => {})', 'oomguard.watch({ lastWords: {} })']) {
    const { out, what } = polluted(`${SAMPLES}
      const oomguard = require('.')
      ;(async () => {
        const m = ${call}
        const c = await sampled(m)
        m.close()
        console.log(JSON.stringify({ thresholds: m.thresholds, basis: m.basis, limit: c.limitBytes, samples: c.samples }))
      })()`)
    assert.ok(out, what)
    assert.deepEqual(out.thresholds, [0.8, 0.9, 0.95], call)
    assert.equal(out.basis, 'workingSet', call)
    assert.notEqual(out.limit, FIXTURE_LIMIT, `${call}: the polluted root was not read`)
  }
})

test('getMemoryMetrics(): neither the root nor the V8 numbers come from the prototype', () => {
  const { out, what } = polluted(`
    const { getMemoryMetrics } = require('.')
    const a = getMemoryMetrics()
    const b = getMemoryMetrics(null, {})
    const c = getMemoryMetrics({}, {})
    console.log(JSON.stringify({
      paths: [a, b, c].map((m) => m.cgroup && m.cgroup.path),
      limits: [a, b, c].map((m) => m.limitBytes),
      heapUsed: c.v8.heapUsedBytes, rss: c.v8.rssBytes, heapLimit: c.v8.heapSizeLimitBytes,
    }))`)
  assert.ok(out, what)
  for (const p of out.paths) assert.notEqual(p, FIXTURE_CGROUP)
  for (const l of out.limits) assert.notEqual(l, FIXTURE_LIMIT)
  assert.equal(out.heapUsed, null, 'getMemoryMetrics({}) has no heapUsed of its own')
  assert.equal(out.rss, null)
  assert.ok(out.heapLimit > 1, "the heap limit is V8's, not the prototype's 1")
})

test('shed() and shed({}): the defaults and a monitor of their own', () => {
  const { out, what } = polluted(`
    const oomguard = require('.')
    const res = []
    for (const g of [oomguard.shed(), oomguard.shed({})]) {
      res.push({ level: g.level, retryAfter: g.retryAfter, healthPath: g.healthPath, real: g.monitor instanceof oomguard.Monitor,
        thresholds: g.monitor.thresholds, basis: g.monitor.basis, health: g.health().thresholds })
      g.close()
    }
    console.log(JSON.stringify(res))`)
  assert.ok(out, what)
  for (const g of out) {
    assert.deepEqual(g, { level: 3, retryAfter: 10, healthPath: '/health/memory', real: true, thresholds: [0.8, 0.9, 0.95], basis: 'workingSet', health: [0.8, 0.9, 0.95] })
  }
})

test('the Fastify plugin with {}: the defaults', () => {
  // Fastify reads `prefix` and friends from plugin options itself: those are its, not ours.
  const { out, what } = polluted(
    `
    const fastify = require('fastify')()
    fastify.register(require('./lib/integrations/fastify.js'), {})
    fastify.ready().then(async () => {
      const s = fastify.oomguard
      const r = await fastify.inject({ url: '/health/memory' })
      const forged = await fastify.inject({ url: '/forged' })
      console.log(JSON.stringify({ level: s.level, retryAfter: s.retryAfter, healthPath: s.healthPath, thresholds: fastify.memoryMonitor.thresholds, health: r.statusCode, forged: forged.statusCode }))
      await fastify.close()
    })`,
    { skip: ['prefix', 'register', 'path', 'level', 'onShed', 'root'] },
  )
  assert.ok(out, what)
  assert.deepEqual(out, { level: 3, retryAfter: 10, healthPath: '/health/memory', thresholds: [0.8, 0.9, 0.95], health: 200, forged: 404 })
})

test('the Fastify plugin: onShed and level pollution reach nothing either', () => {
  // `level` and `onShed` polluted on their own (Fastify tolerates these).
  const { out, what } = polluted(`
    const { createShedCore } = require('./lib/integrations/shed.js')
    const core = createShedCore({})
    console.log(JSON.stringify({ level: core.level, onShed: core.onShed === undefined, exclude: typeof core.excluded({ url: '/forged' }) === 'boolean' && !core.excluded({ url: '/forged' }) }))
    core.close()`)
  assert.ok(out, what)
  assert.deepEqual(out, { level: 3, onShed: true, exclude: true })
})

test('prometheus() and prometheus({}): read live, no forged metrics, monitor or prefix', () => {
  const { out, what } = polluted(`
    const { prometheus } = require('.')
    console.log(JSON.stringify([prometheus(), prometheus({})]))`)
  assert.ok(out, what)
  for (const text of out) {
    assert.doesNotMatch(text, /forged_/)
    assert.doesNotMatch(text, new RegExp(String(FORGED)))
    assert.doesNotMatch(text, /oomguard_monitor_/)
    assert.match(text, /^oomguard_memory_limit_bytes\{source="[a-z0-9-]+"\} \d+$/m)
    assert.doesNotMatch(text, new RegExp(`^oomguard_memory_limit_bytes\\S* ${FIXTURE_LIMIT}$`, 'm'))
    assert.doesNotMatch(text, new RegExp(`cgroup_path="${FIXTURE_CGROUP}"`))
  }
})

test('registerPromClient() and observeMemory(): no forged registry, prefix, monitor or root', () => {
  const { out, what } = polluted(
    `
    const client = require('prom-client')
    const { registerPromClient, observeMemory } = require('.')
    const reg = new client.Registry()
    const a = registerPromClient({ register: reg })
    const b = registerPromClient()
    const observed = []
    const meter = {
      createObservableGauge: (n) => ({ n }), createObservableUpDownCounter: (n) => ({ n }), createObservableCounter: (n) => ({ n }),
      addBatchObservableCallback(cb) { cb({ observe: (i, v) => observed.push([i.n, v]) }) }, removeBatchObservableCallback() {},
    }
    const o = observeMemory(meter, {})
    const o2 = observeMemory(meter)
    reg.metrics().then((text) => {
      console.log(JSON.stringify({ a: a.names, b: b.names, o: o.names, o2: o2.names, text, observed }))
    })`,
    { skip: ['path'] },
  ) // Node's own module loader breaks with Object.prototype.path
  assert.ok(out, what)
  for (const names of [out.a, out.b]) {
    assert.ok(
      names.every((n) => n.startsWith('oomguard_')),
      names.join(),
    )
    assert.ok(!names.some((n) => n.includes('monitor')))
  }
  for (const names of [out.o, out.o2]) assert.ok(!names.some((n) => n.includes('monitor')))
  assert.doesNotMatch(out.text, new RegExp(`cgroup_path="${FIXTURE_CGROUP}"`))
  const limits = out.observed.filter(([n]) => n === 'oomguard.memory.limit').map(([, v]) => v)
  assert.ok(limits.length > 0 && !limits.includes(FIXTURE_LIMIT) && !limits.includes(FORGED), JSON.stringify(limits))
})

test('doctor.diagnose() and doctor.render(): no forged env or colour', () => {
  const { out, what } = polluted(`
    const { getMemoryMetrics, doctor } = require('.')
    const report = doctor.diagnose(getMemoryMetrics())
    const text = doctor.render(report)
    console.log(JSON.stringify({ from: report.heap.from, nodeOptions: report.heap.nodeOptions, text, workers: report.checks.find((c) => c.id === 'workers') }))`)
  assert.ok(out, what)
  assert.equal(out.from, 'process')
  assert.equal(out.nodeOptions, null)
  assert.doesNotMatch(out.text, /\u001b\[/, 'no colour from the prototype')
  assert.doesNotMatch(JSON.stringify(out.workers), /99/)
})

test("doctor.diagnose() and doctor.render(): the report's own keys (howTo, command, advice's note, ...) are not filled from the prototype", () => {
  // Keys a check, the heap advice or a reading may lack: each, inherited,
  // would print in the text or land in the report if read.
  const { out, what } = polluted(`
    const { getMemoryMetrics, doctor } = require('.')
    const metrics = getMemoryMetrics(null, { root: ${JSON.stringify(FIXTURE)} }) // a limit, so the heap advice shows
    const advice = { limitBytes: 1073741824, targetBytes: 751619276, nodeVersion: 'v20', measured: false, band: { low: 0.5, high: 0.8, target: 0.7 },
      options: [{ nodeOptions: '--max-old-space-size=700', heapSizeLimitBytes: 750000000, ratio: 0.7, inBand: true, measured: false }] }
    const forged = { howTo: 'FORGED howTo', command: 'FORGED command', note: 'FORGED note', form: 'percentage', leafHighBytes: ${FORGED},
      constrainedMemoryBytes: ${FORGED}, recommendation: 'FORGED recommendation', nodeSizing: { text: 'FORGED sizing' },
      swap: { peakBytes: ${FORGED}, swapBytes: ${FORGED}, message: 'FORGED swap' }, processes: { count: 1, largest: [{ pid: 1, command: 'FORGED process', rssBytes: 1 }] } }
    for (const [k, v] of Object.entries(forged)) Object.defineProperty(Object.prototype, k, { value: v, writable: true, configurable: true, enumerable: false })
    const report = doctor.diagnose(metrics, { heapAdvice: advice })
    const text = doctor.render(report)
    const plain = JSON.parse(JSON.stringify(report))
    for (const k of Object.keys(forged)) delete Object.prototype[k]
    const checks = report.checks.map((c) => ({ id: c.id, howTo: Object.hasOwn(c, 'howTo'), command: Object.hasOwn(c, 'command') }))
    console.log(JSON.stringify({ text: text.replace(/FORGED/g, 'F0RGED'), report: JSON.stringify(plain).replace(/FORGED/g, 'F0RGED'), checks }))`)
  assert.ok(out, what)
  assert.doesNotMatch(out.text, /F0RGED/, 'no forged text printed')
  assert.ok(!out.text.includes(`${(FORGED / 1048576).toFixed(1)} MiB`), 'no forged byte count printed')
  assert.doesNotMatch(out.text, /follows the limit across restarts/, "the advice's form is its own, not the prototype's")
  assert.match(out.text, /--max-old-space-size=700/, 'the advice is rendered')
  assert.doesNotMatch(out.report, /F0RGED/, 'no forged text in the report')
  assert.ok(!out.report.includes(String(FORGED)), 'no forged number in the report')
  assert.match(out.text, /Check by hand: /, 'the checks that have a howTo still print it')
  const pass = out.checks.filter((c) => !c.howTo)
  assert.ok(pass.length > 0, 'some checks have no howTo of their own')
})

test('the doctor CLI: no forged root, heap limit or colour', () => {
  const { r, what } = polluted('', { preload: true, args: ['bin/oomguard.js', '--json'] })
  assert.equal(r.status, 0, what)
  const report = JSON.parse(r.stdout)
  assert.notEqual(report.cgroup && report.cgroup.path, FIXTURE_CGROUP)
  assert.notEqual(report.limit.bytes, FIXTURE_LIMIT)
  assert.equal(report.heap.from, 'process')
})

test('the doctor CLI as text, and useColor(): no forced colour, no forged NODE_OPTIONS', () => {
  const { r, what } = polluted('', { preload: true, args: ['bin/oomguard.js', '--root', FIXTURE] }) // the heap limit is the process's own: NODE_OPTIONS is shown
  assert.equal(r.status, 0, what)
  assert.doesNotMatch(r.stdout, /\u001b\[/, 'no colour from the prototype')
  assert.doesNotMatch(r.stdout, /forged/)
  const { out } = polluted(`
    const { doctor } = require('.')
    console.log(JSON.stringify([doctor.useColor({ isTTY: false }, process.env), doctor.useColor({ isTTY: false }, {}), doctor.useColor({ isTTY: false })]))`)
  assert.deepEqual(out, [false, false, false])
})

test('the register: OOMGUARD_* on Object.prototype are no variables', () => {
  const { out, what } = polluted(`${SAMPLES}
    const state = require('./lib/integrations/register.js')
    ;(async () => {
      const c = state.monitor ? await sampled(state.monitor) : null
      console.log(JSON.stringify({ started: state.started, reason: state.reason, problems: state.problems, server: state.server !== null,
        thresholds: state.monitor && state.monitor.thresholds, basis: state.monitor && state.monitor.basis, limit: c && c.limitBytes }))
    })()`)
  assert.ok(out, what)
  assert.equal(out.started, true, 'OOMGUARD_DISABLE on the prototype does not disable it')
  assert.deepEqual(out.problems, [])
  assert.equal(out.server, false, 'no /metrics server from a polluted OOMGUARD_METRICS_PORT')
  assert.deepEqual(out.thresholds, [0.8, 0.9, 0.95])
  assert.equal(out.basis, 'workingSet')
  assert.notEqual(out.limit, FIXTURE_LIMIT)
})
