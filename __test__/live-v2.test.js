'use strict'
// Live cgroup v2 tests, in a throwaway VM with a real cgroup v2 hierarchy.
// The VM runner is named by the environment variable OOMGUARD_CGROUP2_VM:
//   "$OOMGUARD_CGROUP2_VM" [--high VAL] [--timeout SEC] HOST_DIR MEMORY_MAX -- COMMAND...
// It packs HOST_DIR into the guest at /host (the command's cwd), puts the
// host's node in the guest, runs the command in a child cgroup with
// memory.max = MEMORY_MAX, and exits with the command's status. Without the
// variable these tests are skipped (a failure under OOMGUARD_REQUIRE_PRIVILEGED=1).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const h = require('./helpers/cgroup')
const { needVm, stageHostDir, runVm } = require('./helpers/vm')

const PROBE = path.join(__dirname, 'helpers', 'probe-v2.js')
const PREFIX = 'OOMGUARD_PROBE_V2 '
const MiB = 1024 * 1024
const MEMORY_MAX = '96M'
const MEMORY_MAX_BYTES = 96 * MiB // 100663296
const MEMORY_HIGH = '80M'
const MEMORY_HIGH_BYTES = 80 * MiB // 83886080
// The addon and the probe read memory.current at slightly different moments
// (the probe brackets the call with a read before and after).
const USAGE_TOLERANCE = 4 * MiB
const TEST_TIMEOUT_MS = 120000
const VM_TIMEOUT_S = 100 // the runner kills its VM first; we kill the runner at 115 s

async function runProbeInVm(t, options) {
  const vm = needVm(t)
  if (!vm) return null
  const hostDir = stageHostDir(t, [PROBE])
  const r = await runVm(vm, { options, hostDir, memoryMax: MEMORY_MAX, command: ['node', 'probe-v2.js', 'main'], vmTimeoutS: VM_TIMEOUT_S })
  t.diagnostic(`VM run took ${(r.ms / 1000).toFixed(1)} s`)
  assert.equal(r.code, 0, `VM runner failed: ${h.describeRun(r)}`)
  const byKind = {}
  for (const o of h.parsePrefixed(r.stdout, PREFIX)) byKind[o.kind] = o
  assert.ok(byKind.self, `no 'self' probe line: ${h.describeRun(r)}`)
  return { byKind, run: r }
}

function assertUsageMatches(m, kernel, what) {
  const { currentBefore: before, currentAfter: after } = kernel
  assert.ok(Number.isSafeInteger(m.usageBytes) && m.usageBytes > 0, `${what}: usageBytes ${m.usageBytes}`)
  assert.ok(before > 0 && after > 0, `${what}: memory.current should be positive (${before}, ${after})`)
  assert.ok(
    m.usageBytes >= Math.min(before, after) - USAGE_TOLERANCE && m.usageBytes <= Math.max(before, after) + USAGE_TOLERANCE,
    `${what}: usageBytes ${m.usageBytes} is not within ${USAGE_TOLERANCE} bytes of memory.current ` +
      `(read ${before} just before and ${after} just after)`,
  )
  assert.ok(
    Number.isSafeInteger(m.workingSetBytes) && m.workingSetBytes >= 0 && m.workingSetBytes <= m.usageBytes,
    `${what}: workingSetBytes ${m.workingSetBytes} should be within [0, usageBytes ${m.usageBytes}]`,
  )
}

/** The checks shared by both runs; `high` is the expected highBytes. */
function checkRun({ byKind, run }, high) {
  const self = byKind.self
  const m = self.metrics
  assert.equal(self.kernel.max, String(MEMORY_MAX_BYTES), 'the runner should have set memory.max')
  assert.equal(m.source, 'cgroup-v2')
  assert.equal(m.limitBytes, MEMORY_MAX_BYTES)
  assert.equal(m.cgroupLimitBytes, MEMORY_MAX_BYTES)
  assert.equal(m.leafLimitBytes, MEMORY_MAX_BYTES)
  assert.equal(m.highBytes, high)
  assert.equal(m.cgroup.version, 2)
  assert.equal(m.cgroup.path, self.kernel.path)
  assert.equal(m.cgroup.dir, self.kernel.dir)
  assert.equal(m.cgroup.resolved, true)
  assertUsageMatches(m, self.kernel, 'self')
  assert.equal(m.events.oomKill, 0, 'no OOM kill yet')
  assert.equal(m.pressureScope, 'cgroup', 'the v2 leaf has memory.pressure')

  // (b) the child cgroup with no memory.max of its own
  assert.ok(!byKind['nested-error'], `nested cgroup step failed: ${JSON.stringify(byKind['nested-error'])}`)
  const kid = byKind.kid
  assert.ok(kid, `no 'kid' probe line: ${h.describeRun(run)}`)
  const k = kid.metrics
  assert.equal(kid.kernel.path, path.posix.join(self.kernel.path, 'kid'), 'the kid ran in the child cgroup')
  assert.equal(kid.kernel.max, 'max', 'the child cgroup has no memory.max of its own')
  assert.match(kid.kernel.parentSubtreeControl, /\bmemory\b/)
  assert.equal(k.source, 'cgroup-v2')
  assert.equal(k.limitBytes, MEMORY_MAX_BYTES, "the child reports its parent's memory.max")
  assert.equal(k.cgroupLimitBytes, MEMORY_MAX_BYTES)
  assert.equal(k.leafLimitBytes, null)
  assert.equal(k.highBytes, high, "the child reports its parent's memory.high")
  assert.equal(k.cgroup.version, 2)
  assert.equal(k.cgroup.path, kid.kernel.path)
  assert.equal(k.cgroup.dir, kid.kernel.dir)
  assert.equal(k.cgroup.resolved, true)
  assertUsageMatches(k, kid.kernel, 'kid')
}

test(`v2: memory.max ${MEMORY_MAX} in a VM, and a child cgroup without a limit of its own`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const res = await runProbeInVm(t, [])
  if (!res) return
  assert.equal(res.byKind.self.kernel.high, 'max')
  checkRun(res, null)
})

test(`v2: memory.high ${MEMORY_HIGH} under memory.max ${MEMORY_MAX} in a VM`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const res = await runProbeInVm(t, ['--high', MEMORY_HIGH])
  if (!res) return
  assert.equal(res.byKind.self.kernel.high, String(MEMORY_HIGH_BYTES), 'the runner should have set memory.high')
  checkRun(res, MEMORY_HIGH_BYTES)
})
