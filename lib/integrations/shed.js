'use strict'
// shed(): load shedding for node:http, Express and Connect. While the
// container's working set is at or above a monitor level, answer
// `503 Service Unavailable` with `Retry-After` instead of running the handler,
// so the process sheds work before the kernel's OOM killer ends it. Like
// @fastify/under-pressure, but measured against the cgroup's real limit and
// working set rather than absolute byte counts.
//
// The per-request check reads `monitor.level`, a number the native sampler
// thread keeps in shared memory: no file read, no native call, no allocation.
// Everything else (exclusions, the 503, the health route) runs only when it
// applies.
//
//   const { shed } = require('oomguard')
//   const guard = shed({ retryAfter: 10 })
//   app.use(guard)                                                // Express / Connect
//   http.createServer(guard.wrap(handler))                        // node:http
//   http.createServer((req, res) => guard(req, res, () => handler(req, res)))

const { watch } = require('../core/watch.js')
const { invalidType, shedConfig, shedLevel, SHED_DEFAULTS } = require('../core/options.js')

/** Does `pathname` equal `prefix` or lie under it ('/health' covers '/health/x', not '/healthy')? */
function underPrefix(pathname, prefix) {
  if (!pathname.startsWith(prefix)) return false
  return pathname.length === prefix.length || prefix.endsWith('/') || pathname.charCodeAt(prefix.length) === 47 /* / */
}

function pathnameOf(url) {
  if (typeof url !== 'string') return ''
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/**
 * Validate the options shared by `shed()` and the Fastify plugin and build
 * the state both use. `name` is how errors refer to the options object.
 * @internal
 */
function createShedCore(options, name = 'options') {
  // One snapshot of the options (lib/core/options.js); nothing below reads `options` again.
  const c = shedConfig(options, name)
  const { retryAfter, healthPath, onShed } = c
  const exclude = c.exclude
  let excluded
  if (typeof exclude === 'function') {
    excluded = exclude
  } else {
    excluded = (req) => {
      const p = pathnameOf(req.url)
      for (let i = 0; i < exclude.length; i++) if (underPrefix(p, exclude[i])) return true
      return false
    }
  }

  const owned = c.monitor === undefined
  // The monitor's thresholds, copied and checked once (a monitor passed in is not trusted).
  const snap = owned ? null : c.monitor
  const monitor = owned ? watch(c.watch) : snap.monitor
  const thresholds = owned ? monitor.thresholds : snap.thresholds
  const basis = owned ? monitor.basis : snap.basis

  let level
  try {
    level = shedLevel(c.level, thresholds, name)
  } catch (err) {
    if (owned) monitor.close()
    throw err
  }

  const retryAfterHeader = String(retryAfter)
  const body = Buffer.from(
    JSON.stringify({
      statusCode: 503,
      code: 'OOMGUARD_SHEDDING',
      error: 'Service Unavailable',
      message: `Shedding load: memory use is near the container's limit. Retry after ${retryAfter} s.`,
    }),
  )
  const headers = Object.freeze({
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(body.length),
    'cache-control': 'no-store',
    'retry-after': retryAfterHeader,
  })

  const core = {
    monitor,
    owned,
    level,
    retryAfter,
    retryAfterHeader,
    healthPath,
    excluded,
    onShed,
    body,
    headers,
    shedTotal: 0,
    closed: false,
    /** True while requests are being shed. No I/O. */
    shedding() {
      return !core.closed && monitor.closed !== true && monitor.level >= level
    },
    /** The health route's body. Reads only the monitor's shared memory. */
    health() {
      const cur = monitor.current
      const c = cur !== null && typeof cur === 'object' ? cur : {}
      const shedding = core.shedding()
      return {
        status: shedding ? 'shedding' : 'ok',
        level: c.level,
        shedLevel: level,
        thresholds: [...thresholds],
        basis: basis ?? null,
        ratio: c.ratio,
        limitBytes: c.limitBytes,
        workingSetBytes: c.workingSetBytes,
        usageBytes: c.usageBytes,
        basisBytes: c.basisBytes,
        headroomBytes: c.headroomBytes,
        growthBytesPerSec: c.growthBytesPerSec,
        timeToLimitMs: c.timeToLimitMs,
        source: c.source,
        failing: c.failing,
        sampledAt: typeof c.timestampMs === 'number' && Number.isFinite(c.timestampMs) ? new Date(c.timestampMs).toISOString() : null,
        shedTotal: core.shedTotal,
        retryAfter: shedding ? retryAfter : null,
      }
    },
    close() {
      if (core.closed) return
      core.closed = true
      if (owned) monitor.close()
    },
  }
  return core
}

/**
 * Load-shedding middleware. See `shed()` in lib/index.d.ts for the options.
 * @param {import('../index').ShedOptions} [options]
 * @returns {import('../index').ShedMiddleware}
 */
function shed(options) {
  const core = createShedCore(options)
  const { monitor, excluded, onShed, body, headers } = core
  const healthPath = core.healthPath
  const hpLen = healthPath === null ? 0 : healthPath.length
  let shedAt = core.level // Infinity once closed: the guard then passes everything

  function sendHealth(req, res) {
    const method = req.method
    if (method !== 'GET' && method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-length': '0' })
      res.end()
      return
    }
    const h = core.health()
    const payload = JSON.stringify(h)
    const head = {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(payload)),
      'cache-control': 'no-store',
    }
    if (h.status === 'shedding') head['retry-after'] = core.retryAfterHeader
    res.writeHead(h.status === 'shedding' ? 503 : 200, head)
    res.end(payload)
  }

  // The slow path: only while the level is at or above `shedAt`.
  function shedSlow(req, res) {
    if (monitor.closed === true || excluded(req)) return false
    core.shedTotal++
    res.writeHead(503, headers)
    res.end(body)
    if (onShed !== undefined) onShed(req, res)
    return true
  }

  /** True when the request was answered here (health route or 503). */
  function answer(req, res) {
    if (hpLen !== 0 && !core.closed) {
      const url = req.url
      if (url.startsWith(healthPath) && (url.length === hpLen || url.charCodeAt(hpLen) === 63) /* ? */) {
        sendHealth(req, res)
        return true
      }
    }
    if (monitor.level < shedAt) return false
    return shedSlow(req, res)
  }

  function guard(req, res, next) {
    if (!answer(req, res)) next()
  }

  Object.defineProperties(guard, {
    name: { value: 'oomguardShed' },
    monitor: { value: monitor, enumerable: true },
    level: { value: core.level, enumerable: true },
    retryAfter: { value: core.retryAfter, enumerable: true },
    healthPath: { value: healthPath, enumerable: true },
    shedding: { get: () => core.shedding(), enumerable: true },
    shedTotal: { get: () => core.shedTotal, enumerable: true },
  })
  guard.health = () => core.health()
  guard.wrap = (handler) => {
    if (typeof handler !== 'function') throw invalidType('handler', 'a function (req, res)', handler)
    return function oomguardWrapped(req, res) {
      if (!answer(req, res)) return handler(req, res)
    }
  }
  guard.close = () => {
    shedAt = Infinity
    core.close()
  }
  return guard
}

module.exports = { shed, SHED_DEFAULTS, createShedCore, pathnameOf }
