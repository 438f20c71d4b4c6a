'use strict'
// watch(): a monitor that warns before the kernel's OOM killer acts. The
// native sampler thread (one per process, shared by every monitor and worker)
// reads the cgroup, moves each monitor's level and writes into a small
// Float64Array shared with this side, so `monitor.level` and
// `monitor.current` cost no file read and no native call.

const { EventEmitter } = require('node:events')
const native = require('./native.js')
const { usageNow, usageError, heapLimitKnown } = require('./usage.js')

// Loaded with the first monitor, not at require (start-up time).
const optionsModule = () => require('./options.js')

// ---------------------------------------------------------------- after the main module
//
// Work that waits until the main module has run, off the service's start-up
// path: the monitor's first read of the heap limit (node:v8), and the
// register's /metrics server and heap-limit line (lib/integrations/register.js).
// A CommonJS main runs in one piece, so the next turn of the event loop is
// after it. An ES module main (a .mjs, or any main under `--import`) is
// loaded over many turns, its files read asynchronously: a plain immediate
// runs in between, before the main module (benchmark/startup.js: the
// preload's /metrics server and heap-limit line, about 11 ms, landed there).
// (Here rather than in a module of its own: each require() is about 17
// calls into node:path, and a few dozen more make V8 optimize its
// normalizeString on a worker thread, about 4 ms of CPU at start.)

// Past this, the work runs even if the main module has not finished (a
// top-level await that takes long, or never settles).
const MAIN_WAIT_MS = 1000

/** node's ES module loader's listener on 'exit' (the warning about an unsettled top-level await). */
const isLoaderListener = (event, listener) => event === 'exit' && typeof listener === 'function' && listener.name === 'handleProcessExit'

/**
 * Is node's ES module loader still loading or running the main module? It
 * adds its `handleProcessExit` listener on 'exit' before the first
 * `--import` and removes it once the main module has run; a CommonJS main
 * run without `--import` has none (node's lib/internal/modules/run_main.js).
 * This is Node 20's case: there the first turn comes while the loader is
 * still reading the main module's files. Node 22 and 24 run an ES main
 * before the first turn and have no such listener then (both checked), so
 * nothing waits: the next turn, as with a CommonJS main.
 */
function mainLoading() {
  const listeners = process.listeners('exit')
  for (let i = 0; i < listeners.length; i++) if (isLoaderListener('exit', listeners[i])) return true
  return false
}

/**
 * Run `fn` once the main module has run: on the next turn (`keep`: an
 * immediate, which keeps the process for that one turn; else an unref'd
 * timer), unless node's ES module loader is then still at the main module
 * (with `-r` the loader starts after the preload: so it is asked again on
 * that turn). Then as soon as the loader removes its listener (process's
 * 'removeListener' event): in a microtask right after the main module, before
 * the event loop goes on, so before the main module's own first immediate;
 * MAIN_WAIT_MS at most (an unref'd timer). `fn` must not throw.
 */
function afterMain(fn, keep) {
  const next = () => (mainLoading() ? whenLoaded(fn) : fn())
  if (mainLoading()) whenLoaded(fn)
  else if (keep) setImmediate(next)
  else setTimeout(next, 0).unref()
}

function whenLoaded(fn) {
  let done = false
  const run = () => {
    if (done) return
    done = true
    process.removeListener('removeListener', onRemove)
    clearTimeout(timer)
    fn()
  }
  // A microtask: process.exit() removes the listener too, then exits before any microtask runs.
  const onRemove = (event, listener) => {
    if (isLoaderListener(event, listener)) queueMicrotask(run)
  }
  process.on('removeListener', onRemove)
  const timer = setTimeout(run, MAIN_WAIT_MS).unref()
}
let heapProfileModule = null

// lib/core/heap-profile.js loads when a monitor first needs it (its first
// threshold, a stall, a profile that starts at once), not with the first
// monitor: about 0.7 ms of start-up (benchmark/startup.js). Until then a
// monitor whose profile starts at its first threshold waits here, id ->
// config, and is attached when the module loads. Kept on the global object,
// like `live`: events may come through another copy of this module.
const kPendingProfiles = Symbol.for('oomguard.watch.pendingProfiles')
const pendingProfiles = globalThis[kPendingProfiles] || (globalThis[kPendingProfiles] = new Map())

