'use strict'
// Without the native addon the package still loads: where no binary fits or
// loads (missing, truncated, another arch, another libc, an unreadable
// package folder) require('oomguard') works, one warning names the real
// cause, getMemoryMetrics() reads the same kernel files from JavaScript
// (lib/core/plain.js) with the NATIVE_UNAVAILABLE diagnosis, watch() polls them
// on a timer (lib/core/poll.js), the preload and the doctor run on.
// OOMGUARD_NATIVE=0 forces it. Each bad binary is made in a temporary copy
// of the package.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync, spawnSync } = require('node:child_process')
const h = require('./helpers/cgroup')

const ROOT = h.REPO_ROOT
const FIXTURES = path.join(__dirname, 'fixtures')
const { status: here, elfInfo, detectLibc, TARGETS } = require('../lib/core/loader.js')
const TARGET = `linux-${process.arch}-${detectLibc().libc}`
const BINARY = `oomguard.${TARGET}.node`
const BUILT = path.join(ROOT, BINARY)
const PACKAGE_FILES = ['package.json', 'index.js', 'lib', 'register.js', 'bin']

/** A copy of the package, without any .node, in a fresh temporary directory. */
function packageCopy(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-fallback-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const pkg = path.join(dir, 'oomguard')
  fs.mkdirSync(pkg)
  for (const f of PACKAGE_FILES) fs.cpSync(path.join(ROOT, f), path.join(pkg, f), { recursive: true })
  return { dir, pkg }
}

// Loads the package at argv[1], reads it, and prints what a service would see.
const CHILD = `
  const warnings = []
  process.on('warning', (w) => warnings.push({ name: w.name, code: w.code, message: w.message }))
  const pkg = process.argv[1]
  const fixture = process.argv[2]
  const oomguard = require(pkg)
  // A second copy (a cleared require cache) does not warn again.
  for (const k of Object.keys(require.cache)) if (k.startsWith(pkg)) delete require.cache[k]
  require(pkg)
  const monitor = oomguard.watch()
  const watched = { level: monitor.level, stalled: monitor.stalled, current: monitor.current }
  monitor.close()
  const metrics = oomguard.getMemoryMetrics()
  const usage = { rss: 1, heapTotal: 2, heapUsed: 3, external: 4, arrayBuffers: 5, heapSizeLimit: 300 * 2 ** 20 }
  const fromFixture = fixture ? oomguard.getMemoryMetrics(usage, { root: fixture }) : null
  setImmediate(() => console.log(JSON.stringify({ nativeAddon: oomguard.nativeAddon, frozen: Object.isFrozen(oomguard.nativeAddon), warnings, watched, metrics, fromFixture })))
`

function load(pkg, { env = {}, fixture = '', uid, node = process.execPath } = {}) {
  const r = spawnSync(node, ['-e', CHILD, pkg, fixture], { env: { ...process.env, ...env }, encoding: 'utf8', uid, timeout: 30_000 })
  assert.equal(r.status, 0, `the package loads (exit ${r.status} ${r.signal}): ${r.stderr}`)
  return JSON.parse(r.stdout)
}

// The keys of a native monitor's `current`, which the poll's must match.
const CURRENT_KEYS = (() => {
  const m = require('..').watch()
  try {
    return Object.keys(m.current)
  } finally {
    m.close()
  }
})()

