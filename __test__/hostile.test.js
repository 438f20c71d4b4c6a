'use strict'
// Hostile roots: trees built on the fly with FIFOs, /dev/zero, 10 MB of junk,
// directories, symlink loops, vanished files, paths that climb out of the
// root and a mountinfo line without super options where kernel files belong.
// Every public entry point that takes a root runs against each tree in a
// child process, under a hard timeout: it must return within 2 s, never
// abort (exit status and signal are checked), read nothing outside the root
// and say why (a diagnosis naming the file, or an `error` event).

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync, execFileSync } = require('node:child_process')

const REPO = path.join(__dirname, '..')
const FIXTURES = path.join(__dirname, 'fixtures')
const BIN = path.join(REPO, 'bin', 'oomguard.js')
// The work itself must finish within this.
const BUDGET_MS = 2000
// A child that has not exited by then is hung: it is killed and the test fails.
const HARD_TIMEOUT_MS = 20_000

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-hostile-'))
test.after(() => fs.rmSync(work, { recursive: true, force: true }))

// A file outside every root, where a path that climbs out would lead. Its
// value must never show up.
const outside = path.join(work, 'outside')
const PLANTED = 4242424242
fs.mkdirSync(path.join(outside, 'x'), { recursive: true })
for (const f of ['memory.current', 'memory.max', 'memory.usage_in_bytes', 'memory.limit_in_bytes']) {
  fs.writeFileSync(path.join(outside, 'x', f), `${PLANTED}\n`)
}
fs.writeFileSync(path.join(outside, 'x', 'memory.stat'), `anon ${PLANTED}\ninactive_file 0\n`)
const climb = '/..'.repeat(24) + outside // far enough up from any root

const LEAF = 'sys/fs/cgroup/fxcap/busy'
const MOUNTINFO_OK = fs.readFileSync(path.join(FIXTURES, 'v2-busy/proc/self/mountinfo'), 'utf8')

const fifo = (p) => execFileSync('mkfifo', [p])
const junk = (p) => fs.writeFileSync(p, Buffer.alloc(10 * 1024 * 1024, 'x'))

/**
 * The trees. `file` is the path (relative to the root) a diagnosis must name;
 * `says` what its message must match; `watch` is what a monitor on the tree
 * does: 'error' (the basis or the limit cannot be read: an `error` event),
 * or 'samples' (the cgroup is unusable but the host's numbers stand in, and
 * getMemoryMetrics() says why).
 */
const CASES = [
  { name: 'FIFO as memory.current', file: `${LEAF}/memory.current`, make: fifo, says: /a FIFO, not a regular file/, watch: 'error' },
  { name: 'FIFO as proc/self/cgroup', file: 'proc/self/cgroup', make: fifo, says: /a FIFO/, watch: 'samples' },
  { name: 'FIFO as proc/meminfo', file: 'proc/meminfo', make: fifo, says: /a FIFO/, watch: 'samples' },
  { name: 'FIFO as proc/self/mountinfo', file: 'proc/self/mountinfo', make: fifo, says: /a FIFO/, watch: 'samples' },
  { name: '/dev/zero linked as memory.stat', file: `${LEAF}/memory.stat`, make: (p) => fs.symlinkSync('/dev/zero', p), says: /character device/, watch: 'error' },
  { name: '10 MB of junk as memory.stat', file: `${LEAF}/memory.stat`, make: junk, says: /longer than 65536 bytes/, watch: 'error' },
  { name: '10 MB of junk as proc/self/mountinfo', file: 'proc/self/mountinfo', make: junk, says: /longer than 65536 bytes/, watch: 'samples' },
  { name: 'directory as memory.current', file: `${LEAF}/memory.current`, make: (p) => fs.mkdirSync(p), says: /Is a directory/, watch: 'error' },
  { name: 'directory as memory.max', file: `${LEAF}/memory.max`, make: (p) => fs.mkdirSync(p), says: /Is a directory/, watch: 'error' },
  {
    name: 'symlink loop as memory.max',
    file: `${LEAF}/memory.max`,
    make: (p) => {
      fs.symlinkSync('memory.max.loop', p)
      fs.symlinkSync('memory.max', `${p}.loop`)
    },
    says: /symbolic links/i,
    watch: 'error',
  },
  { name: 'vanished memory.current', file: `${LEAF}/memory.current`, make: () => {}, says: /No such file/, watch: 'error' },
  {
    name: 'cgroup path that climbs out of the root',
    file: 'proc/self/cgroup',
    make: (p) => fs.writeFileSync(p, `0::${climb}/x\n`),
    says: /climbs out of the root/,
    watch: 'samples',
  },
  {
    name: 'mount point that climbs out of the root',
    file: 'proc/self/mountinfo',
    make: (p) => fs.writeFileSync(p, MOUNTINFO_OK.replace(' /sys/fs/cgroup ', ` ${climb} `)),
    says: /climbs out of the root/,
    watch: 'samples',
    setup: (root) => fs.writeFileSync(path.join(root, 'proc/self/cgroup'), '0::/x\n'),
  },
  {
    name: 'mountinfo line without super options',
    file: 'proc/self/mountinfo',
    make: (p) => fs.writeFileSync(p, '1 2 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup\n'),
    says: /not a mountinfo line/,
    watch: 'samples',
  },
]

