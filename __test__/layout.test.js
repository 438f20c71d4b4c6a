'use strict'
// lib/ has two floors: lib/core/ (the reading, watch(), options, loading the
// addon) and lib/integrations/ (one file per integration). The integrations
// take from the core, never the reverse; lib/index.js and lib/index.mjs are
// the front door over both. docs/internals.md draws the floors.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

const LIB = path.join(__dirname, '..', 'lib')
const FLOORS = ['core', 'integrations']
const FRONT_DOOR = ['index.js', 'index.mjs', 'index.d.ts']

/** Every relative module a file names: require(), import ... from, import(), import type. */
function relativeImports(file) {
  const text = fs.readFileSync(file, 'utf8')
  const found = []
  for (const re of [/require\(\s*(['"])(\.{1,2}\/[^'"]+)\1\s*\)/g, /\bfrom\s+(['"])(\.{1,2}\/[^'"]+)\1/g, /\bimport\(\s*(['"])(\.{1,2}\/[^'"]+)\1\s*\)/g]) {
    for (const m of text.matchAll(re)) found.push(m[2])
  }
  return found
}

function floorOf(file) {
  const rel = path.relative(LIB, file)
  if (rel.startsWith('..')) return 'outside'
  const [first] = rel.split(path.sep)
  return FLOORS.includes(first) ? first : 'front'
}

const files = (dir) => fs.readdirSync(dir).map((n) => path.join(dir, n))

test('every file of lib/ is on a floor, except the front door', () => {
  const loose = fs.readdirSync(LIB).filter((n) => !FLOORS.includes(n) && !FRONT_DOOR.includes(n))
  assert.deepEqual(loose, [], 'files in lib/ outside lib/core/ and lib/integrations/')
  for (const floor of FLOORS) assert.ok(fs.readdirSync(path.join(LIB, floor)).length > 0, floor)
})

test('lib/core/ never takes from lib/integrations/ (nor from the front door)', () => {
  const upward = []
  for (const file of files(path.join(LIB, 'core'))) {
    if (!/\.(c|m)?js$|\.d\.(m)?ts$/.test(file)) continue
    for (const spec of relativeImports(file)) {
      const target = floorOf(path.resolve(path.dirname(file), spec))
      if (target === 'integrations' || target === 'front') upward.push(`${path.relative(LIB, file)} -> ${spec}`)
    }
  }
  assert.deepEqual(upward, [])
})

test('the checker sees an upward import when there is one', () => {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'oomguard-layout-'))
  try {
    const file = path.join(dir, 'x.js')
    fs.writeFileSync(file, "const a = require('../integrations/shed.js')\nimport b from './y.js'\nconst c = import('../core/z.js')\n")
    assert.deepEqual(relativeImports(file), ['../integrations/shed.js', './y.js', '../core/z.js'])
    assert.equal(floorOf(path.join(LIB, 'integrations', 'shed.js')), 'integrations')
    assert.equal(floorOf(path.join(LIB, 'index.js')), 'front')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('every relative import in lib/ resolves to a file', () => {
  const missing = []
  for (const dir of [LIB, ...FLOORS.map((f) => path.join(LIB, f))]) {
    for (const file of files(dir)) {
      if (!fs.statSync(file).isFile()) continue
      for (const spec of relativeImports(file)) {
        const target = path.resolve(path.dirname(file), spec)
        if (![target, `${target}.js`, `${target}.d.ts`].some((p) => fs.existsSync(p))) missing.push(`${path.relative(LIB, file)} -> ${spec}`)
      }
    }
  }
  assert.deepEqual(missing, [])
})

test("docs/internals.md's diagram names each floor's modules", () => {
  const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'internals.md'), 'utf8')
  const diagram = doc.slice(doc.indexOf('## The data flow'))
  for (const floor of FLOORS) {
    const at = diagram.indexOf(`lib/${floor}/`)
    assert.ok(at >= 0, `lib/${floor}/ in the diagram`)
    const block = diagram.slice(at, diagram.indexOf('```', at))
    for (const name of fs.readdirSync(path.join(LIB, floor))) {
      if (!name.endsWith('.js')) continue
      const base = name.replace(/\.js$/, '')
      assert.ok(block.includes(name) || block.includes(base), `${floor}/${name} is not named in the diagram`)
    }
  }
})
