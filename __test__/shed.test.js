'use strict'
// Load shedding: shed() middleware (node:http, Express) and the Fastify
// plugin, driven by a monitor on a fixture tree whose memory.current is
// rewritten in place to move the level. Loopback only.

const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const { watch, shed, SHED_DEFAULTS } = require('../lib/index.js')
const oomguardFastify = require('../lib/integrations/fastify.js')
const { fixtureCopy, until, driveTo, request, listen } = require('./helpers/shed-fixture.js')

const QUIET = { maxIntervalMs: 20, lastWords: false }

/** A fixture copy, a monitor on it (default thresholds 0.8, 0.9, 0.95), cleaned up after the test. */
async function setup(t, watchOptions = {}) {
  const fx = fixtureCopy()
  const monitor = watch({ root: fx.root, ...QUIET, ...watchOptions })
  t.after(() => {
    monitor.close()
    fx.cleanup()
  })
  await until(() => monitor.current.samples > 0, 'the first sample')
  assert.equal(monitor.current.limitBytes, fx.limit)
  return { fx, monitor }
}

async function serve(t, handler) {
  const server = http.createServer(handler)
  const port = await listen(server)
  t.after(() => new Promise((resolve) => server.close(resolve)))
  return port
}

function assertShed(r, retryAfter = '10') {
  assert.equal(r.status, 503, r.body)
  assert.equal(r.headers['retry-after'], retryAfter)
  assert.match(r.headers['content-type'], /^application\/json/)
  assert.equal(r.headers['cache-control'], 'no-store')
  assert.equal(r.json.statusCode, 503)
  assert.equal(r.json.code, 'OOMGUARD_SHEDDING')
  assert.equal(r.json.error, 'Service Unavailable')
  assert.equal(typeof r.json.message, 'string')
}

const hello = (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' })
  res.end('hello')
}

// ------------------------------------------------------------------ node:http

test('node:http: 503 + Retry-After at the highest level, 200 below it, excluded paths always pass', async (t) => {
  const { fx, monitor } = await setup(t)
  const guard = shed({ monitor })
  assert.equal(guard.level, 3)
  assert.equal(guard.monitor, monitor)
  const port = await serve(t, (req, res) => guard(req, res, () => hello(req, res)))

  // 0.515: level 0
  let r = await request(port, '/')
  assert.equal(r.status, 200)
  assert.equal(r.body, 'hello')
  assert.equal(guard.shedding, false)

  // 0.92: level 2, below the default shedding level (3)
  await driveTo(fx, monitor, 0.92)
  assert.equal(monitor.level, 2)
  assert.equal((await request(port, '/')).status, 200)

  // 0.97: level 3, shedding
  await driveTo(fx, monitor, 0.97)
  assert.equal(monitor.level, 3)
  assert.equal(guard.shedding, true)
  assertShed(await request(port, '/'))
  assertShed(await request(port, '/api/orders?id=1'))
  assertShed(await request(port, '/orders', { method: 'POST', body: JSON.stringify({ big: 'x'.repeat(10_000) }) }))
  const head = await request(port, '/', { method: 'HEAD' })
  assert.equal(head.status, 503)
  assert.equal(head.headers['retry-after'], '10')
  assert.equal(head.body, '')
  // Near misses of excluded prefixes are shed.
  assertShed(await request(port, '/healthy'))
  assertShed(await request(port, '/metricsx'))

  for (const p of ['/health', '/healthz', '/ready', '/readyz', '/live', '/livez', '/metrics', '/health/db', '/metrics?name=x', '/ready/']) {
    r = await request(port, p)
    assert.equal(r.status, 200, `${p} is excluded`)
    assert.equal(r.body, 'hello')
  }
  assert.equal(guard.shedTotal, 6)

  // 0.92 again: still level 3 (hysteresis: 0.95 - 0.05), still shedding.
  await driveTo(fx, monitor, 0.92)
  assert.equal(monitor.level, 3)
  assertShed(await request(port, '/'))

  // 0.5: recovered.
  await driveTo(fx, monitor, 0.5)
  assert.equal(monitor.level, 0)
  assert.equal(guard.shedding, false)
  r = await request(port, '/')
  assert.equal(r.status, 200)
  assert.equal(r.headers['retry-after'], undefined)
})

