#!/usr/bin/env node
'use strict'
// What watching costs.
//
// (a) CPU: the sampler thread's CPU time while the working set sits steady at
//     shares of a cgroup v1 limit (default 10%, 50%, 90% of 256 MiB), from
//     /proc/self/task/<tid>/schedstat (ns, exact) and .../stat (utime+stime in
//     clock ticks, CLK_TCK from getconf), per minute and as % of one core.
//     Two cases side by side, each in its own cgroup: cgroupfs writable (the
//     kernel's usage thresholds wake the sampler) and read-only, as Docker and
//     Kubernetes mount it (node in its own mount namespace with the v1 memory
//     mount remounted `ro`: no kernel wake-up can be armed); with --compare,
//     the same two cases of another build beside them. A control process
//     without oomguard holds the same memory at the same time in its own
//     cgroup; the whole-process difference is oomguard's full cost (the
//     sampler plus the main thread's V8-numbers refresh timer). For scale,
//     the floor beside them at each read-only interval: a C loop (floor.c)
//     that waits with ppoll and preads the files a tick reads, no logic:
//     what the wake-ups and reads alone cost on this machine.
// (b) RSS added by require('oomguard') and watch(): fresh processes in a
//     cgroup with the limit, median of several, next to control processes
//     that load nothing and wait the same (RSS drift on its own).
// (c) monitor.level and monitor.current, ns per call, tight loop, median of
//     round-robin rounds, next to a plain property read.
// (d) Thresholds under a fast fill: a monitor, default thresholds, both cases,
//     while a python3 process in its cgroup faults in fresh memory (MADV_POPULATE_WRITE)
//     at --fill-mib-per-sec (2 GiB/s) from its steady state to 97% of the
//     limit; every threshold must be caught: seen by a sample still below the
//     next one (below the limit, for the highest), never jumped.
//
//   node benchmark/watch-cost.js [--json] [--check] [--parts a,b,c,d] [--seconds 20] ...
//
// (a), (b) and (d) need root and cgroup v1 (skipped with the reason otherwise).

const fs = require('node:fs')
const path = require('node:path')
const h = require('../__test__/helpers/cgroup')
const u = require('./util')

const { MiB, fmt, median, quantile, summary } = u
const COST_CHILD = path.join(__dirname, 'cost-child.js')
const FILL_CHILD = path.join(__dirname, 'fill-child.js')
// (d) fills to this share of the limit (the working set; the kernel reclaims the page cache above it).
const FILL_STOP = 0.97
const RSS_CHILD = path.join(__dirname, 'rss-child.js')

const SPEC = {
  parts: { def: 'a,b,c,d', type: 'str', help: 'which parts to run' },
  limitMib: { def: 256, type: 'int', help: '(a, b, d) memory.limit_in_bytes of the cgroups, MiB' },
  cases: { def: 'writable,read-only', type: 'str', help: '(a, d) cgroupfs as the monitored processes see it' },
  compare: { def: null, type: 'str', help: '(a, d) a package directory with another build (the one before a change): its cases run beside, named "… (compare)"' },
  levels: { def: [0.1, 0.5, 0.9], type: 'list', help: '(a) shares of the limit to hold, ascending' },
  seconds: { def: 20, type: 'num', help: '(a) measurement window per level, s' },
  settleMs: { def: 2000, type: 'int', help: '(a) wait after growing to a level, before its window' },
  sequential: { def: false, type: 'bool', help: '(a) run the control process after the monitored ones instead of beside them' },
  fillRuns: { def: 5, type: 'int', help: '(d) fills per case' },
  fillMibPerSec: { def: 2048, type: 'num', help: '(d) fill rate, MiB/s' },
  processes: { def: 7, type: 'int', help: '(b) fresh processes per variant' },
  waitMs: { def: 300, type: 'int', help: '(b) idle wait before require and after watch()' },
  rounds: { def: 31, type: 'int', help: '(c) round-robin rounds' },
  batchMs: { def: 10, type: 'num', help: '(c) target duration of one timed batch, ms' },
  save: { def: null, type: 'str', help: 'also write the JSON results to this file' },
  json: { def: false, type: 'bool', help: 'machine-readable results on stdout (messages on stderr)' },
  check: { def: false, type: 'bool', help: 'exit 1 unless the targets hold (see README)' },
}
const USAGE = 'usage: node benchmark/watch-cost.js [options]'

