'use strict'
// Where the memory went: V8's sampling heap profiler behind a monitor
// (lib/core/heap-profile.js). A fixture tree moves a monitor across its
// thresholds in a child node with a leak in a named function: the events,
// the flight record and the pprof files name it. Real kernel kills:
// __test__/heap-kills.test.js.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const h = require('./helpers/cgroup')
const hp = require('../lib/core/heap-profile.js')
const options = require('../lib/core/options.js')
const { lineOf, pprofTop, goPprofTop, EXPECTED_ROUTE } = require('./helpers/heap-leak-run')

const FIXTURE_CHILD = path.join(__dirname, 'helpers', 'heap-fixture-child.js')
const BUSY = path.join(__dirname, 'fixtures', 'v2-busy')

// ------------------------------------------------------------------ units

test('topSites: live bytes grouped by allocating function, heaviest first, with shares and callers', () => {
  const cf = (functionName, url, lineNumber) => ({ functionName, url, lineNumber, columnNumber: 4, scriptId: '1' })
  const profile = {
    head: {
      callFrame: cf('(root)', '', -1),
      selfSize: 0,
      id: 1,
      children: [
        {
          callFrame: cf('handler', 'file:///srv/app.js', 9),
          selfSize: 100,
          id: 2,
          children: [
            { callFrame: cf('leak', 'file:///srv/app.js', 2), selfSize: 600, id: 3, children: [] },
            { callFrame: cf('', 'file:///srv/lib.js', 0), selfSize: 50, id: 4, children: [] },
          ],
        },
        { callFrame: cf('other', 'file:///srv/app.js', 20), selfSize: 0, id: 5, children: [{ callFrame: cf('leak', 'file:///srv/app.js', 2), selfSize: 250, id: 6, children: [] }] },
      ],
    },
    samples: [],
  }
  const { sampledBytes, sites } = hp.topSites(profile, 3, 2)
  assert.equal(sampledBytes, 1000)
  assert.deepEqual(
    sites.map((s) => [s.functionName, s.file, s.line, s.column, s.bytes, s.share]),
    [
      ['leak', '/srv/app.js', 3, 5, 850, 0.85],
      ['handler', '/srv/app.js', 10, 5, 100, 0.1],
      ['(anonymous)', '/srv/lib.js', 1, 5, 50, 0.05],
    ],
  )
  assert.deepEqual(sites[0].stack, ['handler (/srv/app.js:10:5)'], 'the callers of the heaviest stack, nearest first, (root) left out')
})

test("the record's candidates: valid JSON members, longest first, each well under the line's 2048 bytes, whatever the names", () => {
  const long = 'x'.repeat(5000)
  const summary = {
    isolate: 'worker 7',
    takenAt: new Date(0).toISOString(),
    sinceMs: 1,
    intervalBytes: 524288,
    pauseMs: 3,
    sampledBytes: 10,
    heapUsedBytes: 20,
    outsideHeapBytes: 30,
    file: `/${long}/f.pb.gz`,
    sites: Array.from({ length: 10 }, (_, i) => ({ functionName: `${long}"\n${i}`, file: `/${long}/a.js`, line: 1, column: 2, bytes: 5, share: 0.5, stack: [long, long, long, long] })),
  }
  // Names of ordinary length: every shape, 5 sites down to none, and the Buffers' sites down to none.
  const ordinary = summary.sites.map((s) => ({ ...s, functionName: 'leak', file: 'app.js', stack: ['handler (app.js:9:1)'] }))
  const plain = hp.candidates({ ...summary, file: '/p/f.pb.gz', sites: ordinary, buffers: { sampledBytes: 40, sites: ordinary } })
  assert.deepEqual(
    plain.map((c) => JSON.parse(`{${c}}`).heapProfile.sites.length),
    [5, 3, 1, 1, 1, 0],
  )
  assert.deepEqual(
    plain.map((c) => JSON.parse(`{${c}}`).heapProfile.buffers?.sites.length ?? 0),
    [3, 2, 1, 1, 0, 0],
  )
  // No Buffer sampled: no member for it (a record's line has no bytes to spare).
  assert.ok(hp.candidates({ ...summary, sites: ordinary, buffers: { sampledBytes: 0, sites: [] } }).every((c) => !c.includes('"buffers"')))
  // At their longest the bigger shapes are left out, never one site and none; the one site alone is short.
  const list = hp.candidates({ ...summary, buffers: { sampledBytes: 40, sites: summary.sites } })
  assert.deepEqual(
    list.slice(-2).map((c) => JSON.parse(`{${c}}`).heapProfile.sites.length),
    [1, 0],
  )
  assert.ok(Buffer.byteLength(list.at(-2)) < Buffer.byteLength(list.at(-1)) + 200, `one site in ${Buffer.byteLength(list.at(-2)) - Buffer.byteLength(list.at(-1))} more bytes`)
  for (let i = 0; i < list.length; i++) {
    assert.ok(list[i].startsWith('"heapProfile":{'))
    assert.ok(Buffer.byteLength(list[i]) < 1400, `${Buffer.byteLength(list[i])} bytes`)
    assert.ok(!/[\u0000-\u001f]/.test(list[i]), 'one line')
    const v = JSON.parse(`{${list[i]}}`).heapProfile
    assert.equal(v.covers, 'v8-heap')
    if (i > 0) assert.ok(list[i].length <= list[i - 1].length)
  }
})

