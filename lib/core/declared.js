'use strict'
// lib/core/options.json, read once, and the defaults it declares: what
// WATCH_DEFAULTS and SHED_DEFAULTS are, without the validator
// (lib/core/options.js, which takes the declarations and the defaults from
// here). The ES module front door (lib/index.mjs) must export both at import;
// this is all it loads for them.

const fs = require('node:fs')
const nodePath = require('node:path')

// Read as text and parsed: cheaper at start than require() of a .json (measured ~0.4 ms against ~1.5 ms).
const DECLARED = JSON.parse(fs.readFileSync(nodePath.join(__dirname, 'options.json'), 'utf8'))

/**
 * A declaration's default, frozen: a list is copied, an object option (one
 * with `fields`, but `onStall`, whose default is none) is made of its
 * fields' defaults. Own keys only.
 */
function defaultOf(raw) {
  const fields = Object.hasOwn(raw, 'fields') ? raw.fields : undefined
  if (Array.isArray(fields) && !(Object.hasOwn(raw, 'kind') && raw.kind === 'onStall')) {
    return Object.freeze(Object.fromEntries(fields.map((f) => [f.key, defaultOf(f)])))
  }
  const def = Object.hasOwn(raw, 'default') ? raw.default : undefined
  return Array.isArray(def) ? Object.freeze([...def]) : def
}

/** `{ name: default }` of a list of declarations, those with a default only, frozen. */
function defaultsOf(list) {
  const out = {}
  for (const raw of list) {
    const def = defaultOf(raw)
    if (def !== undefined) out[raw.name] = def
  }
  return Object.freeze(out)
}

/** watch()'s defaults. */
const WATCH_DEFAULTS = defaultsOf(DECLARED.watch)
/** shed()'s defaults. */
const SHED_DEFAULTS = defaultsOf(DECLARED.shed)

module.exports = { DECLARED, defaultOf, WATCH_DEFAULTS, SHED_DEFAULTS }
