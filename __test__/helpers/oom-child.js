'use strict'
// Runs inside a memory-limited cgroup and grows memory until the kernel
// OOM-kills it, with a monitor on default settings watching.
//
//   node oom-child.js SCENARIO RATE_MIB_S MARKER_FILE LAST_WORDS_FILE [PACKAGE_DIR] [PREFILL] [THRESHOLDS]
//
// SCENARIO: buffers | objects | arraybuffers | worker | pagecache | heapsync
//   | heapblocked | http
//   heapsync: `a.push({ i: 1 })` in a synchronous loop (the event loop never
//   turns again, so JavaScript never refreshes the V8 numbers); fragsync:
//   the same after fragmenting malloc's arenas (costly allocator totals);
//   heapblocked: JS objects at RATE, the thread blocked (Atomics.wait)
//   between allocations, never returning to the event loop;
//   http: a server whose /cache route keeps about 200 KiB of JS objects per
//   request; it writes its port to MARKER_FILE.port and the parent drives
//   the load (oom-kills.js)
// RATE_MIB_S: allocation rate; 0 = as fast as possible in a synchronous loop
// MARKER_FILE: every 'threshold' event appends one JSON line here, written
//   synchronously from the listener (proof that JavaScript heard it in time)
// LAST_WORDS_FILE: lastWords.path for the monitor
// PREFILL: grow quickly (same kind of memory) to this share of the limit
//   before the paced phase, so slow rates reach the thresholds in seconds
// THRESHOLDS: comma-separated, instead of the defaults

const fs = require('node:fs')
const path = require('node:path')
const { MiB, growBuffer, paced } = require('./alloc')

const [scenario, rateArg, markerFile, lastWordsFile, pkgDir, prefillArg, thresholdsArg] = process.argv.slice(2)
const oomguard = require(pkgDir ? path.resolve(pkgDir) : path.join(__dirname, '..', '..'))
const rate = Number(rateArg) * 1024 * 1024
const prefill = prefillArg === undefined ? 0 : Number(prefillArg)

const marker = fs.openSync(markerFile, 'a')
const thresholds = thresholdsArg ? thresholdsArg.split(',').map(Number) : undefined
const monitor = oomguard.watch({ thresholds, lastWords: { path: lastWordsFile } }, (e) => {
  fs.writeSync(marker, `${JSON.stringify({ level: e.level, threshold: e.threshold, ratio: e.ratio, headroomBytes: e.headroomBytes, timeToLimitMs: e.timeToLimitMs, t: Date.now() })}\n`)
})
monitor.on('error', (err) => fs.writeSync(marker, `${JSON.stringify({ error: err.message })}\n`))

const keep = []
function grow(bytes) {
  switch (scenario) {
    case 'buffers':
    case 'worker':
      growBuffer(keep, bytes)
      break
    case 'arraybuffers': {
      const ab = new ArrayBuffer(bytes)
      new Uint8Array(ab).fill(1)
      keep.push(ab)
      break
    }
    case 'objects': {
      // Plain objects with a string each: about 100 bytes of V8 heap apiece.
      const n = Math.ceil(bytes / 100)
      const arr = new Array(n)
      for (let i = 0; i < n; i++) arr[i] = { id: i, name: `item-${i}-${keep.length}`, next: null }
      keep.push(arr)
      break
    }
    default:
      throw new Error(`unknown scenario ${scenario}`)
  }
}

function basisRatio() {
  const c = monitor.current
  return c.ratio === null ? 0 : c.ratio
}

function start() {
  if (scenario === 'pagecache') return pagecache()
  if (scenario === 'worker') return worker()
  if (scenario === 'heapsync' || scenario === 'fragsync') {
    if (scenario === 'fragsync') fragment()
    const a = []
    keep.push(a)
    for (;;) a.push({ i: 1 })
  }
  if (scenario === 'heapblocked') return heapBlocked()
  if (scenario === 'http') return http()
  // Prefill quickly, letting the event loop turn so the sampler's numbers land.
  const fill = () => {
    if (basisRatio() < prefill) {
      for (let i = 0; i < 8; i++) grow(MiB)
      setImmediate(fill)
      return
    }
    if (rate === 0) {
      for (;;) grow(MiB) // full speed, the event loop never turns again
    }
    paced(rate, grow)
  }
  fill()
}