test('heapProfile options: modes, object form, environment; bad values named', () => {
  assert.equal(options.watchConfig({}).heapProfile.start, 'threshold')
  assert.equal(options.watchConfig({ heapProfile: 'start' }).heapProfile.start, 'start')
  assert.equal(options.watchConfig({ heapProfile: false }).heapProfile.start, 'off')
  assert.equal(options.watchConfig({ heapProfile: { intervalBytes: 65536 } }).heapProfile.intervalBytes, 65536)
  assert.throws(() => options.watchConfig({ heapProfile: 'always' }), /options\.heapProfile\.start must be one of 'threshold', 'start', 'off'/)
  assert.throws(() => options.watchConfig({ heapProfile: { intervalBytes: 10 } }), /options\.heapProfile\.intervalBytes/)
  assert.throws(() => options.watchConfig({ heapProfile: { dir: '/nonexistent/oomguard' } }), /options\.heapProfile\.dir must be an existing directory/)
  const inherited = Object.create({ start: 'start' })
  assert.equal(options.watchConfig({ heapProfile: inherited }).heapProfile.start, 'threshold', 'own properties only')
  const { settings, problems } = options.parseEnv({ OOMGUARD_HEAP_PROFILE: 'Start', OOMGUARD_HEAP_PROFILE_DIR: os.tmpdir(), OOMGUARD_HEAP_PROFILE_INTERVAL: 'lots' })
  assert.deepEqual(settings.watch.heapProfile, { start: 'start', dir: os.tmpdir() })
  assert.equal(problems.length, 1)
  assert.match(problems[0], /^OOMGUARD_HEAP_PROFILE_INTERVAL="lots" is not valid/)
})

