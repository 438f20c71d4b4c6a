'use strict'
// The agreement run's child (benchmark/verdict.js): grows JS objects and
// Buffers in the steps given, and after each step prints what V8 says
// (process.memoryUsage(), after a full collection) beside what the
// sampler's verdict reads without V8 (allocatorSplit(): this
// process's anonymous memory and malloc's totals). One JSON line per step.
//
//   node --expose-gc verdict-child.js STEPS
//
// STEPS: comma-separated OBJECTS_MIB:BUFFERS_MIB targets, e.g. 0:0,50:0,50:100

const { allocatorSplit } = require('../lib/core/native.js')
const { MiB, growBuffer } = require('../__test__/helpers/alloc')

// `cost`: how long one reading of the split takes (as a record reads it),
// on a tidy heap and with malloc's arenas fragmented.
if (process.argv[2] === 'cost') {
  const time = (n) => {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < n; i++) allocatorSplit()
    return Number(process.hrtime.bigint() - t0) / n / 1e3
  }
  const out = { tidyUs: time(2000) }
  const held = []
  for (const chunks of [10_000, 50_000, 100_000]) {
    while (held.length < chunks * 2) held.push(Buffer.allocUnsafeSlow(100 + (held.length % 500)))
    for (let i = 0; i < held.length; i += 2) held[i] = null
    global.gc()
    out[`free${chunks}Us`] = time(20)
    for (let i = 0; i < held.length; i += 2) held[i] = Buffer.allocUnsafeSlow(100 + (i % 500))
  }
  console.log(JSON.stringify(out))
  process.exit(0)
}

const keepObjects = []
const keepBuffers = []
let objects = 0
let buffers = 0
for (const step of process.argv[2].split(',')) {
  const [o, b] = step.split(':').map((x) => Number(x) * MiB)
  while (objects < o) {
    const arr = new Array(Math.ceil(MiB / 100))
    for (let i = 0; i < arr.length; i++) arr[i] = { id: i, name: `item-${i}-${objects}`, next: null }
    keepObjects.push(arr)
    objects += MiB
  }
  while (buffers < b) {
    growBuffer(keepBuffers, MiB)
    buffers += MiB
  }
  global.gc()
  const v8 = process.memoryUsage()
  const a = allocatorSplit()
  console.log(JSON.stringify({ objectsMiB: o / MiB, buffersMiB: b / MiB, v8, allocator: a }))
}