test('node:http: the health route answers the memory state, 200 when ok and 503 when shedding', async (t) => {
  const { fx, monitor } = await setup(t)
  const guard = shed({ monitor, level: 2, retryAfter: 7 })
  assert.equal(guard.healthPath, '/health/memory')
  let handled = 0
  const port = await serve(t, (req, res) =>
    guard(req, res, () => {
      handled++
      hello(req, res)
    }),
  )

  let r = await request(port, '/health/memory')
  assert.equal(r.status, 200)
  assert.equal(r.headers['cache-control'], 'no-store')
  assert.equal(r.headers['retry-after'], undefined)
  assert.match(r.headers['content-type'], /^application\/json/)
  const ok = r.json
  assert.equal(ok.status, 'ok')
  assert.equal(ok.level, 0)
  assert.equal(ok.shedLevel, 2)
  assert.deepEqual(ok.thresholds, [0.8, 0.9, 0.95])
  assert.equal(ok.basis, 'workingSet')
  assert.equal(ok.limitBytes, 268435456)
  assert.equal(ok.workingSetBytes, 138330112)
  assert.equal(ok.usageBytes, 181149696)
  assert.equal(ok.basisBytes, 138330112)
  assert.equal(ok.headroomBytes, 268435456 - 138330112)
  assert.ok(Math.abs(ok.ratio - 138330112 / 268435456) < 1e-9)
  assert.equal(ok.source, 'cgroup-v2')
  assert.equal(ok.failing, false)
  assert.equal(typeof ok.sampledAt, 'string')
  assert.ok(!Number.isNaN(Date.parse(ok.sampledAt)))
  assert.equal(ok.shedTotal, 0)
  assert.equal(ok.retryAfter, null)
  assert.deepEqual(guard.health().limitBytes, ok.limitBytes)

  // With a query string too; other methods get 405.
  assert.equal((await request(port, '/health/memory?verbose=1')).json.status, 'ok')
  const post = await request(port, '/health/memory', { method: 'POST' })
  assert.equal(post.status, 405)
  assert.equal(post.headers.allow, 'GET, HEAD')
  // Not the health route: a longer path goes to the handler.
  assert.equal((await request(port, '/health/memoryx')).body, 'hello')
  assert.equal(handled, 1)

  await driveTo(fx, monitor, 0.92)
  assertShed(await request(port, '/'), '7')
  r = await request(port, '/health/memory')
  assert.equal(r.status, 503)
  assert.equal(r.headers['retry-after'], '7')
  assert.equal(r.json.status, 'shedding')
  assert.equal(r.json.level, 2)
  assert.equal(r.json.shedTotal, 1)
  assert.equal(r.json.retryAfter, 7)
  assert.equal(r.json.workingSetBytes, Math.round(0.92 * 268435456))
  const headOnly = await request(port, '/health/memory', { method: 'HEAD' })
  assert.equal(headOnly.status, 503)
  assert.equal(headOnly.body, '')
})

test('node:http: wrap(handler), custom exclude, onShed, healthPath: false', async (t) => {
  const { fx, monitor } = await setup(t)
  const shedSeen = []
  const guard = shed({
    monitor,
    level: 1,
    exclude: ['/internal/'],
    healthPath: false,
    onShed: (req, res) => shedSeen.push([req.url, res.statusCode]),
  })
  const port = await serve(t, guard.wrap(hello))
  assert.equal((await request(port, '/')).status, 200)

  await driveTo(fx, monitor, 0.85)
  assertShed(await request(port, '/'))
  assertShed(await request(port, '/health')) // not in this exclude list
  assertShed(await request(port, '/health/memory')) // no health route
  assertShed(await request(port, '/internal')) // '/internal/' covers what is under it only
  assert.equal((await request(port, '/internal/x')).status, 200)
  assert.deepEqual(shedSeen, [
    ['/', 503],
    ['/health', 503],
    ['/health/memory', 503],
    ['/internal', 503],
  ])

  // An exclusion function: let GETs through.
  const byMethod = shed({ monitor, level: 1, exclude: (req) => req.method === 'GET' })
  const port2 = await serve(t, byMethod.wrap(hello))
  assert.equal((await request(port2, '/')).status, 200)
  assertShed(await request(port2, '/', { method: 'POST' }))
  // An empty list excludes nothing.
  const none = shed({ monitor, level: 1, exclude: [] })
  const port3 = await serve(t, none.wrap(hello))
  assertShed(await request(port3, '/metrics'))
})

