'use strict'
// Limits that change under a running process (docker update --memory, an
// in-place pod resize): the monitor emits `limit` within one sampling interval,
// its levels follow the new limit, and getMemoryMetrics().diagnoses and the
// doctor judge V8's heap limit (fixed at start-up) against the new limit.
// On a fixture tree rewritten in place, and on the host in a real child
// cgroup whose memory.limit_in_bytes is written (privileged). cgroup v2
// (memory.max) runs in the VM: live-v2.test.js. Docker: docker.test.js.

const test = require('node:test')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const h = require('./helpers/cgroup')

const { checkRun, MiB, HEAP_FLAGS, INTERVAL_MS, CHILD } = require('./helpers/limit-check')

test('a limit rewritten under a running monitor (fixture tree): limit event, levels against the new limit, diagnoses and doctor follow', { timeout: 60_000 }, async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-limit-'))
  t.after(() => fs.rmSync(root, { recursive: true, force: true }))
  fs.cpSync(path.join(__dirname, 'fixtures', 'v2-busy'), root, { recursive: true })
  const limitFile = path.join(root, 'sys/fs/cgroup/fxcap/busy/memory.max')
  // Fixed width before the monitor opens it (the sampler preads offset 0 of the same inode).
  fs.writeFileSync(limitFile, `${String(256 * MiB).padEnd(20, ' ')}\n`)
  // v2-busy: working set 138330112 bytes (131.9 MiB).
  const steps = [
    [1024 * MiB, []], // ratio 0.13: stays at level 0
    [300 * MiB, []], // 0.44
    [200 * MiB, []], // 0.66
    [150 * MiB, ['threshold@0.8']], // 0.88: the new limit crosses 0.8
    [1024 * MiB, ['recovered@0.8']],
  ]
  const r = await h.runProcess(process.execPath, [...HEAP_FLAGS, CHILD, h.REPO_ROOT, limitFile, 'fixture', INTERVAL_MS, root, '--', ...steps.map((s) => s[0])], { timeoutMs: 50_000 })
  const delays = checkRun(r, 256 * MiB, steps, 'cgroup-v2')
  t.diagnostic(`limit event ${delays.join(', ')} ms after each write (interval ${INTERVAL_MS} ms)`)
})

test('cgroup v1: memory.limit_in_bytes of a real child cgroup written under a running monitor', { timeout: 60_000 }, async (t) => {
  const support = h.v1Support()
  if (support.reason) return h.privileged(t, support.reason)
  const dir = h.makeCgroup(support.own.dir)
  t.after(() => h.removeCgroup(dir))
  h.setV1Limit(dir, 1024 * MiB)
  const steps = [
    [300 * MiB, []],
    [200 * MiB, []],
    [1024 * MiB, []],
  ]
  const r = await h.runNodeInCgroup(dir, CHILD, [h.REPO_ROOT, path.join(dir, 'memory.limit_in_bytes'), 'kernel', INTERVAL_MS, '--', ...steps.map((s) => s[0])], {
    timeoutMs: 50_000,
    // runNodeInCgroup runs `node SCRIPT`: the heap flag travels in NODE_OPTIONS.
    env: { ...process.env, NODE_OPTIONS: HEAP_FLAGS.join(' ') },
  })
  const delays = checkRun(r, 1024 * MiB, steps, 'cgroup-v1')
  t.diagnostic(`limit event ${delays.join(', ')} ms after each write (interval ${INTERVAL_MS} ms)`)
})