// Sampler CPU, % of one core, by the share of the limit held (issue 8: at
// 10% and 50% of 256 MiB, cgroupfs read-only as in a container, and writable).
const TARGET_CPU_PCT = [
  [0.1, 0.02],
  [0.5, 0.05],
]
const targetFor = (share) => (TARGET_CPU_PCT.find(([s]) => share <= s + 1e-9) || [null, null])[1]
const TARGET_RSS_MIB = 2

/** The monitored cases: [{ name, readOnly, pkg }]. */
function casesOf(opts) {
  const names = opts.cases.split(',').map((s) => s.trim())
  for (const n of names) if (n !== 'writable' && n !== 'read-only') throw new Error(`--cases: ${n}: writable or read-only`)
  const out = names.map((n) => ({ name: n, readOnly: n === 'read-only', pkg: h.REPO_ROOT }))
  if (opts.compare) for (const n of names) out.push({ name: `${n} (compare)`, readOnly: n === 'read-only', pkg: path.resolve(opts.compare) })
  return out
}

// ------------------------------------------------------------------ (a) CPU

async function partCpu(opts, support, log) {
  const limit = opts.limitMib * MiB
  const cases = casesOf(opts)
  const dirs = {}
  try {
    for (const c of [...cases.map((x) => x.name), 'control']) {
      dirs[c] = h.makeCgroup(support.own.dir, h.uniqueName('oomguard-bench'))
      h.setV1Limit(dirs[c], limit)
    }
    const timeoutMs = (opts.levels.length * (opts.seconds + opts.settleMs / 1000 + 10) + 30) * 1000
    const start = (c) =>
      h.runNodeInCgroup(dirs[c ? c.name : 'control'], COST_CHILD, [c ? 'monitor' : 'control', opts.levels.join(','), opts.seconds, opts.settleMs, c ? c.pkg : h.REPO_ROOT], {
        timeoutMs,
        readOnly: c && c.readOnly ? support.own.mountPoint : undefined,
      })
    log(
      `(a) holding ${opts.levels.map((l) => `${l * 100}%`).join(', ')} of ${opts.limitMib} MiB for ${opts.seconds} s each: ${cases.map((c) => c.name).join(', ')} ` +
        `and control ${opts.sequential ? 'one after the other' : 'side by side'}…`,
    )
    // The floor, beside the monitored processes for as long as they hold
    // their levels: at each level's read-only interval, reading the files a
    // tick reads where the cgroup's own limit binds.
    const ro = cases.find((c) => c.readOnly)
    const floor = ro
      ? startFloor(
          opts,
          ['memory.usage_in_bytes', 'memory.limit_in_bytes'].map((f) => path.join(dirs[ro.name], f)),
          log,
        )
      : null
    let runs
    try {
      if (opts.sequential) {
        runs = []
        for (const c of [...cases, null]) runs.push(await start(c))
      } else runs = await Promise.all([...cases, null].map(start))
    } finally {
      if (floor) floor.result = await floor.done
    }
    const parsed = runs.map((r, i) => {
      const name = i < cases.length ? cases[i].name : 'control'
      if (r.code !== 0) throw new Error(`cost-child (${name}) failed:\n${h.describeRun(r)}`)
      return h.parsePrefixed(r.stdout, 'OOMGUARD_COST ')
    })
    const ctl = parsed[cases.length]
    const tck = u.clkTck()
    const perMin = (ns, s) => (ns === null ? null : ns / 1e6 / s) * 60
    const ticksPerMin = (t, s) => (t === null ? null : ((t * 1000) / tck / s) * 60)
    const pct = (msPerMin) => (msPerMin === null ? null : (msPerMin / 60000) * 100)
    const rows = []
    cases.forEach((cs, k) => {
      parsed[k].forEach((m, i) => {
        const c = ctl[i]
        const samplerMsMin = perMin(m.sampler.ns, m.windowS)
        const processMon = perMin(m.process.ns, m.windowS)
        const processCtl = perMin(c.process.ns, c.windowS)
        const target = targetFor(m.share)
        rows.push({
          case: cs.name,
          share: m.share,
          ratio: m.workingSetBytes[0] / m.limitBytes,
          ratioControl: c.workingSetBytes[0] / c.limitBytes,
          level: m.monitor.level,
          windowS: m.windowS,
          samplesPerSec: m.monitor.samples / m.windowS,
          snapshotsPerSec: m.monitor.snapshots === null ? null : m.monitor.snapshots / m.windowS,
          triggers: m.monitor.triggers,
          intervalMs: m.monitor.intervalMs,
          samplerWakeupsPerSec: m.sampler.wakeups / m.windowS,
          sampler: {
            msPerMin: samplerMsMin,
            pctCore: pct(samplerMsMin),
            ticksMsPerMin: ticksPerMin(m.sampler.ticks, m.windowS),
            usPerSample: m.sampler.ns / 1000 / Math.max(1, m.monitor.samples),
            usPerWakeup: m.sampler.ns / 1000 / Math.max(1, m.sampler.wakeups),
          },
          mainThread: {
            monitorMsPerMin: perMin(m.main.ns, m.windowS),
            controlMsPerMin: perMin(c.main.ns, c.windowS),
            monitorWakeupsPerSec: m.main.wakeups / m.windowS,
            controlWakeupsPerSec: c.main.wakeups / c.windowS,
          },
          process: {
            monitorMsPerMin: processMon,
            controlMsPerMin: processCtl,
            deltaMsPerMin: processMon - processCtl,
            deltaPctCore: pct(processMon - processCtl),
            threads: [m.process.threads, c.process.threads],
          },
          target: target === null || cs.name.endsWith('(compare)') ? null : { pctCore: target, pass: pct(samplerMsMin) < target },
        })
      })
    })
    return { clkTck: tck, rows, floor: floor && floor.result }
  } finally {
    for (const d of Object.values(dirs)) h.removeCgroup(d)
  }
}

