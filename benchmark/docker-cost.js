'use strict'
// The sampler's CPU where services run it: inside real Docker containers
// (cgroup v1, `--memory=256m`, cgroupfs mounted read-only by Docker, so no
// kernel wake-up can be armed), this build beside another (--compare DIR,
// e.g. the build before a change), a control without oomguard, and the floor
// (floor.c: only ppoll and the two preads a usage-only tick reads, no logic),
// each in a container of its own, all at once. The containers run
// cost-child.js (the same as watch-cost.js (a)) with the package directory
// bind-mounted read-only.
//
//   node benchmark/docker-cost.js [--levels 0.1,0.5] [--seconds 20] [--compare DIR] [--json]
//
// Needs root, cgroup v1 and Debian's docker.io (the test suite's Docker
// helper starts its own dockerd and builds its image, and tears both down).

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const u = require('./util')
const h = require('../__test__/helpers/cgroup')
const d = require('../__test__/helpers/docker')

const { MiB, fmt } = u
const NODE = '/usr/local/bin/node'
const LIMIT_MIB = 256

const SPEC = {
  levels: { def: [0.1, 0.5], type: 'list', help: 'shares of the limit to hold, ascending' },
  seconds: { def: 20, type: 'num', help: 'measurement window per level, s' },
  settleMs: { def: 2000, type: 'int', help: 'wait after growing to a level, before its window' },
  compare: { def: null, type: 'str', help: 'a package directory with another build: its container runs beside, named "compare"' },
  json: { def: false, type: 'bool', help: 'machine-readable results on stdout' },
}

async function main() {
  const opts = u.parseArgs(process.argv.slice(2), SPEC, 'usage: node benchmark/docker-cost.js [options]')
  const log = (m) => process.stderr.write(`${m}\n`)
  const reason = d.missing()
  if (reason) {
    log(`docker-cost: ${reason}`)
    process.exit(2)
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-docker-cost-'))
  try {
    const floorExe = path.join(work, 'floor')
    u.buildFloor(floorExe)
    log('docker-cost: starting dockerd and building the image…')
    await d.start()
    const mounts = (pkg) => ['-v', `${path.resolve(pkg)}:/pkg:ro`, '-v', `${__dirname}:/b:ro`, '-v', `${path.join(h.REPO_ROOT, '__test__/helpers')}:/__test__/helpers:ro`]
    const cost = (pkg) => [`--memory=${LIMIT_MIB}m`, ...mounts(pkg)]
    const costCmd = (mode) => [NODE, '/b/cost-child.js', mode, opts.levels.join(','), String(opts.seconds), String(opts.settleMs), '/pkg']
    const seconds = opts.levels.length * (opts.seconds + opts.settleMs / 1000) + 2
    const cases = [
      { name: 'now', run: () => d.run(cost(h.REPO_ROOT), costCmd('monitor')) },
      ...(opts.compare ? [{ name: 'compare', run: () => d.run(cost(opts.compare), costCmd('monitor')) }] : []),
      { name: 'control', run: () => d.run(cost(h.REPO_ROOT), costCmd('control')) },
      ...u.floorLevels(opts.levels, LIMIT_MIB * MiB).map(({ share, intervalMs }) => ({
        name: `floor ${fmt(intervalMs)} ms`,
        share,
        intervalMs,
        run: () =>
          d.run(
            [`--memory=${LIMIT_MIB}m`, '-v', `${floorExe}:/floor:ro`],
            ['/floor', String(intervalMs), String(seconds), '/sys/fs/cgroup/memory/memory.usage_in_bytes', '/sys/fs/cgroup/memory/memory.limit_in_bytes'],
            { timeoutMs: (seconds + 60) * 1000 },
          ),
      })),
    ]
    log(`docker-cost: ${cases.map((c) => c.name).join(', ')} side by side, ${opts.levels.map((l) => `${l * 100}%`).join(', ')} of ${LIMIT_MIB} MiB for ${opts.seconds} s each…`)
    const results = await Promise.all(cases.map((c) => c.run()))
    const out = { machine: u.machineInfo(), versions: u.versions(), levels: opts.levels, rows: [], floor: [] }
    cases.forEach((c, i) => {
      const r = results[i].run
      if (r.code !== 0) throw new Error(`${c.name}: exit ${r.code}\n${(r.stderr || '').slice(-2000)}`)
      if (c.name.startsWith('floor')) {
        const f = h.parsePrefixed(r.stdout, 'FLOOR ')[0]
        out.floor.push({ share: c.share, intervalMs: c.intervalMs, usPerWakeup: f.ns / 1000 / f.wakeups, pctCore: (f.ns / 1e9 / f.seconds) * 100, wakeupsPerSec: f.wakeups / f.seconds })
        return
      }
      for (const m of h.parsePrefixed(r.stdout, 'OOMGUARD_COST ')) {
        out.rows.push({
          case: c.name,
          share: m.share,
          ratio: m.workingSetBytes[0] / m.limitBytes,
          triggers: m.monitor ? m.monitor.triggers : null,
          intervalMs: m.monitor ? m.monitor.intervalMs : null,
          snapshotsPerSec: m.monitor && m.monitor.snapshots !== null ? m.monitor.snapshots / m.windowS : null,
          wakeupsPerSec: m.sampler ? m.sampler.wakeups / m.windowS : null,
          usPerWakeup: m.sampler ? m.sampler.ns / 1000 / Math.max(1, m.sampler.wakeups) : null,
          pctCore: m.sampler ? (m.sampler.ns / 1e9 / m.windowS) * 100 : null,
          processPctCore: (m.process.ns / 1e9 / m.windowS) * 100,
        })
      }
    })
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`)
      return
    }
    console.log(u.describeMachine(out.machine, out.versions))
    console.log(execFileSync(d.DOCKER, ['--version'], { encoding: 'utf8' }).trim())
    console.log(`\nThe sampler in Docker containers, --memory=${LIMIT_MIB}m, cgroupfs read-only (${opts.seconds} s per level; % = of one core):\n`)
    console.log('| container | working set | kernel wake-ups | interval ms | full snapshots/s | sampler wake-ups/s | µs per wake-up | sampler % core | whole process % core |')
    console.log('| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |')
    for (const r of out.rows) {
      console.log(
        `| ${r.case} | ${fmt(r.ratio * 100, 1)}% | ${r.triggers === null ? '–' : r.triggers.length ? r.triggers.join(', ') : 'none'} | ${r.intervalMs === null ? '–' : fmt(r.intervalMs, 1)} | ${r.snapshotsPerSec === null ? '–' : fmt(r.snapshotsPerSec, 2)} | ${r.wakeupsPerSec === null ? '–' : fmt(r.wakeupsPerSec, 1)} | ${r.usPerWakeup === null ? '–' : fmt(r.usPerWakeup, 1)} | ${r.pctCore === null ? '–' : `${fmt(r.pctCore, 3)}%`} | ${fmt(r.processPctCore, 3)}% |`,
      )
    }
    for (const f of out.floor) {
      console.log(`| floor (C: ppoll + 2 preads) | – | – | ${fmt(f.intervalMs, 1)} | – | ${fmt(f.wakeupsPerSec, 1)} | ${fmt(f.usPerWakeup, 1)} | ${fmt(f.pctCore, 3)}% | – |`)
    }
  } finally {
    d.teardown()
    fs.rmSync(work, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(e)
  process.exitCode = 1
})
