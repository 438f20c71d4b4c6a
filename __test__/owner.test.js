'use strict'
// One record, one writer (the Kubernetes setup of docs/kubernetes.md: NODE_OPTIONS with
// the register and OOMGUARD_LAST_WORDS_PATH in the whole container's
// environment). Real processes in a v1 child cgroup: a service at its first
// threshold; beside it a second node process with the same environment (as
// `kubectl exec` starts one), which must leave the service's record and
// /metrics port alone and say so; the doctor, which starts nothing; a child
// of the service, which monitors without a record file or a port; then a
// real OOM kill of the service, whose record is the one in the file.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const net = require('node:net')
const path = require('node:path')
const http = require('node:http')
const cg = require('./helpers/cgroup.js')
const { REGISTER, SERVICE, childEnv, startIn, json } = require('./helpers/driven.js')

const MiB = 1024 * 1024

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

function get(port, p) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p }, (res) => {
        let body = ''
        res
          .setEncoding('utf8')
          .on('data', (d) => (body += d))
          .on('end', () => resolve({ status: res.statusCode, body }))
      })
      .on('error', reject)
  })
}

const lines = (s, kind) => json(s.out.stderr).filter((j) => j.oomguard === kind)
const record = (file) => JSON.parse(fs.readFileSync(file, 'utf8'))
const oomKills = (dir) => Number(/oom_kill (\d+)/.exec(fs.readFileSync(path.join(dir, 'memory.oom_control'), 'utf8'))[1])

test("a second process with the same environment leaves the service its record and port; the kill is the service's", { timeout: 120_000 }, async (t) => {
  const support = cg.v1Support()
  if (support.reason) return cg.privileged(t, support.reason)
  const dir = cg.makeCgroup(support.own.dir, cg.uniqueName('oomguard-owner'))
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-owner-'))
  const lastWords = path.join(work, 'termination-log')
  const started = []
  t.after(async () => {
    for (const s of started) {
      s.kill()
      await s.exited
    }
    cg.removeCgroup(dir)
    fs.rmSync(work, { recursive: true, force: true })
  })
  cg.setV1Limit(dir, 256 * MiB)
  const port = await freePort()
  const env = childEnv({
    NODE_OPTIONS: `-r ${REGISTER}`,
    OOMGUARD_THRESHOLDS: '0.5,0.85',
    OOMGUARD_LAST_WORDS_PATH: lastWords,
    OOMGUARD_METRICS_PORT: String(port),
  })

  // The service, grown to its first threshold.
  const service = startIn(dir, null, [SERVICE], env)
  started.push(service)
  await service.waitFor('the service to listen', (o) => json(o.stdout).find((j) => j.listening))
  await service.waitFor('/metrics', () => lines(service, 'metrics').find((j) => j.port === port))
  for (let i = 0; i < 40 && lines(service, 'threshold').length === 0; i++) {
    service.send('alloc 4')
    await service.waitFor(`allocation ${i + 1}`, (o) => json(o.stdout).filter((j) => j.allocated !== undefined).length > i)
    await new Promise((r) => setTimeout(r, 100))
  }
  await service.waitFor('level 1', () => lines(service, 'threshold').find((j) => j.level === 1))
  const before = record(lastWords)
  assert.equal(before.pid, service.child.pid, 'the service wrote the record')
  assert.equal(before.level, 1)

  // Beside it, the same program with the same environment (not its child).
  const sibling = startIn(dir, null, [SERVICE], env)
  started.push(sibling)
  await sibling.waitFor('the sibling to listen', (o) => json(o.stdout).find((j) => j.listening))
  const said = await sibling.waitFor("the sibling's record-owner line", () => lines(sibling, 'record-owner')[0])
  assert.equal(said.owner, false)
  assert.equal(said.holderPid, service.child.pid, `it names the service: ${JSON.stringify(said)}`)
  assert.match(said.message, new RegExp(`owned by pid ${service.child.pid} \\(node\\)`))
  // Its monitor is at level 1 too (the same cgroup): logged, marked, not written.
  const its = await sibling.waitFor("the sibling's level 1", () => lines(sibling, 'threshold').find((j) => j.level === 1))
  assert.equal(its.owner, false, sibling.out.stderr.join('\n'))
  assert.equal(its.lastWords, 'stderr', 'written to stderr only')
  await new Promise((r) => setTimeout(r, 500))
  sibling.send('exit')
  assert.deepEqual(await sibling.exited, { code: 0, signal: null })
  assert.ok(!sibling.out.stderr.some((l) => /cannot serve \/metrics/.test(l)), `a sibling oomguard serves the port: no line\n${sibling.out.stderr.join('\n')}`)
  const after = record(lastWords)
  assert.equal(after.pid, service.child.pid, `the service's record is intact after the sibling came and went: ${JSON.stringify(after)}`)
  assert.equal(after.level, 1)
  assert.equal((await get(port, '/metrics')).status, 200, 'the service still serves /metrics')

  // oomguard's own CLI with the same environment (`kubectl exec ... oomguard doctor`): a tool, it starts nothing.
  const doctor = await cg.runProcess(
    'sh',
    ['-c', 'echo $$ > "$1" && shift && exec "$@"', 'sh', path.join(dir, 'cgroup.procs'), process.execPath, path.join(cg.REPO_ROOT, 'bin', 'oomguard.js'), 'doctor', '--json'],
    { env, timeoutMs: 60_000 },
  )
  assert.equal(doctor.code, 0, cg.describeRun(doctor))
  assert.equal(doctor.stderr, '', 'no monitor, no /metrics attempt, no line')
  assert.equal(record(lastWords).pid, service.child.pid, 'the doctor left the record alone')

  // A child of the service: monitors, but neither the record file nor the port.
  service.send('child')
  const { child } = await service.waitFor("the child's report", (o) => json(o.stdout).find((j) => j.child))
  assert.deepEqual(child.role, { role: 'child', servicePid: service.child.pid })
  assert.equal(child.lastWordsFile, null, 'no record file')
  assert.equal(child.server, false, 'no /metrics server')
  assert.equal(record(lastWords).pid, service.child.pid)

  // The real kill: the record that explains it is the service's.
  const kills = oomKills(dir)
  service.send('alloc 400')
  const end = await service.exited
  assert.equal(end.signal, 'SIGKILL', `killed: ${JSON.stringify(end)}\n${service.out.stderr.join('\n')}`)
  assert.equal(oomKills(dir), kills + 1, 'by the OOM killer')
  const last = record(lastWords)
  assert.equal(last.pid, service.child.pid, `the last words are the service's: ${JSON.stringify(last)}`)
  assert.equal(last.level, 2)
})
