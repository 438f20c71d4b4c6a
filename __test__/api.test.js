'use strict'
// The public API on the live kernel: input validation, the numbers passed
// in, and the declared types matching what is returned.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const oomguard = require('..')
const { getMemoryMetrics } = oomguard

const FIXTURES = path.join(__dirname, 'fixtures')

test('live: getMemoryMetrics() reads this machine without throwing', () => {
  const r = getMemoryMetrics()
  assert.ok(r.hostTotalBytes > 0)
  assert.ok(r.rssBytes > 0)
  assert.ok(r.limitBytes > 0)
  assert.ok(['cgroup-v1', 'cgroup-v2', 'host'].includes(r.source), r.source)
  assert.ok(r.v8.heapUsedBytes > 0, 'process.memoryUsage() was called')
  assert.ok(r.v8.heapSizeLimitBytes > 0, 'v8.getHeapStatistics() was called')
  assert.ok(Math.abs(r.timestampMs - Date.now()) < 5000)
  if (process.platform === 'linux' && fs.existsSync('/sys/fs/cgroup')) {
    const own = fs.readFileSync('/proc/self/cgroup', 'utf8')
    assert.ok(r.cgroup, 'a Linux machine with cgroups has a memory cgroup here')
    assert.ok(own.includes(`:${r.cgroup.path}\n`), `${r.cgroup.path} in ${own}`)
    assert.ok(r.usageBytes > 0)
    assert.ok(r.workingSetBytes <= r.usageBytes)
  }
})

test('live: values are fresh on every call (pread, not cached)', async () => {
  const before = getMemoryMetrics()
  const hold = Buffer.alloc(64 * 1024 * 1024, 1) // 64 MiB touched
  const after = getMemoryMetrics()
  assert.ok(after.rssBytes - before.rssBytes > 48 * 1024 * 1024, `rss ${before.rssBytes} -> ${after.rssBytes}`)
  if (before.usageBytes !== null) {
    assert.ok(after.usageBytes - before.usageBytes > 32 * 1024 * 1024, `usage ${before.usageBytes} -> ${after.usageBytes}`)
  }
  assert.equal(hold[hold.length - 1], 1)
})

test('the usage object passed in is used as given and not modified', () => {
  const usage = { rss: 1, heapTotal: 2, heapUsed: 3, external: 4, arrayBuffers: 5 }
  const copy = { ...usage }
  const r = getMemoryMetrics(usage)
  assert.deepEqual({ ...r.v8, heapSizeLimitBytes: null }, { rssBytes: 1, heapTotalBytes: 2, heapUsedBytes: 3, externalBytes: 4, arrayBuffersBytes: 5, heapSizeLimitBytes: null })
  assert.ok(r.v8.heapSizeLimitBytes > 0, 'heap limit filled from v8 when not given')
  assert.deepEqual(usage, copy)
  const partial = getMemoryMetrics({ heapUsed: 7 })
  assert.equal(partial.v8.heapUsedBytes, 7)
  assert.equal(partial.v8.rssBytes, null, 'a field not passed is null, not 0')
})

test('bad usage input: TypeError or RangeError naming the field', () => {
  const cases = [
    ['a string', 'nope', TypeError, /^usage must be an object/],
    ['a number', 42, TypeError, /^usage must be an object/],
    ['an array', [], TypeError, /^usage must be an object/],
    ['string field', { heapUsed: '12' }, TypeError, /usage\.heapUsed must be a number/],
    ['bigint field', { rss: 5n }, TypeError, /usage\.rss must be a number/],
    ['NaN', { external: NaN }, RangeError, /usage\.external must be a finite, non-negative/],
    ['negative', { arrayBuffers: -1 }, RangeError, /usage\.arrayBuffers/],
    ['Infinity', { heapTotal: Infinity }, RangeError, /usage\.heapTotal/],
    ['negative heap limit', { heapSizeLimit: -5 }, RangeError, /usage\.heapSizeLimit/],
  ]
  for (const [name, input, type, message] of cases) {
    assert.throws(
      () => getMemoryMetrics(input),
      (err) => {
        assert.ok(err instanceof type, `${name}: ${err}`)
        assert.match(err.message, message, name)
        return true
      },
    )
  }
})

test('bad options: TypeError or RangeError naming the option', () => {
  const cases = [
    ['options a string', 'x', TypeError, /^options must be an object/],
    ['root a number', { root: 1 }, TypeError, /^options\.root must be a string, got a number/],
    ['root null', { root: null }, TypeError, /^options\.root must be a string, got null/],
    ['root empty', { root: '' }, RangeError, /^options\.root must be a non-empty path/],
    ['root with NUL', { root: 'a\0b' }, RangeError, /^options\.root/],
  ]
  for (const [name, options, type, message] of cases) {
    assert.throws(
      () => getMemoryMetrics(undefined, options),
      (err) => {
        assert.ok(err instanceof type, `${name}: ${err}`)
        assert.match(err.message, message, name)
        assert.ok(err.code, `${name}: has a code`)
        return true
      },
    )
  }
  // null and undefined mean defaults
  assert.ok(getMemoryMetrics(null, null).hostTotalBytes > 0)
})

