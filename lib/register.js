'use strict'
// Zero-code start: `node -r oomguard/register app.js`,
// `NODE_OPTIONS="-r oomguard/register"` or `node --import oomguard/register app.mjs`.
//
// Starts one monitor with settings from OOMGUARD_* environment variables,
// logs every threshold transition as one line on stderr and, only when
// OOMGUARD_METRICS_PORT is set, serves /metrics. It never throws and never
// keeps the process alive: a bad variable prints one line and its default is
// used; anything else that goes wrong prints one line and is skipped.

const fs = require('node:fs')

const KEY = Symbol.for('oomguard.register')
const MiB = 1024 * 1024

// The variables, their defaults and what they mean: declared with the options
// they set in lib/options.js (also the README table).
const { parseEnv, variableDescriptions, TRUE_WORDS } = require('./options.js')

const VARIABLES = variableDescriptions()

// ---------------------------------------------------------------- output

/** One line to stderr, synchronously (it must be out before a SIGKILL), never throwing. */
function writeLine(line) {
  const buf = Buffer.from(`${line}\n`)
  let off = 0
  for (let tries = 0; off < buf.length && tries < 100; tries++) {
    try {
      off += fs.writeSync(2, buf, off)
    } catch (err) {
      if (err.code !== 'EAGAIN') return
    }
  }
}

function warn(message) {
  writeLine(`oomguard: ${message}`)
}

// ---------------------------------------------------------------- logging

const round = (x, digits) => (typeof x === 'number' && Number.isFinite(x) ? Number(x.toFixed(digits)) : null)
const mib = (b) => (typeof b === 'number' && Number.isFinite(b) ? `${(b / MiB).toFixed(1)} MiB` : 'n/a')
const BASIS_WORDS = { workingSet: 'working set', usage: 'usage', rss: 'rss' }

/** The log line for one 'threshold' or 'recovered' event. */
function formatEvent(kind, e, monitor, format) {
  if (format === 'text') {
    const levels = `level ${e.level}/${monitor.thresholds.length}`
    const head = kind === 'threshold'
      ? `oomguard: memory above ${round(e.threshold * 100, 2)}% of the limit (${levels})`
      : `oomguard: memory back below ${round(e.threshold * 100, 2)}% of the limit (${levels})`
    const parts = [
      `${BASIS_WORDS[monitor.basis]} ${mib(e.basisBytes)} of ${mib(e.limitBytes)} (${typeof e.ratio === 'number' ? (e.ratio * 100).toFixed(1) : 'n/a'}%)`,
      `headroom ${mib(e.headroomBytes)}`,
    ]
    if (typeof e.growthBytesPerSec === 'number' && e.growthBytesPerSec > 0) parts.push(`growing ${mib(e.growthBytesPerSec)}/s`)
    if (typeof e.timeToLimitMs === 'number') parts.push(`limit in about ${(e.timeToLimitMs / 1000).toFixed(1)} s`)
    if (e.v8) parts.push(`V8 heap ${mib(e.v8.heapUsedBytes)} used, limit ${mib(e.v8.heapSizeLimitBytes)}`)
    if (e.lastWords) parts.push(`last words written to ${e.lastWords}`)
    return `${head}: ${parts.join(', ')}`
  }
  return JSON.stringify({
    oomguard: kind,
    time: new Date(typeof e.timestampMs === 'number' ? e.timestampMs : Date.now()).toISOString(),
    pid: process.pid,
    level: e.level,
    levels: monitor.thresholds.length,
    threshold: e.threshold,
    ratio: round(e.ratio, 4),
    basis: monitor.basis,
    basisBytes: e.basisBytes,
    limitBytes: e.limitBytes,
    headroomBytes: e.headroomBytes,
    growthBytesPerSec: round(e.growthBytesPerSec, 0),
    timeToLimitMs: round(e.timeToLimitMs, 0),
    v8: e.v8 || null,
    lastWords: e.lastWords || null,
  })
}

function formatError(err, format) {
  if (format === 'text') return `oomguard: ${err.message}`
  return JSON.stringify({ oomguard: 'error', time: new Date().toISOString(), pid: process.pid, message: err.message })
}

// ---------------------------------------------------------------- monitor

