'use strict'
// Real kernel kills with the heap profile on, in a v1 child cgroup (root;
// skipped otherwise, a failure under OOMGUARD_REQUIRE_PRIVILEGED=1): an
// express and a fastify server with a leak in a named function behind a
// route, and a leak in a worker thread, driven by autocannon over loopback
// at a bounded rate (100 requests/s, ~6 MiB/s) until the kernel kills the server. The termination
// record names the function, file and line as the top site with at least
// half the sampled live bytes; so does the pprof file the record names,
// read by pprof-format and by `go tool pprof -top`; `oomguard explain`
// names it too. OOMGUARD_HEAP_KILLS=N repeats each kill N times (the
// figures in docs/evidence.md: N = 10, by hand).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const h = require('./helpers/cgroup')
const { leakToDeath, lineOf, pprofTop, goPprofTop, EXPECTED_ROUTE } = require('./helpers/heap-leak-run')

const SERVER = path.join(__dirname, 'helpers', 'heap-leak-server.js')
const BIN = path.join(__dirname, '..', 'bin', 'oomguard.js')
const KILLS = Math.max(1, Number(process.env.OOMGUARD_HEAP_KILLS) || 1)

/** Check one kill: the record names retainOrders as the top site with at least half the sampled bytes; so does the pprof file. */
function checkKill(t, r, isolate) {
  const line = lineOf(SERVER, 'function retainOrders')
  const desc = `${JSON.stringify({ end: r.end, ms: r.ms, requests: r.requests, oomKills: r.oomKills, events: r.events, files: r.files })}\n${r.text}\n${r.stderr.slice(-3000)}`
  assert.ok(r.end.signal === 'SIGKILL', `killed by the kernel\n${desc}`)
  assert.equal(r.oomKills, 1, desc)
  assert.ok(r.record, `a record\n${desc}`)
  assert.ok(Buffer.byteLength(r.text.trimEnd()) < 2048, `${Buffer.byteLength(r.text)} bytes`)
  const p = r.record.heapProfile
  assert.ok(p, `the record has sites\n${desc}`)
  assert.equal(p.isolate, isolate)
  assert.equal(p.route, EXPECTED_ROUTE)
  const top = p.sites[0]
  assert.equal(top.fn, 'retainOrders', desc)
  assert.match(top.at, new RegExp(`^__test__/helpers/heap-leak-server\\.js:${line}:\\d+$`))
  assert.ok(top.share >= 0.5, `share ${top.share}\n${desc}`)
  assert.ok(p.file && fs.existsSync(p.file), `the record names an existing pprof file: ${p.file}\n${desc}`)
  assert.equal(pprofTop(p.file).top[0][0], 'retainOrders')
  const go = goPprofTop(t, p.file)
  if (go !== null) assert.equal(go.name, 'retainOrders', go.text)
  // explain names it, from the termination-log file.
  const x = spawnSync(process.execPath, [BIN, 'explain', '--json', r.lastWords], { encoding: 'utf8', timeout: 30_000 })
  assert.equal(x.status, 0, x.stderr)
  assert.equal(JSON.parse(x.stdout).heapProfile.sites[0].functionName, 'retainOrders')
  return { share: top.share, pauseMs: p.pauseMs, ageMs: Date.parse(r.record.time) - Date.parse(p.takenAt), ms: r.ms }
}

for (const [framework, isolate] of [
  ['express', 'main'],
  ['fastify', 'main'],
  ['worker', 'worker 1'],
]) {
  test(`real v1 kill of a ${framework === 'worker' ? 'leak in a worker thread (express in front)' : `${framework} server`} under loopback load: the record and the pprof file name the leak`, {
    timeout: 200_000 * KILLS,
  }, async (t) => {
    const support = h.v1Support()
    if (support.reason) return h.privileged(t, support.reason)
    const seen = []
    for (let i = 0; i < KILLS; i++) {
      const r = await leakToDeath(support.own.dir, { framework, rate: 100 })
      try {
        seen.push(checkKill(t, r, isolate))
      } finally {
        fs.rmSync(r.work, { recursive: true, force: true })
      }
    }
    const shares = seen.map((s) => s.share).sort((a, b) => a - b)
    t.diagnostic(
      `${framework}: ${seen.length} kills; top-site share min ${shares[0]} median ${shares[Math.floor(shares.length / 2)]}; record's sites ${seen.map((s) => s.ageMs).join(',')} ms old at the last record; read pauses ${seen.map((s) => s.pauseMs).join(',')} ms`,
    )
  })
}

test("real v1 kill of an express server leaking Buffers: the verdict is outside the heap, and the record and the pprof file name the Buffers' allocating line", {
  timeout: 200_000 * KILLS,
}, async (t) => {
  const support = h.v1Support()
  if (support.reason) return h.privileged(t, support.reason)
  const line = lineOf(SERVER, 'receipts.push(Buffer.concat(')
  for (let i = 0; i < KILLS; i++) {
    const r = await leakToDeath(support.own.dir, { framework: 'express-buffers', rate: 100 })
    try {
      const desc = `${JSON.stringify({ end: r.end, ms: r.ms, requests: r.requests, oomKills: r.oomKills, events: r.events })}\n${r.text}\n${r.stderr.slice(-3000)}`
      assert.ok(r.end.signal === 'SIGKILL', `killed by the kernel\n${desc}`)
      assert.equal(r.oomKills, 1, desc)
      assert.ok(r.record, `a record\n${desc}`)
      assert.ok(Buffer.byteLength(r.text.trimEnd()) < 2048, `${Buffer.byteLength(r.text)} bytes`)
      assert.equal(r.record.verdict, 'outside-heap', desc)
      const b = r.record.heapProfile && r.record.heapProfile.buffers
      assert.ok(b && b.sites.length > 0, `the record has the Buffers' sites\n${desc}`)
      assert.equal(b.sites[0].fn, 'retainReceipts', desc)
      assert.match(b.sites[0].at, new RegExp(`^__test__/helpers/heap-leak-server\\.js:${line}:\\d+$`))
      assert.ok(b.sites[0].share >= 0.5, `share ${b.sites[0].share}\n${desc}`)
      // The pprof file: the Buffers under their own frame, retainReceipts the top function by live bytes.
      const file = r.record.heapProfile.file
      assert.ok(file && fs.existsSync(file), `the record names an existing pprof file: ${file}`)
      assert.equal(pprofTop(file).top[0][0], 'retainReceipts')
      const go = goPprofTop(t, file)
      if (go !== null) assert.equal(go.name, 'retainReceipts', go.text)
      // explain: the fix names it.
      const x = spawnSync(process.execPath, [BIN, 'explain', '--json', r.lastWords], { encoding: 'utf8', timeout: 30_000 })
      assert.equal(x.status, 0, x.stderr)
      assert.match(JSON.parse(x.stdout).fix[0], /^Look at retainReceipts /)
      t.diagnostic(`kill ${i + 1}: Buffers sampled ${b.sampledBytes}, top share ${b.sites[0].share}, ${r.ms} ms`)
    } finally {
      fs.rmSync(r.work, { recursive: true, force: true })
    }
  }
})
