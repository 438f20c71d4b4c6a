'use strict'
// The validator of every option of the public API. Each option of watch()
// (stall, onStall and heapProfile included), shed(), the metrics exporters
// and each OOMGUARD_* variable of the preload is declared once, in
// lib/core/options.json (name, kind, default, bounds, documentation); this module
// checks the caller's values against those declarations, with a `kind` per
// check. build.rs reads the same file for the sampler's bounds and defaults
// (src/options.rs), and `node lib/core/options.js --readme` writes the option
// tables of docs/*.md and the option types of lib/index.d.ts from it
// (checked by __test__/options.test.js). The doctor CLI's flags and the doctor's inputs
// are declared below.
//
// The snapshot rule: a public function copies the options it knows from the
// caller's object, OWN properties only (never the prototype chain, so a
// polluted Object.prototype changes nothing), each read exactly once (a
// getter cannot answer one thing to the check and another to the sampler),
// into a null-prototype object; arrays are copied element by element, once,
// a hole being an error. Only that copy is validated and handed onward.
// Unknown options are ignored.

const fs = require('node:fs')
const nodePath = require('node:path')

// ---------------------------------------------------------------- errors

function typeName(v) {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  return typeof v === 'object' ? 'an object' : `${typeof v === 'undefined' ? '' : 'a '}${typeof v}`
}

// error -> the `expected` text it was made with (the register quotes it).
const expectedOf = new WeakMap()

function invalidType(name, expected, value) {
  const err = new TypeError(`${name} must be ${expected}, got ${typeName(value)}`)
  err.code = 'ERR_INVALID_ARG_TYPE'
  expectedOf.set(err, expected)
  return err
}

function outOfRange(name, expected, value) {
  const err = new RangeError(`${name} must be ${expected}, got ${String(value)}`)
  err.code = 'ERR_OUT_OF_RANGE'
  expectedOf.set(err, expected)
  return err
}

// ---------------------------------------------------------------- snapshot primitives

/** The value of an own property, read once; `undefined` when not own. */
function own(obj, key) {
  return Object.hasOwn(obj, key) ? obj[key] : undefined
}

/**
 * `options` as an object to read own properties from: undefined and null are
 * an empty object, anything else but a plain (non-array) object is a TypeError.
 */
function optionsObject(options, name = 'options') {
  if (options === undefined || options === null) return Object.create(null)
  if (typeof options !== 'object' || Array.isArray(options)) throw invalidType(name, 'an object', options)
  return options
}

const HOLE = Symbol('hole')

/**
 * Copy an array once: `length` read once and bounded before anything else,
 * then each index read once. A missing index (a hole, or an array-like whose
 * length lies) becomes HOLE, never a value from Array.prototype.
 */
function copyArray(value, name, expected, minLength, maxLength) {
  if (!Array.isArray(value)) throw invalidType(name, expected, value)
  const length = value.length
  if (!(length >= minLength && length <= maxLength)) {
    throw outOfRange(name, `an array of ${minLength} to ${maxLength} ${expected.replace(/^an array of /, '')}`, `${length} entries`)
  }
  const out = new Array(length)
  for (let i = 0; i < length; i++) out[i] = Object.hasOwn(value, i) ? value[i] : HOLE
  return out
}

function notANumber(name, v) {
  if (v === HOLE) {
    const err = new TypeError(`${name} must be a number, got a hole (an empty array slot)`)
    err.code = 'ERR_INVALID_ARG_TYPE'
    expectedOf.set(err, 'a number')
    return err
  }
  return invalidType(name, 'a number', v)
}

/** A property a class provides (own, or from a prototype other than Object.prototype). */
function classProperty(obj, key) {
  for (let o = obj; o !== null && o !== Object.prototype && o !== Function.prototype; o = Object.getPrototypeOf(o)) {
    if (Object.hasOwn(o, key)) return true
  }
  return false
}

// Every property an option table's code reads from an entry.
const ENTRY_KEYS = [
  'name',
  'key',
  'flag',
  'short',
  'arg',
  'default',
  'doc',
  'docDefault',
  'min',
  'max',
  'above',
  'below',
  'expected',
  'unit',
  'values',
  'kind',
  'atLeast',
  'rule',
  'maxText',
  'ts',
  'tsDoc',
  'minLength',
  'maxLength',
  'copy',
  'check',
  'effectiveDefault',
  'fields',
  'parse',
  'object',
  'bytes',
  'metrics',
  'readme',
  'env',
  'envDoc',
  'envExpected',
  'envDefault',
  'envDocDefault',
  'fromEnv',
  'envCheck',
]

/**
 * A table of declarations, frozen, whose entries own every key in `keys`
 * (undefined where an entry does not declare it): a read of an undeclared
 * key never reaches Object.prototype, so pollution cannot add a `copy`,
 * `fields` or `default` to an entry. (Null-prototype entries would do the
 * same, but measured: 10,000 watch() calls then grow the RSS by ~2 MiB,
 * likely V8's handlers for loads of absent properties.)
 */
function table(list, keys = ENTRY_KEYS) {
  for (const entry of list) {
    for (const k of keys) if (!Object.hasOwn(entry, k)) entry[k] = undefined
    if (Object.hasOwn(entry, 'fields') && Array.isArray(entry.fields)) table(entry.fields, keys)
    Object.freeze(entry)
  }
  return Object.freeze(list)
}

// ---------------------------------------------------------------- value checks

const TRUE_WORDS = ['1', 'true', 'yes', 'on']
const FALSE_WORDS = ['0', 'false', 'no', 'off']

function envBoolean(text) {
  const t = text.toLowerCase()
  if (TRUE_WORDS.includes(t)) return true
  if (FALSE_WORDS.includes(t)) return false
  return text // not a boolean: the check says so
}

/** A decimal number as the environment and the CLI write it: no hex, no exponent, no sign. */
const DECIMAL = /^\d+(\.\d+)?$|^\.\d+$/
function envNumber(text) {
  return DECIMAL.test(text) ? Number(text) : text
}

function checkNumber(spec, name, v, lo = spec.min, expected = spec.expected) {
  if (typeof v !== 'number') throw invalidType(name, 'a number', v)
  if (!(v >= lo && v <= spec.max)) throw outOfRange(name, expected, v)
  return v
}

function checkPath(name, v, what = 'a non-empty path') {
  if (typeof v !== 'string') throw invalidType(name, 'a string', v)
  if (v === '' || v.includes('\0')) throw outOfRange(name, `${what} without NUL bytes`, JSON.stringify(v))
  return v
}

/**
 * A last-words path: a file (existing or not) in an existing directory, not
 * a directory itself. Checked with stat, which opens nothing, so a FIFO or a
 * device cannot block here. Returns the absolute path.
 */
