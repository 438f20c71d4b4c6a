'use strict'
// watch(): option validation, events on fixture copies whose files are
// rewritten mid-run, read faults, listener exceptions, the shared sampler's
// lifecycle (threads, ref/unref, workers, exit) and leaks, all through the
// real, loaded addon. Anything that could take a process down, or that needs
// its stderr or exit code, runs in a child process.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { EventEmitter } = require('node:events')
const { spawn } = require('node:child_process')
const oomguard = require('..')
const { watch, Monitor, WATCH_DEFAULTS } = oomguard
const { samplerInfo } = require('../index.js')

const FIXTURES = path.join(__dirname, 'fixtures')
const LIB = path.join(__dirname, '..')
const NATIVE = path.join(__dirname, '..', 'index.js')
const BUSY = path.join(FIXTURES, 'v2-busy')

// v2-busy numbers (expected.json): 256 MiB limit, memory.current 181149696,
// inactive_file 42819584, so the working set is 138330112.
const LIMIT = 268435456
const USAGE = 181149696
const INACTIVE_FILE = 42819584
const WORKING_SET = USAGE - INACTIVE_FILE
const RSS = 2113536

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Poll `pred` until it returns something truthy, or fail naming `what`. */
async function waitFor(what, pred, ms = 3000) {
  const end = Date.now() + ms
  for (;;) {
    const v = pred()
    if (v) return v
    if (Date.now() > end) assert.fail(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(2)
  }
}

/** Wait until the sampler has taken `n` more samples for `m`. */
async function moreSamples(m, n = 5) {
  const s = m.current.samples
  await waitFor(`${n} more samples (at ${s})`, () => m.current.samples >= s + n)
}

/** Start a monitor that the test closes when it ends, pass or fail. */
function open(t, options, listener) {
  const m = watch(options, listener)
  t.after(() => m.close())
  return m
}

/** Every event a monitor emits, in order. */
function record(m, kinds = ['threshold', 'recovered', 'error']) {
  const events = []
  for (const kind of kinds) m.on(kind, (e) => events.push({ kind, e }))
  return events
}

const brief = (events) => events.map(({ kind, e }) => (kind === 'error' ? `error(${e.message})` : `${kind}(level ${e.level}, threshold ${e.threshold}, ratio ${e.ratio})`))

/**
 * Rewrite a file in place: same inode (the sampler keeps it open and preads
 * offset 0), one pwrite, then trim. Numbers are padded to a fixed width so
 * the file never shrinks and a concurrent read never sees it empty.
 */
function writeInPlace(file, text) {
  const fd = fs.openSync(file, 'r+')
  try {
    const buf = Buffer.from(text)
    fs.writeSync(fd, buf, 0, buf.length, 0)
    fs.ftruncateSync(fd, buf.length)
  } finally {
    fs.closeSync(fd)
  }
}

const padded = (n) => `${String(n).padEnd(20, ' ')}\n`

/** A private copy of v2-busy, removed when the test ends. */
function busyCopy(t) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-watch-'))
  fs.cpSync(BUSY, root, { recursive: true })
  t.after(() => fs.rmSync(root, { recursive: true, force: true }))
  const leaf = path.join(root, 'sys/fs/cgroup/fxcap/busy')
  const copy = {
    root,
    leaf,
    file: (name) => (name.startsWith('proc/') ? path.join(root, name) : path.join(leaf, name)),
    setUsage: (bytes) => writeInPlace(copy.file('memory.current'), padded(bytes)),
    /** Move the working-set ratio (usage minus inactive_file, over 256 MiB). */
    setRatio: (r) => copy.setUsage(Math.round(r * LIMIT) + INACTIVE_FILE),
  }
  // Fixed width from the start, before any monitor reads it.
  copy.setUsage(USAGE)
  return copy
}

/** Run `code` in a fresh node; resolves with its exit, output and time. */
function runNode(code, { args = [], execArgv = [], timeoutMs = 15000 } = {}) {
  return new Promise((resolve) => {
    const env = { ...process.env }
    delete env.NODE_TEST_CONTEXT
    delete env.NODE_OPTIONS
    const started = Date.now()
    const child = spawn(process.execPath, [...execArgv, '-e', code, '--', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, timedOut, pid: child.pid, ms: Date.now() - started })
    })
  })
}

