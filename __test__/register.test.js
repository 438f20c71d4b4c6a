'use strict'
// Zero-code start (lib/integrations/register.js, lib/integrations/register.mjs) in child processes:
// `node -r`, `node --import`, NODE_OPTIONS, both at once, bad variables,
// /metrics on 127.0.0.1 only when asked, and never keeping a process alive.
//
// Transitions are driven deterministically: OOMGUARD_ROOT points the monitor
// at a copy of the v2-busy fixture tree, whose memory.current the test
// rewrites in place (same length, no truncation, so a read never sees an
// empty file).

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const http = require('node:http')
const url = require('node:url')
const { spawn, spawnSync } = require('node:child_process')
const driven = require('./helpers/driven.js')

const REPO = path.join(__dirname, '..')
const REGISTER_CJS = path.join(REPO, 'lib', 'integrations', 'register.js')
const REGISTER_MJS = path.join(REPO, 'lib', 'integrations', 'register.mjs')
const WATCH = path.join(REPO, 'lib', 'core', 'watch.js')
const FIXTURE = path.join(__dirname, 'fixtures', 'v2-busy')
const LIMIT = 268435456 // v2-busy memory.max
const INACTIVE_FILE = 42819584 // v2-busy memory.stat inactive_file: working set = current - this

const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-register-'))
test.after(() => fs.rmSync(WORK, { recursive: true, force: true }))

let roots = 0
/** A fresh copy of v2-busy (working set at 51.5% of the limit). */
function makeRoot() {
  const root = path.join(WORK, `root-${roots++}`)
  fs.cpSync(FIXTURE, root, { recursive: true })
  return root
}

/** Put the working set at `ratio` of the limit by rewriting memory.current in place. */
function setRatio(root, ratio) {
  const file = path.join(root, 'sys/fs/cgroup/fxcap/busy/memory.current')
  const text = `${Math.round(ratio * LIMIT + INACTIVE_FILE)}\n`
  const old = fs.readFileSync(file, 'utf8')
  assert.equal(text.length, old.length, 'same length, so an in-place write never leaves stale bytes')
  const fd = fs.openSync(file, 'r+')
  try {
    fs.writeSync(fd, text, 0)
  } finally {
    fs.closeSync(fd)
  }
}

// An app that knows nothing about oomguard. It prints one JSON line with what
// it can see of the register (through its global), then stays alive until
// killed, or exits at once with EXIT_AT_ONCE=1. It reports on its first turn
// of the event loop: the register starts /metrics on the turn after the main
// module (lib/integrations/register.js), so the server is there and listening by then.
const APP_BODY = `
const state = globalThis[Symbol.for('oomguard.register')]
const { samplerInfo } = require(${JSON.stringify(WATCH)})
const report = () => console.log(JSON.stringify({
  ready: true,
  registered: state !== undefined,
  started: state ? state.started : null,
  reason: state ? state.reason : null,
  monitors: samplerInfo().monitors,
  thresholds: state && state.monitor ? state.monitor.thresholds : null,
  basis: state && state.monitor ? state.monitor.basis : null,
  server: !!(state && state.server),
  listening: !!(state && state.server && state.server.listening),
  metricsServedBy: state ? state.metricsServedBy : null,
  role: state ? state.role : null,
}))
setImmediate(report)
if (process.env.EXIT_AT_ONCE !== '1') setInterval(() => {}, 1000)
`
const APP_CJS = path.join(WORK, 'app.js')
const APP_MJS = path.join(WORK, 'app.mjs')
fs.writeFileSync(APP_CJS, APP_BODY)
fs.writeFileSync(APP_MJS, `import { createRequire } from 'node:module'\nconst require = createRequire(import.meta.url)\n${APP_BODY}`)

/**
 * The environment of a child: no OOMGUARD_* or NODE_OPTIONS from outside.
 * The fixture's limit (256 MiB) is below node's heap limit here: the
 * heap-limit line at start is off unless a test asks for it.
 */
function childEnv(extra) {
  return driven.childEnv({ OOMGUARD_HEAP_WARNING: '0', ...extra })
}

