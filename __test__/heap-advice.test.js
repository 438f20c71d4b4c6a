'use strict'
// The doctor's heap advice, checked for real: in child cgroups of 64 MiB to
// 4 GiB, the doctor runs (with this test's node) inside the cgroup, and the
// NODE_OPTIONS it advises, given to a fresh node in the same cgroup, must give
// a heap limit within the band of lib/core/heap-band.json, equal (within 1 MiB) to
// the figure the doctor states. The core's model (the HEAP_LIMIT_* diagnoses)
// must agree with the measurement too. Where node sizes its default heap
// from (item: libuv's own-cgroup rule) is checked the same way. Needs root and
// a writable v1 memory controller (a failure under OOMGUARD_REQUIRE_PRIVILEGED=1).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const h = require('./helpers/cgroup')
const { measureHeapLimit, hasPercentageFlag, heapAdvice, BAND } = require('../lib/integrations/heap-probe.js')
const native = require('../lib/core/native.js')

const MiB = 1024 * 1024
const BIN = path.join(h.REPO_ROOT, 'bin', 'oomguard.js')
const PROBE = 'process.stdout.write(String(require("v8").getHeapStatistics().heap_size_limit))'
const LIMITS_MIB = [64, 128, 256, 1024, 4096]

function needV1(t) {
  const s = h.v1Support()
  if (s.reason) {
    h.privileged(t, s.reason)
    return null
  }
  return s.own
}

/** Run `args` (after node) inside cgroup `dir` with NODE_OPTIONS=`nodeOptions`. */
function inCgroup(dir, args, nodeOptions) {
  const env = { ...process.env, NODE_OPTIONS: nodeOptions }
  for (const k of ['FORCE_COLOR', 'NO_COLOR']) delete env[k]
  return h.runProcess('sh', ['-c', 'echo $$ > "$1" && shift && exec "$@"', 'sh', path.join(dir, 'cgroup.procs'), process.execPath, ...args], { env, timeoutMs: 60_000 })
}

async function heapLimitIn(dir, nodeOptions) {
  const r = await inCgroup(dir, ['-e', PROBE], nodeOptions)
  assert.equal(r.code, 0, h.describeRun(r))
  return Number(r.stdout)
}

async function doctorIn(dir, args = []) {
  const r = await inCgroup(dir, [BIN, '--json', ...args], '')
  assert.equal(r.code, 0, h.describeRun(r))
  return JSON.parse(r.stdout)
}

const percentageHere = hasPercentageFlag(process.version, process.allowedNodeEnvironmentFlags)

