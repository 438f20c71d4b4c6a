'use strict'
// getMemoryMetrics(): validates input, lets the native side fill a reused
// Float64Array (numbers) and builds the result object here. Building it in
// JavaScript is several times cheaper than creating it property by property
// through N-API.

const native = require('./native.js')
const { portableMetrics } = require('./portable.js')
const { NAMES, RAW_START, V8_INPUTS, build, nn, flag, raw } = require('./reading.js')
const { rootOption, invalidType, outOfRange } = require('./options.js')
const { usageNow, heapLimit, usageError } = require('./usage.js')
const { usageUnreadable } = require('./diagnoses.json')

// The slot layout is lib/slots.json's; the addon was built from it. One
// built from another version of it would fill slots this side misnames.
if (native && native.slotNames().join('\n') !== NAMES.join('\n')) {
  throw new Error('oomguard: the native addon was built from another lib/slots.json; rebuild it (npm run build)')
}
const RAW_CAPACITY = 256

function freezeShape(shape) {
  if (shape.cgroup) Object.freeze(shape.cgroup)
  for (const d of shape.diagnoses) Object.freeze(d)
  Object.freeze(shape.diagnoses)
  Object.freeze(shape.rawKeys)
  if (shape.processes) {
    for (const p of shape.processes.largest) Object.freeze(p)
    Object.freeze(shape.processes.largest)
    Object.freeze(shape.processes)
  }
  return Object.freeze(shape)
}

/** Per-root state: the slot buffer and the cached shape. */
class Sampler {
  constructor(root) {
    this.root = root
    this.buf = new Float64Array(RAW_START + RAW_CAPACITY)
    this.shape = null
  }

  /** Fill the buffer; the V8 slots must have been written. Returns the shape. */
  sample() {
    const generation = native.sample(this.buf, this.root)
    if (this.shape === null || this.shape.generation !== generation) {
      this.shape = freezeShape(native.describe(this.root))
    }
    return this.shape
  }

  read() {
    const shape = this.sample()
    return build(nn, flag, raw, this.buf, shape)
  }
}

const samplers = new Map()
function samplerFor(root) {
  let s = samplers.get(root)
  if (s === undefined) {
    if (samplers.size >= 16) samplers.delete(samplers.keys().next().value)
    s = new Sampler(root)
    samplers.set(root, s)
  }
  return s
}

// The caller's V8 numbers: process.memoryUsage()'s keys and heapSizeLimit,
// in slot order (lib/slots.json's v8 section).
const USAGE_KEYS = V8_INPUTS.map(([key]) => key)
// The one taken from v8.getHeapStatistics() when the caller has none.
const HEAP_LIMIT = USAGE_KEYS.indexOf('heapSizeLimit')
const usageScratch = new Float64Array(USAGE_KEYS.length)

const OP = Object.prototype

/**
 * True when a plain read of the usage keys can only find the object's own
 * properties: its prototype is null, or Object.prototype without any of them
 * (not polluted). Much cheaper than an Object.hasOwn() call per key and read.
 * Each key's read is written out, generated once from USAGE_KEYS (as fast as
 * code written by hand, and no key written twice).
 */
// eslint-disable-next-line no-new-func
const readsAreOwn = new Function('OP', `return function readsAreOwn(o) {
  const p = Object.getPrototypeOf(o)
  return p === null || (p === OP && ${USAGE_KEYS.map((k) => `OP.${k} === undefined`).join(' && ')})
}`)(OP)

/** Validate and store each usage key (usageValue), own properties only unless `own` says every read is. */
// eslint-disable-next-line no-new-func
const readUsage = new Function('usageValue', 'has', `return function readUsage(usage, own) {
  ${USAGE_KEYS.map((k, i) => `usageValue(${i}, '${k}', own || has(usage, '${k}') ? usage.${k} : undefined)`).join('\n  ')}
}`)(usageValue, Object.hasOwn)

function usageValue(i, key, v) {
  if (v === undefined) {
    v = i === HEAP_LIMIT ? heapLimit() : NaN
  } else if (typeof v !== 'number') {
    throw invalidType(`usage.${key}`, 'a number of bytes', v)
  } else if (!(v >= 0) || v === Infinity) {
    throw outOfRange(`usage.${key}`, 'a finite, non-negative number of bytes', v)
  }
  usageScratch[i] = v
}

// What process.memoryUsage() threw in the current call (null: nothing).
let usageFailure = null

/**
 * The reading with the USAGE_UNREADABLE diagnosis added (lib/diagnoses.json):
 * the V8 numbers it lacks are null, and it says why. Its other fields are a
 * diagnosis's, none of which applies.
 */
function withUsageFailure(reading, err) {
  const d = Object.freeze({
    code: usageUnreadable.code,
    severity: usageUnreadable.severity,
    message: usageUnreadable.message.replace('{error}', usageError(err)),
    ...Object.fromEntries(DIAGNOSIS_KEYS.map((k) => [k, null])),
  })
  return { ...reading, diagnoses: Object.freeze([...reading.diagnoses, d]) }
}
// A diagnosis's fields besides code, severity and message (the generated Diagnosis type's).
const DIAGNOSIS_KEYS = Object.keys(require('./portable.js').NO_MEMORY_CGROUP).filter((k) => !['code', 'severity', 'message'].includes(k))

/**
 * Validate the caller's V8 numbers (or take process.memoryUsage()) and
 * return them in USAGE_KEYS order, NaN where unknown. Reuses one array.
 * Own properties only, each read once: a polluted Object.prototype is not
 * the caller's number.
 */
function usageValues(usage) {
  usageFailure = null
  if (usage === undefined || usage === null) {
    // Our own numbers: NaN where process.memoryUsage() failed, nothing to validate.
    const u = usageNow()
    if (u.error !== null) usageFailure = u.error
    for (let i = 0; i < USAGE_KEYS.length; i++) usageScratch[i] = u[USAGE_KEYS[i]]
    return usageScratch
  }
  if (typeof usage !== 'object' || Array.isArray(usage)) {
    throw invalidType('usage', 'an object such as process.memoryUsage()', usage)
  }
  readUsage(usage, readsAreOwn(usage))
  return usageScratch
}

/** Write the caller's V8 numbers into the input slots, validating each. */
function writeUsage(buf, usage) {
  const v = usageValues(usage)
  for (let i = 0; i < V8_INPUTS.length; i++) buf[V8_INPUTS[i][1]] = v[i]
}

/**
 * Read the process's memory as the kernel counts it and combine it with V8's numbers.
 * @param {import('../index').MemoryUsageInput | null} [usage] defaults to `process.memoryUsage()`
 * @param {import('../index').MetricsOptions | null} [options]
 * @returns {import('../index').MemoryMetrics}
 */
function getMemoryMetrics(usage, options) {
  const root = rootOption(options)
  let reading
  if (native === null) {
    reading = portableMetrics(usageValues(usage))
  } else {
    const sampler = samplerFor(root)
    writeUsage(sampler.buf, usage)
    reading = sampler.read()
  }
  // process.memoryUsage() failed (no descriptor left): what could be read, and why the rest is null.
  return usageFailure === null ? reading : withUsageFailure(reading, usageFailure)
}

module.exports = { getMemoryMetrics }
