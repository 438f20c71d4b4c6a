'use strict'
// Each of the four Linux binaries (npm run build:all) in its own node, 22
// and 24 (scripts/toolchain.js fetches them): x64 glibc as is, arm64 under
// qemu-user, musl with musl's loader (Debian 13's musl; arm64 musl under qemu-user).
// qemu-user runs the guest on this kernel, so its cgroups are real: each run
// is in a memory-limited child cgroup of this process's own. Each must:
//  - load its own .node (from /proc/self/maps, which qemu-user shows as the
//    guest's), pointed at by NAPI_RS_NATIVE_LIBRARY_PATH;
//  - answer getMemoryMetrics() with the cgroup's own files;
//  - fire a watch() threshold as it grows, and write its last words;
//  - run the doctor to exit 0;
// and the packed tarballs (scripts/pack.js), installed by each platform's
// own npm, must load that platform's binary.
// Needs root and the cached toolchain (a skip, or a failure under
// OOMGUARD_REQUIRE_PRIVILEGED=1).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const h = require('./helpers/cgroup')
const { PLATFORMS, NODE_VERSIONS, runner } = require('../scripts/toolchain.js')
const PKG = require('../package.json')
const { binaryName } = PKG.napi
const { npm } = require('./helpers/npm')
const { pack } = require('../scripts/pack.js')

const REPO = h.REPO_ROOT
/** This machine's platform, as napi names it (linux-x64-gnu). */
const HOST = `linux-${process.arch}-${process.report.getReport().header.glibcVersionRuntime ? 'gnu' : 'musl'}`

const PROBE = path.join(__dirname, 'helpers', 'platform-probe.js')
const PREFIX = 'OOMGUARD_PLATFORM '
const MiB = 1024 * 1024
const LIMIT = 512 * MiB
// The probe reads memory.usage_in_bytes just before and after the call; under
// qemu-user the gap is longer than natively.
const TOLERANCE = 8 * MiB
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-platforms-'))
test.after(() => fs.rmSync(work, { recursive: true, force: true }))

/** The environment of a child: no OOMGUARD_*, NODE_OPTIONS or loader override from outside. */
function childEnv(extra) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OOMGUARD_') && !k.startsWith('NAPI_RS_') && k !== 'NODE_OPTIONS') env[k] = v
  return { ...env, ...extra }
}

/** What a platform's run needs here: `{ run, binary, own }`, or null after skipping. */
function need(t, platform, version) {
  const binary = path.join(h.REPO_ROOT, `${binaryName}.${platform}.node`)
  if (!fs.existsSync(binary)) {
    h.privileged(t, `${path.basename(binary)} is not built: npm run build:all`)
    return null
  }
  const run = runner(platform, version, { fetch: false })
  if (!run) {
    h.privileged(t, `node ${version} for ${platform} is not fetched: node scripts/toolchain.js runners`)
    return null
  }
  const s = h.v1Support()
  if (s.reason) {
    h.privileged(t, s.reason)
    return null
  }
  return { run, binary, own: s.own }
}

