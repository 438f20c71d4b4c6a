'use strict'
// Under duress the watcher never takes the service down: a real service in a
// v1 child cgroup, started with the zero-code register, uses up every file
// descriptor (`ulimit -n 128`, then open files until EMFILE), so that
// process.memoryUsage() throws EMFILE, and then grows through two
// thresholds. It must keep serving (on a keep-alive connection: a new one
// needs a descriptor), the monitor must keep its level, log both
// transitions and write both records to the last-words file, and say once
// what it could not read. getMemoryMetrics() in that state answers.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const http = require('node:http')
const cg = require('./helpers/cgroup.js')
const { REGISTER, SERVICE, childEnv, startIn, json } = require('./helpers/driven.js')
const MiB = 1024 * 1024
// The descriptor limit the service runs under: room for node's own (about 20
// at start under Node 20, 25 under Node 24) and the monitor's held files
// (about 36 here: each cgroup file it reads, for the monitor and for a
// getMemoryMetrics() reader), then the service takes every one left.
const NOFILE = 128

const oomguardLines = (out, kind) => json(out.stderr).filter((j) => j.oomguard === kind)

function get(agent, port) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      let body = ''
      res
        .setEncoding('utf8')
        .on('data', (d) => (body += d))
        .on('end', () => resolve({ socket: req.socket, body: JSON.parse(body) }))
    })
    req.on('error', reject)
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')))
  })
}

test('EMFILE: the service keeps serving, the monitor keeps its level and writes its records', async (t) => {
  const support = cg.v1Support()
  if (support.reason) return cg.privileged(t, support.reason)
  const dir = cg.makeCgroup(support.own.dir, cg.uniqueName('oomguard-emfile'))
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-emfile-'))
  const lastWords = path.join(work, 'termination-log')
  let s = null
  t.after(async () => {
    if (s) {
      s.kill()
      await new Promise((r) => (s.out.exited ? r() : s.child.on('exit', r)))
    }
    cg.removeCgroup(dir)
    fs.rmSync(work, { recursive: true, force: true })
  })
  cg.setV1Limit(dir, 160 * MiB)
  s = startIn(
    dir,
    NOFILE,
    [SERVICE],
    childEnv({
      NODE_OPTIONS: `-r ${REGISTER}`,
      OOMGUARD_THRESHOLDS: '0.5,0.7',
      OOMGUARD_LAST_WORDS_PATH: lastWords,
    }),
  )
  const { listening: port } = await s.waitFor('the service to listen', (o) => json(o.stdout).find((j) => j.listening))
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.after(() => agent.destroy())
  const before = await get(agent, port)

  s.send('emfile')
  const emfile = await s.waitFor('the descriptors to run out', (o) => json(o.stdout).find((j) => j.emfile !== undefined))
  assert.equal(emfile.code, 'EMFILE')
  assert.equal(emfile.memoryUsage, 'EMFILE', 'process.memoryUsage() throws EMFILE in this state')

  // Grow through both thresholds, 8 MiB at a time, while no descriptor is free.
  const levels = () => oomguardLines(s.out, 'threshold').map((j) => j.level)
  for (let i = 0; i < 30 && !levels().includes(2); i++) {
    s.send('alloc 8')
    await s.waitFor(`allocation ${i + 1}`, (o) => json(o.stdout).filter((j) => j.allocated !== undefined).length > i)
    await new Promise((r) => setTimeout(r, 150))
  }
  await s.waitFor('level 2', () => levels().includes(2), 5000)
  // Some V8 refreshes at the 250 ms rate of a monitor above its first threshold.
  await new Promise((r) => setTimeout(r, 1000))

  const after = await get(agent, port)
  assert.equal(after.socket, before.socket, 'the same keep-alive connection (a new one would need a descriptor)')
  assert.ok(after.body.fds >= 1, 'the descriptors are still all taken')
  assert.equal(s.out.exited, null, 'the service is alive')

  const thresholds = oomguardLines(s.out, 'threshold')
  assert.deepEqual(
    thresholds.map((j) => j.level),
    [1, 2],
    s.out.stderr.join('\n'),
  )
  for (const j of thresholds) {
    assert.equal(j.v8.rssBytes, null, 'the RSS process.memoryUsage() could not read is null, not a stale number')
    assert.ok(j.v8.heapUsedBytes > 0, 'the heap figures come from v8.getHeapStatistics()')
  }
  const errors = oomguardLines(s.out, 'error').filter((j) => /process\.memoryUsage\(\) failed \(EMFILE\)/.test(j.message))
  assert.equal(errors.length, 1, `said once: ${s.out.stderr.join('\n')}`)

  const record = JSON.parse(fs.readFileSync(lastWords, 'utf8'))
  assert.equal(record.level, 2, `the level-2 record is in the file: ${JSON.stringify(record)}`)
  assert.equal(record.pid, s.child.pid)

  // Descriptors back: memoryUsage works again and the service goes on.
  s.send('release')
  await s.waitFor('the release', (o) => json(o.stdout).find((j) => j.released))
  const last = await get(agent, port)
  assert.equal(last.body.fds, 0)
  assert.equal(s.out.exited, null)
})

test('EMFILE: getMemoryMetrics() answers with what it could read and a USAGE_UNREADABLE diagnosis', async (t) => {
  const script = `
    const { getMemoryMetrics } = require(${JSON.stringify(cg.REPO_ROOT)})
    getMemoryMetrics()
    const fs = require('node:fs')
    const fds = []
    try { for (;;) fds.push(fs.openSync('/dev/null', 'r')) } catch {}
    let threw = null
    let r = null
    try { r = getMemoryMetrics() } catch (err) { threw = err.message }
    for (const fd of fds) fs.closeSync(fd)
    const again = getMemoryMetrics()
    console.log(JSON.stringify({ fds: fds.length, threw, r, again: { rss: again.v8.rssBytes, codes: again.diagnoses.map((d) => d.code) } }))
  `
  const r = await cg.runProcess('sh', ['-c', 'ulimit -n 64 && exec "$@"', 'sh', process.execPath, '-e', script], { env: childEnv({}) })
  assert.equal(r.code, 0, cg.describeRun(r))
  const o = JSON.parse(r.stdout)
  assert.ok(o.fds > 0)
  assert.equal(o.threw, null, 'it does not throw')
  assert.equal(o.r.v8.rssBytes, null)
  assert.equal(o.r.v8.arrayBuffersBytes, null)
  assert.ok(o.r.v8.heapUsedBytes > 0)
  assert.ok(o.r.limitBytes > 0, 'the kernel figures were read')
  const d = o.r.diagnoses.find((x) => x.code === 'USAGE_UNREADABLE')
  assert.ok(d, JSON.stringify(o.r.diagnoses))
  assert.match(d.message, /EMFILE/)
  assert.equal(d.severity, require('../lib/core/diagnoses.json').usageUnreadable.severity)
  assert.deepEqual(Object.keys(d), Object.keys(o.r.diagnoses[0]), 'a diagnosis like the others, key for key')
  assert.ok(o.again.rss > 0, 'with descriptors back, the RSS is back')
  assert.ok(!o.again.codes.includes('USAGE_UNREADABLE'))
})
