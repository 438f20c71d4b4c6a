'use strict'
// lib/core/options.js: one declaration per option, and the snapshot rule (own
// properties, each read once, arrays copied once, holes refused) as every
// public function applies it. Prototype pollution runs in child processes:
// __test__/pollution.test.js.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const oomguard = require('..')
const options = require('../lib/core/options.js')
const { createShedCore } = require('../lib/integrations/shed.js')

const FIXTURES = path.join(__dirname, 'fixtures')
const BUSY = path.join(FIXTURES, 'v2-busy')

function tmpdir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-options-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

const named = (Type, re) => (err) => {
  assert.ok(err instanceof Type, `${err && err.name}: ${err && err.message}`)
  assert.match(err.message, re)
  assert.equal(err.code, Type === TypeError ? 'ERR_INVALID_ARG_TYPE' : 'ERR_OUT_OF_RANGE')
  return true
}

test("the documentation tables and lib/index.d.ts's WatchOptions are the ones lib/core/options.js generates from lib/core/options.json (node lib/core/options.js --readme)", () => {
  const page = (name) => fs.readFileSync(path.join(__dirname, '..', options.DOC_TABLE_PAGES[name]), 'utf8')
  assert.match(page('watch-options'), /<!-- options:watch-options -->/)
  assert.match(page('register-variables'), /<!-- options:register-variables -->/)
  assert.match(page('watch-interface'), /^\/\/ options:watch-interface\n[\s\S]*?^export interface WatchOptions \{[\s\S]*?^\/\/ \/options:watch-interface$/m)
  for (const [name, file] of Object.entries(options.DOC_TABLE_PAGES)) {
    const text = page(name)
    const marker = file.endsWith('.md') ? `<!-- options:${name} -->` : `// options:${name}`
    assert.ok(text.includes(marker), `${file} holds the ${name} section`)
    assert.equal(options.renderReadme(text), text, `${file}: run \`node lib/core/options.js --readme\` after changing an option`)
  }
  // A stale section is found: one bound changed in the text is rewritten back.
  const dts = page('watch-interface')
  const stale = dts.replace('; 1 to 16 of them', '; 1 to 15 of them')
  assert.notEqual(stale, dts)
  assert.equal(options.renderReadme(stale), dts)
  // Each table on one page: none left in the README or on another page.
  for (const file of ['README.md', ...fs.readdirSync(path.join(__dirname, '..', 'docs')).map((f) => `docs/${f}`)]) {
    const text = fs.readFileSync(path.join(__dirname, '..', file), 'utf8')
    for (const [name, home] of Object.entries(options.DOC_TABLE_PAGES)) {
      if (file !== home) assert.doesNotMatch(text, new RegExp(`<!-- options:${name} -->`), `the ${name} table is on ${home} only`)
    }
  }
})

test('one declaration: the defaults, the register variables and the exports come from the table', () => {
  assert.deepEqual(oomguard.WATCH_DEFAULTS, options.WATCH_DEFAULTS)
  assert.equal(oomguard.SHED_DEFAULTS, options.SHED_DEFAULTS)
  for (const spec of options.WATCH_OPTIONS) {
    if (spec.default !== undefined) assert.deepEqual(oomguard.WATCH_DEFAULTS[spec.name], spec.default, spec.name)
  }
  // Every variable the README lists is one the register reads, with its description.
  const names = options.variables().map((v) => v.name)
  assert.deepEqual(Object.keys(options.variableDescriptions()), names)
  for (const n of names) assert.match(n, /^OOMGUARD_[A-Z_]+$/)
  assert.equal(new Set(names).size, names.length, 'no variable twice')
  // The env values go through watch()'s own checks: what one refuses, the other refuses.
  const { problems } = options.parseEnv({ OOMGUARD_HYSTERESIS: '0.6', OOMGUARD_THRESHOLDS: '0.5,0.5' })
  assert.equal(problems.length, 2)
  assert.throws(() => oomguard.watch({ hysteresis: 0.6 }), RangeError)
  assert.throws(() => oomguard.watch({ thresholds: [0.5, 0.5] }), RangeError)
})

test("thresholds with holes or non-numbers: a named TypeError, never napi's NumberExpected", () => {
  // biome-ignore lint/suspicious/noSparseArray: the hole is what is tested
  assert.throws(() => oomguard.watch({ thresholds: [0.5, ,] }), named(TypeError, /^options\.thresholds\[1\] must be a number, got a hole/))
  // biome-ignore lint/suspicious/noSparseArray: the hole is what is tested
  assert.throws(() => oomguard.watch({ thresholds: [, 0.5] }), named(TypeError, /^options\.thresholds\[0\] must be a number/))
  assert.throws(() => oomguard.watch({ thresholds: [0.5, '0.6'] }), named(TypeError, /^options\.thresholds\[1\] must be a number, got a string/))
  assert.throws(() => oomguard.watch({ thresholds: [0.5, { valueOf: () => 0.6 }] }), named(TypeError, /^options\.thresholds\[1\] must be a number, got an object/))
  assert.throws(() => oomguard.watch({ thresholds: new Array(3) }), named(TypeError, /^options\.thresholds\[0\] must be a number, got a hole/))
  // A hole is not filled from Array.prototype either.
  Array.prototype[1] = 0.9 // restored in finally
  try {
    // biome-ignore lint/suspicious/noSparseArray: the hole is what is tested
    assert.throws(() => oomguard.watch({ thresholds: [0.5, ,] }), named(TypeError, /^options\.thresholds\[1\]/))
  } finally {
    delete Array.prototype[1]
  }
  // biome-ignore lint/suspicious/noSparseArray: the hole is what is tested
  assert.throws(() => oomguard.shed({ watch: { lastWords: false }, exclude: ['/a', , '/b'] }), named(TypeError, /^options\.exclude\[1\] must be a path string/))
})

test('a getter is read exactly once: what passed validation is what the monitor gets', (t) => {
  let reads = 0
  const opts = {
    get thresholds() {
      reads++
      return reads === 1 ? [0.5, 0.9] : [7]
    },
    get basis() {
      reads++
      return reads === 2 ? 'usage' : 'nonsense'
    },
    root: BUSY,
    lastWords: {
      get stderr() {
        reads++
        return false
      },
    },
  }
  const m = oomguard.watch(opts)
  t.after(() => m.close())
  assert.equal(reads, 3, 'each getter once')
  assert.deepEqual([...m.thresholds], [0.5, 0.9])
  assert.equal(m.basis, 'usage')
  // Elements too: each index read once.
  let elementReads = 0
  const list = [0.5, 0.6]
  Object.defineProperty(list, 1, {
    enumerable: true,
    get() {
      elementReads++
      return elementReads === 1 ? 0.6 : 7
    },
  })
  const m2 = oomguard.watch({ thresholds: list, root: BUSY, lastWords: false })
  t.after(() => m2.close())
  assert.equal(elementReads, 1)
  assert.deepEqual([...m2.thresholds], [0.5, 0.6])
})

test('a Proxy cannot pass validation and hand something else later: 40 thresholds behind a lying length', (t) => {
  let lengthReads = 0
  const target = Array.from({ length: 40 }, (_, i) => (i + 1) / 41)
  const proxy = new Proxy(target, {
    get(obj, key) {
      if (key === 'length') return ++lengthReads === 1 ? 3 : 40
      return obj[key]
    },
  })
  const m = oomguard.watch({ thresholds: proxy, root: BUSY, lastWords: false })
  t.after(() => m.close())
  assert.equal(lengthReads, 1, 'length read once')
  assert.equal(m.thresholds.length, 3)
  assert.deepEqual([...m.thresholds], target.slice(0, 3))
  // An options object that is a Proxy: every key read at most once.
  const seen = new Map()
  const opts = new Proxy(
    { thresholds: [0.5], basis: 'rss', root: BUSY, lastWords: false },
    {
      get(obj, key) {
        seen.set(key, (seen.get(key) || 0) + 1)
        return obj[key]
      },
    },
  )
  const m2 = oomguard.watch(opts)
  t.after(() => m2.close())
  for (const [key, n] of seen) assert.equal(n, 1, `${String(key)} read ${n} times`)
  assert.equal(m2.basis, 'rss')
  // The configuration handed on is frozen and has no prototype.
  const config = options.watchConfig({ thresholds: [0.5] })
  assert.equal(Object.getPrototypeOf(config), null)
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.thresholds))
})

