'use strict'
// Live cgroup v2 tests, in a throwaway VM with a real cgroup v2 hierarchy.
// The VM runner is named by the environment variable OOMGUARD_CGROUP2_VM:
//   "$OOMGUARD_CGROUP2_VM" [--container] [--high VAL] [--timeout SEC] HOST_DIR MEMORY_MAX -- COMMAND...
// It packs HOST_DIR into the guest at /host (the command's cwd), puts the
// host's node in the guest, runs the command in a child cgroup with
// memory.max = MEMORY_MAX, and exits with the command's status. Without the
// variable these tests are skipped (a failure under OOMGUARD_REQUIRE_PRIVILEGED=1).
//
// Containers see cgroup v2 the way --container sets it up (runc's layout):
// their own cgroup namespace (/proc/self/cgroup says 0::/) with cgroup2
// mounted read-only at /sys/fs/cgroup, rooted at their cgroup. The limit
// readings run that way; one run keeps the host's writable view, for the walk
// from a child cgroup to its parent's limit, and one writes memory.max under
// a running monitor (a container cannot).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const h = require('./helpers/cgroup')
const { needVm, needVmOptions, stageHostDir, runVm } = require('./helpers/vm')
const limits = require('./helpers/limit-check')

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

async function runProbeInVm(t, options, mode = 'main') {
  const vm = needVm(t)
  if (!vm) return null
  if (options.includes('--container') && !needVmOptions(t, vm, ['--container'], 'the container layout of cgroup v2 cannot be set up')) return null
  const hostDir = stageHostDir(t, [PROBE])
  const r = await runVm(vm, { options, hostDir, memoryMax: MEMORY_MAX, command: ['node', 'probe-v2.js', mode], vmTimeoutS: VM_TIMEOUT_S })
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
    `${what}: usageBytes ${m.usageBytes} is not within ${USAGE_TOLERANCE} bytes of memory.current ` + `(read ${before} just before and ${after} just after)`,
  )
  assert.ok(
    Number.isSafeInteger(m.workingSetBytes) && m.workingSetBytes >= 0 && m.workingSetBytes <= m.usageBytes,
    `${what}: workingSetBytes ${m.workingSetBytes} should be within [0, usageBytes ${m.usageBytes}]`,
  )
}

/** The checks of the process's own cgroup; `high` is the expected highBytes. */
function checkSelf(self, high) {
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
  assert.deepEqual(
    m.diagnoses.filter((c) => c.startsWith('CGROUP_')),
    [],
    'resolved and readable',
  )
}

/** The writable run: its own cgroup, and a child cgroup below it. */
function checkRun({ byKind, run }, high) {
  const self = byKind.self
  checkSelf(self, high)

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

test(`v2 (writable, the host's view): memory.max ${MEMORY_MAX} in a VM, and a child cgroup without a limit of its own`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const res = await runProbeInVm(t, [])
  if (!res) return
  assert.equal(res.byKind.self.kernel.high, 'max')
  checkRun(res, null)
})

/** A container-mode run: the container's own cgroup at the read-only mount point. */
function checkContainer({ byKind, run }, high) {
  const self = byKind.self
  assert.ok(self, h.describeRun(run))
  assert.equal(self.kernel.path, '/', 'own cgroup namespace: /proc/self/cgroup says 0::/')
  assert.equal(self.kernel.mount, '/sys/fs/cgroup')
  assert.match(self.kernel.mountOptions, /(^|,)ro(,|$)/, 'cgroup2 is mounted read-only')
  checkSelf(self, high)
  assert.deepEqual(self.metrics.cgroup, { version: 2, path: '/', dir: '/sys/fs/cgroup', mountPoint: '/sys/fs/cgroup', resolved: true })
}

test(`v2 container mode: memory.max ${MEMORY_MAX}, own cgroup namespace, cgroupfs read-only`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const res = await runProbeInVm(t, ['--container'], 'container')
  if (!res) return
  assert.equal(res.byKind.self.kernel.high, 'max')
  checkContainer(res, null)
})

test(`v2 container mode: memory.high ${MEMORY_HIGH} under memory.max ${MEMORY_MAX}`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const res = await runProbeInVm(t, ['--container', '--high', MEMORY_HIGH], 'container')
  if (!res) return
  assert.equal(res.byKind.self.kernel.high, String(MEMORY_HIGH_BYTES), 'the runner should have set memory.high')
  checkContainer(res, MEMORY_HIGH_BYTES)
})

test('v2: memory.max written under a running monitor (1G -> 300M -> 200M -> 1G): limit events, diagnoses, doctor', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const vm = needVm(t)
  if (!vm) return
  const hostDir = stageHostDir(t, [limits.CHILD])
  const MiB = limits.MiB
  const steps = [
    [300 * MiB, []],
    [200 * MiB, []],
    [1024 * MiB, []],
  ]
  // The child writes its own cgroup's memory.max (the runner's writable child cgroup).
  const script =
    `exec node ${limits.HEAP_FLAGS.join(' ')} ${path.basename(limits.CHILD)} /host ` +
    '"/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)/memory.max" ' +
    `kernel ${limits.INTERVAL_MS} -- ${steps.map((x) => x[0]).join(' ')}`
  const r = await runVm(vm, { options: [], hostDir, memoryMax: '1G', command: [script], vmTimeoutS: VM_TIMEOUT_S })
  t.diagnostic(`VM run took ${(r.ms / 1000).toFixed(1)} s`)
  // The guest is emulated: give the sampler's wake-up more room than on the host.
  const delays = limits.checkRun(r, 1024 * MiB, steps, 'cgroup-v2', { slackMs: 1000 })
  t.diagnostic(`limit event ${delays.map((x) => x.toFixed(0)).join(', ')} ms after each write (interval ${limits.INTERVAL_MS} ms)`)
})
