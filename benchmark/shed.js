#!/usr/bin/env node
'use strict'
// Load-shedding overhead: what shed() adds to each request while it is NOT
// shedding (the case every request pays for), against a bare hello-world
// node:http server. Two measurements, one run:
//
//  1. The raw cost of the check: ns per `guard(req, res, next)` call with a
//     fake request and response, against a no-op middleware `(req, res, next)
//     => next()`, in this process (batches, rounds, medians). Exact, and
//     immune to network noise.
//  2. End to end with autocannon on 127.0.0.1: two server child processes
//     (bare and guarded) started once; rounds alternate between them, the
//     first one rotating each round; medians over rounds of mean latency and
//     req/s. On a small shared machine the noise here is several percent,
//     larger than the effect, so (1) is what --check uses.
//
//   node benchmark/shed.js                 markdown report
//   node benchmark/shed.js --json          machine-readable results on stdout
//   node benchmark/shed.js --check         exit 1 unless the check costs < 1% of a
//                                          bare hello-world request's server time
//   --rounds N (autocannon rounds per server, default 5), --duration S (seconds
//   per autocannon round, default 2), --connections N (default 10),
//   --micro-rounds N (default 31), --no-http (only the raw cost)

const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { parseArgs, summary } = require('./util')

const ROOT = path.join(__dirname, '..')

// ------------------------------------------------------------------ server mode

function hello(req, res) {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '12' })
  res.end('hello world\n')
}

function serve(kind) {
  let served = 0
  const counted = (req, res) => {
    served++
    hello(req, res)
  }
  let handler = counted
  if (kind === 'guarded') {
    const { shed } = require(ROOT)
    const guard = shed() // a real monitor on this machine's cgroup; not shedding
    handler = (req, res) => guard(req, res, () => counted(req, res)) // the documented middleware form
  } else if (kind !== 'bare') {
    throw new Error(`unknown server kind ${kind}`)
  }
  const server = http.createServer(handler)
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening on ${server.address().port}\n`)
  })
  // The parent asks for this process's CPU time and request count around each round.
  process.on('message', () => process.send({ cpu: process.cpuUsage(), served }))
  process.on('disconnect', () => process.exit(0))
}

// ------------------------------------------------------------------ options

const OPTIONS = {
  json: { def: false, type: 'bool', help: 'machine-readable results on stdout (messages on stderr)' },
  check: { def: false, type: 'bool', help: 'exit 1 unless the guard costs under 1% of a hello-world request' },
  noHttp: { def: false, type: 'bool', help: 'skip the autocannon part' },
  rounds: { def: 5, type: 'int', help: 'autocannon rounds per server' },
  duration: { def: 2, type: 'num', help: 'seconds per autocannon round' },
  connections: { def: 10, type: 'int', help: 'autocannon connections' },
  microRounds: { def: 31, type: 'int', help: 'rounds of the per-call measurement' },
}

// ------------------------------------------------------------------ statistics

// ------------------------------------------------------------------ 1. raw cost

const now = () => process.hrtime.bigint()

function microbench(opts) {
  const { shed, watch } = require(ROOT)
  const monitor = watch({ lastWords: false })
  const guard = shed({ monitor })
  let sink = 0
  const next = () => {
    sink++
  }
  const handler = () => {
    sink++
  }
  const wrapped = guard.wrap(handler)
  const req = { url: '/api/orders?id=1', method: 'GET', headers: {} }
  const res = {}
  const contenders = [
    { key: 'noop', name: 'no-op middleware `(req, res, next) => next()` (baseline)', fn: (req, res, next) => next() },
    { key: 'guard', name: '`guard(req, res, next)`, not shedding', fn: guard },
    { key: 'wrap-baseline', name: 'plain handler call `handler(req, res)` (baseline of wrap)', fn: (req, res) => handler(req, res) },
    { key: 'wrap', name: '`guard.wrap(handler)(req, res)`, not shedding', fn: wrapped },
    {
      key: 'level',
      name: '`monitor.level` read alone',
      fn: () => {
        sink += monitor.level
      },
    },
  ]
  const timeBatch = (fn, n) => {
    const t = now()
    for (let i = 0; i < n; i++) fn(req, res, next)
    return Number(now() - t)
  }
  // Warm up and calibrate: a batch takes about 10 ms.
  for (const c of contenders) {
    const t0 = Date.now()
    while (Date.now() - t0 < 150) timeBatch(c.fn, 10_000)
    let best = Infinity
    for (let i = 0; i < 3; i++) best = Math.min(best, timeBatch(c.fn, 100_000) / 100_000)
    c.batch = Math.max(10_000, Math.round(10e6 / Math.max(best, 0.05)))
    c.samples = []
  }
  for (let r = 0; r < opts.microRounds; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(k + r) % contenders.length]
      c.samples.push(timeBatch(c.fn, c.batch) / c.batch)
    }
  }
  monitor.close()
  const out = {}
  for (const c of contenders) out[c.key] = { name: c.name, nsPerCall: summary(c.samples), batch: c.batch }
  out.sink = sink
  return out
}

// ------------------------------------------------------------------ 2. autocannon

function startServer(kind) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, '--serve', kind], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
    let out = ''
    const timer = setTimeout(() => reject(new Error(`${kind} server did not start`)), 10_000)
    child.stdout.on('data', (d) => {
      out += d
      const m = /listening on (\d+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve({ kind, child, port: Number(m[1]) })
      }
    })
    child.once('exit', (code) => reject(new Error(`${kind} server exited (${code})`)))
  })
}

/** The server's CPU time (µs, user + system) and requests served so far. */
function serverStats(s) {
  return new Promise((resolve) => {
    s.child.once('message', (m) => resolve({ cpuUs: m.cpu.user + m.cpu.system, served: m.served }))
    s.child.send('stats')
  })
}

function stopServer(s) {
  if (s.child.exitCode === null && s.child.signalCode === null) process.kill(s.child.pid, 'SIGTERM')
}

async function cannon(port, opts, duration) {
  const autocannon = require('autocannon')
  const r = await autocannon({
    url: `http://127.0.0.1:${port}/api/orders?id=1`,
    connections: opts.connections,
    pipelining: 1,
    duration,
  })
  if (r.errors || r.timeouts || r.non2xx) throw new Error(`autocannon: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx`)
  return { latencyMeanMs: r.latency.mean, reqPerSec: r.requests.mean, total: r.requests.total }
}