test('lastWords.path is checked at watch(): no NUL, an existing directory, not a directory', (t) => {
  const dir = tmpdir(t)
  const cases = [
    [{ path: 'a\0b' }, RangeError, /^options\.lastWords\.path must be a path without NUL bytes/],
    [{ path: path.join(dir, 'missing', 'last-words') }, RangeError, /^options\.lastWords\.path must be a file in an existing directory \(.*missing: ENOENT\)/],
    [{ path: dir }, RangeError, /^options\.lastWords\.path must be a file, not a directory/],
    [{ path: path.join(dir, 'file', 'below-a-file') }, RangeError, /^options\.lastWords\.path must be a file in an existing directory/],
    [{ path: '' }, RangeError, /^options\.lastWords\.path must be a non-empty path/],
    [{ path: 1 }, TypeError, /^options\.lastWords\.path must be a string/],
  ]
  fs.writeFileSync(path.join(dir, 'file'), '')
  for (const [lastWords, Type, re] of cases) {
    assert.throws(() => oomguard.watch({ root: BUSY, lastWords }), named(Type, re), JSON.stringify(lastWords))
  }
  // Through shed(): named as shed()'s.
  assert.throws(() => oomguard.shed({ watch: { lastWords: { path: dir } } }), named(RangeError, /^options\.watch\.lastWords\.path must be a file, not a directory/))
  // A file that does not exist yet in an existing directory, and an existing file, are fine. The
  // monitor creates it empty, to hold its lock (the record's owner, src/watch/owner.rs), and writes nothing.
  const file = path.join(dir, 'last-words')
  const m = oomguard.watch({ root: BUSY, lastWords: { path: file, stderr: false } })
  assert.equal(m.lastWordsFile.owner, true)
  m.close()
  assert.equal(fs.readFileSync(file, 'utf8'), '', 'created empty, nothing written below every threshold')
  // A relative path is resolved when it is checked: the sampler opens what was checked.
  assert.equal(options.watchConfig({ lastWords: { path: 'last-words.log' } }).lastWordsPath, path.resolve('last-words.log'))
  // A FIFO is only stat()ed: watch() returns at once.
  const fifo = path.join(dir, 'fifo')
  require('node:child_process').execFileSync('mkfifo', [fifo])
  const start = Date.now()
  const m2 = oomguard.watch({ root: BUSY, thresholds: [0.99], lastWords: { path: fifo, stderr: false } })
  m2.close()
  assert.ok(Date.now() - start < 2000)
})

