'use strict'
// getMemoryMetrics(): validates input, lets the native side fill a reused
// Float64Array (numbers) and builds the result object here. Building it in
// JavaScript is several times cheaper than creating it property by property
// through N-API.

const v8 = require('node:v8')
const native = require('./native.js')
const { portableMetrics } = require('./portable.js')
const { rootOption, invalidType, outOfRange } = require('./options.js')

const NAMES = native ? native.slotNames() : []
const SLOT = Object.create(null)
NAMES.forEach((name, i) => {
  SLOT[name] = i
})
const RAW_COUNT = SLOT['']
const RAW_START = NAMES.length
const RAW_CAPACITY = 256

// Which V8 field goes to which slot, and its name in the caller's object.
const V8_INPUTS = [
  ['rss', SLOT['v8.rssBytes']],
  ['heapTotal', SLOT['v8.heapTotalBytes']],
  ['heapUsed', SLOT['v8.heapUsedBytes']],
  ['external', SLOT['v8.externalBytes']],
  ['arrayBuffers', SLOT['v8.arrayBuffersBytes']],
  ['heapSizeLimit', SLOT['v8.heapSizeLimitBytes']],
]

// Properties that come from describe() rather than from a slot: placed by
// the name of the slot they follow, else at the end of their section (by
// name, not position, so a slot added in src/napi/slots.rs cannot misplace them).
const SHAPE_AFTER = {
  timestampMs: ['source: s.source', 'cgroup: s.cgroup'],
}
const SHAPE_END = {
  '': ['processes: s.processes', 'diagnoses: s.diagnoses'],
  stat: ['raw: raw(b, s.rawKeys)'],
  pressure: ['scope: s.pressureScope'],
}
// Slots that hold 1/0 for true/false (NaN: null).
const BOOLEAN_SLOTS = ['stalled']

/**
 * Generate the object-building function from the slot names once, so the
 * property list lives in one place (the native slot table) and the result is
 * an object literal V8 can build quickly.
 */
function compileBuilder() {
  const tree = { children: new Map(), slot: -1 }
  NAMES.forEach((name, i) => {
    if (name === '') return
    let node = tree
    for (const part of name.split('.')) {
      if (!node.children.has(part)) node.children.set(part, { children: new Map(), slot: -1 })
      node = node.children.get(part)
    }
    node.slot = i
  })
  const emit = (node, prefix) => {
    const fields = []
    for (const [key, child] of node.children) {
      const full = prefix ? `${prefix}.${key}` : key
      if (child.children.size === 0) {
        fields.push(BOOLEAN_SLOTS.includes(full) ? `${key}: flag(b[${child.slot}])` : `${key}: nn(b[${child.slot}])`)
      } else {
        const inner = emit(child, full)
        fields.push(`${key}: b[${child.slot}] === 1 ? ${inner} : null`)
      }
      if (Object.hasOwn(SHAPE_AFTER, full)) fields.push(...SHAPE_AFTER[full])
    }
    if (Object.hasOwn(SHAPE_END, prefix)) fields.push(...SHAPE_END[prefix])
    return `{ ${fields.join(', ')} }`
  }
  // eslint-disable-next-line no-new-func
  return new Function('nn', 'flag', 'raw', 'b', 's', `return ${emit(tree, '')}`)
}

const nn = (x) => (x === x ? x : null) // NaN is null
const flag = (x) => (x === 1 ? true : x === 0 ? false : null)
function raw(b, keys) {
  const out = {}
  const n = Math.min(b[RAW_COUNT], keys.length)
  for (let i = 0; i < n; i++) out[keys[i]] = nn(b[RAW_START + i])
  return out
}
const build = native ? compileBuilder() : null

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

let heapSizeLimit = 0
function currentHeapSizeLimit() {
  // Fixed at start-up (flags, cgroup): read it once.
  if (heapSizeLimit === 0) heapSizeLimit = v8.getHeapStatistics().heap_size_limit
  return heapSizeLimit
}

const USAGE_KEYS = ['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers', 'heapSizeLimit']
const usageScratch = new Float64Array(USAGE_KEYS.length)

const OP = Object.prototype

/**
 * True when a plain read of the usage keys can only find the object's own
 * properties: its prototype is null, or Object.prototype without any of them
 * (not polluted). Much cheaper than six Object.hasOwn() calls per read.
 */
function readsAreOwn(o) {
  const p = Object.getPrototypeOf(o)
  return p === null || (p === OP && OP.rss === undefined && OP.heapTotal === undefined && OP.heapUsed === undefined &&
    OP.external === undefined && OP.arrayBuffers === undefined && OP.heapSizeLimit === undefined)
}

function usageValue(i, key, v) {
  if (v === undefined) {
    v = i === 5 ? currentHeapSizeLimit() : NaN
  } else if (typeof v !== 'number') {
    throw invalidType(`usage.${key}`, 'a number of bytes', v)
  } else if (!(v >= 0) || v === Infinity) {
    throw outOfRange(`usage.${key}`, 'a finite, non-negative number of bytes', v)
  }
  usageScratch[i] = v
}

/**
 * Validate the caller's V8 numbers (or take process.memoryUsage()) and
 * return them in USAGE_KEYS order, NaN where unknown. Reuses one array.
 * Own properties only, each read once: a polluted Object.prototype is not
 * the caller's number.
 */
function usageValues(usage) {
  if (usage === undefined || usage === null) {
    usage = process.memoryUsage()
  } else if (typeof usage !== 'object' || Array.isArray(usage)) {
    throw invalidType('usage', 'an object such as process.memoryUsage()', usage)
  }
  const own = readsAreOwn(usage)
  const has = Object.hasOwn
  usageValue(0, 'rss', own || has(usage, 'rss') ? usage.rss : undefined)
  usageValue(1, 'heapTotal', own || has(usage, 'heapTotal') ? usage.heapTotal : undefined)
  usageValue(2, 'heapUsed', own || has(usage, 'heapUsed') ? usage.heapUsed : undefined)
  usageValue(3, 'external', own || has(usage, 'external') ? usage.external : undefined)
  usageValue(4, 'arrayBuffers', own || has(usage, 'arrayBuffers') ? usage.arrayBuffers : undefined)
  usageValue(5, 'heapSizeLimit', own || has(usage, 'heapSizeLimit') ? usage.heapSizeLimit : undefined)
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
  if (native === null) return portableMetrics(usageValues(usage))
  const sampler = samplerFor(root)
  writeUsage(sampler.buf, usage)
  return sampler.read()
}

module.exports = { getMemoryMetrics, rootOption, invalidType, outOfRange, SLOT, RAW_START, Sampler }