test('shed() creates and owns a monitor without options.monitor; close() stops it, and the guard then passes everything', async (t) => {
  const fx = fixtureCopy()
  t.after(() => fx.cleanup())
  const guard = shed({ watch: { root: fx.root, thresholds: [0.6, 0.9], ...QUIET } })
  t.after(() => guard.close())
  assert.deepEqual(guard.monitor.thresholds, [0.6, 0.9])
  assert.equal(guard.level, 2)
  await until(() => guard.monitor.current.samples > 0, 'the first sample')
  const port = await serve(t, guard.wrap(hello))

  await driveTo(fx, guard.monitor, 0.95)
  assertShed(await request(port, '/'))
  guard.close()
  guard.close() // idempotent
  assert.equal(guard.monitor.closed, true)
  assert.equal(guard.shedding, false)
  assert.equal((await request(port, '/')).status, 200)
  assert.equal((await request(port, '/health/memory')).body, 'hello') // the route is gone too
})

test('a monitor passed in is not closed by guard.close(); a guard stops shedding when its monitor is closed', async (t) => {
  const { fx, monitor } = await setup(t)
  const a = shed({ monitor, level: 1 })
  a.close()
  assert.equal(monitor.closed, false)

  const b = shed({ monitor, level: 1 })
  const port = await serve(t, b.wrap(hello))
  await driveTo(fx, monitor, 0.85)
  assertShed(await request(port, '/'))
  monitor.close()
  assert.equal((await request(port, '/')).status, 200)
})

test('the per-request check reads monitor.level only (no sample, no I/O)', () => {
  const reads = []
  let level = 0
  const fake = {
    thresholds: [0.8, 0.9, 0.95],
    get level() {
      reads.push('level')
      return level
    },
    get current() {
      reads.push('current')
      throw new Error('current must not be read per request')
    },
  }
  const guard = shed({ monitor: fake })
  reads.length = 0
  let nexts = 0
  const next = () => nexts++
  const res = {
    writeHead() {
      throw new Error('no response below the level')
    },
  }
  for (const url of ['/', '/api?x=1', '/metrics', '/health/memoryx']) guard({ url, method: 'GET' }, res, next)
  assert.equal(nexts, 4)
  assert.deepEqual(reads, ['level', 'level', 'level', 'level'])

  // At the level: answered here, still no sample read.
  level = 3
  reads.length = 0
  const written = []
  const res503 = { writeHead: (s, h) => written.push([s, h['retry-after']]), end: () => written.push('end') }
  guard({ url: '/', method: 'GET' }, res503, next)
  assert.deepEqual(written, [[503, '10'], 'end'])
  assert.deepEqual(reads, ['level'])
})

// ------------------------------------------------------------------ Express

test('Express 5: app.use(shed()) sheds, excluded routes and the health route work', async (t) => {
  const express = require('express')
  const { fx, monitor } = await setup(t)
  const app = express()
  const guard = shed({ monitor, level: 2 })
  app.use(guard)
  app.get('/', (req, res) => res.send('hello'))
  app.get('/metrics', (req, res) => res.type('text/plain').send('# metrics'))
  app.get('/healthz', (req, res) => res.send('alive'))
  const port = await serve(t, app)

  assert.equal((await request(port, '/')).body, 'hello')
  assert.equal((await request(port, '/health/memory')).json.status, 'ok')

  await driveTo(fx, monitor, 0.93)
  assertShed(await request(port, '/'))
  assertShed(await request(port, '/no-such-route'))
  assert.equal((await request(port, '/metrics')).body, '# metrics')
  assert.equal((await request(port, '/healthz')).body, 'alive')
  const h = await request(port, '/health/memory')
  assert.equal(h.status, 503)
  assert.equal(h.json.status, 'shedding')

  await driveTo(fx, monitor, 0.5)
  assert.equal((await request(port, '/')).body, 'hello')
})

// ------------------------------------------------------------------ Fastify

async function fastifyApp(t, opts) {
  const fastify = require('fastify')({ logger: false })
  await fastify.register(oomguardFastify, opts)
  fastify.get('/', async () => 'hello')
  fastify.get('/metrics', async () => '# metrics')
  fastify.get('/free', { config: { oomguard: false } }, async () => 'free')
  t.after(() => fastify.close())
  await fastify.ready()
  return fastify
}

function assertShedInject(r, retryAfter = '10') {
  assert.equal(r.statusCode, 503, r.body)
  assert.equal(r.headers['retry-after'], retryAfter)
  assert.match(r.headers['content-type'], /^application\/json/)
  const j = JSON.parse(r.body)
  assert.equal(j.statusCode, 503)
  assert.equal(j.code, 'OOMGUARD_SHEDDING')
}