/** Without the addon: one warning naming the cause, the plain reading, a polling monitor. */
function checkFallback(out, { cause, warned = true }) {
  assert.equal(out.nativeAddon.loaded, false)
  assert.equal(out.nativeAddon.file, null)
  assert.ok(out.frozen, 'nativeAddon is frozen')
  assert.match(out.nativeAddon.reason, cause)
  const ours = out.warnings.filter((w) => w.code === 'OOMGUARD_NATIVE_UNAVAILABLE')
  assert.equal(ours.length, warned ? 1 : 0, `${warned ? 'one warning' : 'no warning'}: ${JSON.stringify(out.warnings)}`)
  if (warned) {
    const w = ours[0].message
    assert.match(w, cause)
    assert.ok(w.includes(`linux ${process.arch}`), `the warning names the platform and arch: ${w}`)
    assert.match(w, /libc (glibc|musl)/, 'the warning names the libc detected')
    assert.doesNotMatch(w, /npm has a bug|optional dependencies/)
  }
  assert.deepEqual(Object.keys(out.watched.current), CURRENT_KEYS, "the poll's current has the native keys, in order")
  assert.equal(out.watched.current.samples, 1, 'watch() returns with its first sample taken')
  assert.equal(out.watched.current.failing, false)
  assert.ok(out.watched.current.ratio > 0 && out.watched.current.limitBytes > 0)
  assert.equal(out.watched.stalled, null, 'no stall detection without the addon')
  const m = out.metrics
  assert.equal(m.diagnoses[0].code, 'NATIVE_UNAVAILABLE')
  assert.ok(m.diagnoses[0].message.includes(out.nativeAddon.reason))
  assert.equal(m.processes, null)
  assert.ok(m.cgroup && m.cgroup.version >= 1, 'the cgroup is found from JavaScript')
  assert.ok(m.usageBytes > 0 && m.workingSetBytes > 0 && m.rssBytes > 0 && m.v8.heapUsedBytes > 0)
}

test('the loader finds the built binary here, records it and says which libc', () => {
  assert.ok(fs.existsSync(BUILT), `${BUILT} is built (npm run build)`)
  assert.ok(TARGETS.includes(TARGET), `${TARGET} is one of package.json's targets`)
  assert.deepEqual({ ...here, tried: [...here.tried] }, { loaded: true, file: BUILT, target: TARGET, libc: TARGET.split('-')[2], reason: null, tried: [] })
  assert.ok(Object.isFrozen(here) && Object.isFrozen(here.tried))
  assert.equal(require('..').nativeAddon, here)
})

test('libc: from the ELF interpreter of node, else /proc/self/maps; never ldd or process.report', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-libc-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const exe = (name, interp, machine = 62) => {
    const file = path.join(dir, name)
    fs.writeFileSync(file, elf({ interp, machine }))
    return file
  }
  const none = path.join(dir, 'no-maps')
  assert.equal(detectLibc(exe('musl-node', '/lib/ld-musl-x86_64.so.1'), none).libc, 'musl')
  assert.equal(detectLibc(exe('musl-arm-node', '/lib/ld-musl-aarch64.so.1', 183), none).libc, 'musl')
  assert.equal(detectLibc(exe('gnu-node', '/lib64/ld-linux-x86-64.so.2'), none).libc, 'gnu')
  assert.equal(detectLibc(exe('gnu-arm-node', '/lib/ld-linux-aarch64.so.1', 183), none).libc, 'gnu')
  // Static, or started through its loader: the libraries mapped decide.
  const maps = (name, text) => {
    fs.writeFileSync(path.join(dir, name), text)
    return path.join(dir, name)
  }
  const staticNode = exe('static-node', null)
  assert.equal(detectLibc(staticNode, maps('maps-musl', '7f00-7f10 r-xp 00000000 08:01 12 /lib/ld-musl-x86_64.so.1\n')).libc, 'musl')
  assert.equal(detectLibc(staticNode, maps('maps-alpine', '7f00-7f10 r-xp 00000000 08:01 12 /usr/lib/libc.musl-x86_64.so.1\n')).libc, 'musl')
  assert.equal(detectLibc(staticNode, maps('maps-gnu', '7f00-7f10 r-xp 00000000 08:01 12 /usr/lib/x86_64-linux-gnu/libc.so.6\n')).libc, 'gnu')
  assert.equal(detectLibc(staticNode, none).libc, null)
  assert.equal(elfInfo(exe('musl-node2', '/lib/ld-musl-x86_64.so.1')).interp, '/lib/ld-musl-x86_64.so.1')

  // In a process: no /usr/bin/ldd read, no process.report (milliseconds), and the right answer.
  const probe = `
    const fs = require('node:fs')
    const opened = []
    for (const name of ['openSync', 'readFileSync']) {
      const orig = fs[name]
      fs[name] = function (file, ...rest) { opened.push(String(file)); return orig.call(this, file, ...rest) }
    }
    let report = false
    Object.defineProperty(process, 'report', { get() { report = true; return undefined } })
    const { status } = require(${JSON.stringify(path.join(ROOT, 'lib', 'core', 'loader.js'))})
    console.log(JSON.stringify({ libc: status.libc, loaded: status.loaded, opened, report }))
  `
  const out = JSON.parse(execFileSync(process.execPath, ['-e', probe], { encoding: 'utf8' }))
  assert.equal(out.libc, TARGET.split('-')[2])
  assert.equal(out.loaded, true)
  assert.equal(out.report, false, 'process.report is not used')
  assert.ok(!out.opened.some((f) => f.includes('ldd')), `no ldd: ${out.opened.join(', ')}`)
  assert.ok(out.opened.includes(process.execPath), 'node itself is read (its ELF interpreter)')
})

