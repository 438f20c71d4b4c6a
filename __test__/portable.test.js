'use strict'
// Off Linux (macOS, Windows) there are no cgroups: getMemoryMetrics()
// returns the V8 and host numbers with every cgroup field null, in the same
// shape, and watch() says it needs Linux. Simulated here by loading the
// package in a child process whose process.platform says 'darwin'.

const test = require('node:test')
const assert = require('node:assert/strict')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { getMemoryMetrics } = require('..')

const CHILD = `
  Object.defineProperty(process, 'platform', { value: 'darwin' })
  const oomguard = require(${JSON.stringify(path.join(__dirname, '..'))})
  const r = oomguard.getMemoryMetrics()
  const passed = oomguard.getMemoryMetrics({ heapUsed: 5, heapSizeLimit: 1024 })
  let watchError = null
  try { oomguard.watch() } catch (e) { watchError = { code: e.code, message: e.message } }
  let badInput = null
  try { oomguard.getMemoryMetrics({ heapUsed: 'x' }) } catch (e) { badInput = e.constructor.name + ': ' + e.message }
  const loaded = Object.keys(require.cache).some((f) => f.endsWith('.node'))
  console.log(JSON.stringify({ r, passed, watchError, badInput, loaded }))
`

test('off Linux: V8 and host numbers, cgroup fields null, the same shape', () => {
  const out = JSON.parse(execFileSync(process.execPath, ['-e', CHILD], { encoding: 'utf8' }))
  const { r, passed } = out
  assert.equal(out.loaded, false, 'the native addon is not loaded off Linux')
  for (const k of ['cgroup', 'cgroupLimitBytes', 'leafLimitBytes', 'highBytes', 'usageBytes', 'workingSetBytes', 'stat', 'events', 'pressure']) {
    assert.equal(r[k], null, k)
  }
  assert.equal(r.source, 'host')
  assert.equal(r.hostTotalBytes, os.totalmem())
  assert.equal(r.limitBytes, r.hostTotalBytes)
  assert.ok(r.hostAvailableBytes > 0 && r.rssBytes > 0 && r.v8.heapUsedBytes > 0)
  assert.deepEqual(
    r.diagnoses.map((d) => d.code),
    ['NO_MEMORY_CGROUP'],
  )
  assert.equal(passed.v8.heapUsedBytes, 5)
  assert.equal(passed.v8.rssBytes, null)
  assert.equal(passed.heapLimitRatio, 1024 / os.totalmem())
  assert.equal(out.badInput, 'TypeError: usage.heapUsed must be a number of bytes, got a string')
  assert.equal(out.watchError.code, 'ERR_OOMGUARD_UNSUPPORTED_PLATFORM')

  // The same keys in the same order, section by section and in each
  // diagnosis, as on Linux (one builder, lib/core/reading.js, makes both).
  const linux = getMemoryMetrics()
  assert.deepEqual(Object.keys(r), Object.keys(linux))
  assert.deepEqual(Object.keys(r.v8), Object.keys(linux.v8))
  const fixture = getMemoryMetrics({ heapSizeLimit: 300 * 2 ** 20 }, { root: path.join(__dirname, 'fixtures', 'v2-busy') })
  assert.deepEqual(Object.keys(r.diagnoses[0]), Object.keys(fixture.diagnoses[0]))
  const none = getMemoryMetrics(null, { root: path.join(__dirname, 'fixtures', 'no-memory-controller') })
  const linuxNone = none.diagnoses.find((d) => d.code === 'NO_MEMORY_CGROUP')
  assert.ok(linuxNone, 'the no-controller fixture has the Linux NO_MEMORY_CGROUP')
  assert.equal(r.diagnoses[0].severity, linuxNone.severity)
})