for (const mib of LIMITS_MIB) {
  test(`${mib} MiB cgroup: the advised NODE_OPTIONS give the stated heap limit, within the band (node ${process.version})`, async (t) => {
    const own = needV1(t)
    if (!own) return
    const dir = h.makeCgroup(own.dir)
    try {
      const limit = mib * MiB
      h.setV1Limit(dir, limit)
      const report = await doctorIn(dir)
      assert.equal(report.limit.bytes, limit)
      const a = report.heap.advice
      assert.ok(a, 'the report has heap advice')
      assert.equal(a.measured, true, `measured (note: ${a.note})`)
      assert.deepEqual(a.band, BAND)
      assert.deepEqual(
        a.options.map((o) => o.form),
        percentageHere ? ['percentage', 'fixed'] : ['fixed'],
        'the percentage form first where node has it',
      )
      for (const o of a.options) {
        const measured = await heapLimitIn(dir, o.nodeOptions)
        const what = `${mib} MiB, NODE_OPTIONS="${o.nodeOptions}": measured ${measured / MiB} MiB, stated ${o.heapSizeLimitBytes / MiB} MiB`
        assert.ok(Math.abs(measured - o.heapSizeLimitBytes) <= MiB, `${what}: the stated figure is the measured one`)
        assert.ok(measured >= limit * BAND.low && measured <= limit * BAND.high, `${what}: within ${BAND.low * 100}-${BAND.high * 100}% of the limit`)
        assert.ok(Math.abs(measured - a.targetBytes) <= 0.01 * limit + MiB, `${what}: near the target ${a.targetBytes / MiB} MiB`)
      }
      // The default (no flags) is what the doctor says it is.
      const def = await heapLimitIn(dir, '')
      assert.equal(report.heap.nodeSizing.defaultHeapLimitBytes, def)
      assert.equal(report.heap.nodeSizing.from, 'max')
      // The core's model, which the HEAP_LIMIT_* diagnoses carry, agrees with the measurement.
      const model = native.heapModel(limit, limit, process.version)
      assert.equal(model.defaultHeapLimitMib * MiB, def, `${mib} MiB: the model's default heap limit`)
      const fixed = a.options.find((o) => o.form === 'fixed')
      assert.equal(fixed.nodeOptions, model.nodeOptions, `${mib} MiB: the measurement confirms the model's flags`)
      assert.equal(await heapLimitIn(dir, model.nodeOptions), model.heapLimitMib * MiB, `${mib} MiB: the model's heap limit`)
      if (def >= limit) {
        const d = report.diagnoses.find((x) => x.code === 'HEAP_LIMIT_ABOVE_CONTAINER_LIMIT')
        assert.ok(d, 'the default heap limit is not below the limit: the diagnosis says so')
        assert.equal(d.nodeOptions, model.nodeOptions)
        assert.equal(d.modelledHeapSizeLimitBytes, model.heapLimitMib * MiB)
        assert.match(d.message, /model/)
      }
    } finally {
      h.removeCgroup(dir)
    }
  })
}

test("node sizes from the smaller of its own cgroup's soft limit and limit (v1), and ignores a parent's limit", async (t) => {
  const own = needV1(t)
  if (!own) return
  const soft = h.makeCgroup(own.dir)
  const parent = h.makeCgroup(own.dir)
  try {
    h.setV1Limit(soft, 2048 * MiB)
    fs.writeFileSync(path.join(soft, 'memory.soft_limit_in_bytes'), String(256 * MiB))
    let r = await doctorIn(soft)
    assert.equal(r.limit.leafHighBytes, 256 * MiB)
    assert.equal(r.limit.constrainedMemoryBytes, 256 * MiB)
    assert.equal(r.heap.nodeSizing.from, 'high')
    assert.equal(r.heap.nodeSizing.defaultHeapLimitBytes, await heapLimitIn(soft, ''))
    assert.match(r.heap.nodeSizing.text, /memory\.soft_limit_in_bytes of this cgroup \(256\.0 MiB\)/)

    h.setV1Limit(parent, 1024 * MiB)
    const child = h.makeCgroup(parent)
    r = await doctorIn(child)
    assert.equal(r.limit.bytes, 1024 * MiB, "the effective limit is the parent's")
    assert.equal(r.limit.leafLimitBytes, null)
    assert.equal(r.heap.nodeSizing.from, 'host')
    assert.match(r.heap.nodeSizing.text, /own cgroup only/)
    const def = await heapLimitIn(child, '')
    assert.equal(r.heap.nodeSizing.defaultHeapLimitBytes, def)
    assert.ok(def > 1024 * MiB, `node sized from the host: default ${def / MiB} MiB`)
    // The advice still lands in the band, and offers no percentage (it would be of the host's memory).
    assert.deepEqual(
      r.heap.advice.options.map((o) => o.form),
      ['fixed'],
    )
    for (const o of r.heap.advice.options) {
      const m = await heapLimitIn(child, o.nodeOptions)
      assert.ok(Math.abs(m - o.heapSizeLimitBytes) <= MiB && o.inBand, `${o.nodeOptions}: ${m / MiB} MiB`)
    }
  } finally {
    h.removeCgroup(parent)
    h.removeCgroup(soft)
  }
})

