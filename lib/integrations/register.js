'use strict'
// Zero-code start: `node -r oomguard/register app.js`,
// `NODE_OPTIONS="-r oomguard/register"` or `node --import oomguard/register app.mjs`.
//
// Starts one monitor with settings from OOMGUARD_* environment variables,
// logs every threshold transition as one line on stderr and, only when
// OOMGUARD_METRICS_PORT is set, serves /metrics. It never throws and never
// keeps the process alive: a bad variable prints one line and its default is
// used; anything else that goes wrong prints one line and is skipped.
//
// Every node process that inherits NODE_OPTIONS loads it, so it first asks
// whether this process is the service (roleOf): npm, npx and oomguard's own
// CLI start nothing; a descendant of a running service (OOMGUARD_SERVICE_PID,
// which the service sets for its children) monitors and logs, but neither
// writes the last-words file nor serves /metrics. Among services, the first
// to open the last-words file owns its record (src/watch/owner.rs).

const fs = require('node:fs')
const nodePath = require('node:path')

const KEY = Symbol.for('oomguard.register')
const MiB = 1024 * 1024

// The variables, their defaults and what they mean: declared with the options
// they set in lib/core/options.js (also the README table).
const { parseEnv, variableDescriptions, TRUE_WORDS, REGISTER_VARIABLES } = require('../core/options.js')

// The service's mark for its children (declared in lib/core/options.js).
const REGISTER_MARK = REGISTER_VARIABLES.find((v) => v.key === 'servicePid').env

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

// ---------------------------------------------------------------- who is the service

// Node programs that inherit NODE_OPTIONS but are never the service: the end
// of process.argv[1]'s real path, and the name the register gives them.
const TOOL_SCRIPTS = [
  ['/npm/bin/npm-cli.js', 'npm'],
  ['/npm/bin/npx-cli.js', 'npx'],
  ['/oomguard/bin/oomguard.js', 'oomguard'],
]
// The names under which they are started: the scripts' own, and their links' (npm, npx, oomguard).
const TOOL_NAMES = TOOL_SCRIPTS.flatMap(([tail, name]) => [nodePath.basename(tail), name])
// This copy's own CLI, wherever it is installed (a checkout, a link).
const OWN_CLI = nodePath.join(__dirname, '..', '..', 'bin', 'oomguard.js')

function realpath(p) {
  try {
    return fs.realpathSync(p)
  } catch {
    return null
  }
}

/** Is `pid` a live process (ours to signal or not)? */
function alive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

/**
 * `{ role: 'tool', name }` (npm, npx, oomguard's CLI: nothing starts),
 * `{ role: 'child', servicePid }` (a descendant of a live service: it
 * monitors and logs, no record file, no /metrics) or `{ role: 'service' }`.
 */
function roleOf(settings) {
  const arg = process.argv[1]
  // Only a script named as a tool or its link is (npm, npx-cli.js, .bin/oomguard) is resolved: no syscall for the service's own.
  const named = typeof arg === 'string' && TOOL_NAMES.includes(nodePath.basename(arg))
  const script = named ? realpath(arg) : null
  if (script !== null) {
    for (const [tail, name] of TOOL_SCRIPTS) if (script.endsWith(tail)) return { role: 'tool', name }
    if (script.endsWith('/bin/oomguard.js') && script === realpath(OWN_CLI)) return { role: 'tool', name: 'oomguard' }
  }
  const pid = settings.servicePid
  if (pid !== null && pid !== process.pid && alive(pid)) return { role: 'child', servicePid: pid }
  return { role: 'service' }
}

// ---------------------------------------------------------------- logging

const round = (x, digits) => (typeof x === 'number' && Number.isFinite(x) ? Number(x.toFixed(digits)) : null)
const mib = (b) => (typeof b === 'number' && Number.isFinite(b) ? `${(b / MiB).toFixed(1)} MiB` : 'n/a')
const BASIS_WORDS = { workingSet: 'working set', usage: 'usage', rss: 'rss' }