function checkLastWordsPath(name, v) {
  if (typeof v !== 'string') throw invalidType(name, 'a string', v)
  if (v === '') throw outOfRange(name, 'a non-empty path', '""')
  if (v.includes('\0')) throw outOfRange(name, 'a path without NUL bytes', JSON.stringify(v))
  // Resolved now: the sampler opens what was checked, whatever the working directory is later.
  // `{pid}` is this process's pid: one record file per process.
  const abs = nodePath.resolve(v.replaceAll('{pid}', String(process.pid)))
  let st = null
  try {
    st = fs.statSync(abs)
  } catch {}
  if (st !== null && st.isDirectory()) throw outOfRange(name, 'a file, not a directory', JSON.stringify(v))
  if (st === null) {
    const dir = nodePath.dirname(abs)
    let why = null
    try {
      if (!fs.statSync(dir).isDirectory()) why = 'not a directory'
    } catch (err) {
      why = err.code || err.message
    }
    if (why !== null) throw outOfRange(name, `a file in an existing directory (${dir}: ${why})`, JSON.stringify(v))
  }
  return abs
}

// ---------------------------------------------------------------- the declarations (lib/core/options.json)

// The declarations and their defaults (WATCH_DEFAULTS, SHED_DEFAULTS) come from
// lib/core/declared.js, which reads the file; the ES module front door loads
// only that one.
const { DECLARED, defaultOf, WATCH_DEFAULTS, SHED_DEFAULTS } = require('./declared.js')

/** A value made on first use, then kept: the tables the preload does not need are not built at load. */
function once(make) {
  let value
  return () => {
    if (value === undefined) value = make()
    return value
  }
}

const quoteList = (list) => list.map((b) => `'${b}'`).join(', ')
const wordList = (list) => `${list.slice(0, -1).join(', ')} or ${list[list.length - 1]}`

/** How a `{name|filter}` of a declaration's text writes the value it names. */
const FILTERS = {
  code: (v) => `\`${JSON.stringify(v).replace(/,/g, ', ').replace(/"/g, "'")}\``,
  list: (v) => v.join(','),
  words: (v) => wordList(v),
  wordsCode: (v) => wordList(v.map((b) => `\`${b}\``)),
  union: (v) => v.map((b) => `'${b}'`).join(' | '),
  codeEach: (v) => v.map((b) => `\`${b}\``).join(', '),
  size: (v) => (v % 2 ** 20 === 0 ? `${v / 2 ** 20} MiB` : `${v / 1024} KiB`),
}

/** `path` (`max`, `afterMs.default`) in a declaration: a key, or a field's key. */
function lookup(entry, path) {
  let at = entry
  for (const p of path.split('.')) {
    if (at === undefined || at === null) return undefined
    at = Object.hasOwn(at, p) && at[p] !== undefined ? at[p] : Array.isArray(at.fields) ? at.fields.find((f) => f.key === p) : undefined
  }
  return at
}

/**
 * A declaration's text with each `{path}` or `{path|filter}` replaced by the
 * value it names (`extra` first: values known only at the check, `{lo}`).
 * A brace that names nothing (`{pid}`, `{ path }`) stays as written.
 */
function fill(text, entry, extra) {
  if (typeof text !== 'string' || !text.includes('{')) return text
  return text.replace(/\{([A-Za-z]+(?:\.[A-Za-z]+)*)(?:\|([A-Za-z]+))?\}/g, (all, path, filter) => {
    const v = extra !== undefined && Object.hasOwn(extra, path) ? extra[path] : lookup(entry, path)
    if (v === undefined) return all
    if (filter !== undefined) return Object.hasOwn(FILTERS, filter) ? FILTERS[filter](v) : all
    return typeof v === 'object' ? all : String(v)
  })
}

// ---------------------------------------------------------------- what each kind of option does

/** The fields of an object option, each checked by its own kind; an unset one takes its default. */
function checkFields(v, name) {
  const out = {}
  for (const f of this.fields) out[f.key] = v[f.key] === undefined ? f.default : f.check(v[f.key], `${name}.${f.key}`)
  return out
}

/**
 * What a `kind` in lib/core/options.json does: `copy(value, name)` (the snapshot
 * of the caller's value), `check(value, name, out)` (validate the copy,
 * return what goes on; `out` holds the options checked before it), and
 * `fromEnv(text)` (the preload's variable, parsed into a value `check` then
 * validates like any other).
 */
