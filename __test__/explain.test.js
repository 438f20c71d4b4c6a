'use strict'
// `oomguard explain`: a real record (written by the sampler thread on a
// fixture tree, with the heap profile's sites; __test__/heap-profile.test.js
// explains real kills' records too), given as a file, piped in as kubectl
// prints it, and as a log line; then a record cut at 2048 bytes, garbage,
// another version's record, and no record: one line on stderr, exit 1.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const h = require('./helpers/cgroup')

const BIN = path.join(__dirname, '..', 'bin', 'oomguard.js')
const CHILD = path.join(__dirname, 'helpers', 'heap-fixture-child.js')
const BUSY = path.join(__dirname, 'fixtures', 'v2-busy')

function explain(args, input) {
  return spawnSync(process.execPath, [BIN, 'explain', ...args], { input: input ?? '', encoding: 'utf8', timeout: 30_000 })
}

/** One line on stderr naming the problem, nothing on stdout, exit 1: never a stack trace. */
function refused(r, pattern) {
  assert.equal(r.status, 1, `exit 1: ${r.status}\n${r.stdout}\n${r.stderr}`)
  assert.equal(r.stdout, '')
  assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr)
  assert.match(r.stderr, /^oomguard explain: /)
  assert.doesNotMatch(r.stderr, /\n\s+at /)
  assert.match(r.stderr, pattern)
}

