'use strict'
// The sampler where cgroupfs is read-only, as Docker and Kubernetes mount it:
// a real child cgroup v1 with a 256 MiB limit, node in its own mount
// namespace with the memory controller's mount remounted `ro` (no
// `cgroup.event_control` trigger can be armed). Between thresholds a sample
// reads the usage alone and a full snapshot of every file comes every few
// seconds; a fill still fires every threshold, each seen below the next.
// Needs root and a writable v1 memory controller on the host (skipped
// otherwise; a failure under OOMGUARD_REQUIRE_PRIVILEGED=1).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./helpers/cgroup')

const MiB = 1024 * 1024
const PREFIX = 'OOMGUARD_RO '

// In the child: a monitor at low usage for QUIET_MS, then a fill paced at
// FILL_MIB_S MiB/s (1 MiB Buffers, touched, in a synchronous loop: the
// sampler thread alone sees it) to 93% of the limit, then the events.
const CHILD = `
const { watch } = require(process.argv[1])
const native = require(process.argv[1] + '/index.js')
const fs = require('node:fs')
const [QUIET_MS, FILL_MIB_S, STOP] = process.argv.slice(2).map(Number)
const MiB = 1024 * 1024
const events = []
const m = watch({ thresholds: [0.5, 0.7, 0.9], lastWords: false }, (e) => events.push({ level: e.level, ratio: e.ratio }))
const own = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\\n').find((l) => / - cgroup cgroup .*memory/.test(l))
const info0 = native.samplerInfo()
const c0 = m.current
setTimeout(() => {
  const info1 = native.samplerInfo()
  const c1 = m.current
  const keep = []
  const t0 = process.hrtime.bigint()
  let filled = 0
  while (m.current.basisBytes < STOP * m.current.limitBytes && filled < m.current.limitBytes) {
    const due = (Number(process.hrtime.bigint() - t0) / 1e9) * FILL_MIB_S * MiB
    if (filled > due) continue
    const b = Buffer.alloc(MiB, 1)
    keep.push(b)
    filled += MiB
  }
  const fillS = Number(process.hrtime.bigint() - t0) / 1e9
  setTimeout(() => {
    const info2 = native.samplerInfo()
    console.log('${PREFIX}' + JSON.stringify({
      mount: own, triggers: info1.triggers, thresholds: m.thresholds, events,
      quiet: { ticks: info1.ticks - info0.ticks, snapshots: info1.snapshots - info0.snapshots, samples: c1.samples - c0.samples, ratio: c1.ratio, ms: c1.timestampMs - c0.timestampMs },
      fill: { mibPerSec: filled / MiB / fillS, snapshots: info2.snapshots - info1.snapshots, ratio: m.current.ratio },
    }))
    m.close()
  }, 200)
}, QUIET_MS)
`

test('cgroup v1 read-only (as in a container): samples between thresholds read the usage alone, and a fill fires every threshold', { timeout: 60_000 }, async (t) => {
  const support = h.v1Support()
  if (support.reason) return h.privileged(t, support.reason)
  const dir = h.makeCgroup(support.own.dir, h.uniqueName('oomguard-ro'))
  t.after(() => h.removeCgroup(dir))
  h.setV1Limit(dir, 256 * MiB)
  const quietMs = 4000
  const r = await h.runNodeInCgroup(dir, '-e', [CHILD, h.REPO_ROOT, quietMs, 256, 0.93], { timeoutMs: 45_000, readOnly: support.own.mountPoint })
  assert.equal(r.code, 0, h.describeRun(r))
  const out = h.parsePrefixed(r.stdout, PREFIX)[0]
  assert.ok(out, h.describeRun(r))
  t.diagnostic(JSON.stringify({ quiet: out.quiet, fill: out.fill, events: out.events }))
  assert.match(out.mount, / ro,/, `the memory controller's mount is read-only in the child: ${out.mount}`)
  assert.deepEqual(out.triggers, [], 'no kernel wake-up can be armed on a read-only cgroupfs')

  // Quiet, below 50%: the interval policy samples every ~20-100 ms, and
  // only about one sample in 2 s is a full snapshot.
  const q = out.quiet
  assert.ok(q.ratio < 0.4, `quiet below the first threshold: ratio ${q.ratio}`)
  assert.ok(q.ticks >= 20, `samples of the usage alone while quiet: ${q.ticks} in ${quietMs} ms`)
  assert.ok(q.snapshots <= 4, `full snapshots while quiet: ${q.snapshots} (every 2 s)`)
  assert.ok(q.ticks >= 5 * q.snapshots, `far fewer snapshots than samples: ${q.snapshots} / ${q.ticks}`)
  // (samplerInfo() and current are read a moment apart: one sample may fall between.)
  assert.ok(Math.abs(q.samples - (q.ticks + q.snapshots)) <= 1, `every sample, either kind, counts in current.samples: ${q.samples} vs ${q.ticks} + ${q.snapshots}`)

  // The fill: each threshold fired once, seen by a sample below the next one.
  const levels = out.events.map((e) => e.level)
  assert.deepEqual(levels, [1, 2, 3], `one threshold event per threshold: ${JSON.stringify(out.events)}`)
  out.events.forEach((e, i) => {
    const next = i + 1 < out.thresholds.length ? out.thresholds[i + 1] : 1
    assert.ok(e.ratio >= out.thresholds[i] && e.ratio < next, `threshold ${out.thresholds[i]} seen at ${e.ratio}, below the next (${next})`)
  })
  assert.ok(out.fill.snapshots >= 3, `full snapshots near the thresholds: ${out.fill.snapshots}`)
})