function heapProfile() {
  if (heapProfileModule === null) heapProfileModule = require('./heap-profile.js')
  if (pendingProfiles.size > 0) {
    for (const [id, cfg] of pendingProfiles) heapProfileModule.attach(id, cfg)
    pendingProfiles.clear()
  }
  return heapProfileModule
}

// lib/core/heap-profile.js's per-thread state, there once any copy of it loaded.
const kHeapProfileState = Symbol.for('oomguard.heapProfile')

/**
 * heap-profile.js's attach(), or, for a profile that starts at the first
 * threshold while no copy of that module has loaded in this thread (so no
 * site exists yet), what that attach does then: register the monitor's
 * empty appendix with the native side now, so that its verdicts are kept
 * from its first record.
 */
function attachHeapProfile(id, cfg) {
  const loaded = heapProfileModule !== null || globalThis[kHeapProfileState] !== undefined
  if (loaded || cfg === undefined || cfg === null || cfg.start !== 'threshold' || typeof native.watchAppendix !== 'function') {
    heapProfile().attach(id, cfg)
    return
  }
  try {
    native.watchAppendix(id, [])
  } catch {}
  pendingProfiles.set(id, cfg)
}

// The block's layout, declared once in Rust (src/watch/block.rs): every
// slot index by name, and the limit sources the `source` slot encodes as
// 1 + their index (0: no sample yet). Set up by the first monitor (layout()).
let LAYOUT = null
let S = null
let SOURCES = null
// The V8 numbers this side writes: for each key k (process.memoryUsage()'s,
// and heapSizeLimit) the slot v8.<k>Bytes, in the block's order, which is
// also the order of an event's v8 object.
let V8_SLOTS = null
// `current`'s reader, compiled from the layout on first use (compileSample).
let readSample = null
let SEQ = -1
let LEVEL = -1
let STALLED = -1

function layout() {
  if (LAYOUT !== null) return
  const l = native.watchSlots()
  S = Object.fromEntries(l.slots)
  SOURCES = [null, ...l.sources]
  V8_SLOTS = l.slots.filter(([name]) => name.startsWith('v8.') && name.endsWith('Bytes')).map(([name, i]) => [name.slice('v8.'.length, -'Bytes'.length), i])
  LAYOUT = l
  SEQ = S.seq
  LEVEL = S.level
  // The stalled slot: 1/0, NaN without stall detection.
  STALLED = S.stalled
}

/**
 * Snapshot and validate the options (lib/core/options.js): own properties only,
 * each read once, into a frozen null-prototype object the native side gets.
 */
function validate(opts) {
  return optionsModule().watchConfig(opts)
}

// ---------------------------------------------------------------------------
// V8 numbers: the sampler thread cannot ask V8, so this side writes the
// latest ones into each monitor's block, often while any monitor is above
// its first threshold. The last-words line carries them and their age.

// id -> Monitor, for this thread. Kept on the global object so that a second
// copy of this module (a cleared require cache, test runners' module resets)
// shares it: the native side delivers every event of this thread through the
// dispatch function of whichever copy registered first.
const kLive = Symbol.for('oomguard.watch.live')
const live = globalThis[kLive] || (globalThis[kLive] = new Map())
let refresher = null
const REFRESH_CALM_MS = 5000
const REFRESH_ALERT_MS = 250

// Whether the last process.memoryUsage() failed (EMFILE: no descriptor left):
// said once per monitor until it works again.
let usageFailing = false

/**
 * Write the V8 numbers now (lib/core/usage.js: never throws; NaN where unknown)
 * into every monitor's block and return them by usage key. Where
 * process.memoryUsage() fails, each monitor says so once, as an 'error'.
 */
function refreshV8(deferHeapLimit = false) {
  const u = usageNow(deferHeapLimit)
  const now = Date.now()
  for (const m of live.values()) {
    const b = m._block
    for (const [key, i] of V8_SLOTS) b[i] = u[key]
    b[S['v8.timestampMs']] = now
  }
  if (u.error !== null && !usageFailing) {
    usageFailing = true
    for (const m of live.values()) report(m, 'ERR_OOMGUARD_V8', `process.memoryUsage() failed (${usageError(u.error)})`)
  } else if (u.error === null) {
    usageFailing = false
  }
  return u
}

