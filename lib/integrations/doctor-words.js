'use strict'
// The doctor's words: the units and names that the report (lib/integrations/doctor.js)
// and its rendering (lib/integrations/doctor-render.js) both write.

const MiB = 1024 * 1024

/**
 * The heap band, declared once (the core's diagnoses read the same file): a
 * heap limit within [low, high] of the container limit passes, the advice
 * aims at target.
 */
const HEAP_BAND = Object.freeze({ ...require('../core/heap-band.json') })
const HEAP_SHARE = HEAP_BAND.target
const bandText = `${HEAP_BAND.low * 100}-${HEAP_BAND.high * 100}%`

const isNum = (x) => typeof x === 'number' && Number.isFinite(x)

/** `123.4 MiB`, or `12.34 GiB` from 10 GiB up; `n/a` for null. */
function bytes(b) {
  if (!isNum(b)) return 'n/a'
  const neg = b < 0 ? '-' : ''
  const a = Math.abs(b)
  if (a >= 10 * 1024 * MiB) return `${neg}${(a / 1024 / MiB).toFixed(2)} GiB`
  return `${neg}${(a / MiB).toFixed(1)} MiB`
}

/** `51.5%`; `n/a` for null. */
function pct(r) {
  return isNum(r) ? `${(r * 100).toFixed(1)}%` : 'n/a'
}

/** What `basisBytes` is (Snapshot::working_set_basis()): the working set, or (without a cgroup to measure) the host's used memory. */
function basisName(m) {
  if (isNum(m.workingSetBytes) && m.basisBytes === m.workingSetBytes) return 'working set'
  return 'host memory in use'
}

module.exports = { MiB, HEAP_BAND, HEAP_SHARE, bandText, isNum, bytes, pct, basisName }
