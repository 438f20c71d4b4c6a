'use strict'
// Heap advice that is measured, not modelled: start from the core's model of
// V8's heap sizing (heapModel()), run the same node binary with the advised
// NODE_OPTIONS in a child process (so in the same cgroup, sizing itself from
// the same limits), read v8.getHeapStatistics().heap_size_limit, and adjust
// until the measured heap limit sits within the band of lib/core/heap-band.json,
// as close to its target as whole MiB (or tenths of a percent) allow.
// Used by `oomguard doctor`; getMemoryMetrics() never spawns.
//
// Each probe is a node process in the container's cgroup: it is charged
// there, beside the service. The probes run only while the room left below
// watch()'s first default threshold covers a probe's charge with a margin
// (probeRoom()); otherwise the advice is the model's, and says why.

const { spawnSync } = require('node:child_process')
const BAND = require('../core/heap-band.json')
const { WATCH_DEFAULTS } = require('../core/options.js')

const MiB = 1024 * 1024
/**
 * The most one probe (`node -e PROBE`) is charged to the cgroup: its
 * memory.max_usage_in_bytes in a fresh cgroup was 7.4-7.7 MiB (node 20,
 * x86_64, 3 runs; benchmark/doctor-cost.js), rounded up.
 */
const PROBE_CHARGE_BYTES = 8 * MiB
/** The room a probe needs: its charge, twice. */
const PROBE_MARGIN = 2
/** The working set the probes stay below: watch()'s first default threshold, where a service's monitor acts first. */
const PROBE_CEILING = WATCH_DEFAULTS.thresholds[0]
const PERCENTAGE_FLAG = '--max-old-space-size-percentage'
const PROBE = 'process.stdout.write(String(require("v8").getHeapStatistics().heap_size_limit))'
/** Tries per form: the young generation does not depend on the old space, so two normally do. */
const MAX_TRIES = 4

/**
 * Whether `node` (a version string) has --max-old-space-size-percentage:
 * 22.21+, 24.6+ or 25+, and (for the running node) the flag is accepted in
 * NODE_OPTIONS.
 */
function hasPercentageFlag(version, allowedFlags) {
  const m = /^v?(\d+)\.(\d+)\./.exec(String(version))
  if (!m) return false
  const [major, minor] = [Number(m[1]), Number(m[2])]
  const byVersion = major === 22 ? minor >= 21 : major === 24 ? minor >= 6 : major >= 25
  return byVersion && (!allowedFlags || allowedFlags.has(PERCENTAGE_FLAG))
}

/**
 * Run `execPath` with NODE_OPTIONS=`flags` and return its heap_size_limit
 * in bytes, or throw with what went wrong.
 */
