'use strict'
// watch() without the native addon, on Linux: the monitor polls
// getMemoryMetrics() (lib/core/plain.js: the same kernel files, read from
// JavaScript) on a timer of the event loop, with the same levels, events
// and `current` as the native sampler, at a lower precision:
//
// - every `maxIntervalMs` while the basis is more than 5% of the limit below
//   the next threshold up, else every max(`minIntervalMs`, 100 ms): a
//   timer, so a busy or blocked event loop delays it;
// - no last words (a record that survives SIGKILL is written by the sampler
//   thread): events carry `lastWords: null` and `lastWordsError` saying why;
// - no stall detection (`stalled` is null) and no kernel wake-ups;
// - the growth rate is the slope between the last two samples.

const v8 = () => require('node:v8')

const MIN_POLL_MS = 100
const NEAR = 0.05
const NO_LAST_WORDS = 'no last words without the native addon (a JavaScript timer cannot write a record that survives SIGKILL)'

/** The basis a monitor measures, from a reading. */
const BASIS = {
  workingSet: (r) => r.basisBytes,
  usage: (r) => r.usageBytes ?? r.basisBytes,
  rss: (r) => r.rssBytes,
}

function v8Numbers() {
  const u = process.memoryUsage()
  return {
    rssBytes: u.rss,
    heapTotalBytes: u.heapTotal,
    heapUsedBytes: u.heapUsed,
    externalBytes: u.external,
    arrayBuffersBytes: u.arrayBuffers,
    heapSizeLimitBytes: v8().getHeapStatistics().heap_size_limit,
  }
}

// `current` before any good sample: every number null.
const EMPTY = Object.freeze({
  level: 0,
  timestampMs: null,
  ratio: null,
  basisBytes: null,
  limitBytes: null,
  headroomBytes: null,
  growthBytesPerSec: null,
  timeToLimitMs: null,
  usageBytes: null,
  workingSetBytes: null,
  rssBytes: null,
  source: null,
  samples: 0,
  intervalMs: null,
  failing: false,
  stalled: null,
  stallDurationMs: null,
  stalledSeconds: null,
})

class Poller {
  /** `monitor`: the Monitor to drive (its emit); `config`: lib/core/options.js's watchConfig(). */
  constructor(monitor, config) {
    this.monitor = monitor
    this.config = config
    this.timer = null
    this.level = 0
    this.samples = 0
    this.failing = false
    this.intervalMs = null
    this.last = null // the previous good sample: { t, basis }
    this.sample = EMPTY
    this.limit = null
    this.read = require('./metrics.js').getMemoryMetrics
  }

  /** Take the first sample now (so `current` is valid at once), then poll. */
  start() {
    this.poll(true)
  }

  stop() {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  poll(first = false) {
    this.timer = null
    const m = this.monitor
    if (m.closed) return
    const { thresholds, hysteresis, minIntervalMs, maxIntervalMs, root } = this.config
    let r = null
    let error = null
    try {
      r = this.read(null, root === undefined ? undefined : { root })
    } catch (err) {
      error = err
    }
    const basis = r === null ? null : BASIS[this.config.basis](r)
    const limit = r === null ? null : r.limitBytes
    const now = Date.now()
    if (typeof basis !== 'number' || typeof limit !== 'number' || !(limit > 0)) {
      this.schedule(maxIntervalMs)
      if (this.failing) return
      this.failing = true
      // The files that could not be read, as the reading's diagnoses name them.
      const why = error
        ? error.message
        : r.diagnoses
            .filter((d) => d.code === 'CGROUP_FILE_UNREADABLE')
            .map((d) => d.message)
            .join(' ') || `no ${this.config.basis} or limit could be read`
      const err = new Error(`oomguard: reading memory failed: ${why}; keeping the last good sample and retrying`)
      err.code = 'ERR_OOMGUARD_READ'
      if (this.sample) this.sample = { ...this.sample, failing: true }
      else this.sample = { ...EMPTY, timestampMs: now, failing: true }
      // Once, and after watch() returns (its listener attached), as the native error is.
      const emit = () => {
        if (m.closed) return
        if (m.listenerCount('error') > 0) m.emit('error', err)
        else process.emitWarning(err.message, { code: err.code })
      }
      if (first) process.nextTick(emit)
      else emit()
      return
    }
    this.failing = false
    this.samples++
    const ratio = basis / limit
    let growth = null
    if (this.last !== null && now > this.last.t) growth = ((basis - this.last.basis) * 1000) / (now - this.last.t)
    this.last = { t: now, basis }
    const headroom = limit - basis
    const timeToLimit = growth !== null && growth > 0 ? (Math.max(0, headroom) / growth) * 1000 : null
    const events = []
    if (this.limit !== null && limit !== this.limit && !first) events.push(['limit', { previousLimitBytes: this.limit, limitBytes: limit, source: r.source }])
    this.limit = limit
    let level = this.level
    while (level < thresholds.length && ratio >= thresholds[level]) {
      level++
      events.push(['threshold', level])
    }
    while (level > 0 && ratio < thresholds[level - 1] - hysteresis) {
      events.push(['recovered', level - 1])
      level--
    }
    this.level = level
    const next = level < thresholds.length ? thresholds[level] : null
    this.intervalMs = next === null || next - ratio <= NEAR ? Math.max(minIntervalMs, MIN_POLL_MS) : maxIntervalMs
    // What the sample and a threshold event both give, in the native order.
    const figures = { ratio, basisBytes: basis, limitBytes: limit, headroomBytes: headroom, growthBytesPerSec: growth, timeToLimitMs: timeToLimit }
    this.sample = {
      level,
      timestampMs: now,
      ...figures,
      usageBytes: r.usageBytes,
      workingSetBytes: r.workingSetBytes,
      rssBytes: r.rssBytes,
      source: r.source,
      samples: this.samples,
      intervalMs: this.intervalMs,
      failing: false,
      stalled: null,
      stallDurationMs: null,
      stalledSeconds: null,
    }
    this.schedule(this.intervalMs)
    if (events.length === 0) return
    const v8now = v8Numbers()
    // Emitted after watch() returns (listeners are attached by then), as the native events are.
    const emit = () => {
      for (const [kind, x] of events) {
        if (m.closed) return
        if (kind === 'limit') {
          m.emit('limit', {
            ...x,
            level,
            ratio,
            basisBytes: basis,
            headroomBytes: headroom,
            timestampMs: now,
            heapSizeLimitBytes: v8now.heapSizeLimitBytes,
            heapLimit: null,
            diagnosis: null,
            v8: v8now,
          })
        } else {
          const i = kind === 'threshold' ? x - 1 : x
          m.emit(kind, {
            level: x,
            threshold: thresholds[i],
            ...figures,
            timestampMs: now,
            lastWords: null,
            lastWordsError: this.config.lastWordsPath !== undefined ? NO_LAST_WORDS : null,
            v8: v8now,
          })
        }
      }
    }
    if (first) process.nextTick(emit)
    else emit()
  }

  schedule(ms) {
    if (this.monitor.closed) return
    this.timer = setTimeout(() => this.poll(), ms)
    this.timer.unref()
  }
}

module.exports = { Poller, MIN_POLL_MS }
