'use strict'
// Start-up cost: how much later a process exits when it loads oomguard, as
// cold processes (each a new `node`), against `node -e 0` in the same run.
// The variants run in turn, round after round (the order rotates each round,
// so no variant always follows another), and each is summed up by its median
// and by the median of its paired difference with the bare run of the same
// round (a noisy moment shows in both of a pair and cancels out).
//
//   bare                  node -e 0
//   require               node -e "require('oomguard')"
//   require (no native)   the same with OOMGUARD_NATIVE=0 (the JavaScript reader)
//   preload               node -r oomguard/register -e 0
//   preload + metrics + last words
//                         the same with OOMGUARD_METRICS_PORT=0 (a free port)
//                         and OOMGUARD_LAST_WORDS_PATH set
//
// `node benchmark/startup.js [--runs 30] [--json out.json]`

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { parseArgs, summary, median, fmt, table, machineInfo, versions, describeMachine, addonInfo, ROOT } = require('./util.js')

const opts = parseArgs(process.argv.slice(2), {
  runs: { def: 30, type: 'int', help: 'rounds (each runs every variant once)' },
  json: { def: '', type: 'str', help: 'also write the results as JSON to this file' },
}, 'usage: node benchmark/startup.js [options]')

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-startup-'))
const lastWords = path.join(dir, 'last-words.json')
const register = path.join(ROOT, 'register.js')

// No OOMGUARD_* or NODE_OPTIONS from the caller's environment.
const base = {}
for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OOMGUARD_') && k !== 'NODE_OPTIONS') base[k] = v

const VARIANTS = [
  { name: 'bare', args: ['-e', '0'], env: {} },
  { name: 'require', args: ['-e', `require(${JSON.stringify(ROOT)})`], env: {} },
  { name: 'require, OOMGUARD_NATIVE=0', args: ['-e', `require(${JSON.stringify(ROOT)})`], env: { OOMGUARD_NATIVE: '0' } },
  { name: 'preload', args: ['-r', register, '-e', '0'], env: {} },
  {
    name: 'preload + metrics + last words',
    args: ['-r', register, '-e', '0'],
    env: { OOMGUARD_METRICS_PORT: '0', OOMGUARD_LAST_WORDS_PATH: lastWords },
  },
]

function once(v) {
  const t0 = process.hrtime.bigint()
  const r = spawnSync(process.execPath, v.args, { env: { ...base, ...v.env }, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  if (r.status !== 0) throw new Error(`${v.name}: exit ${r.status} ${r.signal || ''}: ${r.stderr}`)
  return ms
}

try {
  // One unmeasured round: the files are in the page cache for every variant alike.
  for (const v of VARIANTS) once(v)
  const times = VARIANTS.map(() => [])
  for (let round = 0; round < opts.runs; round++) {
    for (let k = 0; k < VARIANTS.length; k++) {
      const i = (k + round) % VARIANTS.length
      times[i].push(once(VARIANTS[i]))
    }
  }
  const bare = times[0]
  const results = VARIANTS.map((v, i) => {
    const s = summary(times[i])
    const added = median(times[i].map((t, r) => t - bare[r]))
    return { name: v.name, ...s, addedMs: i === 0 ? 0 : added }
  })
  const m = machineInfo()
  console.log(`# Start-up cost (${opts.runs} rounds, cold processes)\n`)
  console.log(describeMachine(m, versions()))
  console.log()
  console.log(table(
    ['variant', 'median ms', 'p25', 'p75', 'added ms (median of paired differences)'],
    results.map((r) => [r.name, fmt(r.median), fmt(r.p25), fmt(r.p75), r.name === 'bare' ? '–' : fmt(r.addedMs)]),
  ))
  if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ machine: m, addon: addonInfo(), runs: opts.runs, results }, null, 2))
} finally {
  fs.rmSync(dir, { recursive: true, force: true })
}
