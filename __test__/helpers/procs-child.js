'use strict'
// Run by processes.test.js inside a child cgroup:
//   node procs-child.js holder MIB   holds MIB of touched memory under the
//                                    name `oomguard-holder` until killed
//   node procs-child.js probe        prints getMemoryMetrics() and the doctor's
//                                    report of it, then exits
//   node procs-child.js watch FILE   watch()es with one low threshold, last
//                                    words to FILE; prints the record and exits
// Each result is one line: PREFIX + JSON.

const path = require('node:path')
const { growBuffer, MiB } = require('./alloc')

const PREFIX = 'OOMGUARD_PROCS '
const mode = process.argv[2]

if (mode === 'holder') {
  process.title = 'oomguard-holder' // the kernel's comm (15 bytes at most)
  const keep = []
  growBuffer(keep, Number(process.argv[3]) * MiB)
  process.stdout.write(`${PREFIX}${JSON.stringify({ kind: 'ready', pid: process.pid })}\n`)
  setInterval(() => keep.length, 1 << 30)
} else if (mode === 'probe') {
  const oomguard = require(path.join(__dirname, '..', '..'))
  const m = oomguard.getMemoryMetrics()
  const report = oomguard.doctor.diagnose(m, {})
  process.stdout.write(`${PREFIX}${JSON.stringify({ kind: 'probe', pid: process.pid, metrics: m, report, text: oomguard.doctor.render(report) })}\n`)
} else if (mode === 'watch') {
  const fs = require('node:fs')
  const oomguard = require(path.join(__dirname, '..', '..'))
  const file = process.argv[3]
  const monitor = oomguard.watch({ thresholds: [0.2], lastWords: { path: file, stderr: false } }, () => {
    monitor.close()
    const record = JSON.parse(fs.readFileSync(file, 'utf8'))
    process.stdout.write(`${PREFIX}${JSON.stringify({ kind: 'watch', pid: process.pid, record })}\n`)
  })
  monitor.ref()
} else {
  throw new Error(`unknown mode ${mode}`)
}
