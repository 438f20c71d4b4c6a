'use strict'
// Start-up cost: how much later a process exits when it loads oomguard, as
// cold processes (each a new `node`), against `node -e 0` in the same run.
// The variants run in turn, round after round (the order rotates each round,
// so no variant always follows another), and each is summed up by its median
// and by the median of its paired difference with the bare run of the same
// round (a noisy moment shows in both of a pair and cancels out).
//
// Three clocks per process: `wall`, from spawn to exit as this process sees
// it; `ready`, performance.now() when the main script runs (node's own clock
// from its start: no spawn, no exit); and `cpu`, the process's user + system
// CPU time then (process.cpuUsage(): the least moved by other load on a
// shared machine, but it also counts node's and the sampler's threads).
// And two clocks of the loading alone, from a mark preloaded first (`-r`,
// before the register) to the end of the main script: `load`, wall time,
// and `load cpu`, CPU time. They leave node's own start and exit out, which
// are the same for every variant and the most of the noise. Last, `after
// cpu`: the CPU time from the end of the main script to the exit (what runs
// on the event loop's first turn, such as the /metrics server and the
// heap-limit line, and the exit handlers): work moved off the start-up path
// shows here.
//
//   bare                  node -e 0
//   require               node -e "require('oomguard')"
//   require (no native)   the same with OOMGUARD_NATIVE=0 (the JavaScript reader)
//   preload               node -r oomguard/register -e 0
//   preload + metrics + last words
//                         the same with OOMGUARD_METRICS_PORT=0 (a free port)
//                         and OOMGUARD_LAST_WORDS_PATH set
//   bare, ES module       node main.mjs (the main script as an ES module)
//   import                `import 'oomguard'` in main.mjs (through the package's
//                         "exports", from a node_modules link to the copy)
//   --import + metrics + last words
//                         node --import .../register.mjs main.mjs, with the
//                         variables of the preload row
//
// The ES module rows are paired with `bare, ES module`, not `bare`: node's
// ES module loader is the same cost with or without oomguard.
//
// `node benchmark/startup.js [--runs 30] [--json out.json] [--baseline DIR]`
// (--baseline: another copy of the package, say an older commit with its
// .node, measured in the same rounds for a before/after comparison)

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { pathToFileURL } = require('node:url')
const { parseArgs, summary, median, fmt, table, machineInfo, versions, describeMachine, ROOT } = require('./util.js')

const opts = parseArgs(
  process.argv.slice(2),
  {
    runs: { def: 30, type: 'int', help: 'rounds (each runs every variant once)' },
    json: { def: '', type: 'str', help: 'also write the results as JSON to this file' },
    baseline: { def: '', type: 'str', help: 'another copy of the package (an older commit, with its .node): its variants run in the same rounds' },
  },
  'usage: node benchmark/startup.js [options]',
)

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-startup-'))
const lastWords = path.join(dir, 'last-words.json')

// No OOMGUARD_* or NODE_OPTIONS from the caller's environment.
const base = {}
for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OOMGUARD_') && k !== 'NODE_OPTIONS') base[k] = v

// Preloaded first: the time and CPU time before anything of oomguard loads.
const mark = path.join(dir, 'mark.js')
fs.writeFileSync(mark, 'const c = process.cpuUsage(); globalThis.startupMark = [performance.now(), (c.user + c.system) / 1000]\n')
// The main script: what it loads, then the in-process clocks on stdout at
// exit (a pipe: written synchronously), with the CPU time since its end.
const REPORT =
  "const c = process.cpuUsage(); const t = performance.now(); const u = (c.user + c.system) / 1000; const [t0, u0] = globalThis.startupMark; process.on('exit', () => { const e = process.cpuUsage(); process.stdout.write(JSON.stringify([t, u, t - t0, u - u0, (e.user + e.system) / 1000 - u])) })"