test('no binary at all: the package loads, warns once naming the file tried, and reads the cgroup from JavaScript', (t) => {
  const { pkg } = packageCopy(t)
  const out = load(pkg)
  checkFallback(out, { cause: new RegExp(`${BINARY}: not found.*oomguard-${TARGET} \\(package\\): not installed`) })
  assert.deepEqual(
    out.nativeAddon.tried.map((x) => x.error),
    ['not found', 'not installed'],
  )
  assert.equal(out.nativeAddon.libc, TARGET.split('-')[2])
})

test('OOMGUARD_NATIVE=0: the same fallback, said in nativeAddon, without a warning', () => {
  const out = load(ROOT, { env: { OOMGUARD_NATIVE: '0' } })
  checkFallback(out, { cause: /OOMGUARD_NATIVE=0/, warned: false })
  assert.deepEqual(out.nativeAddon.tried, [])
})

test('a truncated .node is refused before dlopen (which would die of SIGBUS), with the fallback and one warning', (t) => {
  const { pkg } = packageCopy(t)
  const whole = fs.readFileSync(BUILT)
  fs.writeFileSync(path.join(pkg, BINARY), whole.subarray(0, 5000))
  checkFallback(load(pkg), { cause: /not loaded: the file is truncated: 5000 bytes, its segments end at byte \d+/ })
  // Shorter than an ELF header; empty; not an ELF file at all.
  for (const [bytes, cause] of [
    [whole.subarray(0, 40), /truncated: 40 bytes, shorter than an ELF header/],
    [Buffer.alloc(0), /not an ELF file \(0 bytes\)/],
    [Buffer.from('<html>404 Not Found</html>\n'), /not an ELF file \(27 bytes\)/],
  ]) {
    fs.writeFileSync(path.join(pkg, BINARY), bytes)
    checkFallback(load(pkg), { cause })
  }
})

test('a binary for another arch is named as such (dlopen would say "No such file")', (t) => {
  const { pkg } = packageCopy(t)
  const bytes = Buffer.from(fs.readFileSync(BUILT))
  const other = process.arch === 'arm64' ? [62, 'x64'] : [183, 'arm64']
  bytes.writeUInt16LE(other[0], 18) // e_machine
  fs.writeFileSync(path.join(pkg, BINARY), bytes)
  checkFallback(load(pkg), { cause: new RegExp(`${BINARY}: not loaded: the file is built for ${other[1]}, this process is ${process.arch}`) })
})