/** Start a child; collects its output by line and lets the test wait for lines. */
function start(args, env, cwd = WORK) {
  const child = spawn(process.execPath, args, { env: childEnv(env), cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  const { out, waitFor, exited } = driven.follow(child, 10_000)
  const stop = async () => {
    if (!out.exited) process.kill(child.pid, 'SIGTERM')
    await exited
  }
  const ready = () => waitFor('the app to start', (o) => o.stdout.map((l) => JSON.parse(l)).find((j) => j.ready))
  return { child, out, waitFor, stop, ready, exited }
}

/** The oomguard JSON lines on stderr of one kind ('threshold', 'recovered', ...). */
function events(out, kind) {
  return out.stderr
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((j) => j.oomguard === kind)
}

const EVENT_KEYS = ['oomguard', 'time', 'pid', 'level', 'levels', 'threshold', 'ratio', 'basis', 'basisBytes', 'limitBytes', 'headroomBytes', 'growthBytesPerSec', 'timeToLimitMs', 'v8', 'lastWords']

/** Drive one child through 85% -> 97% -> 50% and check the lines it logs. */
async function driveTransitions(app, root) {
  const info = await app.ready()
  assert.equal(info.started, true)
  assert.equal(info.monitors, 1)
  assert.equal(events(app.out, 'threshold').length, 0, 'nothing logged at 51.5%')

  setRatio(root, 0.85)
  await app.waitFor('level 1', (o) => events(o, 'threshold').length >= 1)
  setRatio(root, 0.97)
  await app.waitFor('levels 2 and 3', (o) => events(o, 'threshold').length >= 3)
  setRatio(root, 0.5)
  await app.waitFor('recovery to level 0', (o) => events(o, 'recovered').length >= 3)

  const up = events(app.out, 'threshold')
  const down = events(app.out, 'recovered')
  assert.deepEqual(
    up.map((e) => [e.level, e.threshold]),
    [
      [1, 0.8],
      [2, 0.9],
      [3, 0.95],
    ],
  )
  assert.deepEqual(
    down.map((e) => [e.level, e.threshold]),
    [
      [2, 0.95],
      [1, 0.9],
      [0, 0.8],
    ],
  )
  for (const e of [...up, ...down]) {
    assert.deepEqual(Object.keys(e), EVENT_KEYS)
    assert.equal(e.pid, app.child.pid)
    assert.equal(e.limitBytes, LIMIT)
    assert.equal(e.basis, 'workingSet')
    assert.equal(e.levels, 3)
    assert.ok(e.v8 && e.v8.heapSizeLimitBytes > 0, 'V8 numbers included')
    assert.ok(!Number.isNaN(Date.parse(e.time)))
  }
  assert.equal(up[0].ratio, 0.85)
  assert.equal(up[2].ratio, 0.97)
  assert.equal(down[2].ratio, 0.5)
  return { up, down }
}

test('node -r lib/integrations/register.js: one JSON line on stderr per threshold crossed and per recovery', async (t) => {
  const root = makeRoot()
  const app = start(['-r', REGISTER_CJS, APP_CJS], { OOMGUARD_ROOT: root, OOMGUARD_MAX_INTERVAL_MS: '20' })
  t.after(app.stop)
  const { up } = await driveTransitions(app, root)
  // The default last words go to stderr at every level change (one record
  // per sample, for the level reached), and the event says where.
  assert.deepEqual(
    up.map((e) => e.lastWords),
    ['stderr', null, 'stderr'],
  )
  const lw = events(app.out, 'last-words')
  assert.deepEqual(
    lw.map((r) => [r.level, r.threshold, r.final, r.event]),
    [
      [1, 0.8, false, 'threshold'],
      [3, 0.95, true, 'threshold'],
      [0, 0.8, false, 'recovered'],
    ],
  )
  // Every stderr line is one of oomguard's JSON lines: nothing else, nothing split.
  for (const line of app.out.stderr) assert.ok(['threshold', 'recovered', 'last-words'].includes(JSON.parse(line).oomguard), line)
})

test('node --import lib/integrations/register.mjs with an ES module app; last words to OOMGUARD_LAST_WORDS_PATH only', async (t) => {
  const root = makeRoot()
  const termination = path.join(WORK, 'termination-log')
  const app = start(['--import', REGISTER_MJS, APP_MJS], {
    OOMGUARD_ROOT: root,
    OOMGUARD_MAX_INTERVAL_MS: '20',
    OOMGUARD_LAST_WORDS_STDERR: '0',
    OOMGUARD_LAST_WORDS_PATH: termination,
  })
  t.after(app.stop)
  const { up } = await driveTransitions(app, root)
  assert.equal(events(app.out, 'last-words').length, 0, 'OOMGUARD_LAST_WORDS_STDERR=0')
  assert.deepEqual(
    up.map((e) => e.lastWords),
    [termination, null, termination],
  )
  const lw = JSON.parse(fs.readFileSync(termination, 'utf8'))
  assert.equal(lw.oomguard, 'last-words')
  assert.equal(lw.pid, app.child.pid)
})

test('NODE_OPTIONS="-r .../register.js" and the package names oomguard/register', async (t) => {
  const root = makeRoot()
  const app = start([APP_CJS], { NODE_OPTIONS: `--require=${REGISTER_CJS}`, OOMGUARD_ROOT: root, OOMGUARD_MAX_INTERVAL_MS: '20' })
  t.after(app.stop)
  await driveTransitions(app, root)

  // As users write it: resolved through package.json "exports" (self-reference from the repository).
  for (const [flag, appFile] of [
    ['-r', APP_CJS],
    ['--import', APP_MJS],
  ]) {
    const r = spawnSync(process.execPath, [flag, 'oomguard/register', appFile], {
      cwd: REPO,
      encoding: 'utf8',
      env: childEnv({ EXIT_AT_ONCE: '1', OOMGUARD_ROOT: root, OOMGUARD_METRICS_PORT: '0' }),
      timeout: 20_000,
    })
    assert.equal(r.status, 0, r.stderr)
    const info = JSON.parse(r.stdout)
    assert.equal(info.started, true, `${flag} oomguard/register`)
    assert.equal(info.monitors, 1)
    // /metrics, started after the main module (CommonJS or ES), listens by the app's first turn; it kept nobody alive.
    assert.equal(info.listening, true, `${flag}: /metrics listening by the first turn`)
  }
})

test('loaded twice (-r and --import, or -r twice): one monitor', () => {
  for (const args of [
    ['-r', REGISTER_CJS, '--import', REGISTER_MJS, APP_CJS],
    ['-r', REGISTER_CJS, '-r', REGISTER_CJS, APP_CJS],
    ['--import', REGISTER_MJS, '-r', REGISTER_CJS, APP_MJS],
  ]) {
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', env: childEnv({ EXIT_AT_ONCE: '1', OOMGUARD_ROOT: makeRoot() }), timeout: 20_000 })
    assert.equal(r.status, 0, r.stderr)
    const info = JSON.parse(r.stdout)
    assert.equal(info.monitors, 1, args.join(' '))
    assert.equal(info.started, true)
    assert.equal(r.stderr, '')
  }
})

test('worker threads do not start a monitor of their own', () => {
  const script = path.join(WORK, 'workers.js')
  fs.writeFileSync(
    script,
    `
    const { Worker } = require('node:worker_threads')
    const w = new Worker("const s = globalThis[Symbol.for('oomguard.register')]; require('node:worker_threads').parentPort.postMessage(s && s.reason)", { eval: true })
    w.on('message', (reason) => console.log(JSON.stringify({ reason, monitors: require(${JSON.stringify(WATCH)}).samplerInfo().monitors })))
  `,
  )
  const r = spawnSync(process.execPath, ['-r', REGISTER_CJS, script], { encoding: 'utf8', env: childEnv({ OOMGUARD_ROOT: makeRoot() }), timeout: 20_000 })
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(JSON.parse(r.stdout), { reason: 'worker thread', monitors: 1 })
})

test('settings from the environment; OOMGUARD_LOG_FORMAT=text', async (t) => {
  const root = makeRoot()
  const app = start(['-r', REGISTER_CJS, APP_CJS], {
    OOMGUARD_ROOT: root,
    OOMGUARD_MAX_INTERVAL_MS: '20',
    OOMGUARD_THRESHOLDS: '0.7, 0.9',
    OOMGUARD_BASIS: 'usage',
    OOMGUARD_LOG_FORMAT: 'text',
    OOMGUARD_LAST_WORDS_STDERR: 'false',
  })
  t.after(app.stop)
  const info = await app.ready()
  assert.deepEqual(info.thresholds, [0.7, 0.9])
  assert.equal(info.basis, 'usage')
  // usage = working set + inactive_file: 67.5% at the start; a working set of 0.6 is a usage of 76%.
  setRatio(root, 0.6)
  const line = await app.waitFor('a text line', (o) => o.stderr.find((l) => l.startsWith('oomguard: memory above')))
  assert.match(line, /^oomguard: memory above 70% of the limit \(level 1\/2\): usage 194\.4 MiB of 256\.0 MiB \(76\.0%\), headroom 61\.6 MiB, /)
  assert.match(line, /V8 heap \d+\.\d MiB used, limit \d+\.\d MiB$/)
  setRatio(root, 0.4)
  const back = await app.waitFor('the recovery line', (o) => o.stderr.find((l) => l.startsWith('oomguard: memory back below')))
  assert.match(back, /^oomguard: memory back below 70% of the limit \(level 0\/2\): usage 143\.2 MiB of 256\.0 MiB \(56\.0%\)/)
  assert.equal(app.out.stderr.length, 2, 'one line per transition')
})

test('a bad variable: one line on stderr, its default used, the service starts', () => {
  const cases = [
    [{ OOMGUARD_THRESHOLDS: '0.9,0.8' }, /^oomguard: OOMGUARD_THRESHOLDS="0\.9,0\.8" is not valid \(.*ascending.*\); using the default \(0\.8,0\.9,0\.95\)$/],
    [{ OOMGUARD_THRESHOLDS: '80,90' }, /^oomguard: OOMGUARD_THRESHOLDS="80,90" is not valid/],
    [{ OOMGUARD_BASIS: 'heap' }, /^oomguard: OOMGUARD_BASIS="heap" is not valid \(workingSet, usage or rss\); using the default \(workingSet\)$/],
    [{ OOMGUARD_HYSTERESIS: 'lots' }, /^oomguard: OOMGUARD_HYSTERESIS="lots" is not valid/],
    [{ OOMGUARD_LOG_FORMAT: 'xml' }, /^oomguard: OOMGUARD_LOG_FORMAT="xml" is not valid \(json, text or none\); using the default \(json\)$/],
    [{ OOMGUARD_LAST_WORDS_STDERR: 'maybe' }, /^oomguard: OOMGUARD_LAST_WORDS_STDERR="maybe" is not valid/],
    [{ OOMGUARD_METRICS_PORT: 'http' }, /^oomguard: OOMGUARD_METRICS_PORT="http" is not valid \(a TCP port from 0 to 65535\); using the default \(no \/metrics server\)$/],
    [{ OOMGUARD_METRICS_PORT: '70000' }, /^oomguard: OOMGUARD_METRICS_PORT="70000" is not valid/],
    [{ OOMGUARD_MIN_INTERVAL_MS: '500', OOMGUARD_MAX_INTERVAL_MS: '100' }, /^oomguard: OOMGUARD_MAX_INTERVAL_MS="100" is not valid \(at least the minimum interval \(500 ms\)\)/],
    [{ OOMGUARD_ROOT: '/nonexistent/oomguard' }, /^oomguard: OOMGUARD_ROOT="\/nonexistent\/oomguard" is not valid/],
    // The last-words path is checked as watch() checks it: at start, with stat only.
    [
      { OOMGUARD_LAST_WORDS_PATH: '/nonexistent/oomguard/last-words' },
      /^oomguard: OOMGUARD_LAST_WORDS_PATH="\/nonexistent\/oomguard\/last-words" is not valid \(a file in an existing directory \(\/nonexistent\/oomguard: ENOENT\)\); using the default \(none\)$/,
    ],
    [{ OOMGUARD_LAST_WORDS_PATH: WORK }, /^oomguard: OOMGUARD_LAST_WORDS_PATH=".*" is not valid \(a file, not a directory\); using the default \(none\)$/],
    [{ OOMGUARD_THRESHOLDS: '0.8,,0.9' }, /^oomguard: OOMGUARD_THRESHOLDS="0\.8,,0\.9" is not valid/],
    [{ OOMGUARD_THRESHOLDS: '0x1' }, /^oomguard: OOMGUARD_THRESHOLDS="0x1" is not valid/],
    [{ OOMGUARD_HYSTERESIS: '0.9' }, /^oomguard: OOMGUARD_HYSTERESIS="0\.9" is not valid \(a ratio from 0 to 0\.5\)/],
    [{ OOMGUARD_MIN_INTERVAL_MS: 'Infinity' }, /^oomguard: OOMGUARD_MIN_INTERVAL_MS="Infinity" is not valid \(milliseconds from 0\.1 to 60000\); using the default \(1\)$/],
  ]
  for (const [env, line] of cases) {
    const r = spawnSync(process.execPath, ['-r', REGISTER_CJS, APP_CJS], {
      encoding: 'utf8',
      env: childEnv({ EXIT_AT_ONCE: '1', ...(env.OOMGUARD_ROOT ? {} : { OOMGUARD_ROOT: makeRoot() }), ...env }),
      timeout: 20_000,
    })
    const name = JSON.stringify(env)
    assert.equal(r.status, 0, `${name}: the service ran and exited normally\n${r.stderr}`)
    const lines = r.stderr.split('\n').filter(Boolean)
    assert.equal(lines.length, 1, `${name}: exactly one line\n${r.stderr}`)
    assert.match(lines[0], line)
    const info = JSON.parse(r.stdout)
    assert.equal(info.started, true, `${name}: the monitor still started`)
    assert.equal(info.server, false, `${name}: no server`)
    if (env.OOMGUARD_THRESHOLDS) assert.deepEqual(info.thresholds, [0.8, 0.9, 0.95])
    if (env.OOMGUARD_BASIS) assert.equal(info.basis, 'workingSet')
  }
  // Two bad variables: two lines.
  const r = spawnSync(process.execPath, ['-r', REGISTER_CJS, APP_CJS], {
    encoding: 'utf8',
    env: childEnv({ EXIT_AT_ONCE: '1', OOMGUARD_ROOT: makeRoot(), OOMGUARD_BASIS: 'x', OOMGUARD_LOG_FORMAT: 'y' }),
  })
  assert.equal(r.status, 0)
  assert.equal(r.stderr.split('\n').filter(Boolean).length, 2)
})

test('OOMGUARD_DISABLE=1 loads nothing', () => {
  const r = spawnSync(process.execPath, ['-r', REGISTER_CJS, APP_CJS], { encoding: 'utf8', env: childEnv({ EXIT_AT_ONCE: '1', OOMGUARD_DISABLE: '1' }) })
  assert.equal(r.status, 0, r.stderr)
  const info = JSON.parse(r.stdout)
  assert.equal(info.started, false)
  assert.equal(info.reason, 'OOMGUARD_DISABLE is set')
  assert.equal(info.monitors, 0)
  assert.equal(r.stderr, '')
})

test('the register never keeps a process alive: it exits when the app is done, /metrics server included', () => {
  for (const env of [{}, { OOMGUARD_METRICS_PORT: '0' }]) {
    const t0 = Date.now()
    const r = spawnSync(process.execPath, ['-r', REGISTER_CJS, '-e', 'console.log("done")'], {
      encoding: 'utf8',
      env: childEnv({ OOMGUARD_ROOT: makeRoot(), ...env }),
      timeout: 15_000,
    })
    assert.equal(r.status, 0, `${JSON.stringify(env)}: ${r.stderr}`)
    assert.equal(r.stdout, 'done\n')
    assert.ok(Date.now() - t0 < 10_000, 'exited on its own')
  }
})

// ---------------------------------------------------------------- start-up

// What is loaded when the main module starts (benchmark/startup.js measures
// what each costs): the package's modules in require.cache (.js files, by
// name, wherever under lib/), and whether node:http is.
const LOADED = `const path = require('node:path')
const lib = Object.keys(require.cache).filter((f) => f.startsWith(${JSON.stringify(path.join(REPO, 'lib') + path.sep)}) && f.endsWith('.js')).map((f) => path.basename(f)).sort()
const http = () => process.moduleLoadList.includes('NativeModule http')
const atMain = { lib, http: http() }
setImmediate(() => console.log(JSON.stringify({ atMain, httpByFirstTurn: http() })))`

test('start-up: before the main module, only the core is loaded; /metrics (node:http) comes on the first turn', () => {
  const run = (args, env) => {
    const r = spawnSync(process.execPath, [...args, '-e', LOADED], { encoding: 'utf8', env: childEnv({ OOMGUARD_ROOT: makeRoot(), ...env }), timeout: 20_000 })
    assert.equal(r.status, 0, r.stderr)
    return JSON.parse(r.stdout.split('\n').find((l) => l.startsWith('{"atMain"')))
  }
  // require('oomguard'): watch() and the addon; getMemoryMetrics()'s reader, the options and the integrations on first use.
  const req = run(['-r', path.join(REPO, 'lib', 'index.js')], {})
  assert.deepEqual(req.atMain.lib, ['index.js', 'loader.js', 'native.js', 'usage.js', 'watch.js'])
  assert.equal(req.atMain.http, false)
  // The preload with /metrics and last words: the options too (its variables), but no reader, no
  // heap profiler (until a threshold) and no node:http before the main module.
  const last = path.join(WORK, 'startup-last-words')
  const pre = run(['-r', REGISTER_CJS], { OOMGUARD_METRICS_PORT: '0', OOMGUARD_LAST_WORDS_PATH: last })
  assert.deepEqual(pre.atMain.lib, ['declared.js', 'loader.js', 'native.js', 'options.js', 'register.js', 'usage.js', 'watch.js'])
  assert.equal(pre.atMain.http, false, 'node:http is not loaded before the main module')
  assert.equal(pre.httpByFirstTurn, true, '/metrics started on the first turn')
})

// The same for an ES module main (main.mjs): what it sees when it runs, then
// (after the main module, whose loading takes several turns of the event
// loop) whether /metrics came and what had loaded by then.
const LOADED_ESM = `import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const path = require('node:path')
const loaded = () => Object.keys(require.cache).filter((f) => f.startsWith(${JSON.stringify(path.join(REPO, 'lib') + path.sep)}) && f.endsWith('.js')).map((f) => path.basename(f)).sort()
const http = () => process.moduleLoadList.includes('NativeModule http')
const state = globalThis[Symbol.for('oomguard.register')]
const atMain = { lib: loaded(), http: http(), server: state !== undefined && state.server !== null }
const t0 = Date.now()
const done = () => console.log(JSON.stringify({ atMain, metrics: state !== undefined && state.metricsAddress !== null, ms: Date.now() - t0, http: http(), later: loaded() }))
const wait = setInterval(() => {
  if (state === undefined || state.metricsAddress !== null || Date.now() - t0 > 10_000) {
    clearInterval(wait)
    done()
  }
}, 5)`

test('start-up with ES modules: import loads the core and the defaults, not the validator nor an integration; --import waits for the main module', () => {
  const main = path.join(WORK, 'startup-main.mjs')
  const run = (args, env, before = '', after = '') => {
    fs.writeFileSync(main, `${before}${LOADED_ESM}\n${after}`)
    const r = spawnSync(process.execPath, [...args, main], { encoding: 'utf8', env: childEnv({ OOMGUARD_ROOT: makeRoot(), ...env }), timeout: 20_000 })
    assert.equal(r.status, 0, r.stderr)
    return JSON.parse(r.stdout.split('\n').find((l) => l.startsWith('{"atMain"')))
  }
  // import 'oomguard' (lib/index.mjs): WATCH_DEFAULTS and SHED_DEFAULTS from lib/core/declared.js only.
  const esm = run([], {}, `import ${JSON.stringify(url.pathToFileURL(path.join(REPO, 'lib', 'index.mjs')).href)}\n`)
  assert.deepEqual(esm.atMain.lib, ['declared.js', 'index.js', 'loader.js', 'native.js', 'usage.js', 'watch.js'])
  assert.equal(esm.atMain.http, false)
  // --import oomguard/register with /metrics and last words: the preload's modules, and
  // node:http only after the main module has run (not while node's loader reads its files).
  const last = path.join(WORK, 'startup-last-words-esm')
  const pre = run(['--import', url.pathToFileURL(REGISTER_MJS).href], { OOMGUARD_METRICS_PORT: '0', OOMGUARD_LAST_WORDS_PATH: last })
  assert.deepEqual(pre.atMain.lib, ['declared.js', 'loader.js', 'native.js', 'options.js', 'register.js', 'usage.js', 'watch.js'])
  assert.equal(pre.atMain.http, false, 'node:http is not loaded before the main module')
  assert.equal(pre.atMain.server, false, '/metrics is not started before the main module')
  assert.equal(pre.metrics, true, '/metrics served once the main module has run')
  assert.equal(pre.http, true)
  assert.ok(!pre.later.includes('shed.js') && !pre.later.includes('prometheus.js'), pre.later.join(' '))
  // -r with an ES module main: node's loader starts after the preload; the same wait.
  const r = run(['-r', REGISTER_CJS], { OOMGUARD_METRICS_PORT: '0' })
  assert.deepEqual([r.atMain.http, r.atMain.server, r.metrics], [false, false, true])
  // A top-level await that outlasts the wait (1 s): /metrics comes while the main module still awaits.
  const tla = run(['--import', url.pathToFileURL(REGISTER_MJS).href], { OOMGUARD_METRICS_PORT: '0' }, '', 'await new Promise((resolve) => setTimeout(resolve, 4000))\n')
  assert.deepEqual([tla.atMain.http, tla.atMain.server, tla.metrics], [false, false, true])
  // Node 20 starts the first turn while its loader still reads the main module, so the work waits (up to 1 s);
  // Node 22 and 24 run the main module's body first, and the first turn comes during the await.
  const waits = Number(process.versions.node.split('.')[0]) === 20
  assert.ok(tla.ms < 3500 && (!waits || tla.ms >= 500), `served ${tla.ms} ms after the main module started, before its await ended`)
})

// ---------------------------------------------------------------- /metrics

/** TCP sockets the process `pid` listens on: [{ address (hex, as in /proc/net/tcp*), port }]. */
function listening(pid) {
  const inodes = new Set()
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (m) inodes.add(m[1])
    } catch {}
  }
  const out = []
  for (const table of ['tcp', 'tcp6']) {
    let text = ''
    try {
      text = fs.readFileSync(`/proc/${pid}/net/${table}`, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/)
      if (cols.length < 10 || cols[3] !== '0A' || !inodes.has(cols[9])) continue // 0A: LISTEN
      const [address, port] = cols[1].split(':')
      out.push({ table, address, port: parseInt(port, 16) })
    }
  }
  return out
}