test('the pprof directory is kept to its count and bytes, oldest first out; stale temp files of other processes go', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-prune-'))
  try {
    for (let i = 0; i < 6; i++) {
      const f = path.join(dir, `oomguard-heap-1-main-x-${i}-level1.pb.gz`)
      fs.writeFileSync(f, Buffer.alloc(1000))
      fs.utimesSync(f, 1000 + i, 1000 + i)
    }
    fs.writeFileSync(path.join(dir, 'unrelated.txt'), 'keep')
    fs.writeFileSync(path.join(dir, '.oomguard-heap-999999999-main-1.tmp'), 'stale')
    hp.prune(dir, 4, 1e9)
    assert.deepEqual(fs.readdirSync(dir).sort(), [
      'oomguard-heap-1-main-x-2-level1.pb.gz',
      'oomguard-heap-1-main-x-3-level1.pb.gz',
      'oomguard-heap-1-main-x-4-level1.pb.gz',
      'oomguard-heap-1-main-x-5-level1.pb.gz',
      'unrelated.txt',
    ])
    hp.prune(dir, 100, 2500)
    assert.deepEqual(fs.readdirSync(dir).sort(), ['oomguard-heap-1-main-x-4-level1.pb.gz', 'oomguard-heap-1-main-x-5-level1.pb.gz', 'unrelated.txt'])
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

// ------------------------------------------------------------------ a fixture tree, a child node

/** Run the fixture child with `start`; returns its events, the record text and the pprof files. */
function runFixtureChild(t, start, env = process.env) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-hp-'))
  t.after(() => fs.rmSync(root, { recursive: true, force: true }))
  fs.cpSync(BUSY, root, { recursive: true })
  const dir = path.join(root, 'profiles')
  fs.mkdirSync(dir)
  const lw = path.join(root, 'termination-log')
  const r = spawnSync(process.execPath, [FIXTURE_CHILD, root, path.join(root, 'sys/fs/cgroup/fxcap/busy'), lw, dir, h.REPO_ROOT, start], { encoding: 'utf8', timeout: 60_000, env })
  const desc = `exit ${r.status} ${r.signal}\n${r.stdout}\n${r.stderr}`
  assert.equal(r.status, 0, desc)
  return { events: h.parsePrefixed(r.stdout, 'OOMGUARD_HP '), text: fs.readFileSync(lw, 'utf8'), files: fs.readdirSync(dir).map((f) => path.join(dir, f)), desc, lw }
}

/** heapProfile 'start' on a fixture tree, read through `route`: the events, the record and the files name the leak. */
function checkStart(t, route, env) {
  const r = runFixtureChild(t, 'start', env)
  const line = lineOf(FIXTURE_CHILD, 'function hoardFixtures')
  const levels = r.events.filter((e) => e.kind === 'threshold')
  assert.deepEqual(
    levels.map((e) => e.level),
    [1, 2, 3],
    r.desc,
  )
  for (const e of levels) {
    const top = e.heapProfile.sites[0]
    assert.equal(e.heapProfile.isolate, 'main')
    assert.equal(e.heapProfile.route, route)
    assert.equal(top.functionName, 'hoardFixtures', JSON.stringify(e.heapProfile))
    assert.equal(top.file, '__test__/helpers/heap-fixture-child.js')
    assert.equal(top.line, line, "the function's line: V8's sampler records functions, not lines")
    assert.ok(top.share >= 0.5, `share ${top.share}`)
    assert.ok(e.heapProfile.pauseMs >= 0 && e.heapProfile.sampledBytes > 0)
    assert.ok(e.heapProfile.skipped === null || e.heapProfile.skipped === 'rate', e.heapProfile.skipped)
    assert.ok(e.heapProfile.file && fs.existsSync(e.heapProfile.file), `level ${e.level}: ${e.heapProfile.file}`)
  }
  // The record: one line under the log's 2048 bytes, its last member the sites.
  assert.ok(Buffer.byteLength(r.text.trimEnd()) < 2048, `${Buffer.byteLength(r.text)} bytes`)
  const rec = JSON.parse(r.text)
  assert.equal(Object.keys(rec).at(-1), 'heapProfile')
  assert.equal(rec.heapProfile.sites[0].fn, 'hoardFixtures')
  assert.equal(rec.heapProfile.sites[0].at, `__test__/helpers/heap-fixture-child.js:${line}:${levels[2].heapProfile.sites[0].column}`)
  assert.ok(rec.heapProfile.sites[0].share >= 0.5)
  assert.equal(rec.heapProfile.covers, 'v8-heap')
  // The Buffers' own sites (sampled apart from V8's heap): the leak of 40 MiB of Buffers, at its function.
  // 640 Buffers of 64 KiB, each sampled with chance 1 - e^(-64/512): about 75 samples, a standard
  // deviation of 11%; 40% is beyond 3.5 of them (20 MiB, 38 samples, was 27.9 MiB once in CI: 2.3).
  // Its line is the allocating call's (a JavaScript stack), not the function's start as V8's heap sites give.
  const uploads = lineOf(FIXTURE_CHILD, 'uploads.push(Buffer.alloc(')
  for (const e of levels.slice(1)) {
    const b = e.heapProfile.buffers
    assert.ok(b && b.sites.length > 0, JSON.stringify(e.heapProfile.buffers))
    assert.equal(b.sites[0].functionName, 'hoardUploads')
    assert.equal(b.sites[0].line, uploads)
    assert.ok(Math.abs(b.sampledBytes - 40 * 1048576) < 0.4 * 40 * 1048576, `Buffers sampled ${b.sampledBytes}`)
  }
  assert.equal(rec.heapProfile.buffers.sites[0].fn, 'hoardUploads')
  assert.equal(rec.heapProfile.route, route)
  assert.ok(rec.heapProfile.outsideHeapBytes > 0)
  assert.equal(rec.heapProfile.file, levels[2].heapProfile.file, "the record names the last level's file")
  // A file per level, none left under a temporary name; each names the leak.
  assert.equal(r.files.length, 3, r.files.join('\n'))
  for (const f of r.files) {
    assert.match(path.basename(f), /^oomguard-heap-\d+-main-.*-level[123]\.pb\.gz$/)
    const { top, labels } = pprofTop(f)
    assert.equal(top[0][0], 'hoardFixtures', f)
    assert.equal(labels.isolate, 'main')
    assert.match(labels.event, /^level[123]$/)
  }
  const labels3 = pprofTop(rec.heapProfile.file).labels
  assert.equal(labels3.verdict, rec.verdict, "the last file is labelled with the record's verdict")
  const go = goPprofTop(t, rec.heapProfile.file)
  if (go !== null) assert.equal(go.name, 'hoardFixtures', go.text)
}

test("heapProfile 'start' on a fixture tree: every level's event, the record and a pprof file per level name the leaking function", { timeout: 120_000 }, (t) => {
  checkStart(t, EXPECTED_ROUTE, process.env)
})

test("the same through node:inspector (the route where V8's own is not checked; forced with OOMGUARD_HEAP_PROFILE_ROUTE=inspector)", { timeout: 120_000 }, (t) => {
  checkStart(t, 'inspector', { ...process.env, OOMGUARD_HEAP_PROFILE_ROUTE: 'inspector' })
})

test("heapProfile 'threshold' (the default): nothing sampled below the first threshold; sampling starts there", { timeout: 120_000 }, async (t) => {
  const r = runFixtureChild(t, 'threshold')
  const levels = r.events.filter((e) => e.kind === 'threshold')
  assert.deepEqual(
    levels.map((e) => e.level),
    [1, 2, 3],
    r.desc,
  )
  assert.equal(levels[0].heapProfile.skipped, 'just-started')
  assert.deepEqual(levels[0].heapProfile.sites, [])
  // Level 2 comes after more of the leak: the growth since the first threshold.
  assert.equal(levels[1].heapProfile.sites[0].functionName, 'hoardFixtures', JSON.stringify(levels[1].heapProfile))
  assert.equal(JSON.parse(r.text).heapProfile.sites[0].fn, 'hoardFixtures')
})

test("heapProfile 'off': no sites, no sampling, no key in the record", { timeout: 120_000 }, async (t) => {
  const r = runFixtureChild(t, 'off')
  const levels = r.events.filter((e) => e.kind === 'threshold')
  assert.deepEqual(
    levels.map((e) => e.level),
    [1, 2, 3],
    r.desc,
  )
  for (const e of levels) assert.equal(e.heapProfile, null)
  assert.equal(JSON.parse(r.text).heapProfile, undefined)
  assert.deepEqual(r.files, [])
})

test('closing the last monitor stops the sampling without reading a profile (no full GC on a clean exit)', { timeout: 60_000 }, (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-hpclose-'))
  t.after(() => fs.rmSync(root, { recursive: true, force: true }))
  fs.cpSync(BUSY, root, { recursive: true })
  const code = `
    const oomguard = require(${JSON.stringify(h.REPO_ROOT)})
    const hp = require(${JSON.stringify(path.join(h.REPO_ROOT, 'lib', 'core', 'heap-profile.js'))})
    const m = oomguard.watch({ root: ${JSON.stringify(root)}, lastWords: false, heapProfile: { start: 'start', route: process.env.OOMGUARD_HEAP_PROFILE_ROUTE || 'auto' } })
    globalThis.keep = []
    while (process.memoryUsage().heapUsed < 150 * 1048576) { const a = new Array(10000); for (let i = 0; i < a.length; i++) a[i] = { i, s: 'k' + i }; keep.push(a) }
    const sampling = hp.info().sampling
    const t0 = process.hrtime.bigint(); global.gc(); const gcMs = Number(process.hrtime.bigint() - t0) / 1e6
    const t1 = process.hrtime.bigint(); m.close(); const closeMs = Number(process.hrtime.bigint() - t1) / 1e6
    console.log(JSON.stringify({ sampling, after: hp.info().sampling, gcMs, closeMs }))`
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', code], { encoding: 'utf8', timeout: 50_000 })
  assert.equal(r.status, 0, r.stderr)
  const x = JSON.parse(r.stdout)
  assert.equal(x.sampling, true)
  assert.equal(x.after, false)
  // A full GC of this heap takes about 500 ms here; stopping the sampling takes well under a millisecond.
  assert.ok(x.closeMs < x.gcMs / 3, `close took ${x.closeMs} ms, a full GC ${x.gcMs} ms`)
  t.diagnostic(`close ${x.closeMs.toFixed(1)} ms; a full GC of the same 150 MiB heap ${x.gcMs.toFixed(0)} ms`)
})

test("another heap profiler already sampling (@datadog/pprof's): read, not restarted, and still running after the monitor closes", { timeout: 60_000 }, (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-hppeer-'))
  t.after(() => fs.rmSync(root, { recursive: true, force: true }))
  fs.cpSync(BUSY, root, { recursive: true })
  const code = `
    const pprof = require(${JSON.stringify(path.join(h.REPO_ROOT, 'node_modules', '@datadog', 'pprof'))})
    pprof.heap.start(524288, 64)
    const oomguard = require(${JSON.stringify(h.REPO_ROOT)})
    const hp = require(${JSON.stringify(path.join(h.REPO_ROOT, 'lib', 'core', 'heap-profile.js'))})
    globalThis.keep = []
    function peerHoard() { for (let i = 0; i < 300000; i++) keep.push({ i, s: 'p' + i }) }
    peerHoard()
    const m = oomguard.watch({ root: ${JSON.stringify(root)}, lastWords: false, heapProfile: { start: 'start', route: process.env.OOMGUARD_HEAP_PROFILE_ROUTE || 'auto' } })
    const info = hp.info()
    m.close()
    peerHoard()
    const names = []
    const walk = (n) => { if (n.allocations.length) names.push(n.name); n.children.forEach(walk) }
    walk(pprof.heap.v8Profile())
    console.log(JSON.stringify({ sampling: info.sampling, peer: info.peer, peerStillRuns: names.includes('peerHoard') }))`
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 50_000 })
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(JSON.parse(r.stdout), { sampling: true, peer: true, peerStillRuns: true })
})