test("a binary for the other libc: dlopen's own error, with the libc detected", (t) => {
  // A shared object that needs "libc.so", as a musl build does: under glibc
  // the loader finds the linker script of that name (or nothing) and fails.
  const { dir, pkg } = packageCopy(t)
  fs.writeFileSync(path.join(dir, 's.c'), 'int oomguard_stub(void) { return 1; }\n')
  execFileSync('cc', ['-shared', '-fPIC', '-Wl,-soname,libc.so', '-o', path.join(dir, 'libc.so'), path.join(dir, 's.c')])
  execFileSync('cc', ['-shared', '-fPIC', '-Wl,--no-as-needed', `-L${dir}`, '-l:libc.so', '-o', path.join(pkg, BINARY), path.join(dir, 's.c')])
  fs.rmSync(path.join(dir, 'libc.so'))
  const out = load(pkg)
  checkFallback(out, { cause: new RegExp(`${BINARY}: .*libc\\.so`) })
  assert.match(out.nativeAddon.reason, /libc glibc \(.* is linked with .*ld-linux/)
})

test("an addon that loads but is not this version's: another slot layout, or no slotNames() at all", (t) => {
  // Two small Node-API addons, built here against node's own headers.
  const include = path.join(path.dirname(process.execPath), '..', 'include', 'node')
  assert.ok(fs.existsSync(path.join(include, 'node_api.h')), `node's headers at ${include}`)
  const { dir, pkg } = packageCopy(t)
  const source = (names) => `
    #include <node_api.h>
    static napi_value slot_names(napi_env env, napi_callback_info info) {
      napi_value arr, s;
      napi_create_array_with_length(env, 1, &arr);
      napi_create_string_utf8(env, "notASlot", NAPI_AUTO_LENGTH, &s);
      napi_set_element(env, arr, 0, s);
      return arr;
    }
    NAPI_MODULE_INIT() {
      ${names ? 'napi_value fn; napi_create_function(env, "slotNames", NAPI_AUTO_LENGTH, slot_names, NULL, &fn); napi_set_named_property(env, exports, "slotNames", fn);' : ''}
      return exports;
    }
  `
  for (const [names, cause] of [
    [true, new RegExp(`${BINARY}: built from another lib/core/slots.json`)],
    [false, new RegExp(`${BINARY}: not this version's addon`)],
  ]) {
    fs.writeFileSync(path.join(dir, 'addon.c'), source(names))
    execFileSync('cc', ['-shared', '-fPIC', `-I${include}`, '-o', path.join(pkg, BINARY), path.join(dir, 'addon.c')])
    checkFallback(load(pkg), { cause })
  }
})

test('the platform package: loaded from node_modules when there is no local binary, and its folder unreadable is a fallback', (t) => {
  const { dir, pkg } = packageCopy(t)
  const platform = path.join(dir, `oomguard-${TARGET}`)
  fs.mkdirSync(platform)
  fs.copyFileSync(path.join(ROOT, 'npm', TARGET, 'package.json'), path.join(platform, 'package.json'))
  fs.copyFileSync(BUILT, path.join(platform, BINARY))
  // Installed as npm would: node_modules/oomguard and node_modules/oomguard-<target>.
  const modules = path.join(dir, 'node_modules')
  fs.mkdirSync(modules)
  fs.renameSync(pkg, path.join(modules, 'oomguard'))
  fs.renameSync(platform, path.join(modules, `oomguard-${TARGET}`))
  const installed = path.join(modules, 'oomguard')
  const out = load(installed, { fixture: path.join(FIXTURES, 'v2-busy') })
  assert.equal(out.nativeAddon.loaded, true, JSON.stringify(out.nativeAddon))
  assert.equal(out.nativeAddon.file, path.join(modules, `oomguard-${TARGET}`, BINARY))
  assert.deepEqual(out.nativeAddon.tried, [{ file: path.join(installed, BINARY), error: 'not found' }])
  assert.equal(out.warnings.length, 0)

  // Unreadable: no permission on the folder (as another user: root reads
  // anything), and a file where the folder should be.
  const folder = path.join(modules, `oomguard-${TARGET}`)
  if (typeof process.getuid === 'function' && process.getuid() === 0) {
    for (let d = dir; d !== path.dirname(d); d = path.dirname(d)) if (d.startsWith(dir)) fs.chmodSync(d, 0o755)
    fs.chmodSync(folder, 0o700)
    // A node that user can run: this one may sit in a folder only root enters (a node fetched into ~/.cache).
    const node = path.join(dir, 'node')
    fs.copyFileSync(process.execPath, node)
    fs.chmodSync(node, 0o755)
    const asNobody = load(installed, { uid: 65534, node })
    checkFallback(asNobody, { cause: new RegExp(`oomguard-${TARGET}`) })
    fs.chmodSync(folder, 0o755)
  }
  fs.rmSync(folder, { recursive: true })
  fs.writeFileSync(folder, 'not a folder')
  checkFallback(load(installed), { cause: new RegExp(`oomguard-${TARGET}: not loaded: the file is not an ELF file`) })
})

test("the JavaScript reading equals the addon's on every fixture, field for field", () => {
  const usage = { rss: 1, heapTotal: 2, heapUsed: 3, external: 4, arrayBuffers: 5, heapSizeLimit: 300 * 2 ** 20 }
  const { getMemoryMetrics } = require('..')
  const fixtures = fs.readdirSync(FIXTURES).filter((f) => fs.statSync(path.join(FIXTURES, f)).isDirectory())
  assert.ok(fixtures.length >= 15, `fixtures: ${fixtures.length}`)
  const script = `
    const { getMemoryMetrics } = require(${JSON.stringify(ROOT)})
    const out = {}
    for (const f of ${JSON.stringify(fixtures)}) out[f] = getMemoryMetrics(${JSON.stringify(usage)}, { root: ${JSON.stringify(FIXTURES)} + '/' + f })
    console.log(JSON.stringify(out))
  `
  const plain = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, OOMGUARD_NATIVE: '0' } }))
  // What the addon adds on top of the files: the limiting ancestor's
  // figures, the process list, the diagnoses; the fixture's own statm and
  // meminfo are read by both.
  const ADDON_ONLY = new Set(['timestampMs', 'diagnoses', 'processes', 'limitingCgroup'])
  for (const f of fixtures) {
    const addon = getMemoryMetrics(usage, { root: path.join(FIXTURES, f) })
    const js = plain[f]
    assert.deepEqual(Object.keys(js), Object.keys(addon), `${f}: the same keys in the same order`)
    for (const k of Object.keys(addon)) {
      if (ADDON_ONLY.has(k)) continue
      assert.deepEqual(js[k], addon[k], `${f}: ${k}`)
    }
    assert.equal(js.diagnoses[0].code, 'NATIVE_UNAVAILABLE', f)
    assert.deepEqual(Object.keys(js.diagnoses[0]), Object.keys(addon.diagnoses[0] || js.diagnoses[0]), `${f}: a diagnosis's keys`)
    assert.equal(
      js.diagnoses.some((d) => d.code === 'NO_MEMORY_CGROUP'),
      js.cgroup === null,
      `${f}: NO_MEMORY_CGROUP where no cgroup is found`,
    )
  }
})