function measureHeapLimit(execPath, flags, { env = process.env, timeoutMs = 15000 } = {}) {
  const childEnv = { ...env, NODE_OPTIONS: flags }
  const r = spawnSync(execPath, ['-e', PROBE], { env: childEnv, encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] })
  if (r.error) throw new Error(`${execPath}: ${r.error.message}`)
  if (r.status !== 0) {
    const why = r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`
    throw new Error(`NODE_OPTIONS="${flags}" ${execPath}: ${why}${r.stderr ? `: ${r.stderr.trim().split('\n')[0]}` : ''}`)
  }
  const v = Number(r.stdout.trim())
  if (!Number.isFinite(v) || v <= 0) throw new Error(`NODE_OPTIONS="${flags}" ${execPath}: printed ${JSON.stringify(r.stdout.slice(0, 80))}`)
  return v
}

/** Why a probe may not run now (a sentence), or null when the room allows it. */
class NoRoom extends Error {}

/**
 * Whether a probe may run in the cgroup `metrics` (a getMemoryMetrics()
 * result, fresh) describes: null when the working set plus a probe's charge
 * with its margin stays below PROBE_CEILING of the limit, else why not.
 */
function probeRoom(metrics) {
  const limit = metrics && metrics.limitBytes
  const ws = metrics && metrics.basisBytes
  const need = PROBE_CHARGE_BYTES * PROBE_MARGIN
  const mib = (b) => `${(b / MiB).toFixed(1)} MiB`
  if (typeof limit !== 'number' || typeof ws !== 'number' || !(limit > 0)) {
    return `the working set could not be read, so there is no telling whether a probe (a node process, charged up to ${mib(PROBE_CHARGE_BYTES)}) fits beside the service`
  }
  const ceiling = limit * PROBE_CEILING
  if (ws + need <= ceiling) return null
  return (
    `the working set is ${mib(ws)} (${((ws / limit) * 100).toFixed(1)}% of ${mib(limit)}); each probe is a node ` +
    `process charged up to ${mib(PROBE_CHARGE_BYTES)} here, and with a ${PROBE_MARGIN}x margin it would take the working set ` +
    `past ${PROBE_CEILING * 100}% (watch()'s first default threshold, where the service's own monitor acts)`
  )
}

const fixedFlags = (old, semi) => `--max-old-space-size=${old}${semi ? ` --max-semi-space-size=${semi}` : ''}`
const percentageFlags = (p) => `${PERCENTAGE_FLAG}=${p}`
const inBand = (h, limit) => h >= limit * BAND.low && h <= limit * BAND.high

/**
 * Measure and adjust one form. `next(value, measuredBytes)` gives the next
 * value to try (or the same one when it cannot get closer).
 */
function converge(first, flagsOf, next, measure, limit, targetBytes) {
  const tried = new Map()
  let value = first
  let best = null
  for (let i = 0; i < MAX_TRIES && !tried.has(String(value)); i++) {
    const h = measure(flagsOf(value))
    tried.set(String(value), h)
    const candidate = { value, heapSizeLimitBytes: h }
    if (best === null || Math.abs(h - targetBytes) < Math.abs(best.heapSizeLimitBytes - targetBytes)) best = candidate
    if (inBand(h, limit) && Math.abs(h - targetBytes) < MiB) break
    value = next(value, h)
  }
  return best
}

/**
 * The advice for `limitBytes`, measured where it can be.
 *
 * `model`: heapModel(limitBytes, constrainedMemoryBytes, nodeVersion) from
 * the addon (the starting point, and the answer when not measuring).
 * `measure`: false to return the model alone; `why` says why in the result.
 * `room`: called before each probe; null lets it run, a sentence (from
 * probeRoom()) stops the probing and gives the model's figures with it.
 * `execPath`, `env`, `allowedFlags`: the node to run (default: this one).
 */
function heapAdvice({
  limitBytes,
  constrainedMemoryBytes,
  model,
  nodeVersion,
  measure = true,
  why = null,
  room = () => null,
  execPath = process.execPath,
  env = process.env,
  allowedFlags = process.allowedNodeEnvironmentFlags,
  timeoutMs,
}) {
  const targetBytes = Math.floor((limitBytes * BAND.target) / MiB) * MiB
  const base = {
    band: { ...BAND },
    targetBytes,
    limitBytes,
    nodeVersion,
    measured: false,
    note: why,
    options: [],
    // Node's heap limit without heap flags.
    defaultHeapLimitBytes: model.defaultHeapLimitMib * MiB,
  }
  const entry = (form, flags, heapSizeLimitBytes, measured) => ({
    form,
    nodeOptions: flags,
    heapSizeLimitBytes,
    ratio: heapSizeLimitBytes / limitBytes,
    inBand: inBand(heapSizeLimitBytes, limitBytes),
    measured,
  })
  const percentageOk = model.percentageNodeOptions !== null && hasPercentageFlag(nodeVersion, measure ? allowedFlags : null)
  if (!measure) {
    if (percentageOk) base.options.push(entry('percentage', model.percentageNodeOptions, model.percentageHeapLimitMib * MiB, false))
    base.options.push(entry('fixed', model.nodeOptions, model.heapLimitMib * MiB, false))
    return base
  }

  let probes = 0
  const run = (flags) => {
    const full = room()
    if (full) throw new NoRoom(full)
    probes++
    return measureHeapLimit(execPath, flags, { env, timeoutMs })
  }
  try {
    const out = []
    if (percentageOk) {
      // Percent of the memory node sizes from, which is the limit here
      // (the model offers this form only then).
      const p = converge(model.maxOldSpaceSizePercentage, percentageFlags, (v, h) => Math.round((v + ((targetBytes - h) / constrainedMemoryBytes) * 100) * 10) / 10, run, limitBytes, targetBytes)
      out.push(entry('percentage', percentageFlags(p.value), p.heapSizeLimitBytes, true))
    }
    const semi = model.maxSemiSpaceSizeMib
    const f = converge(
      model.maxOldSpaceSizeMib,
      (old) => fixedFlags(old, semi),
      (old, h) => Math.max(1, old + Math.floor((targetBytes - h) / MiB)),
      run,
      limitBytes,
      targetBytes,
    )
    out.push(entry('fixed', fixedFlags(f.value, semi), f.heapSizeLimitBytes, true))
    return { ...base, measured: true, note: null, options: out, defaultHeapLimitBytes: run('') }
  } catch (err) {
    const fallback = heapAdvice({ limitBytes, constrainedMemoryBytes, model, nodeVersion, measure: false })
    if (err instanceof NoRoom) {
      const when = probes === 0 ? 'no probe was started' : `probing stopped after ${probes} probe${probes === 1 ? '' : 's'}`
      return { ...fallback, note: `Modelled, not measured (${when}): ${err.message}. The figures are the model's, the rule node sizes its heap by.` }
    }
    return { ...fallback, note: `not measured (${err.message}); the figures are the model's` }
  }
}

module.exports = { heapAdvice, measureHeapLimit, hasPercentageFlag, probeRoom, BAND, PROBE_CHARGE_BYTES, PROBE_MARGIN, PROBE_CEILING }
