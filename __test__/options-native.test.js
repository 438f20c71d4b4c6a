'use strict'
// The same options, refused by the same rules on both sides: each case goes
// to the JavaScript API (watch()) and straight to the addon's watch start
// function (the loader's watchStart, in the shape watch() hands it), and both
// must refuse it, or both accept it. The cases come from the declarations in
// lib/core/options.json: each bound, one step (the next double) inside and
// outside, one whole unit outside, wrong types, NaN and the infinities, too
// few and too many thresholds, thresholds that do not ascend, a hole; and
// last-words paths (a directory, a file in no directory, empty, a NUL byte).

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { watch } = require('..')
const native = require('../lib/core/native.js')
const { WATCH_OPTIONS, watchConfig } = require('../lib/core/options.js')

const ROOT = path.join(__dirname, 'fixtures', 'v2-busy')
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-options-native-'))
test.after(() => fs.rmSync(WORK, { recursive: true, force: true }))

// The next double above / below x.
const f64 = new Float64Array(1)
const bits = new BigInt64Array(f64.buffer)
function nextUp(x) {
  if (x === 0) return Number.MIN_VALUE
  f64[0] = x
  bits[0] += x > 0 ? 1n : -1n
  return f64[0]
}
const nextDown = (x) => -nextUp(-x)

const spec = (name) => WATCH_OPTIONS.find((o) => o.name === name)
const field = (name, key) => spec(name).fields.find((f) => f.key === key)

// A valid base whose every bound can be reached on its own: the lowest
// threshold above the highest hysteresis, the widest intervals.
const BASE = Object.freeze({
  thresholds: [0.6, 0.8, 0.9],
  hysteresis: 0.05,
  minIntervalMs: 10,
  maxIntervalMs: spec('maxIntervalMs').max,
  lastWords: false,
  heapProfile: 'off',
  root: ROOT,
})

/** The values to try for a number declared with `min` and `max` (and `atLeast`, a bound set by another option). */
function numberValues(s, lo = s.min) {
  return [lo, s.max, nextUp(lo), nextDown(s.max), nextDown(lo), nextUp(s.max), lo - 1, s.max + 1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, '1', null, true, 1n, {}, []]
}

/**
 * Every case: `options` (for watch()) and `set(config)` (the same change to
 * the native config watch() would hand the addon), with a label.
 */
function cases() {
  const list = []
  const add = (label, options, set) => list.push({ label, options: { ...BASE, ...options }, set })

  // Top-level numbers: hysteresis, minIntervalMs, maxIntervalMs.
  for (const s of WATCH_OPTIONS.filter((o) => o.kind === 'number')) {
    const lo = s.atLeast === undefined ? s.min : BASE[s.atLeast]
    for (const v of numberValues(s, lo)) {
      add(`${s.name} = ${String(v)}`, { [s.name]: v }, (c) => {
        c[s.name] = v
      })
    }
  }
  // The hysteresis must stay below the lowest threshold.
  add('hysteresis = the lowest threshold', { hysteresis: BASE.thresholds[0] }, (c) => {
    c.hysteresis = BASE.thresholds[0]
  })
  add('hysteresis just below the lowest threshold', { thresholds: [0.4, 0.9], hysteresis: nextDown(0.4) }, (c) => {
    c.thresholds = [0.4, 0.9]
    c.hysteresis = nextDown(0.4)
  })

  // The fields of stall and onStall.
  for (const [name, key] of [
    ['stall', 'sustainMs'],
    ['stall', 'margin'],
    ['onStall', 'afterMs'],
  ]) {
    const f = field(name, key)
    for (const v of numberValues(f)) {
      if (name === 'stall') {
        const other = spec('stall').fields.find((g) => g.key !== key)
        add(`stall.${key} = ${String(v)}`, { stall: { [key]: v } }, (c) => {
          c.stall = { [key]: v, [other.key]: other.default }
        })
      } else {
        add(`onStall.afterMs = ${String(v)}`, { onStall: { action: 'exit', afterMs: v } }, (c) => {
          c.onStall = { action: 'exit', afterMs: v }
        })
      }
    }
  }
  add("onStall.action = 'kill'", { onStall: { action: 'kill', afterMs: 1000 } }, (c) => {
    c.onStall = { action: 'kill', afterMs: 1000 }
  })
  add('onStall with stall off', { stall: false, onStall: { action: 'exit', afterMs: 1000 } }, (c) => {
    c.stall = undefined
    c.onStall = { action: 'exit', afterMs: 1000 }
  })

  // Thresholds: the declared count, each ratio in the declared open interval (0, 1), ascending.
  const t = spec('thresholds')
  const ascending = (n) => Array.from({ length: n }, (_, i) => t.above + ((t.below - t.above) * (i + 1)) / (n + 1))
  const lists = [
    ['too few', ascending(t.minLength - 1)],
    ['the fewest', ascending(t.minLength)],
    ['the most', ascending(t.maxLength)],
    ['too many', ascending(t.maxLength + 1)],
    ['not ascending', [0.9, 0.8]],
    ['equal', [0.8, 0.8]],
    ['the lower bound', [t.above]],
    ['the upper bound', [t.below]],
    ['just above the lower bound', [nextUp(t.above)]],
    ['just below the lower bound', [nextDown(t.above)]],
    ['just below the upper bound', [nextDown(t.below)]],
    ['just above the upper bound', [nextUp(t.below)]],
    ['negative', [t.above - 0.5]],
    ['NaN', [Number.NaN]],
    ['Infinity', [Number.POSITIVE_INFINITY]],
    ['a string', ['0.5']],
    ['null', [null]],
    // biome-ignore lint/suspicious/noSparseArray: a hole is one of the cases
    ['a hole', [0.5, , 0.9]],
  ]
  for (const [label, list] of lists) {
    // The hysteresis set well below the lowest threshold, so that only the list decides.
    const h = typeof list[0] === 'number' && list[0] > 0 ? Math.min(BASE.hysteresis, list[0] / 2) : 0
    add(`thresholds: ${label}`, { thresholds: list, hysteresis: h }, (c) => {
      c.thresholds = list
      c.hysteresis = h
    })
  }
  add('thresholds: not an array', { thresholds: 0.5 }, (c) => {
    c.thresholds = 0.5
  })

  // The basis: each declared value, and others.
  for (const v of [...spec('basis').values, 'WORKINGSET', 'x', '', 1, null]) {
    add(`basis = ${JSON.stringify(v)}`, { basis: v }, (c) => {
      c.basis = v
    })
  }

  // lastWords.stderr: a boolean.
  for (const v of [true, false, 1, 'yes', null]) {
    add(`lastWords.stderr = ${JSON.stringify(v)}`, { lastWords: { stderr: v } }, (c) => {
      c.lastWordsStderr = v
    })
  }
  // lastWords.path: a file, existing or not, in an existing directory.
  for (const [label, p] of [
    ['a file in an existing directory', path.join(WORK, 'last-words')],
    ['a directory', WORK],
    ['a file in no directory', path.join(WORK, 'no-such-dir', 'last-words')],
    ['empty', ''],
    ['with a NUL byte', path.join(WORK, 'a\0b')],
  ]) {
    add(`lastWords.path: ${label}`, { lastWords: { path: p, stderr: false } }, (c) => {
      c.lastWordsPath = p
    })
  }
  return list
}