function slug(name) {
  return name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()
}

/** A copy of the v2-busy fixture with one file replaced. */
function build(c) {
  const root = fs.mkdtempSync(path.join(work, `${slug(c.name)}-`))
  fs.cpSync(path.join(FIXTURES, 'v2-busy'), root, { recursive: true })
  if (c.setup) c.setup(root)
  const target = path.join(root, c.file)
  fs.rmSync(target, { force: true })
  c.make(target)
  return root
}

/** Run `script` in a child node with `args`; never waits past the hard timeout. */
function child(args, opts = {}) {
  const started = process.hrtime.bigint()
  const r = spawnSync(process.execPath, args, {
    cwd: REPO,
    encoding: 'utf8',
    timeout: HARD_TIMEOUT_MS,
    killSignal: 'SIGKILL',
    env: { ...process.env, ...opts.env },
  })
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6
  return { ...r, wallMs }
}

function assertExited(r, what, allowed = [0]) {
  assert.equal(r.error, undefined, `${what}: ${r.error && r.error.message} (hung: killed after ${HARD_TIMEOUT_MS} ms)`)
  assert.equal(r.signal, null, `${what}: died of ${r.signal}; stderr: ${r.stderr}`)
  assert.ok(allowed.includes(r.status), `${what}: exit ${r.status}; stderr: ${r.stderr}`)
}

function lastJson(stdout) {
  const line = stdout.trim().split('\n').pop()
  return JSON.parse(line)
}

const METRICS_CHILD = `
const { getMemoryMetrics } = require('.')
const root = process.argv[1]
const t = process.hrtime.bigint()
const r = getMemoryMetrics(null, { root })
const ms = Number(process.hrtime.bigint() - t) / 1e6
const vanish = process.argv[2]
let after = null
if (vanish) {
  require('node:fs').rmSync(vanish, { recursive: true, force: true })
  after = getMemoryMetrics(null, { root })
}
console.log(JSON.stringify({ ms, r, after }))
`

function numbersOf(r) {
  const out = []
  const walk = (v) => {
    if (typeof v === 'number') out.push(v)
    else if (v && typeof v === 'object') Object.values(v).forEach(walk)
  }
  walk(r)
  return out
}

/** Inside the root: every path reported is under it, and no planted value leaks. */
function assertInside(r, root, what) {
  if (r.cgroup) {
    assert.ok(r.cgroup.dir.startsWith(root + path.sep), `${what}: cgroup.dir ${r.cgroup.dir}`)
    assert.ok(r.cgroup.mountPoint.startsWith(root + path.sep), `${what}: cgroup.mountPoint ${r.cgroup.mountPoint}`)
  }
  for (const d of r.diagnoses) {
    if (d.path !== null && d.path.startsWith('/')) {
      assert.ok(d.path.startsWith(root + path.sep), `${what}: diagnosis path ${d.path}`)
    }
  }
  assert.ok(!numbersOf(r).includes(PLANTED), `${what}: a value from outside the root`)
}

for (const c of CASES) {
  test(`hostile root, ${c.name}: getMemoryMetrics() returns, stays inside and says why`, () => {
    const root = build(c)
    const r = child(['-e', METRICS_CHILD, root])
    assertExited(r, 'getMemoryMetrics')
    const { ms, r: m } = lastJson(r.stdout)
    assert.ok(ms < BUDGET_MS, `took ${ms} ms`)
    assertInside(m, root, c.name)
    const file = path.join(root, c.file)
    const why = m.diagnoses.find((d) => d.message.includes(file))
    assert.ok(why, `a diagnosis names ${file}: ${JSON.stringify(m.diagnoses.map((d) => d.message))}`)
    assert.match(why.message, c.says)
    assert.ok(['CGROUP_FILE_UNREADABLE', 'CGROUP_UNRESOLVED'].includes(why.code), why.code)
    if (why.code === 'CGROUP_FILE_UNREADABLE') assert.equal(why.path, file, 'the path is the file')
    if (c.file.startsWith('proc/self/')) {
      assert.equal(why.code, 'CGROUP_UNRESOLVED')
      assert.equal(why.path, file, 'the path is the file')
      assert.equal(m.cgroup, null, 'no cgroup is claimed')
    }
  })

  test(`hostile root, ${c.name}: oomguard doctor --root exits with its own codes and names the file`, () => {
    const root = build(c)
    const start = child(['-e', '0'])
    const r = child([BIN, 'doctor', '--root', root, '--json'])
    assertExited(r, 'doctor', [0, 1])
    assert.ok(r.wallMs < BUDGET_MS + 2 * start.wallMs + 500, `doctor took ${r.wallMs} ms (node itself ${start.wallMs} ms)`)
    const report = JSON.parse(r.stdout)
    assert.ok(JSON.stringify(report.diagnoses).includes(path.join(root, c.file)), 'the report names the file')
  })
}