for (const platform of Object.keys(PLATFORMS)) {
  const spec = PLATFORMS[platform]
  for (const version of NODE_VERSIONS) {
    test(`${platform}, node ${version}: its own binary reads the cgroup, fires a threshold, writes last words; the doctor exits 0`, { timeout: 240_000 }, async (t) => {
      const n = need(t, platform, version)
      if (!n) return
      const dir = h.makeCgroup(n.own.dir, h.uniqueName(`oomguard-platform-${platform}`))
      t.after(() => h.removeCgroup(dir))
      h.setV1Limit(dir, LIMIT)
      const lastWords = path.join(work, `${platform}-${version}.last-words`)
      const env = childEnv({ NAPI_RS_NATIVE_LIBRARY_PATH: n.binary })
      const [cmd, ...pre] = n.run.argv
      const r = await h.runProcess('sh', ['-c', ...h.enterCgroup(dir), cmd, ...pre, PROBE, h.REPO_ROOT, dir, lastWords], { env, timeoutMs: 180_000 })
      const desc = h.describeRun(r)
      assert.equal(r.code, 0, desc)
      const [p] = h.parsePrefixed(r.stdout, PREFIX)
      assert.ok(p, `a probe line\n${desc}`)

      // Its own node, its own binary.
      assert.equal(p.version, `v${version}`)
      assert.equal(p.arch, spec.cpu)
      assert.equal(p.glibc === null, spec.libc === 'musl', `libc: glibc ${p.glibc}`)
      assert.deepEqual(p.loaded, [n.binary], "the only .node mapped is the platform's own")
      assert.deepEqual({ ...p.heapProfile, pauseMs: undefined }, { unavailable: null, top: 'platformHoard', pauseMs: undefined }, "the heap profile's V8 route")

      // getMemoryMetrics() is the cgroup's files.
      const m = p.metrics
      assert.match(p.kernel.procCgroup, new RegExp(`:memory:${path.posix.join(n.own.path, path.basename(dir)).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`))
      assert.equal(m.source, 'cgroup-v1')
      assert.equal(m.cgroup.dir, dir)
      assert.equal(m.limitBytes, LIMIT)
      assert.equal(p.kernel.limit, LIMIT)
      const lo = Math.min(p.kernel.usageBefore, p.kernel.usageAfter) - TOLERANCE
      const hi = Math.max(p.kernel.usageBefore, p.kernel.usageAfter) + TOLERANCE
      assert.ok(m.usageBytes >= lo && m.usageBytes <= hi, `usageBytes ${m.usageBytes} within ${TOLERANCE} of memory.usage_in_bytes (${p.kernel.usageBefore}, ${p.kernel.usageAfter})`)
      assert.equal(m.events.oomKill, 0)

      // The threshold fired, at its ratio, and the record is on file.
      assert.equal(p.error, undefined, `no monitor error: ${p.error}`)
      assert.ok(p.event, `the threshold ${p.threshold} fired within 60 s (grew ${p.grownBytes / MiB} MiB)\n${desc}`)
      assert.equal(p.event.threshold, p.threshold)
      assert.ok(p.event.ratio >= p.threshold, `ratio ${p.event.ratio} at or above ${p.threshold}`)
      assert.equal(p.event.limitBytes, LIMIT)
      assert.ok(p.lastWords && p.lastWords.endsWith('\n'), `a complete last-words record: ${p.lastWords}`)
      const lw = JSON.parse(p.lastWords)
      assert.equal(lw.oomguard, 'last-words')
      assert.equal(lw.source, 'cgroup-v1')
      assert.equal(lw.limitBytes, LIMIT)
      assert.equal(lw.threshold, p.threshold)
      assert.ok(lw.v8 && lw.v8.heapSizeLimitBytes > 0, 'V8 numbers in the record')

      // The doctor, in the same cgroup, under the same node and binary.
      const d = await h.runProcess('sh', ['-c', ...h.enterCgroup(dir), cmd, ...pre, path.join(h.REPO_ROOT, 'bin', 'oomguard.js'), 'doctor'], { env, timeoutMs: 120_000 })
      assert.equal(d.code, 0, h.describeRun(d))
      assert.match(d.stdout, /^oomguard doctor: /)
      assert.match(d.stdout, new RegExp(`files +${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`))
    })
  }
}

// The platform packages as npm users on each platform get them: npm's own
// platform check (os, cpu, libc) installs the matching one and refuses the
// others; under that platform's node (scripts/toolchain.js: arm64 under
// qemu-user, whose -L root has Alpine's /usr/bin/ldd for musl) require()
// picks its binary. x64 musl is the same in a real Alpine-like container
// (docker.test.js): on this glibc machine its node reads this machine's ldd.