const dispatch = () => {}

/** true when watch() accepts `options` (the monitor is closed at once). */
function jsAccepts(options) {
  let m
  try {
    m = watch(options)
  } catch (err) {
    assert.ok(err instanceof TypeError || err instanceof RangeError, `watch() threw ${err && err.name}: ${err && err.message}`)
    return false
  }
  m.close()
  return true
}

/** true when the addon's watchStart accepts the config (the monitor is stopped at once). */
function nativeAccepts(config) {
  let id
  try {
    id = native.watchStart(config, dispatch)
  } catch (err) {
    assert.ok(err instanceof Error, String(err))
    return false
  }
  native.watchStop(id)
  return true
}

test('watch() and the addon refuse exactly the same options, and accept the same edges', () => {
  assert.ok(native !== null, 'the addon loads (npm run build)')
  // The config watch() hands the addon for the valid base.
  const base = watchConfig(BASE)
  const all = cases()
  const differ = []
  let refused = 0
  for (const c of all) {
    const config = { ...base, stall: base.stall ?? undefined, onStall: base.onStall ?? undefined }
    c.set(config)
    const js = jsAccepts(c.options)
    const nat = nativeAccepts(config)
    if (js !== nat) differ.push(`${c.label}: watch() ${js ? 'accepts' : 'refuses'}, the addon ${nat ? 'accepts' : 'refuses'}`)
    if (!js) refused++
  }
  assert.deepEqual(differ, [])
  // Both sides saw refusals and acceptances: the cases test something.
  assert.ok(refused > all.length / 2, `${refused} of ${all.length} refused`)
  assert.ok(all.length - refused >= 15, `${all.length - refused} of ${all.length} accepted`)
})

test('a threshold out of its bounds: the same message from watch() and the addon, both bounds from lib/core/options.json', () => {
  assert.ok(native !== null, 'the addon loads (npm run build)')
  const t = spec('thresholds')
  assert.deepEqual([t.above, t.below], [0, 1])
  const base = watchConfig(BASE)
  // Values both sides write alike: not an infinity (Infinity, inf) nor a subnormal (5e-324, 0.000…5).
  for (const v of [t.above, t.below, t.above - 0.5, t.below + 0.5, nextUp(t.below)]) {
    let js = null
    let nat = null
    try {
      watchConfig({ thresholds: [v], hysteresis: 0 })
    } catch (err) {
      js = err.message
    }
    let id
    try {
      id = native.watchStart({ ...base, stall: base.stall ?? undefined, onStall: base.onStall ?? undefined, thresholds: [v], hysteresis: 0 }, dispatch)
    } catch (err) {
      nat = err.message
    }
    if (id !== undefined) native.watchStop(id)
    assert.equal(js, `options.thresholds[0] must be a ratio between ${t.above} and ${t.below} (exclusive), got ${v}`)
    assert.equal(nat, js, String(v))
  }
})
