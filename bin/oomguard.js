#!/usr/bin/env node
'use strict'
// `oomguard report` (and `npm start` in the repository): this process's
// memory as the kernel counts it, in plain words.

const { getMemoryMetrics } = require('../lib/index.js')

const USAGE = `usage: oomguard [report] [--json] [--root DIR]

  report      print the live memory report of this container (default)
  --json      print getMemoryMetrics() as JSON
  --root DIR  read a fixture tree that stands in for /`

function parseArgs(argv) {
  const opts = { json: false, root: undefined }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === 'report' || a === 'doctor') continue
    else if (a === '--json') opts.json = true
    else if (a === '--root') {
      if (i + 1 >= argv.length) throw new Error('--root needs a directory')
      opts.root = argv[++i]
    } else if (a === '-h' || a === '--help') {
      opts.help = true
    } else throw new Error(`unknown argument: ${a}`)
  }
  return opts
}

const MiB = 1024 * 1024
const mib = (b) => (b === null || b === undefined ? 'n/a' : `${(b / MiB).toFixed(1)} MiB`)
const pct = (r) => (r === null || r === undefined ? 'n/a' : `${(r * 100).toFixed(1)}%`)

function report(r) {
  const lines = []
  const cg = r.cgroup
  lines.push('oomguard: memory as the kernel counts it')
  lines.push('')
  if (cg) {
    lines.push(`  cgroup        v${cg.version} ${cg.path}${cg.resolved ? '' : ' (not found; reading the mount point)'}`)
    lines.push(`  files         ${cg.dir}`)
  } else {
    lines.push('  cgroup        none with the memory controller')
  }
  lines.push(`  limit         ${mib(r.limitBytes)} (from ${r.source ?? 'nowhere'})${r.highBytes !== null ? `, memory.high ${mib(r.highBytes)}` : ''}`)
  lines.push(`  usage         ${mib(r.usageBytes)}`)
  lines.push(`  working set   ${mib(r.workingSetBytes)} (${pct(r.usageRatio)} of the limit)`)
  lines.push(`  headroom      ${mib(r.headroomBytes)}`)
  if (r.stat) {
    const s = r.stat
    lines.push(`  breakdown     anon ${mib(s.anon)}, file ${mib(s.file)}, shmem ${mib(s.shmem)}, kernel ${mib(s.kernel)}, sock ${mib(s.sock)}`)
  }
  lines.push(`  process rss   ${mib(r.rssBytes)}`)
  lines.push(`  V8 heap       ${mib(r.v8.heapUsedBytes)} used of ${mib(r.v8.heapTotalBytes)}, limit ${mib(r.v8.heapSizeLimitBytes)} (${pct(r.heapLimitRatio)} of the limit)`)
  if (r.events) lines.push(`  oom kills     ${r.events.oomKill ?? 'n/a'}`)
  if (r.pressure) {
    lines.push(`  pressure      some avg10 ${r.pressure.some.avg10}%, full avg10 ${r.pressure.full ? r.pressure.full.avg10 : 'n/a'}% (${r.pressure.scope})`)
  }
  lines.push(`  host          ${mib(r.hostAvailableBytes)} available of ${mib(r.hostTotalBytes)}`)
  lines.push('')
  if (r.diagnoses.length === 0) lines.push('  no findings')
  for (const d of r.diagnoses) lines.push(`  [${d.severity}] ${d.code}: ${d.message}`)
  return lines.join('\n')
}

function main() {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2))
  } catch (err) {
    console.error(`oomguard: ${err.message}\n${USAGE}`)
    process.exitCode = 2
    return
  }
  if (opts.help) {
    console.log(USAGE)
    return
  }
  const r = getMemoryMetrics(undefined, { root: opts.root })
  console.log(opts.json ? JSON.stringify(r, null, 2) : report(r))
}

main()