const main = (before = '') => ['-r', mark, '-e', `${before}${REPORT}`]
// The same as ES modules: a main.mjs, bare or importing the package by name.
const bareModule = path.join(dir, 'bare.mjs')
fs.writeFileSync(bareModule, `${REPORT}\n`)
const ES_BARE = 'bare, ES module'
let copies = 0
function variantsOf(root, label) {
  const register = path.join(root, 'register.js')
  const app = path.join(dir, `app-${copies++}`)
  fs.mkdirSync(path.join(app, 'node_modules'), { recursive: true })
  fs.symlinkSync(root, path.join(app, 'node_modules', 'oomguard'))
  const importing = path.join(app, 'import.mjs')
  fs.writeFileSync(importing, `import 'oomguard'\n${REPORT}\n`)
  return [
    { name: `require${label}`, args: main(`require(${JSON.stringify(root)});`), env: {} },
    { name: `require, OOMGUARD_NATIVE=0${label}`, args: main(`require(${JSON.stringify(root)});`), env: { OOMGUARD_NATIVE: '0' } },
    { name: `preload${label}`, args: ['-r', mark, '-r', register, ...main().slice(2)], env: {} },
    {
      name: `preload + metrics + last words${label}`,
      args: ['-r', mark, '-r', register, ...main().slice(2)],
      env: { OOMGUARD_METRICS_PORT: '0', OOMGUARD_LAST_WORDS_PATH: lastWords },
    },
    { name: `import${label}`, args: ['-r', mark, importing], env: {}, against: ES_BARE },
    {
      name: `--import + metrics + last words${label}`,
      args: ['-r', mark, '--import', pathToFileURL(path.join(root, 'register.mjs')).href, bareModule],
      env: { OOMGUARD_METRICS_PORT: '0', OOMGUARD_LAST_WORDS_PATH: lastWords },
      against: ES_BARE,
    },
  ]
}
const VARIANTS = [
  { name: 'bare', args: main(), env: {} },
  { name: ES_BARE, args: ['-r', mark, bareModule], env: {} },
  ...variantsOf(ROOT, ''),
  ...(opts.baseline ? variantsOf(path.resolve(opts.baseline), ' (baseline)') : []),
]
const CLOCKS = ['wall', 'ready', 'cpu', 'load', 'load cpu', 'after cpu']

function once(v) {
  const t0 = process.hrtime.bigint()
  const r = spawnSync(process.execPath, v.args, { env: { ...base, ...v.env }, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
  const wall = Number(process.hrtime.bigint() - t0) / 1e6
  if (r.status !== 0) throw new Error(`${v.name}: exit ${r.status} ${r.signal || ''}: ${r.stderr}`)
  const [ready, cpu, load, loadCpu, afterCpu] = JSON.parse(r.stdout)
  return { wall, ready, cpu, load, 'load cpu': loadCpu, 'after cpu': afterCpu }
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
  const results = VARIANTS.map((v, i) => {
    const against = v.against || 'bare'
    const bare = times[VARIANTS.findIndex((w) => w.name === against)]
    const out = { name: v.name, against }
    for (const c of CLOCKS) {
      const values = times[i].map((t) => t[c])
      out[c] = { ...summary(values), addedMs: median(values.map((t, r) => t - bare[r][c])) }
    }
    return out
  })
  const m = machineInfo()
  console.log(`# Start-up cost (${opts.runs} rounds, cold processes)\n`)
  console.log(describeMachine(m, versions()))
  console.log()
  console.log(
    table(
      ['variant', ...CLOCKS.flatMap((c) => [`${c} ms`, `${c} added`])],
      results.map((r) => [r.name, ...CLOCKS.flatMap((c) => [fmt(r[c].median), r.name === r.against ? '–' : fmt(r[c].addedMs)])]),
    ),
  )
  console.log(`\nms: medians; added: the median of the paired differences with the bare run of the same round (\`${ES_BARE}\` for the ES module rows).`)
  if (opts.baseline) {
    // Each variant against its baseline copy, paired by round: the direct comparison.
    const rows = []
    VARIANTS.forEach((v, i) => {
      const j = VARIANTS.findIndex((w) => w.name === `${v.name} (baseline)`)
      if (j < 0) return
      const row = [v.name]
      for (const c of ['cpu', 'load cpu', 'after cpu']) {
        const d = times[i].map((t, r) => t[c] - times[j][r][c])
        const s = summary(d)
        row.push(`${fmt(s.median, 2)} (${fmt(s.p25, 2)} to ${fmt(s.p75, 2)})`)
        results[i][c].vsBaseline = s
      }
      rows.push(row)
    })
    console.log(`\n${table(['variant', 'cpu ms, this minus baseline (p25 to p75)', 'load cpu ms, this minus baseline (p25 to p75)', 'after cpu ms, this minus baseline (p25 to p75)'], rows)}`)
  }
  if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ machine: m, versions: versions(), runs: opts.runs, results }, null, 2))
} finally {
  fs.rmSync(dir, { recursive: true, force: true })
}
