'use strict'
// One real OOM kill, traced: the oom-child.js scenario in a fresh cgroup v1
// child with a 256 MiB limit, the sampler's own flight recorder on
// (OOMGUARD_SAMPLER_TRACE, see src/watch/trace.rs), and everything the kill left:
// the last-words file, the listener's markers, stderr, the kernel's kill
// time. Shared by the real-kill test (oom-v1.test.js) and the benchmark
// (benchmark/watch-kills.js). Needs root and cgroup v1.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const h = require('./cgroup')
const { SCENARIOS, LIMIT, MiB, readLines, stderrRecords } = require('./oom-scenarios')

const CHILD = path.join(__dirname, 'oom-child.js')
const TRACE_BYTES = 256 * 1024
const TOP_LEVEL = 3 // oom-child.js runs the default thresholds 0.8/0.9/0.95

/** The five patterns: four kills (from SCENARIOS) and page cache that must survive. */
const pick = (scenario, rate) => SCENARIOS.find((s) => s.scenario === scenario && s.rate === rate)
const PATTERNS = {
  objects: pick('objects', 50),
  arraybuffers: pick('arraybuffers', 100),
  worker: pick('worker', 100),
  sync: pick('buffers', 0),
  pagecache: { name: 'page cache far larger than the limit (no kill)', scenario: 'pagecache', rate: 0, prefill: 0, survives: true },
}

/**
 * Kills while the JavaScript thread is too busy to refresh the V8 numbers
 * the sampler has: the verdict must come from what the sampler reads
 * itself. Each is named `verdict` in the final record and in every level
 * record. `load`: the parent drives the child's /cache route with autocannon.
 */
const BUSY = {
  heapsync: { name: 'a.push({ i: 1 }) in a synchronous loop', scenario: 'heapsync', rate: 0, prefill: 0, verdict: 'v8-heap', listener: false },
  http: { name: 'a heap leak under concurrency (HTTP /cache, 10 connections)', scenario: 'http', rate: 0, prefill: 0, verdict: 'v8-heap', listener: false, load: { connections: 10 } },
  heapblocked: { name: 'JS objects at 50 MiB/s, the thread blocked between allocations', scenario: 'heapblocked', rate: 50, prefill: 0, verdict: 'v8-heap', listener: false },
  sync: PATTERNS.sync,
  // Not asserted in the tests: malloc's totals cost milliseconds here, so
  // the split can be older than the last samples; the verdict must then
  // not overclaim (v8-heap or unknown; benchmark/verdict.js reports it).
  fragsync: { name: 'a.push({ i: 1 }) after fragmenting malloc', scenario: 'fragsync', rate: 0, prefill: 0, verdict: 'v8-heap', listener: false, measured: true },
}

/** The sampler trace's records, oldest first. */
function readTrace(file) {
  let buf
  try {
    buf = fs.readFileSync(file)
  } catch {
    return []
  }
  const count = Number(buf.readBigUInt64LE(0))
  const slots = Math.floor((buf.length - 64) / 64)
  const out = []
  for (let n = Math.max(0, count - slots); n < count; n++) {
    const o = 64 + (n % slots) * 64
    out.push({
      kind: ['', 'pass', 'step', 'wait', 'woke'][buf.readUInt32LE(o)] || 'unknown',
      level: buf.readUInt32LE(o + 4),
      wallMs: buf.readDoubleLE(o + 8),
      ratio: buf.readDoubleLE(o + 16),
      a: buf.readDoubleLE(o + 24),
      b: buf.readDoubleLE(o + 32),
      c: buf.readDoubleLE(o + 40),
      i: [buf.readInt32LE(o + 48), buf.readInt32LE(o + 52), buf.readInt32LE(o + 56)],
    })
  }
  return out
}

