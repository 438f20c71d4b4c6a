'use strict'
// getMemoryMetrics(): validates input, lets the native side fill a reused
// Float64Array (numbers) and builds the result object here. Building it in
// JavaScript is several times cheaper than creating it property by property
// through N-API.

const native = require('./native.js')
const { RAW_START, V8_INPUTS, builder, nn, flag, raw } = require('./reading.js')
const { usageNow, heapLimit, usageError } = require('./usage.js')

// Loaded on first use, not at require (start-up time): node:v8 for the heap
// limit, lib/core/options.js for options and errors, and the readers without the
// addon (lib/core/plain.js on Linux, lib/core/portable.js elsewhere).
const options = () => require('./options.js')
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
    this.build = builder()
    // Without the addon, on Linux: the same files read from JavaScript.
    this.plain = native === null ? plainReader(root) : null
  }

  /** Fill the buffer; the V8 slots must have been written. Returns the shape. */
  sample() {
    if (this.plain !== null) return this.plain.read(this.buf, plainDiagnoses)
    const generation = native.sample(this.buf, this.root)
    if (this.shape === null || this.shape.generation !== generation) {
      this.shape = freezeShape(native.describe(this.root))
    }
    return this.shape
  }

  read() {
    const shape = this.sample()
    return this.build(nn, flag, raw, this.buf, shape)
  }
}

function plainReader(root) {
  const { PlainReader } = require('./plain.js')
  return new PlainReader(root)
}

// NATIVE_UNAVAILABLE, with the loader's reason; NO_MEMORY_CGROUP where no
// memory cgroup is found; CGROUP_FILE_UNREADABLE for each file that could
// not be read (lib/core/diagnoses.json).
let plainLists = null
function plainDiagnoses(inCgroup, unreadable) {
  const { nativeUnavailable, noMemoryCgroup, fileUnreadable } = require('./diagnoses.json')
  const { declaredDiagnosis } = require('./portable.js')
  if (plainLists === null) {
    const { status } = require('./loader.js')
    const unavailable = declaredDiagnosis(nativeUnavailable, nativeUnavailable.message.replace('{reason}', status.reason))
    plainLists = [Object.freeze([unavailable, declaredDiagnosis(noMemoryCgroup, noMemoryCgroup.message)]), Object.freeze([unavailable])]
  }
  const list = plainLists[inCgroup ? 1 : 0]
  if (unreadable.length === 0) return list
  const files = unreadable.map(([file, reason]) => declaredDiagnosis(fileUnreadable, fileUnreadable.message.replace('{path}', file).replace('{reason}', reason), file))
  return Object.freeze([...list, ...files])
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
// in slot order (lib/core/slots.json's v8 section).
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
const readsAreOwn = new Function(
  'OP',
  `return function readsAreOwn(o) {
  const p = Object.getPrototypeOf(o)
  return p === null || (p === OP && ${USAGE_KEYS.map((k) => `OP.${k} === undefined`).join(' && ')})
}`,
)(OP)

/** Validate and store each usage key (usageValue), own properties only unless `own` says every read is. */
const readUsage = new Function(
  'usageValue',
  'has',
  `return function readUsage(usage, own) {
  ${USAGE_KEYS.map((k, i) => `usageValue(${i}, '${k}', own || has(usage, '${k}') ? usage.${k} : undefined)`).join('\n  ')}
}`,
)(usageValue, Object.hasOwn)

function usageValue(i, key, v) {
  if (v === undefined) {
    v = i === HEAP_LIMIT ? heapLimit() : NaN
  } else if (typeof v !== 'number') {
    throw options().invalidType(`usage.${key}`, 'a number of bytes', v)
  } else if (!(v >= 0) || v === Infinity) {
    throw options().outOfRange(`usage.${key}`, 'a finite, non-negative number of bytes', v)
  }
  usageScratch[i] = v
}

// What process.memoryUsage() threw in the current call (null: nothing).
let usageFailure = null

/**
 * The reading with the USAGE_UNREADABLE diagnosis added (lib/core/diagnoses.json):
 * the V8 numbers it lacks are null, and it says why.
 */
function withUsageFailure(reading, err) {
  if (usageDiagnosis === null) return reading // the first call was already out of descriptors
  const d = usageDiagnosis(usageError(err))
  return { ...reading, diagnoses: Object.freeze([...reading.diagnoses, d]) }
}
// Loaded by the first getMemoryMetrics() call, not at require (start-up
// time), and not when it is needed: with no descriptor left, require() fails too.
let usageDiagnosis = null
function loadUsageDiagnosis() {
  try {
    const { usageUnreadable } = require('./diagnoses.json')
    const { declaredDiagnosis } = require('./portable.js')
    usageDiagnosis = (error) => declaredDiagnosis(usageUnreadable, usageUnreadable.message.replace('{error}', error))
  } catch {}
}

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
    throw options().invalidType('usage', 'an object such as process.memoryUsage()', usage)
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
 * @param {import('../../index').MemoryUsageInput | null} [usage] defaults to `process.memoryUsage()`
 * @param {import("../../index").MetricsOptions | null} [opts]
 * @returns {import('../../index').MemoryMetrics}
 */
function getMemoryMetrics(usage, opts) {
  const root = opts === undefined || opts === null ? undefined : options().rootOption(opts)
  if (usageDiagnosis === null) loadUsageDiagnosis()
  let reading
  if (native === null && process.platform !== 'linux') {
    reading = require('./portable.js').portableMetrics(usageValues(usage))
  } else {
    const sampler = samplerFor(root)
    writeUsage(sampler.buf, usage)
    reading = sampler.read()
  }
  // process.memoryUsage() failed (no descriptor left): what could be read, and why the rest is null.
  return usageFailure === null ? reading : withUsageFailure(reading, usageFailure)
}

module.exports = { getMemoryMetrics }