function startMonitor(state, settings) {
  const { watch, DEFAULTS } = require('./watch.js')
  let monitor
  try {
    monitor = watch(settings.watch)
  } catch (err) {
    // A combination the variables cannot check alone: say so, use the defaults.
    warn(`the OOMGUARD_* settings were refused (${err.message}); using the defaults`)
    monitor = watch({ root: settings.root, lastWords: DEFAULTS.lastWords })
  }
  monitor.unref()
  const format = settings.logFormat
  // A listener must never throw into the monitor's dispatch.
  const safely = (fn) => (arg) => {
    try {
      fn(arg)
    } catch {}
  }
  if (format !== 'none') {
    monitor.on('threshold', safely((e) => writeLine(formatEvent('threshold', e, monitor, format))))
    monitor.on('recovered', safely((e) => writeLine(formatEvent('recovered', e, monitor, format))))
  }
  // Always listen for errors: without a listener they would become process warnings.
  monitor.on('error', safely((err) => {
    if (format !== 'none') writeLine(formatError(err, format))
  }))
  state.monitor = monitor
}

// ---------------------------------------------------------------- /metrics

/** The exposition for one scrape, with the register's monitor. */
function exposition(prometheus, state, settings) {
  return { body: prometheus({ root: settings.root, monitor: state.monitor }), contentType: prometheus.contentType }
}

function startMetrics(state, settings) {
  const { port, host } = settings.metrics
  // The exposition code loads on the first scrape, not at start.
  let prometheus = null
  const http = require('node:http')
  const server = http.createServer((req, res) => {
    const path = (req.url || '').split('?')[0]
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
      res.end('not found: oomguard serves /metrics\n')
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
      res.end('method not allowed\n')
      return
    }
    let body
    try {
      if (prometheus === null) prometheus = require('./prometheus.js').prometheus
      body = exposition(prometheus, state, settings)
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
      res.end(`oomguard: ${err && err.message}\n`)
      return
    }
    res.writeHead(200, { 'content-type': body.contentType, 'content-length': Buffer.byteLength(body.body) })
    res.end(req.method === 'HEAD' ? undefined : body.body)
  })
  // Neither the server nor a scraper's keep-alive connection keeps the process alive.
  server.on('connection', (socket) => socket.unref())
  server.on('error', (err) => {
    warn(`cannot serve /metrics on ${host}:${port} (${err.code || err.message}); the service runs on without it`)
    state.server = null
  })
  server.listen(port, host, () => {
    const a = server.address()
    state.metricsAddress = { host: a.address, port: a.port }
    writeLine(
      settings.logFormat === 'text' || settings.logFormat === 'none'
        ? `oomguard: serving /metrics on http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/metrics`
        : JSON.stringify({ oomguard: 'metrics', time: new Date().toISOString(), pid: process.pid, host: a.address, port: a.port, path: '/metrics' }),
    )
  })
  server.unref()
  state.server = server
}

// ---------------------------------------------------------------- start, once

/**
 * True on the process's main thread. On Linux its thread id is the process
 * id (/proc/thread-self names both), a cheaper test than loading
 * node:worker_threads (about 1.5 ms of start-up); that is the answer elsewhere.
 */
function isMainThread() {
  try {
    const m = /^(\d+)\/task\/(\d+)$/.exec(fs.readlinkSync('/proc/thread-self'))
    if (m) return m[1] === m[2]
  } catch {}
  return require('node:worker_threads').isMainThread
}

function start() {
  const state = { started: false, reason: null, monitor: null, server: null, metricsAddress: null, problems: [], VARIABLES }
  try {
    const env = process.env
    // Own properties only: a polluted Object.prototype is no variable.
    const disable = (Object.hasOwn(env, 'OOMGUARD_DISABLE') ? env.OOMGUARD_DISABLE : '').trim().toLowerCase()
    if (TRUE_WORDS.includes(disable)) {
      state.reason = 'OOMGUARD_DISABLE is set'
      return state
    }
    if (!isMainThread()) {
      // One monitor per process: the cgroup is the process's, not the thread's.
      state.reason = 'worker thread'
      return state
    }
    const { settings, problems } = parseEnv(env)
    state.problems = problems
    for (const p of problems) warn(p)
    state.settings = settings
    try {
      startMonitor(state, settings)
    } catch (err) {
      warn(`could not start the monitor (${err && err.message}); the service runs on without it`)
    }
    if (settings.metrics) {
      try {
        startMetrics(state, settings)
      } catch (err) {
        warn(`could not serve /metrics (${err && err.message}); the service runs on without it`)
      }
    }
    state.started = state.monitor !== null
  } catch (err) {
    try {
      warn(`could not start (${err && err.message}); the service runs on without it`)
    } catch {}
  }
  return state
}

let state = globalThis[KEY]
if (state === undefined) {
  state = start()
  try {
    Object.defineProperty(globalThis, KEY, { value: state, configurable: true })
  } catch {}
}

module.exports = state
