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

const { watch } = require('./watch.js')
const { invalidType, outOfRange } = require('./metrics.js')

/** Defaults, documented in lib/index.d.ts. */
const SHED_DEFAULTS = Object.freeze({
  retryAfter: 10,
  exclude: Object.freeze(['/health', '/healthz', '/ready', '/readyz', '/live', '/livez', '/metrics']),
  healthPath: '/health/memory',
})

const MAX_RETRY_AFTER = 2 ** 31 - 1

function isMonitorLike(m) {
  return (
    m !== null &&
    typeof m === 'object' &&
    Array.isArray(m.thresholds) &&
    m.thresholds.length > 0 &&
    typeof m.level === 'number'
  )
}

function pathOption(name, v) {
  if (typeof v !== 'string') throw invalidType(name, 'a path string', v)
  if (!v.startsWith('/') || /[?#\s]/.test(v)) {
    throw outOfRange(name, "a path starting with '/', without '?', '#' or whitespace", JSON.stringify(v))
  }
  return v
}

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
  if (options === undefined || options === null) options = {}
  if (typeof options !== 'object' || Array.isArray(options)) throw invalidType(name, 'an object', options)

  const { monitor: given, watch: watchOptions } = options
  if (given !== undefined && !isMonitorLike(given)) {
    throw invalidType(`${name}.monitor`, 'a Monitor (from watch())', given)
  }
  if (given !== undefined && given.closed === true) {
    throw outOfRange(`${name}.monitor`, 'an open Monitor', 'a closed one')
  }
  if (given !== undefined && watchOptions !== undefined) {
    throw invalidType(`${name}.watch`, 'undefined when options.monitor is given (the monitor has its own options)', watchOptions)
  }
  if (watchOptions !== undefined && watchOptions !== null && (typeof watchOptions !== 'object' || Array.isArray(watchOptions))) {
    throw invalidType(`${name}.watch`, 'an object (options for watch())', watchOptions)
  }

  const retryAfter = options.retryAfter === undefined ? SHED_DEFAULTS.retryAfter : options.retryAfter
  if (typeof retryAfter !== 'number') throw invalidType(`${name}.retryAfter`, 'a number of seconds', retryAfter)
  if (!Number.isInteger(retryAfter) || retryAfter < 0 || retryAfter > MAX_RETRY_AFTER) {
    throw outOfRange(`${name}.retryAfter`, `a whole number of seconds from 0 to ${MAX_RETRY_AFTER}`, retryAfter)
  }

  let exclude = options.exclude === undefined ? SHED_DEFAULTS.exclude : options.exclude
  let excluded
  if (typeof exclude === 'function') {
    excluded = exclude
  } else if (Array.isArray(exclude)) {
    exclude = exclude.map((p, i) => pathOption(`${name}.exclude[${i}]`, p))
    excluded = (req) => {
      const p = pathnameOf(req.url)
      for (let i = 0; i < exclude.length; i++) if (underPrefix(p, exclude[i])) return true
      return false
    }
  } else {
    throw invalidType(`${name}.exclude`, 'an array of paths or a function (req) => boolean', exclude)
  }

  let healthPath = options.healthPath === undefined ? SHED_DEFAULTS.healthPath : options.healthPath
  if (healthPath === false || healthPath === null) healthPath = null
  else healthPath = pathOption(`${name}.healthPath`, healthPath)

  const onShed = options.onShed
  if (onShed !== undefined && typeof onShed !== 'function') throw invalidType(`${name}.onShed`, 'a function', onShed)

  let monitor = given
  const owned = given === undefined
  if (owned) {
    try {
      monitor = watch(watchOptions ?? undefined)
    } catch (err) {
      // watch() names its fields `options.*`; here they are `options.watch.*`.
      if (typeof err.message === 'string' && err.message.startsWith('options')) {
        err.message = `${name}.watch${err.message.slice('options'.length)}`
      }
      throw err
    }
  }

  const top = monitor.thresholds.length
  const level = options.level === undefined ? top : options.level
  if (typeof level !== 'number' || !Number.isInteger(level) || level < 1 || level > top) {
    if (owned) monitor.close()
    if (typeof level !== 'number') throw invalidType(`${name}.level`, 'a number', level)
    throw outOfRange(`${name}.level`, `a whole number from 1 to ${top} (the monitor's thresholds: ${monitor.thresholds.join(', ')})`, level)
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
      const c = monitor.current
      const shedding = core.shedding()
      return {
        status: shedding ? 'shedding' : 'ok',
        level: c.level,
        shedLevel: level,
        thresholds: [...monitor.thresholds],
        basis: monitor.basis ?? null,
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
        sampledAt: c.timestampMs === null ? null : new Date(c.timestampMs).toISOString(),
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
 * @param {import('./index').ShedOptions} [options]
 * @returns {import('./index').ShedMiddleware}
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
