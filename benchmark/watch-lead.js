#!/usr/bin/env node
'use strict'
// Warning lead: how long before the kernel's OOM kill, and with how much
// memory left, a process hears about it. For each allocation rate, N runs of
// each of two contenders, interleaved, each in a fresh cgroup v1 child with a
// memory limit (default 256 MiB):
//
//   oomguard  __test__/helpers/oom-child.js (scenario 'buffers', default
//             monitor settings): (a) the JS 'threshold' listener for the
//             highest level (0.95) appends a marker with Date.now(); (b) the
//             sampler thread writes the last-words line (its "time" is the
//             sample it was written on).
//   poller    benchmark/poll-child.js: (c) setInterval every 100 ms reading
//             memory.usage_in_bytes, marker at the first poll >= 95% of the limit.
//
// Kill time: the kernel log's timestamp of "Killed process N" for the cgroup's
// process (/dev/kmsg, µs), mapped to wall-clock ms by a calibration record this
// script writes to /dev/kmsg right after each run. Cross-checks reported with
// it: a 1 ms poll of the cgroup's memory.oom_control (oom_kill) by this
// process, and the moment this process sees the child's stdio close. Without a
// readable /dev/kmsg the oom_control poll is the kill time (stated in the output).
// The same poll follows the sampler thread's schedstat during oomguard runs
// (how often it ran, how long it waited for a CPU; --no-trace turns it off).
//
//   node benchmark/watch-lead.js [--runs 5] [--rates 10,50,100,200,500,1000,0] [--json] [--save FILE] [--check]
//
// Needs root and a cgroup v1 memory controller (it says why and exits 2 otherwise).

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const h = require('../__test__/helpers/cgroup')
const u = require('./util')

const { MiB, fmt, median, minOf } = u
const OOM_CHILD = path.join(u.ROOT, '__test__', 'helpers', 'oom-child.js')
const POLL_CHILD = path.join(__dirname, 'poll-child.js')
const TOP_THRESHOLD = 0.95 // the default thresholds' highest, which oom-child.js uses
const TOP_LEVEL = 3

const SPEC = {
  runs: { def: 5, type: 'int', help: 'runs per rate and contender' },
  rates: { def: [10, 50, 100, 200, 500, 1000, 0], type: 'list', help: 'allocation rates in MiB/s; 0 = full speed (synchronous loop)' },
  limitMib: { def: 256, type: 'int', help: "memory.limit_in_bytes of each run's cgroup, MiB" },
  watchMs: { def: 1, type: 'num', help: "period of this process's own poll (oom_control cross-check, sampler trace)" },
  noTrace: { def: false, type: 'bool', help: "do not follow the sampler thread's schedstat from outside during oomguard runs" },
  contenders: { def: 'oomguard,poller', type: 'str', help: 'which contenders to run' },
  pollMs: { def: 100, type: 'num', help: "the poller's setInterval period" },
  timeoutS: { def: 60, type: 'num', help: 'a run that is not killed by then is stopped and reported' },
  prefill: { def: null, type: 'num', help: 'fast prefill share before the paced phase; unset: 0.7 at <= 20 MiB/s, 0.5 above, 0 at full speed' },
  save: { def: null, type: 'str', help: 'also write the JSON results to this file' },
  json: { def: false, type: 'bool', help: 'machine-readable results on stdout (progress on stderr)' },
  check: { def: false, type: 'bool', help: 'exit 1 unless the target holds (see README)' },
}
const USAGE = 'usage: node benchmark/watch-lead.js [options]'

const rateLabel = (r) => (r === 0 ? 'full speed' : `${r} MiB/s`)
const prefillFor = (rate, opt) => (opt !== null ? opt : rate === 0 ? 0 : rate <= 20 ? 0.7 : 0.5)