function get(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${url} timed out`)))
  })
}

const HAS_EXPORTER = fs.existsSync(path.join(REPO, 'lib', 'integrations', 'prometheus.js'))

test('OOMGUARD_METRICS_PORT: /metrics on 127.0.0.1 only', { skip: HAS_EXPORTER ? false : 'lib/integrations/prometheus.js is not there (see the next test)' }, async (t) => {
  const root = makeRoot()
  const app = start(['-r', REGISTER_CJS, APP_CJS], { OOMGUARD_ROOT: root, OOMGUARD_METRICS_PORT: '0' })
  t.after(app.stop)
  const info = await app.ready()
  // Started after the main module, served by the app's first turn of the event loop.
  assert.equal(info.server, true, 'the server, by the first turn')
  assert.equal(info.listening, true, 'listening by the first turn')
  const announced = await app.waitFor('the metrics line', (o) => events(o, 'metrics')[0])
  assert.equal(announced.host, '127.0.0.1')
  assert.equal(announced.path, '/metrics')
  assert.equal(announced.pid, app.child.pid)
  assert.ok(announced.port > 0)

  // The kernel's view: one listening socket, on the loopback address only.
  assert.deepEqual(listening(app.child.pid), [{ table: 'tcp', address: '0100007F', port: announced.port }])

  const r = await get(`http://127.0.0.1:${announced.port}/metrics`)
  assert.equal(r.status, 200)
  assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  assert.match(r.body, /^# HELP /m)
  assert.match(r.body, /_memory_limit_bytes\{source="cgroup-v2"\} 268435456$/m, 'read from OOMGUARD_ROOT')
  assert.match(r.body, /_monitor_level 0$/m, "with the register's monitor")
  assert.equal((await get(`http://127.0.0.1:${announced.port}/other`)).status, 404)

  // The child still runs; end it by its pid.
  assert.equal(app.out.exited, null)
  process.kill(app.child.pid, 'SIGTERM')
  assert.deepEqual(await app.exited, { code: null, signal: 'SIGTERM' })
})