test('shed(), prometheus(), doctor: forged monitors and reports are checked, not trusted', () => {
  const forged = { level: 1, thresholds: [0.5, 0.7] }
  const core = createShedCore({ monitor: forged })
  assert.equal(core.level, 2)
  assert.throws(() => oomguard.shed({ monitor: { level: 1, thresholds: [0.5, '0.7'] } }), named(TypeError, /^options\.monitor\.thresholds\[1\] must be a number/))
  assert.throws(() => oomguard.shed({ monitor: { level: 1, thresholds: [] } }), named(TypeError, /^options\.monitor must be a Monitor/))
  assert.throws(() => oomguard.prometheus({ root: BUSY, monitor: { level: 1, thresholds: [0.9, 0.5] } }), named(RangeError, /^options\.monitor\.thresholds\[1\] must be above/))
  // A level that is not a level of those thresholds prints no series, never the forged value.
  const text = oomguard.prometheus({ root: BUSY, monitor: { level: 99, thresholds: [0.5] } })
  assert.doesNotMatch(text, /^oomguard_monitor_level /m)
  assert.match(oomguard.prometheus({ root: BUSY, monitor: { level: 1, thresholds: [0.5] } }), /^oomguard_monitor_level 1$/m)
  // Only own properties of options.metrics are read.
  const proto = { usageBytes: 12345 }
  const text2 = oomguard.prometheus({ metrics: Object.create(proto) })
  assert.doesNotMatch(text2, /12345/)
  // The doctor's functions: named TypeErrors with codes.
  const { diagnose, render } = oomguard.doctor
  assert.throws(() => diagnose(null), named(TypeError, /^metrics must be a getMemoryMetrics\(\) result, got null/))
  assert.throws(() => diagnose({ diagnoses: 1 }), named(TypeError, /^metrics must be a getMemoryMetrics\(\) result/))
  assert.throws(() => diagnose({ diagnoses: [null] }), named(TypeError, /^metrics\.diagnoses\[0\] must be a diagnosis object/))
  assert.throws(() => diagnose({ diagnoses: [], v8: 5 }), named(TypeError, /^metrics\.v8 must be an object or null/))
  const m = oomguard.getMemoryMetrics(null, { root: BUSY })
  assert.throws(() => diagnose(m, 'x'), named(TypeError, /^env must be an object/))
  assert.throws(() => diagnose(m, { workers: -1 }), named(RangeError, /^env\.workers must be a whole number from 0/))
  assert.throws(() => diagnose(m, { workers: '2' }), named(TypeError, /^env\.workers must be a number/))
  assert.throws(() => diagnose(m, { heapLimitFrom: 'guess' }), named(RangeError, /^env\.heapLimitFrom must be one of 'process', 'flag'/))
  const report = diagnose(m, { heapLimitFrom: 'flag' })
  assert.throws(() => render(), named(TypeError, /^report must be a doctor\.diagnose\(\) result, got undefined/))
  assert.throws(() => render({}), named(TypeError, /^report must be a doctor\.diagnose\(\) result/))
  assert.throws(() => render({ ...report, checks: null }), named(TypeError, /^report\.checks must be an array/))
  assert.throws(() => render({ ...report, heap: 1 }), named(TypeError, /^report\.heap must be an object/))
  assert.throws(() => render(report, { color: 'yes' }), named(TypeError, /^options\.color must be a boolean/))
  assert.throws(() => render(report, 5), named(TypeError, /^options must be an object/))
  assert.throws(() => oomguard.doctor.useColor({ isTTY: true }, { FORCE_COLOR: 1 }), named(TypeError, /^env\.FORCE_COLOR must be a string, got a number/))
  assert.throws(() => oomguard.doctor.useColor({ isTTY: true }, 'x'), named(TypeError, /^env must be an object/))
  assert.equal(typeof render(report), 'string')
})