function worker() {
  const { Worker } = require('node:worker_threads')
  const code = `
    const { workerData } = require('node:worker_threads')
    const keep = []
    const MiB = 1024 * 1024
    const t0 = Date.now()
    let done = 0
    const tick = () => {
      const want = workerData.prefillBytes + ((Date.now() - t0) / 1000) * workerData.rate
      while (done < want) { const b = Buffer.allocUnsafe(MiB); b.fill(2); keep.push(b); done += MiB }
      setTimeout(tick, 10)
    }
    tick()`
  // The worker cannot see the limit before the monitor's first sample: wait for it.
  const go = () => {
    const c = monitor.current
    if (c.limitBytes === null) return setTimeout(go, 5)
    const prefillBytes = Math.max(0, prefill * c.limitBytes - c.basisBytes)
    new Worker(code, { eval: true, workerData: { rate, prefillBytes } })
  }
  go()
}

/**
 * Leave malloc's arenas with about 50,000 free chunks (100,000 small native
 * allocations, every other one freed): glibc's totals then take
 * milliseconds to read, and the sampler reads them less often.
 */
function fragment() {
  const held = []
  for (let i = 0; i < 100_000; i++) held.push(Buffer.allocUnsafeSlow(100 + (i % 500)))
  for (let i = 0; i < held.length; i += 2) held[i] = null
  keep.push(held)
  if (global.gc) global.gc()
}

function heapBlocked() {
  // 1 MiB of objects at a time, then blocked until the pace allows the
  // next: the thread never gets back to the event loop.
  const pause = new Int32Array(new SharedArrayBuffer(4))
  const t0 = Date.now()
  let done = 0
  for (;;) {
    const want = ((Date.now() - t0) / 1000) * rate
    if (done < want) {
      const arr = new Array(Math.ceil(MiB / 100))
      for (let i = 0; i < arr.length; i++) arr[i] = { id: i, name: `item-${i}-${done}`, next: null }
      keep.push(arr)
      done += MiB
    } else {
      Atomics.wait(pause, 0, 0, 5)
    }
  }
}

function http() {
  const server = require('node:http').createServer((req, res) => {
    if (req.url === '/cache') {
      const arr = new Array(2000)
      for (let i = 0; i < arr.length; i++) arr[i] = { id: i, name: `entry-${i}-${keep.length}`, at: Date.now() }
      keep.push(arr)
    }
    res.end('ok\n')
  })
  server.listen(0, '127.0.0.1', () => fs.writeFileSync(`${markerFile}.port`, String(server.address().port)))
}

function pagecache() {
  // Write and read back a file several times the limit, with a small steady
  // heap: page cache fills the cgroup, the working set does not.
  const wait = () => {
    const c = monitor.current
    if (c.limitBytes === null) return setTimeout(wait, 5)
    const file = path.join(path.dirname(markerFile), 'pagecache.bin')
    const chunk = Buffer.alloc(4 * MiB, 7)
    const total = Math.ceil((3 * c.limitBytes) / chunk.length)
    const fd = fs.openSync(file, 'w')
    let i = 0
    let maxLevel = 0
    let maxUsageRatio = 0
    const look = () => {
      const now = monitor.current
      maxLevel = Math.max(maxLevel, monitor.level)
      if (now.usageBytes !== null) maxUsageRatio = Math.max(maxUsageRatio, now.usageBytes / now.limitBytes)
    }
    const writeSome = () => {
      for (let k = 0; k < 8 && i < total; k++, i++) fs.writeSync(fd, chunk)
      // Written back as it goes: what fills the cgroup is clean page cache,
      // as when a service reads a large file. Dirty pages that reclaim
      // meets at the limit are moved to the active list until written back
      // (the kernel cannot drop them yet), and with writeback starved by
      // busy CPUs they pile up there: usage less the inactive file, the
      // working set, then rises to the limit for real.
      fs.fdatasyncSync(fd)
      look()
      if (i < total) return setImmediate(writeSome)
      fs.fsyncSync(fd)
      fs.closeSync(fd)
      const rfd = fs.openSync(file, 'r')
      const buf = Buffer.alloc(4 * MiB)
      for (let pass = 0; pass < 2; pass++) {
        let pos = 0
        while (fs.readSync(rfd, buf, 0, buf.length, pos) > 0) {
          pos += buf.length
          look()
        }
      }
      fs.closeSync(rfd)
      fs.unlinkSync(file)
      // Let the sampler take a last look before reporting.
      setTimeout(() => {
        look()
        const m = oomguard.getMemoryMetrics()
        console.log(
          `OOMGUARD_PAGECACHE ${JSON.stringify({ maxLevel, maxUsageRatio, usageBytes: m.usageBytes, workingSetBytes: m.workingSetBytes, fileBytes: m.stat && m.stat.file, limitBytes: m.limitBytes })}`,
        )
        monitor.close()
      }, 50)
    }
    writeSome()
  }
  wait()
}

// Give the sampler its first sample (the limit) before growing.
setTimeout(start, 20)
