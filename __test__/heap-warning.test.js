'use strict'
// The zero-code start warns once where it can already see the failure
// coming: in a real v1 child cgroup with a 256 MiB limit, node's default
// heap limit is at or near the limit, and the register says so at start, one
// JSON line with the NODE_OPTIONS that fixes it. That NODE_OPTIONS, used,
// silences it; OOMGUARD_HEAP_WARNING=0 turns it off.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const cg = require('./helpers/cgroup.js')
const { REGISTER, childEnv, json } = require('./helpers/driven.js')
const { heapLimit } = require('../lib/core/diagnoses.json')

const MiB = 1024 * 1024
const CODES = [heapLimit.above.code, heapLimit.near.code]

test('HEAP_LIMIT_* at start: one line with the fix; the fix silences it; OOMGUARD_HEAP_WARNING=0 too', { timeout: 60_000 }, async (t) => {
  const support = cg.v1Support()
  if (support.reason) return cg.privileged(t, support.reason)
  const dir = cg.makeCgroup(support.own.dir, cg.uniqueName('oomguard-heapwarn'))
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-heapwarn-'))
  t.after(() => {
    cg.removeCgroup(dir)
    fs.rmSync(work, { recursive: true, force: true })
  })
  cg.setV1Limit(dir, 256 * MiB)
  const app = path.join(work, 'app.js')
  fs.writeFileSync(
    app,
    `const v8 = require('node:v8')
console.log(JSON.stringify({ heapSizeLimit: v8.getHeapStatistics().heap_size_limit }))
setTimeout(() => {}, 500)
`,
  )
  const run = async (extra) => {
    const r = await cg.runNodeInCgroup(dir, app, [], { env: childEnv(extra) })
    assert.equal(r.code, 0, cg.describeRun(r))
    return { r, heapSizeLimit: json(r.stdout.split('\n'))[0].heapSizeLimit, warnings: json(r.stderr.split('\n')).filter((j) => j.oomguard === 'heap-limit') }
  }

  const plain = await run({ NODE_OPTIONS: `-r ${REGISTER}` })
  assert.ok(plain.heapSizeLimit > 0.8 * 256 * MiB, `node's default heap limit here (${plain.heapSizeLimit / MiB} MiB) is near or above the limit: the case this test is for`)
  assert.equal(plain.warnings.length, 1, `one line: ${plain.r.stderr}`)
  const w = plain.warnings[0]
  assert.ok(CODES.includes(w.code), w.code)
  assert.equal(w.code, plain.heapSizeLimit >= 256 * MiB ? heapLimit.above.code : heapLimit.near.code)
  assert.equal(w.severity, plain.heapSizeLimit >= 256 * MiB ? heapLimit.above.severity : heapLimit.near.severity)
  assert.equal(w.limitBytes, 256 * MiB)
  assert.equal(w.heapSizeLimitBytes, plain.heapSizeLimit)
  assert.equal(w.pid > 0, true)
  assert.match(w.nodeOptions, new RegExp(`^-r ${REGISTER.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} --max-old-space-size=\\d+`), 'the current NODE_OPTIONS, with the heap flag added')
  assert.match(w.message, /container limit/)

  // The fix, applied: no line, and the heap limit is below 80% of the limit.
  const fixed = await run({ NODE_OPTIONS: w.nodeOptions })
  assert.deepEqual(fixed.warnings, [], fixed.r.stderr)
  assert.ok(fixed.heapSizeLimit <= 0.8 * 256 * MiB, `${fixed.heapSizeLimit / MiB} MiB`)

  // An old heap flag in NODE_OPTIONS is replaced, not kept beside the new one.
  const old = await run({ NODE_OPTIONS: `--max-old-space-size=400 -r ${REGISTER}` })
  assert.equal(old.warnings.length, 1, old.r.stderr)
  assert.equal(old.warnings[0].code, heapLimit.above.code)
  assert.doesNotMatch(old.warnings[0].nodeOptions, /=400/)

  const off = await run({ NODE_OPTIONS: `-r ${REGISTER}`, OOMGUARD_HEAP_WARNING: '0' })
  assert.deepEqual(off.warnings, [], off.r.stderr)
  const bad = await run({ NODE_OPTIONS: `-r ${REGISTER}`, OOMGUARD_HEAP_WARNING: 'maybe' })
  assert.match(bad.r.stderr, /OOMGUARD_HEAP_WARNING="maybe" is not valid \(1 or 0\); using the default \(1\)/)
  assert.equal(bad.warnings.length, 1)
})
