'use strict'
// Runs inside a memory-limited cgroup v1 child for watch-cost.js (d): a
// monitor (default thresholds, lastWords off), and a fill of fresh memory at a set rate (a
// python3 process in the same cgroup: benchmark/fill.py) from
// here to STOP of the limit. Says which thresholds the monitor saw, and at
// what ratio: a threshold is caught when the sample that saw it was still
// below the next one (the limit, for the highest), missed when one sample
// jumped it.
//
//   node fill-child.js RATE_BYTES_PER_SEC STOP SETTLE_MS PACKAGE_DIR
//
// One line on stdout: `OOMGUARD_FILL {json}`.

const fs = require('node:fs')
const path = require('node:path')
const { spawn } = require('node:child_process')
const h = require('../__test__/helpers/cgroup')

const [rateArg, stopArg, settleArg, pkgDir] = process.argv.slice(2)
const rate = Number(rateArg)
const stop = Number(stopArg)
const settleMs = Number(settleArg)

const own = h.ownV1MemoryCgroup()
if (!own) throw new Error('fill-child: no cgroup v1 memory controller')
const limit = h.effectiveV1Limit(own.dir, own.mountPoint)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
// The sampler thread's schedstat: ns on a CPU, ns waiting for one (runnable).
function sched(tid) {
  const [run, wait] = fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ').map(Number)
  return { run, wait }
}

async function main() {
  const oomguard = require(path.resolve(pkgDir))
  const native = require(path.join(path.resolve(pkgDir), 'index.js'))
  const events = []
  const monitor = oomguard.watch({ lastWords: false }, (e) => events.push({ level: e.level, threshold: e.threshold, ratio: e.ratio, timestampMs: e.timestampMs }))
  const thresholds = monitor.thresholds
  await sleep(settleMs)
  const before = { current: monitor.current, info: native.samplerInfo() }
  const tid = before.info.threadId
  const s0 = sched(tid)
  const filler = spawn('python3', [path.join(__dirname, 'fill.py'), own.dir, String(Math.floor(stop * limit)), String(rate)], { stdio: ['pipe', 'pipe', 'inherit'] })
  let out = ''
  filler.stdout.setEncoding('utf8').on('data', (d) => (out += d))
  const filled = await new Promise((resolve, reject) => {
    filler.on('error', reject)
    filler.on('exit', (code) => reject(new Error(`fill.py exited (${code}) before filling: ${out}`)))
    filler.stdout.on('data', () => {
      const f = h.parsePrefixed(out.slice(0, out.lastIndexOf('\n') + 1), 'FILL ')
      if (f.length) resolve(f[0])
    })
  })
  const s1 = sched(tid)
  await sleep(300) // the last events
  const after = { current: monitor.current, info: native.samplerInfo() }
  filler.removeAllListeners('exit')
  filler.stdin.end()
  await new Promise((r) => filler.on('exit', r))
  monitor.close()
  const seen = thresholds.map((t, i) => {
    const e = events.find((x) => x.level === i + 1)
    const next = i + 1 < thresholds.length ? thresholds[i + 1] : 1
    return { threshold: t, ratio: e ? e.ratio : null, caught: !!e && e.ratio < next }
  })
  const out2 = {
    limitBytes: limit,
    thresholds,
    fill: filled,
    seen,
    triggers: after.info.triggers,
    startRatio: before.current.ratio,
    intervalMsBefore: before.current.intervalMs,
    samples: after.current.samples - before.current.samples,
    snapshots: after.info.snapshots === undefined ? null : after.info.snapshots - before.info.snapshots,
    // During the fill: how long the sampler thread ran, and how long it was
    // runnable but waiting for a CPU (a sample it could not take in time).
    samplerRunMs: (s1.run - s0.run) / 1e6,
    samplerWaitMs: (s1.wait - s0.wait) / 1e6,
  }
  process.stdout.write(`OOMGUARD_FILL ${JSON.stringify(out2)}\n`)
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e)
  process.exit(1)
})