// ------------------------------------------------------------------ the two routes

/**
 * A child node with a monitor sampling from the start, a heap of `mib` MiB
 * of small live objects, then one refresh of the sites (a read): the route,
 * the read's pause, and the full (mark-compact) collections that ran during it.
 */
function readAtHeap(t, mib, env) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-hppause-'))
  t.after(() => fs.rmSync(root, { recursive: true, force: true }))
  fs.cpSync(BUSY, root, { recursive: true })
  const code = `
    const { PerformanceObserver, performance, constants } = require('node:perf_hooks')
    const oomguard = require(${JSON.stringify(h.REPO_ROOT)})
    const hp = require(${JSON.stringify(path.join(h.REPO_ROOT, 'lib', 'core', 'heap-profile.js'))})
    const m = oomguard.watch({ root: ${JSON.stringify(root)}, lastWords: false, heapProfile: { start: 'start', route: process.env.OOMGUARD_HEAP_PROFILE_ROUTE || 'auto' } })
    globalThis.keep = []
    function hoardPause() { const a = new Array(10000); for (let i = 0; i < a.length; i++) a[i] = { i, s: 'k' + i + '-' + keep.length }; keep.push(a) }
    while (process.memoryUsage().heapUsed < ${mib} * 1048576) hoardPause()
    const majors = []
    new PerformanceObserver((list) => { for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors.push([e.startTime, e.duration]) }).observe({ entryTypes: ['gc'] })
    setTimeout(() => {
      const t0 = performance.now()
      hp.refresh(() => 1, () => null)
      const t1 = performance.now()
      const info = hp.info()
      setTimeout(() => {
        m.close()
        const during = majors.filter(([s]) => s >= t0 - 1 && s <= t1)
        console.log(JSON.stringify({ route: info.route, routeNote: info.routeNote, lastPauseMs: info.lastPauseMs, wallMs: t1 - t0, majorGcs: during.length, heapMiB: Math.round(process.memoryUsage().heapUsed / 1048576) }))
      }, 50)
    }, 600)`
  const r = spawnSync(process.execPath, ['--max-old-space-size=2048', '-e', code], { encoding: 'utf8', timeout: 90_000, env })
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout)
}

