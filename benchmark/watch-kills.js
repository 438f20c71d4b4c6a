#!/usr/bin/env node
'use strict'
// Last words in every real kill. Runs the five allocation patterns of the
// real-kill tests (JS objects at 50 MiB/s, ArrayBuffers at 100 MiB/s, a
// worker leak at 100 MiB/s, a synchronous Buffer loop, and page cache far
// larger than the limit, which must survive) round-robin, each in a fresh
// cgroup v1 child with a 256 MiB limit and a monitor on default settings
// (thresholds 0.8/0.9/0.95, lastWords to a file), with CPU-bound processes
// on every core the whole time. For each kill it reports whether the
// last-words file held a complete record, whether its verdict was right,
// whether the JS listener heard the highest threshold before the kill (at
// 100 MiB/s or slower), and the sampler's own account of its last moments
// from its trace (src/watch/trace.rs): when it last sampled and what it saw,
// whether it had seen the highest threshold, every write and its result.
//
//   node benchmark/watch-kills.js [--kills 300] [--minutes 25] [--hogs 2] [--json] [--save FILE] [--check]
//
// Needs root and a cgroup v1 memory controller (says why and exits 2 otherwise).

const fs = require('node:fs')
const os = require('node:os')
const h = require('../__test__/helpers/cgroup')
const k = require('../__test__/helpers/oom-kills')
const u = require('./util')

const SPEC = {
  kills: { def: 300, type: 'int', help: 'stop after this many kills (page-cache runs do not count)' },
  minutes: { def: 25, type: 'num', help: 'start no new run after this many minutes' },
  patterns: { def: 'objects,arraybuffers,worker,sync,pagecache', type: 'str', help: 'patterns, run round-robin' },
  pagecacheEvery: { def: 8, type: 'int', help: 'run the page-cache pattern once per this many rounds' },
  hogs: { def: os.cpus().length, type: 'int', help: 'CPU-bound processes running the whole time (default: one per core)' },
  package: { def: null, type: 'str', help: 'run the children against the oomguard package in this directory (another build, for comparison)' },
  timeoutS: { def: 90, type: 'num', help: 'a run not killed by then is stopped and reported' },
  save: { def: null, type: 'str', help: 'also write the JSON results to this file' },
  json: { def: false, type: 'bool', help: 'machine-readable results on stdout (progress on stderr)' },
  check: { def: false, type: 'bool', help: 'exit 1 unless every run met its targets' },
}
const USAGE = 'usage: node benchmark/watch-kills.js [options]'

function summarize(runs) {
  const rows = []
  const by = {}
  for (const r of runs) (by[r.pattern] = by[r.pattern] || []).push(r)
  for (const [pattern, rs] of Object.entries(by)) {
    const s = k.PATTERNS[pattern]
    if (s.survives) {
      rows.push([pattern, `${rs.length} runs`, '–', '–', '–', '–', `${rs.filter((r) => r.ok).length}/${rs.length} survived, no critical`, '–', '–', '–'])
      continue
    }
    const kills = rs.filter((r) => r.killed)
    const n = kills.length
    const count = (f) => `${kills.filter(f).length}/${n}`
    const lead = kills.map((r) => r.recordLeadMs).filter((v) => v !== null)
    const leadOf = (xs) => {
      const v = xs.filter((x) => x !== null)
      return v.length ? `${u.fmt(u.median(v), 0)} (min ${u.fmt(u.minOf(v), 0)})` : '–'
    }
    const ratio = kills.map((r) => r.record && r.record.ratio).filter((v) => typeof v === 'number')
    rows.push([
      pattern,
      `${n}/${rs.length}`,
      count((r) => r.lastWords),
      count((r) => r.verdictRight),
      s.listener ? `${count((r) => r.listenerAnyBeforeKill)} · ${count((r) => r.listenerBeforeKill)}` : 'not required',
      s.listener ? leadOf(kills.map((r) => r.listenerFirstLeadMs)) : '–',
      count((r) => r.record && r.record.final),
      count((r) => r.singleShotWouldWrite),
      `${u.fmt(u.median(ratio), 4)} (min ${u.fmt(u.minOf(ratio), 4)})`,
      `${u.fmt(u.median(lead), 0)} (max ${u.fmt(Math.max(...lead), 0)})`,
    ])
  }
  return u.table(
    [
      'pattern',
      'OOM-killed runs',
      'last words in the file',
      'verdict right',
      'JS listener before the kill: any threshold · the highest',
      'first listener call before the kill, ms',
      'latest record final',
      'sampler saw the top before the kill',
      'latest record ratio, median',
      'latest record age at the kill, ms',
    ],
    rows,
  )
}