test('without OOMGUARD_METRICS_PORT nothing listens', async (t) => {
  const app = start(['-r', REGISTER_CJS, APP_CJS], { OOMGUARD_ROOT: makeRoot(), OOMGUARD_METRICS_HOST: '0.0.0.0' })
  t.after(app.stop)
  const info = await app.ready()
  assert.equal(info.started, true)
  assert.equal(info.server, false)
  assert.deepEqual(listening(app.child.pid), [])
  assert.deepEqual(app.out.stderr, [])
})

test('OOMGUARD_METRICS_HOST=0.0.0.0 binds every interface; a taken port is one line, and the service runs on', {
  skip: HAS_EXPORTER ? false : 'lib/integrations/prometheus.js is not there',
}, async (t) => {
  const a = start(['-r', REGISTER_CJS, APP_CJS], { OOMGUARD_ROOT: makeRoot(), OOMGUARD_METRICS_PORT: '0', OOMGUARD_METRICS_HOST: '0.0.0.0' })
  t.after(a.stop)
  await a.ready()
  const announced = await a.waitFor('the metrics line', (o) => events(o, 'metrics')[0])
  assert.equal(announced.host, '0.0.0.0')
  assert.deepEqual(listening(a.child.pid), [{ table: 'tcp', address: '00000000', port: announced.port }])

  const b = start(['-r', REGISTER_CJS, APP_CJS], { OOMGUARD_ROOT: makeRoot(), OOMGUARD_METRICS_PORT: String(announced.port), OOMGUARD_METRICS_HOST: '127.0.0.1' })
  t.after(b.stop)
  await b.ready()
  await b.waitFor('the error line', (o) => o.stderr.length >= 1)
  assert.deepEqual(b.out.stderr, [`oomguard: cannot serve /metrics on 127.0.0.1:${announced.port} (EADDRINUSE: pid ${a.child.pid} (node) holds it); the service runs on without it`])
  assert.equal(b.out.exited, null, 'still running')
})