const KINDS = {
  number: {
    check(v, name, out) {
      if (this.atLeast === undefined) checkNumber(this, name, v)
      else checkNumber(this, name, v, out[this.atLeast], fill(this.expected, this, { lo: out[this.atLeast] }))
      return this.rule === undefined ? v : this.rule(v, name, out)
    },
    fromEnv: envNumber,
  },
  integer: {
    check(v, name) {
      checkNumber(this, name, v)
      if (!Number.isInteger(v)) throw outOfRange(name, this.expected, v)
      return v
    },
    fromEnv: envNumber,
  },
  enum: {
    check(v, name) {
      if (typeof v !== 'string') throw invalidType(name, 'a string', v)
      if (!this.values.includes(v)) throw outOfRange(name, `one of ${quoteList(this.values)}`, JSON.stringify(v))
      return v
    },
    fromEnv(text) {
      return this.values.find((b) => b.toLowerCase() === text.toLowerCase()) ?? text
    },
  },
  boolean: {
    check(v, name) {
      if (typeof v !== 'boolean') throw invalidType(name, 'a boolean', v)
      return v
    },
    fromEnv: envBoolean,
  },
  ratios: {
    copy(v, name) {
      return copyArray(v, name, 'an array of ratios', this.minLength, this.maxLength)
    },
    check(list, name) {
      for (let i = 0; i < list.length; i++) {
        const t = list[i]
        if (typeof t !== 'number') throw notANumber(`${name}[${i}]`, t)
        if (!(t > this.above && t < this.below)) throw outOfRange(`${name}[${i}]`, this.expected, t)
        if (i > 0 && !(t > list[i - 1])) {
          throw outOfRange(`${name}[${i}]`, `above ${name}[${i - 1}] (${list[i - 1]}): thresholds must ascend`, t)
        }
      }
      return list
    },
    fromEnv: (text) => text.split(',').map((s) => envNumber(s.trim())),
  },
  lastWordsPath: { check: (v, name) => checkLastWordsPath(name, v), fromEnv: (text) => text },
  dir: {
    check(v, name) {
      const abs = nodePath.resolve(checkPath(name, v))
      let ok = false
      try {
        ok = fs.statSync(abs).isDirectory()
      } catch {}
      if (!ok) throw outOfRange(name, 'an existing directory', JSON.stringify(v))
      return abs
    },
    fromEnv: (text) => text,
  },
  root: { check: (v, name) => rootPath(v, name), fromEnv: (text) => text },
  lastWords: {
    copy(v, name) {
      if (v === true) return { stderr: undefined, path: undefined }
      if (v === false || v === null) return { stderr: false, path: undefined }
      if (typeof v !== 'object' || Array.isArray(v)) throw invalidType(name, 'a boolean or { path?, stderr? }', v)
      return { stderr: own(v, 'stderr'), path: own(v, 'path') }
    },
    check: checkFields,
  },
  stall: {
    copy(v, name) {
      if (v === true) return { sustainMs: undefined, margin: undefined }
      if (v === false || v === null) return null
      if (typeof v !== 'object' || Array.isArray(v)) throw invalidType(name, 'a boolean or { sustainMs?, margin? }', v)
      return { sustainMs: own(v, 'sustainMs'), margin: own(v, 'margin') }
    },
    check(v, name) {
      return v === null ? null : checkFields.call(this, v, name)
    },
  },
  onStall: {
    copy(v, name) {
      if (v === false || v === null) return null
      if (typeof v !== 'object' || Array.isArray(v)) throw invalidType(name, "an object { action: 'exit', afterMs? }", v)
      return { action: own(v, 'action'), afterMs: own(v, 'afterMs') }
    },
    check(v, name, out) {
      if (v === null) return null
      if (typeof v.action !== 'string') throw invalidType(`${name}.action`, "the string 'exit'", v.action)
      if (v.action !== 'exit') throw outOfRange(`${name}.action`, "'exit'", JSON.stringify(v.action))
      const [after] = this.fields
      const afterMs = v.afterMs === undefined ? after.default : after.check(v.afterMs, `${name}.afterMs`, out)
      if (out.stall === null) throw outOfRange(name, 'left unset while stall detection is off (stall: false)', `{ action: 'exit' }`)
      return { action: 'exit', afterMs }
    },
    fromEnv(text) {
      const m = /^exit(?::(\d+))?$/i.exec(text)
      if (m) return { action: 'exit', afterMs: m[1] === undefined ? undefined : Number(m[1]) }
      if (/^(off|none|report)$/i.test(text)) return null
      return text
    },
  },
  heapProfile: {
    copy(v, name) {
      if (v === true) return { start: undefined }
      if (v === false || v === null) return { start: 'off' }
      if (typeof v === 'string') return { start: v }
      if (typeof v !== 'object' || Array.isArray(v)) throw invalidType(name, `'threshold', 'start', 'off', a boolean or { ${this.fields.map((f) => `${f.key}?`).join(', ')} }`, v)
      const out = {}
      for (const f of this.fields) out[f.key] = own(v, f.key)
      return out
    },
    check: checkFields,
  },
}

/** What no kind says: the rules of single options, by name. */
const RULES = {
  hysteresis: {
    // The default never exceeds half the lowest threshold, so that level can be left.
    effectiveDefault(out) {
      return Math.min(this.default, out.thresholds[0] / 2)
    },
    rule(v, name, out) {
      if (v >= out.thresholds[0]) {
        throw outOfRange(name, `below the lowest threshold (${out.thresholds[0]}), or that level could never be left`, v)
      }
      return v
    },
  },
  maxIntervalMs: {
    effectiveDefault(out) {
      return Math.max(this.default, out[this.atLeast])
    },
    envCheck(v, out) {
      if (!(typeof v === 'number' && v >= this.min && v <= this.max)) return this.envExpected
      if (v < out[this.atLeast]) return `at least the minimum interval (${out[this.atLeast]} ms)`
      return null
    },
  },
  root: {
    envCheck(v) {
      let isDir = false
      try {
        isDir = fs.statSync(v).isDirectory()
      } catch {}
      return isDir ? null : this.envExpected
    },
  },
}

// The texts the checks quote, filled where they are read (a refusal, a problem line), not at load.
const CHECK_TEXTS = ['expected', 'envExpected', 'envDefault']

/**
 * A declaration of lib/core/options.json with what its kind and its name add: the
 * texts the checks quote filled in where they are read, its default
 * (lib/core/declared.js's defaultOf(): an object option's is made of its
 * fields' defaults), the very value of `defaults` where that names it. Only
 * the declaration's own keys are read (a polluted Object.prototype adds none).
 */
function declaration(raw, defaults) {
  const kind = own(raw, 'kind')
  const name = own(raw, 'name')
  const fields = own(raw, 'fields')
  const entry = { ...raw, ...(Object.hasOwn(KINDS, kind) ? KINDS[kind] : null), ...(Object.hasOwn(RULES, name) ? RULES[name] : null) }
  if (Array.isArray(fields)) entry.fields = fields.map((f) => declaration(f))
  for (const k of CHECK_TEXTS) {
    const text = own(raw, k)
    if (typeof text === 'string' && text.includes('{')) Object.defineProperty(entry, k, { enumerable: true, get: () => fill(text, entry) })
  }
  if (Array.isArray(own(raw, 'values'))) entry.values = Object.freeze([...raw.values])
  entry.default = defaults !== undefined && Object.hasOwn(defaults, name) ? defaults[name] : defaultOf(raw)
  return entry
}

/**
 * watch()'s options, in the order they are checked: lib/core/options.json's
 * `watch`, each with its kind's `copy`, `check` and `fromEnv`; `default`
 * (what WATCH_DEFAULTS shows; `effectiveDefault(out)` when the default
 * depends on an option before it); `envCheck(value, out)` for what only the
 * environment needs.
 */
const WATCH_OPTIONS = table(DECLARED.watch.map((raw) => declaration(raw, WATCH_DEFAULTS)))

const BASES = WATCH_OPTIONS.find((o) => o.name === 'basis').values

/** `root` as every reader takes it: an absolute path, `undefined` for `/`. */
function rootPath(v, name) {
  if (v === undefined) return undefined
  const abs = nodePath.resolve(checkPath(name, v))
  return abs === '/' ? undefined : abs
}

const WATCH = Object.create(null)
for (const o of WATCH_OPTIONS) WATCH[o.name] = o

// The settings watchConfig() made (frozen): handed to it again, they pass as they are.
const CONFIGS = new WeakSet()

/**
 * Snapshot and validate watch() options. Returns the monitor's settings in
 * the shape the native side takes (a null-prototype object). `name` is how
 * errors refer to the options object (`options.watch` for shed()).
 */