test('cgroup v1, live: the JavaScript reading of a real child cgroup with a limit', { timeout: 60_000 }, async (t) => {
  const support = h.v1Support()
  if (support.reason) return h.privileged(t, support.reason)
  const MiB = 1024 * 1024
  const dir = h.makeCgroup(support.own.dir)
  t.after(() => h.removeCgroup(dir))
  h.setV1Limit(dir, 192 * MiB)
  const script = path.join(os.tmpdir(), `${h.uniqueName('oomguard-fallback')}.js`)
  t.after(() => fs.rmSync(script, { force: true }))
  fs.writeFileSync(
    script,
    `
    const fs = require('node:fs')
    const keep = Buffer.alloc(32 * 1024 * 1024, 1)
    const { getMemoryMetrics, nativeAddon } = require(${JSON.stringify(ROOT)})
    const m = getMemoryMetrics()
    const file = (name) => Number(fs.readFileSync(m.cgroup.dir + '/' + name, 'utf8'))
    console.log('RESULT ' + JSON.stringify({ loaded: nativeAddon.loaded, m, limit: file('memory.limit_in_bytes'), usage: file('memory.usage_in_bytes'), keep: keep.length }))
  `,
  )
  const r = await h.runNodeInCgroup(dir, script, [], { env: { ...process.env, OOMGUARD_NATIVE: '0' } })
  assert.equal(r.code, 0, h.describeRun(r))
  const [out] = h.parsePrefixed(r.stdout, 'RESULT ')
  assert.equal(out.loaded, false)
  const m = out.m
  assert.equal(m.cgroup.dir, dir)
  assert.equal(m.source, 'cgroup-v1')
  assert.equal(m.limitBytes, 192 * MiB)
  assert.equal(m.limitBytes, out.limit)
  assert.equal(m.leafLimitBytes, 192 * MiB)
  // Usage moves between the two reads by at most a few charge batches.
  assert.ok(Math.abs(m.usageBytes - out.usage) < 4 * MiB, `usage ${m.usageBytes} against the file's ${out.usage}`)
  assert.ok(m.usageBytes > 32 * MiB, 'the 32 MiB Buffer is charged')
  assert.equal(m.workingSetBytes, m.usageBytes - m.stat.inactiveFile)
  assert.ok(m.usageRatio > 0 && m.usageRatio < 1)
  assert.equal(m.diagnoses[0].code, 'NATIVE_UNAVAILABLE')
})