test('a relative root is resolved against the working directory', () => {
  const rel = path.relative(process.cwd(), path.join(FIXTURES, 'v2-busy'))
  assert.equal(getMemoryMetrics(null, { root: rel }).limitBytes, 268435456)
})

test('byte counts are plain numbers and results are independent objects', () => {
  const a = getMemoryMetrics(null, { root: path.join(FIXTURES, 'v1-hybrid-busy') })
  const b = getMemoryMetrics(null, { root: path.join(FIXTURES, 'v1-hybrid-busy') })
  assert.equal(typeof a.usageBytes, 'number')
  assert.equal(typeof a.stat.raw.total_rss, 'number')
  assert.notEqual(a, b)
  assert.notEqual(a.stat, b.stat)
  a.stat.anon = -1
  assert.notEqual(b.stat.anon, -1)
  assert.ok(Object.isFrozen(a.diagnoses), 'shared diagnoses are frozen')
})

// Parse `export interface X { field: type }` blocks from the hand-written
// lib/index.d.ts (the reading's shape) and the generated index.d.ts (the
// types the native side builds).
function interfaces() {
  const dts = ['index.d.ts', 'lib/index.d.ts'].map((f) => fs.readFileSync(path.join(__dirname, '..', f), 'utf8')).join('\n')
  const out = {}
  for (const m of dts.matchAll(/export interface (\w+) \{([\s\S]*?)\n\}/g)) {
    const body = m[2].replace(/\/\*\*[\s\S]*?\*\//g, '')
    out[m[1]] = Object.fromEntries([...body.matchAll(/^\s+(\w+)(\??): ([^\n]+)$/gm)].map((f) => [f[1], { optional: f[2] === '?', type: f[3].trim() }]))
  }
  return out
}

test('the .d.ts files declare exactly the fields getMemoryMetrics() returns, with JSDoc', () => {
  const types = interfaces()
  const r = getMemoryMetrics({ heapSizeLimit: 300 * 1024 * 1024 }, { root: path.join(FIXTURES, 'v2-busy') })
  const check = (obj, name, where) => {
    const decl = types[name]
    assert.ok(decl, `interface ${name} in index.d.ts`)
    assert.deepEqual(Object.keys(obj).sort(), Object.keys(decl).sort(), `${where}: fields of ${name}`)
    for (const [key, { type }] of Object.entries(decl)) {
      const ref = type.replace(/ \| null$/, '')
      if (types[ref] && obj[key] !== null) check(obj[key], ref, `${where}.${key}`)
      const item = /^Array<(\w+)>$/.exec(ref)?.[1] ?? (ref.endsWith('[]') ? ref.slice(0, -2) : null)
      if (item && types[item]) {
        for (const x of obj[key]) check(x, item, `${where}.${key}[]`)
      }
    }
  }
  check(r, 'MemoryMetrics', 'result')
  assert.ok(r.diagnoses.length > 0, 'v2-busy has a diagnosis to check')
  const p = getMemoryMetrics(null, { root: path.join(FIXTURES, 'v2-processes') })
  assert.ok(p.processes && p.processes.largest.length > 0, 'v2-processes has processes to check')
  check(p, 'MemoryMetrics', 'v2-processes')
  for (const name of ['v1-grandchild', 'v2-parent-lower']) {
    const g = getMemoryMetrics(null, { root: path.join(FIXTURES, name) })
    assert.ok(g.limitingCgroup, `${name}: a parent holds the limit`)
    check(g, 'MemoryMetrics', name)
  }
  const dts = fs.readFileSync(path.join(__dirname, '..', 'lib', 'index.d.ts'), 'utf8')
  const block = dts.slice(dts.indexOf('export interface MemoryMetrics'))
  assert.match(block, /\/\*\* Memory charged to the cgroup: v2 `memory\.current`, v1 `memory\.usage_in_bytes`\. \*\//)
})

test('the V8 numbers: one set of keys for the input, the reading, the monitor block and the events', () => {
  // lib/core/slots.json's v8 section is the set; the monitor's block (Rust) and
  // the hand-written types must name the same numbers.
  const { V8_INPUTS } = require('../lib/core/reading.js')
  const keys = V8_INPUTS.map(([k]) => k)
  assert.deepEqual(keys, ['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers', 'heapSizeLimit'])
  const types = interfaces()
  assert.deepEqual(Object.keys(types.MemoryUsageInput).sort(), [...keys].sort(), 'MemoryUsageInput')
  const bytes = keys.map((k) => `${k}Bytes`).sort()
  assert.deepEqual(Object.keys(types.V8Metrics).sort(), bytes, 'V8Metrics')
  assert.deepEqual(Object.keys(types.WatchV8).sort(), bytes, "WatchV8 (an event's v8)")
  const block = require('../index.js')
    .watchSlots()
    .slots.map(([name]) => name)
    .filter((n) => n.startsWith('v8.') && n.endsWith('Bytes'))
  assert.deepEqual(block.map((n) => n.slice(3)).sort(), bytes, "the monitor block's v8 slots")
  // The reading's v8 section, in its order.
  assert.deepEqual(
    Object.keys(getMemoryMetrics().v8),
    keys.map((k) => `${k}Bytes`),
  )
})

test('the package exports what its types declare', () => {
  const lib = fs.readFileSync(path.join(__dirname, '..', 'lib', 'index.d.ts'), 'utf8')
  for (const m of lib.matchAll(/export declare function (\w+)/g)) {
    assert.equal(typeof oomguard[m[1]], 'function', m[1])
  }
})

test('the ES module exports what the CommonJS one does, the doctor’s functions included', () => {
  const { execFileSync } = require('node:child_process')
  const url = require('node:url').pathToFileURL(require('node:path').join(__dirname, '..', 'lib', 'index.mjs')).href
  const code = `import * as esm from ${JSON.stringify(url)}
    import { createRequire } from 'node:module'
    const cjs = createRequire(import.meta.url)(${JSON.stringify(require('node:path').join(__dirname, '..', 'lib', 'index.js'))})
    const names = (o) => Object.keys(o).sort()
    console.log(JSON.stringify({ esm: names(esm).filter((k) => k !== 'default'), cjs: names(cjs), esmDoctor: names(esm.doctor), cjsDoctor: names(cjs.doctor) }))`
  const r = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' }))
  assert.deepEqual(r.esm, r.cjs)
  assert.deepEqual(r.esmDoctor, r.cjsDoctor)
  assert.ok(r.esmDoctor.includes('buildReport'))
})

test('WATCH_DEFAULTS and SHED_DEFAULTS: the same frozen objects from the ES module and from require(), and what the options declare', () => {
  const { execFileSync } = require('node:child_process')
  const url = require('node:url').pathToFileURL(path.join(__dirname, '..', 'lib', 'index.mjs')).href
  const code = `import { WATCH_DEFAULTS, SHED_DEFAULTS } from ${JSON.stringify(url)}
    import { createRequire } from 'node:module'
    import { isDeepStrictEqual } from 'node:util'
    const require = createRequire(import.meta.url)
    const cjs = require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'index.js'))})
    const options = require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'core', 'options.js'))})
    const frozen = (v) => v === null || typeof v !== 'object' || (Object.isFrozen(v) && Object.values(v).every(frozen))
    console.log(JSON.stringify({
      same: [WATCH_DEFAULTS === cjs.WATCH_DEFAULTS, SHED_DEFAULTS === cjs.SHED_DEFAULTS, WATCH_DEFAULTS === options.WATCH_DEFAULTS, SHED_DEFAULTS === options.SHED_DEFAULTS],
      equal: [isDeepStrictEqual(WATCH_DEFAULTS, cjs.WATCH_DEFAULTS), isDeepStrictEqual(SHED_DEFAULTS, cjs.SHED_DEFAULTS)],
      frozen: frozen(WATCH_DEFAULTS) && frozen(SHED_DEFAULTS),
      keys: Object.keys(WATCH_DEFAULTS),
      shedKeys: Object.keys(SHED_DEFAULTS),
      watch: WATCH_DEFAULTS,
      shed: SHED_DEFAULTS,
    }))`
  const r = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' }))
  assert.deepEqual(r.same, [true, true, true, true])
  assert.deepEqual(r.equal, [true, true])
  assert.equal(r.frozen, true)
  // And in this process, the CommonJS values deep-equal the ES module's (through JSON) and the declarations.
  assert.deepEqual(r.keys, Object.keys(oomguard.WATCH_DEFAULTS))
  assert.deepEqual(r.shedKeys, Object.keys(oomguard.SHED_DEFAULTS))
  assert.deepEqual(r.watch, JSON.parse(JSON.stringify(oomguard.WATCH_DEFAULTS)))
  assert.deepEqual(r.shed, JSON.parse(JSON.stringify(oomguard.SHED_DEFAULTS)))
  const declared = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'lib', 'core', 'options.json'), 'utf8'))
  assert.deepEqual(r.watch.thresholds, declared.watch.find((o) => o.name === 'thresholds').default)
  assert.deepEqual(r.shed.exclude, declared.shed.find((o) => o.name === 'exclude').default)
  assert.deepEqual(r.watch.stall, { sustainMs: 3000, margin: 0.1 })
  assert.ok(!('onStall' in r.watch), 'onStall has no default')
})