async function httpbench(opts, log) {
  const servers = [await startServer('bare'), await startServer('guarded')]
  try {
    // Warm-up: V8 optimises both servers, sockets and caches settle. Not counted.
    for (const s of servers) await cannon(s.port, opts, 1)
    const rounds = { bare: [], guarded: [] }
    for (let r = 0; r < opts.rounds; r++) {
      const order = r % 2 === 0 ? servers : [...servers].reverse()
      for (const s of order) {
        const before = await serverStats(s)
        const x = await cannon(s.port, opts, opts.duration)
        const after = await serverStats(s)
        x.cpuNsPerRequest = ((after.cpuUs - before.cpuUs) * 1000) / (after.served - before.served)
        rounds[s.kind].push(x)
        log(
          `  round ${r + 1}/${opts.rounds} ${s.kind.padEnd(7)} ${x.reqPerSec.toFixed(0)} req/s, mean latency ${x.latencyMeanMs.toFixed(3)} ms, server CPU ${(x.cpuNsPerRequest / 1000).toFixed(2)} µs/request`,
        )
      }
    }
    const agg = (k) => ({
      latencyMeanMs: summary(rounds[k].map((x) => x.latencyMeanMs)),
      reqPerSec: summary(rounds[k].map((x) => x.reqPerSec)),
      cpuNsPerRequest: summary(rounds[k].map((x) => x.cpuNsPerRequest)),
      requests: rounds[k].reduce((a, x) => a + x.total, 0),
    })
    return { bare: agg('bare'), guarded: agg('guarded'), rounds }
  } finally {
    servers.forEach(stopServer)
  }
}

// ------------------------------------------------------------------ report