test('the preload and the doctor run on without the addon, and say so', (t) => {
  const { pkg } = packageCopy(t)
  const r = spawnSync(process.execPath, ['-r', path.join(pkg, 'register.js'), '-e', 'console.log("service started")'], {
    encoding: 'utf8',
    env: { ...process.env, OOMGUARD_METRICS_PORT: '', OOMGUARD_LAST_WORDS_PATH: '', OOMGUARD_THRESHOLDS: '0.000001' },
  })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout, 'service started\n')
  assert.match(r.stderr, /OOMGUARD_NATIVE_UNAVAILABLE/)
  assert.doesNotMatch(r.stderr, /could not start|refused/)
  // The poll's first sample is above that threshold: the register logs it.
  const line = r.stderr.split('\n').find((l) => l.startsWith('{"oomguard":"threshold"'))
  assert.ok(line, r.stderr)
  assert.equal(JSON.parse(line).level, 1)

  const d = spawnSync(process.execPath, [path.join(pkg, 'bin', 'oomguard.js')], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
  assert.equal(d.status, 0, d.stderr)
  const lines = d.stdout.split('\n')
  assert.match(lines[1], /^ {2}native addon {2}NOT LOADED: no native addon loaded for linux/)
  const here = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'oomguard.js'), '--json'], { encoding: 'utf8' })
  assert.equal(here.status, 0, here.stderr)
  assert.equal(JSON.parse(here.stdout).nativeAddon.file, BUILT)
})

