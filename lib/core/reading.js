'use strict'
// A reading's shape, declared once in lib/core/slots.json (build.rs turns the
// same list into the native side's slot layout): the slot indexes by name,
// the V8 numbers the caller passes in, and the function that builds the
// result object from a filled Float64Array and describe()'s strings and
// lists. lib/core/metrics.js builds every reading with it on Linux and
// lib/core/portable.js off Linux, so both give the same object, key for key.

// Read, not required (start-up time: see lib/core/loader.js).
const DECL = JSON.parse(require('node:fs').readFileSync(require('node:path').join(__dirname, 'slots.json'), 'utf8'))

const NAMES = Object.freeze(DECL.slots.slice())
const SLOT = Object.create(null)
NAMES.forEach((name, i) => {
  SLOT[name] = i
})
const RAW_COUNT = SLOT['']
const RAW_START = NAMES.length

// The section the caller's numbers go to, and for each usage key k
// (process.memoryUsage()'s and heapSizeLimit) its slot, v8.<k>Bytes.
const INPUT = DECL.input
// Plain arrays, not frozen: getMemoryMetrics() reads them on every call.
const V8_INPUTS = NAMES.filter((n) => n.startsWith(`${INPUT}.`)).map((n) => [n.slice(INPUT.length + 1, -'Bytes'.length), SLOT[n]])

// Properties that come from describe() rather than from a slot: placed by
// the name of the slot they follow, else at the end of their section (by
// name, not position, so a slot added to lib/core/slots.json cannot misplace them).
const SHAPE_AFTER = {
  timestampMs: ['source: s.source', 'cgroup: s.cgroup'],
}
const SHAPE_END = {
  '': ['processes: s.processes', 'diagnoses: s.diagnoses'],
  stat: ['raw: raw(b, s.rawKeys)'],
  pressure: ['scope: s.pressureScope'],
  limitingCgroup: ['path: s.limitingCgroupPath'],
}

/**
 * Generate the object-building function from the slot names once, so the
 * property list lives in one place (lib/core/slots.json) and the result is an
 * object literal V8 can build quickly. Called as build(nn, flag, raw, b, s).
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
        fields.push(DECL.booleans.includes(full) ? `${key}: flag(b[${child.slot}])` : `${key}: nn(b[${child.slot}])`)
      } else {
        const inner = emit(child, full)
        fields.push(`${key}: b[${child.slot}] === 1 ? ${inner} : null`)
      }
      if (Object.hasOwn(SHAPE_AFTER, full)) fields.push(...SHAPE_AFTER[full])
    }
    if (Object.hasOwn(SHAPE_END, prefix)) fields.push(...SHAPE_END[prefix])
    return `{ ${fields.join(', ')} }`
  }
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
// Compiled on the first reading, not at require (start-up time).
let compiled = null
/** The object-building function, build(nn, flag, raw, b, s). */
const builder = () => compiled || (compiled = compileBuilder())

module.exports = { NAMES, SLOT, RAW_COUNT, RAW_START, INPUT, V8_INPUTS, builder, nn, flag, raw }
