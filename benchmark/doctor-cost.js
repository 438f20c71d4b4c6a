#!/usr/bin/env node
'use strict'
// What `oomguard doctor` costs the container it examines: each case runs in
// a fresh cgroup v1 child with --limit-mib (default 1 GiB, room for the
// probes), and the cgroup's peak charge (memory.max_usage_in_bytes) is the
// cost. Cases, interleaved, --runs each (median, quartiles):
//
//   bare node      node -e 0, for scale
//   probe          one heap probe (lib/integrations/heap-probe.js): node -e PROBE; the
//                  figure lib/integrations/heap-probe.js's PROBE_CHARGE_BYTES rounds up
//   doctor         node bin/oomguard.js --json, probes run (room enough)
//   doctor, no probes   the same with --node-version 1.0.0 (the service's
//                  node differs: the doctor models instead of probing), as in
//                  a container too full for a probe
//   npx doctor, npx doctor no probes   the same through `npx --offline
//                  oomguard doctor`, from an app directory whose
//                  node_modules/oomguard links this checkout: npm's own
//                  node process is charged too
//
//   node benchmark/doctor-cost.js [--runs 5] [--limit-mib 1024] [--json]
//
// Needs root and cgroup v1 (the reason otherwise). NODE_OPTIONS is emptied
// for every case: an inherited -r oomguard/register would add its own cost.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const h = require('../__test__/helpers/cgroup')
const u = require('./util')

const { MiB, fmt, summary } = u
const SPEC = {
  runs: { def: 5, type: 'int', help: 'runs per case' },
  limitMib: { def: 1024, type: 'int', help: 'memory.limit_in_bytes of each cgroup, MiB' },
  json: { def: false, type: 'bool', help: 'print JSON instead of a table' },
}

const PROBE = 'process.stdout.write(String(require("v8").getHeapStatistics().heap_size_limit))'
const BIN = path.join(u.ROOT, 'bin', 'oomguard.js')
const NPX = path.join(path.dirname(fs.realpathSync(process.execPath)), '..', 'lib', 'node_modules', 'npm', 'bin', 'npx-cli.js')

/** An app directory with node_modules/oomguard linking this checkout, as `npm install oomguard` leaves it. */
function appDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-doctor-cost-'))
  fs.writeFileSync(path.join(dir, 'package.json'), '{"name":"app","version":"1.0.0","private":true}\n')
  fs.mkdirSync(path.join(dir, 'node_modules', '.bin'), { recursive: true })
  fs.symlinkSync(u.ROOT, path.join(dir, 'node_modules', 'oomguard'))
  fs.symlinkSync(path.join('..', 'oomguard', 'bin', 'oomguard.js'), path.join(dir, 'node_modules', '.bin', 'oomguard'))
  return dir
}

async function main() {
  const opts = u.parseArgs(process.argv.slice(2), SPEC, 'usage: node benchmark/doctor-cost.js [options]')
  const s = h.v1Support()
  if (s.reason) {
    console.log(`skipped: ${s.reason}`)
    return
  }
  const app = appDir()
  const npx = fs.existsSync(NPX) ? [process.execPath, NPX] : ['npx']
  const cases = {
    'bare node': [process.execPath, '-e', '0'],
    probe: [process.execPath, '-e', PROBE],
    doctor: [process.execPath, BIN, '--json'],
    'doctor, no probes': [process.execPath, BIN, '--json', '--node-version', '1.0.0'],
    'npx doctor': [...npx, '--offline', 'oomguard', 'doctor', '--json'],
    'npx doctor, no probes': [...npx, '--offline', 'oomguard', 'doctor', '--json', '--node-version', '1.0.0'],
  }
  const env = { ...process.env, NODE_OPTIONS: '', npm_config_update_notifier: 'false', npm_config_fund: 'false' }
  const results = Object.fromEntries(Object.keys(cases).map((k) => [k, { peakMib: [], ms: [] }]))
  try {
    for (let run = 0; run < opts.runs; run++) {
      for (const [name, argv] of Object.entries(cases)) {
        const dir = h.makeCgroup(s.own.dir)
        try {
          h.setV1Limit(dir, opts.limitMib * MiB)
          const r = await h.runProcess('sh', ['-c', 'echo $$ > "$1" && shift && exec "$@"', 'sh', path.join(dir, 'cgroup.procs'), ...argv], { env, cwd: app, timeoutMs: 120_000 })
          if (r.code !== 0) throw new Error(`${name}: ${h.describeRun(r)}`)
          if (name.includes('doctor')) {
            const measured = JSON.parse(r.stdout).heap.advice?.measured
            if (measured !== !name.includes('no probes')) throw new Error(`${name}: heap advice measured ${measured}`)
          }
          results[name].peakMib.push(h.readNumber(path.join(dir, 'memory.max_usage_in_bytes')) / MiB)
          results[name].ms.push(r.ms)
        } finally {
          h.removeCgroup(dir)
        }
      }
    }
  } finally {
    fs.rmSync(app, { recursive: true, force: true })
  }
  const out = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { peakMib: summary(v.peakMib), ms: summary(v.ms) }]))
  if (opts.json) {
    console.log(JSON.stringify({ node: process.version, limitMib: opts.limitMib, runs: opts.runs, cases: out }, null, 2))
    return
  }
  console.log(`node ${process.version}, ${os.arch()}, cgroup limit ${opts.limitMib} MiB, ${opts.runs} runs per case, interleaved\n`)
  console.log(
    u.table(
      ['case', 'peak charge, MiB (median)', 'p25-p75', 'wall, ms (median)'],
      Object.entries(out).map(([k, v]) => [k, fmt(v.peakMib.median), `${fmt(v.peakMib.p25)}-${fmt(v.peakMib.p75)}`, fmt(v.ms.median, 0)]),
    ),
  )
}

main().catch((e) => {
  console.error(e.stack || e.message)
  process.exitCode = 1
})
