#!/usr/bin/env node
'use strict'
// Core read-speed benchmark: how long one read of the memory numbers takes,
// oomguard against the alternatives, all measured in one process, one run.
//
//   node benchmark/core.js            markdown table
//   node benchmark/core.js --json     machine-readable results on stdout
//   node benchmark/core.js --check    exit 1 unless getMemoryMetrics(usage) takes
//                                     at most a third of the plain-JS reader's time
//   --rounds N (default 61), --batch-ms N (default 25), --warmup-ms N (default 400)
//
// Method: each contender is warmed up and its batch size calibrated so a batch
// takes about --batch-ms; then every round times one batch of each contender,
// round-robin with the starting contender rotated each round, so machine noise
// (other processes, frequency changes) falls on all of them alike. A full GC
// runs, untimed, before each batch, so no contender pays for another's garbage.
// A contender's figure is the median over rounds of (batch time / calls).

const os = require('node:os')
const path = require('node:path')
const { PlainCgroupReader } = require('./plain-reader')
const { parseArgs, quantile, readJson } = require('./util')

const ROOT = path.join(__dirname, '..')

const OPTIONS = {
  json: { def: false, type: 'bool', help: 'machine-readable results on stdout (messages on stderr)' },
  check: { def: false, type: 'bool', help: "exit 1 unless getMemoryMetrics(usage) takes at most a third of the plain-JS reader's time" },
  rounds: { def: 61, type: 'int', help: 'round-robin rounds' },
  batchMs: { def: 25, type: 'num', help: 'target duration of one timed batch, ms' },
  warmupMs: { def: 400, type: 'num', help: 'warm-up per contender, ms' },
}

// A full GC before each timed batch, outside the timing, so no contender pays
// for the garbage the one before it left. (--expose-gc, switched on from here.)
require('node:v8').setFlagsFromString('--expose-gc')
const collect = require('node:vm').runInNewContext('gc')

const now = () => process.hrtime.bigint()
const nsSince = (t) => Number(process.hrtime.bigint() - t)

// Results go here so no call can be optimised away.
let sink = 0
function consume(v) {
  sink = (sink + (typeof v === 'number' ? v : v && typeof v === 'object' ? 1 : 0)) | 0
}

/** Time n calls; returns ns. */
async function timeBatch(c, n) {
  if (c.async) {
    const fn = c.fn
    const t = now()
    for (let i = 0; i < n; i++) consume(await fn())
    return nsSince(t)
  }
  const fn = c.fn
  const t = now()
  for (let i = 0; i < n; i++) consume(fn())
  return nsSince(t)
}

function machineInfo(cgroupVersion) {
  const cpus = os.cpus()
  return {
    cpuModel: cpus.length ? cpus[0].model.trim() : 'unknown',
    cores: cpus.length,
    kernel: `${os.type()} ${os.release()}`,
    arch: process.arch,
    cgroupVersion,
  }
}

function loadAdobe() {
  try {
    const mod = require('@adobe/cgroup-metrics')
    let version = null
    try {
      version = readJson(require.resolve('@adobe/cgroup-metrics/package.json')).version
    } catch {
      version = readJson(path.join(path.dirname(require.resolve('@adobe/cgroup-metrics')), 'package.json'))?.version ?? null
    }
    return { mod, version }
  } catch {
    return null
  }
}

function fmtBytes(v) {
  if (v === null || v === undefined) return String(v)
  if (typeof v !== 'number' || !Number.isFinite(v)) return String(v)
  return `${v} (${(v / 1048576).toFixed(1)} MiB)`
}