/** The last line of a child's stdout, as JSON. */
function result(r) {
  const lines = r.stdout.trim().split('\n')
  try {
    return JSON.parse(lines[lines.length - 1])
  } catch {
    assert.fail(`no JSON result from the child (code ${r.code}, signal ${r.signal}, timed out ${r.timedOut})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  }
}

const clean = (r, what) => {
  assert.equal(r.timedOut, false, `${what}: the child hung (killed after ${r.ms} ms)\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  assert.equal(r.signal, null, `${what}: killed by ${r.signal}\nstderr: ${r.stderr}`)
  assert.equal(r.code, 0, `${what}: exit code ${r.code}\nstderr: ${r.stderr}`)
}

// Shared prelude of child scripts.
const PRELUDE = `
  const fs = require('node:fs')
  const path = require('node:path')
  const { watch } = require(${JSON.stringify(LIB)})
  const { samplerInfo } = require(${JSON.stringify(NATIVE)})
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
  async function waitFor(what, pred, ms = 3000) {
    const end = Date.now() + ms
    for (;;) {
      const v = pred()
      if (v) return v
      if (Date.now() > end) throw new Error('timed out waiting for ' + what)
      await sleep(2)
    }
  }
  function writeInPlace(file, text) {
    const fd = fs.openSync(file, 'r+')
    const buf = Buffer.from(text)
    fs.writeSync(fd, buf, 0, buf.length, 0)
    fs.ftruncateSync(fd, buf.length)
    fs.closeSync(fd)
  }
  const LIMIT = ${LIMIT}
  const INACTIVE_FILE = ${INACTIVE_FILE}
  const padded = (n) => String(n).padEnd(20, ' ') + '\\n'
`

// ---------------------------------------------------------------------------
// Validation

test('bad options: TypeError or RangeError naming the option; nothing is started', () => {
  const seventeen = Array.from({ length: 17 }, (_, i) => (i + 1) / 20)
  const cases = [
    ['options a string', 'x', TypeError, /^options must be an object/],
    ['options an array', [], TypeError, /^options must be an object/],
    ['options a number', 3, TypeError, /^options must be an object/],
    ['thresholds a number', { thresholds: 0.8 }, TypeError, /^options\.thresholds must be an array/],
    ['thresholds a string', { thresholds: '0.8' }, TypeError, /^options\.thresholds must be an array/],
    ['thresholds null', { thresholds: null }, TypeError, /^options\.thresholds must be an array/],
    ['thresholds empty', { thresholds: [] }, RangeError, /^options\.thresholds must be an array of 1 to 16 ratios, got 0 entries/],
    ['17 thresholds', { thresholds: seventeen }, RangeError, /^options\.thresholds must be an array of 1 to 16 ratios, got 17 entries/],
    ['threshold a string', { thresholds: ['0.8'] }, TypeError, /^options\.thresholds\[0\] must be a number/],
    ['threshold a bigint', { thresholds: [0.5, 1n] }, TypeError, /^options\.thresholds\[1\] must be a number/],
    ['threshold null', { thresholds: [null] }, TypeError, /^options\.thresholds\[0\] must be a number/],
    ['threshold 0', { thresholds: [0] }, RangeError, /^options\.thresholds\[0\] must be a ratio between 0 and 1/],
    ['threshold 1', { thresholds: [0.5, 1] }, RangeError, /^options\.thresholds\[1\] must be a ratio between 0 and 1/],
    ['threshold negative', { thresholds: [-0.1] }, RangeError, /^options\.thresholds\[0\]/],
    ['threshold above 1', { thresholds: [1.5] }, RangeError, /^options\.thresholds\[0\]/],
    ['threshold NaN', { thresholds: [NaN] }, RangeError, /^options\.thresholds\[0\]/],
    ['threshold Infinity', { thresholds: [Infinity] }, RangeError, /^options\.thresholds\[0\]/],
    ['thresholds equal', { thresholds: [0.5, 0.5] }, RangeError, /^options\.thresholds\[1\] must be above options\.thresholds\[0\]/],
    ['thresholds descending', { thresholds: [0.8, 0.9, 0.85] }, RangeError, /^options\.thresholds\[2\] must be above options\.thresholds\[1\] \(0\.9\)/],
    ['basis a number', { basis: 1 }, TypeError, /^options\.basis must be a string/],
    ['basis null', { basis: null }, TypeError, /^options\.basis must be a string/],
    ['basis unknown', { basis: 'heap' }, RangeError, /^options\.basis must be one of 'workingSet', 'usage', 'rss', got "heap"/],
    ['basis wrong case', { basis: 'workingset' }, RangeError, /^options\.basis/],
    ['hysteresis a string', { hysteresis: '0.1' }, TypeError, /^options\.hysteresis must be a number/],
    ['hysteresis negative', { hysteresis: -0.01 }, RangeError, /^options\.hysteresis must be a ratio from 0 to 0\.5/],
    ['hysteresis above 0.5', { hysteresis: 0.51 }, RangeError, /^options\.hysteresis/],
    ['hysteresis NaN', { hysteresis: NaN }, RangeError, /^options\.hysteresis/],
    ['minIntervalMs a string', { minIntervalMs: '5' }, TypeError, /^options\.minIntervalMs must be a number/],
    ['minIntervalMs too small', { minIntervalMs: 0.05 }, RangeError, /^options\.minIntervalMs must be between 0\.1 and 60000 ms/],
    ['minIntervalMs 0', { minIntervalMs: 0 }, RangeError, /^options\.minIntervalMs/],
    ['minIntervalMs too large', { minIntervalMs: 60001 }, RangeError, /^options\.minIntervalMs/],
    ['minIntervalMs NaN', { minIntervalMs: NaN }, RangeError, /^options\.minIntervalMs/],
    ['maxIntervalMs a string', { maxIntervalMs: '1000' }, TypeError, /^options\.maxIntervalMs must be a number/],
    ['maxIntervalMs below minIntervalMs', { minIntervalMs: 50, maxIntervalMs: 10 }, RangeError, /^options\.maxIntervalMs must be between minIntervalMs \(50\) and 3600000 ms, got 10/],
    ['maxIntervalMs below default minIntervalMs', { maxIntervalMs: 0.5 }, RangeError, /^options\.maxIntervalMs/],
    ['maxIntervalMs too large', { maxIntervalMs: 3600001 }, RangeError, /^options\.maxIntervalMs/],
    ['maxIntervalMs Infinity', { maxIntervalMs: Infinity }, RangeError, /^options\.maxIntervalMs/],
    ['lastWords a string', { lastWords: 'yes' }, TypeError, /^options\.lastWords must be a boolean or \{ path\?, stderr\? \}/],
    ['lastWords a number', { lastWords: 1 }, TypeError, /^options\.lastWords must be a boolean/],
    ['lastWords an array', { lastWords: [] }, TypeError, /^options\.lastWords must be a boolean/],
    ['lastWords a function', { lastWords: () => {} }, TypeError, /^options\.lastWords must be a boolean/],
    ['lastWords.stderr a string', { lastWords: { stderr: 'no' } }, TypeError, /^options\.lastWords\.stderr must be a boolean/],
    ['lastWords.stderr null', { lastWords: { stderr: null } }, TypeError, /^options\.lastWords\.stderr must be a boolean/],
    ['lastWords.path a number', { lastWords: { path: 5 } }, TypeError, /^options\.lastWords\.path must be a string/],
    ['lastWords.path null', { lastWords: { path: null } }, TypeError, /^options\.lastWords\.path must be a string/],
    ['lastWords.path empty', { lastWords: { path: '' } }, RangeError, /^options\.lastWords\.path must be a non-empty path/],
    ['root a number', { root: 1 }, TypeError, /^options\.root must be a string, got a number/],
    ['root null', { root: null }, TypeError, /^options\.root must be a string, got null/],
    ['root empty', { root: '' }, RangeError, /^options\.root must be a non-empty path/],
    ['root with NUL', { root: 'a\0b' }, RangeError, /^options\.root/],
  ]
  for (const [name, options, type, message] of cases) {
    assert.throws(
      () => watch(options),
      (err) => {
        assert.ok(err instanceof type, `${name}: expected ${type.name}, got ${err}`)
        assert.match(err.message, message, name)
        assert.ok(err.code, `${name}: has a code`)
        return true
      },
      name,
    )
  }
  // new Monitor(options) validates exactly as watch(options) does: the same
  // class, message and code, and no monitor started.
  for (const [name, options] of cases) {
    let fromWatch
    let fromMonitor
    try {
      watch(options)
    } catch (err) {
      fromWatch = err
    }
    try {
      new Monitor(options)
    } catch (err) {
      fromMonitor = err
    }
    assert.ok(fromMonitor instanceof Error, `${name}: new Monitor() rejects it`)
    assert.equal(fromMonitor.constructor, fromWatch.constructor, name)
    assert.equal(fromMonitor.message, fromWatch.message, name)
    assert.equal(fromMonitor.code, fromWatch.code, name)
  }
  // The listener is checked too, in both positions.
  for (const [name, call] of [
    ['listener a string', () => watch({}, 'nope')],
    ['listener an object', () => watch(undefined, {})],
    ['listener null', () => watch(null, null)],
    ['listener after a function', () => watch(() => {}, 5)],
  ]) {
    assert.throws(call, (err) => {
      assert.ok(err instanceof TypeError, `${name}: ${err}`)
      assert.match(err.message, /^(listener must be a function|options must be an object)/, name)
      return true
    })
  }
  assert.throws(() => watch({}, 'nope'), /^TypeError: listener must be a function, got/)
  // A function as options with a second argument is options of the wrong type.
  assert.throws(
    () =>
      watch(
        () => {},
        () => {},
      ),
    /^TypeError: options must be an object/,
  )
  const info = samplerInfo()
  assert.equal(info.monitors, 0, 'a rejected watch() starts no monitor')
  assert.equal(info.running, false, 'a rejected watch() starts no thread')
})

test('new Monitor(options) snapshots its options as watch() does: own properties, each read once, defaults filled', (t) => {
  let reads = 0
  const inherited = Object.create({ thresholds: [0.1], basis: 'rss' })
  const options = Object.assign(inherited, { root: BUSY, lastWords: false })
  Object.defineProperty(options, 'hysteresis', {
    enumerable: true,
    get() {
      reads++
      return reads === 1 ? 0.02 : 'changed after the check'
    },
  })
  const m = new Monitor(options)
  t.after(() => m.close())
  assert.equal(reads, 1, 'hysteresis read once')
  assert.deepEqual([...m.thresholds], [...WATCH_DEFAULTS.thresholds], 'an inherited thresholds is not an option')
  assert.equal(m.basis, 'workingSet', 'an inherited basis is not an option')
  assert.ok(Object.isFrozen(m.thresholds))
  assert.equal(m.level, 0)
  const plain = new Monitor()
  t.after(() => plain.close())
  assert.deepEqual([...plain.thresholds], [...WATCH_DEFAULTS.thresholds])
})

test('good options at the edges of their ranges are accepted', (t) => {
  const sixteen = Array.from({ length: 16 }, (_, i) => (i + 1) / 17)
  const accepted = [
    {},
    { thresholds: sixteen },
    { thresholds: [Number.MIN_VALUE] },
    { thresholds: [0.999999] },
    { hysteresis: 0 },
    { hysteresis: 0.5 },
    { minIntervalMs: 0.1, maxIntervalMs: 0.1 },
    { minIntervalMs: 60000 }, // maxIntervalMs then defaults to at least minIntervalMs
    { maxIntervalMs: 3600000 },
    { basis: 'usage' },
    { basis: 'rss' },
    { lastWords: true },
    { lastWords: false },
    { lastWords: null },
    { lastWords: {} },
    { lastWords: { stderr: false } },
    { lastWords: { path: path.join(os.tmpdir(), 'never-written.json'), stderr: false } },
    { root: '/' },
  ]
  for (const options of accepted) {
    const m = open(t, { root: BUSY, lastWords: false, ...options })
    assert.ok(m instanceof Monitor, JSON.stringify(options))
    m.close()
  }
  for (const options of [undefined, null]) open(t, options).close()
  assert.equal(samplerInfo().monitors, 0)
})

test('watch(), watch(listener) and watch(options, listener)', async (t) => {
  const plain = open(t)
  assert.ok(plain instanceof Monitor)
  assert.ok(plain instanceof EventEmitter)
  assert.deepEqual(plain.thresholds, [0.8, 0.9, 0.95])
  assert.deepEqual([...plain.thresholds], [...WATCH_DEFAULTS.thresholds])
  assert.equal(plain.basis, 'workingSet')
  assert.equal(plain.listenerCount('threshold'), 0)
  assert.equal(plain.closed, false)

  const fn = () => {}
  const one = open(t, fn)
  assert.equal(one.listenerCount('threshold'), 1, 'watch(listener) attaches it to threshold')
  assert.equal(one.listeners('threshold')[0], fn)
  assert.deepEqual(one.thresholds, [0.8, 0.9, 0.95], 'watch(listener) uses the defaults')

  const seen = []
  const thresholds = [0.5]
  const two = open(t, { root: BUSY, thresholds, lastWords: false, basis: 'usage' }, (e) => seen.push(e))
  assert.equal(two.basis, 'usage')
  thresholds.push(0.9)
  assert.deepEqual(two.thresholds, [0.5], "the caller's array is copied")
  assert.ok(Object.isFrozen(two.thresholds))
  await waitFor('the listener passed with options', () => seen.length === 1)
  assert.equal(seen[0].level, 1)
  assert.equal(seen[0].threshold, 0.5)

  const undef = open(t, undefined, fn)
  assert.equal(undef.listenerCount('threshold'), 1)
  assert.equal(samplerInfo().monitors, 4)
})

// ---------------------------------------------------------------------------
// Numbers and events on fixtures

test('current agrees with every fixture tree (one thread, one reader per root)', async (t) => {
  const trees = fs.readdirSync(FIXTURES).filter((d) => fs.existsSync(path.join(FIXTURES, d, 'expected.json')) && d !== 'unreadable')
  const monitors = trees.map((tree) => [tree, open(t, { root: path.join(FIXTURES, tree), lastWords: false, thresholds: [0.99] })])
  const errors = []
  for (const [tree, m] of monitors) m.on('error', (e) => errors.push(`${tree}: ${e.message}`))
  const info = samplerInfo()
  assert.equal(info.monitors, trees.length)
  assert.equal(info.roots, trees.length)
  for (const [tree, m] of monitors) await waitFor(`${tree}: 2 samples`, () => m.current.samples >= 2)
  const threadId = samplerInfo().threadId
  assert.ok(threadId > 0)
  for (const [tree, m] of monitors) {
    const x = JSON.parse(fs.readFileSync(path.join(FIXTURES, tree, 'expected.json'), 'utf8'))
    const c = m.current
    const basis = x.workingSetBytes ?? x.usageBytes ?? x.memTotalBytes - x.memAvailableBytes
    assert.equal(c.source, x.source, `${tree}: source`)
    assert.equal(c.limitBytes, x.limitBytes, `${tree}: limitBytes`)
    assert.equal(c.usageBytes, x.usageBytes, `${tree}: usageBytes`)
    assert.equal(c.workingSetBytes, x.workingSetBytes, `${tree}: workingSetBytes`)
    assert.equal(c.rssBytes, x.rssBytes, `${tree}: rssBytes`)
    assert.equal(c.basisBytes, basis, `${tree}: basisBytes`)
    assert.equal(c.ratio, basis / x.limitBytes, `${tree}: ratio`)
    assert.equal(c.headroomBytes, x.limitBytes - basis, `${tree}: headroomBytes`)
    assert.equal(c.failing, false, `${tree}: failing`)
    assert.equal(c.level, m.level)
    assert.equal(c.growthBytesPerSec, 0, `${tree}: a constant tree does not grow`)
    assert.equal(c.timeToLimitMs, null, `${tree}: not growing, no time to limit`)
    assert.ok(c.intervalMs >= 1 && c.intervalMs <= 5000, `${tree}: intervalMs ${c.intervalMs}`)
    assert.ok(Math.abs(c.timestampMs - Date.now()) < 5000, `${tree}: timestampMs`)
  }
  assert.deepEqual(errors, [])
  assert.equal(samplerInfo().threadId, threadId)
})

test("basis: 'usage', 'rss' and the default working set give their own ratios on one tree", async (t) => {
  const events = { workingSet: [], usage: [], rss: [] }
  const ms = {}
  for (const basis of ['workingSet', 'usage', 'rss']) {
    ms[basis] = open(t, { root: BUSY, basis: basis === 'workingSet' ? undefined : basis, thresholds: [0.6], lastWords: false })
    ms[basis].on('threshold', (e) => events[basis].push(e))
  }
  assert.equal(samplerInfo().roots, 1, 'three monitors, one root')
  await moreSamples(ms.workingSet, 3)
  await moreSamples(ms.usage, 3)
  const ws = ms.workingSet.current
  const us = ms.usage.current
  const rs = ms.rss.current
  assert.equal(ws.basisBytes, WORKING_SET)
  assert.equal(ws.ratio, WORKING_SET / LIMIT) // 0.515
  assert.equal(us.basisBytes, USAGE)
  assert.equal(us.ratio, USAGE / LIMIT) // 0.675
  assert.equal(rs.basisBytes, RSS)
  assert.equal(rs.ratio, RSS / LIMIT)
  // Same raw numbers for all three.
  for (const c of [ws, us, rs]) {
    assert.equal(c.usageBytes, USAGE)
    assert.equal(c.workingSetBytes, WORKING_SET)
    assert.equal(c.rssBytes, RSS)
    assert.equal(c.limitBytes, LIMIT)
  }
  // Only usage is above 0.6.
  assert.equal(ms.usage.level, 1)
  assert.equal(ms.usage.critical, true)
  assert.equal(ms.workingSet.level, 0)
  assert.equal(ms.workingSet.critical, false)
  assert.equal(ms.rss.level, 0)
  assert.equal(events.usage.length, 1)
  assert.equal(events.usage[0].ratio, USAGE / LIMIT)
  assert.equal(events.usage[0].basisBytes, USAGE)
  assert.deepEqual([events.workingSet.length, events.rss.length], [0, 0])
})

test('threshold fires once per threshold crossed, in order; recovered only below threshold - hysteresis', async (t) => {
  const copy = busyCopy(t)
  const lw = path.join(copy.root, 'last-words.json')
  const m = open(t, {
    root: copy.root,
    thresholds: [0.6, 0.7, 0.8],
    hysteresis: 0.05,
    maxIntervalMs: 20,
    lastWords: { stderr: false, path: lw },
  })
  const events = record(m)
  await moreSamples(m, 3)
  assert.equal(m.level, 0)
  assert.deepEqual(brief(events), [])

  // Up past the first.
  copy.setRatio(0.65)
  await waitFor('threshold 0.6', () => events.length >= 1)
  await moreSamples(m, 5)
  assert.deepEqual(brief(events), [`threshold(level 1, threshold 0.6, ratio ${Math.round(0.65 * LIMIT) / LIMIT})`])
  assert.equal(events[0].e.lastWords, lw, 'the flight record starts at the first threshold')
  assert.equal(events[0].e.lastWordsError, null)
  assert.equal(m.level, 1)
  assert.equal(m.current.level, 1)
  const first = JSON.parse(fs.readFileSync(lw, 'utf8'))
  assert.deepEqual([first.level, first.threshold, first.final, first.event, first.seq], [1, 0.6, false, 'threshold', 1])

  // Straight past the other two in one sample: two events, in order.
  const before = Date.now()
  copy.setRatio(0.85)
  await waitFor('thresholds 0.7 and 0.8', () => events.length >= 3)
  await moreSamples(m, 5)
  const ratio = Math.round(0.85 * LIMIT) / LIMIT
  assert.deepEqual(brief(events).slice(1), [`threshold(level 2, threshold 0.7, ratio ${ratio})`, `threshold(level 3, threshold 0.8, ratio ${ratio})`])
  const [, second, top] = events.map((x) => x.e)
  assert.equal(second.timestampMs, top.timestampMs, 'both come from one sample')
  assert.equal(second.lastWords, null, 'one record per sample, on the event of the level it is for')
  assert.equal(top.lastWords, lw, 'the top crossing says where the last words went')

  // The payload.
  assert.deepEqual(Object.keys(top).sort(), [
    'basisBytes',
    'growthBytesPerSec',
    'headroomBytes',
    'heapProfile',
    'lastWords',
    'lastWordsError',
    'level',
    'limitBytes',
    'ratio',
    'threshold',
    'timeToLimitMs',
    'timestampMs',
    'v8',
  ])
  const basis = Math.round(0.85 * LIMIT)
  assert.equal(top.basisBytes, basis)
  assert.equal(top.limitBytes, LIMIT)
  assert.equal(top.headroomBytes, LIMIT - basis)
  assert.equal(top.ratio, basis / LIMIT)
  assert.ok(top.growthBytesPerSec > 64 * 1024, `it just grew: ${top.growthBytesPerSec} B/s`)
  assert.equal(typeof top.timeToLimitMs, 'number')
  assert.ok(Math.abs(top.timeToLimitMs - (top.headroomBytes / top.growthBytesPerSec) * 1000) < 1e-6 * top.timeToLimitMs + 1e-9)
  assert.ok(top.timestampMs >= before - 1 && top.timestampMs <= Date.now() + 1, `timestampMs ${top.timestampMs}`)
  assert.deepEqual(Object.keys(top.v8).sort(), ['arrayBuffersBytes', 'externalBytes', 'heapSizeLimitBytes', 'heapTotalBytes', 'heapUsedBytes', 'rssBytes'])
  for (const [k, v] of Object.entries(top.v8)) assert.ok(Number.isFinite(v) && v >= 0, `v8.${k} = ${v}`)
  assert.ok(top.v8.heapUsedBytes > 0 && top.v8.heapUsedBytes <= top.v8.heapTotalBytes)
  assert.ok(top.v8.heapSizeLimitBytes > top.v8.heapTotalBytes)
  assert.ok(top.v8.rssBytes > top.v8.heapTotalBytes)

  // level and current agree with the events and the file.
  assert.equal(m.level, 3)
  assert.equal(m.critical, true)
  const c = m.current
  assert.equal(c.level, 3)
  assert.equal(c.ratio, top.ratio)
  assert.equal(c.basisBytes, basis)
  assert.equal(c.workingSetBytes, basis)
  assert.equal(c.usageBytes, basis + INACTIVE_FILE)
  assert.equal(c.failing, false)
  assert.ok(c.timestampMs >= top.timestampMs)

  // The last-words file: exactly one JSON line about this crossing.
  const text = fs.readFileSync(lw, 'utf8')
  assert.ok(text.endsWith('\n') && text.indexOf('\n') === text.length - 1, `one line: ${JSON.stringify(text)}`)
  assert.ok(text.length <= 4096)
  const words = JSON.parse(text)
  assert.equal(words.oomguard, 'last-words')
  assert.equal(words.version, 1)
  assert.equal(words.pid, process.pid)
  assert.equal(words.source, 'cgroup-v2')
  assert.equal(words.cgroup, '/fxcap/busy')
  assert.equal(words.limitBytes, LIMIT)
  assert.equal(words.basisBytes, basis)
  assert.equal(words.workingSetBytes, basis)
  assert.equal(words.usageBytes, basis + INACTIVE_FILE)
  assert.equal(words.threshold, 0.8)
  assert.deepEqual([words.level, words.final, words.event, words.seq], [3, true, 'threshold', 2])
  assert.deepEqual(words.thresholds, [0.6, 0.7, 0.8])
  assert.ok(Math.abs(words.ratio - ratio) < 1e-4)
  assert.ok(Math.abs(Date.parse(words.time) - top.timestampMs) < 2)
  assert.equal(words.breakdown.anon, 113987584)
  assert.ok(words.v8 && words.v8.heapUsedBytes > 0, 'V8 numbers written by this thread are in the line')
  assert.equal(typeof words.verdict, 'string')

  // Inside the hysteresis band of 0.8 (0.75 .. 0.8): no recovery.
  const n = events.length
  copy.setRatio(0.77)
  await moreSamples(m, 10)
  copy.setRatio(0.7501)
  await moreSamples(m, 10)
  assert.deepEqual(brief(events.slice(n)), [], 'nothing inside the hysteresis band')
  assert.equal(m.level, 3)
  assert.ok(Math.abs(m.current.ratio - 0.7501) < 1e-6)
  // ...but the flight record follows the basis (it moved by more than 1% of the limit).
  const moved = JSON.parse(fs.readFileSync(lw, 'utf8'))
  assert.deepEqual([moved.level, moved.threshold, moved.final, moved.event], [3, 0.8, true, 'update'])
  assert.ok(Math.abs(moved.ratio - 0.7501) < 1e-4, `the latest basis: ${moved.ratio}`)
  assert.ok(moved.seq >= 4, `rewritten at 0.77 and at 0.7501: seq ${moved.seq}`)

  // Below 0.75: down one level only (0.74 is still above 0.7 - 0.05).
  copy.setRatio(0.74)
  await waitFor('recovered from 0.8', () => events.length > n)
  await moreSamples(m, 5)
  assert.deepEqual(brief(events.slice(n)), [`recovered(level 2, threshold 0.8, ratio ${Math.round(0.74 * LIMIT) / LIMIT})`])
  const rec = events[n].e
  // The growth rate is an average over the recent past (up, then down).
  assert.equal(typeof rec.growthBytesPerSec, 'number')
  assert.equal(rec.timeToLimitMs === null, rec.growthBytesPerSec <= 64 * 1024, 'a time to limit only while growing')
  assert.equal(rec.lastWords, lw, 'a recovery is recorded too')
  assert.ok(rec.v8.heapUsedBytes > 0)
  assert.equal(m.level, 2)
  const down = JSON.parse(fs.readFileSync(lw, 'utf8'))
  assert.deepEqual([down.level, down.threshold, down.final, down.event], [2, 0.7, false, 'recovered'])

  // Far down: two recoveries, highest first.
  copy.setRatio(0.5)
  await waitFor('recovered twice', () => events.length >= n + 3)
  await moreSamples(m, 5)
  const half = 0.5
  assert.deepEqual(brief(events.slice(n + 1)), [`recovered(level 1, threshold 0.7, ratio ${half})`, `recovered(level 0, threshold 0.6, ratio ${half})`])
  assert.equal(m.level, 0)
  assert.equal(m.critical, false)
  assert.deepEqual(
    events.slice(n + 1).map(({ e }) => e.lastWords),
    [null, lw],
    'the record rides on the level reached',
  )
  const calm = JSON.parse(fs.readFileSync(lw, 'utf8'))
  assert.deepEqual([calm.level, calm.threshold, calm.final, calm.event], [0, 0.6, false, 'recovered'])
  // Below every threshold: no more records, however the basis moves.
  const calmText = fs.readFileSync(lw, 'utf8')
  copy.setRatio(0.3)
  await moreSamples(m, 5)
  assert.equal(fs.readFileSync(lw, 'utf8'), calmText)

  // And up again: the thresholds are armed again, and the last-words file
  // holds only the newest record.
  fs.writeFileSync(lw, 'stale\n')
  copy.setRatio(0.9)
  await waitFor('three thresholds again', () => events.length >= n + 6)
  await moreSamples(m, 5)
  assert.deepEqual(
    events.slice(n + 3).map(({ kind, e }) => `${kind} ${e.level}`),
    ['threshold 1', 'threshold 2', 'threshold 3'],
  )
  const again = fs.readFileSync(lw, 'utf8')
  assert.equal(again.split('\n').length, 2, 'one line, replacing what was there')
  assert.ok(Math.abs(JSON.parse(again).ratio - 0.9) < 1e-4)
  assert.equal(events.filter((x) => x.kind === 'error').length, 0)
})

test('the boundaries: ratio == threshold is crossed; ratio == threshold - hysteresis is not recovered', async (t) => {
  const copy = busyCopy(t)
  copy.setRatio(0.2)
  const m = open(t, { root: copy.root, thresholds: [0.5], hysteresis: 0.25, maxIntervalMs: 20, lastWords: false })
  const events = record(m)
  await moreSamples(m, 3)
  assert.equal(m.level, 0)
  copy.setRatio(0.5) // exactly 2^27 bytes
  await waitFor('threshold at exactly 0.5', () => events.length === 1)
  assert.equal(events[0].e.ratio, 0.5)
  copy.setRatio(0.25) // exactly 0.5 - 0.25
  await moreSamples(m, 10)
  assert.equal(m.current.ratio, 0.25)
  assert.equal(m.level, 1, 'still inside the band at exactly threshold - hysteresis')
  copy.setUsage(0.25 * LIMIT + INACTIVE_FILE - 1)
  await waitFor('recovered just below 0.25', () => events.length === 2)
  assert.equal(events[1].kind, 'recovered')
  assert.equal(events[1].e.level, 0)
  assert.equal(m.level, 0)
})

test('hysteresis 0: recovered as soon as the ratio is below the threshold', async (t) => {
  const copy = busyCopy(t)
  const m = open(t, { root: copy.root, thresholds: [0.6], hysteresis: 0, maxIntervalMs: 20, lastWords: false })
  const events = record(m)
  copy.setRatio(0.6)
  await waitFor('threshold', () => events.length === 1)
  copy.setUsage(Math.round(0.6 * LIMIT) + INACTIVE_FILE - 4096)
  await waitFor('recovered', () => events.length === 2)
  assert.deepEqual(
    events.map((x) => x.kind),
    ['threshold', 'recovered'],
  )
})

test('close() inside a threshold listener: no further events for that monitor', async (t) => {
  const copy = busyCopy(t)
  const m = open(t, { root: copy.root, thresholds: [0.55, 0.6, 0.65], maxIntervalMs: 20, lastWords: false })
  const other = open(t, { root: copy.root, thresholds: [0.55, 0.6, 0.65], maxIntervalMs: 20, lastWords: false })
  const events = record(m)
  const others = record(other)
  m.once('threshold', () => m.close())
  copy.setRatio(0.9)
  await waitFor('the other monitor sees all three', () => others.length === 3)
  await moreSamples(other, 5)
  assert.deepEqual(brief(events), [`threshold(level 1, threshold 0.55, ratio ${Math.round(0.9 * LIMIT) / LIMIT})`])
  assert.equal(m.closed, true)
  assert.equal(samplerInfo().monitors, 1)
})

test('lastWords: false writes nothing; each monitor with a path gets its own line', async (t) => {
  const copy = busyCopy(t)
  const a = path.join(copy.root, 'a.json')
  const b = path.join(copy.root, 'b.json')
  const silent = open(t, { root: copy.root, thresholds: [0.7], lastWords: false, maxIntervalMs: 20 })
  const ma = open(t, { root: copy.root, thresholds: [0.7], lastWords: { stderr: false, path: a }, maxIntervalMs: 20 })
  const mb = open(t, { root: copy.root, thresholds: [0.7], lastWords: { stderr: false, path: b }, maxIntervalMs: 20 })
  const got = { silent: record(silent), a: record(ma), b: record(mb) }
  await moreSamples(silent, 2)
  copy.setRatio(0.8) // all three cross their top threshold in the same sample
  await waitFor('three crossings', () => got.silent.length && got.a.length && got.b.length)
  assert.equal(got.silent[0].e.lastWords, null, 'lastWords: false: the event says nothing was written')
  assert.equal(got.a[0].e.lastWords, a)
  assert.ok(fs.existsSync(a), 'monitor a wrote its file')
  assert.equal(JSON.parse(fs.readFileSync(a, 'utf8')).threshold, 0.7)
  assert.equal(got.b[0].e.lastWords, b, `monitor b's event names its own path (got ${got.b[0].e.lastWords})`)
  assert.ok(fs.existsSync(b), `monitor b's lastWords.path ${b} was written`)
  assert.equal(
    fs
      .readdirSync(copy.root)
      .filter((f) => f.endsWith('.json') && f !== 'expected.json')
      .sort()
      .join(),
    'a.json,b.json',
  )
})

const STDERR_CHILD = `${PRELUDE}
  const [root, optionsJson] = process.argv.slice(1)
  const options = JSON.parse(optionsJson)
  const m = watch({ root, thresholds: [0.5], ...options }, (e) => {
    console.log(JSON.stringify({ lastWords: e.lastWords, level: e.level, pid: process.pid }))
    m.close()
  })
  m.ref()
`

test('default lastWords: one JSON line on stderr; lastWords: false: nothing (child processes)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-lw-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'termination-log')
  const [dflt, off, both] = await Promise.all([
    runNode(STDERR_CHILD, { args: [BUSY, '{}'] }),
    runNode(STDERR_CHILD, { args: [BUSY, '{"lastWords":false}'] }),
    runNode(STDERR_CHILD, { args: [BUSY, JSON.stringify({ lastWords: { path: file } })] }),
  ])
  for (const [name, r] of [
    ['default', dflt],
    ['false', off],
    ['path', both],
  ])
    clean(r, name)

  assert.equal(result(dflt).lastWords, 'stderr')
  const lines = dflt.stderr.split('\n').filter(Boolean)
  assert.equal(lines.length, 1, `one line on stderr: ${dflt.stderr}`)
  const words = JSON.parse(lines[0])
  assert.equal(words.oomguard, 'last-words')
  assert.equal(words.pid, dflt.pid)
  assert.equal(words.threshold, 0.5)
  assert.equal(words.limitBytes, LIMIT)
  assert.equal(words.basisBytes, WORKING_SET)
  assert.equal(words.source, 'cgroup-v2')

  assert.equal(result(off).lastWords, null)
  assert.equal(off.stderr, '', 'lastWords: false writes nothing to stderr')

  assert.equal(result(both).lastWords, `stderr,${file}`, 'a path alone keeps stderr on')
  assert.equal(both.stderr.split('\n').filter(Boolean).length, 1)
  assert.equal(fs.readFileSync(file, 'utf8'), both.stderr, 'the same line in both places')
})

// ---------------------------------------------------------------------------
// Faults

const FAULTS = [
  // [file made unparsable, basis, what goes in meanwhile, value written back]
  ['memory.current', 'workingSet', 'not a number\n', (copy) => copy.setRatio(0.6)],
  ['memory.stat', 'workingSet', 'garbage in memory.stat\n', (copy) => writeInPlace(copy.file('memory.stat'), fs.readFileSync(path.join(BUSY, 'sys/fs/cgroup/fxcap/busy/memory.stat'), 'utf8'))],
  ['memory.current', 'usage', '12 34\n', (copy) => copy.setRatio(0.6)],
  ['memory.max', 'workingSet', 'unlimited\n', (copy) => writeInPlace(copy.file('memory.max'), `${LIMIT}\n`)],
  ['proc/self/statm', 'rss', 'garbage\n', (copy) => writeInPlace(copy.file('proc/self/statm'), '1461 600 489 5 0 124 0\n')],
]

test('an unparsable file mid-run: one error, the last good sample kept (failing), then recovery', async (t) => {
  for (const [file, basis, garbage, restore] of FAULTS) {
    await t.test(`${file} (basis ${basis})`, async (t) => {
      const copy = busyCopy(t)
      const m = open(t, { root: copy.root, basis, thresholds: [0.7, 0.8], maxIntervalMs: 20, lastWords: false })
      const events = record(m)
      await moreSamples(m, 3)
      const good = m.current
      assert.equal(good.failing, false)
      assert.equal(good.level, 0)

      fs.writeFileSync(copy.file(file), garbage)
      const t0 = Date.now()
      // Below every threshold a sample reads the usage alone and the limits; a
      // snapshot of every file (memory.stat, statm) comes every 2 s.
      await waitFor('the sampler to notice', () => events.length > 0 || m.current.failing, 3000).catch(() => {})
      await sleep(Math.max(0, 400 - (Date.now() - t0))) // several retries (every 100 ms while failing)
      const during = m.current
      await sleep(300)
      assert.deepEqual(
        brief(events).map((s) => s.replace(/\(.*\)$/s, '')),
        ['error'],
        `exactly one 'error' event, nothing else; got ${JSON.stringify(brief(events))}; current ${JSON.stringify(m.current)}`,
      )
      const err = events[0].e
      assert.ok(err instanceof Error)
      assert.equal(err.code, 'ERR_OOMGUARD_READ')
      assert.ok(err.message.includes(path.basename(file)), `the error names ${file}: ${err.message}`)
      assert.equal(during.failing, true)
      for (const k of ['level', 'ratio', 'basisBytes', 'limitBytes', 'headroomBytes', 'usageBytes', 'workingSetBytes', 'rssBytes', 'source']) {
        assert.deepEqual(during[k], good[k], `${k} is the last good value`)
      }
      assert.deepEqual(m.current, during, 'no new samples while failing')
      assert.equal(m.level, good.level)

      restore(copy)
      await waitFor('recovery', () => !m.current.failing && m.current.samples > during.samples)
      await moreSamples(m, 3)
      const after = m.current
      assert.equal(after.failing, false)
      assert.ok(after.timestampMs > during.timestampMs, 'new samples')
      if (file === 'memory.current') {
        assert.equal(after.basisBytes, basis === 'usage' ? Math.round(0.6 * LIMIT) + INACTIVE_FILE : Math.round(0.6 * LIMIT), 'the new value is read')
      }
      if (file === 'proc/self/statm') assert.equal(after.rssBytes, 600 * 4096, 'the new value is read')
      // (With basis usage the restored value is above the first threshold,
      // so a threshold event may follow; recovering itself emits no error.)
      const errors = () => events.filter((x) => x.kind === 'error').length
      assert.equal(errors(), 1, 'recovering emits no error')

      // A second failure is a second episode: reported once again.
      fs.writeFileSync(copy.file(file), garbage)
      await waitFor('a second error', () => errors() === 2)
    })
  }
})

test('a root that does not exist: one error, no numbers, failing', async (t) => {
  const root = path.join(os.tmpdir(), 'oomguard-no-such-root', 'x')
  const m = open(t, { root, lastWords: false, maxIntervalMs: 20 })
  const events = record(m)
  await waitFor('the error', () => events.length === 1)
  await sleep(300)
  assert.equal(events.length, 1)
  assert.equal(events[0].kind, 'error')
  assert.match(events[0].e.message, /oomguard-no-such-root/)
  const c = m.current
  assert.equal(c.failing, true)
  assert.equal(c.samples, 0)
  assert.equal(c.ratio, null)
  assert.equal(c.limitBytes, null)
  assert.equal(c.source, null)
  assert.equal(m.level, 0)
})

test('no memory controller: the monitor runs against host memory', async (t) => {
  const root = path.join(FIXTURES, 'no-memory-controller')
  const x = JSON.parse(fs.readFileSync(path.join(root, 'expected.json'), 'utf8'))
  const m = open(t, { root, lastWords: false, maxIntervalMs: 20 })
  const events = record(m)
  await waitFor('2 samples', () => m.current.samples >= 2)
  const c = m.current
  assert.equal(c.source, 'host')
  assert.equal(c.limitBytes, x.memTotalBytes)
  assert.equal(c.basisBytes, x.memTotalBytes - x.memAvailableBytes)
  assert.equal(c.usageBytes, null)
  assert.equal(c.workingSetBytes, null)
  assert.equal(c.rssBytes, x.rssBytes)
  assert.equal(c.failing, false)
  assert.deepEqual(brief(events), [])
})

const NO_LISTENER_CHILD = `${PRELUDE}
  const [root, file, basis, garbage, restoreText] = process.argv.slice(1)
  const warnings = []
  process.on('warning', (w) => warnings.push({ name: w.name, code: w.code, message: w.message }))
  ;(async () => {
    const m = watch({ root, basis, thresholds: [0.7, 0.8], maxIntervalMs: 20, lastWords: false })
    await waitFor('samples', () => m.current.samples >= 3)
    const good = m.current
    fs.writeFileSync(file, garbage)
    await sleep(600)
    const during = m.current
    writeInPlace(file, restoreText)
    let recovered = true
    await waitFor('recovery', () => !m.current.failing && m.current.samples > during.samples).catch(() => (recovered = false))
    await sleep(50)
    console.log(JSON.stringify({ good, during, after: m.current, recovered, warnings }))
    m.close()
  })()
`

test("with no 'error' listener a read failure is a warning, not a crash (child process)", async (t) => {
  const cases = [
    ['proc/self/statm', 'rss', 'garbage\n', '1461 600 489 5 0 124 0\n'],
    ['memory.current', 'workingSet', 'not a number\n', padded(Math.round(0.6 * LIMIT) + INACTIVE_FILE)],
  ]
  for (const [file, basis, garbage, restoreText] of cases) {
    await t.test(`${file} (basis ${basis})`, async (t) => {
      const copy = busyCopy(t)
      const r = await runNode(NO_LISTENER_CHILD, { args: [copy.root, copy.file(file), basis, garbage, restoreText] })
      clean(r, 'no error listener')
      const out = result(r)
      assert.equal(out.during.failing, true, `failing while ${file} is garbage: ${JSON.stringify(out.during)}`)
      assert.equal(out.during.ratio, out.good.ratio, 'the last good ratio is kept')
      assert.equal(out.warnings.length, 1, `one warning: ${JSON.stringify(out.warnings)}`)
      assert.equal(out.warnings[0].code, 'ERR_OOMGUARD_READ')
      assert.match(out.warnings[0].message, new RegExp(path.basename(file).replace('.', '\\.')))
      assert.match(r.stderr, /ERR_OOMGUARD_READ|oomguard: reading memory failed/, 'node prints the warning')
      assert.equal(out.recovered, true)
      assert.equal(out.after.failing, false)
    })
  }
})

test('a last-words file that cannot be written: one error event naming it, lastWords null plus the reason, no hang', async (t) => {
  const copy = busyCopy(t)
  const fifo = path.join(copy.root, 'fifo')
  require('node:child_process').execFileSync('mkfifo', [fifo])
  for (const [name, file, reason] of [
    ['/dev/full', '/dev/full', /cannot write \/dev\/full: .*No space left on device/],
    ['a FIFO without a reader', fifo, /cannot open .*fifo: .*\(a FIFO without a reader\?\)/],
  ]) {
    await t.test(name, async (t) => {
      copy.setRatio(0.3)
      const m = open(t, { root: copy.root, thresholds: [0.6, 0.8], maxIntervalMs: 20, lastWords: { stderr: false, path: file } })
      const events = record(m)
      await moreSamples(m, 2)
      const t0 = Date.now()
      copy.setRatio(0.65)
      await waitFor('the threshold', () => events.some((x) => x.kind === 'threshold'))
      copy.setRatio(0.85)
      await waitFor('the second threshold', () => events.filter((x) => x.kind === 'threshold').length === 2)
      copy.setRatio(0.87) // an update of the record: fails again, said no more
      await moreSamples(m, 5)
      assert.ok(Date.now() - t0 < 2000, 'the sampler never blocked on the file')
      const errors = events.filter((x) => x.kind === 'error')
      assert.equal(errors.length, 1, `reported once: ${brief(events)}`)
      assert.equal(errors[0].e.code, 'ERR_OOMGUARD_LAST_WORDS')
      assert.match(errors[0].e.message, reason)
      const ups = events.filter((x) => x.kind === 'threshold').map((x) => x.e)
      for (const e of ups) {
        assert.equal(e.lastWords, null, 'written nowhere')
        assert.match(e.lastWordsError, reason)
      }
      assert.equal(m.current.failing, false, 'the numbers are fine')
    })
  }
  // With no 'error' listener: a process warning, not a crash.
  copy.setRatio(0.3)
  const warned = new Promise((resolve) => process.once('warning', resolve))
  const m = open(t, { root: copy.root, thresholds: [0.6], maxIntervalMs: 20, lastWords: { stderr: false, path: '/dev/full' } })
  m.ref() // nothing else keeps the event loop alive while waiting for the warning
  copy.setRatio(0.7)
  const w = await warned
  assert.equal(w.code, 'ERR_OOMGUARD_LAST_WORDS')
  assert.match(w.message, /\/dev\/full/)
  m.close()
})

test('watch() returns with a sample: current is valid at once', async (t) => {
  const copy = busyCopy(t)
  for (let i = 0; i < 50; i++) {
    const m = watch({ root: copy.root, lastWords: false })
    const c = m.current
    m.close()
    assert.ok(c.samples >= 1, `run ${i}: samples ${c.samples}`)
    assert.equal(c.limitBytes, LIMIT, `run ${i}`)
    assert.equal(c.basisBytes, WORKING_SET, `run ${i}`)
    assert.equal(c.failing, false)
  }
  // A root that cannot be read says so at once too.
  const missing = path.join(copy.root, 'no-such-root')
  const m = watch({ root: missing, lastWords: false })
  const errors = record(m, ['error'])
  const c = m.current
  assert.equal(c.failing, true, 'says why there are no numbers')
  assert.equal(c.limitBytes, null)
  await waitFor('the error event', () => errors.length === 1)
  m.close()
})

const CLEAN_EXIT_CHILD = `${PRELUDE}
  const [root, file, leaveAt] = process.argv.slice(1)
  const current = path.join(root, 'sys/fs/cgroup/fxcap/busy/memory.current')
  const set = (r) => writeInPlace(current, padded(Math.round(r * LIMIT) + INACTIVE_FILE))
  set(0.3)
  const m = watch({ root, thresholds: [0.6, 0.9], maxIntervalMs: 20, lastWords: { stderr: false, path: file } })
  ;(async () => {
    set(0.7)
    await waitFor('level 1', () => m.level === 1)
    // The block shows the level as soon as the sample is taken; the record
    // is written right after it, in the same pass.
    const levelOne = () => { try { return JSON.parse(fs.readFileSync(file, 'utf8')).level === 1 } catch { return false } }
    await waitFor('the level-1 record', levelOne)
    const during = fs.readFileSync(file, 'utf8')
    set(Number(leaveAt))
    await waitFor('the level to settle', () => m.current.ratio !== null && Math.abs(m.current.ratio - Number(leaveAt)) < 1e-3)
    await sleep(50)
    console.log(JSON.stringify({ during, level: m.level, before: fs.readFileSync(file, 'utf8') }))
    // exit normally with the monitor open
  })()
`

test('a normal exit below every threshold empties the last-words file; above one, it keeps the record (child processes)', async (t) => {
  const copy = busyCopy(t)
  const below = path.join(copy.root, 'below.log')
  const above = path.join(copy.root, 'above.log')
  fs.writeFileSync(path.join(copy.root, 'untouched.log'), 'someone else\n')
  // Both children move the same fixture copy: one after the other.
  const rb = await runNode(CLEAN_EXIT_CHILD, { args: [copy.root, below, '0.3'] })
  clean(rb, 'below')
  const ob = result(rb)
  assert.equal(JSON.parse(ob.during).level, 1, 'a record while at level 1')
  assert.equal(ob.level, 0)
  assert.equal(JSON.parse(ob.before).event, 'recovered', 'a recovery record before the exit')
  assert.equal(fs.readFileSync(below, 'utf8'), '', 'emptied at the clean exit')
  const ra = await runNode(CLEAN_EXIT_CHILD, { args: [copy.root, above, '0.7'] })
  clean(ra, 'above')
  const oa = result(ra)
  assert.equal(oa.level, 1)
  const kept = JSON.parse(fs.readFileSync(above, 'utf8'))
  assert.equal(kept.level, 1, 'the record stays when leaving above a threshold')
  assert.equal(kept.pid, ra.pid)
  assert.equal(fs.readFileSync(path.join(copy.root, 'untouched.log'), 'utf8'), 'someone else\n')
})

// ---------------------------------------------------------------------------
// Listener exceptions

const THROWING_CHILD = `${PRELUDE}
  const [root, mode] = process.argv.slice(1)
  const leaf = path.join(root, 'sys/fs/cgroup/fxcap/busy')
  const setRatio = (r) => writeInPlace(path.join(leaf, 'memory.current'), padded(Math.round(r * LIMIT) + INACTIVE_FILE))
  const caught = []
  if (mode === 'handler') {
    process.on('uncaughtException', (err, origin) => caught.push({ message: err.message, origin }))
  }
  setRatio(0.5)
  ;(async () => {
    const m = watch({ root, thresholds: [0.55, 0.6], maxIntervalMs: 20, lastWords: false }).ref()
    let calls = 0
    m.on('threshold', (e) => {
      calls++
      if (calls <= 2) throw new Error('boom ' + e.level)
    })
    let recovered = 0
    m.on('recovered', () => recovered++)
    await waitFor('samples', () => m.current.samples >= 2)
    setRatio(0.7)
    await waitFor('both crossings', () => calls === 2)
    await sleep(50)
    setRatio(0.3)
    await waitFor('recovered', () => recovered === 2)
    setRatio(0.7)
    await waitFor('crossings again', () => calls === 4)
    console.log(JSON.stringify({ caught, calls, recovered, level: m.level, samples: m.current.samples }))
    m.close()
  })()
`

test('a throwing listener is an uncaught exception; the monitor keeps working (child process)', async (t) => {
  const copy = busyCopy(t)
  const r = await runNode(THROWING_CHILD, { args: [copy.root, 'handler'] })
  clean(r, 'throwing listener with an uncaughtException handler')
  const out = result(r)
  assert.deepEqual(out.caught, [
    { message: 'boom 1', origin: 'uncaughtException' },
    { message: 'boom 2', origin: 'uncaughtException' },
  ])
  assert.equal(out.calls, 4, 'later events still arrive')
  assert.equal(out.recovered, 2)
  assert.equal(out.level, 2)

  const copy2 = busyCopy(t)
  const crash = await runNode(THROWING_CHILD, { args: [copy2.root, 'none'] })
  assert.equal(crash.timedOut, false)
  assert.equal(crash.signal, null)
  assert.equal(crash.code, 1, "without a handler, Node's default: exit code 1")
  assert.match(crash.stderr, /Error: boom 1/)
})

const TWICE_CHILD = `${PRELUDE}
  const root = process.argv[1]
  const fired = { first: 0, second: 0, third: 0 }
  const dropLib = () => {
    const dir = path.join(${JSON.stringify(LIB)}, 'lib') + path.sep
    for (const k of Object.keys(require.cache)) if (k.startsWith(dir)) delete require.cache[k]
  }
  ;(async () => {
    const first = watch({ root, thresholds: [0.5], lastWords: false }, () => fired.first++)
    dropLib()
    const again = require(${JSON.stringify(LIB)})
    const second = again.watch({ root, thresholds: [0.5], lastWords: false }, () => fired.second++)
    await waitFor('both levels', () => first.level === 1 && second.level === 1)
    await sleep(200)
    first.close()
    second.close()
    // A third copy, loaded after every monitor of the others was closed.
    dropLib()
    const third = require(${JSON.stringify(LIB)}).watch({ root, thresholds: [0.5], lastWords: false }, () => fired.third++)
    await waitFor('its level', () => third.level === 1)
    await sleep(200)
    third.close()
    console.log(JSON.stringify(fired))
  })()
`

test('the JS layer loaded twice in one thread (require cache cleared, as test runners do): every copy gets its events (child process)', async () => {
  const r = await runNode(TWICE_CHILD, { args: [BUSY] })
  clean(r, 'lib loaded twice')
  assert.deepEqual(result(r), { first: 1, second: 1, third: 1 }, "each monitor's threshold listener ran once")
})

// ---------------------------------------------------------------------------
// Lifecycle

const samplerTasks = () =>
  fs.readdirSync('/proc/self/task').filter((tid) => {
    try {
      return fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === 'oomguard-sample' // 'oomguard-sampler', cut to 15 bytes by the kernel
    } catch {
      return false
    }
  })

test('close() is idempotent; after the last close the sampler thread exits by itself', async (t) => {
  await waitFor('no sampler thread left from earlier tests', () => !samplerInfo().running && samplerTasks().length === 0)
  const a = watch({ root: BUSY, lastWords: false })
  const b = watch({ root: BUSY, lastWords: false })
  t.after(() => {
    a.close()
    b.close()
  })
  const info = samplerInfo()
  assert.equal(info.running, true)
  assert.equal(info.monitors, 2)
  await waitFor('the thread id', () => samplerInfo().threadId)
  const tid = samplerInfo().threadId
  assert.deepEqual(samplerTasks(), [String(tid)])
  await waitFor('a sample', () => a.current.samples > 0)

  assert.equal(a.close(), undefined)
  assert.equal(a.closed, true)
  a.close()
  a.close()
  assert.equal(samplerInfo().monitors, 1, "closing a twice does not stop b's monitor")
  assert.equal(samplerInfo().running, true)
  const s = b.current.samples
  await waitFor('b keeps sampling', () => b.current.samples > s)
  // A closed monitor's numbers stay readable.
  assert.equal(typeof a.level, 'number')
  assert.ok(a.current.samples > 0)
  assert.equal(a.ref().hasRef(), false, 'ref() after close() does nothing')

  const t0 = Date.now()
  b.close()
  assert.ok(Date.now() - t0 < 50, 'close() does not wait for the thread')
  assert.equal(samplerInfo().monitors, 0)
  assert.equal(samplerInfo().roots, 0)
  await waitFor('the thread to exit', () => !samplerInfo().running && !fs.existsSync(`/proc/self/task/${tid}`), 2000)
  const after = samplerInfo()
  assert.deepEqual(
    { ...after, pinnedBytes: undefined, pinError: undefined, snapshots: undefined, ticks: undefined },
    { running: false, threadId: null, monitors: 0, roots: 0, triggers: [], pinnedBytes: undefined, pinError: undefined, snapshots: undefined, ticks: undefined },
  )
  assert.deepEqual(samplerTasks(), [])
  b.close()

  // And it starts again.
  const c = open(t, { root: BUSY, lastWords: false })
  await waitFor('a new sample', () => c.current.samples > 0)
  assert.equal(samplerInfo().running, true)
  c.close()
  await waitFor('the thread to exit again', () => !samplerInfo().running, 2000)
})

test('monitors share one sampler thread; roots counts distinct roots', async (t) => {
  const rel = path.relative(process.cwd(), BUSY)
  const m1 = open(t, { root: BUSY, lastWords: false })
  const m2 = open(t, { root: rel, lastWords: false }) // the same root, relative
  const m3 = open(t, { root: path.join(FIXTURES, 'v1-hybrid-busy'), lastWords: false })
  const m4 = open(t, { lastWords: false })
  const m5 = open(t, { root: '/', lastWords: false }) // the same as the default
  assert.ok(
    [m1, m2, m3, m4, m5].every((m) => m.current.samples > 0),
    'each sampled by watch()',
  )
  await waitFor("the thread's pass", () => samplerInfo().threadId !== null && [m1, m2, m3, m4, m5].every((m) => m.current.samples > 1))
  // A thread that exited (an earlier test closed its last monitor) may still be winding down.
  await waitFor('one sampler thread', () => samplerTasks().length === 1)
  const info = samplerInfo()
  assert.equal(info.monitors, 5)
  assert.equal(info.roots, 3)
  assert.deepEqual(samplerTasks(), [String(info.threadId)], 'one thread for all of them')
  assert.ok(
    info.triggers.some((k) => k.startsWith('inotify memory.events')),
    `v2 fixture watched by inotify: ${info.triggers}`,
  )
  assert.equal(m2.current.limitBytes, LIMIT)
  m1.close()
  assert.equal(samplerInfo().roots, 3, 'm2 still reads v2-busy')
  m2.close()
  assert.equal(samplerInfo().roots, 2)
  m3.close()
  assert.equal(samplerInfo().roots, 1)
  assert.equal(samplerInfo().threadId, info.threadId, 'the same thread throughout')
  m4.close()
  assert.equal(samplerInfo().running, true)
  m5.close()
  await waitFor('the thread to exit', () => !samplerInfo().running, 2000)
})

test('a kernel wake-up (memory.events modified) samples at once, even on a long interval', async (t) => {
  const copy = busyCopy(t)
  const m = open(t, { root: copy.root, thresholds: [0.6], minIntervalMs: 30000, maxIntervalMs: 60000, lastWords: false })
  const events = record(m)
  assert.ok(m.current.samples >= 1, 'the first sample is taken by watch()')
  await waitFor("the thread's first pass", () => m.current.samples >= 2, 1000)
  assert.equal(m.current.intervalMs, 30000)
  const s = m.current.samples
  // A second monitor is sampled right away too (adding one wakes the thread).
  const n = open(t, { root: copy.root, thresholds: [0.6], minIntervalMs: 30000, lastWords: false })
  assert.ok(n.current.samples >= 1, 'sampled by watch()')
  await waitFor("the thread's pass for the second monitor", () => n.current.samples >= 2 && m.current.samples > s, 1000)
  copy.setRatio(0.7)
  await sleep(100)
  assert.equal(events.length, 0, 'not sampled yet: the interval is 30 s')
  const ev = copy.file('memory.events')
  writeInPlace(ev, fs.readFileSync(ev, 'utf8').replace('high 0', 'high 1'))
  await waitFor('the threshold after the inotify wake-up', () => events.length === 1, 1000)
  assert.equal(events[0].e.level, 1)
})

const EXIT_CHILD = `${PRELUDE}
  const [root, mode] = process.argv.slice(1)
  const m = watch({ root, lastWords: false, thresholds: [0.5] }, () => console.log('threshold'))
  if (mode === 'ref') {
    console.log('hasRef ' + m.hasRef())
    console.log('ref returns the monitor ' + (m.ref() === m))
    console.log('hasRef ' + m.hasRef())
    setTimeout(() => { console.log('close'); m.close(); console.log('hasRef ' + m.hasRef()) }, 500).unref()
  } else if (mode === 'unref') {
    m.ref()
    setTimeout(() => { console.log('unref ' + (m.unref() === m)); console.log('hasRef ' + m.hasRef()) }, 500).unref()
  } else {
    console.log('hasRef ' + m.hasRef())
  }
`

test('an open monitor does not keep the process alive; ref() does until close()/unref()', async (t) => {
  const [plain, ref, unref] = await Promise.all([
    runNode(EXIT_CHILD, { args: [BUSY, 'plain'], timeoutMs: 5000 }),
    runNode(EXIT_CHILD, { args: [BUSY, 'ref'], timeoutMs: 5000 }),
    runNode(EXIT_CHILD, { args: [BUSY, 'unref'], timeoutMs: 5000 }),
  ])
  clean(plain, 'open monitor, unref by default')
  assert.ok(plain.ms < 3000, `exited on its own in ${plain.ms} ms`)
  assert.equal(plain.stdout.split('\n')[0], 'hasRef false')
  assert.equal(plain.stderr, '')

  clean(ref, 'ref() then close()')
  assert.deepEqual(ref.stdout.trim().split('\n'), ['hasRef false', 'ref returns the monitor true', 'hasRef true', 'threshold', 'close', 'hasRef false'])
  assert.ok(ref.ms >= 450, `stayed alive until close(): ${ref.ms} ms`)

  clean(unref, 'ref() then unref()')
  assert.deepEqual(unref.stdout.trim().split('\n'), ['threshold', 'unref true', 'hasRef false'])
  assert.ok(unref.ms >= 450 && unref.ms < 3500, `alive until unref(), then exited: ${unref.ms} ms`)
})

const WORKER_CODE = `
  const { parentPort, workerData } = require('node:worker_threads')
  const { watch } = require(${JSON.stringify(LIB)})
  const { samplerInfo } = require(${JSON.stringify(NATIVE)})
  const m = watch({ root: workerData.root, lastWords: false, thresholds: [0.5], hysteresis: 0, maxIntervalMs: 20 }).ref()
  let n = 0
  m.on('threshold', (e) => parentPort.postMessage({ kind: 'threshold', level: e.level, n: ++n, tid: samplerInfo().threadId, samples: m.current.samples }))
  m.on('recovered', () => parentPort.postMessage({ kind: 'recovered', n: ++n }))
  parentPort.postMessage({ kind: 'started', tid: samplerInfo().threadId })
`

const WORKERS_CHILD = `${PRELUDE}
  const { Worker } = require('node:worker_threads')
  const { once } = require('node:events')
  const WORKER_CODE = ${JSON.stringify(WORKER_CODE)}
  const [root, mode] = process.argv.slice(1)
  const spawnWorker = () => {
    const w = new Worker(WORKER_CODE, { eval: true, workerData: { root } })
    w.messages = []
    w.on('message', (msg) => w.messages.push(msg))
    w.on('error', (e) => { console.error('worker error', e); process.exitCode = 3 })
    return w
  }
  ;(async () => {
    const main = watch({ root, lastWords: false, maxIntervalMs: 20 })
    const mainTid = await waitFor('thread id', () => samplerInfo().threadId)
    const workers = [spawnWorker(), spawnWorker(), spawnWorker()]
    await waitFor('events in every worker', () => workers.every((w) => w.messages.some((m) => m.kind === 'threshold')), 5000)
    const tids = workers.map((w) => w.messages.find((m) => m.kind === 'threshold').tid)
    const together = samplerInfo()
    const s0 = main.current.samples
    const t0 = Date.now()
    const code = await workers[0].terminate()
    const terminateMs = Date.now() - t0
    const afterTerminate = samplerInfo()
    await waitFor('main keeps sampling', () => main.current.samples >= s0 + 5, 2000)
    const out = { mainTid, tids, together, afterTerminate, terminateMs, code, mainSamples: [s0, main.current.samples] }
    console.log(JSON.stringify(out))
    if (mode === 'exit') process.exit(0) // main's monitor and two workers' still open
    await Promise.all(workers.slice(1).map((w) => w.terminate()))
    main.close()
  })().catch((e) => { console.error(e); process.exit(2) })
`

test('worker threads: monitors in several workers and main share one sampler; terminate and exit cleanly (child processes)', async () => {
  const [exit, close] = await Promise.all([runNode(WORKERS_CHILD, { args: [BUSY, 'exit'], timeoutMs: 15000 }), runNode(WORKERS_CHILD, { args: [BUSY, 'close'], timeoutMs: 15000 })])
  clean(exit, 'process.exit(0) with monitors open in main and workers')
  clean(close, 'terminate every worker, close main, exit on its own')
  for (const r of [exit, close]) {
    assert.equal(r.stderr, '')
    const out = result(r)
    assert.ok(out.mainTid > 0)
    assert.deepEqual(out.tids, [out.mainTid, out.mainTid, out.mainTid], 'every worker is served by the same thread')
    assert.equal(out.together.threadId, out.mainTid)
    assert.equal(out.together.monitors, 4)
    assert.equal(out.together.roots, 1)
    assert.equal(out.code, 1, 'terminate() resolves with exit code 1')
    assert.ok(out.terminateMs < 2000, `terminate() took ${out.terminateMs} ms`)
    assert.equal(out.afterTerminate.monitors, 3, "the terminated worker's monitor is gone")
    assert.equal(out.afterTerminate.threadId, out.mainTid)
    assert.ok(out.mainSamples[1] >= out.mainSamples[0] + 5)
  }
})

const FLOOD_CHILD = `${PRELUDE}
  const { Worker } = require('node:worker_threads')
  const WORKER_CODE = ${JSON.stringify(WORKER_CODE)}
  const [root, mode] = process.argv.slice(1)
  const file = path.join(root, 'sys/fs/cgroup/fxcap/busy/memory.current')
  const usageAt = (r) => padded(Math.round(r * LIMIT) + INACTIVE_FILE)
  let high = false
  // Flip the ratio across 0.5 every 2 ms: a stream of threshold/recovered events.
  const flipper = setInterval(() => { high = !high; writeInPlace(file, usageAt(high ? 0.6 : 0.4)) }, 2)
  ;(async () => {
    const main = watch({ root, lastWords: false, thresholds: [0.5], hysteresis: 0, maxIntervalMs: 20 })
    let mainEvents = 0
    main.on('threshold', () => mainEvents++)
    main.on('recovered', () => mainEvents++)
    const terminated = []
    for (let i = 0; i < 6; i++) {
      const w = new Worker(WORKER_CODE, { eval: true, workerData: { root } })
      let n = 0
      w.on('message', (m) => { if (m.n) n = m.n })
      w.on('error', (e) => { console.error('worker error', e); process.exitCode = 3 })
      await waitFor('worker events', () => n >= 5, 5000)
      const t0 = Date.now()
      await w.terminate()
      terminated.push(Date.now() - t0)
    }
    // Terminated while starting up, before any event.
    for (let i = 0; i < 4; i++) {
      const w = new Worker(WORKER_CODE, { eval: true, workerData: { root } })
      await new Promise((r) => setTimeout(r, i * 7))
      const t0 = Date.now()
      await w.terminate()
      terminated.push(Date.now() - t0)
    }
    const before = mainEvents
    await waitFor('main still gets events', () => mainEvents >= before + 10, 3000)
    const info = samplerInfo()
    console.log(JSON.stringify({ terminated, mainEvents, info }))
    if (mode === 'exit') {
      const w1 = new Worker(WORKER_CODE, { eval: true, workerData: { root } })
      const w2 = new Worker(WORKER_CODE, { eval: true, workerData: { root } })
      let n = 0
      for (const w of [w1, w2]) w.on('message', (m) => { if (m.kind === 'threshold') n++ })
      await waitFor('workers flooded', () => n >= 4, 5000)
      process.exit(0)
    }
    clearInterval(flipper)
    main.close()
  })().catch((e) => { console.error(e); process.exit(2) })
`

test('terminating workers while their monitors stream events: no crash, no hang; main keeps being served (child processes)', async (t) => {
  const a = busyCopy(t)
  const b = busyCopy(t)
  const [close, exit] = await Promise.all([runNode(FLOOD_CHILD, { args: [a.root, 'close'], timeoutMs: 20000 }), runNode(FLOOD_CHILD, { args: [b.root, 'exit'], timeoutMs: 20000 })])
  clean(close, 'terminate workers under a stream of events, then exit on its own')
  clean(exit, 'process.exit(0) under a stream of events with workers open')
  for (const r of [close, exit]) {
    assert.equal(r.stderr, '')
    const out = result(r)
    assert.equal(out.terminated.length, 10)
    for (const ms of out.terminated) assert.ok(ms < 2000, `terminate() took ${ms} ms`)
    assert.equal(out.info.monitors, 1, 'only main is left')
    assert.ok(out.mainEvents > 10)
  }
})

const CYCLES_CHILD = `${PRELUDE}
  const count = (dir) => fs.readdirSync(dir).length
  async function settle() {
    for (let i = 0; i < 4; i++) { global.gc(); await sleep(10) }
    return process.memoryUsage()
  }
  const samplerGone = () => !samplerInfo().running && !fs.readdirSync('/proc/self/task').some((tid) => {
    try { return fs.readFileSync('/proc/self/task/' + tid + '/comm', 'utf8').trim() === 'oomguard-sample' } catch { return false }
  })
  const snapshot = async () => {
    // close() does not join the thread: it exits by itself, soon after.
    if (mode === 'alone') await waitFor('the sampler thread to exit', samplerGone)
    const u = await settle()
    return { tasks: count('/proc/self/task'), fds: count('/proc/self/fd'), rss: u.rss, heapUsed: u.heapUsed }
  }
  const [mode, keepRoot] = process.argv.slice(1)
  ;(async () => {
    const keep = mode === 'with-open' ? watch({ root: keepRoot, lastWords: false }) : null
    // Warm up: code, arenas. Node 22 and 24 keep compiling (Maglev, then
    // TurboFan) well past 3,000 cycles; 10,000 lets the baseline follow that.
    for (let i = 0; i < 10000; i++) watch({ lastWords: false }).close()
    const base = await snapshot()
    const t0 = Date.now()
    let sum = 0
    for (let i = 0; i < 10000; i++) {
      const m = watch({ lastWords: false })
      sum += m.level
      m.close()
    }
    const ms = Date.now() - t0
    const first = await snapshot()
    for (let i = 0; i < 10000; i++) watch({ lastWords: false }).close()
    const second = await snapshot()
    const info = samplerInfo()
    if (keep) keep.close()
    await waitFor('the thread to exit', samplerGone)
    console.log(JSON.stringify({ base, first, second, ms, sum, info, final: samplerInfo() }))
  })()
`

test('10,000 watch/close cycles on / leave no threads, no descriptors and bounded memory (child process)', async () => {
  const runs = await Promise.all([
    runNode(CYCLES_CHILD, { args: ['alone'], execArgv: ['--expose-gc'], timeoutMs: 60000 }),
    runNode(CYCLES_CHILD, { args: ['with-open', path.join(FIXTURES, 'v1-hybrid-busy')], execArgv: ['--expose-gc'], timeoutMs: 60000 }),
  ])
  const MiB = 1024 * 1024
  for (const [name, r] of [
    ['alone', runs[0]],
    ['with another monitor open', runs[1]],
  ]) {
    clean(r, name)
    const out = result(r)
    const { base, first, second } = out
    const diag = `${name}: ${JSON.stringify(out)}`
    assert.equal(first.tasks, base.tasks, `threads back to baseline: ${diag}`)
    assert.equal(second.tasks, base.tasks, `threads back to baseline: ${diag}`)
    assert.equal(first.fds, base.fds, `descriptors back to baseline: ${diag}`)
    assert.equal(second.fds, base.fds, `descriptors back to baseline: ${diag}`)
    assert.ok(first.rss - base.rss < 6 * MiB, `RSS +${((first.rss - base.rss) / MiB).toFixed(1)} MiB after 10,000 cycles: ${diag}`)
    assert.ok(second.rss - first.rss < 2 * MiB, `RSS +${((second.rss - first.rss) / MiB).toFixed(1)} MiB over 10,000 more: ${diag}`)
    assert.ok(second.heapUsed - base.heapUsed < 2 * MiB, `heap: ${diag}`)
    assert.ok(out.ms < 15000, `10,000 cycles took ${out.ms} ms`)
    assert.deepEqual(
      { ...out.final, pinnedBytes: undefined, pinError: undefined, snapshots: undefined, ticks: undefined },
      { running: false, threadId: null, monitors: 0, roots: 0, triggers: [], pinnedBytes: undefined, pinError: undefined, snapshots: undefined, ticks: undefined },
    )
  }
  assert.equal(result(runs[0]).info.running, false)
  assert.equal(result(runs[1]).info.monitors, 1)
  assert.equal(result(runs[1]).info.roots, 1, "the readers of '/' were dropped each time")
})

test('monitor.level and monitor.current do no I/O', async (t) => {
  const m = open(t, { root: BUSY, lastWords: false })
  await waitFor('a sample', () => m.current.samples > 0)
  const ioFile = `/proc/self/task/${process.pid}/io`
  const syscr = () => {
    try {
      return Number(/syscr: (\d+)/.exec(fs.readFileSync(ioFile, 'utf8'))[1])
    } catch {
      return null
    }
  }
  const r0 = syscr()
  const t0 = process.hrtime.bigint()
  let sum = 0
  for (let i = 0; i < 100000; i++) {
    sum += m.level
    sum += m.current.basisBytes
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  const r1 = syscr()
  assert.equal(sum, 100000 * WORKING_SET)
  assert.ok(ms < 1000, `100,000 reads of level and current took ${ms.toFixed(1)} ms`)
  if (r0 !== null && r1 !== null) {
    assert.ok(r1 - r0 < 10, `read syscalls on this thread during 100,000 reads: ${r1 - r0}`)
  }
})

test("current follows the native block layout (watchSlots(): every slot's index and the source encoding, declared once in Rust)", async (t) => {
  const { slots, sources } = require('../index.js').watchSlots()
  assert.deepEqual(sources, ['cgroup-v1', 'cgroup-v2', 'host'])
  const indexes = slots.map(([, i]) => i)
  assert.equal(new Set(indexes).size, indexes.length, 'no two slots share an index')
  const names = slots.map(([n]) => n).filter((n) => n !== 'seq' && !n.startsWith('v8.'))
  for (const [fixture, source] of [
    ['v2-busy', 'cgroup-v2'],
    ['v1-docker', 'cgroup-v1'],
    ['no-memory-controller', 'host'],
  ]) {
    const m = open(t, { root: path.join(FIXTURES, fixture), lastWords: false })
    for (const i of indexes) assert.ok(i < m._block.length, `slot ${i} is inside the block`)
    const c = await waitFor(`${fixture}: a sample`, () => m.current.samples > 0 && m.current)
    assert.deepEqual(Object.keys(c), names, 'current has one property per slot, in slot order')
    assert.equal(c.source, source, fixture)
    assert.equal(c.level, m.level)
    m.close()
  }
})
