#!/usr/bin/env node
'use strict'
// The verdict without V8: how well the sampler's own reading (the
// allocator's split of this process's anonymous memory, src/watch/alloc.rs)
// agrees with V8's numbers, and the verdict in real kills where the
// JavaScript thread is too busy to hand V8's numbers over.
//
// 1. Agreement (no privileges): a child grows JS objects and Buffers in
//    steps (benchmark/verdict-child.js); after each step and a full
//    collection, V8's heapTotal against the anonymous memory outside
//    malloc, and V8's external against what malloc holds. And the cost of
//    one reading (glibc walks every free chunk), tidy and after many
//    small frees.
// 2. Kills (root, cgroup v1): the busy patterns of
//    __test__/helpers/oom-kills.js (BUSY: a synchronous a.push({ i: 1 })
//    loop, an HTTP /cache leak under 10 connections, JS objects with the
//    thread blocked between allocations, a synchronous Buffer loop; and,
//    measured but not required, the a.push loop after fragmenting malloc,
//    where readings are costly and so less frequent), round-robin, each in
//    a fresh 256 MiB cgroup; the verdict of the final record and of every
//    level record, and the age of the V8 numbers.
//
//   node benchmark/verdict.js [--runs 5] [--patterns heapsync,http,heapblocked,sync,fragsync] [--no-kills] [--json] [--check]

const path = require('node:path')
const { execFileSync } = require('node:child_process')
const h = require('../__test__/helpers/cgroup')
const k = require('../__test__/helpers/oom-kills')
const u = require('./util')

const SPEC = {
  runs: { def: 5, type: 'int', help: 'kills per pattern' },
  patterns: { def: 'heapsync,http,heapblocked,sync,fragsync', type: 'str', help: 'busy patterns, run round-robin' },
  noKills: { def: false, type: 'bool', help: 'the agreement part only' },
  json: { def: false, type: 'bool', help: 'machine-readable results on stdout' },
  check: { def: false, type: 'bool', help: 'exit 1 unless every kill (fragsync: never a wrong cause) had the right verdict in every record' },
}
const USAGE = 'usage: node benchmark/verdict.js [options]'
const MiB = 1024 * 1024

// Objects:Buffers targets in MiB, each run growing from the previous one.
const GRIDS = ['0:0,25:0,50:0,100:0,200:0', '0:0,0:25,0:50,0:100,0:200', '0:0,20:20,50:50,50:150,150:150', '0:0,150:0,150:30,150:60', '0:0,0:150,30:150,60:150']

function cost() {
  const out = execFileSync(process.execPath, ['--expose-gc', path.join(__dirname, 'verdict-child.js'), 'cost'], { encoding: 'utf8' })
  return JSON.parse(out)
}

function agreement() {
  const rows = []
  for (const grid of GRIDS) {
    const out = execFileSync(process.execPath, ['--expose-gc', path.join(__dirname, 'verdict-child.js'), grid], { encoding: 'utf8' })
    for (const line of out.trim().split('\n')) {
      const r = JSON.parse(line)
      const a = r.allocator
      if (!a) throw new Error('no allocator split in this process (musl, or a preloaded allocator)')
      const outside = a.anonBytes - Math.min(a.mallocBytes, a.anonBytes)
      rows.push({
        ...r,
        heapTotal: r.v8.heapTotal,
        outsideMalloc: outside,
        heapError: outside - r.v8.heapTotal,
        external: r.v8.external,
        malloc: a.mallocBytes,
        externalError: a.mallocBytes - r.v8.external,
        // The verdict each side would give (the rule's half of the anonymous memory).
        splitSaysHeap: outside >= 0.5 * a.anonBytes,
        v8SaysHeap: r.v8.heapTotal >= 0.5 * a.anonBytes,
      })
    }
  }
  return rows
}

async function kills(opts) {
  const support = h.v1Support()
  if (support.reason) return { skipped: support.reason, runs: [] }
  const runs = []
  for (let round = 0; round < opts.runs; round++) {
    for (const p of opts.patterns) {
      const r = await k.runKill(support.own.dir, p)
      runs.push(r)
      process.stderr.write(
        `${String(runs.length).padStart(3)} ${p.padEnd(12)} ${r.ok ? 'ok  ' : 'MISS'} killed=${r.killed} final=${r.record && r.record.verdict} ` +
          `levels=${r.levelVerdicts.join(',')} v8Age=${r.v8AgeMs}ms${r.requests !== null ? ` requests=${r.requests}` : ''}\n`,
      )
    }
  }
  return { runs }
}