// The floor under the sampler's cost: a C loop (benchmark/floor.c, compiled
// here with cc) that only waits with ppoll and then preads the files a
// usage-only tick reads, its own thread's schedstat: what that many
// wake-ups and reads cost on this machine, at the same time, with no logic
// at all. Without a C compiler, a bare python3 sleep loop (no reads). One
// loop per level, at the interval a read-only sampler keeps there (the
// distance to the first threshold at the assumed 2 GiB/s), for as long as
// (a) holds its levels.
const FLOOR_PY = `
import sys, time
ms, seconds = float(sys.argv[1]), float(sys.argv[2])
def ns():
    return int(open('/proc/thread-self/schedstat').read().split()[0])
n = max(1, int(seconds * 1000 / ms))
t0, c0 = time.perf_counter(), ns()
for _ in range(n):
    time.sleep(ms / 1000)
print('FLOOR {"ns": %d, "seconds": %f, "wakeups": %d, "files": 0}' % (ns() - c0, time.perf_counter() - t0, n))
`
function startFloor(opts, files, log) {
  const cp = require('node:child_process')
  const exe = path.join(require('node:os').tmpdir(), `oomguard-floor-${process.pid}`)
  let cmd
  try {
    u.buildFloor(exe)
    cmd = { kind: `C ppoll loop + ${files.length} preads (${files.map((f) => path.basename(f)).join(', ')})`, exe, args: (ms, s) => [String(ms), String(s), ...files] }
  } catch {
    cmd = { kind: 'python3 sleep loop (no C compiler)', exe: 'python3', args: (ms, s) => ['-c', FLOOR_PY, String(ms), String(s)] }
  }
  const seconds = opts.levels.length * (opts.seconds + opts.settleMs / 1000)
  const levels = u.floorLevels(opts.levels, opts.limitMib * MiB)
  log(`(a) floor beside them: ${cmd.kind}, for ${fmt(seconds)} s at ${levels.map((l) => `${fmt(l.intervalMs)} ms`).join(', ')}`)
  const one = ({ share, intervalMs }) =>
    new Promise((resolve) => {
      cp.execFile(cmd.exe, cmd.args(intervalMs, seconds), { encoding: 'utf8', timeout: (seconds + 30) * 1000 }, (err, stdout) => {
        if (err) return resolve({ share, skipped: `${cmd.exe}: ${err.message.split('\n')[0]}` })
        const line = h.parsePrefixed(stdout, 'FLOOR ')[0]
        resolve({ share, intervalMs, wakeupsPerSec: line.wakeups / line.seconds, pctCore: (line.ns / 1e9 / line.seconds) * 100, usPerWakeup: line.ns / 1000 / line.wakeups })
      })
    })
  const done = Promise.all(levels.map(one)).then((rows) => {
    fs.rmSync(exe, { force: true })
    const bad = rows.find((r) => r.skipped)
    return bad ? { kind: cmd.kind, skipped: bad.skipped } : { kind: cmd.kind, rows }
  })
  return { done, result: null }
}

