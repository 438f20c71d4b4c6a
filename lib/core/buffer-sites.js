'use strict'
// Where the Buffers came from: sampled allocation sites of Buffer backing
// stores, which V8's sampling heap profiler cannot see (it samples the small
// JavaScript wrapper, not the memory outside the heap behind it).
//
// Buffer's allocating functions (alloc, allocUnsafe, allocUnsafeSlow, from,
// concat) are wrapped on the Buffer object itself, which node's own modules
// call too (fs.readFile's buffers, zlib's concatenated output). Sampling is
// by bytes, as V8's is: every `intervalBytes` of Buffer memory on average
// (exponential gaps), one allocation's JavaScript stack is taken and the
// Buffer is followed with a FinalizationRegistry until it is collected. A
// sample of `size` bytes stands for size / (1 - e^(-size/interval)) bytes,
// V8's own scaling, so the live estimate per site is unbiased.
//
// Not seen: backing stores made in C++ (a socket's or a file stream's
// chunks, node::Buffer::New in addons), `new ArrayBuffer`/typed arrays, and
// code that kept a reference to a Buffer function before the wrap.
//
// The live samples are given as a tree of the inspector's profile shape
// (callFrame, selfSize, children), so lib/core/heap-profile.js grafts it
// under the V8 profile's root and ranks both together.

const kState = Symbol.for('oomguard.bufferSites')
const state =
  globalThis[kState] ||
  (globalThis[kState] = {
    on: false,
    intervalBytes: 0,
    countdown: 0,
    originals: null, // name -> the function wrapped
    wrappers: null, // name -> our wrapper (to unwrap only what is still ours)
    live: new Map(), // token -> { frames, bytes }
    registry: null,
    nextToken: 1,
    depth: 0,
    sampledAllocations: 0,
  })

/** Frames kept per sample. */
const MAX_FRAMES = 12
const WRAPPED = ['alloc', 'allocUnsafe', 'allocUnsafeSlow', 'from', 'concat']

/** An exponential gap with mean `interval` (V8's sampler draws its steps the same way). */
const nextGap = (interval) => Math.max(1, Math.round(-Math.log(1 - Math.random()) * interval))

function callSites(_, sites) {
  return sites
}

/** This allocation's JavaScript stack, innermost first, below `above` (our wrapper). */
function stackBelow(above) {
  const prepare = Error.prepareStackTrace
  const limit = Error.stackTraceLimit
  const holder = {}
  let sites = []
  try {
    Error.prepareStackTrace = callSites
    Error.stackTraceLimit = MAX_FRAMES
    Error.captureStackTrace(holder, above)
    sites = Array.isArray(holder.stack) ? holder.stack : []
  } catch {
    sites = []
  } finally {
    Error.prepareStackTrace = prepare
    Error.stackTraceLimit = limit
  }
  const frames = []
  for (const s of sites) {
    try {
      frames.push({
        functionName: s.getFunctionName() || '(anonymous)',
        url: s.getFileName() || '',
        // The inspector's callFrame counts lines and columns from 0.
        lineNumber: (s.getLineNumber() || 0) - 1,
        columnNumber: (s.getColumnNumber() || 0) - 1,
      })
    } catch {}
  }
  return frames
}

function record(buf, wrapper) {
  const size = buf.byteLength
  state.countdown -= size
  if (state.countdown > 0) return
  const interval = state.intervalBytes
  state.countdown = nextGap(interval)
  const frames = stackBelow(wrapper)
  if (frames.length === 0) return
  const token = state.nextToken++
  state.live.set(token, { frames, bytes: size / (1 - Math.exp(-size / interval)) })
  state.sampledAllocations += 1
  try {
    state.registry.register(buf, token)
  } catch {
    state.live.delete(token)
  }
}

function wrap(name, original) {
  const wrapper = {
    [name](...args) {
      // Buffer.concat and Buffer.from call Buffer.allocUnsafe: the outermost
      // call is the allocation, counted once.
      state.depth += 1
      let out
      try {
        out = Reflect.apply(original, this, args)
      } finally {
        state.depth -= 1
      }
      // Buffer.from(arrayBuffer) makes a view, no new memory.
      if (state.on && state.depth === 0 && out instanceof Uint8Array && !(name === 'from' && args[0] instanceof ArrayBuffer)) {
        try {
          record(out, wrapper)
        } catch {}
      }
      return out
    },
  }[name]
  return wrapper
}

/** Start sampling Buffer allocations (idempotent). Returns why not, or null. */
function start(intervalBytes) {
  if (state.on) return null
  if (typeof FinalizationRegistry !== 'function') return 'FinalizationRegistry is not available'
  state.intervalBytes = intervalBytes
  state.countdown = nextGap(intervalBytes)
  if (state.registry === null) state.registry = new FinalizationRegistry((token) => state.live.delete(token))
  state.originals = {}
  state.wrappers = {}
  for (const name of WRAPPED) {
    const original = Buffer[name]
    if (typeof original !== 'function') continue
    const w = wrap(name, original)
    try {
      Object.defineProperty(Buffer, name, { value: w, writable: true, configurable: true, enumerable: Object.getOwnPropertyDescriptor(Buffer, name)?.enumerable ?? true })
    } catch {
      continue
    }
    state.originals[name] = original
    state.wrappers[name] = w
  }
  state.on = true
  return null
}

/** Stop sampling and put back each function still ours; the live samples go. */
function stop() {
  if (!state.on) return
  state.on = false
  for (const [name, original] of Object.entries(state.originals || {})) {
    if (Buffer[name] === state.wrappers[name]) {
      try {
        Object.defineProperty(Buffer, name, { value: original, writable: true, configurable: true, enumerable: Object.getOwnPropertyDescriptor(Buffer, name)?.enumerable ?? true })
      } catch {}
    }
  }
  state.originals = null
  state.wrappers = null
  state.live.clear()
}

/**
 * The live samples as a profile tree of the inspector's shape, its root
 * named `(Buffer backing stores)`: children are the outermost frames, and
 * each sample's estimated bytes (`selfSize`) and count (`count`, the live
 * samples) sit on its innermost frame. Ids start at
 * `firstId` so they do not collide with the profile it is grafted into.
 */
function tree(firstId = 1) {
  let id = firstId
  const node = (cf) => ({ callFrame: { scriptId: '0', ...cf }, selfSize: 0, count: 0, id: id++, children: [], kids: new Map() })
  const root = node({ functionName: '(Buffer backing stores)', url: '', lineNumber: -1, columnNumber: -1 })
  let total = 0
  for (const { frames, bytes } of state.live.values()) {
    let at = root
    for (let i = frames.length - 1; i >= 0; i--) {
      const f = frames[i]
      const key = `${f.functionName}\u0000${f.url}\u0000${f.lineNumber}\u0000${f.columnNumber}`
      let next = at.kids.get(key)
      if (next === undefined) {
        next = node(f)
        at.kids.set(key, next)
        at.children.push(next)
      }
      at = next
    }
    at.selfSize += bytes
    at.count += 1
    total += bytes
  }
  const strip = (n) => {
    delete n.kids
    for (const c of n.children) strip(c)
  }
  strip(root)
  return { root, bytes: total, samples: state.live.size }
}

const status = () => ({ on: state.on, intervalBytes: state.intervalBytes, liveSamples: state.live.size, sampledAllocations: state.sampledAllocations })

module.exports = { start, stop, tree, status, WRAPPED }
