'use strict'
// Runs in the cgroup v2 VM (cwd /host: the staged package with bin/): the
// doctor's JSON report, then a fresh node per advised NODE_OPTIONS and one
// without flags, each reporting heap_size_limit. One prefixed JSON line.
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')

const PROBE = 'process.stdout.write(String(require("v8").getHeapStatistics().heap_size_limit))'
const env = (nodeOptions) => ({ ...process.env, NODE_OPTIONS: nodeOptions })
const heap = (nodeOptions) => Number(spawnSync(process.execPath, ['-e', PROBE], { env: env(nodeOptions), encoding: 'utf8' }).stdout)

const d = spawnSync(process.execPath, ['bin/oomguard.js', '--json'], { env: env(''), encoding: 'utf8' })
if (d.status !== 0) throw new Error(`doctor: status ${d.status}: ${d.stderr}`)
const report = JSON.parse(d.stdout)
const measured = (report.heap.advice ? report.heap.advice.options : []).map((o) => ({ nodeOptions: o.nodeOptions, heapSizeLimitBytes: heap(o.nodeOptions) }))
const cgroup = fs.readFileSync('/proc/self/cgroup', 'utf8').trim()
console.log(`OOMGUARD_HEAP_V2 ${JSON.stringify({ report, measured, defaultHeapSizeLimitBytes: heap(''), cgroup, node: process.version })}`)
