'use strict'
// The service beside a doctor run: grows 1 MiB Buffers until the cgroup's
// working set (and so its usage) is at least RATIO of its limit, then watches with THRESHOLDS
// (comma-separated) and prints every monitor event as a line:
//
//   node doctor-holder.js RATIO THRESHOLDS
//
//   HELD {"usageRatio": r, "workingSetRatio": w}   once, when the usage is there
//   EVENT {"kind": "threshold", "level": n, ...}     each event, from then on

const path = require('node:path')
const { MiB, growBuffer } = require('./alloc')
const oomguard = require(path.join(__dirname, '..', '..'))

const [ratio, thresholds] = [Number(process.argv[2]), process.argv[3].split(',').map(Number)]
const keep = []
const read = () => oomguard.getMemoryMetrics()
for (let m = read(); m.workingSetBytes / m.limitBytes < ratio; m = read()) growBuffer(keep, MiB)

const monitor = oomguard.watch({ thresholds, maxIntervalMs: 20, lastWords: false })
for (const kind of ['threshold', 'stall', 'limit', 'error']) {
  monitor.on(kind, (e) => console.log(`EVENT ${JSON.stringify({ kind, level: e && e.level, ratio: e && e.ratio })}`))
}
const m = read()
console.log(`HELD ${JSON.stringify({ usageRatio: m.usageBytes / m.limitBytes, workingSetRatio: m.workingSetBytes / m.limitBytes, level: monitor.level })}`)
setInterval(() => {}, 1 << 30)