// ------------------------------------------------------------------ (b) RSS

async function partRss(opts, support, log) {
  const dir = h.makeCgroup(support.own.dir, h.uniqueName('oomguard-bench'))
  try {
    h.setV1Limit(dir, opts.limitMib * MiB)
    log(`(b) ${opts.processes} fresh processes per variant…`)
    const res = { oomguard: [], control: [] }
    for (let i = 0; i < opts.processes; i++) {
      for (const mode of i % 2 ? ['control', 'oomguard'] : ['oomguard', 'control']) {
        const r = await h.runNodeInCgroup(dir, RSS_CHILD, [mode, opts.waitMs, h.REPO_ROOT], { timeoutMs: 30000 })
        if (r.code !== 0) throw new Error(`rss-child failed:\n${h.describeRun(r)}`)
        res[mode].push(h.parsePrefixed(r.stdout, 'OOMGUARD_RSS ')[0])
      }
    }
    const mib = (v) => (v === null ? null : v / MiB)
    const stat = (arr, from, to, k) => {
      const d = arr.map((r) => r[to][k] - r[from][k])
      return { median: mib(median(d)), p25: mib(quantile(d, 0.25)), p75: mib(quantile(d, 0.75)) }
    }
    const kinds = ['rss', 'anon', 'file']
    const by = (arr, from, to) => Object.fromEntries(kinds.map((k) => [k, stat(arr, from, to, k)]))
    const steps = {
      native: by(res.oomguard, 'before', 'afterNative'),
      lib: by(res.oomguard, 'afterNative', 'afterRequire'),
      require: by(res.oomguard, 'before', 'afterRequire'),
      watch: by(res.oomguard, 'afterRequire', 'afterWatch'),
      total: by(res.oomguard, 'before', 'afterWatch'),
      controlDrift: by(res.control, 'before', 'afterWatch'),
    }
    return {
      processes: opts.processes,
      baselineMiB: mib(median(res.oomguard.map((r) => r.before.rss))),
      source: res.oomguard[0] && res.oomguard[0].source,
      steps,
      net: steps.total.rss.median - steps.controlDrift.rss.median,
      mappingsMiB: Object.fromEntries(['node', 'addon', 'anon', 'other'].map((k) => [k, mib(median(res.oomguard.map((r) => r.mappings[k])))])),
      target: { mib: TARGET_RSS_MIB, pass: steps.total.rss.median < TARGET_RSS_MIB, anonPass: steps.total.anon.median < TARGET_RSS_MIB },
      raw: res,
    }
  } finally {
    h.removeCgroup(dir)
  }
}

