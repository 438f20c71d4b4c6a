'use strict'
// Runs inside a memory-limited cgroup, started from a cold copy of node
// (helpers/cold-node.js), and grows memory to the limit with a monitor
// watching for stalls.
//
//   node stall-child.js SCENARIO RATE_MIB_S PREFILL MARKER_FILE LAST_WORDS_FILE PACKAGE_DIR OPTIONS_JSON
//
// SCENARIO: objects | arraybuffers | sync | pagecache | burst
//   objects, arraybuffers: paced growth at RATE after a quick PREFILL (share
//     of the limit), as in the OOM tests;
//   sync: Buffers in a synchronous loop: the event loop never turns again,
//     only the native thread can speak;
//   pagecache: write and read back a file three times the limit, over and
//     over for RATE seconds, with a small heap;
//   burst: page cache as large as the limit, then Buffers up to the limit
//     (reclaiming it), held RATE ms, then dropped (needs --expose-gc), then
//     idle for 5 s.
// MARKER_FILE: one JSON line per monitor event, written synchronously.
// OPTIONS_JSON: extra watch() options (stall, onStall).

const fs = require('node:fs')
const path = require('node:path')
const { MiB, growBuffer, paced } = require('./alloc')

const [scenario, rateArg, prefillArg, markerFile, lastWordsFile, pkgDir, optionsJson] = process.argv.slice(2)
const oomguard = require(path.resolve(pkgDir))
const rate = Number(rateArg)
const prefill = Number(prefillArg)

const marker = fs.openSync(markerFile, 'a')
const mark = (o) => fs.writeSync(marker, `${JSON.stringify({ ...o, t: Date.now() })}\n`)
const monitor = oomguard.watch({ ...JSON.parse(optionsJson), lastWords: { path: lastWordsFile } })
monitor.on('threshold', (e) => mark({ event: 'threshold', level: e.level }))
monitor.on('stall', (e) => mark({ event: 'stall', ...e, current: monitor.current, metricsStalled: oomguard.getMemoryMetrics().stalled }))
monitor.on('stall-end', (e) => mark({ event: 'stall-end', ...e }))
monitor.on('error', (err) => mark({ event: 'error', message: err.message }))

const keep = []
function grow(bytes) {
  if (scenario === 'arraybuffers') {
    const ab = new ArrayBuffer(bytes)
    new Uint8Array(ab).fill(1)
    keep.push(ab)
  } else if (scenario === 'objects') {
    const n = Math.ceil(bytes / 100)
    const arr = new Array(n)
    for (let i = 0; i < n; i++) arr[i] = { id: i, name: `item-${i}-${keep.length}`, next: null }
    keep.push(arr)
  } else {
    growBuffer(keep, bytes)
  }
}

const ratio = () => monitor.current.ratio ?? 0

function growing() {
  const fill = () => {
    if (ratio() < prefill) {
      for (let i = 0; i < 8; i++) grow(MiB)
      return setImmediate(fill)
    }
    if (scenario === 'sync') for (;;) grow(MiB)
    paced(rate * MiB, grow)
  }
  fill()
}

function pagecache() {
  const file = path.join(path.dirname(markerFile), 'pagecache.bin')
  const chunk = Buffer.alloc(4 * MiB, 7)
  const total = Math.ceil((3 * monitor.current.limitBytes) / chunk.length)
  const until = Date.now() + rate * 1000
  let maxUsage = 0
  const look = () => {
    const c = monitor.current
    if (c.usageBytes !== null) maxUsage = Math.max(maxUsage, c.usageBytes / c.limitBytes)
  }
  const round = () => {
    const fd = fs.openSync(file, 'w')
    for (let i = 0; i < total; i++) {
      fs.writeSync(fd, chunk)
      if (i % 8 === 0) look()
    }
    fs.closeSync(fd)
    const rfd = fs.openSync(file, 'r')
    let pos = 0
    while (fs.readSync(rfd, chunk, 0, chunk.length, pos) > 0) {
      pos += chunk.length
      look()
    }
    fs.closeSync(rfd)
    if (Date.now() < until) return setImmediate(round)
    fs.unlinkSync(file)
    mark({ event: 'done', maxUsage, stalledSeconds: monitor.current.stalledSeconds })
    monitor.close()
  }
  round()
}

function burst() {
  // Page cache first (a file as large as the limit), so that the burst's
  // charges fail at the limit and reclaim it.
  const file = path.join(path.dirname(markerFile), 'burst.bin')
  const chunk = Buffer.alloc(4 * MiB, 7)
  const fd = fs.openSync(file, 'w')
  for (let i = 0; i < Math.ceil(monitor.current.limitBytes / chunk.length); i++) fs.writeSync(fd, chunk)
  fs.closeSync(fd)
  fs.unlinkSync(file)
  const fill = () => {
    // Within the stall margin of the limit (10%), short of an OOM kill.
    if (ratio() < 0.92) {
      for (let i = 0; i < 2; i++) growBuffer(keep, MiB)
      return setImmediate(fill)
    }
    mark({ event: 'full', ratio: ratio() })
    setTimeout(() => {
      keep.length = 0
      global.gc()
      mark({ event: 'released', ratio: ratio() })
      setTimeout(() => {
        mark({ event: 'done', ratio: ratio(), stalledSeconds: monitor.current.stalledSeconds })
        monitor.close()
      }, 5000)
    }, rate)
  }
  fill()
}

// Let the sampler take its first sample (the limit) before growing.
const start = () => {
  if (monitor.current.limitBytes === null) return setTimeout(start, 5)
  if (scenario === 'pagecache') return pagecache()
  if (scenario === 'burst') return burst()
  growing()
}
setTimeout(start, 20)
