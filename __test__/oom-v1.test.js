'use strict'
// Real OOM kills on cgroup v1: a child cgroup with a 256 MiB limit, node
// inside it with a monitor on default settings, memory growing until the
// kernel kills it. Needs root (skipped otherwise; a failure under
// OOMGUARD_REQUIRE_PRIVILEGED=1).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const h = require('./helpers/cgroup')
const { LIMIT, withRates, readLines, checkKilled, LAST_WORDS_KEYS, recordKeys } = require('./helpers/oom-scenarios')

// V8 objects at 50 MiB/s: the listener missed the top threshold in 13-16 of 75
// kills under CPU load (benchmark/watch-kills.js; V8's collections near its
// own heap limit keep the main thread from the event loop) and once in a
// suite run on a loaded machine. The last words and verdict were right in
// all 75. The suite asserts the listener at 20 MiB/s, as the Docker test
// does; the benchmark keeps measuring 50 MiB/s.
const SCENARIOS = withRates({ 'growing JS objects (V8 heap) at 50 MiB/s': 20 })

const CHILD = path.join(__dirname, 'helpers', 'oom-child.js')

function oomKillCount(dir) {
  const m = /oom_kill (\d+)/.exec(fs.readFileSync(path.join(dir, 'memory.oom_control'), 'utf8'))
  return m ? Number(m[1]) : NaN
}

async function runScenario(t, s) {
  const support = h.v1Support()
  if (support.reason) return h.privileged(t, support.reason)
  const dir = h.makeCgroup(support.own.dir)
  t.after(() => h.removeCgroup(dir))
  h.setV1Limit(dir, LIMIT)
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-oom-'))
  t.after(() => fs.rmSync(work, { recursive: true, force: true }))
  const marker = path.join(work, 'marker')
  const lastWords = path.join(work, 'termination-log')
  const before = oomKillCount(dir)
  const run = await h.runNodeInCgroup(dir, CHILD, [s.scenario, s.rate, marker, lastWords, h.REPO_ROOT, s.prefill, s.thresholds || ''], {
    timeoutMs: 90_000,
  })
  return {
    run,
    markers: readLines(marker),
    lastWordsText: fs.existsSync(lastWords) ? fs.readFileSync(lastWords, 'utf8') : null,
    oomKills: oomKillCount(dir) - before,
    source: 'cgroup-v1',
  }
}

for (const s of SCENARIOS) {
  test(`v1 OOM kill: ${s.name}`, { timeout: 120_000 }, async (t) => {
    const r = await runScenario(t, s)
    if (!r) return
    const lw = checkKilled(s, r, h.describeRun(r.run))
    t.diagnostic(`${s.name}: verdict ${lw.verdict}, last words at ratio ${lw.ratio}, growth ${(lw.growthBytesPerSec / 1048576).toFixed(0)} MiB/s, markers ${r.markers.length}`)
  })
}

test('v1: page cache far larger than the limit raises no critical event', { timeout: 120_000 }, async (t) => {
  const r = await runScenario(t, { scenario: 'pagecache', rate: 0, prefill: 0 })
  if (!r) return
  const desc = h.describeRun(r.run)
  assert.equal(r.run.code, 0, `the page-cache run survives\n${desc}`)
  assert.equal(r.oomKills, 0)
  const [report] = h.parsePrefixed(r.run.stdout, 'OOMGUARD_PAGECACHE ')
  assert.ok(report, desc)
  assert.ok(report.maxUsageRatio > 0.8, `page cache did fill the cgroup (max usage ${report.maxUsageRatio})`)
  assert.ok(!r.markers.some((m) => m.level === 3), `no critical event: ${JSON.stringify(r.markers)}`)
  // A clean exit below every threshold empties the file, so none or empty.
  assert.ok(r.lastWordsText === null || r.lastWordsText.trim() === '', `no last words: ${r.lastWordsText}`)
})

// ---------------------------------------------------------------------------
// The flight record on a real cgroup: the last-words file always holds the
// latest record from the first threshold on.

const HOLD = path.join(__dirname, 'helpers', 'oom-hold.js')