// ------------------------------------------------------------------ (d) fills

async function partFill(opts, support, log) {
  const limit = opts.limitMib * MiB
  const cases = casesOf(opts)
  const runs = []
  log(`(d) ${opts.fillRuns} fills per case at ${opts.fillMibPerSec} MiB/s to ${FILL_STOP * 100}% of ${opts.limitMib} MiB: ${cases.map((c) => c.name).join(', ')}…`)
  for (let i = 0; i < opts.fillRuns; i++) {
    for (const c of i % 2 ? [...cases].reverse() : cases) {
      const dir = h.makeCgroup(support.own.dir, h.uniqueName('oomguard-bench'))
      try {
        h.setV1Limit(dir, limit)
        const r = await h.runNodeInCgroup(dir, FILL_CHILD, [opts.fillMibPerSec * MiB, FILL_STOP, opts.settleMs, c.pkg], {
          timeoutMs: 60000,
          readOnly: c.readOnly ? support.own.mountPoint : undefined,
        })
        if (r.code !== 0) throw new Error(`fill-child (${c.name}) failed:\n${h.describeRun(r)}`)
        runs.push({ case: c.name, ...h.parsePrefixed(r.stdout, 'OOMGUARD_FILL ')[0] })
      } finally {
        h.removeCgroup(dir)
      }
    }
  }
  const rows = cases.map((c) => {
    const mine = runs.filter((r) => r.case === c.name)
    const missed = mine.reduce((n, r) => n + r.seen.filter((s) => !s.caught).length, 0)
    return {
      case: c.name,
      runs: mine.length,
      thresholds: mine.length * (mine[0] ? mine[0].thresholds.length : 0),
      missed,
      rateMibPerSec: summary(mine.map((r) => r.fill.rate / MiB)),
      // How far past each threshold the sample that saw it was, % of the limit.
      overshootPct: mine[0] ? mine[0].thresholds.map((t, i) => summary(mine.map((r) => (r.seen[i].ratio === null ? null : (r.seen[i].ratio - t) * 100)))) : [],
      startRatio: summary(mine.map((r) => r.startRatio)),
      // The sampler waiting for a CPU during the fill, ms: median, and in the runs that missed.
      samplerWaitMs: summary(mine.map((r) => r.samplerWaitMs)),
      samplerWaitMsMissed: mine.filter((r) => r.seen.some((x) => !x.caught)).map((r) => r.samplerWaitMs),
      triggers: mine[0] ? mine[0].triggers : [],
      pass: c.name.endsWith('(compare)') ? null : missed === 0 && median(mine.map((r) => r.fill.rate)) >= 0.95 * opts.fillMibPerSec * MiB,
    }
  })
  return { rows, runs }
}

// ------------------------------------------------------------------ (c) ns per call

let sink = 0

