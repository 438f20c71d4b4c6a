'use strict'
// Runs inside a memory-limited cgroup v1 child for watch-cost.js: holds the
// cgroup's working set steady at each share of the limit in turn and measures
// CPU time over a window at each, by thread.
//
//   node cost-child.js MODE LEVELS SECONDS SETTLE_MS [PACKAGE_DIR]
//
// MODE: monitor (oomguard.watch() on default settings) | control (no oomguard)
// LEVELS: comma-separated shares of the limit, ascending (e.g. 0.1,0.5,0.9)
// SECONDS: measurement window per level; SETTLE_MS: wait after growing, before
//   the window, so the sampler's growth-rate average has decayed
//
// One line per level on stdout: `OOMGUARD_COST {json}`. CPU times are read
// from /proc/self/task/<tid>/schedstat (ns on the CPU, exact) and
// /proc/self/task/<tid>/stat (utime+stime, clock ticks). The working set is
// computed here from the cgroup files (usage − total_inactive_file, the same
// definition oomguard uses) so both modes grow to the same point.

const fs = require('node:fs')
const path = require('node:path')
const h = require('../__test__/helpers/cgroup')

const [mode, levelsArg, secondsArg, settleArg, pkgDir] = process.argv.slice(2)
const levels = levelsArg.split(',').map(Number)
const seconds = Number(secondsArg)
const settleMs = Number(settleArg)
const MiB = 1024 * 1024

const own = h.ownV1MemoryCgroup()
if (!own) throw new Error('cost-child: no cgroup v1 memory controller')
const limit = h.effectiveV1Limit(own.dir, own.mountPoint)
const usageFile = path.join(own.dir, 'memory.usage_in_bytes')
const statFile = path.join(own.dir, 'memory.stat')
function workingSet() {
  const usage = Number(fs.readFileSync(usageFile, 'utf8').trim())
  const m = /^total_inactive_file (\d+)$/m.exec(fs.readFileSync(statFile, 'utf8'))
  return usage - (m ? Number(m[1]) : 0)
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function taskCpu(tid) {
  try {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(f[11]) + Number(f[12]) // utime, stime (fields 14, 15)
    // schedstat: ns on the CPU, ns waiting for it, timeslices run
    const sched = fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')
    return { ticks, ns: Number(sched[0]), wakeups: Number(sched[2]) }
  } catch {
    return null
  }
}

function processCpu() {
  let ns = 0
  for (const tid of fs.readdirSync('/proc/self/task')) {
    const c = taskCpu(tid)
    if (c) ns += c.ns
  }
  const stat = fs.readFileSync('/proc/self/stat', 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { ns, ticks: Number(f[11]) + Number(f[12]), threads: fs.readdirSync('/proc/self/task').length }
}

async function main() {
  let monitor = null
  let samplerTid = null
  let native = null
  if (mode === 'monitor') {
    const oomguard = require(path.resolve(pkgDir))
    native = require(path.join(path.resolve(pkgDir), 'index.js'))
    monitor = oomguard.watch()
    for (let i = 0; i < 200 && samplerTid === null; i++) {
      samplerTid = native.samplerInfo().threadId
      if (samplerTid === null) await sleep(5)
    }
    if (samplerTid === null) throw new Error('cost-child: the sampler thread never reported its id')
  }
  const keep = []
  for (const share of levels) {
    // Grow to the share (1 MiB Buffers, touched), letting the loop turn.
    while (workingSet() < share * limit) {
      for (let i = 0; i < 4; i++) {
        const b = Buffer.allocUnsafe(MiB)
        b.fill(1)
        keep.push(b)
      }
      await new Promise((r) => setImmediate(r))
    }
    await sleep(settleMs)
    // Snapshots nest (process, then main thread, then sampler, and the
    // reverse after) so the main thread's window holds little but the sleep.
    const ws0 = workingSet()
    const c0 = monitor ? monitor.current : null
    const i0 = native ? native.samplerInfo() : null
    const t0 = process.hrtime.bigint()
    const p0 = processCpu()
    const m0 = taskCpu(process.pid)
    const s0 = samplerTid === null ? null : taskCpu(samplerTid)
    await sleep(seconds * 1000)
    const s1 = samplerTid === null ? null : taskCpu(samplerTid)
    const m1 = taskCpu(process.pid)
    const p1 = processCpu()
    const windowS = Number(process.hrtime.bigint() - t0) / 1e9
    const c1 = monitor ? monitor.current : null
    const i1 = native ? native.samplerInfo() : null
    const ws1 = workingSet()
    const d = (a, b, k) => (a && b ? b[k] - a[k] : null)
    const out = {
      mode,
      share,
      limitBytes: limit,
      workingSetBytes: [ws0, ws1],
      windowS,
      sampler: s0 && { ns: d(s0, s1, 'ns'), ticks: d(s0, s1, 'ticks'), wakeups: d(s0, s1, 'wakeups') },
      main: { ns: d(m0, m1, 'ns'), ticks: d(m0, m1, 'ticks'), wakeups: d(m0, m1, 'wakeups') },
      process: { ns: p1.ns - p0.ns, ticks: p1.ticks - p0.ticks, threads: p1.threads },
      monitor: c0 && {
        samples: c1.samples - c0.samples,
        // Snapshots of every file (builds without the count: null).
        snapshots: i1.snapshots === undefined ? null : i1.snapshots - i0.snapshots,
        triggers: i1.triggers,
        intervalMs: c1.intervalMs,
        level: c1.level,
        ratio: c1.ratio,
      },
    }
    process.stdout.write(`OOMGUARD_COST ${JSON.stringify(out)}\n`)
  }
  if (monitor) monitor.close()
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e)
  process.exit(1)
})