function scheduleRefresh() {
  if (refresher !== null || live.size === 0) return
  let alert = false
  for (const m of live.values()) if (m._block[S.level] > 0) alert = true
  refresher = setTimeout(
    () => {
      refresher = null
      refreshV8()
      if (alert) refreshSites()
      scheduleRefresh()
    },
    alert ? REFRESH_ALERT_MS : REFRESH_CALM_MS,
  )
  refresher.unref()
}

// The heap profile's sites, refreshed while at or above the first threshold
// (lib/core/heap-profile.js bounds the rate and skips a read the limit would beat).
const levelOf = (id) => {
  const m = live.get(id)
  return m === undefined ? 0 : m._block[S.level]
}
const timeToLimitOf = (id) => {
  const m = live.get(id)
  return m === undefined ? null : nn(m._block[S.timeToLimitMs])
}
function refreshSites() {
  try {
    heapProfile().refresh(levelOf, timeToLimitOf)
  } catch {}
}

/** The heap profile's part of a threshold or stall event; never throws. */
function sitesFor(id, kind, e) {
  try {
    return heapProfile().onEvent(id, kind, e)
  } catch (err) {
    return { skipped: 'error', error: err && err.message ? String(err.message) : String(err), sites: [] }
  }
}

function restartRefresh() {
  if (refresher !== null) clearTimeout(refresher)
  refresher = null
  scheduleRefresh()
}

const nn = (x) => (x === x ? x : null)

// The messages of the sampler's error events, by the code it gives.
const ERROR_TEXT = {
  ERR_OOMGUARD_READ: (m) => `oomguard: reading memory failed: ${m}; keeping the last good sample and retrying`,
  ERR_OOMGUARD_LAST_WORDS: (m) => `oomguard: ${m}; the record still goes to stderr if enabled, and the file is tried again at the next record`,
  ERR_OOMGUARD_INTERNAL: (m) => `oomguard: ${m}; this is a bug, please report it; sampling goes on`,
  ERR_OOMGUARD_V8: (m) => `oomguard: ${m}; the V8 heap figures come from v8.getHeapStatistics() and the RSS is unknown until it works again; sampling goes on`,
}

/**
 * An 'error' on `m`, or a process warning without a listener. A listener's
 * own exception is the listener's (Node's convention, see the README).
 */
function report(m, code, message) {
  const err = new Error(ERROR_TEXT[code] ? ERROR_TEXT[code](message) : `oomguard: ${message}`)
  err.code = code
  if (m.listenerCount('error') > 0) m.emit('error', err)
  else process.emitWarning(err.message, { code: err.code })
}

// A normal exit closes this thread's monitors, so that a last-words file
// left while below every threshold is emptied (a clean shutdown must not
// leave a stale warning as its termination message). Registered once per
// thread, on the first monitor.
const kExitHook = Symbol.for('oomguard.watch.exitHook')
function closeAllOnExit() {
  if (globalThis[kExitHook]) return
  globalThis[kExitHook] = true
  process.on('exit', () => {
    for (const m of [...live.values()]) m.close()
  })
}

/**
 * The sampler's events for this thread. Nothing of ours may throw from here
 * into the host (an exception in a native callback is uncaught): a failure
 * of our own is this monitor's 'error' instead. A listener's own exception
 * is the listener's, as with any EventEmitter.
 */
function dispatch(id, kind, e) {
  const m = live.get(id)
  if (m === undefined) return
  let event
  try {
    const u = refreshV8()
    restartRefresh()
    if (kind !== 'error') event = eventOf(id, kind, e, u)
  } catch (err) {
    report(m, 'ERR_OOMGUARD_INTERNAL', `dispatching a '${kind}' event failed (${(err && err.message) || err})`)
    return
  }
  if (kind === 'error') report(m, e.code || 'ERR_OOMGUARD_READ', e.message)
  else m.emit(kind, event)
}

