'use strict'
// What sampling Buffer allocation sites costs (lib/core/buffer-sites.js),
// and how well it finds them.
//
// 1. Per call: Buffer.alloc/allocUnsafe/from/concat, unwrapped against
//    wrapped, alternating in one process (ns per call, medians).
// 2. A real HTTP server (express) whose route builds its response and a kept
//    cache entry from Buffers, under autocannon over loopback: requests/s
//    and p99 with the sampling off and on, cells interleaved round by round.
// 3. Attribution: a leak of Buffers in a named function beside a churn of
//    short-lived ones: the estimated live bytes of the leaking site against
//    what it really holds.
//
//   node benchmark/buffer-sites.js [SECONDS_PER_CELL] [ROUNDS]

const os = require('node:os')
const path = require('node:path')

const { spawnSync } = require('node:child_process')
const { cpuTicks, TICK_MS, serveChild, CAN_PIN } = require('./util.js')

const ROOT = path.join(__dirname, '..')
const sites = () => require(path.join(ROOT, 'lib', 'core', 'buffer-sites.js'))
const INTERVAL = 512 * 1024
const SECONDS = Number(process.argv[2]) || 6
const ROUNDS = Number(process.argv[3]) || 3
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

function perCall() {
  const bs = sites()
  const a = Buffer.alloc(1000)
  const cases = {
    'Buffer.alloc(64)': () => Buffer.alloc(64),
    'Buffer.allocUnsafe(16384)': () => Buffer.allocUnsafe(16384),
    "Buffer.from('…' 100 chars)": () => Buffer.from('x'.repeat(100)),
    'Buffer.concat([1000, 1000])': () => Buffer.concat([a, a]),
  }
  const N = 200_000
  const rows = []
  for (const [name, fn] of Object.entries(cases)) {
    const off = []
    const on = []
    for (let round = 0; round < 9; round++) {
      for (const mode of round % 2 ? ['on', 'off'] : ['off', 'on']) {
        if (mode === 'on') bs.start(INTERVAL)
        const t0 = process.hrtime.bigint()
        for (let i = 0; i < N; i++) fn()
        const ns = Number(process.hrtime.bigint() - t0) / N
        bs.stop()
        ;(mode === 'on' ? on : off).push(ns)
      }
    }
    rows.push({ name, off: median(off), on: median(on) })
  }
  console.log(`per call (node ${process.version}, ${N} calls × 9 rounds, alternating, interval ${INTERVAL / 1024} KiB):`)
  console.log('| call | unwrapped ns | sampled ns | added ns |')
  console.log('| --- | ---: | ---: | ---: |')
  for (const r of rows) console.log(`| ${r.name} | ${r.off.toFixed(0)} | ${r.on.toFixed(0)} | ${(r.on - r.off).toFixed(0)} |`)
}

function serve(mode) {
  if (mode === 'on') sites().start(INTERVAL)
  const express = require('express')
  const app = express()
  const cache = []
  app.get('/items', (req, res) => {
    const items = []
    for (let i = 0; i < 50; i++) items.push({ id: i, name: `item-${i}`, price: i * 1.5 })
    const body = Buffer.from(JSON.stringify(items))
    cache.push(Buffer.concat([body, Buffer.alloc(4096)]))
    if (cache.length > 500) cache.shift()
    res.type('json').send(body)
  })
  const server = app.listen(0, '127.0.0.1', () => process.stdout.write(`READY ${server.address().port}\n`))
}

function startServer(mode) {
  return serveChild([__filename, '--child', mode], { pin: CAN_PIN })
}

async function http() {
  const autocannon = require('autocannon')
  // The load generator (this process) on the other CPU.
  if (CAN_PIN) spawnSync('taskset', ['-cp', '1', String(process.pid)])
  const results = { off: [], on: [] }
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of round % 2 ? ['on', 'off'] : ['off', 'on']) {
      const { child, port } = await startServer(mode)
      try {
        await autocannon({ url: `http://127.0.0.1:${port}/items`, connections: 10, duration: 2 })
        const cpu0 = cpuTicks(child.pid)
        const r = await autocannon({ url: `http://127.0.0.1:${port}/items`, connections: 10, duration: SECONDS })
        const cpuMs = (cpuTicks(child.pid) - cpu0) * TICK_MS
        results[mode].push({ rps: r.requests.average, p99: r.latency.p99, cpuUs: (cpuMs * 1000) / r.requests.total })
      } finally {
        child.removeAllListeners('exit')
        child.kill('SIGKILL')
      }
    }
  }
  const base = median(results.off.map((r) => r.rps))
  console.log(
    `\nHTTP: express /items (Buffer.from, Buffer.concat, Buffer.alloc per request), autocannon 10 connections, ${SECONDS} s per cell, ${ROUNDS} rounds, load ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs:`,
  )
  console.log('| Buffer sites | requests/s (median) | vs off | server CPU µs per request (median) | vs off, paired by round (median; each) | p99 ms (median) |')
  console.log('| --- | ---: | ---: | ---: | --- | ---: |')
  for (const mode of ['off', 'on']) {
    const rps = median(results[mode].map((r) => r.rps))
    const ratios = results.on.map((r, i) => r.cpuUs / results.off[i].cpuUs)
    const paired = mode === 'on' ? `${median(ratios).toFixed(3)}; ${ratios.map((x) => x.toFixed(3)).join(', ')}` : '1.000'
    console.log(`| ${mode} | ${rps.toFixed(0)} | ${(rps / base).toFixed(3)} | ${median(results[mode].map((r) => r.cpuUs)).toFixed(0)} | ${paired} | ${median(results[mode].map((r) => r.p99))} |`)
  }
}

async function attribution() {
  const bs = sites()
  bs.start(INTERVAL)
  const keep = []
  function leakyUploads(n) {
    for (let i = 0; i < n; i++) keep.push(Buffer.alloc(65536))
  }
  function churn(n) {
    for (let i = 0; i < n; i++) Buffer.allocUnsafe(65536).fill(1)
  }
  for (let i = 0; i < 32; i++) {
    leakyUploads(100)
    churn(300)
    await new Promise((r) => setImmediate(r))
  }
  for (let i = 0; i < 3; i++) {
    global.gc?.()
    await new Promise((r) => setTimeout(r, 20))
  }
  const { root, bytes } = bs.tree()
  let leak = 0
  const walk = (n) => {
    if (n.callFrame.functionName === 'leakyUploads') leak += n.selfSize
    for (const c of n.children) walk(c)
  }
  walk(root)
  const real = keep.length * 65536
  console.log(`\nattribution: ${keep.length} Buffers of 64 KiB kept by leakyUploads beside ${32 * 300} freed by churn (run with --expose-gc):`)
  console.log(
    `leakyUploads estimated ${(leak / 1048576).toFixed(1)} MiB of ${(real / 1048576).toFixed(1)} MiB held (${((100 * leak) / real).toFixed(1)}%); all sites ${(bytes / 1048576).toFixed(1)} MiB; ${bs.status().liveSamples} live samples`,
  )
  bs.stop()
}

if (process.argv[2] === '--child') {
  serve(process.argv[3])
} else {
  perCall()
  http()
    .then(attribution)
    .catch((err) => {
      console.error(err)
      process.exit(1)
    })
}
