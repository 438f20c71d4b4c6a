'use strict'
// Changes its own memory limit under a running monitor and reports what the
// monitor, getMemoryMetrics() and the doctor said (limit.test.js, and in the
// cgroup v2 VM live-v2.test.js):
//
//   node [--max-old-space-size=N] limit-child.js PKG_DIR LIMIT_FILE MODE INTERVAL_MS [ROOT] -- LIMIT...
//
// LIMIT_FILE is the limit file of the cgroup this process runs in
// (memory.limit_in_bytes, memory.max), or of a fixture tree given as ROOT.
// MODE `kernel` writes it as a cgroup file (one write); `fixture` rewrites it
// in place (same inode, fixed width), as the sampler keeps it open;
// `external` writes nothing: it prints PREFIX + { waiting: step } and someone
// else changes the limit (docker update), LIMIT_FILE is unused. For each
// LIMIT in turn it writes the file, waits for the monitor's `limit` event
// and two more intervals for the level changes the new limit causes, and
// prints one line: PREFIX + JSON { step, limitBytes, writtenAtMs, events,
// heapDiagnoses, doctorHeap }. A last line PREFIX + { done: true }.

const fs = require('node:fs')

const PREFIX = 'OOMGUARD_LIMIT '
const sep = process.argv.indexOf('--')
const [pkgDir, limitFile, mode, intervalArg, root] = process.argv.slice(2, sep)
const limits = process.argv.slice(sep + 1).map(Number)
const intervalMs = Number(intervalArg)
const oomguard = require(pkgDir)

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const emit = (o) => process.stdout.write(`${PREFIX}${JSON.stringify(o)}\n`)

function write(bytes) {
  if (mode === 'fixture') {
    const fd = fs.openSync(limitFile, 'r+')
    const buf = Buffer.from(`${String(bytes).padEnd(20, ' ')}\n`)
    fs.writeSync(fd, buf, 0, buf.length, 0)
    fs.ftruncateSync(fd, buf.length)
    fs.closeSync(fd)
  } else {
    fs.writeFileSync(limitFile, String(bytes))
  }
}

async function main() {
  const options = { maxIntervalMs: intervalMs, lastWords: false }
  if (root) options.root = root
  const m = oomguard.watch(options)
  const events = []
  for (const kind of ['limit', 'threshold', 'recovered']) m.on(kind, (e) => events.push({ kind, receivedAtMs: Date.now(), ...e }))
  m.on('error', (e) => events.push({ kind: 'error', message: e.message }))
  const first = Date.now() + 5000
  while (m.current.samples < 1 && Date.now() < first) await sleep(5)
  emit({ step: 'start', current: m.current, heapSizeLimitBytes: require('node:v8').getHeapStatistics().heap_size_limit })
  for (const [step, bytes] of limits.entries()) {
    events.length = 0
    let writtenAtMs = null
    if (mode === 'external') {
      emit({ waiting: step, limitBytes: bytes })
    } else {
      writtenAtMs = Date.now()
      write(bytes)
    }
    const end = Date.now() + (mode === 'external' ? 60_000 : 5000) + 2 * intervalMs
    while (!events.some((e) => e.kind === 'limit' && e.limitBytes === bytes) && Date.now() < end) await sleep(2)
    await sleep(2 * intervalMs + 50)
    const metrics = root ? oomguard.getMemoryMetrics(undefined, { root }) : oomguard.getMemoryMetrics()
    const report = oomguard.doctor.diagnose(metrics)
    emit({
      step,
      limitBytes: bytes,
      writtenAtMs,
      events: events.map(({ v8, diagnosis, ...e }) => ({ ...e, diagnosisCode: diagnosis ? diagnosis.code : null, v8HeapSizeLimitBytes: v8 ? v8.heapSizeLimitBytes : null })),
      metricsLimitBytes: metrics.limitBytes,
      heapDiagnoses: metrics.diagnoses.filter((d) => d.code.startsWith('HEAP_LIMIT')).map((d) => d.code),
      doctorHeap: report.heap.verdict,
      current: m.current,
    })
  }
  m.close()
  emit({ done: true })
}

main().catch((e) => {
  emit({ fatal: e.stack || String(e) })
  process.exitCode = 1
})