test('Fastify 5: the plugin sheds in onRequest, passes excluded routes, serves the health route, decorates the instance', async (t) => {
  const { fx, monitor } = await setup(t)
  const shedSeen = []
  const fastify = await fastifyApp(t, { monitor, level: 2, retryAfter: 3, onShed: (req, reply) => shedSeen.push(req.url) })
  assert.equal(fastify.memoryMonitor, monitor)
  assert.equal(fastify.oomguard.level, 2)
  assert.equal(fastify.oomguard.shedding, false)

  assert.equal((await fastify.inject('/')).body, 'hello')
  let h = await fastify.inject('/health/memory')
  assert.equal(h.statusCode, 200)
  assert.equal(h.json().status, 'ok')
  assert.equal(h.json().limitBytes, 268435456)
  assert.equal(h.headers['cache-control'], 'no-store')

  await driveTo(fx, monitor, 0.93)
  assert.equal(fastify.oomguard.shedding, true)
  assertShedInject(await fastify.inject('/'), '3')
  assertShedInject(await fastify.inject('/missing'), '3')
  assertShedInject(await fastify.inject({ method: 'POST', url: '/', payload: { a: 1 } }), '3')
  assert.equal((await fastify.inject('/metrics')).body, '# metrics')
  assert.equal((await fastify.inject('/free')).body, 'free')
  h = await fastify.inject('/health/memory')
  assert.equal(h.statusCode, 503)
  assert.equal(h.headers['retry-after'], '3')
  assert.equal(h.json().status, 'shedding')
  assert.equal(h.json().shedTotal, 3)
  assert.deepEqual(shedSeen, ['/', '/missing', '/'])
  assert.equal(fastify.oomguard.shedTotal, 3)

  // Over a real loopback socket too.
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  const port = fastify.server.address().port
  const r = await request(port, '/')
  assert.equal(r.status, 503)
  assert.equal(r.headers['retry-after'], '3')
  assert.equal(r.json.code, 'OOMGUARD_SHEDDING')

  await driveTo(fx, monitor, 0.5)
  assert.equal((await fastify.inject('/')).body, 'hello')
  await fastify.close()
  assert.equal(monitor.closed, false, 'a monitor passed in stays open')
})

test('Fastify: applies to the whole app (skip-override), closes the monitor it created, metadata, errors', async (t) => {
  assert.equal(oomguardFastify[Symbol.for('skip-override')], true)
  assert.equal(oomguardFastify[Symbol.for('fastify.display-name')], 'oomguard')
  assert.deepEqual(oomguardFastify[Symbol.for('plugin-meta')], { fastify: '>=4', name: 'oomguard' })
  assert.equal(oomguardFastify.default, oomguardFastify)

  const fx = fixtureCopy()
  t.after(() => fx.cleanup())
  const Fastify = require('fastify')
  const fastify = Fastify({ logger: false })
  // Routes declared before the (not awaited) registration, and routes inside
  // encapsulated child plugins, are covered too: skip-override puts the hook
  // on the instance the plugin is registered on.
  fastify.get('/', async () => 'hello')
  fastify.register(oomguardFastify, { watch: { root: fx.root, thresholds: [0.7], ...QUIET }, healthPath: '/mem' })
  fastify.register(async (child) => {
    child.get('/child', async () => 'child')
  })
  await fastify.ready()
  const monitor = fastify.memoryMonitor
  assert.deepEqual(monitor.thresholds, [0.7])
  await until(() => monitor.current.samples > 0, 'the first sample')
  assert.equal((await fastify.inject('/mem')).json().status, 'ok')
  await driveTo(fx, monitor, 0.75)
  assertShedInject(await fastify.inject('/'))
  assertShedInject(await fastify.inject('/child'))
  assert.equal((await fastify.inject('/mem')).statusCode, 503)
  await fastify.close()
  assert.equal(monitor.closed, true, 'the plugin closes the monitor it created')

  // Registering twice is refused with a clear error.
  const twice = Fastify({ logger: false })
  const m = watch({ root: fx.root, ...QUIET })
  t.after(() => m.close())
  twice.register(oomguardFastify, { monitor: m })
  twice.register(oomguardFastify, { monitor: m, healthPath: '/other' })
  await assert.rejects(twice.ready(), (err) => err.code === 'ERR_OOMGUARD_ALREADY_REGISTERED')
  await twice.close()

  // Bad options reject ready() with the option's name.
  const bad = Fastify({ logger: false })
  bad.register(oomguardFastify, { monitor: m, level: 9 })
  await assert.rejects(bad.ready(), (err) => err instanceof RangeError && /^options\.level must be a whole number from 1 to 3/.test(err.message))
  await bad.close()

  // A health route that clashes with an app route fails registration and closes the monitor the plugin created.
  const clash = Fastify({ logger: false })
  clash.get('/health/memory', async () => 'mine')
  clash.register(oomguardFastify, { watch: { root: fx.root, ...QUIET } })
  await assert.rejects(clash.ready())
  await clash.close()
})

