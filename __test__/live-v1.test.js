'use strict'
// Live cgroup v1 tests: real memory cgroups created under this process's own
// one. Needs root and a writable v1 memory controller; skipped otherwise
// (a failure under OOMGUARD_REQUIRE_PRIVILEGED=1).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const h = require('./helpers/cgroup')

const PROBE = path.join(__dirname, 'helpers', 'probe-v1.js')
const PREFIX = 'OOMGUARD_PROBE_V1 '
const MiB = 1024 * 1024
// The addon and the probe read memory.usage_in_bytes at slightly different
// moments (the probe brackets the call with a read before and after). A child
// cgroup holds only the probe; this process's own cgroup also holds the test
// runner and whatever else runs beside it, so it gets more slack.
const CHILD_TOLERANCE = 4 * MiB
const OWN_TOLERANCE = 8 * MiB

/**
 * This process's v1 memory cgroup, or null after skipping (or throwing, see
 * privileged()). `create: false`: only reading it is needed, not creating children.
 */
function needV1(t, { create = true } = {}) {
  if (!create) {
    const own = h.ownV1MemoryCgroup()
    if (!own) h.privileged(t, 'no cgroup v1 memory controller for this process (/proc/self/cgroup has no usable memory line)')
    return own
  }
  const s = h.v1Support()
  if (s.reason) {
    h.privileged(t, s.reason)
    return null
  }
  return s.own
}

function memoryLinePath(procCgroup) {
  for (const line of procCgroup.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line)
    if (m && m[1].split(',').includes('memory')) return m[2]
  }
  return null
}

function assertUsageMatches(usage, before, after, what, tolerance = CHILD_TOLERANCE) {
  assert.ok(Number.isSafeInteger(usage) && usage > 0, `${what}: usageBytes should be a positive integer, got ${usage}`)
  assert.ok(before > 0 && after > 0, `${what}: kernel usage should be positive (before ${before}, after ${after})`)
  const lo = Math.min(before, after) - tolerance
  const hi = Math.max(before, after) + tolerance
  assert.ok(usage >= lo && usage <= hi, `${what}: usageBytes ${usage} is not within ${tolerance} bytes of memory.usage_in_bytes ` + `(read ${before} just before and ${after} just after)`)
}

async function probeIn(dir) {
  const r = await h.runNodeInCgroup(dir, PROBE, [h.REPO_ROOT, dir], { timeoutMs: 30000 })
  assert.equal(r.code, 0, `probe failed: ${h.describeRun(r)}`)
  const lines = h.parsePrefixed(r.stdout, PREFIX)
  assert.equal(lines.length, 1, `expected one probe line: ${h.describeRun(r)}`)
  return lines[0]
}

test('v1: a child cgroup with a 200 MiB limit reports that limit and the kernel usage', { timeout: 60000 }, async (t) => {
  const own = needV1(t)
  if (!own) return
  const dir = h.makeCgroup(own.dir)
  t.after(() => h.removeCgroup(dir))
  h.setV1Limit(dir, 209715200)
  const expectedPath = path.posix.join(own.path, path.basename(dir))

  const { metrics: m, kernel } = await probeIn(dir)

  assert.equal(memoryLinePath(kernel.procCgroup), expectedPath, 'the probe did not run inside the child cgroup')
  assert.equal(m.source, 'cgroup-v1')
  assert.equal(m.limitBytes, 209715200)
  assert.equal(m.cgroupLimitBytes, 209715200)
  assert.equal(m.leafLimitBytes, 209715200)
  assert.equal(m.highBytes, null, 'v1 has no memory.high')
  assert.equal(m.cgroup.version, 1)
  assert.equal(m.cgroup.path, expectedPath)
  assert.ok(m.cgroup.dir.endsWith(expectedPath), `cgroup.dir ${m.cgroup.dir} should end with ${expectedPath}`)
  assert.equal(m.cgroup.dir, dir)
  assert.equal(m.cgroup.mountPoint, own.mountPoint)
  assert.equal(m.cgroup.resolved, true)
  assertUsageMatches(m.usageBytes, kernel.usageBefore, kernel.usageAfter, 'child')
  assert.ok(
    Number.isSafeInteger(m.workingSetBytes) && m.workingSetBytes >= 0 && m.workingSetBytes <= m.usageBytes,
    `workingSetBytes ${m.workingSetBytes} should be within [0, usageBytes ${m.usageBytes}]`,
  )
  assert.ok(m.events, 'events should be read')
  assert.equal(m.events.oomKill, 0, 'a fresh cgroup has no OOM kills')
})

test("v1: a grandchild with no limit of its own reports its parent's 150 MiB", { timeout: 60000 }, async (t) => {
  const own = needV1(t)
  if (!own) return
  const parent = h.makeCgroup(own.dir)
  t.after(() => h.removeCgroup(parent)) // removes the grandchild first
  h.setV1Limit(parent, 157286400)
  const leaf = h.makeCgroup(parent, 'leaf')
  assert.equal(h.readV1Limit(path.join(leaf, 'memory.limit_in_bytes')), null, 'the new leaf should be unlimited')
  const expectedPath = path.posix.join(own.path, path.basename(parent), 'leaf')

  const { metrics: m, kernel } = await probeIn(leaf)

  assert.equal(memoryLinePath(kernel.procCgroup), expectedPath, 'the probe did not run inside the grandchild')
  assert.equal(m.source, 'cgroup-v1')
  assert.equal(m.limitBytes, 157286400)
  assert.equal(m.cgroupLimitBytes, 157286400)
  assert.equal(m.leafLimitBytes, null)
  assert.equal(m.cgroup.version, 1)
  assert.equal(m.cgroup.path, expectedPath)
  assert.equal(m.cgroup.dir, leaf)
  assert.equal(m.cgroup.resolved, true)
  assertUsageMatches(m.usageBytes, kernel.usageBefore, kernel.usageAfter, 'grandchild')
  assert.ok(m.workingSetBytes >= 0 && m.workingSetBytes <= m.usageBytes)
})

test('v1: this test process itself reports its own cgroup and its usage', { timeout: 30000 }, (t) => {
  const own = needV1(t, { create: false })
  if (!own) return
  const { getMemoryMetrics } = require(h.REPO_ROOT)
  const usageFile = path.join(own.dir, 'memory.usage_in_bytes')

  const before = h.readNumber(usageFile)
  const m = getMemoryMetrics()
  const after = h.readNumber(usageFile)

  assert.equal(m.cgroup.version, 1)
  assert.equal(m.cgroup.path, memoryLinePath(fs.readFileSync('/proc/self/cgroup', 'utf8')))
  assert.equal(m.cgroup.path, own.path)
  assert.equal(m.cgroup.dir, own.dir)
  assert.equal(m.cgroup.resolved, true)
  const expectedLimit = h.effectiveV1Limit(own.dir, own.mountPoint)
  assert.equal(m.cgroupLimitBytes, expectedLimit, 'smallest memory.limit_in_bytes up the hierarchy')
  if (expectedLimit === null) {
    assert.equal(m.source, 'host', 'no limit anywhere: the host MemTotal is the limit')
    assert.equal(m.limitBytes, m.hostTotalBytes)
  } else {
    assert.equal(m.source, 'cgroup-v1')
  }
  assertUsageMatches(m.usageBytes, before, after, 'own cgroup', OWN_TOLERANCE)
  assert.ok(m.workingSetBytes >= 0 && m.workingSetBytes <= m.usageBytes)
})