function oomControl(dir) {
  try {
    const t = fs.readFileSync(path.join(dir, 'memory.oom_control'), 'utf8')
    const m = /oom_kill (\d+)/.exec(t)
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

async function runOne(ctx, variant, rate) {
  const { support, opts, klog } = ctx
  const limit = opts.limitMib * MiB
  const prefill = prefillFor(rate, opts.prefill)
  const name = h.uniqueName('oomguard-bench')
  const dir = h.makeCgroup(support.own.dir, name)
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-lead-'))
  let poll = null
  try {
    h.setV1Limit(dir, limit)
    const marker = path.join(work, 'marker')
    const lastWordsFile = path.join(work, 'last-words')
    const [script, args] = variant === 'oomguard' ? [OOM_CHILD, ['buffers', rate, marker, lastWordsFile, h.REPO_ROOT, prefill]] : [POLL_CHILD, [rate, marker, prefill, opts.pollMs, TOP_THRESHOLD]]

    // Cross-check of the kill time: this process polls oom_kill every ~1 ms.
    let oomSeenMs = null
    // Diagnostics for the oomguard runs: the same poll follows the sampler
    // thread's /proc schedstat (time on CPU, time waiting for a CPU, times
    // run), found by its name, so a late sample can be told apart from a
    // sampler that could not get a CPU.
    const trace = variant === 'oomguard' && !opts.noTrace ? new SamplerTrace(dir) : null
    poll = setInterval(() => {
      if (oomSeenMs === null && oomControl(dir) > 0) oomSeenMs = Date.now()
      if (trace) trace.poll()
    }, opts.watchMs)
    const startMs = Date.now()
    const run = await h.runNodeInCgroup(dir, script, args, { timeoutMs: opts.timeoutS * 1000 })
    const closeMs = Date.now()
    clearInterval(poll)
    poll = null
    const oomKills = oomControl(dir)

    let kernel = null
    if (klog) {
      klog.calibrate()
      kernel = klog.findOomKill(name)
    }
    const killMs = kernel ? kernel.killMs : oomSeenMs
    const rec = {
      variant,
      rate,
      prefill,
      exit: { code: run.code, signal: run.signal, timedOut: run.timedOut, ms: run.ms },
      oomKilled: (run.signal === 'SIGKILL' || run.code === 137) && oomKills === 1 && !run.timedOut,
      oomKills,
      killMs,
      killSource: kernel ? 'kmsg' : oomSeenMs !== null ? 'oom_control poll' : null,
      kernelPid: kernel ? kernel.pid : null,
      oomReportMs: kernel && kernel.invokedMs !== null ? kernel.killMs - kernel.invokedMs : null,
      sampler: trace && killMs !== null ? trace.summary(killMs) : null,
      oomControlSeenAfterMs: killMs !== null && oomSeenMs !== null ? oomSeenMs - killMs : null,
      closeSeenAfterMs: killMs !== null ? closeMs - killMs : null,
      runMs: closeMs - startMs,
    }
    const markers = u.readJsonLines(marker)
    if (variant === 'oomguard') {
      const m3 = markers.find((m) => m.level === TOP_LEVEL) || null
      const lwText = fs.existsSync(lastWordsFile) ? fs.readFileSync(lastWordsFile, 'utf8') : ''
      let lw = null
      try {
        lw = lwText ? JSON.parse(lwText) : null
      } catch {}
      rec.levelsHeard = markers.filter((m) => m.level !== undefined).map((m) => m.level)
      rec.markers = markers.map((m) => ({ ...m, leadMs: killMs !== null && m.t ? killMs - m.t : null }))
      rec.lastWordsRecord = lw
      rec.errors = markers.filter((m) => m.error).map((m) => m.error)
      rec.listener = m3 && {
        t: m3.t,
        leadMs: killMs !== null ? killMs - m3.t : null,
        headroomMiB: m3.headroomBytes / MiB,
        ratio: m3.ratio,
      }
      rec.lastWords = lw && {
        t: Date.parse(lw.time),
        leadMs: killMs !== null ? killMs - Date.parse(lw.time) : null,
        headroomMiB: (lw.limitBytes - lw.basisBytes) / MiB,
        ratio: lw.ratio,
        growthMiBs: lw.growthBytesPerSec / MiB,
        timeToLimitMs: lw.timeToLimitMs,
        pid: lw.pid,
        onStderr: run.stderr.includes('"oomguard":"last-words"'),
      }
    } else {
      const pm = markers[0] || null
      rec.poller = pm && {
        t: pm.t,
        leadMs: killMs !== null ? killMs - pm.t : null,
        headroomMiB: (pm.limitBytes - pm.usageBytes) / MiB,
        workingSetHeadroomMiB: pm.workingSetBytes === null ? null : (pm.limitBytes - pm.workingSetBytes) / MiB,
        ratio: pm.usageBytes / pm.limitBytes,
      }
    }
    if (!rec.oomKilled || (variant === 'oomguard' && !rec.lastWords)) rec.stderrTail = run.stderr.slice(-1500)
    return rec
  } finally {
    if (poll) clearInterval(poll)
    h.removeCgroup(dir)
    fs.rmSync(work, { recursive: true, force: true })
  }
}

/**
 * Follows the sampler thread of the process in cgroup `dir` from outside:
 * each poll() reads /proc/<pid>/task/<tid>/schedstat (ns on CPU, ns waiting
 * on a run queue, timeslices run). summary(killMs) tells, for the last 500 ms
 * before the kill, how often the sampler ran, the longest stretch without a
 * run, and how long it waited for a CPU.
 */
class SamplerTrace {
  constructor(dir) {
    this.dir = dir
    this.pid = null
    this.tid = null
    this.points = [] // [wallMs, cpuNs, waitNs, slices]
    this.polls = 0
    this.stillSince = null
    this.noted = null
    this.stills = []
  }

  poll() {
    this.polls++
    try {
      if (this.pid === null) {
        const first = fs.readFileSync(path.join(this.dir, 'cgroup.procs'), 'utf8').split('\n')[0]
        if (!first) return
        this.pid = Number(first)
      }
      if (this.tid === null) {
        if (this.polls % 5 !== 0) return
        for (const t of fs.readdirSync(`/proc/${this.pid}/task`)) {
          if (fs.readFileSync(`/proc/${this.pid}/task/${t}/comm`, 'utf8').startsWith('oomguard-sampl')) this.tid = Number(t)
        }
        if (this.tid === null) return
      }
      const task = `/proc/${this.pid}/task/${this.tid}`
      const [cpu, wait, slices] = fs.readFileSync(`${task}/schedstat`, 'utf8').split(' ').map(Number)
      const now = Date.now()
      const last = this.points[this.points.length - 1]
      this.points.push([now, cpu, wait, slices])
      if (this.points.length > 8000) this.points.splice(0, 4000)
      // Not run for 30 ms: note once per stretch what it is doing (state,
      // system call, kernel stack), to tell a chosen sleep from a block.
      if (last && last[3] !== slices) this.stillSince = now
      else if (now - (this.stillSince ?? now) >= 30 && this.noted !== this.stillSince) {
        this.noted = this.stillSince
        const stat = fs.readFileSync(`${task}/stat`, 'utf8')
        let stack = ''
        try {
          stack = fs
            .readFileSync(`${task}/stack`, 'utf8')
            .split('\n')
            .slice(0, 4)
            .map((l) => l.replace(/^\[<[^>]*>\] /, '').replace(/\+0x.*$/, ''))
            .join(' < ')
        } catch {}
        const sc = fs.readFileSync(`${task}/syscall`, 'utf8').trim().split(' ')
        this.stills.push({
          atMs: now,
          stillMs: now - this.stillSince,
          state: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0],
          syscall: sc[0] === 'running' ? 'running' : Number(sc[0]),
          pollTimeoutMs: sc[0] === '7' ? parseInt(sc[3], 16) : undefined,
          stack,
        })
      }
    } catch {
      // not started yet, exec'ing, or gone
    }
  }

  summary(killMs) {
    const from = killMs - 500
    const pts = this.points.filter((p) => p[0] >= from - 1 && p[0] <= killMs + 1)
    const stills = this.stills.map((x) => ({ ...x, atMs: killMs - x.atMs })) // ms before the kill
    if (pts.length < 2) return { found: this.tid !== null, points: pts.length, stills }
    // Longest stretch between two polls that saw the slice count move.
    // Stretches of 15 ms or more without a run, as [start, end] in ms before
    // the kill, each with the longest pause of this poll inside it (a long
    // pause there means this process, not the sampler, was not looking).
    let longestIdleMs = 0
    let longestPollPauseMs = 0
    const gaps = []
    let prevMove = 0
    let pause = 0
    for (let i = 1; i < pts.length; i++) {
      pause = Math.max(pause, pts[i][0] - pts[i - 1][0])
      longestPollPauseMs = Math.max(longestPollPauseMs, pts[i][0] - pts[i - 1][0])
      if (pts[i][3] !== pts[i - 1][3] || i === pts.length - 1) {
        const gap = pts[i][0] - pts[prevMove][0]
        longestIdleMs = Math.max(longestIdleMs, gap)
        if (gap >= 15) gaps.push({ fromMs: killMs - pts[prevMove][0], toMs: killMs - pts[i][0], pollPauseMs: pause })
        prevMove = i
        pause = 0
      }
    }
    const a = pts[0]
    const b = pts[pts.length - 1]
    return {
      found: true,
      windowMs: b[0] - a[0],
      slices: b[3] - a[3],
      cpuMs: (b[1] - a[1]) / 1e6,
      waitMs: (b[2] - a[2]) / 1e6,
      longestIdleMs,
      longestPollPauseMs,
      gapsBeforeKillMs: gaps,
      stills,
    }
  }
}

/** A warning counts when it was written before the kill (by the clocks above). */
const before = (w) => w && w.leadMs !== null && w.leadMs >= 0

function summarize(rate, runs, limit) {
  const og = runs.filter((r) => r.variant === 'oomguard')
  const pl = runs.filter((r) => r.variant === 'poller')
  const ogKilled = og.filter((r) => r.oomKilled)
  const plKilled = pl.filter((r) => r.oomKilled)
  const pct = (n, d) => (d === 0 ? null : (100 * n) / d)
  const lws = ogKilled.map((r) => r.lastWords).filter(before)
  const lis = ogKilled.map((r) => r.listener).filter(before)
  const pos = plKilled.map((r) => r.poller).filter(before)
  const growth = median(ogKilled.map((r) => r.lastWords && r.lastWords.growthMiBs))
  const minHeadroom = minOf(lws.map((w) => w.headroomMiB))
  const targetMiB = ((1 - TOP_THRESHOLD) / 2) * (limit / MiB)
  const targetApplies = rate !== 0 ? rate <= 1024 : growth !== null && growth <= 1024
  const targetPass = ogKilled.length > 0 && lws.length === ogKilled.length && minHeadroom !== null && minHeadroom >= targetMiB
  return {
    rate,
    oomguard: {
      runs: og.length,
      oomKilled: ogKilled.length,
      lastWordsPct: pct(lws.length, ogKilled.length),
      lastWordsOnStderrPct: pct(ogKilled.filter((r) => r.lastWords && r.lastWords.onStderr).length, ogKilled.length),
      listenerPct: pct(lis.length, ogKilled.length),
      allLevelsHeardPct: pct(ogKilled.filter((r) => r.levelsHeard.join() === '1,2,3').length, ogKilled.length),
      lastWords: { leadMs: median(lws.map((w) => w.leadMs)), headroomMiB: median(lws.map((w) => w.headroomMiB)), minHeadroomMiB: minHeadroom, minLeadMs: minOf(lws.map((w) => w.leadMs)) },
      listener: { leadMs: median(lis.map((w) => w.leadMs)), headroomMiB: median(lis.map((w) => w.headroomMiB)), n: lis.length },
      measuredGrowthMiBs: growth,
    },
    poller: {
      runs: pl.length,
      oomKilled: plKilled.length,
      detectedPct: pct(pos.length, plKilled.length),
      leadMs: median(pos.map((w) => w.leadMs)),
      headroomMiB: median(pos.map((w) => w.headroomMiB)),
      workingSetHeadroomMiB: median(pos.map((w) => w.workingSetHeadroomMiB)),
      n: pos.length,
    },
    killTime: {
      sources: [...new Set(runs.map((r) => r.killSource))],
      oomControlSeenAfterMs: median(runs.map((r) => r.oomControlSeenAfterMs)),
      closeSeenAfterMs: median(runs.map((r) => r.closeSeenAfterMs)),
      closeSeenAfterMaxMs: quantileMax(runs.map((r) => r.closeSeenAfterMs)),
      oomReportMs: median(runs.map((r) => r.oomReportMs)),
      samplerWaitMs: median(og.map((r) => r.sampler && r.sampler.waitMs)),
      samplerWaitMaxMs: quantileMax(og.map((r) => r.sampler && r.sampler.waitMs)),
      samplerRunsPer100ms: median(og.map((r) => (r.sampler && r.sampler.windowMs ? (100 * r.sampler.slices) / r.sampler.windowMs : null))),
    },
    target: { headroomMiB: targetMiB, applies: targetApplies, pass: targetPass },
  }
}

const quantileMax = (v) => u.quantile(v, 1)

async function main() {
  const opts = u.parseArgs(process.argv.slice(2), SPEC, USAGE)
  const log = opts.json ? (...a) => console.error(...a) : (...a) => console.log(...a)
  const progress = (...a) => console.error(...a)
  const support = h.v1Support()
  if (support.reason) {
    console.error(`watch-lead: cannot run: ${support.reason}`)
    process.exit(2)
  }
  let klog = null
  let klogProblem = null
  try {
    klog = new u.KernelLog()
    klog.calibrate()
  } catch (e) {
    klogProblem = e.message
    if (klog) klog.close()
    klog = null
    progress(`watch-lead: no kernel log (${e.message}); the kill time is this process's 1 ms oom_control poll instead`)
  }
  const machine = u.machineInfo()
  const vers = u.versions()
  const ctx = { support, opts, klog }
  const limit = opts.limitMib * MiB
  const runs = []
  const started = Date.now()
  const contenders = opts.contenders.split(',').map((c) => c.trim())
  for (const c of contenders) if (c !== 'oomguard' && c !== 'poller') throw new Error(`unknown contender ${c}`)
  const total = opts.runs * opts.rates.length * contenders.length
  let k = 0
  for (let rep = 0; rep < opts.runs; rep++) {
    for (let i = 0; i < opts.rates.length; i++) {
      const rate = opts.rates[i]
      const order = (rep + i) % 2 === 0 ? contenders : [...contenders].reverse()
      for (const variant of order) {
        const r = await runOne(ctx, variant, rate)
        r.rep = rep
        runs.push(r)
        k++
        const w = variant === 'oomguard' ? r.lastWords : r.poller
        progress(
          `[${k}/${total}] ${variant.padEnd(8)} ${rateLabel(rate).padStart(10)}: ` +
            (r.oomKilled ? 'OOM-killed' : `NOT OOM-killed (code ${r.exit.code} signal ${r.exit.signal}${r.exit.timedOut ? ', timed out' : ''})`) +
            (variant === 'oomguard'
              ? `, last words ${w ? `${fmt(w.leadMs)} ms / ${fmt(w.headroomMiB)} MiB before` : 'none'}` +
                `, listener ${r.listener ? `${fmt(r.listener.leadMs)} ms / ${fmt(r.listener.headroomMiB)} MiB before` : 'none'}`
              : `, poller ${w ? `${fmt(w.leadMs)} ms / ${fmt(w.headroomMiB)} MiB before` : 'none'}`),
        )
      }
    }
  }
  if (klog) klog.close()
  const summary = opts.rates.map((rate) =>
    summarize(
      rate,
      runs.filter((r) => r.rate === rate),
      limit,
    ),
  )
  const method = {
    runsPerRateAndContender: opts.runs,
    limitMiB: opts.limitMib,
    pollMs: opts.pollMs,
    threshold: TOP_THRESHOLD,
    killTime: klog || !klogProblem ? 'kernel log timestamp of "Killed process N" (/dev/kmsg), calibrated per run' : `1 ms poll of memory.oom_control (no kernel log: ${klogProblem})`,
    seconds: (Date.now() - started) / 1000,
  }
  const targetFailures = summary.filter((s) => s.target.applies && !s.target.pass)

  const json = JSON.stringify({ machine, versions: vers, method, summary, runs }, null, 1)
  if (opts.save) fs.writeFileSync(opts.save, `${json}\n`)
  if (opts.json) {
    console.log(json)
  } else {
    log(u.describeMachine(machine, vers))
    log(
      `method: ${opts.runs} runs per rate and contender, interleaved; ${opts.limitMib} MiB cgroup v1 limit; Buffers filled with memset; ` +
        `kill time: ${method.killTime}; ${method.seconds.toFixed(0)} s`,
    )
    log('')
    log(`Warnings before the OOM kill (medians over the runs that had one; "headroom" = limit − basis when the warning was taken):`)
    log('')
    log(
      u.table(
        [
          'rate',
          'OOM-killed runs',
          'last words',
          'last words lead ms',
          'last words headroom MiB (median / min)',
          'JS listener before kill',
          'listener lead ms',
          'listener headroom MiB',
          `poller ${opts.pollMs} ms before kill`,
          'poller lead ms',
          'poller headroom MiB (usage / working set)',
          `target (100% last words, ≥ ${fmt(summary[0] ? summary[0].target.headroomMiB : 0)} MiB)`,
        ],
        summary.map((s) => [
          rateLabel(s.rate),
          `${s.oomguard.oomKilled}/${s.oomguard.runs} + ${s.poller.oomKilled}/${s.poller.runs}`,
          `${fmt(s.oomguard.lastWordsPct, 0)}%`,
          fmt(s.oomguard.lastWords.leadMs),
          `${fmt(s.oomguard.lastWords.headroomMiB)} / ${fmt(s.oomguard.lastWords.minHeadroomMiB)}`,
          `${fmt(s.oomguard.listenerPct, 0)}%`,
          fmt(s.oomguard.listener.leadMs),
          fmt(s.oomguard.listener.headroomMiB),
          `${fmt(s.poller.detectedPct, 0)}%`,
          fmt(s.poller.leadMs),
          `${fmt(s.poller.headroomMiB)} / ${fmt(s.poller.workingSetHeadroomMiB)}`,
          s.target.applies ? (s.target.pass ? 'pass' : '**FAIL**') : s.target.pass ? 'pass (n/a)' : 'n/a',
        ]),
      ),
    )
    log('')
    log('Measurement details (medians):')
    log('')
    log(
      u.table(
        [
          'rate',
          'growth seen by oomguard MiB/s',
          'all 3 levels heard by JS',
          'last words on stderr',
          'sampler runs per 100 ms, last 500 ms',
          'sampler waited for a CPU, ms in the last 500 ms (median / max)',
          'kernel OOM report ms',
          `oom_control poll (${opts.watchMs} ms) sees kill after ms`,
          'parent sees exit after ms (median / max)',
        ],
        summary.map((s) => [
          rateLabel(s.rate),
          fmt(s.oomguard.measuredGrowthMiBs, 0),
          `${fmt(s.oomguard.allLevelsHeardPct, 0)}%`,
          `${fmt(s.oomguard.lastWordsOnStderrPct, 0)}%`,
          fmt(s.killTime.samplerRunsPer100ms),
          `${fmt(s.killTime.samplerWaitMs)} / ${fmt(s.killTime.samplerWaitMaxMs)}`,
          fmt(s.killTime.oomReportMs, 2),
          fmt(s.killTime.oomControlSeenAfterMs),
          `${fmt(s.killTime.closeSeenAfterMs)} / ${fmt(s.killTime.closeSeenAfterMaxMs)}`,
        ]),
      ),
    )
    const odd = runs.filter((r) => !r.oomKilled)
    if (odd.length) {
      log('')
      for (const r of odd)
        log(
          `not OOM-killed: ${r.variant} at ${rateLabel(r.rate)}: code ${r.exit.code} signal ${r.exit.signal}, oom_kill ${r.oomKills}${r.exit.timedOut ? ', timed out' : ''}: ${(r.stderrTail || '').trim().split('\n').pop()}`,
        )
    }
  }
  if (opts.check) {
    const line = targetFailures.length
      ? `check: FAIL at ${targetFailures.map((s) => rateLabel(s.rate)).join(', ')}`
      : "check: PASS (last words in every OOM-killed run with at least half the top threshold's headroom, at every rate up to 1 GiB/s)"
    log(line)
    if (targetFailures.length) process.exitCode = 1
  }
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err)
  h.cleanupAll()
  process.exit(2)
})