async function main() {
  const opts = u.parseArgs(process.argv.slice(2), SPEC, USAGE)
  opts.patterns = opts.patterns.split(',').map((p) => p.trim())
  for (const p of opts.patterns) if (!k.PATTERNS[p]) throw new Error(`--patterns: no pattern ${p} (${Object.keys(k.PATTERNS)})`)
  const support = h.v1Support()
  if (support.reason) {
    console.error(`watch-kills: ${support.reason}`)
    process.exit(2)
  }
  let klog = null
  try {
    klog = new u.KernelLog()
  } catch (e) {
    console.error(`watch-kills: /dev/kmsg unreadable (${e.code}); the kill time is the moment the exit is seen`)
  }
  const log = (m) => process.stderr.write(`${m}\n`)
  const stopHogs = k.cpuHogs(opts.hogs)
  const t0 = Date.now()
  const runs = []
  let kills = 0
  const kinds = opts.patterns.filter((p) => !k.PATTERNS[p].survives)
  const survivors = opts.patterns.filter((p) => k.PATTERNS[p].survives)
  try {
    for (let round = 0; kills < opts.kills && Date.now() - t0 < opts.minutes * 60_000; round++) {
      const order = [...kinds.slice(round % kinds.length), ...kinds.slice(0, round % kinds.length)]
      if (round % opts.pagecacheEvery === 0) order.push(...survivors)
      for (const p of order) {
        if (kills >= opts.kills || Date.now() - t0 >= opts.minutes * 60_000) break
        const r = await k.runKill(support.own.dir, p, { klog, timeoutMs: opts.timeoutS * 1000, pkgDir: opts.package || undefined })
        r.round = round
        runs.push(r)
        if (r.killed) kills++
        const tr = r.trace
        log(
          `${String(runs.length).padStart(4)} ${p.padEnd(12)} ${r.ok ? 'ok  ' : 'MISS'} killed=${r.killed} words=${r.lastWords} ` +
            `verdict=${r.record && r.record.verdict} level=${r.record && r.record.level} ratio=${r.record && r.record.ratio} ` +
            `listener=${r.listenerLevels.join('')} lastStep=${u.fmt(tr.lastStepMsBeforeKill, 1)}ms@${u.fmt(tr.lastStepRatio, 4)} ` +
            `top=${u.fmt(tr.topSeenMsBeforeKill, 1)}ms failed=${tr.failedWrites.length}`,
        )
      }
    }
  } finally {
    stopHogs()
    if (klog) klog.close()
  }
  const result = {
    machine: u.machineInfo(),
    versions: u.versions(),
    options: opts,
    minutes: (Date.now() - t0) / 60_000,
    kills,
    ok: runs.every((r) => r.ok),
    runs,
  }
  if (opts.save) fs.writeFileSync(opts.save, JSON.stringify(result, null, 1))
  if (opts.json) console.log(JSON.stringify(result))
  else {
    console.log(u.describeMachine(result.machine, result.versions))
    console.log(`\n${kills} OOM kills in ${u.fmt(result.minutes, 1)} min, ${opts.hogs} CPU-bound processes running throughout\n`)
    console.log(summarize(runs))
    const misses = runs.filter((r) => !r.ok)
    if (misses.length) {
      console.log('\nRuns that missed a target:\n')
      for (const r of misses) console.log(JSON.stringify(r))
    }
  }
  if (opts.check && !result.ok) process.exit(1)
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e)
    process.exit(1)
  })
}

module.exports = { summarize }