test('a port a sibling oomguard serves (the same OOMGUARD_METRICS_PORT): no line', { skip: HAS_EXPORTER ? false : 'lib/integrations/prometheus.js is not there' }, async (t) => {
  const probe = http.createServer()
  await new Promise((r) => probe.listen(0, '127.0.0.1', r))
  const port = String(probe.address().port)
  await new Promise((r) => probe.close(r))
  const a = start(['-r', REGISTER_CJS, APP_CJS], { OOMGUARD_ROOT: makeRoot(), OOMGUARD_METRICS_PORT: port })
  t.after(a.stop)
  await a.ready()
  await a.waitFor('the metrics line', (o) => events(o, 'metrics')[0])
  const b = start(['-r', REGISTER_CJS, APP_CJS], { OOMGUARD_ROOT: makeRoot(), OOMGUARD_METRICS_PORT: port })
  t.after(b.stop)
  await b.ready()
  // The server's error comes a moment after the start (the taken-port test above sees its line by then).
  await new Promise((r) => setTimeout(r, 500))
  assert.deepEqual(b.out.stderr, [], 'nothing is wrong: a sibling oomguard serves /metrics there')
  assert.equal(b.out.exited, null)
})

test('the heap limit at or above the limit: one heap-limit line at start, with the NODE_OPTIONS fix; not for a child', async (t) => {
  const a = start(['-r', REGISTER_CJS, APP_CJS], { OOMGUARD_ROOT: makeRoot(), OOMGUARD_HEAP_WARNING: '1', NODE_OPTIONS: '--max-old-space-size=1000' })
  t.after(a.stop)
  await a.ready()
  const [line] = await a.waitFor('the heap-limit line', (o) => (events(o, 'heap-limit').length ? events(o, 'heap-limit') : null))
  assert.equal(line.code, 'HEAP_LIMIT_ABOVE_CONTAINER_LIMIT')
  assert.equal(line.limitBytes, LIMIT)
  assert.equal(line.nodeOptions, '--max-old-space-size=189', 'the old heap flag replaced')
  await new Promise((r) => setTimeout(r, 200))
  assert.equal(events(a.out, 'heap-limit').length, 1, 'once')
  // A child of that service (it inherits OOMGUARD_SERVICE_PID): no line, no record file, no port.
  const c = start(['-r', REGISTER_CJS, APP_CJS], { OOMGUARD_ROOT: makeRoot(), OOMGUARD_HEAP_WARNING: '1', OOMGUARD_SERVICE_PID: String(a.child.pid) })
  t.after(c.stop)
  const report = await c.ready()
  assert.deepEqual(report.role, { role: 'child', servicePid: a.child.pid })
  await new Promise((r) => setTimeout(r, 200))
  assert.deepEqual(events(c.out, 'heap-limit'), [])
})

