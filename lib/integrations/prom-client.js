'use strict'
// registerPromClient(): the families of prometheus() as prom-client metrics,
// in the spirit of prom-client's collectDefaultMetrics(). Every family of one
// scrape reads the same getMemoryMetrics() snapshot: the first family asked
// takes it, the others reuse it, and it is dropped once the scrape's
// synchronous pass is over (a microtask), so the next scrape reads afresh.
//
// prom-client is an optional peer dependency: it is required here only when
// no `options.register` is given (to use its global registry), never by
// require('oomguard'). The metric objects are plain objects speaking the
// registry's protocol (name, help, type, aggregator, get(), reset()).

const core = require('../core/metrics.js')
const { invalidType, metricsConfig } = require('../core/options.js')
const { familyDefs, collect, prefixOption, readOptions } = require('./prometheus.js')

function loadPromClient() {
  try {
    return require('prom-client')
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND' && /'prom-client'/.test(e.message)) {
      const err = new Error(
        "oomguard: registerPromClient() without options.register uses prom-client's global registry, but prom-client is not installed (npm install prom-client), or pass options.register",
      )
      err.code = 'ERR_OOMGUARD_PEER_MISSING'
      err.cause = e
      throw err
    }
    throw e
  }
}

function isRegistry(r) {
  return r !== null && typeof r === 'object' && typeof r.registerMetric === 'function' && typeof r.getSingleMetric === 'function' && typeof r.removeSingleMetric === 'function'
}

/** One family as a prom-client registry sees a metric. */
class Family {
  constructor(def, snapshot) {
    // `name` is public and prom-client may rewrite it (OpenMetrics registries
    // drop a counter's `_total`); `key` is what it was registered under.
    this.name = def.name
    this.key = def.name
    this.help = def.help
    this.type = def.type
    this.labelNames = def.labels
    this.aggregator = def.aggregator
    this._snapshot = snapshot
  }

  get() {
    const family = this._snapshot().get(this.key)
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values: family.values.map((v) => ({ labels: { ...v.labels }, value: v.value })),
      aggregator: this.aggregator,
    }
  }

  /** registry.resetMetrics() calls this: the values are the kernel's, nothing to reset. */
  reset() {}
}

/**
 * Register the memory metrics on a prom-client registry (default: prom-client's
 * global `register`). Options: `register`, `prefix` (default `oomguard_`),
 * `monitor` (a watch() Monitor), `root` (passed to getMemoryMetrics()).
 * Returns `{ names, unregister() }`.
 */
function registerPromClient(options) {
  // One snapshot of the options (lib/core/options.js): own properties, read once.
  const o = metricsConfig(options)
  const read = readOptions(o)
  const prefix = prefixOption(o.prefix)
  const monitor = o.monitor
  let register = o.register
  if (register === undefined || register === null) {
    register = loadPromClient().register
  } else if (!isRegistry(register)) {
    throw invalidType('options.register', 'a prom-client Registry', register)
  }

  const defs = familyDefs(prefix, monitor !== undefined)
  for (const d of defs) {
    if (register.getSingleMetric(d.name) !== undefined) {
      const err = new Error(`oomguard: a metric named ${d.name} is already registered on this registry (registerPromClient() called twice? unregister() the first, or give another options.prefix)`)
      err.code = 'ERR_OOMGUARD_DUPLICATE_METRIC'
      throw err
    }
  }

  let current = null
  const snapshot = () => {
    if (current === null) {
      const m = core.getMemoryMetrics(null, read)
      current = new Map(collect(defs, m, monitor).map((f) => [f.name, f]))
      queueMicrotask(() => {
        current = null
      })
    }
    return current
  }

  const families = defs.map((d) => new Family(d, snapshot))
  const done = []
  try {
    for (const f of families) {
      register.registerMetric(f)
      done.push(f)
    }
  } catch (e) {
    for (const f of done) if (register.getSingleMetric(f.key) === f) register.removeSingleMetric(f.key)
    throw e
  }

  let registered = true
  return {
    names: defs.map((d) => d.name),
    /** Remove the metrics from the registry. Idempotent. */
    unregister() {
      if (!registered) return
      registered = false
      for (const f of families) if (register.getSingleMetric(f.key) === f) register.removeSingleMetric(f.key)
    },
  }
}

module.exports = { registerPromClient }