test('cgroup v1, live: the polling monitor crosses thresholds and recovers in a real child cgroup', { timeout: 90_000 }, async (t) => {
  const support = h.v1Support()
  if (support.reason) return h.privileged(t, support.reason)
  const MiB = 1024 * 1024
  const LIMIT = 256 * MiB
  const dir = h.makeCgroup(support.own.dir)
  t.after(() => h.removeCgroup(dir))
  h.setV1Limit(dir, LIMIT)
  const script = path.join(os.tmpdir(), `${h.uniqueName('oomguard-poll')}.js`)
  t.after(() => fs.rmSync(script, { force: true }))
  // Thresholds above where the process starts; Buffers (outside the heap,
  // freed at once by gc()) raise the working set past each, then fall back.
  fs.writeFileSync(
    script,
    `
    const { getMemoryMetrics, watch, nativeAddon } = require(${JSON.stringify(ROOT)})
    const MiB = 1024 * 1024
    const start = getMemoryMetrics().usageRatio
    const thresholds = [start + 0.15, start + 0.3]
    const events = []
    const m = watch({ thresholds, hysteresis: 0.05, minIntervalMs: 1, maxIntervalMs: 200 })
    for (const kind of ['threshold', 'recovered']) m.on(kind, (e) => events.push({ kind, level: e.level, threshold: e.threshold, ratio: e.ratio, at: Date.now(), lastWords: e.lastWords }))
    let keep = []
    const fill = (ratio) => { while (getMemoryMetrics().usageRatio < ratio) keep.push(Buffer.alloc(4 * MiB, 1)) }
    const wait = (ms) => new Promise((r) => setTimeout(r, ms))
    ;(async () => {
      fill(start + 0.2)
      const t1 = Date.now()
      await wait(600)
      fill(start + 0.37)
      const t2 = Date.now()
      await wait(600)
      keep = []
      global.gc()
      const t3 = Date.now()
      await wait(800)
      m.close()
      console.log('RESULT ' + JSON.stringify({ loaded: nativeAddon.loaded, start, thresholds, events, t1, t2, t3, current: m.current }))
    })()
  `,
  )
  const r = await h.runNodeInCgroup(dir, script, [], { env: { ...process.env, OOMGUARD_NATIVE: '0', NODE_OPTIONS: '--expose-gc' } })
  assert.equal(r.code, 0, h.describeRun(r))
  const [out] = h.parsePrefixed(r.stdout, 'RESULT ')
  assert.equal(out.loaded, false)
  const kinds = out.events.map((e) => `${e.kind}@${e.level}`)
  assert.deepEqual(kinds, ['threshold@1', 'threshold@2', 'recovered@1', 'recovered@0'], JSON.stringify(out.events))
  const [up1, up2, down1, down0] = out.events
  assert.equal(up1.threshold, out.thresholds[0])
  assert.equal(up2.threshold, out.thresholds[1])
  assert.ok(up1.ratio >= out.thresholds[0] && up2.ratio >= out.thresholds[1])
  assert.ok(down0.ratio < out.thresholds[0] - 0.05)
  // Within the poll's interval (100 ms near a threshold) of each change, and a margin for a busy machine.
  for (const [e, since] of [
    [up1, out.t1],
    [up2, out.t2],
    [down0, out.t3],
  ]) {
    assert.ok(e.at - since <= 500, `${e.kind}@${e.level} ${e.at - since} ms after the change`)
  }
  assert.ok(down1.at <= down0.at)
  assert.ok(out.events.every((e) => e.lastWords === null))
  t.diagnostic(`poll: threshold ${up1.at - out.t1} and ${up2.at - out.t2} ms, recovered ${down0.at - out.t3} ms after each change`)
})

