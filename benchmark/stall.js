'use strict'
// Stalls at the limit (cgroup v1, root): how soon oomguard says a cgroup is
// stuck, and how soon onStall ends the process, over repeated runs per
// pattern; and how often it cries stall on page cache at the limit (the
// false-positive count, target 0).
//
// Each run: a fresh child cgroup with a 256 MiB limit, node started from a
// copy whose pages are in no page cache (so its code is charged to the
// cgroup, as in a container started from a freshly pulled image), memory
// grown to the limit with watch({ stall, onStall: { action: 'exit' } }).
// Measured from the first failed charge (memory.failcnt above 0, polled
// every 20 ms): when the stall record was written (the native thread, which
// speaks even when JavaScript is stuck), and when the process ended. A run
// the kernel OOM-killed first is counted as such, not timed.
//
// --memsw: every run (the page-cache ones too) with memory.memsw.limit_in_bytes
// equal to the limit (Docker's --memory-swap equal to --memory); the kernel
// then counts no failed charge, so the limit counts as reached when
// memory.memsw.max_usage_in_bytes comes within 1 MiB of it.
//
//   node benchmark/stall.js [--runs 5] [--patterns objects,arraybuffers,sync]
//                           [--sustain-ms 3000] [--after-ms 10000] [--memsw]
//                           [--pagecache-runs 3] [--pagecache-seconds 15] [--json]

const u = require('./util')
const h = require('../__test__/helpers/cgroup')
const { coldNodeUnsupported } = require('../__test__/helpers/cold-node')
const { runStall } = require('../__test__/helpers/stall-scenarios')

const SPEC = {
  runs: { def: 5, type: 'int', help: 'runs per pattern' },
  patterns: { def: 'objects,arraybuffers,sync', type: 'str', help: 'patterns: objects, arraybuffers, sync' },
  sustainMs: { def: 3000, type: 'int', help: 'stall.sustainMs (the default is 3000)' },
  afterMs: { def: 10000, type: 'int', help: 'onStall.afterMs' },
  pagecacheRuns: { def: 3, type: 'int', help: 'runs of the page-cache scenario (false positives)' },
  pagecacheSeconds: { def: 15, type: 'int', help: 'how long each page-cache run streams a file three times the limit' },
  memsw: { def: false, type: 'bool', help: 'memory.memsw.limit_in_bytes equal to the limit (needs swap accounting)' },
  json: { def: false, type: 'bool', help: 'machine-readable results on stdout (progress on stderr)' },
}
const PATTERNS = {
  objects: { label: 'JS objects (V8 heap), 50 MiB/s', scenario: 'objects', rate: 50, prefill: 0.5 },
  arraybuffers: { label: 'ArrayBuffers, 100 MiB/s', scenario: 'arraybuffers', rate: 100, prefill: 0.5 },
  sync: { label: 'Buffers, synchronous loop', scenario: 'sync', rate: 0, prefill: 0 },
}
const EXIT_CODE = 75