function agreementTable(rows) {
  return u.table(
    ['objects MiB', 'Buffers MiB', 'V8 heapTotal', 'anon outside malloc', 'difference', 'V8 external', 'malloc holds', 'difference', 'verdict: split · V8'],
    rows.map((r) => [
      r.objectsMiB,
      r.buffersMiB,
      u.fmt(r.heapTotal / MiB, 1),
      u.fmt(r.outsideMalloc / MiB, 1),
      u.fmt(r.heapError / MiB, 1),
      u.fmt(r.external / MiB, 1),
      u.fmt(r.malloc / MiB, 1),
      u.fmt(r.externalError / MiB, 1),
      `${r.splitSaysHeap ? 'heap' : 'outside'} · ${r.v8SaysHeap ? 'heap' : 'outside'}`,
    ]),
  )
}

/** A record named a cause other than the right one (unknown is no cause). */
const wrongCause = (r, s) => [r.record && r.record.verdict, ...r.levelVerdicts].some((v) => v && v !== s.verdict && v !== 'unknown')

function killTable(runs, patterns) {
  return u.table(
    ['pattern', 'expected', 'OOM-killed', 'final record right', 'every level record right', 'a wrong cause named', "V8 numbers' age at the final record, ms: median (max)"],
    patterns.map((p) => {
      const s = k.BUSY[p]
      const rs = runs.filter((r) => r.pattern === p)
      const killed = rs.filter((r) => r.killed)
      const ages = killed.map((r) => r.v8AgeMs).filter((v) => typeof v === 'number')
      return [
        p,
        s.verdict,
        `${killed.length}/${rs.length}`,
        `${killed.filter((r) => r.verdictRight).length}/${killed.length}`,
        `${killed.filter((r) => r.levelVerdicts.length > 0 && r.levelVerdicts.every((v) => v === s.verdict)).length}/${killed.length}`,
        `${killed.filter((r) => wrongCause(r, s)).length}/${killed.length}`,
        `${u.fmt(u.median(ages), 0)} (${u.fmt(Math.max(...ages), 0)})`,
      ]
    }),
  )
}

async function main() {
  const opts = u.parseArgs(process.argv.slice(2), SPEC, USAGE)
  opts.patterns = opts.patterns.split(',').map((p) => p.trim())
  for (const p of opts.patterns) if (!k.BUSY[p]) throw new Error(`--patterns: no pattern ${p} (${Object.keys(k.BUSY)})`)
  const costs = cost()
  const rows = agreement()
  const killed = opts.noKills ? { skipped: '--no-kills', runs: [] } : await kills(opts)
  const abs = (xs) => xs.map(Math.abs)
  const result = {
    machine: u.machineInfo(),
    versions: u.versions(),
    agreement: {
      steps: rows.length,
      heapErrorMiB: { median: u.median(abs(rows.map((r) => r.heapError / MiB))), max: Math.max(...abs(rows.map((r) => r.heapError / MiB))) },
      externalErrorMiB: { median: u.median(abs(rows.map((r) => r.externalError / MiB))), max: Math.max(...abs(rows.map((r) => r.externalError / MiB))) },
      verdictsAgree: rows.filter((r) => r.splitSaysHeap === r.v8SaysHeap).length,
      rows,
    },
    readingCostUs: costs,
    kills: killed,
    ok: killed.runs.every((r) => (k.BUSY[r.pattern].measured ? r.killed && !wrongCause(r, k.BUSY[r.pattern]) : r.ok)),
  }
  if (opts.json) console.log(JSON.stringify(result))
  else {
    console.log(u.describeMachine(result.machine, result.versions))
    const a = result.agreement
    console.log(
      `\nAgreement, ${a.steps} steps: |outside malloc - heapTotal| median ${u.fmt(a.heapErrorMiB.median)} MiB (max ${u.fmt(a.heapErrorMiB.max)}); |malloc - external| median ${u.fmt(a.externalErrorMiB.median)} MiB (max ${u.fmt(a.externalErrorMiB.max)}); the verdict the same in ${a.verdictsAgree}/${a.steps}\n`,
    )
    console.log(agreementTable(rows))
    console.log(
      `\nOne reading of the split: tidy ${u.fmt(costs.tidyUs, 1)} µs; after 10,000 / 50,000 / 100,000 small frees ${u.fmt(costs.free10000Us / 1e3, 2)} / ${u.fmt(costs.free50000Us / 1e3, 1)} / ${u.fmt(costs.free100000Us / 1e3, 1)} ms`,
    )
    if (killed.skipped) console.log(`\nKills skipped: ${killed.skipped}`)
    else console.log(`\n${killTable(killed.runs, opts.patterns)}`)
  }
  if (opts.check && !result.ok) process.exit(1)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
