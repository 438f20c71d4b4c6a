'use strict'
// The heap profile on a fixture tree (no privileges): a monitor on a copy of
// v2-busy with the profile on from the start, a leak in a named function,
// and one of Buffers in another, then the working set moved past each
// threshold by rewriting the fixture's memory.current. Prints each event's heap profile and ends.
//
//   node heap-fixture-child.js ROOT LEAF LAST_WORDS DIR PACKAGE_DIR START
//
// Lines: OOMGUARD_HP {"kind", "level", "heapProfile"} per event, then
// OOMGUARD_DONE {}.

const fs = require('node:fs')
const path = require('node:path')
const [root, leaf, lastWords, dir, pkgDir, start] = process.argv.slice(2)
const oomguard = require(path.resolve(pkgDir))

const LIMIT = 268435456
const INACTIVE_FILE = 42819584
function setRatio(r) {
  const fd = fs.openSync(path.join(leaf, 'memory.current'), 'r+')
  const buf = Buffer.from(`${String(Math.round(r * LIMIT) + INACTIVE_FILE).padEnd(20, ' ')}\n`)
  fs.writeSync(fd, buf, 0, buf.length, 0)
  fs.ftruncateSync(fd, buf.length)
  fs.closeSync(fd)
}

// The leak the profile must name.
const hoard = []
function hoardFixtures(n) {
  for (let i = 0; i < n; i++) hoard.push({ i, label: `fixture-${i}-${hoard.length}`, at: Date.now() })
}

// A leak of Buffers beside it (their backing stores are outside the V8 heap:
// sampled apart, the profile's \`buffers\`).
const uploads = []
function hoardUploads(n) {
  for (let i = 0; i < n; i++) uploads.push(Buffer.alloc(65536, i))
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function main() {
  setRatio(0.5)
  const m = oomguard.watch({
    root,
    thresholds: [0.6, 0.7, 0.8],
    maxIntervalMs: 20,
    lastWords: { stderr: false, path: lastWords },
    heapProfile: { start, dir, route: process.env.OOMGUARD_HEAP_PROFILE_ROUTE || 'auto' },
  })
  const seen = []
  const say = (kind) => (e) => {
    seen.push(kind)
    process.stdout.write(`OOMGUARD_HP ${JSON.stringify({ kind, level: e.level, heapProfile: e.heapProfile })}\n`)
  }
  m.on('threshold', say('threshold'))
  m.on('error', (err) => process.stdout.write(`OOMGUARD_HP ${JSON.stringify({ kind: 'error', message: err.message })}\n`))
  for (let k = 0; k < 20; k++) hoardFixtures(20_000)
  setRatio(0.65)
  while (seen.length < 1) await sleep(5)
  // More of the leak (what 'threshold' mode samples), then past the other
  // two, more than the rate bound later: a fresh read each.
  for (let k = 0; k < 10; k++) hoardFixtures(20_000)
  hoardUploads(640)
  await sleep(2100)
  setRatio(0.75)
  while (seen.length < 2) await sleep(5)
  await sleep(2100)
  setRatio(0.85)
  while (seen.length < 3) await sleep(5)
  // One more record at the top level, with the sites of the last read.
  setRatio(0.9)
  await sleep(200)
  process.stdout.write(`OOMGUARD_DONE ${JSON.stringify({ hoard: hoard.length, uploads: uploads.length })}\n`)
  // Exit at the top level: the record stays (only a clean exit below every threshold empties it).
  process.exit(0)
}

main()