const PICKS = ['linux-x64-gnu', 'linux-arm64-gnu', 'linux-arm64-musl']
for (const platform of PICKS) {
  test(`${platform}: npm installs the main package with its platform package, and require() loads that binary under the platform's node`, { timeout: 300_000 }, async (t) => {
    if (!fs.existsSync(path.join(REPO, `${binaryName}.${platform}.node`))) return h.privileged(t, `${binaryName}.${platform}.node is not built: npm run build:all`)
    const run = runner(platform, '24.19.0', { fetch: false })
    if (!run) return h.privileged(t, `node for ${platform} is not fetched: node scripts/toolchain.js runners`)
    const spec = PLATFORMS[platform]
    // On this machine (x64 glibc) npm refuses the packages of the other
    // platforms that are built: their cpu and libc fields work.
    const others = platform === HOST ? Object.keys(PLATFORMS).filter((p) => p !== HOST && fs.existsSync(path.join(REPO, `${binaryName}.${p}.node`))) : []
    const packedAll = pack({ out: fs.mkdtempSync(path.join(work, 'packed-')), platforms: [platform, ...others] })
    const freshApp = () => {
      const dir = fs.mkdtempSync(path.join(work, `app-${platform}-`))
      fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
      return dir
    }
    for (const other of others) {
      assert.throws(() => npm(['install', '--no-audit', '--no-fund', '--offline', packedAll.platforms[other]], freshApp()), /EBADPLATFORM/, `npm refuses ${other} here`)
    }
    // The platform's own npm (the one its node ships) installs them there.
    const app = freshApp()
    const [cmd, ...pre] = run.argv
    const npmCli = path.join(path.dirname(run.node), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js')
    const env = childEnv({ npm_config_update_notifier: 'false' })
    const inst = await h.runProcess(cmd, [...pre, npmCli, 'install', '--no-audit', '--no-fund', '--offline', '--ignore-scripts', packedAll.main, packedAll.platforms[platform]], {
      cwd: app,
      env,
      timeoutMs: 240_000,
    })
    assert.equal(inst.code, 0, `npm install under ${platform}'s node\n${h.describeRun(inst)}`)
    const mods = fs.readdirSync(path.join(app, 'node_modules')).filter((m) => m.startsWith('oomguard'))
    assert.deepEqual(mods.sort(), ['oomguard', `oomguard-${platform}`])
    const script = `const r = require('oomguard').getMemoryMetrics()
      const maps = require('fs').readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/).slice(5).join(' '))
      console.log(JSON.stringify({ arch: process.arch, source: r.source, limit: r.limitBytes, loaded: [...new Set(maps.filter((f) => f.endsWith('.node')))] }))`
    fs.writeFileSync(path.join(app, 'probe.js'), script)
    const r = await h.runProcess(cmd, [...pre, 'probe.js'], { cwd: app, env: childEnv(), timeoutMs: 120_000 })
    assert.equal(r.code, 0, h.describeRun(r))
    const out = JSON.parse(r.stdout)
    assert.equal(out.arch, spec.cpu)
    assert.deepEqual(out.loaded, [path.join(app, 'node_modules', `oomguard-${platform}`, `${binaryName}.${platform}.node`)])
    assert.match(out.source, /^(cgroup-v[12]|host)$/, 'read by the native addon')
    assert.ok(out.limit > 0)
    if (others.length === 3) {
      // The sizes the README states (Install), within 10% of what was packed now.
      const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8')
      const stated = { [`${PKG.name}-${PKG.version}.tgz`]: Number(/The main package, `oomguard`, is (\d+) kB packed/.exec(readme)[1]) }
      for (const m of readme.matchAll(/`(oomguard-linux-[a-z0-9-]+)` \((\d+) kB\)/g)) stated[`${m[1]}-${PKG.version}.tgz`] = Number(m[2])
      assert.deepEqual(Object.keys(stated).sort(), Object.keys(packedAll.sizes).sort(), "the README states each tarball's size")
      for (const [f, kb] of Object.entries(stated)) {
        const now = packedAll.sizes[f] / 1000
        assert.ok(Math.abs(now - kb) <= kb * 0.1, `README says ${f} is ${kb} kB; packed now: ${now.toFixed(0)} kB`)
      }
    }
    t.diagnostic(
      `${platform}: ${others.length ? `npm refused ${others.join(', ')}; ` : ''}${Object.entries(packedAll.sizes)
        .map(([f, n]) => `${f} ${n} B`)
        .join(', ')}`,
    )
  })
}