function watchConfig(options, name = 'options') {
  if (CONFIGS.has(options)) return options
  const o = optionsObject(options, name)
  const out = Object.create(null)
  for (const spec of WATCH_OPTIONS) {
    const full = `${name}.${spec.name}`
    let v = own(o, spec.name)
    if (v === undefined) {
      v = spec.effectiveDefault !== undefined ? spec.effectiveDefault(out) : spec.default
      if (Array.isArray(v)) v = [...v]
    } else {
      if (spec.copy !== undefined) v = spec.copy(v, full)
      v = spec.check(v, full, out)
    }
    out[spec.name] = v
  }
  const config = Object.create(null)
  config.thresholds = Object.freeze(out.thresholds)
  config.hysteresis = out.hysteresis
  config.basis = out.basis
  config.minIntervalMs = out.minIntervalMs
  config.maxIntervalMs = out.maxIntervalMs
  config.lastWordsStderr = out.lastWords.stderr
  config.lastWordsPath = out.lastWords.path
  config.root = out.root
  for (const spec of WATCH_OPTIONS) {
    // The options after these go on under their own name.
    if (!(spec.name in config) && spec.name !== 'lastWords') config[spec.name] = out[spec.name]
  }
  Object.freeze(config)
  CONFIGS.add(config)
  return config
}

/** The readers' options (getMemoryMetrics(usage, { root })): the root, `undefined` for `/`. */
function rootOption(options, name = 'options') {
  if (options === undefined || options === null) return undefined
  const o = optionsObject(options, name)
  return rootPath(own(o, 'root'), `${name}.root`)
}

// ---------------------------------------------------------------- the register's variables

/** Variables that are not watch() options: lib/core/options.json's `variables`. */
const REGISTER_VARIABLES = table(DECLARED.variables.map((raw) => declaration(raw)))
/** A register variable's declaration, by its name. */
const REGISTER = Object.fromEntries(REGISTER_VARIABLES.map((v) => [v.env, v]))

/** Every variable in README order: the watch() ones, then the register's own. */
function variables() {
  const list = []
  for (const spec of WATCH_OPTIONS) {
    if (spec.name === 'root') continue // last: it is for tests
    if (spec.env !== undefined) list.push({ ...envView(spec), option: spec.name })
    else for (const f of spec.fields || []) list.push({ ...envView(f), option: `${spec.name}.${f.key}` })
  }
  for (const v of REGISTER_VARIABLES) list.push(envView(v))
  list.push({ ...envView(WATCH.root), option: 'root' })
  return list
}

function envView(spec) {
  const def = spec.envDefault !== undefined ? spec.envDefault : spec.default
  return {
    name: spec.env,
    doc: fill(spec.envDoc, spec),
    default: def === undefined ? null : String(def),
    docDefault: spec.envDocDefault !== undefined ? spec.envDocDefault : def === undefined ? 'none' : `\`${def}\``,
  }
}

/** The register's VARIABLES: name -> what it means, with its default. */
function variableDescriptions() {
  const out = {}
  for (const v of variables()) out[v.name] = v.default === null ? v.doc : `${v.doc} (default ${v.default})`
  return Object.freeze(out)
}

/**
 * Read the register's settings from `env` (own properties only). Returns
 * `{ settings, problems }`; each problem is one line about one variable,
 * whose default is used instead. Each watch() variable is parsed into a
 * value and validated by the same check watch() runs.
 */
function parseEnv(env) {
  const problems = []
  const raw = Object.create(null) // each variable read once
  const text = (name) => {
    if (!(name in raw)) raw[name] = Object.hasOwn(env, name) ? env[name] : undefined
    const v = raw[name]
    return typeof v !== 'string' || v.trim() === '' ? undefined : v.trim()
  }
  const bad = (name, expected, fallback) => {
    problems.push(`${name}=${JSON.stringify(raw[name])} is not valid (${expected}); using the default${fallback === undefined || fallback === null ? '' : ` (${fallback})`}`)
  }
  const settings = { watch: {}, logFormat: 'json', metrics: null, root: undefined }
  const out = Object.create(null) // the values so far, defaults included, for the checks that depend on them

  // One variable into one value: parse, check as watch() does, else complain and use the default.
  const take = (spec, t, check, fallback) => {
    const value = spec.fromEnv(t)
    let why = spec.envCheck !== undefined ? spec.envCheck(value, out) : null
    let checked
    if (why === null) {
      try {
        checked = check(value)
      } catch (err) {
        why = spec.envExpected !== undefined ? spec.envExpected : expectedOf.get(err) || err.message
      }
    }
    if (why !== null) {
      bad(spec.env, why, fallback)
      return undefined
    }
    return checked
  }

  for (const spec of WATCH_OPTIONS) {
    if (spec.env === undefined && spec.fields !== undefined) {
      // lastWords, stall, heapProfile: one variable per field.
      const lw = {}
      const value = {}
      for (const f of spec.fields) {
        const t = text(f.env)
        const v = t === undefined ? undefined : take(f, t, (x) => f.check(x, f.env), f.envDefault)
        if (v !== undefined) lw[f.key] = v
        value[f.key] = v === undefined ? f.default : v
      }
      if (Object.keys(lw).length) settings.watch[spec.name] = lw
      out[spec.name] = value
      continue
    }
    if (spec.env === undefined) {
      // An option without a variable: the register leaves it at its default.
      out[spec.name] = spec.effectiveDefault !== undefined ? spec.effectiveDefault(out) : spec.default
      continue
    }
    const t = text(spec.env)
    const fallback = spec.envDefault !== undefined ? spec.envDefault : spec.default
    let v = t === undefined ? undefined : take(spec, t, (x) => spec.check(spec.copy ? spec.copy(x, spec.env) : x, spec.env, out), fallback)
    if (v !== undefined) settings.watch[spec.name] = v
    else v = spec.effectiveDefault !== undefined ? spec.effectiveDefault(out) : spec.default
    out[spec.name] = v
  }
  settings.root = settings.watch.root

  const [logFormat, port, host] = REGISTER_VARIABLES
  const format = text(logFormat.env)
  if (format !== undefined) {
    const f = format.toLowerCase()
    if (logFormat.values.includes(f)) settings.logFormat = f
    else bad(logFormat.env, logFormat.envExpected, logFormat.default)
  }
  const p = text(port.env)
  if (p !== undefined) {
    const n = Number(p)
    if (/^\d+$/.test(p) && n >= port.min && n <= port.max) settings.metrics = { port: n, host: text(host.env) ?? host.default }
    else bad(port.env, port.envExpected, port.envDefault)
  }
  const warning = REGISTER.OOMGUARD_HEAP_WARNING
  settings.heapWarning = warning.default
  const w = text(warning.env)
  if (w !== undefined) {
    const v = warning.fromEnv(w)
    if (typeof v === 'boolean') settings.heapWarning = v
    else bad(warning.env, warning.envExpected, warning.envDefault)
  }
  // Not the user's setting but the register's mark: anything but a pid is no mark.
  const service = text(REGISTER.OOMGUARD_SERVICE_PID.env)
  settings.servicePid = service !== undefined && /^\d{1,10}$/.test(service) && Number(service) > 0 ? Number(service) : null
  return { settings, problems }
}

