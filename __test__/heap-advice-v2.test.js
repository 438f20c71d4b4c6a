'use strict'
// The doctor's heap advice and its account of node's default heap limit on
// cgroup v2, in the throwaway VM (OOMGUARD_CGROUP2_VM): node sizes its heap
// from min(memory.high, memory.max) of its own cgroup (libuv), so with a
// memory.high below memory.max the default and the percentage form follow
// memory.high, while the advice is still for the limit. Each advised
// NODE_OPTIONS, given to a fresh node in the same cgroup, must give the heap
// limit the doctor states (within 1 MiB), within the band.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const h = require('./helpers/cgroup')
const { needVm, needVmOptions, stageHostDir, runVm } = require('./helpers/vm')
const BAND = require('../lib/core/heap-band.json')

const MiB = 1024 * 1024
const CHILD = path.join(__dirname, 'helpers', 'heap-v2-child.js')
const VM_TIMEOUT_S = 150

async function inVm(t, memoryMax, options = []) {
  const vm = needVm(t)
  if (!vm) return null
  if (options.includes('--high') && !needVmOptions(t, vm, ['--high'], 'memory.high cannot be set')) return null
  const hostDir = stageHostDir(t, [CHILD])
  fs.cpSync(path.join(h.REPO_ROOT, 'bin'), path.join(hostDir, 'bin'), { recursive: true })
  const r = await runVm(vm, { options, hostDir, memoryMax, command: ['node', 'heap-v2-child.js'], vmTimeoutS: VM_TIMEOUT_S })
  t.diagnostic(`VM run took ${(r.ms / 1000).toFixed(1)} s`)
  assert.equal(r.code, 0, `VM runner failed: ${h.describeRun(r)}`)
  const [out] = h.parsePrefixed(r.stdout, 'OOMGUARD_HEAP_V2 ')
  assert.ok(out, `no result line: ${h.describeRun(r)}`)
  return out
}

function checkAdvice(out, limit) {
  const a = out.report.heap.advice
  assert.ok(a && a.measured, `measured advice: ${JSON.stringify(a)}`)
  assert.equal(a.limitBytes, limit)
  assert.equal(out.measured.length, a.options.length)
  a.options.forEach((o, i) => {
    const m = out.measured[i].heapSizeLimitBytes
    assert.ok(Math.abs(m - o.heapSizeLimitBytes) <= MiB, `${o.nodeOptions}: measured ${m / MiB} MiB, stated ${o.heapSizeLimitBytes / MiB} MiB`)
    assert.ok(m >= limit * BAND.low && m <= limit * BAND.high, `${o.nodeOptions}: ${m / MiB} MiB within the band of ${limit / MiB} MiB`)
  })
  assert.equal(out.report.heap.nodeSizing.defaultHeapLimitBytes, out.defaultHeapSizeLimitBytes, 'the default the doctor states is the measured one')
}

// (The VM has a little under 1 GiB of memory: node caps what it sizes from
// at MemTotal, so the first run stays below that.)
test('cgroup v2, memory.max 512 MiB: node sizes from memory.max; the advice is measured in the band', { timeout: (VM_TIMEOUT_S + 30) * 1000 }, async (t) => {
  const out = await inVm(t, '512M')
  if (!out) return
  assert.equal(out.report.limit.bytes, 512 * MiB)
  assert.equal(out.report.limit.constrainedMemoryBytes, 512 * MiB)
  assert.equal(out.report.heap.nodeSizing.from, 'max')
  assert.match(out.report.heap.nodeSizing.text, /^memory\.max of this cgroup \(512\.0 MiB\)/)
  checkAdvice(out, 512 * MiB)
})

test('cgroup v2, memory.max 1 GiB and memory.high 256 MiB: node sizes from memory.high (the ~259 MiB floor)', { timeout: (VM_TIMEOUT_S + 30) * 1000 }, async (t) => {
  const out = await inVm(t, '1G', ['--high', '256M'])
  if (!out) return
  assert.equal(out.report.limit.bytes, 1024 * MiB)
  assert.equal(out.report.limit.leafHighBytes, 256 * MiB)
  assert.equal(out.report.limit.constrainedMemoryBytes, 256 * MiB)
  assert.equal(out.report.heap.nodeSizing.from, 'high')
  assert.match(out.report.heap.nodeSizing.text, /memory\.high of this cgroup \(256\.0 MiB\), which is below its memory\.max/)
  assert.equal(out.defaultHeapSizeLimitBytes, 259 * MiB, 'node sized from memory.high: the floor')
  // A percentage would be of memory.high, not the limit: not offered.
  assert.deepEqual(
    out.report.heap.advice.options.map((o) => o.form),
    ['fixed'],
  )
  checkAdvice(out, 1024 * MiB)
})