let cached = null
/** A real record: the fixture child's last words, heap profile on from the start. */
function realRecord(t) {
  if (cached !== null) return cached
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-explain-'))
  fs.cpSync(BUSY, root, { recursive: true })
  fs.mkdirSync(path.join(root, 'profiles'))
  const lw = path.join(root, 'termination-log')
  const r = spawnSync(process.execPath, [CHILD, root, path.join(root, 'sys/fs/cgroup/fxcap/busy'), lw, path.join(root, 'profiles'), h.REPO_ROOT, 'start'], { encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`)
  cached = { root, file: lw, text: fs.readFileSync(lw, 'utf8') }
  return cached
}

test.after(() => {
  if (cached !== null) fs.rmSync(cached.root, { recursive: true, force: true })
})

test('explain FILE: the verdict in words, what filled the limit, the timeline, the top site and the fix', { timeout: 120_000 }, (t) => {
  const rec = realRecord(t)
  const r = explain([rec.file])
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stderr, '')
  const out = r.stdout
  assert.match(out, /^oomguard: the last words of pid \d+ at \d{4}-/)
  assert.match(out, /^Verdict: the V8 heap \(JavaScript objects\) filled the limit\.$/m)
  assert.match(out, /^What filled the limit:\n {2}\d+ MiB \(working set\) of a 256 MiB limit \(cgroup-v2\), 90\.0%/m)
  assert.match(out, /^Timeline \(thresholds 60\.0%, 70\.0%, 80\.0%; level 3 of 3, the highest\):$/m)
  assert.match(out, /^ {2}1\. hoardFixtures \(__test__\/helpers\/heap-fixture-child\.js:\d+:\d+\) {2}[\d.]+ MiB, (9\d|100)\.\d%$/m)
  assert.match(out, /^ {2}pprof: .*oomguard-heap-.*\.pb\.gz/m)
  assert.match(out, /^Fix:\n {2}Look at hoardFixtures \(/m)
})

test('explain -: the termination message piped in (kubectl), and a log line with its prefix; --json gives the same', { timeout: 120_000 }, (t) => {
  const rec = realRecord(t)
  const fromFile = explain([rec.file]).stdout
  // kubectl's jsonpath prints the message without a newline at the end.
  const piped = explain(['-'], rec.text.trimEnd())
  assert.equal(piped.status, 0, piped.stderr)
  assert.equal(piped.stdout, fromFile)
  const logged = explain([], `2026-12-04T22:00:00.000000000Z stderr F some earlier line\n2026-12-04T22:00:01.000000000Z stderr F ${rec.text.replace(/ +}/, '}')}`)
  assert.equal(logged.status, 0, logged.stderr)
  assert.equal(logged.stdout, fromFile)
  const json = explain(['--json', rec.file])
  assert.equal(json.status, 0, json.stderr)
  const x = JSON.parse(json.stdout)
  assert.equal(x.oomguard, 'explain')
  assert.equal(x.verdict, 'v8-heap')
  assert.equal(x.level, 3)
  assert.equal(x.heapProfile.sites[0].functionName, 'hoardFixtures')
  assert.ok(x.fix.some((f) => f.startsWith('Look at hoardFixtures')))
})

test('explain: a record cut at 2048 bytes, garbage, another version, no record, a missing file: one line, exit 1', { timeout: 120_000 }, (t) => {
  const rec = realRecord(t)
  const line = rec.text.replace(/ +}/, '}').trimEnd()
  // A log that keeps 2048 bytes of a line, its own prefix included.
  const prefixed = `${'2026-12-04T22:00:01.000000000Z stderr F '.padEnd(Math.max(400, 2200 - Buffer.byteLength(line)), ' ')}${line}`
  assert.ok(Buffer.byteLength(prefixed) > 2048)
  refused(explain(['-'], Buffer.from(prefixed).subarray(0, 2048)), /the record is cut after \d+ bytes, without its end \(a log keeps 2048 bytes of a line/)
  refused(explain(['-'], line.slice(0, 700)), /the record is cut after 700 bytes/)
  refused(explain(['-'], '\u0000\u0001garbage\n{not json}\n'), /no oomguard last-words record in the input/)
  refused(explain(['-'], `${line.slice(0, 300)}"x"::}`), /the record is garbled/)
  refused(explain(['-'], line.replace('"version":1', '"version":7')), /the record is version 7; this oomguard reads version 1/)
  refused(explain(['-'], line.replace('"verdict":"', '"verdict":0,"x":"')), /the record is garbled \(fields missing or of the wrong type\)/)
  refused(explain(['-'], ''), /no oomguard last-words record/)
  refused(explain([path.join(os.tmpdir(), 'oomguard-no-such-file')]), /no such file/)
  refused(explain([os.tmpdir()]), /not a regular file/)
  const bad = explain(['--bogus'])
  assert.equal(bad.status, 2)
  assert.match(bad.stderr, /^oomguard explain: unknown option: --bogus/)
})

test("explain: the Buffers' sites in their own list, and with the verdict outside the heap the fix names the top one", { timeout: 120_000 }, (t) => {
  const rec = realRecord(t)
  const out = explain([rec.file]).stdout
  assert.match(out, /^Top Buffer allocation sites \(sampled apart, .*: \d+(\.\d)? MiB sampled live\):\n {2}1\. hoardUploads \(__test__\/helpers\/heap-fixture-child\.js:\d+:\d+\)/m)
  // The same record as if the verdict had been outside the heap (the record's own member, edited).
  const r = JSON.parse(rec.text)
  r.verdict = 'outside-heap'
  const x = JSON.parse(explain(['--json', '-'], JSON.stringify(r)).stdout)
  assert.equal(x.heapProfile.buffers.sites[0].functionName, 'hoardUploads')
  assert.match(x.fix[0], /^Look at hoardUploads \(__test__\/helpers\/heap-fixture-child\.js:\d+:\d+\): it allocated [\d.]+% of the sampled live Buffer memory/)
  assert.ok(!x.fix.some((f) => f.startsWith('Look at hoardFixtures')), 'not the heap site')
  // Without the Buffers' list, the fix says what the profile cannot see.
  delete r.heapProfile.buffers
  const y = JSON.parse(explain(['--json', '-'], JSON.stringify(r)).stdout)
  assert.ok(y.fix.some((f) => f.startsWith('The V8 heap profile cannot see Buffer')))
})
