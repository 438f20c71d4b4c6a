'use strict'
// The OOM scenarios both the cgroup v1 and the cgroup v2 tests run, and the
// checks each killed (or surviving) run must pass.

const assert = require('node:assert/strict')
const fs = require('node:fs')

const MiB = 1024 * 1024
const LIMIT = 256 * MiB

// name, oom-child.js scenario, rate MiB/s (0 = full speed, synchronous),
// prefill share of the limit, the expected verdict, whether the JS listener
// must have run before the kill (required at 100 MiB/s or slower).
const SCENARIOS = [
  { name: 'slow leak, Buffers at 10 MiB/s', scenario: 'buffers', rate: 10, prefill: 0.7, verdict: 'outside-heap', listener: true },
  { name: 'Buffers at full speed', scenario: 'buffers', rate: 0, prefill: 0, verdict: 'outside-heap', listener: false },
  { name: 'growing JS objects (V8 heap) at 50 MiB/s', scenario: 'objects', rate: 50, prefill: 0.5, verdict: 'v8-heap', listener: true },
  { name: 'ArrayBuffers at 100 MiB/s', scenario: 'arraybuffers', rate: 100, prefill: 0.5, verdict: 'outside-heap', listener: true },
  { name: 'leak in a worker thread at 100 MiB/s', scenario: 'worker', rate: 100, prefill: 0.5, verdict: 'outside-heap', listener: true },
]

/**
 * SCENARIOS with some rates replaced for one environment: `overrides` maps a
 * scenario's name to its rate there (MiB/s). The name is rewritten to say the
 * rate it really runs at, and `rateNote` keeps the usual one.
 */
function withRates(overrides) {
  for (const name of Object.keys(overrides)) {
    if (!SCENARIOS.some((s) => s.name === name)) throw new Error(`withRates: no scenario named ${JSON.stringify(name)}`)
  }
  return SCENARIOS.map((s) => {
    if (!(s.name in overrides) || overrides[s.name] === s.rate) return s
    const rate = overrides[s.name]
    return { ...s, rate, name: s.name.replace(/at \d+ MiB\/s/, `at ${rate} MiB/s`), rateNote: `${s.rate} MiB/s elsewhere` }
  })
}

function readLines(file) {
  if (!fs.existsSync(file)) return []
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
}

// The record's fields in their order: version 1's, then the flight record's.
const LAST_WORDS_KEYS = [
  'oomguard',
  'version',
  'time',
  'pid',
  'source',
  'cgroup',
  'limitBytes',
  'usageBytes',
  'workingSetBytes',
  'basisBytes',
  'ratio',
  'threshold',
  'growthBytesPerSec',
  'timeToLimitMs',
  'breakdown',
  'v8',
  'verdict',
  'reason',
  'level',
  'final',
  'event',
  'thresholds',
  'seq',
  'rssBytes',
  'anonBytes',
  'anonShare',
  'processCount',
  'largestProcess',
  'allocator',
]

/**
 * A record's keys less its optional last member: `heapProfile`, the top
 * allocation sites, present once the heap profile has been read and where
 * it fits (lib/core/heap-profile.js).
 */
function recordKeys(lw) {
  const keys = Object.keys(lw)
  return keys[keys.length - 1] === 'heapProfile' ? keys.slice(0, -1) : keys
}

/** The last-words records among a process's stderr lines. */
function stderrRecords(text) {
  const out = []
  for (const line of text.split('\n')) {
    if (!line.startsWith('{"oomguard":"last-words"')) continue
    try {
      out.push(JSON.parse(line))
    } catch {}
  }
  return out
}

/**
 * Check one killed run. `run` has the process result, `lastWordsText` the
 * termination file's text, `markers` the listener's lines, `oomKills` how
 * much oom_kill went up.
 */
function checkKilled(s, { run, lastWordsText, markers, oomKills, source }, describe) {
  assert.equal(run.signal === 'SIGKILL' || run.code === 137, true, `${s.name}: killed by SIGKILL (exit 137)\n${describe}`)
  assert.equal(oomKills, 1, `${s.name}: oom_kill went up by one\n${describe}`)

  // Last words: in the file, complete, one line, the stable shape.
  assert.ok(lastWordsText && lastWordsText.endsWith('\n'), `${s.name}: last-words file written and complete\n${describe}`)
  assert.ok(Buffer.byteLength(lastWordsText) <= 4096, `${s.name}: fits Kubernetes' 4096 bytes`)
  const lw = JSON.parse(lastWordsText)
  assert.deepEqual(recordKeys(lw), LAST_WORDS_KEYS, `${s.name}: last-words shape`)
  assert.equal(lw.oomguard, 'last-words')
  assert.equal(lw.source, source)
  assert.equal(lw.limitBytes, LIMIT)
  assert.ok(lw.ratio >= 0.95, `${s.name}: written at the highest threshold (ratio ${lw.ratio})`)
  for (const k of ['anon', 'file', 'shmem', 'kernel', 'sock', 'slab']) assert.ok(k in lw.breakdown, `breakdown.${k}`)
  assert.ok(lw.v8 && lw.v8.heapSizeLimitBytes > 0, `${s.name}: V8 numbers known`)
  assert.equal(lw.verdict, s.verdict, `${s.name}: verdict (${lw.reason})`)
  // stderr got the record of each level change: the level the file's record is at among them.
  const onStderr = stderrRecords(run.stderr)
  assert.ok(
    onStderr.some((r) => r.level === lw.level && r.pid === lw.pid && r.event === 'threshold'),
    `${s.name}: the crossing to level ${lw.level} on stderr too (got levels ${onStderr.map((r) => r.level)})`,
  )

  if (s.listener) {
    const levels = markers.filter((m) => m.level !== undefined).map((m) => m.level)
    assert.deepEqual(levels, [1, 2, 3], `${s.name}: the JS listener heard every threshold before the kill\n${describe}`)
  }
  return lw
}

module.exports = { SCENARIOS, LIMIT, MiB, withRates, readLines, checkKilled, stderrRecords, LAST_WORDS_KEYS, recordKeys }