function partReads(opts, log) {
  const oomguard = require(u.ROOT)
  const monitor = oomguard.watch({ lastWords: false })
  const plain = { level: 0, ratio: 0.5 }
  const f64 = new Float64Array(32)
  class Getter {
    constructor() {
      this._block = f64
    }
    get level() {
      return this._block[1]
    }
  }
  const getter = new Getter()
  // One function per contender, so each loop stays monomorphic.
  const contenders = [
    {
      name: 'plain property read (`obj.level`)',
      key: 'plain',
      run(n) {
        let s = 0
        for (let i = 0; i < n; i++) s += plain.level
        return s
      },
    },
    {
      name: 'JS getter over a Float64Array (what `level` does, without the addon)',
      key: 'getter',
      run(n) {
        let s = 0
        for (let i = 0; i < n; i++) s += getter.level
        return s
      },
    },
    {
      name: '`monitor.level`',
      key: 'level',
      run(n) {
        let s = 0
        for (let i = 0; i < n; i++) s += monitor.level
        return s
      },
    },
    {
      name: '`monitor.current` (builds the sample object)',
      key: 'current',
      run(n) {
        let s = 0
        for (let i = 0; i < n; i++) s += monitor.current.samples
        return s
      },
    },
    {
      name: '`getMemoryMetrics()` (reads the files; for scale)',
      key: 'getMemoryMetrics',
      run(n) {
        let s = 0
        for (let i = 0; i < n; i++) s += oomguard.getMemoryMetrics().limitBytes > 0 ? 1 : 0
        return s
      },
    },
  ]
  log(`(c) ${opts.rounds} rounds of ~${opts.batchMs} ms batches…`)
  const time = (c, n) => {
    const t = process.hrtime.bigint()
    sink += c.run(n)
    return Number(process.hrtime.bigint() - t)
  }
  for (const c of contenders) {
    // Warm up (JIT), then size a batch to ~batchMs.
    let n = 100
    for (let t = 0; t < 400e6; ) {
      const ns = time(c, n)
      t += ns
      if (ns < 5e6) n *= 2
    }
    const per = Math.min(...[0, 1, 2].map(() => time(c, n) / n))
    c.batch = Math.max(10, Math.round((opts.batchMs * 1e6) / per))
    c.samples = []
  }
  for (let r = 0; r < opts.rounds; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(r + k) % contenders.length]
      c.samples.push(time(c, c.batch) / c.batch)
    }
  }
  const source = monitor.current.source
  monitor.close()
  return {
    source,
    rows: contenders.map((c) => ({
      key: c.key,
      name: c.name,
      nsPerCall: median(c.samples),
      p25: quantile(c.samples, 0.25),
      p75: quantile(c.samples, 0.75),
      callsPerBatch: c.batch,
    })),
  }
}

// ------------------------------------------------------------------ main