async function main() {
  const opts = parseArgs(process.argv.slice(2), OPTIONS, 'usage: node benchmark/core.js [options]')
  const log = opts.json ? (...a) => console.error(...a) : (...a) => console.log(...a)

  const oomguard = require(ROOT)
  const oomguardVersion = readJson(path.join(ROOT, 'package.json'))?.version ?? null
  const usage = process.memoryUsage() // captured once, as a caller that already has it
  const plain = new PlainCgroupReader()
  const plainKeepOpen = new PlainCgroupReader({ keepOpen: true })
  const adobe = loadAdobe()
  const nFiles = plain.filesPerCall().length

  const contenders = [
    {
      name: 'oomguard getMemoryMetrics(usage)',
      key: 'oomguard-usage',
      files: `${nFiles} (same as plain-JS), pread on fds kept open`,
      fn: () => oomguard.getMemoryMetrics(usage),
    },
    {
      name: 'oomguard getMemoryMetrics()',
      key: 'oomguard-noargs',
      files: `${nFiles} + /proc/self/stat (process.memoryUsage())`,
      fn: () => oomguard.getMemoryMetrics(),
    },
    {
      name: 'plain-JS reader (readFileSync)',
      key: 'plain',
      files: `${nFiles}, open+read+close each`,
      fn: () => plain.read(usage),
    },
    {
      name: 'plain-JS reader, fds kept open (readSync at 0)',
      key: 'plain-keep-open',
      files: `${nFiles}, pread on fds kept open`,
      fn: () => plainKeepOpen.read(usage),
    },
  ]
  const skipped = []
  if (adobe) {
    const mem = adobe.mod.memory
    const adobeCall = async () => {
      // As its README shows: usage, then the percentage of the limit from it.
      const used = await mem.containerUsage()
      const pct = await mem.containerUsagePercentage(used)
      return used + pct
    }
    try {
      await adobeCall()
      contenders.push({
        name: '@adobe/cgroup-metrics (awaited)',
        key: 'adobe',
        files: '3 at /sys/fs/cgroup/memory/ (+ /proc/meminfo when unlimited)',
        async: true,
        fn: adobeCall,
      })
    } catch (err) {
      skipped.push({ name: '@adobe/cgroup-metrics', reason: `its first call failed: ${err.message}` })
    }
  } else {
    skipped.push({
      name: '@adobe/cgroup-metrics',
      reason: 'not installed; run `npm install --no-save @adobe/cgroup-metrics` to include it',
    })
  }
  if (typeof process.constrainedMemory === 'function') {
    contenders.push({
      name: 'process.constrainedMemory()',
      key: 'constrainedMemory',
      files: plain.location && plain.location.version === 1 ? '3: /proc/self/cgroup, memory.soft_limit_in_bytes, memory.limit_in_bytes' : '/proc/self/cgroup + the limit files (libuv)',
      fn: () => process.constrainedMemory(),
    })
  } else {
    skipped.push({ name: 'process.constrainedMemory()', reason: `not in Node ${process.version}` })
  }
  for (const s of skipped) log(`skipped: ${s.name}: ${s.reason}`)

  // Sanity: the same numbers from each reader.
  const om = oomguard.getMemoryMetrics(usage)
  const pm = plain.read(usage)
  const agreement = {
    oomguard: {
      limitBytes: om.limitBytes,
      cgroupLimitBytes: om.cgroupLimitBytes,
      usageBytes: om.usageBytes,
      workingSetBytes: om.workingSetBytes,
      cgroupDir: om.cgroup ? om.cgroup.dir : null,
    },
    plain: {
      limitBytes: pm.limitBytes,
      cgroupLimitBytes: pm.cgroupLimitBytes,
      usageBytes: pm.usageBytes,
      workingSetBytes: pm.workingSetBytes,
      cgroupDir: pm.dir,
    },
    adobe: null,
    constrainedMemory: typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : null,
  }
  if (contenders.some((c) => c.key === 'adobe')) {
    const used = await adobe.mod.memory.containerUsage()
    agreement.adobe = { containerUsage: used, containerUsagePercentage: await adobe.mod.memory.containerUsagePercentage(used) }
  }
  const limitsAgree = agreement.oomguard.limitBytes === agreement.plain.limitBytes
  const dirsAgree = agreement.oomguard.cgroupDir === agreement.plain.cgroupDir
  const usageDiff =
    agreement.oomguard.usageBytes !== null && agreement.plain.usageBytes !== null
      ? Math.abs(agreement.oomguard.usageBytes - agreement.plain.usageBytes) / Math.max(1, agreement.plain.usageBytes)
      : null
  agreement.limitsAgree = limitsAgree
  agreement.dirsAgree = dirsAgree
  agreement.usageRelativeDifference = usageDiff

  // Warm up and calibrate: batch size so one batch takes about batchMs.
  for (const c of contenders) {
    let calls = 0
    const t = now()
    while (nsSince(t) < opts.warmupMs * 1e6) {
      await timeBatch(c, 50)
      calls += 50
    }
    const perCallNs = (opts.warmupMs * 1e6) / calls
    // Re-measure after warm-up (the first part ran unoptimised): best of 3 probes.
    const probe = Math.max(10, Math.round(5e6 / perCallNs))
    let best = Infinity
    for (let i = 0; i < 3; i++) {
      collect()
      best = Math.min(best, (await timeBatch(c, probe)) / probe)
    }
    c.batch = Math.max(10, Math.round((opts.batchMs * 1e6) / best))
    c.samples = []
  }

  // Round-robin: rotate who goes first each round.
  const started = Date.now()
  for (let r = 0; r < opts.rounds; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(r + k) % contenders.length]
      collect()
      const ns = await timeBatch(c, c.batch)
      c.samples.push(ns / c.batch / 1000) // µs per call
    }
  }
  const measuredSeconds = (Date.now() - started) / 1000

  const plainMedian = quantile(contenders.find((c) => c.key === 'plain').samples, 0.5)
  const rows = contenders.map((c) => {
    const s = [...c.samples].sort((a, b) => a - b)
    const median = quantile(s, 0.5)
    return {
      key: c.key,
      name: c.name,
      files: c.files,
      medianUs: median,
      p25Us: quantile(s, 0.25),
      p75Us: quantile(s, 0.75),
      minUs: s[0],
      callsPerBatch: c.batch,
      rounds: s.length,
      vsPlain: median / plainMedian,
    }
  })

  const machine = machineInfo(om.cgroup ? om.cgroup.version : pm.version || null)
  const versions = {
    node: process.version,
    oomguard: oomguardVersion,
    '@adobe/cgroup-metrics': adobe ? adobe.version : null,
  }
  const og = rows.find((r) => r.key === 'oomguard-usage')
  const target = plainMedian / 3
  const check = { targetUs: target, resultUs: og.medianUs, pass: og.medianUs <= target }

  if (opts.json) {
    console.log(JSON.stringify({ machine, versions, method: { rounds: opts.rounds, batchMs: opts.batchMs, warmupMs: opts.warmupMs, measuredSeconds }, rows, skipped, agreement, check }, null, 1))
  } else {
    log(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.kernel} (${machine.arch}), cgroup v${machine.cgroupVersion}`)
    log(`versions: node ${versions.node}, oomguard ${versions.oomguard}, @adobe/cgroup-metrics ${versions['@adobe/cgroup-metrics'] ?? 'not installed'}`)
    log(`method: ${opts.rounds} round-robin rounds, batches of ~${opts.batchMs} ms, median of per-round µs/call (${measuredSeconds.toFixed(1)} s measured)`)
    log('')
    log('| contender | µs/call (median) | p25–p75 | vs plain-JS | files read per call | calls/batch |')
    log('| --- | ---: | ---: | ---: | --- | ---: |')
    for (const r of rows) {
      log(`| ${r.name} | ${r.medianUs.toFixed(2)} | ${r.p25Us.toFixed(2)}–${r.p75Us.toFixed(2)} | ${r.vsPlain.toFixed(2)}× | ${r.files} | ${r.callsPerBatch} |`)
    }
    log('')
    log(
      `agreement: limit oomguard=${fmtBytes(agreement.oomguard.limitBytes)} plain=${fmtBytes(agreement.plain.limitBytes)}` +
        ` (${limitsAgree ? 'same' : 'DIFFERENT'}); usage oomguard=${fmtBytes(agreement.oomguard.usageBytes)}` +
        ` plain=${fmtBytes(agreement.plain.usageBytes)}` +
        (usageDiff === null ? '' : ` (${(usageDiff * 100).toFixed(2)}% apart, read moments apart)`) +
        `; cgroup dir ${dirsAgree ? 'same' : `DIFFERENT: ${agreement.oomguard.cgroupDir} vs ${agreement.plain.cgroupDir}`}`,
    )
    const extra = []
    if (agreement.adobe) extra.push(`@adobe containerUsage=${fmtBytes(agreement.adobe.containerUsage)} (rss+kmem of /sys/fs/cgroup/memory)`)
    if (agreement.constrainedMemory !== null) extra.push(`process.constrainedMemory()=${agreement.constrainedMemory}`)
    if (extra.length) log(`           ${extra.join('; ')}`)
  }
  if (opts.check) {
    const line =
      `check: getMemoryMetrics(usage) median ${check.resultUs.toFixed(2)} µs, target <= ${check.targetUs.toFixed(2)} µs ` +
      `(one third of the plain-JS reader's ${plainMedian.toFixed(2)} µs): ${check.pass ? 'PASS' : 'FAIL'}`
    log(line)
    if (!check.pass) process.exitCode = 1
  }
  if (sink === 0.5) console.error('') // keep sink observable
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err)
  process.exit(2)
})