test('hostile files without the addon: bounded, non-blocking reads that stay inside the root and name the file', (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-fallback-hostile-'))
  t.after(() => fs.rmSync(work, { recursive: true, force: true }))
  const PLANTED = 4242424242
  const outside = path.join(work, 'outside', 'x')
  fs.mkdirSync(outside, { recursive: true })
  for (const f of ['memory.current', 'memory.max', 'memory.stat']) fs.writeFileSync(path.join(outside, f), f === 'memory.stat' ? `anon ${PLANTED}\ninactive_file 0\n` : `${PLANTED}\n`)
  const climb = '/..'.repeat(24) + path.dirname(outside)
  const LEAF = 'sys/fs/cgroup/fxcap/busy'
  const mountinfo = fs.readFileSync(path.join(FIXTURES, 'v2-busy/proc/self/mountinfo'), 'utf8')
  // [name, file, make, says, watch: does a monitor on it get an error event naming the file]
  const cases = [
    ['FIFO as memory.current', `${LEAF}/memory.current`, (p) => execFileSync('mkfifo', [p]), /a FIFO, not a regular file/, true],
    ['/dev/zero as memory.stat', `${LEAF}/memory.stat`, (p) => fs.symlinkSync('/dev/zero', p), /a character device/, true],
    ['10 MB of junk as memory.stat', `${LEAF}/memory.stat`, (p) => fs.writeFileSync(p, Buffer.alloc(10 * 1024 * 1024, 'x')), /longer than 65536 bytes/, true],
    ['a directory as memory.max', `${LEAF}/memory.max`, (p) => fs.mkdirSync(p), /a directory, not a regular file/, true],
    ['FIFO as proc/self/cgroup', 'proc/self/cgroup', (p) => execFileSync('mkfifo', [p]), /a FIFO/, false],
    ['a cgroup path that climbs out', 'proc/self/cgroup', (p) => fs.writeFileSync(p, `0::${climb}/x\n`), /climbs out of the root/, false],
    ['a mount point that climbs out', 'proc/self/mountinfo', (p) => fs.writeFileSync(p, mountinfo.replace(' /sys/fs/cgroup ', ` ${climb} `)), /climbs out of the root/, false],
    ['a mountinfo line without its fields', 'proc/self/mountinfo', (p) => fs.writeFileSync(p, '1 2 0:1 / /sys/fs/cgroup rw - cgroup2\n'), /not a mountinfo line/, false],
  ]
  const script = `
    const { getMemoryMetrics, watch } = require(${JSON.stringify(ROOT)})
    const [root, file] = process.argv.slice(1)
    const t = process.hrtime.bigint()
    const r = getMemoryMetrics(null, { root })
    const ms = Number(process.hrtime.bigint() - t) / 1e6
    const m = watch({ root, minIntervalMs: 5, maxIntervalMs: 50 })
    const errors = []
    m.on('error', (e) => errors.push(e.message))
    setTimeout(() => { m.close(); console.log(JSON.stringify({ ms, r, errors, current: m.current })) }, 300)
  `
  for (const [name, file, make, says, watchError] of cases) {
    const root = fs.mkdtempSync(path.join(work, 'root-'))
    fs.cpSync(path.join(FIXTURES, 'v2-busy'), root, { recursive: true })
    const target = path.join(root, file)
    fs.rmSync(target, { force: true })
    make(target)
    const r = spawnSync(process.execPath, ['-e', script, root, target], { encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL', env: { ...process.env, OOMGUARD_NATIVE: '0' } })
    assert.equal(r.status, 0, `${name}: exit ${r.status} ${r.signal} ${r.stderr}`)
    const out = JSON.parse(r.stdout)
    assert.ok(out.ms < 2000, `${name}: getMemoryMetrics() took ${out.ms} ms`)
    assert.ok(!JSON.stringify(out.r).includes(String(PLANTED)), `${name}: nothing read from outside the root`)
    const why = out.r.diagnoses.find((d) => d.code === 'CGROUP_FILE_UNREADABLE' && d.path === target)
    assert.ok(why, `${name}: a diagnosis names ${target}: ${JSON.stringify(out.r.diagnoses.map((d) => d.message))}`)
    assert.match(why.message, says, name)
    if (watchError) {
      assert.ok(out.errors.length === 1 && out.errors[0].includes(target), `${name}: one error event naming the file: ${out.errors.join(' | ')}`)
      assert.equal(out.current.failing, true, name)
    } else {
      assert.equal(out.errors.length, 0, `${name}: the host's numbers stand in: ${out.errors.join(' | ')}`)
      assert.ok(out.current.samples > 0, name)
    }
  }
})

/** A minimal 64-bit little-endian ELF header, with a PT_INTERP naming `interp` if given. */
function elf({ interp = null, machine = 62 }) {
  const phnum = interp ? 1 : 0
  const strOff = 64 + 56 * phnum
  const str = interp ? Buffer.from(`${interp}\0`) : Buffer.alloc(0)
  const b = Buffer.alloc(strOff + str.length)
  b.writeUInt32BE(0x7f454c46, 0)
  b[4] = 2 // 64-bit
  b[5] = 1 // little-endian
  b[6] = 1
  b.writeUInt16LE(2, 16) // ET_EXEC
  b.writeUInt16LE(machine, 18)
  b.writeBigUInt64LE(64n, 32) // e_phoff
  b.writeUInt16LE(64, 52)
  b.writeUInt16LE(56, 54)
  b.writeUInt16LE(phnum, 56)
  if (interp) {
    b.writeUInt32LE(3, 64) // PT_INTERP
    b.writeBigUInt64LE(BigInt(strOff), 64 + 8)
    b.writeBigUInt64LE(BigInt(str.length), 64 + 32)
    str.copy(b, strOff)
  }
  return b
}