test("getMemoryMetrics(usage): only the caller's own numbers", () => {
  const usage = Object.create({ heapUsed: 42 })
  usage.rss = 1000
  const m = oomguard.getMemoryMetrics(usage, { root: BUSY })
  assert.equal(m.v8.heapUsedBytes, null, "an inherited heapUsed is not the caller's")
  assert.equal(m.v8.rssBytes, 1000)
})

test('shed(), prometheus() and the register read each option once too', (t) => {
  let reads = 0
  const guard = oomguard.shed({
    watch: { root: BUSY, lastWords: false },
    get retryAfter() {
      reads++
      return reads === 1 ? 5 : 'x'
    },
  })
  t.after(() => guard.close())
  assert.equal(reads, 1)
  assert.equal(guard.retryAfter, 5)
  // A getter in a given snapshot: read once, so the value checked is the value printed.
  let n = 0
  const metrics = {
    get usageBytes() {
      n++
      return n === 1 ? 5 : 'not a number'
    },
  }
  const text = oomguard.prometheus({ metrics })
  assert.equal(n, 1)
  assert.match(text, /^oomguard_memory_usage_bytes 5$/m)
  // The environment: own properties only, each variable read at most once.
  const seen = new Map()
  const env = new Proxy(
    { OOMGUARD_THRESHOLDS: '0.5,0.6', OOMGUARD_LAST_WORDS_STDERR: 'no' },
    {
      get(obj, key) {
        seen.set(key, (seen.get(key) || 0) + 1)
        return obj[key]
      },
    },
  )
  const { settings, problems } = options.parseEnv(env)
  assert.deepEqual(problems, [])
  assert.deepEqual(settings.watch, { thresholds: [0.5, 0.6], lastWords: { stderr: false } })
  for (const [key, count] of seen) assert.equal(count, 1, `${String(key)} read ${count} times`)
})

test("the doctor's usage and the doctor page's flag table list every flag", () => {
  const { spawnSync } = require('node:child_process')
  const help = spawnSync(process.execPath, [path.join(__dirname, '..', 'bin', 'oomguard.js'), '--help'], { encoding: 'utf8' })
  const readme = fs.readFileSync(path.join(__dirname, '..', options.DOC_TABLE_PAGES['doctor-flags']), 'utf8')
  for (const f of options.CLI_FLAGS) {
    assert.ok(help.stdout.includes(f.flag), f.flag)
    assert.ok(readme.includes(`\`${f.flag}`), f.flag)
  }
})

test('lib/index.d.ts declares exactly the options the tables declare', () => {
  const dts = fs.readFileSync(path.join(__dirname, '..', 'lib', 'index.d.ts'), 'utf8')
  /** The top-level property names of `export interface NAME`. */
  const props = (name) => {
    const start = dts.search(new RegExp(`^export interface ${name}\\b[^{]*\\{`, 'm'))
    assert.ok(start !== -1, `interface ${name}`)
    const body = dts.slice(dts.indexOf('{', start) + 1, dts.indexOf('\n}', start))
    return [...body.matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1])
  }
  const names = (list) => list.map((o) => o.name)
  assert.deepEqual(props('WatchOptions').sort(), names(options.WATCH_OPTIONS).sort())
  assert.deepEqual(props('ShedOptions').sort(), names(options.SHED_OPTIONS).sort())
  assert.deepEqual(props('DoctorEnv').sort(), names(options.DOCTOR_ENV).sort())
  const exporters = new Set([...props('PrometheusOptions'), ...props('PromClientOptions'), ...props('OtelOptions')])
  assert.deepEqual([...exporters].sort(), names(options.METRICS_OPTIONS).sort())
})
