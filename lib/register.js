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

/** The variables, their defaults and what they mean (the README table). */
const VARIABLES = Object.freeze({
  OOMGUARD_DISABLE: 'set to 1 (or true/yes/on) to load nothing',
  OOMGUARD_THRESHOLDS: 'ascending ratios of the limit, comma-separated (default 0.8,0.9,0.95)',
  OOMGUARD_BASIS: 'workingSet, usage or rss (default workingSet)',
  OOMGUARD_HYSTERESIS: 'ratio from 0 to 0.5 (default 0.05)',
  OOMGUARD_MIN_INTERVAL_MS: 'fastest sampling interval, ms (default 1)',
  OOMGUARD_MAX_INTERVAL_MS: 'slowest sampling interval, ms (default 5000)',
  OOMGUARD_LAST_WORDS_PATH: 'file for the last-words line, e.g. /dev/termination-log (default none)',
  OOMGUARD_LAST_WORDS_STDERR: 'write the last-words line to stderr: 1 or 0 (default 1)',
  OOMGUARD_LOG_FORMAT: 'json, text or none (default json)',
  OOMGUARD_METRICS_PORT: 'serve /metrics on this TCP port (default: no server)',
  OOMGUARD_METRICS_HOST: 'address /metrics binds to (default 127.0.0.1)',
  OOMGUARD_ROOT: 'for tests: a fixture tree that stands in for /',
})

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

// ---------------------------------------------------------------- parsing

const TRUE = ['1', 'true', 'yes', 'on']
const FALSE = ['0', 'false', 'no', 'off']

/**
 * Read the settings from `env`. Returns `{ settings, problems }`; each
 * problem is one line about one variable whose default is used instead.
 */
function parseEnv(env) {
  const problems = []
  const bad = (name, expected, fallback) => {
    problems.push(`${name}=${JSON.stringify(env[name])} is not valid (${expected}); using the default${fallback === undefined ? '' : ` (${fallback})`}`)
  }
  const get = (name) => {
    const v = env[name]
    return v === undefined || v.trim() === '' ? undefined : v.trim()
  }
  const settings = { watch: {}, logFormat: 'json', metrics: null, root: undefined }

  const thresholds = get('OOMGUARD_THRESHOLDS')
  if (thresholds !== undefined) {
    const list = thresholds.split(',').map((s) => s.trim())
    const nums = list.map(Number)
    const ok =
      list.length >= 1 &&
      list.length <= 16 &&
      list.every((s) => s !== '') &&
      nums.every((t, i) => t > 0 && t < 1 && (i === 0 || t > nums[i - 1]))
    if (ok) settings.watch.thresholds = nums
    else bad('OOMGUARD_THRESHOLDS', '1 to 16 ascending ratios between 0 and 1, comma-separated, e.g. 0.8,0.9,0.95', '0.8,0.9,0.95')
  }

  const basis = get('OOMGUARD_BASIS')
  if (basis !== undefined) {
    const found = ['workingSet', 'usage', 'rss'].find((b) => b.toLowerCase() === basis.toLowerCase())
    if (found) settings.watch.basis = found
    else bad('OOMGUARD_BASIS', 'workingSet, usage or rss', 'workingSet')
  }

  const number = (name, key, lo, hi, expected, fallback) => {
    const v = get(name)
    if (v === undefined) return
    const n = Number(v)
    if (Number.isFinite(n) && n >= lo && n <= hi) settings.watch[key] = n
    else bad(name, expected, fallback)
  }
  number('OOMGUARD_HYSTERESIS', 'hysteresis', 0, 0.5, 'a ratio from 0 to 0.5', '0.05')
  number('OOMGUARD_MIN_INTERVAL_MS', 'minIntervalMs', 0.1, 60000, 'milliseconds from 0.1 to 60000', '1')
  number('OOMGUARD_MAX_INTERVAL_MS', 'maxIntervalMs', 0.1, 3600000, 'milliseconds from 0.1 to 3600000', '5000')
  const { minIntervalMs: lo, maxIntervalMs: hi } = settings.watch
  if (hi !== undefined && hi < (lo === undefined ? 1 : lo)) {
    bad('OOMGUARD_MAX_INTERVAL_MS', `at least the minimum interval (${lo === undefined ? 1 : lo} ms)`, '5000')
    delete settings.watch.maxIntervalMs
  }

  const lastWords = {}
  const lwPath = get('OOMGUARD_LAST_WORDS_PATH')
  if (lwPath !== undefined) {
    if (lwPath.includes('\0')) bad('OOMGUARD_LAST_WORDS_PATH', 'a file path', 'none')
    else lastWords.path = lwPath
  }
  const lwStderr = get('OOMGUARD_LAST_WORDS_STDERR')
  if (lwStderr !== undefined) {
    if (TRUE.includes(lwStderr.toLowerCase())) lastWords.stderr = true
    else if (FALSE.includes(lwStderr.toLowerCase())) lastWords.stderr = false
    else bad('OOMGUARD_LAST_WORDS_STDERR', '1 or 0', '1')
  }
  if (Object.keys(lastWords).length) settings.watch.lastWords = lastWords

  const format = get('OOMGUARD_LOG_FORMAT')
  if (format !== undefined) {
    const f = format.toLowerCase()
    if (f === 'json' || f === 'text' || f === 'none') settings.logFormat = f
    else bad('OOMGUARD_LOG_FORMAT', 'json, text or none', 'json')
  }

  const root = get('OOMGUARD_ROOT')
  if (root !== undefined) {
    let isDir = false
    try {
      isDir = fs.statSync(root).isDirectory()
    } catch {}
    if (isDir) {
      settings.root = root
      settings.watch.root = root
    } else bad('OOMGUARD_ROOT', 'an existing directory', '/')
  }

  const port = get('OOMGUARD_METRICS_PORT')
  if (port !== undefined) {
    const n = Number(port)
    const host = get('OOMGUARD_METRICS_HOST') ?? '127.0.0.1'
    if (/^\d+$/.test(port) && n <= 65535) settings.metrics = { port: n, host }
    else bad('OOMGUARD_METRICS_PORT', 'a TCP port from 0 to 65535', 'no /metrics server')
  }
  return { settings, problems }
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
  const { prometheus } = require('./prometheus.js')
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

function start() {
  const state = { started: false, reason: null, monitor: null, server: null, metricsAddress: null, problems: [], VARIABLES }
  try {
    const disable = (process.env.OOMGUARD_DISABLE || '').trim().toLowerCase()
    if (TRUE.includes(disable)) {
      state.reason = 'OOMGUARD_DISABLE is set'
      return state
    }
    const { isMainThread } = require('node:worker_threads')
    if (!isMainThread) {
      // One monitor per process: the cgroup is the process's, not the thread's.
      state.reason = 'worker thread'
      return state
    }
    const { settings, problems } = parseEnv(process.env)
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