// ---------------------------------------------------------------- shed() and the Fastify plugin

/** shed()'s options: lib/core/options.json's `shed`. */
const shedDeclared = once(() => {
  const list = table(DECLARED.shed.map((raw) => declaration(raw, SHED_DEFAULTS)))
  const byName = Object.create(null)
  for (const o of list) byName[o.name] = o
  return { list, byName }
})

function checkRoutePath(name, v) {
  if (typeof v !== 'string') throw invalidType(name, 'a path string', v)
  if (!v.startsWith('/') || /[?#\s]/.test(v)) {
    throw outOfRange(name, "a path starting with '/', without '?', '#' or whitespace", JSON.stringify(v))
  }
  return v
}

/**
 * A monitor passed in (shed(), prometheus(), registerPromClient(),
 * observeMemory()): anything with `thresholds` and `level` that its own
 * object or its class provides (never Object.prototype). The thresholds are
 * copied and checked once; `level` and `closed` are read where they are used.
 * Returns a frozen `{ monitor, thresholds, basis }`.
 */
function monitorSnapshot(m, name, expected) {
  if (m === null || typeof m !== 'object' || !classProperty(m, 'thresholds') || !classProperty(m, 'level')) {
    throw invalidType(name, expected, m)
  }
  const raw = m.thresholds
  if (!Array.isArray(raw)) throw invalidType(name, expected, m)
  let thresholds
  try {
    thresholds = WATCH.thresholds.check(WATCH.thresholds.copy(raw, `${name}.thresholds`), `${name}.thresholds`)
  } catch (err) {
    if (err.code === 'ERR_OUT_OF_RANGE' && /entries$/.test(err.message)) throw invalidType(name, expected, m)
    throw err
  }
  const basis = classProperty(m, 'basis') ? m.basis : undefined
  return Object.freeze({ monitor: m, thresholds: Object.freeze(thresholds), basis: BASES.includes(basis) ? basis : null })
}

/** A monitor's level as read now, validated against its thresholds; null when not a level. */
function monitorLevel(snap) {
  const m = snap.monitor
  if (classProperty(m, 'closed') && m.closed === true) return null
  const level = m.level
  return Number.isInteger(level) && level >= 0 && level <= snap.thresholds.length ? level : null
}

/**
 * Snapshot and validate the options of shed() and the Fastify plugin, up to
 * the monitor (which the caller then starts with `watch` when not given).
 * `name` is how errors refer to the options object.
 */
function shedConfig(options, name = 'options') {
  const o = optionsObject(options, name)
  const c = Object.create(null)
  const given = own(o, 'monitor')
  const watchOptions = own(o, 'watch')
  c.monitor = undefined
  if (given !== undefined) {
    c.monitor = monitorSnapshot(given, `${name}.monitor`, 'a Monitor (from watch())')
    if (classProperty(given, 'closed') && given.closed === true) throw outOfRange(`${name}.monitor`, 'an open Monitor', 'a closed one')
    if (watchOptions !== undefined) {
      throw invalidType(`${name}.watch`, 'undefined when options.monitor is given (the monitor has its own options)', watchOptions)
    }
  }
  if (watchOptions !== undefined && watchOptions !== null && (typeof watchOptions !== 'object' || Array.isArray(watchOptions))) {
    throw invalidType(`${name}.watch`, 'an object (options for watch())', watchOptions)
  }

  const SHED = shedDeclared().byName
  const retryAfter = own(o, 'retryAfter') ?? SHED.retryAfter.default
  if (typeof retryAfter !== 'number') throw invalidType(`${name}.retryAfter`, 'a number of seconds', retryAfter)
  if (!Number.isInteger(retryAfter) || retryAfter < SHED.retryAfter.min || retryAfter > SHED.retryAfter.max) {
    throw outOfRange(`${name}.retryAfter`, SHED.retryAfter.expected, retryAfter)
  }
  c.retryAfter = retryAfter

  const exclude = own(o, 'exclude')
  if (exclude === undefined) c.exclude = SHED.exclude.default
  else if (typeof exclude === 'function') c.exclude = exclude
  else if (Array.isArray(exclude)) {
    const list = copyArray(exclude, `${name}.exclude`, 'an array of paths', 0, SHED.exclude.maxLength)
    c.exclude = Object.freeze(list.map((p, i) => checkRoutePath(`${name}.exclude[${i}]`, p === HOLE ? undefined : p)))
  } else throw invalidType(`${name}.exclude`, 'an array of paths or a function (req) => boolean', exclude)

  const healthPath = own(o, 'healthPath')
  if (healthPath === undefined) c.healthPath = SHED.healthPath.default
  else if (healthPath === false || healthPath === null) c.healthPath = null
  else c.healthPath = checkRoutePath(`${name}.healthPath`, healthPath)

  const onShed = own(o, 'onShed')
  if (onShed !== undefined && typeof onShed !== 'function') throw invalidType(`${name}.onShed`, 'a function', onShed)
  c.onShed = onShed

  // The monitor shed() starts: its options snapshotted and checked here, named as ours.
  c.watch = given === undefined ? watchConfig(watchOptions ?? undefined, `${name}.watch`) : undefined
  c.level = own(o, 'level')
  return c
}

/** shed()'s `level`, once the monitor's thresholds are known. */
function shedLevel(level, thresholds, name = 'options') {
  const top = thresholds.length
  if (level === undefined) return top
  if (typeof level !== 'number') throw invalidType(`${name}.level`, 'a number', level)
  if (!Number.isInteger(level) || level < 1 || level > top) {
    throw outOfRange(`${name}.level`, `a whole number from 1 to ${top} (the monitor's thresholds: ${thresholds.join(', ')})`, level)
  }
  return level
}

// ---------------------------------------------------------------- prometheus(), prom-client, OpenTelemetry

/** The metrics exporters' options: lib/core/options.json's `metrics`. */
const metricsDeclared = once(() => table(DECLARED.metrics.map((raw) => declaration(raw))))

/**
 * Snapshot the options of the metrics exporters: a null-prototype object
 * with the own values of `prefix`, `monitor` (a monitorSnapshot), `root`
 * (validated), `metrics` and `register` (checked by their users).
 */
function metricsConfig(options, name = 'options') {
  const o = optionsObject(options, name)
  const c = Object.create(null)
  for (const spec of metricsDeclared()) c[spec.name] = own(o, spec.name)
  c.root = rootPath(c.root, `${name}.root`)
  const m = c.monitor
  c.monitor = m === undefined || m === null ? undefined : monitorSnapshot(m, `${name}.monitor`, 'a Monitor from watch()')
  return c
}

// ---------------------------------------------------------------- the doctor CLI

/**
 * The doctor's flags (bin/oomguard.js). `parse(text)` returns `{ value }`,
 * or `{ error }`: the one line that says why the value is refused (exit 2). The
 * usage text is built from this list.
 */
const cliFlags = once(() =>
  table([
    { flag: '--json', key: 'json', doc: 'print the report as JSON', readme: 'print the report as JSON (never coloured)' },
    {
      flag: '--heap-limit',
      key: 'heapLimitMib',
      arg: 'MIB',
      max: 2 ** 30, // MiB: 1 PiB, far above any V8 heap
      doc: 'the service\'s V8 heap limit in MiB, when it differs from this\ndoctor\'s own (node -p "v8.getHeapStatistics().heap_size_limit/2**20")',
      readme: "the service's V8 heap limit in MiB, when it differs from the doctor's own; decimal digits, up to 1 PiB",
      parse(v) {
        // Decimal digits only: no hex, no exponent, no sign, no NaN or Infinity.
        const n = DECIMAL.test(v) ? Number(v) : NaN
        if (n !== n && Number(v) > 0 && Number.isFinite(Number(v))) return { error: `--heap-limit must be written in decimal digits (MiB, such as 512 or 1.5), got ${JSON.stringify(v)}` }
        if (!(n > 0)) return { error: `--heap-limit must be a positive number of MiB, got ${JSON.stringify(v)}` }
        if (!(n <= this.max)) return { error: `--heap-limit must be at most ${this.max} MiB (1 PiB), got ${JSON.stringify(v)}` }
        return { value: n }
      },
    },
    {
      flag: '--workers',
      key: 'workers',
      arg: 'N',
      max: 65535,
      doc: 'the number of worker threads the service runs (each has its own heap)',
      readme: 'the number of worker threads the service runs (0 to 65535): turns the workers item into a check',
      parse(v) {
        if (!/^\d+$/.test(v)) return { error: `--workers must be a whole number (0 or more), got ${JSON.stringify(v)}` }
        const n = Number(v)
        if (!(n <= this.max)) return { error: `--workers must be at most ${this.max}, got ${JSON.stringify(v)}` }
        return { value: n }
      },
    },
    {
      flag: '--root',
      key: 'root',
      arg: 'DIR',
      doc: 'read a fixture tree that stands in for /',
      readme: 'read a fixture tree that stands in for `/` (tests)',
      parse(v) {
        let st = null
        try {
          if (!v.includes('\0')) st = fs.statSync(v)
        } catch {}
        return st !== null && st.isDirectory() ? { value: v } : { error: `--root ${v}: not a directory` }
      },
    },
    {
      flag: '--node-version',
      key: 'nodeVersion',
      arg: 'V',
      doc: "the service's Node version, when it differs from this doctor's\n(the heap advice is then modelled for it, not measured)",
      parse(v) {
        if (!/^v?\d{1,4}\.\d{1,4}\.\d{1,4}$/.test(v)) return { error: `--node-version must look like 24.19.0, got ${JSON.stringify(v)}` }
        return { value: v.startsWith('v') ? v : `v${v}` }
      },
    },
    { flag: '--strict', key: 'strict', doc: 'exit with status 1 when a check fails', readme: 'exit with status 1 when a check fails (warnings and checks by hand do not fail)' },
    { flag: '--help', short: '-h', key: 'help', doc: 'print this help', readme: 'the usage' },
  ]),
)

/** The flags' lines of the usage text. */
function cliFlagsUsage() {
  const lines = []
  for (const f of cliFlags()) {
    const label = `${f.short ? `${f.short}, ` : ''}${f.flag}${f.arg ? ` ${f.arg}` : ''}`
    const [first, ...rest] = f.doc.split('\n')
    lines.push(`  ${label.padEnd(19)}${first}`)
    for (const r of rest) lines.push(`${' '.repeat(21)}${r}`)
  }
  return lines.join('\n')
}

// ---------------------------------------------------------------- doctor.diagnose() and doctor.render()

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)