/** Start `n` CPU-bound processes (in this process's cgroup); returns stop(). */
function cpuHogs(n) {
  const kids = []
  for (let i = 0; i < n; i++) {
    kids.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }))
  }
  const stop = () => {
    for (const k of kids) {
      try {
        process.kill(k.pid, 'SIGKILL')
      } catch {}
    }
  }
  process.once('exit', stop)
  return stop
}

function oomKillCount(dir) {
  try {
    const m = /oom_kill (\d+)/.exec(fs.readFileSync(path.join(dir, 'memory.oom_control'), 'utf8'))
    return m ? Number(m[1]) : NaN
  } catch {
    return NaN
  }
}

/**
 * Run one pattern once in a fresh child cgroup under `parentDir`. `klog` (a
 * benchmark/util.js KernelLog) gives the kernel's kill time when available.
 */
async function runKill(parentDir, patternName, { klog = null, timeoutMs = 90_000, pkgDir = h.REPO_ROOT } = {}) {
  const s = PATTERNS[patternName] || BUSY[patternName]
  const name = h.uniqueName('oomguard-kill')
  const dir = h.makeCgroup(parentDir, name)
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-kill-'))
  try {
    h.setV1Limit(dir, LIMIT)
    const marker = path.join(work, 'marker')
    const lastWords = path.join(work, 'termination-log')
    const traceFile = path.join(work, 'trace')
    // Written here, so its pages are charged to this process, not the child.
    fs.writeFileSync(traceFile, Buffer.alloc(TRACE_BYTES))
    const before = oomKillCount(dir)
    const running = h.runNodeInCgroup(dir, CHILD, [s.scenario, s.rate, marker, lastWords, pkgDir, s.prefill], {
      timeoutMs,
      env: { ...process.env, OOMGUARD_SAMPLER_TRACE: traceFile },
    })
    const load = s.load ? drive(`${marker}.port`, running, s.load) : null
    const run = await running
    const endMs = Date.now()
    const requests = load ? await load : null
    let kernel = null
    if (klog) {
      try {
        klog.calibrate()
        kernel = klog.findOomKill(name)
      } catch {}
    }
    const text = fs.existsSync(lastWords) ? fs.readFileSync(lastWords, 'utf8') : null
    return judge(s, patternName, {
      requests,
      run,
      text,
      markers: readLines(marker),
      trace: readTrace(traceFile),
      oomKills: oomKillCount(dir) - before,
      killMs: kernel ? kernel.killMs : null,
      endMs,
    })
  } finally {
    try {
      h.removeCgroup(dir)
    } catch {}
    fs.rmSync(work, { recursive: true, force: true })
  }
}

/**
 * Load the child's /cache route from this process (outside the child's
 * cgroup) once it has written its port to `portFile`, until `running`
 * settles; at most 60 s. Resolves with the number of requests sent.
 */
async function drive(portFile, running, { connections }) {
  const autocannon = require('autocannon')
  let done = false
  running.then(
    () => (done = true),
    () => (done = true),
  )
  let port = null
  while (!done && port === null) {
    try {
      port = Number(fs.readFileSync(portFile, 'utf8')) || null
    } catch {}
    if (port === null) await new Promise((r) => setTimeout(r, 10))
  }
  if (port === null) return 0
  const instance = autocannon({ url: `http://127.0.0.1:${port}/cache`, connections, duration: 60 })
  instance.on('error', () => {})
  let sent = 0
  instance.on('response', () => sent++)
  await Promise.race([running.catch(() => {}), new Promise((r) => instance.on('done', r))])
  instance.stop()
  return sent
}

