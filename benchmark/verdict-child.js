'use strict'
// The agreement run's child (benchmark/verdict.js): grows JS objects and
// Buffers in the steps given, and after each step prints what V8 says
// (process.memoryUsage(), after a full collection) beside what the
// sampler's verdict reads without V8 (samplerInfo().allocator: this
// process's anonymous memory and malloc's totals). One JSON line per step.
//
//   node --expose-gc verdict-child.js STEPS
//
// STEPS: comma-separated OBJECTS_MIB:BUFFERS_MIB targets, e.g. 0:0,50:0,50:100

const { samplerInfo } = require('../lib/watch.js')
const { MiB, growBuffer } = require('../__test__/helpers/alloc')

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
  const a = samplerInfo().allocator
  console.log(JSON.stringify({ objectsMiB: o / MiB, buffersMiB: b / MiB, v8, allocator: a }))
}