/** The object a 'limit', 'stall', 'stall-end', 'threshold' or 'recovered' event carries. */
function eventOf(id, kind, e, u) {
  const v8Numbers = {}
  for (const [key] of V8_SLOTS) v8Numbers[`${key}Bytes`] = nn(u[key])
  if (kind === 'limit') {
    return {
      previousLimitBytes: e.previousLimitBytes,
      limitBytes: e.limitBytes,
      source: e.source,
      level: e.level,
      ratio: e.ratio,
      basisBytes: e.basisBytes,
      headroomBytes: e.headroomBytes,
      timestampMs: e.timestampMs,
      heapSizeLimitBytes: e.heapSizeLimitBytes,
      heapLimit: e.heapLimit,
      diagnosis: e.diagnosis,
      v8: v8Numbers,
    }
  }
  if (kind === 'stall' || kind === 'stall-end') {
    const ev = stallEvent(e)
    if (kind === 'stall') ev.heapProfile = sitesFor(id, kind, e)
    return ev
  }
  const ev = {
    level: e.level,
    threshold: e.threshold,
    ratio: e.ratio,
    basisBytes: e.basisBytes,
    limitBytes: e.limitBytes,
    headroomBytes: e.headroomBytes,
    growthBytesPerSec: e.growthBytesPerSec,
    timeToLimitMs: e.timeToLimitMs,
    timestampMs: e.timestampMs,
    lastWords: e.lastWords,
    lastWordsError: e.lastWordsError,
    v8: v8Numbers,
  }
  if (kind === 'threshold') ev.heapProfile = sitesFor(id, kind, e)
  return ev
}

/**
 * A `stall` / `stall-end` event: how long, the charge-failure rate, the
 * pressure figures, and the verdict with the memory behind it.
 */
function stallEvent(e) {
  const s = e.stall
  return {
    verdict: 'stall',
    cause: s.cause,
    reason: s.reason,
    durationMs: s.durationMs,
    workingSetRatio: s.workingSetRatio,
    failuresPerSec: s.failuresPerSec,
    failureCounter: s.failureCounter,
    limitingCgroup: s.limitingCgroup,
    pressure: s.pressure === null ? null : { scope: s.pressure.scope, kind: s.pressure.kind, ratio: s.pressure.ratio, avg10: s.pressure.avg10 },
    refaultsPerSec: s.refaultsPerSec,
    decidedBy: s.decidedBy,
    ratio: e.ratio,
    basisBytes: e.basisBytes,
    limitBytes: e.limitBytes,
    timestampMs: e.timestampMs,
    lastWords: e.lastWords,
  }
}

const flag = (x) => (x === 1 ? true : x === 0 ? false : null)

// How `current` reads a slot, by name; any other slot is a number (NaN is
// null). `seq` and the v8.* slots (this side writes them) are no part of it.
const READ = Object.assign(Object.create(null), {
  level: (i) => `b[${i}]`,
  samples: (i) => `b[${i}]`,
  failing: (i) => `b[${i}] === 1`,
  source: (i) => `SOURCES[b[${i}]] ?? null`,
  stalled: (i) => `flag(b[${i}])`,
})

/**
 * `current`'s object, generated once from the layout: the properties in slot
 * order as an object literal (as fast as one written by hand, and no index
 * written twice).
 */
function compileSample() {
  const fields = []
  for (const [name, i] of LAYOUT.slots) {
    if (name === 'seq' || name.startsWith('v8.')) continue
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(name) || !Number.isInteger(i)) throw new Error(`oomguard: bad native block slot ${JSON.stringify(name)}`)
    fields.push(`${name}: ${READ[name] ? READ[name](i) : `nn(b[${i}])`}`)
  }
  return new Function('nn', 'flag', 'SOURCES', `return (b) => ({ ${fields.join(', ')} })`)(nn, flag, SOURCES)
}

function noop() {}

class Monitor extends EventEmitter {
  /**
   * `new Monitor(options)` is watch(options) without the listener: the same
   * snapshot and validation (lib/core/options.js), the same platform check.
   */
  constructor(options) {
    const config = validate(options)
    if (native === null && process.platform !== 'linux') {
      const err = new Error(`oomguard: watch() needs Linux (the kernel's memory cgroup); this is ${process.platform}`)
      err.code = 'ERR_OOMGUARD_UNSUPPORTED_PLATFORM'
      throw err
    }
    super()
    this.thresholds = Object.freeze(config.thresholds)
    this.basis = config.basis
    this._closed = false
    this._keepAlive = null
    this._poll = null
    // No last words without the addon (lib/core/poll.js).
    this._lastWordsPath = native === null ? null : (config.lastWordsPath ?? null)
    if (native === null) {
      // No addon (Linux): a JavaScript poll, with a lower precision (lib/core/poll.js).
      const { Poller } = require('./poll.js')
      this._block = null
      this._poll = new Poller(this, config)
      this._poll.start()
      return
    }
    layout()
    // The native side takes an absent section as off (null is not an object to it).
    this._id = native.watchStart({ ...config, stall: config.stall ?? undefined, onStall: config.onStall ?? undefined }, dispatch)
    this._block = native.watchBlock(this._id)
    live.set(this._id, this)
    attachHeapProfile(this._id, config.heapProfile)
    closeAllOnExit()
    // The heap limit (node:v8, ~2 ms) right after the caller's code runs on,
    // not in its start-up: a preloaded monitor does not delay the service
    // (an ES module main included: afterMain()).
    refreshV8(true)
    if (!heapLimitKnown()) afterMain(() => refreshV8(), true)
    restartRefresh()
  }