async function main() {
  const opts = u.parseArgs(process.argv.slice(2), SPEC, USAGE)
  const parts = new Set(opts.parts.split(',').map((s) => s.trim()))
  const log = opts.json ? (...a) => console.error(...a) : (...a) => console.log(...a)
  const progress = (...a) => console.error(...a)
  const machine = u.machineInfo()
  const vers = u.versions()
  const result = { machine, versions: vers, options: opts, cpu: null, rss: null, reads: null, fill: null, skipped: [] }

  const needCgroup = parts.has('a') || parts.has('b') || parts.has('d')
  const support = needCgroup ? h.v1Support() : null
  if (support && support.reason) {
    for (const p of ['a', 'b', 'd']) if (parts.has(p)) result.skipped.push({ part: p, reason: support.reason })
    progress(`watch-cost: skipping (a), (b) and (d): ${support.reason}`)
  }
  const canCgroup = support && !support.reason
  if (parts.has('a') && canCgroup) result.cpu = await partCpu(opts, support, progress)
  if (parts.has('b') && canCgroup) result.rss = await partRss(opts, support, progress)
  if (parts.has('c')) result.reads = partReads(opts, progress)
  if (parts.has('d') && canCgroup) result.fill = await partFill(opts, support, progress)

  const checks = []
  if (result.cpu) for (const r of result.cpu.rows) if (r.target) checks.push({ what: `sampler CPU at ${r.share * 100}%, ${r.case}`, pass: r.target.pass })
  if (result.fill) for (const r of result.fill.rows) if (r.pass !== null) checks.push({ what: `every threshold caught at ${opts.fillMibPerSec} MiB/s, ${r.case}`, pass: r.pass })
  if (result.rss) checks.push({ what: 'RSS added', pass: result.rss.target.pass })
  result.checks = checks

  const json = JSON.stringify(result, null, 1)
  if (opts.save) fs.writeFileSync(opts.save, `${json}\n`)
  if (opts.json) {
    console.log(json)
  } else {
    log(u.describeMachine(machine, vers))
    if (result.cpu) {
      const c = result.cpu
      log('')
      log(
        `(a) CPU while the working set holds steady, ${opts.limitMib} MiB cgroup v1 limit, ${opts.seconds} s window per level ` +
          `(sampler: schedstat ns; stat utime+stime at CLK_TCK ${c.clkTck} beside it; % = of one core; control = the same process without oomguard, ${opts.sequential ? 'run after it' : 'run beside it'}):`,
      )
      log('')
      log(
        u.table(
          [
            'cgroupfs',
            'working set',
            'level',
            'samples/s (interval ms)',
            'snapshots/s',
            'sampler wake-ups/s',
            'sampler µs/wake-up',
            'sampler CPU ms/min',
            'sampler % core',
            'sampler µs/sample',
            'stat ticks ms/min',
            'main thread ms/min (wakeups/s): oomguard / control',
            'whole process ms/min: oomguard / control',
            'oomguard total % core',
            `target (sampler ${TARGET_CPU_PCT.map(([s, p]) => `< ${p}% at ${s * 100}%`).join(', ')})`,
          ],
          c.rows.map((r) => [
            `${r.case}${r.triggers && r.triggers.length ? '' : ' (no kernel wake-up)'}`,
            `${fmt(r.ratio * 100)}% (target ${r.share * 100}%)`,
            String(r.level),
            `${fmt(r.samplesPerSec)} (${fmt(r.intervalMs)})`,
            fmt(r.snapshotsPerSec, 2),
            fmt(r.samplerWakeupsPerSec),
            fmt(r.sampler.usPerWakeup),
            fmt(r.sampler.msPerMin, 2),
            `${fmt(r.sampler.pctCore, 3)}%`,
            fmt(r.sampler.usPerSample),
            fmt(r.sampler.ticksMsPerMin, 0),
            `${fmt(r.mainThread.monitorMsPerMin, 2)} (${fmt(r.mainThread.monitorWakeupsPerSec)}) / ${fmt(r.mainThread.controlMsPerMin, 2)} (${fmt(r.mainThread.controlWakeupsPerSec)})`,
            `${fmt(r.process.monitorMsPerMin, 1)} / ${fmt(r.process.controlMsPerMin, 1)}`,
            `${fmt(r.process.deltaPctCore, 3)}%`,
            r.target ? `${r.target.pass ? 'pass' : '**FAIL**'} (< ${r.target.pctCore}%)` : 'n/a',
          ]),
        ),
      )
      if (c.floor && c.floor.rows) {
        log('')
        log(
          `for scale, the floor: a ${c.floor.kind} at the read-only intervals, beside them (its thread's schedstat): ` +
            c.floor.rows.map((f) => `${fmt(f.intervalMs)} ms: ${fmt(f.wakeupsPerSec)} wake-ups/s, ${fmt(f.usPerWakeup)} µs each, ${fmt(f.pctCore, 3)}% of a core`).join('; '),
        )
      } else if (c.floor) log(`(floor skipped: ${c.floor.skipped})`)
    }
    if (result.fill) {
      const f = result.fill
      log('')
      log(
        `(d) fills at ${opts.fillMibPerSec} MiB/s (python3, MADV_POPULATE_WRITE) from the steady state to ${FILL_STOP * 100}% of ${opts.limitMib} MiB, default thresholds; overshoot = how far past the threshold the sample that saw it was, % of the limit, median (max):`,
      )
      log('')
      log(
        u.table(
          [
            'cgroupfs',
            'kernel wake-ups',
            'fills',
            'fill MiB/s, median (min)',
            'thresholds missed',
            'overshoot per threshold',
            'sampler waiting for a CPU during the fill, ms: median (in runs that missed)',
            'pass',
          ],
          f.rows.map((r) => [
            r.case,
            r.triggers.length ? r.triggers.join(', ') : 'none',
            String(r.runs),
            `${fmt(r.rateMibPerSec.median, 0)} (${fmt(
              quantile(
                f.runs.filter((x) => x.case === r.case).map((x) => x.fill.rate / MiB),
                0,
              ),
              0,
            )})`,
            `${r.missed} of ${r.thresholds}`,
            r.overshootPct
              .map(
                (o, i) =>
                  `${fmt(o.median, 2)} (${fmt(
                    quantile(
                      f.runs.filter((x) => x.case === r.case).map((x) => (x.seen[i].ratio === null ? null : (x.seen[i].ratio - x.thresholds[i]) * 100)),
                      1,
                    ),
                    2,
                  )})`,
              )
              .join(' / '),
            `${fmt(r.samplerWaitMs.median, 1)} (${r.samplerWaitMsMissed.map((v) => fmt(v, 1)).join(', ') || '–'})`,
            r.pass === null ? 'n/a' : r.pass ? 'pass' : '**FAIL**',
          ]),
        ),
      )
    }
    if (result.rss) {
      const r = result.rss
      const q = (s) => `${fmt(s.median, 2)} (${fmt(s.p25, 2)}–${fmt(s.p75, 2)})`
      const row = (name, st) => [name, q(st.rss), q(st.anon), q(st.file)]
      log('')
      log(
        `(b) RSS added, MiB, median (p25–p75) of ${r.processes} fresh processes each, in a ${opts.limitMib} MiB cgroup (source ${r.source}); ` +
          `RSS before: ${fmt(r.baselineMiB, 1)} MiB; anon/file = RssAnon/RssFile of /proc/self/status:`,
      )
      log('')
      log(
        u.table(
          ['step', 'RSS', 'anon', 'file-backed'],
          [
            row('napi-rs loader + `.node` (`index.js`)', r.steps.native),
            row("the package's JS (`lib/`)", r.steps.lib),
            row('`require(oomguard)` in all', r.steps.require),
            row(`\`watch()\`, ${opts.waitMs} ms later`, r.steps.watch),
            row('**total**', r.steps.total),
            row('control: the same waits, nothing loaded', r.steps.controlDrift),
          ],
        ),
      )
      const mp = r.mappingsMiB
      log('')
      log(
        `file-backed pages by mapping (smaps, median MiB): the node executable ${fmt(mp.node, 2)}, the .node addon ${fmt(mp.addon, 2)}, ` +
          `other files ${fmt(mp.other, 2)} (pages of files shared with every process that maps them; the anonymous part is the column above)`,
      )
      log('')
      log(
        `target: total RSS < ${TARGET_RSS_MIB} MiB: ${r.target.pass ? 'pass' : '**FAIL**'} (${fmt(r.steps.total.rss.median, 2)} MiB; ` +
          `anonymous part ${fmt(r.steps.total.anon.median, 2)} MiB: ${r.target.anonPass ? 'under' : 'over'} the target)`,
      )
    }
    if (result.reads) {
      log('')
      log(`(c) reads, ns per call, median (p25–p75) of ${opts.rounds} round-robin rounds (sampler source ${result.reads.source}):`)
      log('')
      log(
        u.table(
          ['read', 'ns/call', 'p25–p75', 'calls/batch'],
          result.reads.rows.map((r) => [r.name, fmt(r.nsPerCall, 1), `${fmt(r.p25, 1)}–${fmt(r.p75, 1)}`, String(r.callsPerBatch)]),
        ),
      )
    }
    for (const s of result.skipped) log(`skipped (${s.part}): ${s.reason}`)
  }
  if (opts.check) {
    const failed = checks.filter((c) => !c.pass)
    if (checks.length === 0) log('check: no target in the parts that ran (targets are in (a), (b) and (d))')
    else log(failed.length ? `check: FAIL: ${failed.map((c) => c.what).join(', ')}` : `check: PASS (${checks.map((c) => c.what).join(', ')})`)
    if (failed.length) process.exitCode = 1
  }
  if (sink === 0.5) console.error('')
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err)
  h.cleanupAll()
  process.exit(2)
})