/** How deep ownCopy() follows objects: the doctor's inputs and reports are a few levels deep. */
const MAX_DEPTH = 16

/**
 * A deep copy of `value` from own enumerable properties only, each read
 * once, objects as null-prototype objects (arrays stay arrays): code that
 * reads the copy finds no key a polluted Object.prototype offers.
 */
function ownCopy(value, name, depth = 0) {
  if (value === null || typeof value !== 'object') return value
  if (depth > MAX_DEPTH) throw outOfRange(name, `nested at most ${MAX_DEPTH} levels`, 'deeper')
  if (Array.isArray(value)) {
    const out = new Array(value.length)
    for (let i = 0; i < value.length; i++) out[i] = Object.hasOwn(value, i) ? ownCopy(value[i], name, depth + 1) : undefined
    return out
  }
  const out = Object.create(null)
  for (const key of Object.keys(value)) out[key] = ownCopy(value[key], name, depth + 1)
  return out
}

/** diagnose()'s `metrics`: a getMemoryMetrics() result, in the parts the report reads. */
function diagnoseMetrics(metrics) {
  if (!isObject(metrics)) throw invalidType('metrics', 'a getMemoryMetrics() result', metrics)
  const diagnoses = own(metrics, 'diagnoses')
  if (!Array.isArray(diagnoses)) throw invalidType('metrics', 'a getMemoryMetrics() result (with a diagnoses array)', metrics)
  diagnoses.forEach((d, i) => {
    if (!isObject(d)) throw invalidType(`metrics.diagnoses[${i}]`, 'a diagnosis object', d)
  })
  for (const key of ['cgroup', 'stat', 'events', 'pressure', 'limitingCgroup', 'v8']) {
    const v = own(metrics, key)
    if (v !== undefined && v !== null && !isObject(v)) throw invalidType(`metrics.${key}`, 'an object or null', v)
  }
  return metrics
}