async function main() {
  const opts = u.parseArgs(process.argv.slice(2), SPEC, 'usage: node benchmark/stall.js [options]')
  const log = opts.json ? (s) => process.stderr.write(`${s}\n`) : (s) => console.log(s)
  const progress = (s) => process.stderr.write(`${s}\n`)
  const support = h.v1Support()
  if (support.reason) throw new Error(`needs cgroup v1 and root: ${support.reason}`)
  const cold = coldNodeUnsupported()
  if (cold) throw new Error(cold)
  const machine = u.machineInfo()
  const vers = u.versions()
  const started = Date.now()
  const watch = { stall: { sustainMs: opts.sustainMs }, onStall: { action: 'exit', afterMs: opts.afterMs } }
  const timeoutMs = opts.afterMs + 60_000
  const memswLimit = opts.memsw ? 256 * 1024 * 1024 : null

  const runs = []
  const names = opts.patterns.split(',').map((s) => s.trim())
  for (const n of names) if (!PATTERNS[n]) throw new Error(`unknown pattern ${n}`)
  for (let rep = 0; rep < opts.runs; rep++) {
    for (const n of names) {
      const p = PATTERNS[n]
      const r = await runStall({ ...p, watch, own: support.own, timeoutMs, memswLimit })
      const run = {
        pattern: n,
        rep,
        outcome: r.code === EXIT_CODE ? 'ended by onStall' : r.oomKills > 0 ? 'OOM-killed' : r.timedOut ? 'timed out' : `exit ${r.code} ${r.signal}`,
        detectMs: r.recordAt !== null && r.limitAt !== null ? r.recordAt - r.limitAt : null,
        endMs: r.code === EXIT_CODE && r.limitAt !== null ? r.exitAt - r.limitAt : null,
        endAfterStallMs: r.code === EXIT_CODE && r.record && r.record.stall ? r.exitAt - (Date.parse(r.record.time) - r.record.stall.durationMs) : null,
        jsEventMs: r.eventAt !== null && r.limitAt !== null ? r.eventAt - r.limitAt : null,
        killedAfterMs: r.oomKills > 0 && r.limitAt !== null ? r.exitAt - r.limitAt : null,
        cause: r.record && r.record.verdict === 'stall' ? r.record.cause : null,
        decidedBy: r.firstRecord ? r.firstRecord.stall.decidedBy : null,
        refaultsPerSec: r.firstRecord ? r.firstRecord.stall.refaultsPerSec : null,
      }
      runs.push(run)
      progress(
        `[${runs.length}/${opts.runs * names.length}] ${n.padEnd(12)} ${run.outcome}` +
          (run.detectMs !== null ? `, stall record ${run.detectMs} ms after the limit (decided by ${run.decidedBy}, ${run.refaultsPerSec} refaults/s)` : ', no stall record') +
          (run.endMs !== null ? `, ended ${run.endMs} ms after the limit (${run.endAfterStallMs} ms after the stall began)` : '') +
          (run.killedAfterMs !== null ? `, killed ${run.killedAfterMs} ms after the limit` : ''),
      )
    }
  }

  const pagecache = []
  for (let i = 0; i < opts.pagecacheRuns; i++) {
    const r = await runStall({
      scenario: 'pagecache',
      rate: opts.pagecacheSeconds,
      watch: { stall: { sustainMs: opts.sustainMs } },
      own: support.own,
      timeoutMs: opts.pagecacheSeconds * 1000 + 60_000,
      memswLimit,
    })
    const done = r.markers.find((m) => m.event === 'done')
    const falsePositive = r.recordAt !== null || r.markers.some((m) => m.event === 'stall')
    pagecache.push({ falsePositive, code: r.code, maxUsage: done ? done.maxUsage : null, limitReached: r.limitAt !== null })
    progress(
      `[page cache ${i + 1}/${opts.pagecacheRuns}] exit ${r.code}, max usage ${done ? (done.maxUsage * 100).toFixed(1) : '?'}% of the limit, ${falsePositive ? 'STALL REPORTED (false positive)' : 'no stall'}`,
    )
  }

  const summary = names.map((n) => {
    const rs = runs.filter((r) => r.pattern === n)
    return {
      pattern: n,
      label: PATTERNS[n].label,
      runs: rs.length,
      endedByOnStall: rs.filter((r) => r.outcome === 'ended by onStall').length,
      oomKilled: rs.filter((r) => r.outcome === 'OOM-killed').length,
      detectMs: u.summary(rs.map((r) => r.detectMs)),
      endMs: u.summary(rs.map((r) => r.endMs)),
      endAfterStallMs: u.summary(rs.map((r) => r.endAfterStallMs)),
      jsEvents: rs.filter((r) => r.jsEventMs !== null).length,
    }
  })
  const falsePositives = pagecache.filter((r) => r.falsePositive).length
  const method = {
    limitMiB: 256,
    runsPerPattern: opts.runs,
    sustainMs: opts.sustainMs,
    afterMs: opts.afterMs,
    memswLimitMiB: opts.memsw ? 256 : null,
    pagecacheRuns: opts.pagecacheRuns,
    pagecacheSeconds: opts.pagecacheSeconds,
    seconds: (Date.now() - started) / 1000,
  }
  if (opts.json) {
    console.log(JSON.stringify({ machine, versions: vers, method, summary, falsePositives, runs, pagecache }, null, 1))
    return
  }
  const q = (s) => (s.n === 0 ? '–' : `${u.fmt(s.median / 1000, 2)} (${u.fmt(s.p25 / 1000, 2)}–${u.fmt(s.p75 / 1000, 2)})`)
  log(u.describeMachine(machine, vers))
  log(
    `method: ${opts.runs} runs per pattern, cgroup v1, 256 MiB limit, node from a cold copy; stall.sustainMs ${opts.sustainMs}, ` +
      `onStall.afterMs ${opts.afterMs}; ` +
      (opts.memsw
        ? 'memory.memsw.limit_in_bytes equal to the limit; times from memory+swap reaching it (memory.memsw.max_usage_in_bytes within 1 MiB)'
        : 'times from the first failed charge (memory.failcnt > 0)') +
      `; ${method.seconds.toFixed(0)} s`,
  )
  log('')
  log(
    u.table(
      ['pattern', 'runs', 'ended by onStall', 'OOM-killed first', 'limit → stall record, s: median (p25–p75)', 'limit → process end, s', 'stall start → end, s'],
      summary.map((s) => [s.label, s.runs, s.endedByOnStall, s.oomKilled, q(s.detectMs), q(s.endMs), q(s.endAfterStallMs)]),
    ),
  )
  log('')
  log(`page cache at the limit (${opts.pagecacheSeconds} s streaming a file 3x the limit, cold node): ${falsePositives} false positive(s) in ${pagecache.length} run(s) (target 0)`)
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`)
  process.exitCode = 1
})