test("npm, npx and oomguard's CLI are tools, not the service: nothing starts, not even a complaint", async (t) => {
  for (const [rel, name] of [
    ['npm/bin/npm-cli.js', 'npm'],
    ['npm/bin/npx-cli.js', 'npx'],
    ['oomguard/bin/oomguard.js', 'oomguard'],
  ]) {
    const script = path.join(WORK, 'tools', rel)
    fs.mkdirSync(path.dirname(script), { recursive: true })
    fs.writeFileSync(script, APP_BODY)
    // Started through a link named as the tool is (/usr/local/bin/npm -> .../npm-cli.js).
    const link = path.join(WORK, 'tools', `${name}-link`, name)
    fs.mkdirSync(path.dirname(link), { recursive: true })
    if (!fs.existsSync(link)) fs.symlinkSync(script, link)
    for (const argv1 of [script, link]) {
      const a = start(['-r', REGISTER_CJS, argv1], { OOMGUARD_ROOT: makeRoot(), OOMGUARD_THRESHOLDS: 'bad', EXIT_AT_ONCE: '1' })
      const report = await a.ready()
      await a.exited
      assert.equal(report.started, false, argv1)
      assert.equal(report.reason, `${name}: a tool, not the service`)
      assert.deepEqual(report.role, { role: 'tool', name })
      assert.equal(report.monitors, 0)
      assert.deepEqual(a.out.stderr, [], "not even the bad variable: it is the service's")
    }
  }
  // The real CLI of this checkout.
  const cli = spawnSync(process.execPath, ['-r', REGISTER_CJS, path.join(REPO, 'bin', 'oomguard.js'), '--help'], { env: childEnv({ OOMGUARD_THRESHOLDS: 'bad' }), encoding: 'utf8' })
  assert.equal(cli.status, 0)
  assert.equal(cli.stderr, '', 'the doctor starts no monitor')
})
