'use strict'
// What the heap profile costs a real HTTP server: throughput and p99
// latency under autocannon over loopback, side by side in one run.
//
// - off:       a monitor with heapProfile: 'off'
// - threshold: heapProfile: 'threshold' with the monitor held at level 1 (a
//              fixture tree at 85% of its limit): sampling on, and the
//              bounded refreshes of the sites (each a read that stops the
//              thread) that run while at or above the first threshold
// - start:     heapProfile: 'start' below every threshold: sampling on
//              (the route lib/core/heap-profile.js picks: V8's API where checked)
// - start-inspector: the same through node:inspector
//              (heapProfile.route 'inspector')
// - datadog:   @datadog/pprof's heap profiler at the same interval (512
//              KiB, stack depth 64), no reads; the monitor's profile off
//
// The machine is shared and noisy, so: the server runs on one CPU and the
// load generator (this process) on the other (taskset, where present); each
// round runs every mode once, in an order rotated round by round; a mode's
// cost is the median over rounds of its throughput over the same round's
// `off` (paired ratios), and the p99 the median of the rounds' p99s.
//
// - sampler:INTERVAL:DEPTH: V8's sampler alone at that interval and stack
//              depth, no monitor profile (where the cost comes from)
//
//   node benchmark/heap-profile.js [SECONDS_PER_CELL] [ROUNDS] [MODE,...]

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
// The server's CPU time: steadier than requests/s where other work shares
// the CPUs (`taskset` execs node, so the pid is the server's).
const { cpuTicks, TICK_MS, serveChild, CAN_PIN } = require('./util.js')

const ROOT = path.join(__dirname, '..')
const BUSY = path.join(ROOT, '__test__', 'fixtures', 'v2-busy')
const LIMIT = 268435456
const INACTIVE_FILE = 42819584

// The server under load, in its own process (`--child MODE ROOT`).
function serve(mode, root) {
  const oomguard = require(ROOT)
  const heapProfile = mode === 'threshold' || mode.startsWith('start') ? mode.replace(/-.*/, '') : 'off'
  const m = oomguard.watch({ root, lastWords: false, heapProfile: { start: heapProfile, route: mode === 'start-inspector' ? 'inspector' : 'auto' } })
  if (mode === 'datadog') require(path.join(ROOT, 'node_modules', '@datadog', 'pprof')).heap.start(512 * 1024, 64)
  // sampler:INTERVAL:DEPTH: V8's sampler alone, started through oomguard's V8 route with that interval and stack depth.
  if (mode.startsWith('sampler:')) {
    const [, interval, depth] = mode.split(':').map(Number)
    require(path.join(ROOT, 'lib', 'core', 'native.js')).v8HeapStart(process.versions.v8, interval, depth)
  }
  const express = require('express')
  const app = express()
  // A route that allocates like a small API: a few hundred objects, some kept a while.
  const recent = []
  app.get('/items', (req, res) => {
    const items = []
    for (let i = 0; i < 200; i++) items.push({ id: i, name: `item-${i}`, tags: ['a', 'b'], price: i * 1.5 })
    recent.push(items)
    if (recent.length > 2000) recent.shift()
    res.json({ n: items.length, level: m.level })
  })
  const server = app.listen(0, '127.0.0.1', () => process.stdout.write(`READY ${server.address().port}\n`))
}

const SECONDS = Number(process.argv[2]) || 8
const ROUNDS = Number(process.argv[3]) || 3
const MODES = process.argv[4] ? process.argv[4].split(',') : ['off', 'threshold', 'start', 'start-inspector', 'datadog']
const PIN = CAN_PIN

function fixture(ratio) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-hpbench-'))
  fs.cpSync(BUSY, root, { recursive: true })
  const usage = Math.round(ratio * LIMIT) + INACTIVE_FILE
  fs.writeFileSync(path.join(root, 'sys/fs/cgroup/fxcap/busy/memory.current'), `${usage}\n`)
  return root
}

function start(mode, root) {
  return serveChild([__filename, '--child', mode, root], { pin: PIN })
}

async function cell(mode, roots) {
  const autocannon = require('autocannon')
  const { child, port } = await start(mode, mode === 'threshold' ? roots.high : roots.low)
  try {
    // Warm up (JIT, and for threshold the first reads), then measure.
    await autocannon({ url: `http://127.0.0.1:${port}/items`, connections: 10, duration: 2 })
    const cpu0 = cpuTicks(child.pid)
    const r = await autocannon({ url: `http://127.0.0.1:${port}/items`, connections: 10, duration: SECONDS })
    const cpuMs = (cpuTicks(child.pid) - cpu0) * TICK_MS
    return { rps: r.requests.average, p99: r.latency.p99, errors: r.errors + r.non2xx, cpuUsPerReq: (cpuMs * 1000) / r.requests.total }
  } finally {
    child.removeAllListeners('exit')
    child.kill('SIGKILL')
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function main() {
  if (PIN) spawnSync('taskset', ['-cp', '1', String(process.pid)])
  const roots = { low: fixture(0.5), high: fixture(0.85) }
  try {
    const results = Object.fromEntries(MODES.map((m) => [m, []]))
    for (let round = 0; round < ROUNDS; round++) {
      const order = MODES.map((_, i) => MODES[(i + round) % MODES.length])
      for (const mode of order) results[mode].push(await cell(mode, roots))
    }
    console.log(
      `heap-profile overhead: express /items, autocannon 10 connections, ${SECONDS} s per cell, ${ROUNDS} rounds (order rotated), ${PIN ? 'server on CPU 0, load on CPU 1' : 'unpinned'}, node ${process.version}, load ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs`,
    )
    console.log('| mode | requests/s (median) | vs off (median of rounds; min-max) | server CPU µs per request (median) | vs off (median of rounds) | p99 latency ms (median) | errors |')
    console.log('| --- | --- | --- | --- | --- | --- | --- |')
    for (const mode of MODES) {
      const rps = median(results[mode].map((r) => r.rps))
      const ratios = results[mode].map((r, i) => r.rps / results.off[i].rps)
      const p99 = median(results[mode].map((r) => r.p99))
      const errors = results[mode].reduce((s, r) => s + r.errors, 0)
      const cpu = median(results[mode].map((r) => r.cpuUsPerReq))
      const cpuRatio = median(results[mode].map((r, i) => r.cpuUsPerReq / results.off[i].cpuUsPerReq))
      console.log(
        `| ${mode} | ${rps.toFixed(0)} | ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)}) | ${cpu.toFixed(0)} | ${cpuRatio.toFixed(3)} | ${p99} | ${errors} |`,
      )
    }
  } finally {
    fs.rmSync(roots.low, { recursive: true, force: true })
    fs.rmSync(roots.high, { recursive: true, force: true })
  }
}

if (process.argv[2] === '--child') {
  serve(...process.argv.slice(3))
} else {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
