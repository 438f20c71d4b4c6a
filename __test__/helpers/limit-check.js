'use strict'
// The checks of a limit-child.js run (limit.test.js on the host,
// live-v2.test.js in the cgroup v2 VM, docker.test.js in containers).

const assert = require('node:assert/strict')
const path = require('node:path')
const h = require('./cgroup')

const CHILD = path.join(__dirname, 'limit-child.js')
const MiB = 1024 * 1024
const PREFIX = 'OOMGUARD_LIMIT '
// heap_size_limit 248 MiB: 200 MiB of old space plus three 16 MiB semi-spaces.
// (Without the semi-space flag, V8 sizes the young generation from the memory
// it sees: 12 MiB in a 1 GiB cgroup.)
const HEAP_FLAGS = ['--max-old-space-size=200', '--max-semi-space-size=16']
const HEAP_LIMIT = 248 * MiB
const INTERVAL_MS = 100
// The sampler sleeps at most INTERVAL_MS; the write and the wake-up on a busy machine need a little more.
const SLACK_MS = 150
const VERDICT = { fits: [null, 'pass'], near: ['HEAP_LIMIT_NEAR_CONTAINER_LIMIT', 'warn'], above: ['HEAP_LIMIT_ABOVE_CONTAINER_LIMIT', 'fail'] }

/** The heap limit's verdict against `limit`, as the core decides it (75% of the limit, 1 MiB grace). */
function verdictFor(limit) {
  if (HEAP_LIMIT >= limit) return 'above'
  if (HEAP_LIMIT > limit * 0.75 + MiB) return 'near'
  return 'fits'
}

/**
 * Check one run of limit-child.js: `steps` are [limitBytes, levelEvents], the
 * level events (kind@threshold) the new limit must cause after `limit`.
 * `writtenAtMs[i]`: when step i's change was made, where the child did not
 * make it itself (an upper bound: the moment `docker update` returned).
 */
function checkRun(r, startLimit, steps, source, { writtenAtMs = [], slackMs = SLACK_MS } = {}) {
  assert.equal(r.code, 0, h.describeRun(r))
  const lines = h.parsePrefixed(r.stdout, PREFIX).filter((l) => l.waiting === undefined)
  assert.ok(!lines.some((l) => l.fatal), h.describeRun(r))
  assert.ok(lines.at(-1) && lines.at(-1).done, `the child finished: ${h.describeRun(r)}`)
  const start = lines[0]
  assert.equal(start.heapSizeLimitBytes, HEAP_LIMIT, `${HEAP_FLAGS.join(' ')} gives a heap limit of 248 MiB`)
  assert.equal(start.current.limitBytes, startLimit)
  let previous = startLimit
  const delays = []
  for (const [i, [limit, levelEvents]] of steps.entries()) {
    const s = lines[i + 1]
    const what = `step ${i}: ${previous / MiB} MiB -> ${limit / MiB} MiB`
    assert.equal(s.step, i)
    const [first, ...rest] = s.events
    assert.ok(first, `${what}: no event at all`)
    assert.equal(first.kind, 'limit', `${what}: the first event is 'limit' (${JSON.stringify(s.events)})`)
    assert.equal(s.events.filter((e) => e.kind === 'limit').length, 1, `${what}: one limit event`)
    assert.equal(first.previousLimitBytes, previous, what)
    assert.equal(first.limitBytes, limit, what)
    assert.equal(first.source, source, what)
    assert.equal(first.heapSizeLimitBytes, HEAP_LIMIT, what)
    const verdict = verdictFor(limit)
    assert.equal(first.heapLimit, verdict, what)
    assert.equal(first.diagnosisCode, VERDICT[verdict][0], what)
    assert.ok(Math.abs(first.ratio - first.basisBytes / limit) < 1e-9, `${what}: the ratio is against the new limit`)
    // When someone else changed the limit, the time their change had returned by.
    const delay = first.timestampMs - (writtenAtMs[i] ?? s.writtenAtMs)
    delays.push(delay)
    assert.ok(delay <= INTERVAL_MS + slackMs, `${what}: seen ${delay} ms after the write (interval ${INTERVAL_MS} ms)`)
    assert.deepEqual(
      rest.map((e) => `${e.kind}@${e.threshold}`),
      levelEvents,
      `${what}: level events after the limit event`,
    )
    assert.equal(first.level, s.current.level, `${what}: the limit event carries the level against the new limit`)
    assert.equal(s.current.limitBytes, limit, `${what}: monitor.current`)
    assert.equal(s.metricsLimitBytes, limit, `${what}: getMemoryMetrics()`)
    assert.deepEqual(s.heapDiagnoses, VERDICT[verdict][0] ? [VERDICT[verdict][0]] : [], `${what}: getMemoryMetrics().diagnoses`)
    assert.equal(s.doctorHeap, VERDICT[verdict][1], `${what}: the doctor's heap verdict`)
    previous = limit
  }
  return delays
}

module.exports = { checkRun, verdictFor, MiB, HEAP_FLAGS, HEAP_LIMIT, INTERVAL_MS, CHILD, PREFIX }