const WATCH_CHILD = `
const { watch } = require('.')
const [root, expect] = process.argv.slice(1)
const out = { errors: [] }
const ms = (t) => Number(process.hrtime.bigint() - t) / 1e6
let t = process.hrtime.bigint()
const m = watch({ root, minIntervalMs: 5, maxIntervalMs: 50, lastWords: false })
out.startMs = ms(t)
m.on('error', (e) => out.errors.push(e.message))
const deadline = Date.now() + 2000
const poll = () => {
  const done = expect === 'error' ? out.errors.length > 0 : m.current.samples > 0
  if (!done && Date.now() < deadline) return setTimeout(poll, 5)
  out.samples = m.current.samples
  out.waitedMs = 2000 - (deadline - Date.now())
  t = process.hrtime.bigint()
  m.close()
  out.closeMs = ms(t)
  // The sampler must still serve a monitor on the real root afterwards.
  const live = watch({ minIntervalMs: 5, maxIntervalMs: 50, lastWords: false })
  const until = Date.now() + 2000
  const again = () => {
    if (live.current.samples === 0 && Date.now() < until) return setTimeout(again, 5)
    out.liveSamples = live.current.samples
    t = process.hrtime.bigint()
    live.close()
    out.liveCloseMs = ms(t)
    console.log(JSON.stringify(out))
  }
  again()
}
poll()
`

for (const c of CASES) {
  test(`hostile root, ${c.name}: watch() returns, ${c.watch === 'error' ? 'emits error' : 'samples the host'}, close() returns, / still samples`, () => {
    const root = build(c)
    const r = child(['-e', WATCH_CHILD, root, c.watch])
    assertExited(r, 'watch')
    const out = lastJson(r.stdout)
    assert.ok(out.startMs < BUDGET_MS, `watch() took ${out.startMs} ms`)
    assert.ok(out.closeMs < BUDGET_MS, `close() took ${out.closeMs} ms`)
    if (c.watch === 'error') {
      assert.ok(out.errors.length > 0, `an error event within 2 s (waited ${out.waitedMs} ms)`)
      assert.ok(
        out.errors.some((e) => e.includes(path.join(root, c.file))),
        `the error names ${c.file}: ${out.errors.join(' | ')}`,
      )
    } else {
      assert.ok(out.samples > 0, `samples within 2 s: ${JSON.stringify(out)}`)
    }
    assert.ok(out.liveSamples > 0, 'a later monitor on / still takes samples')
    assert.ok(out.liveCloseMs < BUDGET_MS, `its close() took ${out.liveCloseMs} ms`)
  })
}

test('hostile root: the cgroup directory vanishes between two readings', () => {
  const root = fs.mkdtempSync(path.join(work, 'vanishing-'))
  fs.cpSync(path.join(FIXTURES, 'v2-busy'), root, { recursive: true })
  const r = child(['-e', METRICS_CHILD, root, path.join(root, LEAF)])
  assertExited(r, 'getMemoryMetrics')
  const { r: before, after } = lastJson(r.stdout)
  assert.equal(before.usageBytes, 181149696)
  assert.equal(after.usageBytes, null, 'no stale number')
  assertInside(after, root, 'vanished')
  assert.ok(
    after.diagnoses.some((d) => d.code === 'CGROUP_UNRESOLVED' || d.code === 'CGROUP_FILE_UNREADABLE'),
    JSON.stringify(after.diagnoses),
  )
})

test('a panic inside a reading is contained: the part is null and a diagnosis names it', () => {
  const r = child(['-e', METRICS_CHILD, path.join(FIXTURES, 'v2-busy')], { env: { OOMGUARD_FAILPOINT: 'parse:memory.stat' } })
  assertExited(r, 'getMemoryMetrics')
  const { r: m } = lastJson(r.stdout)
  assert.equal(m.stat, null)
  assert.equal(m.usageBytes, 181149696, 'the other files are still read')
  const d = m.diagnoses.find((x) => x.code === 'CGROUP_FILE_UNREADABLE' && x.path.endsWith('memory.stat'))
  assert.ok(d, JSON.stringify(m.diagnoses))
  assert.match(d.message, /internal error \(a bug in oomguard\)/)
})

