'use strict'
// Sampled allocation sites of Buffer backing stores (lib/core/buffer-sites.js):
// what V8's heap sampler cannot see.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const SITES = path.join(__dirname, '..', 'lib', 'core', 'buffer-sites.js')

/** Runs `body` in a child with --expose-gc and the module as `bs`; returns its JSON line. */
function child(body) {
  const code = `const bs = require(${JSON.stringify(SITES)})
    const settle = async () => { for (let i = 0; i < 4; i++) { global.gc(); await new Promise((r) => setTimeout(r, 20)) } }
    const bytesOf = (name) => { let b = 0; const walk = (n) => { if (n.callFrame.functionName === name) b += n.selfSize; n.children.forEach(walk) }; walk(bs.tree().root); return b }
    ;(async () => { ${body} })().then((out) => console.log(JSON.stringify(out)), (e) => { console.error(e); process.exit(1) })`
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', code], { encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout)
}

test('a leak of Buffers is found at its function, within 20% of what it holds, beside a churn of freed ones', () => {
  const out = child(`
    bs.start(512 * 1024)
    const keep = []
    function leakyUploads(n) { for (let i = 0; i < n; i++) keep.push(Buffer.alloc(65536)) }
    function churn(n) { for (let i = 0; i < n; i++) Buffer.allocUnsafe(65536).fill(1) }
    for (let i = 0; i < 20; i++) { leakyUploads(100); churn(200); await new Promise((r) => setImmediate(r)) }
    await settle()
    const t = bs.tree()
    return { leak: bytesOf('leakyUploads'), churn: bytesOf('churn'), held: keep.length * 65536, total: t.bytes, root: t.root.callFrame.functionName }`)
  assert.equal(out.root, '(Buffer backing stores)')
  assert.ok(Math.abs(out.leak - out.held) < 0.2 * out.held, `estimated ${out.leak} of ${out.held}`)
  assert.ok(out.churn < 0.05 * out.held, `freed Buffers are not live: ${out.churn}`)
})

test('Buffer.concat is one allocation at its caller, not also its inner allocUnsafe; Buffer.from(arrayBuffer) is none', () => {
  const out = child(`
    bs.start(64 * 1024)
    const keep = []
    const ab = new ArrayBuffer(1 << 20)
    function joins() { for (let i = 0; i < 200; i++) keep.push(Buffer.concat([Buffer.alloc(10), Buffer.alloc(100000)])) }
    function views() { for (let i = 0; i < 200; i++) keep.push(Buffer.from(ab)) }
    joins(); views()
    await settle()
    let inner = 0
    const walk = (n, under) => { if (under && n.selfSize > 0) inner += n.selfSize; n.children.forEach((c) => walk(c, under || n.callFrame.functionName === 'concat')) }
    walk(bs.tree().root, false)
    return { joins: bytesOf('joins'), views: bytesOf('views'), held: 200 * 100010, inner }`)
  assert.ok(Math.abs(out.joins - out.held) < 0.25 * out.held, `estimated ${out.joins} of ${out.held}`)
  assert.equal(out.inner, 0, 'nothing counted inside Buffer.concat')
  assert.equal(out.views, 0)
})

test('the wrappers behave as Buffer does: same results, same errors, and stop() puts back the originals, not a later wrap', () => {
  const out = child(`
    const before = { alloc: Buffer.alloc, from: Buffer.from, concat: Buffer.concat }
    bs.start(1)
    const wrapped = Buffer.alloc !== before.alloc && Buffer.alloc.name === 'alloc'
    const same = Buffer.from('héllo').toString() === 'héllo' && Buffer.alloc(3, 'ab').toString() === 'aba' && Buffer.concat([Buffer.from('a'), Buffer.from('b')], 1).toString() === 'a'
    let error = null
    try { Buffer.alloc(-1) } catch (e) { error = e.code }
    // After a throw the wrapper still samples (its nesting count came back to 0).
    const n0 = bs.status().sampledAllocations
    Buffer.alloc(10)
    const stillSampling = bs.status().sampledAllocations > n0
    // Someone wraps concat after us: stop() leaves theirs in place.
    const theirs = function concat(...a) { return before.concat(...a) }
    Buffer.concat = theirs
    bs.stop()
    return { wrapped, same, error, stillSampling, allocBack: Buffer.alloc === before.alloc, fromBack: Buffer.from === before.from, concatTheirs: Buffer.concat === theirs, live: bs.status().liveSamples }`)
  assert.deepEqual(out, { wrapped: true, same: true, error: 'ERR_OUT_OF_RANGE', stillSampling: true, allocBack: true, fromBack: true, concatTheirs: true, live: 0 })
})
