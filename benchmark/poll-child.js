'use strict'
// The common approach, for comparison with oomguard in watch-lead.js: a
// setInterval poller that reads the cgroup's memory.usage_in_bytes and warns
// when it reaches a share of memory.limit_in_bytes. Grows memory exactly as
// __test__/helpers/oom-child.js does in its 'buffers' scenario (prefill fast,
// then RATE MiB/s in 10 ms steps, or a synchronous loop at RATE 0) until the
// kernel OOM-kills it.
//
//   node poll-child.js RATE_MIB_S MARKER_FILE [PREFILL] [INTERVAL_MS] [SHARE]
//
// MARKER_FILE: the first poll at or above SHARE (default 0.95) of the limit
//   appends one JSON line { usageBytes, workingSetBytes, limitBytes, t: Date.now() },
//   written synchronously, as the listener in oom-child.js does
//   (workingSetBytes = usage − total_inactive_file, read after t, for the report).
// INTERVAL_MS: poll interval (default 100).
//
// Locating the cgroup directory happens once, before anything is timed (a
// containerised service would read /sys/fs/cgroup/memory/ directly).

const fs = require('node:fs')
const path = require('node:path')
const { ownV1MemoryCgroup } = require('../__test__/helpers/cgroup')
const { growBuffer, paced } = require('../__test__/helpers/alloc')

const [rateArg, markerFile, prefillArg, intervalArg, shareArg] = process.argv.slice(2)
const MiB = 1024 * 1024
const rate = Number(rateArg) * MiB
const prefill = prefillArg === undefined ? 0 : Number(prefillArg)
const intervalMs = intervalArg === undefined ? 100 : Number(intervalArg)
const share = shareArg === undefined ? 0.95 : Number(shareArg)

const own = ownV1MemoryCgroup()
if (!own) throw new Error('poll-child: no cgroup v1 memory controller')
const usageFile = path.join(own.dir, 'memory.usage_in_bytes')
const statFile = path.join(own.dir, 'memory.stat')
const limit = Number(fs.readFileSync(path.join(own.dir, 'memory.limit_in_bytes'), 'utf8').trim())
const marker = fs.openSync(markerFile, 'a')

const readUsage = () => Number(fs.readFileSync(usageFile, 'utf8').trim())

// The poller: what people write.
let warned = false
setInterval(() => {
  const usage = readUsage()
  if (!warned && usage >= share * limit) {
    warned = true
    const t = Date.now()
    // For the report only (not part of the poller): the working set right
    // after, so its headroom can be set beside oomguard's basis.
    const m = /^total_inactive_file (\d+)$/m.exec(fs.readFileSync(statFile, 'utf8'))
    const workingSetBytes = m ? usage - Number(m[1]) : null
    fs.writeSync(marker, `${JSON.stringify({ usageBytes: usage, workingSetBytes, limitBytes: limit, t })}\n`)
  }
}, intervalMs)

// The growth: the same as oom-child.js 'buffers' (shared helpers).
const keep = []
const grow = (bytes) => growBuffer(keep, bytes)

function start() {
  const fill = () => {
    if (readUsage() / limit < prefill) {
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

setTimeout(start, 20)