test('a panic in getMemoryMetrics() is a JS error, and the next call works', () => {
  const script = `
const { getMemoryMetrics } = require('.')
let thrown = null
try { getMemoryMetrics(null, { root: process.argv[1] }) } catch (e) { thrown = e.message }
console.log(JSON.stringify({ thrown, alive: true }))
`
  const r = child(['-e', script, path.join(FIXTURES, 'v2-busy')], { env: { OOMGUARD_FAILPOINT: 'sample' } })
  assertExited(r, 'getMemoryMetrics')
  const out = lastJson(r.stdout)
  assert.match(out.thrown, /internal error \(a bug in oomguard\) in sample/)
  assert.equal(out.alive, true)
})

test('a read stuck on one root never makes another root wait (no lock across a read)', () => {
  // Workers hammer a root full of hostile files while the main thread reads /.
  const root = build({ ...CASES[0], name: 'busy-hostile' })
  const script = `
const { Worker } = require('node:worker_threads')
const { getMemoryMetrics } = require('.')
const root = process.argv[1]
const code = "const { getMemoryMetrics } = require(" + JSON.stringify(process.cwd()) + "); const end = Date.now() + 500; while (Date.now() < end) getMemoryMetrics(null, { root: " + JSON.stringify(root) + " })"
const workers = [0, 1].map(() => new Worker(code, { eval: true }))
let worst = 0
const end = Date.now() + 500
while (Date.now() < end) {
  const t = process.hrtime.bigint()
  getMemoryMetrics()
  worst = Math.max(worst, Number(process.hrtime.bigint() - t) / 1e6)
}
Promise.all(workers.map((w) => new Promise((res) => w.on('exit', res)))).then(() => console.log(JSON.stringify({ worst })))
`
  const r = child(['-e', script, root])
  assertExited(r, 'workers')
  const { worst } = lastJson(r.stdout)
  assert.ok(worst < BUDGET_MS, `the slowest plain getMemoryMetrics() took ${worst} ms`)
})

// A v1 root: the sampler registers usage thresholds by writing to
// cgroup.event_control, which no reader ever reads. A FIFO there blocked the
// sampler thread in open(2) (and close() joined it forever); a symlink there
// received the registration write. Neither may happen.
const V1_LEAF = 'sys/fs/cgroup/memory/kubepods.slice/pod7f3a/fxcap/busy'

const V1_WATCH_CHILD = `
const { watch } = require('.')
const root = process.argv[1]
const ms = (t) => Number(process.hrtime.bigint() - t) / 1e6
let t = process.hrtime.bigint()
const m = watch({ root, thresholds: [0.5, 0.9], minIntervalMs: 5, maxIntervalMs: 50, lastWords: false })
const startMs = ms(t)
const deadline = Date.now() + 2000
const poll = () => {
  if (m.current.samples < 3 && Date.now() < deadline) return setTimeout(poll, 5)
  const samples = m.current.samples
  t = process.hrtime.bigint()
  m.close()
  console.log(JSON.stringify({ startMs, samples, closeMs: ms(t) }))
}
poll()
`

for (const [name, make] of [
  ['FIFO as cgroup.event_control', fifo],
  ['cgroup.event_control linked to a file outside the root', (p) => fs.symlinkSync(path.join(outside, 'victim'), p)],
]) {
  test(`hostile v1 root, ${name}: watch() samples and close() returns; nothing is written`, () => {
    const root = fs.mkdtempSync(path.join(work, `${slug(name)}-`))
    fs.cpSync(path.join(FIXTURES, 'v1-hybrid-busy'), root, { recursive: true })
    const victim = path.join(outside, 'victim')
    fs.writeFileSync(victim, 'untouched\n')
    make(path.join(root, V1_LEAF, 'cgroup.event_control'))
    const r = child(['-e', V1_WATCH_CHILD, root])
    assertExited(r, 'watch')
    const out = lastJson(r.stdout)
    assert.ok(out.startMs < BUDGET_MS, `watch() took ${out.startMs} ms`)
    assert.ok(out.samples >= 3, `the sampler runs: ${out.samples} samples`)
    assert.ok(out.closeMs < BUDGET_MS, `close() took ${out.closeMs} ms`)
    assert.equal(fs.readFileSync(victim, 'utf8'), 'untouched\n', 'no registration written through the link')
  })
}