const pct = (x) => `${(x * 100).toFixed(3)}%`
const signedPct = (x) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)}%`

async function main() {
  const opts = parseArgs(process.argv.slice(2), OPTIONS, 'usage: node benchmark/shed.js [options]')
  const log = opts.json ? (...a) => console.error(...a) : (...a) => console.log(...a)
  const cpus = os.cpus()
  const machine = { cpuModel: cpus.length ? cpus[0].model.trim() : 'unknown', cores: cpus.length, node: process.version, kernel: `${os.type()} ${os.release()}` }

  log(`# shed() overhead\n\n${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, ${machine.kernel}\n`)
  const micro = microbench(opts)
  const added = micro.guard.nsPerCall.median - micro.noop.nsPerCall.median
  const addedWrap = micro.wrap.nsPerCall.median - micro['wrap-baseline'].nsPerCall.median

  log('## 1. Raw cost of the check (not shedding), ns per call\n')
  log('| call | median ns | p25–p75 |')
  log('| --- | ---: | --- |')
  for (const k of ['noop', 'guard', 'wrap-baseline', 'wrap', 'level']) {
    const s = micro[k].nsPerCall
    log(`| ${micro[k].name} | ${s.median.toFixed(2)} | ${s.p25.toFixed(2)}–${s.p75.toFixed(2)} |`)
  }
  log(`\nAdded by the guard: ${added.toFixed(2)} ns per request (middleware form), ${addedWrap.toFixed(2)} ns (wrap form).\n`)

  let httpResult = null
  if (!opts.noHttp) {
    log(`## 2. autocannon, 127.0.0.1, ${opts.connections} connections, ${opts.rounds} rounds × ${opts.duration} s per server, alternating\n`)
    httpResult = await httpbench(opts, log)
    const b = httpResult.bare
    const g = httpResult.guarded
    const c = opts.connections
    log('\n| server | req/s, median (p25–p75) | mean latency, autocannon (whole ms) | mean latency = connections / req/s | server CPU per request, median (p25–p75) |')
    log('| --- | --- | --- | --- | --- |')
    for (const [name, x] of [
      ['bare hello world', b],
      ['with shed() middleware', g],
    ]) {
      const rps = x.reqPerSec
      const cpu = x.cpuNsPerRequest
      log(
        `| ${name} | ${rps.median.toFixed(0)} (${rps.p25.toFixed(0)}–${rps.p75.toFixed(0)}) | ${x.latencyMeanMs.median.toFixed(3)} ms | ${((c / rps.median) * 1000).toFixed(3)} ms | ${(cpu.median / 1000).toFixed(2)} µs (${(cpu.p25 / 1000).toFixed(2)}–${(cpu.p75 / 1000).toFixed(2)}) |`,
      )
    }
    const latRatio = g.latencyMeanMs.median / b.latencyMeanMs.median
    const rpsRatio = g.reqPerSec.median / b.reqPerSec.median
    // Paired: each round's guarded figure against the bare figure of the same round.
    const paired = summary(httpResult.rounds.guarded.map((x, i) => x.reqPerSec / httpResult.rounds.bare[i].reqPerSec))
    const cpuRatio = g.cpuNsPerRequest.median / b.cpuNsPerRequest.median
    log(
      `\nguarded / bare: server CPU per request ×${cpuRatio.toFixed(4)} (${signedPct(cpuRatio - 1)}); req/s ×${rpsRatio.toFixed(4)} (${signedPct(rpsRatio - 1)}); paired by round, median ×${paired.median.toFixed(4)} (p25–p75 ×${paired.p25.toFixed(4)}–×${paired.p75.toFixed(4)}); latency (connections / req/s) ×${(1 / rpsRatio).toFixed(4)}; autocannon's whole-millisecond mean latency ×${latRatio.toFixed(4)}.`,
    )
    const spread = Math.max((b.reqPerSec.p75 - b.reqPerSec.p25) / b.reqPerSec.median, (g.reqPerSec.p75 - g.reqPerSec.p25) / g.reqPerSec.median)
    log(`Round-to-round spread (p25–p75 of req/s): up to ${pct(spread)} of the median; an end-to-end difference smaller than that is noise.\n`)
    httpResult.ratio = { cpuPerRequest: cpuRatio, autocannonLatency: latRatio, reqPerSec: rpsRatio, pairedReqPerSec: paired, spread }
  }

  // The target: the check's added time as a share of the CPU time a bare
  // hello-world server spends on one request (measured, not 1 / req/s, which
  // would include the load generator's share when it is the bottleneck).
  const requestNs = httpResult ? httpResult.bare.cpuNsPerRequest.median : null
  const share = requestNs ? added / requestNs : null
  const target = 0.01
  log('## Verdict\n')
  if (share !== null) {
    log(`The guard adds ${added.toFixed(2)} ns to a request that costs the bare server ${(requestNs / 1000).toFixed(2)} µs of CPU: ${pct(share)} (target < 1%).`)
  } else {
    log(`The guard adds ${added.toFixed(2)} ns per request (run without --no-http to compare with a request's time).`)
  }

  if (opts.json) {
    console.log(JSON.stringify({ machine, options: opts, micro, addedNs: added, addedWrapNs: addedWrap, http: httpResult, requestNs, share, target }, null, 2))
  }
  if (opts.check) {
    const pass = share !== null ? share < target : added < 100
    log(`check: ${pass ? 'PASS' : 'FAIL'} (${share !== null ? `${pct(share)} < 1%` : `${added.toFixed(2)} ns < 100 ns`})`)
    if (!pass) process.exitCode = 1
  }
}

if (process.argv[2] === '--serve') {
  serve(process.argv[3])
} else {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