/** The doctor's description of the service: diagnose()'s `env`, own properties copied. */
const doctorEnv = once(() =>
  table([
    { name: 'heapLimitFrom', values: ['process', 'flag'], doc: "'process': the heap limit is the doctor's own; 'flag': given with --heap-limit" },
    { name: 'nodeVersion', doc: 'the node version the heap limit is from (a string)' },
    { name: 'nodeOptions', doc: 'the NODE_OPTIONS the heap limit is from (a string)' },
    { name: 'workers', min: 0, max: 65535, doc: 'the number of worker threads the service runs' },
    { name: 'heapAdvice', object: true, doc: 'the heap advice (oomguard doctor measures it; lib/integrations/heap-probe.js)' },
    { name: 'defaultHeapLimitBytes', bytes: true, doc: "node's default heap limit, bytes, where there is no container limit" },
    {
      name: 'own',
      own: true,
      doc: "the doctor's own processes in the cgroup it reads (it, and the npm/npx that started it): { bytes, processes: [{ pid, command, bytes }] }, resident anonymous memory (RssAnon); the report counts the service without them",
    },
    {
      name: 'earlier',
      metrics: true,
      doc: 'an earlier getMemoryMetrics() result of the same cgroup: failed charges, pressure and refaults since then (the CLI takes one half a second before, on the live system)',
    },
  ]),
)

function diagnoseEnv(env) {
  const o = optionsObject(env, 'env')
  const c = Object.create(null)
  for (const spec of doctorEnv()) {
    const v = own(o, spec.name)
    const name = `env.${spec.name}`
    if (v === undefined || v === null) {
      c[spec.name] = v
    } else if (spec.object) {
      if (!isObject(v) || !Array.isArray(own(v, 'options'))) throw invalidType(name, 'a heap advice object (with an options array)', v)
      c[spec.name] = v
    } else if (spec.bytes) {
      if (typeof v !== 'number') throw invalidType(name, 'a number', v)
      if (!(v >= 0) || v === Infinity) throw outOfRange(name, 'a finite, non-negative number of bytes', v)
      c[spec.name] = v
    } else if (spec.metrics) {
      if (!isObject(v)) throw invalidType(name, 'a getMemoryMetrics() result', v)
      c[spec.name] = v
    } else if (spec.own) {
      const list = isObject(v) ? own(v, 'processes') : undefined
      const b = isObject(v) ? own(v, 'bytes') : undefined
      if (!Array.isArray(list) || typeof b !== 'number' || !(b >= 0) || b === Infinity) {
        throw invalidType(name, 'an object with bytes (a finite, non-negative number) and a processes array', v)
      }
      list.forEach((p, i) => {
        if (!isObject(p) || !Number.isInteger(own(p, 'pid')) || typeof own(p, 'bytes') !== 'number' || !(own(p, 'bytes') >= 0)) {
          throw invalidType(`${name}.processes[${i}]`, 'an object with a whole pid and bytes', p)
        }
      })
      c[spec.name] = v
    } else if (spec.values !== undefined) {
      if (typeof v !== 'string') throw invalidType(name, 'a string', v)
      if (!spec.values.includes(v)) throw outOfRange(name, `one of ${quoteList(spec.values)}`, JSON.stringify(v))
      c[spec.name] = v
    } else if (spec.max !== undefined) {
      if (typeof v !== 'number') throw invalidType(name, 'a number', v)
      if (!Number.isInteger(v) || v < spec.min || v > spec.max) throw outOfRange(name, `a whole number from ${spec.min} to ${spec.max}`, v)
      c[spec.name] = v
    } else {
      if (typeof v !== 'string') throw invalidType(name, 'a string or null', v)
      c[spec.name] = v
    }
  }
  return c
}

/** render()'s `report`: a diagnose() result, in the parts the text reads. */
function renderReport(report) {
  if (!isObject(report) || own(report, 'oomguard') !== 'doctor') throw invalidType('report', 'a doctor.diagnose() result', report)
  for (const key of ['limit', 'memory', 'heap', 'oomKills', 'summary']) {
    if (!isObject(own(report, key))) throw invalidType(`report.${key}`, 'an object (from doctor.diagnose())', own(report, key))
  }
  for (const key of ['cgroup', 'breakdown', 'pressure']) {
    const v = own(report, key)
    if (v !== null && !isObject(v)) throw invalidType(`report.${key}`, 'an object or null (from doctor.diagnose())', v)
  }
  for (const key of ['checks', 'diagnoses']) {
    const list = own(report, key)
    if (!Array.isArray(list)) throw invalidType(`report.${key}`, 'an array (from doctor.diagnose())', list)
    list.forEach((x, i) => {
      if (!isObject(x)) throw invalidType(`report.${key}[${i}]`, 'an object (from doctor.diagnose())', x)
    })
  }
  return report
}

/** useColor()'s `env` (process.env or the like): FORCE_COLOR, NO_COLOR, TERM, own properties only. */
function colorEnv(env) {
  const o = optionsObject(env, 'env')
  const c = Object.create(null)
  for (const key of ['FORCE_COLOR', 'NO_COLOR', 'TERM']) {
    const v = own(o, key)
    if (v !== undefined && typeof v !== 'string') throw invalidType(`env.${key}`, 'a string', v)
    c[key] = v
  }
  return c
}

/** render()'s `options`: `{ color }`, own properties copied. */
function renderOptions(options) {
  const o = optionsObject(options, 'options')
  const color = own(o, 'color')
  if (color !== undefined && typeof color !== 'boolean') throw invalidType('options.color', 'a boolean', color)
  const c = Object.create(null)
  c.color = color === true
  return c
}

// ---------------------------------------------------------------- generated documentation: docs/*.md tables, lib/index.d.ts

function watchTable() {
  const rows = ['| option | default | meaning |', '| --- | --- | --- |']
  for (const o of WATCH_OPTIONS) {
    const def = o.docDefault !== undefined ? fill(o.docDefault, o) : FILTERS.code(o.default)
    rows.push(`| \`${o.name}\` | ${def} | ${fill(o.doc, o)} |`)
  }
  return rows.join('\n')
}

/** An interface's members: each option's JSDoc (its bounds and default filled in) and type. */
function members(list) {
  const lines = []
  for (const o of list) {
    const doc = fill(o.tsDoc, o).split('\n')
    if (doc.length === 1) lines.push(`  /** ${doc[0]} */`)
    else lines.push('  /**', ...doc.map((l) => `   * ${l}`), '   */')
    const type = fill(o.ts, o)
    const line = `  ${o.name}?: ${type}`
    // As the formatter (biome.jsonc's line width) lays out a union too long for one line: a member a line.
    if (line.length <= TS_LINE_WIDTH) lines.push(line)
    else lines.push(`  ${o.name}?:`, ...unionMembers(type).map((m) => `    | ${m}`))
  }
  return lines
}

const TS_LINE_WIDTH = 200

