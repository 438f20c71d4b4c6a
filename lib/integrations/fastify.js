'use strict'
// oomguard for Fastify: load shedding and a memory health route.
//
//   const fastify = require('fastify')()
//   fastify.register(require('oomguard/fastify'), { retryAfter: 10 })
//
// While the container's working set is at or above the chosen monitor level,
// an `onRequest` hook answers `503 Service Unavailable` with `Retry-After`
// before routing work runs. The per-request check reads `monitor.level`
// (shared memory the native sampler thread writes): no file read, no native
// call. Excluded paths, and routes whose config says `{ oomguard: false }`,
// always pass.
//
// The plugin applies to the whole application, like a plugin wrapped with
// fastify-plugin (it sets `Symbol.for('skip-override')` itself). It decorates
// the instance with `memoryMonitor` (the Monitor) and `oomguard` (the shedding
// state), registers the health route (default GET /health/memory), and closes
// the monitor it created in `onClose`. Options: see lib/fastify.d.ts.

const { createShedCore } = require('./shed.js')

async function oomguard(fastify, opts) {
  for (const name of ['memoryMonitor', 'oomguard']) {
    if (fastify.hasDecorator(name)) {
      const err = new Error(`oomguard: the Fastify instance already has a '${name}' decorator; register oomguard once`)
      err.code = 'ERR_OOMGUARD_ALREADY_REGISTERED'
      throw err
    }
  }
  const core = createShedCore(opts)
  try {
    register(fastify, core)
  } catch (err) {
    core.close()
    throw err
  }
}

function register(fastify, core) {
  const { monitor, excluded, onShed, body } = core
  const shedAt = core.level
  const headers = {
    'content-type': core.headers['content-type'],
    'cache-control': core.headers['cache-control'],
    'retry-after': core.headers['retry-after'],
  }

  const state = Object.freeze({
    monitor,
    level: core.level,
    retryAfter: core.retryAfter,
    healthPath: core.healthPath,
    get shedding() {
      return core.shedding()
    },
    get shedTotal() {
      return core.shedTotal
    },
    health: () => core.health(),
  })
  fastify.decorate('memoryMonitor', monitor)
  fastify.decorate('oomguard', state)

  fastify.addHook('onRequest', function oomguardOnRequest(request, reply, done) {
    if (monitor.level < shedAt) return done()
    // Slow path: only while at or above the level.
    if (core.closed || monitor.closed === true || request.routeOptions?.config?.oomguard === false || excluded(request)) {
      return done()
    }
    core.shedTotal++
    reply.code(503).headers(headers).send(body)
    if (onShed !== undefined) onShed(request, reply)
  })

  if (core.healthPath !== null) {
    fastify.route({
      method: 'GET',
      url: core.healthPath,
      config: { oomguard: false },
      handler: function oomguardHealth(request, reply) {
        const h = core.health()
        reply.header('cache-control', 'no-store')
        if (h.status === 'shedding') reply.code(503).header('retry-after', core.retryAfterHeader)
        return reply.send(h)
      },
    })
  }

  fastify.addHook('onClose', async () => {
    core.close()
  })
}

oomguard[Symbol.for('skip-override')] = true
oomguard[Symbol.for('fastify.display-name')] = 'oomguard'
oomguard[Symbol.for('plugin-meta')] = { fastify: '>=4', name: 'oomguard' }

module.exports = oomguard
module.exports.default = oomguard
module.exports.oomguard = oomguard