/** What one run shows; `ok` says whether it met every target. */
function judge(s, patternName, { run, text, markers, trace, oomKills, killMs, endMs, requests = null }) {
  const killed = (run.signal === 'SIGKILL' || run.code === 137) && oomKills === 1 && !run.timedOut
  let record = null
  let complete = false
  try {
    record = text ? JSON.parse(text) : null
    complete = !!record && text.endsWith('\n') && Buffer.byteLength(text) <= 4096 && record.oomguard === 'last-words' && record.limitBytes === LIMIT
  } catch {}
  const kill = killMs ?? endMs
  const steps = trace.filter((r) => r.kind === 'step' && r.wallMs <= kill)
  const last = steps[steps.length - 1] || null
  const topStep = steps.find((r) => r.level >= TOP_LEVEL)
  const writes = steps.filter((r) => r.i[0] !== 0)
  const failed = writes.filter((r) => r.i[1] > 0)
  const waits = trace.filter((r) => r.kind === 'wait' && r.wallMs <= kill)
  const lastWait = waits[waits.length - 1] || null
  const levelMarks = markers.filter((m) => m.level !== undefined)
  const heardTop = levelMarks.find((m) => m.level === TOP_LEVEL)
  const out = {
    pattern: patternName,
    exit: { code: run.code, signal: run.signal, timedOut: run.timedOut, ms: run.ms },
    killed,
    killSource: killMs !== null ? 'kmsg' : 'exit',
    lastWords: complete,
    // What the file held when it did not hold a record: null (no file) or its first bytes.
    fileText: complete ? undefined : text === null ? null : text.slice(0, 80),
    record: record && { level: record.level, final: record.final, event: record.event, ratio: record.ratio, seq: record.seq, verdict: record.verdict, time: record.time },
    verdictRight: !!record && record.verdict === s.verdict,
    // The verdict of every level record (stderr has each level change).
    levelVerdicts: stderrRecords(run.stderr).map((r) => r.verdict),
    reason: record ? record.reason : null,
    v8AgeMs: record && record.v8 ? record.v8.ageMs : null,
    requests,
    recordLeadMs: record ? kill - Date.parse(record.time) : null,
    listenerLevels: levelMarks.map((m) => m.level),
    listenerBeforeKill: !!heardTop && heardTop.t <= kill,
    listenerLeadMs: heardTop ? kill - heardTop.t : null,
    // The application was told at all: the listener ran for some threshold before the kill.
    listenerAnyBeforeKill: levelMarks.some((m) => m.t <= kill),
    listenerFirstLeadMs: levelMarks.length ? kill - levelMarks[0].t : null,
    stderrLevels: stderrRecords(run.stderr).map((r) => r.level),
    // The sampler's own account (src/watch/trace.rs).
    trace: {
      records: trace.length,
      steps: steps.length,
      lastStepMsBeforeKill: last ? kill - last.wallMs : null,
      lastStepRatio: last ? last.ratio : null,
      lastStepLevel: last ? last.level : null,
      topSeenMsBeforeKill: topStep ? kill - topStep.wallMs : null,
      writes: writes.length,
      failedWrites: failed.map((r) => ({ errno: r.i[1], msBeforeKill: kill - r.wallMs, level: r.level })),
      lastWriteMsBeforeKill: writes.length ? kill - writes[writes.length - 1].wallMs : null,
      lastWaitMs: lastWait ? lastWait.a : null,
      lastWaitMsBeforeKill: lastWait ? kill - lastWait.wallMs : null,
      lastWaitFds: lastWait ? lastWait.i[0] : null,
    },
  }
  // What the single-shot writer (before the flight record) would have left:
  // a line only if a step saw the top threshold and its write went through.
  out.singleShotWouldWrite = !!topStep && topStep.i[1] <= 0
  out.criticalHeard = levelMarks.some((m) => m.level === TOP_LEVEL)
  if (s.survives) {
    // Survives, and raises no critical event (the working set stays low).
    out.ok = run.code === 0 && oomKills === 0 && !out.criticalHeard
  } else {
    out.ok = killed && complete && out.verdictRight && out.levelVerdicts.every((v) => v === s.verdict) && (!s.listener || out.listenerBeforeKill)
  }
  return out
}

module.exports = { PATTERNS, BUSY, TOP_LEVEL, runKill, cpuHogs, readTrace, MiB }