test('a read at a ~200 MiB heap: the V8 route pauses a few ms and runs no full GC; the inspector forces one', { timeout: 120_000 }, (t) => {
  const v8 = readAtHeap(t, 200, process.env)
  const insp = readAtHeap(t, 200, { ...process.env, OOMGUARD_HEAP_PROFILE_ROUTE: 'inspector' })
  t.diagnostic(
    `node ${process.version}: ${v8.route} ${v8.lastPauseMs.toFixed(1)} ms (${v8.majorGcs} full GCs), inspector ${insp.lastPauseMs.toFixed(0)} ms (${insp.majorGcs} full GCs), heap ${v8.heapMiB} / ${insp.heapMiB} MiB`,
  )
  assert.equal(insp.route, 'inspector')
  assert.equal(insp.routeNote, "heapProfile.route is 'inspector'")
  // The control: the inspector's read is a full GC, seen by the observer.
  assert.ok(insp.majorGcs >= 1, JSON.stringify(insp))
  assert.equal(v8.route, EXPECTED_ROUTE, JSON.stringify(v8))
  if (EXPECTED_ROUTE !== 'v8') return
  assert.equal(v8.routeNote, null)
  assert.ok(v8.lastPauseMs > 0 && v8.lastPauseMs < 50, `V8 route: ${v8.lastPauseMs} ms`)
  assert.ok(v8.lastPauseMs < insp.lastPauseMs / 4, `V8 route ${v8.lastPauseMs} ms, inspector ${insp.lastPauseMs} ms`)
  assert.equal(v8.majorGcs, 0, JSON.stringify(v8))
})