  /** Number of thresholds the basis is at or above (0 = below all). No I/O. */
  get level() {
    return this._poll === null ? this._block[LEVEL] : this._poll.level
  }

  /** True while stuck at the limit (see `stall`), false when not, null with `stall: false`. No I/O. */
  get stalled() {
    return this._poll === null ? flag(this._block[STALLED]) : null
  }

  /** True while at or above the highest threshold. */
  get critical() {
    return this.level === this.thresholds.length
  }

  /** The latest sample, read from memory the sampler thread writes. No I/O. */
  get current() {
    if (this._poll !== null) return { ...this._poll.sample }
    // Compiled on the first read, not when the first monitor starts (start-up time).
    if (readSample === null) readSample = compileSample()
    const b = this._block
    for (;;) {
      const seq = b[SEQ]
      if (seq % 2 === 1) continue // the sampler is writing; it takes nanoseconds
      const sample = readSample(b)
      if (b[SEQ] === seq) return sample
    }
  }

  get closed() {
    return this._closed
  }

  /**
   * The last-words file and whether this process owns its record: the
   * first monitor to open a file locks it (flock) for its process's life,
   * and only that process writes or empties it. `null` without a path.
   * `{ path, owner, holderPid, holderCommand }`; `owner: null` where the
   * path is not a regular file (each record opens it: a FIFO, a device).
   */
  get lastWordsFile() {
    const path = this._lastWordsPath
    if (path === null) return null
    const o = this._closed ? null : native.lastWordsOwnership(path)
    if (o === null) return { path, owner: null, holderPid: null, holderCommand: null }
    return { path, owner: o.owner, holderPid: o.holderPid, holderCommand: o.holderCommand }
  }

  /** Stop watching. Idempotent; joins the sampler thread if it was the last monitor. */
  close() {
    if (this._closed) return
    this._closed = true
    if (this._poll !== null) {
      this._poll.stop()
      this.unref()
      return
    }
    live.delete(this._id)
    if (!pendingProfiles.delete(this._id)) heapProfile().detach(this._id)
    native.watchStop(this._id)
    this.unref()
    if (live.size === 0 && refresher !== null) {
      clearTimeout(refresher)
      refresher = null
    }
  }

  /** Keep the process alive while this monitor runs (like a timer's ref()). */
  ref() {
    if (this._keepAlive === null && !this._closed) this._keepAlive = setInterval(noop, 2 ** 31 - 1)
    return this
  }

  /** Let the process exit with this monitor running (the default). */
  unref() {
    if (this._keepAlive !== null) clearInterval(this._keepAlive)
    this._keepAlive = null
    return this
  }

  hasRef() {
    return this._keepAlive !== null
  }
}

/**
 * Start a monitor. `watch(listener)` and `watch(options, listener)` attach
 * `listener` to 'threshold'.
 */
function watch(options, listener) {
  if (typeof options === 'function' && listener === undefined) {
    listener = options
    options = undefined
  }
  if (listener !== undefined && typeof listener !== 'function') throw optionsModule().invalidType('listener', 'a function', listener)
  const monitor = new Monitor(options)
  if (listener) monitor.on('threshold', listener)
  return monitor
}

module.exports = { watch, Monitor, samplerInfo: native ? native.samplerInfo : null, afterMain, mainLoading, MAIN_WAIT_MS }

/** Defaults, documented in the README (declared in lib/core/options.js). */
Object.defineProperty(module.exports, 'DEFAULTS', { enumerable: true, get: () => optionsModule().WATCH_DEFAULTS })