// ------------------------------------------------------------------ options

test('bad options: TypeError or RangeError naming the option', async (t) => {
  const { fx, monitor } = await setup(t)
  const cases = [
    ['options a string', 'x', TypeError, /^options must be an object, got a string/],
    ['options an array', [], TypeError, /^options must be an object, got an array/],
    ['monitor not a monitor', { monitor: {} }, TypeError, /^options\.monitor must be a Monitor \(from watch\(\)\), got an object/],
    ['monitor and watch', { monitor, watch: {} }, TypeError, /^options\.watch must be undefined when options\.monitor is given/],
    ['watch a number', { watch: 1 }, TypeError, /^options\.watch must be an object/],
    ['watch.thresholds bad', { watch: { thresholds: [1.5] } }, RangeError, /^options\.watch\.thresholds\[0\] must be a ratio/],
    ['watch.basis bad', { watch: { basis: 'heap' } }, RangeError, /^options\.watch\.basis must be one of/],
    ['level a string', { monitor, level: '3' }, TypeError, /^options\.level must be a number, got a string/],
    ['level 0', { monitor, level: 0 }, RangeError, /^options\.level must be a whole number from 1 to 3 \(the monitor's thresholds: 0\.8, 0\.9, 0\.95\), got 0/],
    ['level 4', { monitor, level: 4 }, RangeError, /^options\.level must be a whole number from 1 to 3/],
    ['level 1.5', { monitor, level: 1.5 }, RangeError, /^options\.level/],
    ['retryAfter a string', { monitor, retryAfter: '10' }, TypeError, /^options\.retryAfter must be a number of seconds, got a string/],
    ['retryAfter negative', { monitor, retryAfter: -1 }, RangeError, /^options\.retryAfter must be a whole number of seconds/],
    ['retryAfter fractional', { monitor, retryAfter: 1.5 }, RangeError, /^options\.retryAfter/],
    ['retryAfter NaN', { monitor, retryAfter: NaN }, RangeError, /^options\.retryAfter/],
    ['exclude a string', { monitor, exclude: '/health' }, TypeError, /^options\.exclude must be an array of paths or a function/],
    ['exclude entry a number', { monitor, exclude: ['/a', 1] }, TypeError, /^options\.exclude\[1\] must be a path string, got a number/],
    ['exclude entry relative', { monitor, exclude: ['health'] }, RangeError, /^options\.exclude\[0\] must be a path starting with '\/'/],
    ['healthPath a number', { monitor, healthPath: 1 }, TypeError, /^options\.healthPath must be a path string/],
    ['healthPath with a query', { monitor, healthPath: '/h?x' }, RangeError, /^options\.healthPath must be a path starting with '\/'/],
    ['healthPath true', { monitor, healthPath: true }, TypeError, /^options\.healthPath/],
    ['onShed not a function', { monitor, onShed: 1 }, TypeError, /^options\.onShed must be a function, got a number/],
  ]
  for (const [what, options, Type, re] of cases) {
    assert.throws(
      () => shed(options),
      (err) => err instanceof Type && re.test(err.message),
      what,
    )
  }
  const closed = watch({ root: fx.root, lastWords: false })
  closed.close()
  assert.throws(() => shed({ monitor: closed }), /^RangeError: options\.monitor must be an open Monitor, got a closed one/)
  assert.throws(() => shed({ monitor }).wrap('x'), /^TypeError: handler must be a function/)
  assert.equal(SHED_DEFAULTS.retryAfter, 10)
  assert.equal(SHED_DEFAULTS.healthPath, '/health/memory')
  assert.deepEqual([...SHED_DEFAULTS.exclude], ['/health', '/healthz', '/ready', '/readyz', '/live', '/livez', '/metrics'])
})

test('an invalid level does not leak the monitor shed() created for it', () => {
  const { samplerInfo } = require('../lib/core/watch.js')
  const before = samplerInfo().monitors
  assert.throws(() => shed({ watch: { thresholds: [0.9], lastWords: false }, level: 2 }), RangeError)
  if (before !== undefined) assert.equal(samplerInfo().monitors, before)
})

// ------------------------------------------------------------------ types

test('lib/index.d.ts and lib/integrations/fastify.d.ts type-check a strict TypeScript user of shed() and the plugin', { timeout: 120_000 }, () => {
  const tsc = require.resolve('typescript/bin/tsc')
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types', 'tsconfig.shed.json')], { encoding: 'utf8' })
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`)
})