test("the V8 route's profile is the inspector's, node for node, and each worker's isolate samples itself", {
  timeout: 60_000,
  skip: EXPECTED_ROUTE !== 'v8' && 'the V8 route is not used here',
}, () => {
  // The inspector reads the same sampler (one per isolate, started here without a forced GC).
  const code = `
    const assert = require('node:assert/strict')
    const native = require(${JSON.stringify(path.join(h.REPO_ROOT, 'lib', 'core', 'native.js'))})
    const hp = require(${JSON.stringify(path.join(h.REPO_ROOT, 'lib', 'core', 'heap-profile.js'))})
    const v = process.versions.v8
    assert.equal(native.v8HeapStart(v, 65536, 64), 'started')
    assert.equal(native.v8HeapStart(v, 65536, 64), 'peer', 'one sampler per isolate')
    globalThis.keep = []
    function mainHoard() { for (let i = 0; i < 300000; i++) keep.push({ i, s: 'm' + i }) }
    const arrays = () => { for (let i = 0; i < 100000; i++) keep.push([i]) }
    mainHoard(); arrays()
    const mine = native.v8HeapRead(v)
    let theirs = null
    const s = new (require('node:inspector').Session)()
    s.connect()
    s.post('HeapProfiler.getSamplingProfile', (err, r) => { theirs = r.profile })
    // The path to each node of the two functions with its own bytes (what ran between the reads may be sampled too).
    const flat = (p) => {
      const out = {}
      const walk = (n, at) => {
        const cf = n.callFrame
        const here = at + '/' + [cf.functionName, cf.url, cf.lineNumber, cf.columnNumber, cf.scriptId, n.id].join(':')
        if (n.selfSize > 0 && (cf.functionName === 'mainHoard' || cf.functionName === 'arrays')) out[here] = n.selfSize
        n.children.forEach((c) => walk(c, here))
      }
      walk(p.head, '')
      return out
    }
    assert.deepEqual(flat(mine), flat(theirs))
    assert.equal(Object.keys(flat(mine)).length, 2)
    const top = hp.topSites(mine, 2, 1).sites.map((x) => [x.functionName, x.line])
    const { Worker } = require('node:worker_threads')
    const w = new Worker(\`
      const { parentPort } = require('node:worker_threads')
      const native = require(\${JSON.stringify(${JSON.stringify(path.join(h.REPO_ROOT, 'lib', 'core', 'native.js'))})})
      const hp = require(\${JSON.stringify(${JSON.stringify(path.join(h.REPO_ROOT, 'lib', 'core', 'heap-profile.js'))})})
      const v = process.versions.v8
      const started = native.v8HeapStart(v, 65536, 64)
      globalThis.k = []
      function workerHoard() { for (let i = 0; i < 200000; i++) k.push({ i }) }
      workerHoard()
      const sites = hp.topSites(native.v8HeapRead(v), 1, 0).sites
      native.v8HeapStop(v)
      parentPort.postMessage({ started, top: sites[0].functionName })\`, { eval: true })
    w.on('message', (msg) => {
      const after = hp.topSites(native.v8HeapRead(v), 1, 0).sites[0].functionName
      console.log(JSON.stringify({ top, samples: mine.samples.length, worker: msg, mainAfterWorker: after }))
    })`
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 50_000 })
  assert.equal(r.status, 0, r.stderr)
  const x = JSON.parse(r.stdout)
  assert.deepEqual(x.top[0], ['mainHoard', 9], 'line 1-based, as the inspector route gives it')
  assert.ok(x.samples > 100, `${x.samples} samples`)
  assert.deepEqual(x.worker, { started: 'started', top: 'workerHoard' }, "a worker's isolate has its own sampler")
  assert.equal(x.mainAfterWorker, 'mainHoard', "the worker's stop left the main thread's sampler running")
})