/** Start oom-hold.js in `dir`; `send(cmd)` resolves with its next answer. */
function holdInCgroup(t, dir, lastWords) {
  const { spawn } = require('node:child_process')
  const child = spawn('sh', ['-c', 'echo $$ > "$1" && shift && exec "$@"', 'sh', path.join(dir, 'cgroup.procs'), process.execPath, '--expose-gc', HOLD, lastWords, h.REPO_ROOT], {
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  t.after(() => {
    try {
      child.kill('SIGKILL')
    } catch {}
  })
  let out = ''
  let err = ''
  const waiting = []
  child.stderr.on('data', (d) => (err += d))
  child.stdout.setEncoding('utf8').on('data', (d) => {
    out += d
    let i
    while ((i = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, i)
      out = out.slice(i + 1)
      const w = waiting.shift()
      if (w) w.resolve(JSON.parse(line))
    }
  })
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr: err })))
  const next = (what) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${what} in 30 s; stderr: ${err}`)), 30_000)
      waiting.push({
        resolve: (v) => {
          clearTimeout(timer)
          resolve(v)
        },
      })
    })
  return {
    ready: next('start'),
    send: (cmd) => {
      const p = next(cmd)
      child.stdin.write(`${cmd}\n`)
      return p
    },
    exited,
  }
}

test('v1 flight record: 85% -> a level-1 record, 92% -> level 2, released -> a recovery; a clean exit empties the file', { timeout: 120_000 }, async (t) => {
  const support = h.v1Support()
  if (support.reason) return h.privileged(t, support.reason)
  const dir = h.makeCgroup(support.own.dir)
  // After hooks run in the order they are added, and one that throws stops
  // the rest: the holder is killed (holdInCgroup's hook) before the cgroup
  // is removed, or a failed assertion leaves it holding the cgroup and the
  // run waits on it.
  let holder = false
  t.after(() => {
    if (!holder) h.removeCgroup(dir)
  })
  h.setV1Limit(dir, LIMIT)
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-flight-'))
  t.after(() => fs.rmSync(work, { recursive: true, force: true }))
  const file = path.join(work, 'termination-log')
  const child = holdInCgroup(t, dir, file)
  holder = true
  t.after(() => h.removeCgroup(dir))
  const ready = await child.ready
  assert.equal(ready.limitBytes, LIMIT)
  const read = () => {
    const text = fs.readFileSync(file, 'utf8')
    assert.ok(text.endsWith('\n') && text.indexOf('\n') === text.length - 1, `one line: ${JSON.stringify(text)}`)
    assert.ok(Buffer.byteLength(text) <= 4096)
    return JSON.parse(text)
  }
  // The monitor creates the file empty at start and holds its lock (one writer per record).
  assert.equal(fs.readFileSync(file, 'utf8'), '', 'nothing written below every threshold')

  const at85 = await child.send('hold 0.85')
  assert.equal(at85.level, 1, JSON.stringify(at85))
  const r1 = read()
  assert.deepEqual([r1.level, r1.threshold, r1.final, r1.source, r1.limitBytes], [1, 0.8, false, 'cgroup-v1', LIMIT])
  assert.ok(Math.abs(r1.ratio - at85.held) < 0.011, `the record follows the basis within 1%: ${r1.ratio} vs ${at85.held}`)

  const at92 = await child.send('hold 0.92')
  assert.equal(at92.level, 2, JSON.stringify(at92))
  const r2 = read()
  assert.deepEqual([r2.level, r2.threshold, r2.final], [2, 0.9, false])
  assert.ok(r2.seq > r1.seq)
  assert.ok(Math.abs(r2.ratio - at92.held) < 0.011, `${r2.ratio} vs ${at92.held}`)

  const released = await child.send('release')
  assert.equal(released.level, 0, JSON.stringify(released))
  const r3 = read()
  assert.deepEqual([r3.level, r3.event, r3.final], [0, 'recovered', false])
  assert.ok(r3.ratio < 0.75, `recovered below the first threshold less its hysteresis: ${r3.ratio}`)

  child.send('exit').catch(() => {})
  const end = await child.exited
  assert.equal(end.code, 0, end.stderr)
  assert.equal(fs.readFileSync(file, 'utf8'), '', 'a clean exit below every threshold empties the file')
})

test('v1 OOM kill that never sees the highest threshold (thresholds 0.6, 0.9999): the file still holds a complete record', { timeout: 120_000 }, async (t) => {
  const r = await runScenario(t, { scenario: 'buffers', rate: 100, prefill: 0.5, thresholds: '0.6,0.9999' })
  if (!r) return
  const desc = h.describeRun(r.run)
  assert.ok(r.run.signal === 'SIGKILL' || r.run.code === 137, `killed\n${desc}`)
  assert.equal(r.oomKills, 1)
  assert.ok(r.lastWordsText && r.lastWordsText.endsWith('\n'), `a complete record\n${desc}`)
  const lw = JSON.parse(r.lastWordsText)
  assert.deepEqual(recordKeys(lw), LAST_WORDS_KEYS)
  assert.deepEqual(lw.thresholds, [0.6, 0.9999])
  assert.ok(lw.level >= 1)
  assert.equal(lw.final, lw.level === 2)
  assert.equal(lw.verdict, 'outside-heap', lw.reason)
  // Rewritten as the basis moved: the record is close to the kill, not at 0.6.
  assert.ok(lw.ratio > 0.95, `the latest record is at ratio ${lw.ratio} (seq ${lw.seq})`)
  assert.ok(lw.seq > 10, `rewritten on the way up: seq ${lw.seq}`)
  t.diagnostic(`kill without the top threshold: last record level ${lw.level}, ratio ${lw.ratio}, seq ${lw.seq}`)
})

// ---------------------------------------------------------------------------
// The kill benchmark's small version (benchmark/watch-kills.js runs 300):
// every pattern twice, round-robin, with a CPU-bound process on every core
// the whole time. Every kill leaves a complete record with the right
// verdict; page cache survives without a critical event. Whether the JS
// listener heard the highest threshold before the kill is reported, not
// asserted: under this load the main thread is often not run in the last
// few hundred ms (see benchmark/README.md), which no library can change.

test('v1 real kills under CPU load: every pattern, last words every time (the benchmark, small)', { timeout: 300_000 }, async (t) => {
  const support = h.v1Support()
  if (support.reason) return h.privileged(t, support.reason)
  const kills = require('./helpers/oom-kills')
  const stopHogs = kills.cpuHogs(os.cpus().length)
  t.after(stopHogs)
  const runs = []
  for (let round = 0; round < 2; round++) {
    for (const p of Object.keys(kills.PATTERNS)) runs.push(await kills.runKill(support.own.dir, p))
  }
  for (const r of runs) {
    t.diagnostic(`${r.pattern}: record ${JSON.stringify(r.record)}, listener heard ${r.listenerLevels}, last sample ${r.trace.lastStepMsBeforeKill} ms before the end`)
  }
  for (const r of runs) {
    const desc = JSON.stringify(r)
    if (kills.PATTERNS[r.pattern].survives) {
      assert.equal(r.exit.code, 0, `${r.pattern} survives: ${desc}`)
      assert.equal(r.criticalHeard, false, `${r.pattern}: no critical event: ${desc}`)
      continue
    }
    assert.equal(r.killed, true, `${r.pattern} OOM-killed: ${desc}`)
    assert.equal(r.lastWords, true, `${r.pattern}: a complete record in the file: ${desc}`)
    assert.equal(r.verdictRight, true, `${r.pattern}: verdict ${r.record && r.record.verdict}: ${desc}`)
    assert.ok(r.record.level >= 1 && r.record.ratio >= 0.8, `${r.pattern}: ${desc}`)
  }
})

// ---------------------------------------------------------------------------
// The verdict while JavaScript is too busy to hand V8's numbers over: the
// sampler thread reads the allocator's split itself (src/watch/alloc.rs). Each
// busy pattern once (benchmark/verdict.js runs them 5 times and more): the
// final record and every level record (stderr has each level change) name
// the cause.

test('v1 real kills with a busy JavaScript thread: the verdict in the final record and in every level record', { timeout: 300_000 }, async (t) => {
  const support = h.v1Support()
  if (support.reason) return h.privileged(t, support.reason)
  const kills = require('./helpers/oom-kills')
  for (const p of Object.keys(kills.BUSY).filter((name) => !kills.BUSY[name].measured)) {
    const s = kills.BUSY[p]
    const r = await kills.runKill(support.own.dir, p)
    const desc = JSON.stringify(r)
    t.diagnostic(`${p}: final ${r.record && r.record.verdict}, levels ${r.levelVerdicts}, V8 numbers ${r.v8AgeMs} ms old${r.requests !== null ? `, ${r.requests} requests` : ''}: ${r.reason}`)
    assert.equal(r.killed, true, `${p} OOM-killed: ${desc}`)
    assert.equal(r.lastWords, true, `${p}: a complete record in the file: ${desc}`)
    assert.equal(r.record.verdict, s.verdict, `${p}: the final record's verdict: ${desc}`)
    // Every level change before the kill was recorded on stderr, each with the right verdict.
    assert.ok(r.levelVerdicts.length >= 1, `${p}: level records on stderr: ${desc}`)
    assert.deepEqual(
      r.levelVerdicts,
      r.levelVerdicts.map(() => s.verdict),
      `${p}: every level record: ${desc}`,
    )
    if (p === 'http') assert.ok(r.requests > 0, `the load reached the server: ${desc}`)
  }
})