test('measureHeapLimit() reads what node reports, and names what went wrong', () => {
  const here = measureHeapLimit(process.execPath, '--max-old-space-size=100')
  assert.ok(here > 100 * MiB && here < 400 * MiB, `${here}`)
  assert.throws(() => measureHeapLimit(process.execPath, '--no-such-flag'), /NODE_OPTIONS="--no-such-flag".*exit status 9/)
})

test('hasPercentageFlag(): 22.21+, 24.6+, 25+ and only where node accepts it', () => {
  const yes = new Set(['--max-old-space-size-percentage'])
  assert.equal(hasPercentageFlag('v22.20.0', yes), false)
  assert.equal(hasPercentageFlag('v22.21.0', yes), true)
  assert.equal(hasPercentageFlag('v23.11.0', yes), false)
  assert.equal(hasPercentageFlag('v24.5.0', yes), false)
  assert.equal(hasPercentageFlag('v24.6.0', yes), true)
  assert.equal(hasPercentageFlag('v25.0.0', yes), true)
  assert.equal(hasPercentageFlag('v24.19.0', new Set()), false, 'not allowed in NODE_OPTIONS: no')
  assert.equal(hasPercentageFlag(process.version, process.allowedNodeEnvironmentFlags), process.allowedNodeEnvironmentFlags.has('--max-old-space-size-percentage'))
})

test('probeRoom(): a probe runs only while the working set plus twice its charge stays below the first default threshold', () => {
  const { probeRoom, PROBE_CHARGE_BYTES, PROBE_MARGIN, PROBE_CEILING } = require('../lib/integrations/heap-probe.js')
  assert.equal(PROBE_CEILING, require('../lib/core/options.js').WATCH_DEFAULTS.thresholds[0], "the ceiling is watch()'s first default threshold")
  const limit = 256 * MiB
  const edge = limit * PROBE_CEILING - PROBE_CHARGE_BYTES * PROBE_MARGIN
  assert.equal(probeRoom({ limitBytes: limit, basisBytes: edge }), null, 'exactly at the edge: room')
  assert.equal(probeRoom({ limitBytes: limit, basisBytes: 0.5 * limit }), null)
  assert.match(
    probeRoom({ limitBytes: limit, basisBytes: edge + 1 }),
    /^the working set is 188\.8 MiB \(73\.8% of 256\.0 MiB\); each probe is a node process charged up to 8\.0 MiB here, and with a 2x margin it would take the working set past 80% \(watch\(\)'s first default threshold, where the service's own monitor acts\)$/,
  )
  for (const m of [null, {}, { limitBytes: limit, basisBytes: null }, { limitBytes: null, basisBytes: 1 }, { limitBytes: 0, basisBytes: 0 }]) {
    assert.match(probeRoom(m), /^the working set could not be read/, JSON.stringify(m))
  }
})

test("heapAdvice(): probing stops as soon as the room is gone, and the model's figures say why", () => {
  const limit = 256 * MiB
  const model = native.heapModel(limit, limit, process.version)
  let calls = 0
  const stopAt = (n) => () => (++calls > n ? 'the service grew' : null)
  const a = heapAdvice({ limitBytes: limit, constrainedMemoryBytes: limit, model, nodeVersion: process.version, room: stopAt(1) })
  assert.equal(calls, 2, 'asked before each probe: one ran, the second was refused')
  assert.equal(a.measured, false)
  assert.ok(a.options.every((o) => o.measured === false))
  assert.equal(a.note, "Modelled, not measured (probing stopped after 1 probe): the service grew. The figures are the model's, the rule node sizes its heap by.")
  calls = 0
  const none = heapAdvice({ limitBytes: limit, constrainedMemoryBytes: limit, model, nodeVersion: process.version, room: stopAt(0) })
  assert.match(none.note, /^Modelled, not measured \(no probe was started\): the service grew\./)
  assert.deepEqual(none.options, heapAdvice({ limitBytes: limit, constrainedMemoryBytes: limit, model, nodeVersion: process.version, measure: false }).options)
})