/** The log line for one 'threshold' or 'recovered' event. */
function formatEvent(kind, e, monitor, format) {
  if (format === 'text') {
    const levels = `level ${e.level}/${monitor.thresholds.length}`
    const head =
      kind === 'threshold' ? `oomguard: memory above ${round(e.threshold * 100, 2)}% of the limit (${levels})` : `oomguard: memory back below ${round(e.threshold * 100, 2)}% of the limit (${levels})`
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
    ...notOwner(monitor),
  })
}

// Set for a monitor whose process does not write the last-words file: its
// lines say so (`owner: false`, and the service it descends from).
const kNotOwner = Symbol('oomguard.register.notOwner')
const notOwner = (monitor) => monitor[kNotOwner] || undefined

/** A JSON line of the register's own (format json) or its text (format text or none). */
function line(format, kind, fields, text) {
  if (format === 'json') return JSON.stringify({ oomguard: kind, time: new Date().toISOString(), pid: process.pid, ...fields })
  return `oomguard: ${text}`
}

function formatError(err, format) {
  if (format === 'text') return `oomguard: ${err.message}`
  return JSON.stringify({ oomguard: 'error', time: new Date().toISOString(), pid: process.pid, message: err.message })
}

// ---------------------------------------------------------------- monitor

function startMonitor(state, settings) {
  const { watch, DEFAULTS } = require('../core/watch.js')
  const child = state.role.role === 'child'
  // A descendant of the service never writes the record file.
  const options = child ? { ...settings.watch, lastWords: { ...settings.watch.lastWords, path: undefined } } : settings.watch
  let monitor
  try {
    monitor = watch(options)
  } catch (err) {
    // A combination the variables cannot check alone: say so, use the defaults.
    warn(`the OOMGUARD_* settings were refused (${err.message}); using the defaults`)
    monitor = watch({ root: settings.root, lastWords: DEFAULTS.lastWords })
  }
  monitor.unref()
  const format = settings.logFormat
  if (child) {
    monitor[kNotOwner] = { owner: false, servicePid: state.role.servicePid }
  } else {
    const file = monitor.lastWordsFile
    if (file !== null && file.owner === false) {
      // Another live process holds the record (or one that died left its last words there).
      const holder = file.holderPid === null ? null : `pid ${file.holderPid}${file.holderCommand ? ` (${file.holderCommand})` : ''}`
      monitor[kNotOwner] = { owner: false, holderPid: file.holderPid }
      if (format !== 'none') {
        const text = `${file.path} is ${holder ? `owned by ${holder}` : 'not ours: it holds the record of another process'}; this process's records go to stderr only (give each service its own path: OOMGUARD_LAST_WORDS_PATH with {pid} in it)`
        writeLine(line(format, 'record-owner', { owner: false, path: file.path, holderPid: file.holderPid, holderCommand: file.holderCommand, message: text }, text))
      }
    }
  }
  // A listener must never throw into the monitor's dispatch.
  const safely = (fn) => (arg) => {
    try {
      fn(arg)
    } catch {}
  }
  if (format !== 'none') {
    monitor.on(
      'threshold',
      safely((e) => writeLine(formatEvent('threshold', e, monitor, format))),
    )
    monitor.on(
      'recovered',
      safely((e) => writeLine(formatEvent('recovered', e, monitor, format))),
    )
  }
  // Always listen for errors: without a listener they would become process warnings.
  monitor.on(
    'error',
    safely((err) => {
      // A process that does not own the record file was told so at start: its file is never written.
      if (err.code === 'ERR_OOMGUARD_LAST_WORDS' && notOwner(monitor)) return
      if (format !== 'none') writeLine(formatError(err, format))
    }),
  )
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
    state.server = null
    let holder = null
    if (err.code === 'EADDRINUSE') {
      try {
        holder = require('../core/native.js').portHolder(port, 'OOMGUARD_METRICS_PORT')
      } catch {}
      // A sibling started with the same OOMGUARD_METRICS_PORT serves it: nothing is wrong.
      if (holder !== null && holder.envValue !== null && holder.envValue.trim() === String(port)) {
        state.metricsServedBy = holder.pid
        return
      }
    }
    const who = holder === null ? '' : `: pid ${holder.pid}${holder.command ? ` (${holder.command})` : ''} holds it`
    warn(`cannot serve /metrics on ${host}:${port} (${err.code || err.message}${who}); the service runs on without it`)
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

// ---------------------------------------------------------------- the heap limit, once

const HEAP_FLAGS = /(^|\s)--max-(old-space-size(-percentage)?|semi-space-size)(=\S*|\s+\d\S*)?(?=\s|$)/g

/**
 * NODE_OPTIONS as it should be: the current one without its heap flags,
 * with `flags` (the diagnosis's) added.
 */
function fixedNodeOptions(flags) {
  const now = Object.hasOwn(process.env, 'NODE_OPTIONS') ? String(process.env.NODE_OPTIONS) : ''
  return `${now.replace(HEAP_FLAGS, ' ').trim()} ${flags}`.trim()
}

/**
 * One line when V8's heap limit is at or near the container limit: the
 * failure this process is set up for is already visible (lib/core/diagnoses.json's
 * heapLimit codes, from getMemoryMetrics()). After the start, off its path.
 */
function warnHeapLimit(state, settings) {
  const { heapLimit } = require('../core/diagnoses.json')
  const codes = [heapLimit.above.code, heapLimit.near.code]
  const { getMemoryMetrics } = require('../core/metrics.js')
  const m = getMemoryMetrics(null, { root: settings.root })
  const d = m.diagnoses.find((x) => codes.includes(x.code))
  if (d === undefined || settings.logFormat === 'none') return
  const nodeOptions = d.nodeOptions === null ? null : fixedNodeOptions(d.nodeOptions)
  const fix = nodeOptions === null ? '' : ` Here: NODE_OPTIONS="${nodeOptions}" (OOMGUARD_HEAP_WARNING=0 turns this line off).`
  state.heapWarning = d.code
  writeLine(
    line(
      settings.logFormat,
      'heap-limit',
      {
        code: d.code,
        severity: d.severity,
        heapSizeLimitBytes: d.heapSizeLimitBytes,
        limitBytes: d.limitBytes,
        nodeOptions,
        message: d.message,
      },
      `${d.message}${fix}`,
    ),
  )
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
  const state = { started: false, reason: null, role: null, monitor: null, server: null, metricsAddress: null, metricsServedBy: null, heapWarning: null, problems: [] }
  // Built when first read, not at start (a table of every variable; nothing at start needs it).
  let variables = null
  Object.defineProperty(state, 'VARIABLES', {
    enumerable: true,
    get: () => variables || (variables = variableDescriptions()),
  })
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
    state.settings = settings
    state.role = roleOf(settings)
    if (state.role.role === 'tool') {
      // Not the service: its settings are not this process's to complain about either.
      state.reason = `${state.role.name}: a tool, not the service`
      return state
    }
    for (const p of problems) warn(p)
    if (state.role.role === 'service') {
      // Children inherit it: they are this service's, not services of their own.
      try {
        process.env[REGISTER_MARK] = String(process.pid)
      } catch {}
    }
    try {
      startMonitor(state, settings)
    } catch (err) {
      warn(`could not start the monitor (${err && err.message}); the service runs on without it`)
    }
    // The /metrics server and the heap-limit line wait until the main module has run (lib/core/watch.js).
    const { afterMain } = require('../core/watch.js')
    if (state.role.role === 'service' && settings.heapWarning && state.monitor !== null) {
      afterMain(() => {
        try {
          warnHeapLimit(state, settings)
        } catch {}
      }, false)
    }
    if (settings.metrics && state.role.role === 'service') {
      // On a turn of the event loop after the main module has run:
      // node:http and the listening socket are about 5 ms of start-up that
      // the service's own code need not wait for (benchmark/startup.js).
      // `state.server` is set then. A ref'd immediate first: an unref'd one
      // would not run until some other event wakes the loop; it keeps the
      // process for that one turn only (the server is unref'd).
      afterMain(() => {
        try {
          startMetrics(state, settings)
        } catch (err) {
          warn(`could not serve /metrics (${err && err.message}); the service runs on without it`)
        }
      }, true)
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
