'use strict'
// The examples in examples/ run as written: each is started as a child
// process (PORT=0, 127.0.0.1, its monitor on a fixture copy through
// OOMGUARD_ROOT), requested over loopback while the fixture's working set is
// moved across the shedding level, then stopped by its pid.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')

const { fixtureCopy, until, request } = require('./helpers/shed-fixture.js')

const EXAMPLES = path.join(__dirname, '..', 'examples')
const hasPrometheus = () => typeof require('../lib/index.js').prometheus === 'function'

/** Start an example; resolves { port, child, output() } once it prints `listening on <port>`. */
function start(t, file, env) {
  const child = spawn(process.execPath, [path.join(EXAMPLES, file)], {
    cwd: path.join(__dirname, '..'),
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stderr.on('data', (d) => (err += d))
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid, 'SIGTERM')
      const timer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL')
      }, 3000)
      await exited
      clearTimeout(timer)
    }
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not print 'listening on <port>' within 15 s; stdout: ${out}; stderr: ${err}`)), 15_000)
    child.stdout.on('data', (d) => {
      out += d
      const m = /^listening on (\d+)$/m.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve({ port: Number(m[1]), child, exited, output: () => `stdout: ${out}\nstderr: ${err}` })
      }
    })
    exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`${file} exited (${code ?? signal}) before listening; stdout: ${out}; stderr: ${err}`))
    })
  })
}

async function healthStatus(port) {
  const r = await request(port, '/health/memory')
  return r.json && r.json.status
}

for (const file of ['http.js', 'express.js', 'fastify.js']) {
  test(`examples/${file}: hello, health and metrics routes; 503 + Retry-After above the level; stops on SIGTERM`, { timeout: 60_000 }, async (t) => {
    const fx = fixtureCopy()
    t.after(() => fx.cleanup())
    const { port, child, exited, output } = await start(t, file, { OOMGUARD_ROOT: fx.root })

    let r = await request(port, '/')
    assert.equal(r.status, 200, output())
    assert.equal(r.body, 'hello\n')

    r = await request(port, '/health/memory')
    assert.equal(r.status, 200)
    assert.equal(r.json.status, 'ok')
    assert.equal(r.json.limitBytes, fx.limit)
    assert.equal(r.json.source, 'cgroup-v2')

    r = await request(port, '/metrics')
    if (hasPrometheus()) {
      assert.equal(r.status, 200)
      assert.match(r.body, /^oomguard_/m)
    } else {
      assert.equal(r.status, 404, 'no /metrics route while this build has no prometheus()')
    }

    // Above the highest default threshold (0.95): shed.
    fx.setRatio(0.97)
    await until(async () => (await healthStatus(port)) === 'shedding', 'the example to start shedding')
    r = await request(port, '/')
    assert.equal(r.status, 503)
    assert.equal(r.headers['retry-after'], '10')
    assert.equal(r.json.code, 'OOMGUARD_SHEDDING')
    r = await request(port, '/health/memory')
    assert.equal(r.status, 503)
    assert.equal(r.json.workingSetBytes, Math.round(0.97 * fx.limit))
    assert.notEqual((await request(port, '/metrics')).status, 503, '/metrics is never shed')

    // Back below the threshold minus the hysteresis: serving again.
    fx.setRatio(0.5)
    await until(async () => (await healthStatus(port)) === 'ok', 'the example to stop shedding')
    assert.equal((await request(port, '/')).status, 200)

    process.kill(child.pid, 'SIGTERM')
    const { code, signal } = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve({ code: 'still running' }), 10_000))])
    assert.ok(code === 0 || signal === 'SIGTERM', `exited cleanly on SIGTERM: ${code ?? signal}\n${output()}`)
  })
}
