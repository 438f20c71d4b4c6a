'use strict'
// What the heap profile costs a real HTTP server: throughput and p99
// latency under autocannon over loopback, side by side in one run, modes
// interleaved round by round (the machine is shared and noisy):
//
// - off:       a monitor with heapProfile: 'off'
// - threshold: heapProfile: 'threshold' with the monitor held at level 1 (a
//              fixture tree at 85% of its limit): sampling on, and the
//              bounded refreshes of the sites (each a read that stops the
//              thread) that run while at or above the first threshold
// - start:     heapProfile: 'start' below every threshold: sampling on, no reads
// - datadog:   @datadog/pprof's heap profiler at the same interval (512
//              KiB, stack depth 64), no reads; the monitor's profile off
//
//   node benchmark/heap-profile.js [SECONDS_PER_CELL] [ROUNDS]

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')

const ROOT = path.join(__dirname, '..')
const BUSY = path.join(ROOT, '__test__', 'fixtures', 'v2-busy')
const LIMIT = 268435456
const INACTIVE_FILE = 42819584

// The server under load, in its own process (`--child MODE ROOT`).
function serve(mode, root) {
  const oomguard = require(ROOT)
  const heapProfile = mode === 'threshold' || mode === 'start' ? mode : 'off'
  const m = oomguard.watch({ root, lastWords: false, heapProfile })
  if (mode === 'datadog') require(path.join(ROOT, 'node_modules', '@datadog', 'pprof')).heap.start(512 * 1024, 64)
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
const MODES = ['off', 'threshold', 'start', 'datadog']

function fixture(ratio) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-hpbench-'))
  fs.cpSync(BUSY, root, { recursive: true })
  const usage = Math.round(ratio * LIMIT) + INACTIVE_FILE
  fs.writeFileSync(path.join(root, 'sys/fs/cgroup/fxcap/busy/memory.current'), `${usage}\n`)
  return root
}

function start(mode, root) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, '--child', mode, root], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
      const m = /READY (\d+)/.exec(out)
      if (m) resolve({ child, port: Number(m[1]) })
    })
    child.on('exit', (code) => reject(new Error(`${mode} server exited ${code}`)))
  })
}

async function cell(mode, roots) {
  const autocannon = require('autocannon')
  const { child, port } = await start(mode, mode === 'threshold' ? roots.high : roots.low)
  try {
    // Warm up (JIT, and for threshold the first reads), then measure.
    await autocannon({ url: `http://127.0.0.1:${port}/items`, connections: 10, duration: 2 })
    const r = await autocannon({ url: `http://127.0.0.1:${port}/items`, connections: 10, duration: SECONDS })
    return { rps: r.requests.average, p99: r.latency.p99, errors: r.errors + r.non2xx }
  } finally {
    child.removeAllListeners('exit')
    child.kill('SIGKILL')
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function main() {
  const roots = { low: fixture(0.5), high: fixture(0.85) }
  try {
    const results = Object.fromEntries(MODES.map((m) => [m, []]))
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of MODES) results[mode].push(await cell(mode, roots))
    }
    const base = median(results.off.map((r) => r.rps))
    console.log(
      `heap-profile overhead: express /items, autocannon 10 connections, ${SECONDS} s per cell, ${ROUNDS} rounds interleaved, node ${process.version}, load ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs`,
    )
    console.log('| mode | requests/s (median) | vs off | p99 latency ms (median) | errors |')
    console.log('| --- | --- | --- | --- | --- |')
    for (const mode of MODES) {
      const rps = median(results[mode].map((r) => r.rps))
      const p99 = median(results[mode].map((r) => r.p99))
      const errors = results[mode].reduce((s, r) => s + r.errors, 0)
      console.log(`| ${mode} | ${rps.toFixed(0)} | ${(rps / base).toFixed(3)} | ${p99} | ${errors} |`)
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
