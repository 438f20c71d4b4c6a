'use strict'
// One real kill of heap-leak-server.js in a fresh v1 child cgroup, driven by
// autocannon over loopback at a bounded request rate. Returns what the test
// checks: how it ended, the termination record, the pprof files.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const assert = require('node:assert/strict')
const zlib = require('node:zlib')
const { spawnSync } = require('node:child_process')
const h = require('./cgroup')

const SERVER = path.join(__dirname, 'heap-leak-server.js')

function oomKillCount(dir) {
  const m = /oom_kill (\d+)/.exec(fs.readFileSync(path.join(dir, 'memory.oom_control'), 'utf8'))
  return m ? Number(m[1]) : NaN
}

/**
 * The caller removes the returned `work` folder.
 * `framework`: express | fastify | worker. `limit`: the cgroup's bytes.
 * `rate`: requests per second (each leaks ~64 KiB). The caller has checked
 * h.v1Support() and passes its `own.dir`.
 */
async function leakToDeath(ownDir, { framework, limit = 256 * 1024 * 1024, rate = 200, start = 'threshold', timeoutMs = 120_000 }) {
  const autocannon = require('autocannon')
  const dir = h.makeCgroup(ownDir)
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-heapleak-'))
  let ok = false
  try {
    h.setV1Limit(dir, limit)
    const lastWords = path.join(work, 'termination-log')
    const profiles = path.join(work, 'profiles')
    fs.mkdirSync(profiles)
    const before = oomKillCount(dir)
    const t0 = Date.now()
    const { child, line } = await h.startNodeInCgroup(dir, SERVER, [framework, lastWords, profiles, h.REPO_ROOT, start], 'OOMGUARD_LEAK ')
    let stderr = ''
    let stdout = ''
    child.stderr.on('data', (d) => (stderr += d))
    child.stdout.on('data', (d) => (stdout += d))
    const ended = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
    const killer = setTimeout(() => {
      try {
        process.kill(child.pid, 'SIGKILL')
      } catch {}
    }, timeoutMs)
    // Bounded loopback load: a fixed request rate, few connections, until the kill.
    const load = autocannon({ url: `http://127.0.0.1:${line.port}/orders`, connections: 4, overallRate: rate, duration: Math.ceil(timeoutMs / 1000) })
    const end = await ended
    clearTimeout(killer)
    load.stop()
    const result = await load
    const text = fs.existsSync(lastWords) ? fs.readFileSync(lastWords, 'utf8') : null
    ok = true
    return {
      end,
      ms: Date.now() - t0,
      stderr,
      events: h.parsePrefixed(stdout.slice(0, stdout.lastIndexOf('\n') + 1), 'OOMGUARD_EVENT '),
      requests: result.requests.total,
      oomKills: oomKillCount(dir) - before,
      text,
      record: text ? JSON.parse(text) : null,
      files: fs.readdirSync(profiles).map((f) => path.join(profiles, f)),
      lastWords,
      work,
      profiles,
    }
  } finally {
    h.removeCgroup(dir)
    // The caller removes `work` after its checks.
    if (!ok) fs.rmSync(work, { recursive: true, force: true })
  }
}

/** The 1-based line of `needle` in `file`. */
function lineOf(file, needle) {
  const i = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .findIndex((l) => l.includes(needle))
  assert.ok(i >= 0, `${needle} in ${file}`)
  return i + 1
}

/** A pprof file's functions by flat inuse_space, heaviest first: [[name, bytes]]. */
function pprofTop(file) {
  const { Profile } = require('pprof-format')
  const p = Profile.decode(zlib.gunzipSync(fs.readFileSync(file)))
  const s = p.stringTable.strings
  const types = p.sampleType.map((t) => s[Number(t.type)])
  assert.deepEqual(types, ['inuse_objects', 'inuse_space'])
  const fnName = new Map(p.function.map((f) => [Number(f.id), s[Number(f.name)]]))
  const locFn = new Map(p.location.map((l) => [Number(l.id), fnName.get(Number(l.line[0].functionId))]))
  const flat = new Map()
  for (const smp of p.sample) {
    const leaf = locFn.get(Number(smp.locationId[0]))
    flat.set(leaf, (flat.get(leaf) || 0) + Number(smp.value[1]))
  }
  const labels = {}
  for (const l of p.sample[0]?.label ?? []) labels[s[Number(l.key)]] = s[Number(l.str)]
  return { top: [...flat.entries()].sort((a, b) => b[1] - a[1]), labels }
}

/**
 * `go tool pprof -top` on a file: the first function of its table. Without
 * go, a skip (a failure under OOMGUARD_REQUIRE_PRIVILEGED=1: CI installs
 * Debian's golang-go).
 */
function goPprofTop(t, file) {
  const go = spawnSync('go', ['version'], { encoding: 'utf8' })
  if (go.status !== 0) {
    h.privileged(t, 'go is not installed (Debian: golang-go), so go tool pprof cannot be tried')
    return null
  }
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-gohome-'))
  try {
    const r = spawnSync('go', ['tool', 'pprof', '-top', file], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, HOME: home, GOCACHE: path.join(home, 'cache'), PPROF_TMPDIR: home } })
    assert.equal(r.status, 0, `go tool pprof -top ${file}: ${r.stderr}`)
    // The table: "flat flat% sum% cum cum% name", heaviest flat first.
    const rows = r.stdout.split('\n').filter((l) => /^\s*[\d.]+\w*\s+[\d.]+%\s+[\d.]+%\s+[\d.]+\w*\s+[\d.]+%\s+\S/.test(l))
    assert.ok(rows.length > 0, r.stdout)
    return { name: rows[0].trim().split(/\s+/).slice(5).join(' '), text: r.stdout }
  } finally {
    fs.rmSync(home, { recursive: true, force: true })
  }
}

/**
 * The route lib/core/heap-profile.js is expected to take in this node: V8's own
 * API where the running V8's profile layout was checked (Node 20, 22 and 24
 * on Linux, the versions CI runs), else node:inspector.
 */
const EXPECTED_ROUTE = [20, 22, 24].includes(Number(process.versions.node.split('.')[0])) && process.platform === 'linux' ? 'v8' : 'inspector'

module.exports = { leakToDeath, lineOf, pprofTop, goPprofTop, EXPECTED_ROUTE }
