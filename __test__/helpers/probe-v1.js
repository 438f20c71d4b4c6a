'use strict'
// Run inside a cgroup v1 memory cgroup by live-v1.test.js:
//   node probe-v1.js PACKAGE_DIR CGROUP_DIR
// Prints one line: PREFIX + JSON { metrics, kernel }, where `kernel` holds the
// kernel's own memory.usage_in_bytes read just before and just after the call
// and this process's /proc/self/cgroup.

const fs = require('node:fs')
const path = require('node:path')

const PREFIX = 'OOMGUARD_PROBE_V1 '
const [pkgDir, cgDir] = process.argv.slice(2)
const { getMemoryMetrics } = require(pkgDir)

const usageFile = path.join(cgDir, 'memory.usage_in_bytes')
const usageBefore = Number(fs.readFileSync(usageFile, 'utf8'))
const metrics = getMemoryMetrics()
const usageAfter = Number(fs.readFileSync(usageFile, 'utf8'))
const procCgroup = fs.readFileSync('/proc/self/cgroup', 'utf8')

process.stdout.write(`${PREFIX}${JSON.stringify({ metrics, kernel: { usageBefore, usageAfter, procCgroup } })}\n`)