/** A TypeScript union's members at its top level (not inside braces, brackets, parentheses or type arguments). */
function unionMembers(type) {
  const out = []
  let depth = 0
  let start = 0
  for (let i = 0; i < type.length; i++) {
    const c = type[i]
    if (c === '{' || c === '(' || c === '[' || c === '<') depth++
    else if (c === '}' || c === ')' || c === ']' || (c === '>' && type[i - 1] !== '=')) depth--
    else if (c === '|' && depth === 0) {
      out.push(type.slice(start, i).trim())
      start = i + 1
    }
  }
  out.push(type.slice(start).trim())
  return out.filter((m) => m !== '')
}

/** lib/index.d.ts's `WatchBasis` and `WatchOptions`. */
function watchInterface() {
  const basis = WATCH.basis
  return [
    `/** What a monitor compares with the limit (\`basis\`). */`,
    `export type WatchBasis = ${FILTERS.union(basis.values)}`,
    '',
    'export interface WatchOptions {',
    ...members(WATCH_OPTIONS),
    '}',
  ].join('\n')
}

/** The type of a default value, as `WATCH_DEFAULTS` declares it. */
function defaultType(v) {
  if (Array.isArray(v)) return `readonly ${typeof v[0]}[]`
  if (typeof v === 'string') return `'${v}'`
  if (v !== null && typeof v === 'object')
    return `Readonly<{ ${Object.entries(v)
      .map(([k, x]) => `${k}: ${defaultType(x)}`)
      .join('; ')} }>`
  return typeof v
}

/** lib/index.d.ts's `WATCH_DEFAULTS`. */
function watchDefaults() {
  const lines = ['/** The defaults of `watch()`. */', 'export declare const WATCH_DEFAULTS: Readonly<{']
  for (const [k, v] of Object.entries(WATCH_DEFAULTS)) lines.push(`  ${k}: ${defaultType(v)}`)
  lines.push('}>')
  return lines.join('\n')
}

/** lib/index.d.ts's `ShedOptions`. */
function shedInterface() {
  return [
    '/** Options of `shed()` (and of the Fastify plugin, `oomguard/fastify`). */',
    'export interface ShedOptions<Req = IncomingMessage, Res = ServerResponse> {',
    ...members(shedDeclared().list),
    '}',
  ].join('\n')
}

function variablesTable() {
  const rows = ['| variable | default | meaning |', '| --- | --- | --- |']
  for (const v of variables()) rows.push(`| \`${v.name}\` | ${v.docDefault} | ${v.doc} |`)
  return rows.join('\n')
}

function shedTable() {
  const rows = ['| option | default | meaning |', '| --- | --- | --- |']
  for (const o of shedDeclared().list) {
    const def = o.docDefault !== undefined ? o.docDefault : Array.isArray(o.default) ? o.default.map((p) => `\`${p}\``).join(', ') : `\`${o.default}\``
    rows.push(`| \`${o.name}\` | ${def} | ${o.doc} |`)
  }
  return rows.join('\n')
}

function cliTable() {
  const rows = ['| flag | |', '| --- | --- |']
  for (const f of cliFlags()) {
    const label = f.short ? `\`${f.short}\`, \`${f.flag}\`` : `\`${f.flag}${f.arg ? ` ${f.arg}` : ''}\``
    rows.push(`| ${label} | ${f.readme !== undefined ? f.readme : f.doc.replace(/\n/g, ' ')} |`)
  }
  return rows.join('\n')
}

const README_TABLES = {
  'watch-options': watchTable,
  'register-variables': variablesTable,
  'shed-options': shedTable,
  'doctor-flags': cliTable,
  'watch-interface': watchInterface,
  'watch-defaults': watchDefaults,
  'shed-interface': shedInterface,
}

/** The files that hold the generated sections, by section: each section is in one file. */
const DOC_TABLE_PAGES = {
  'watch-options': 'docs/watch.md',
  'register-variables': 'docs/preload.md',
  'shed-options': 'docs/shedding.md',
  'doctor-flags': 'docs/doctor.md',
  'watch-interface': 'lib/index.d.ts',
  'watch-defaults': 'lib/index.d.ts',
  'shed-interface': 'lib/index.d.ts',
}

/**
 * A file with every generated section between its markers replaced:
 * `<!-- options:NAME -->` and `<!-- /options:NAME -->` on a page,
 * `// options:NAME` and `// /options:NAME` in a declaration file.
 */
function renderReadme(text) {
  return text.replace(/((?:<!--|\/\/) options:([a-z-]+)(?: -->)?\n)[\s\S]*?((?:<!--|\/\/) \/options:\2(?: -->)?)/g, (all, open, name, close) => {
    const make = README_TABLES[name]
    return make === undefined ? all : `${open}${make()}\n${close}`
  })
}

module.exports = {
  // errors
  typeName,
  invalidType,
  outOfRange,
  // snapshot primitives
  own,
  table,
  optionsObject,
  copyArray,
  HOLE,
  // the tables
  WATCH_OPTIONS,
  WATCH_DEFAULTS,
  REGISTER_VARIABLES,
  cliFlagsUsage,
  BASES,
  TRUE_WORDS,
  FALSE_WORDS,
  // snapshot and validate
  watchConfig,
  rootOption,
  shedConfig,
  shedLevel,
  metricsConfig,
  monitorSnapshot,
  monitorLevel,
  parseEnv,
  variables,
  variableDescriptions,
  renderReadme,
  DOC_TABLE_PAGES,
  diagnoseMetrics,
  diagnoseEnv,
  renderReport,
  ownCopy,
  renderOptions,
  colorEnv,
}

// The tables only shed(), the exporters, the doctor and the documentation read: made on first use.
Object.defineProperties(module.exports, {
  SHED_OPTIONS: { enumerable: true, get: () => shedDeclared().list },
  SHED_DEFAULTS: { enumerable: true, get: () => SHED_DEFAULTS },
  MAX_RETRY_AFTER: { enumerable: true, get: () => shedDeclared().byName.retryAfter.max },
  METRICS_OPTIONS: { enumerable: true, get: metricsDeclared },
  CLI_FLAGS: { enumerable: true, get: cliFlags },
  DOCTOR_ENV: { enumerable: true, get: doctorEnv },
  DEFAULT_PREFIX: { enumerable: true, get: () => metricsDeclared().find((o) => o.name === 'prefix').default },
})

if (require.main === module && process.argv[2] === '--readme') {
  // Rewrite the generated tables of the documentation pages in place.
  for (const page of new Set(Object.values(DOC_TABLE_PAGES))) {
    const file = nodePath.join(__dirname, '..', '..', page)
    const before = fs.readFileSync(file, 'utf8')
    const after = renderReadme(before)
    if (after !== before) fs.writeFileSync(file, after)
    process.stdout.write(after === before ? `${page}: generated sections up to date\n` : `${page}: generated sections rewritten\n`)
  }
}
