'use strict'
// Runs one stall scenario (helpers/stall-child.js) in a fresh cgroup v1 child
// with a 256 MiB limit (or, with `parentLimit`, in an unlimited grandchild of
// a child that has it), from a cold copy of node, and watches it from here:
// when the kernel first failed a charge (memory.failcnt above 0: the limit is
// reached), what the monitor said and when, what the flight record says, and
// how the process ended. Shared by __test__/stall.test.js and
// benchmark/stall.js. Everything it creates (the cgroup, the copies, the
// process) it removes or ends, by pid, also on failure.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const h = require('./cgroup')
const { coldNode } = require('./cold-node')

const CHILD = path.join(__dirname, 'stall-child.js')
const MiB = 1024 * 1024
const LIMIT = 256 * MiB

function readJsonLines(file) {
  let text = ''
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch {
    return []
  }
  const out = []
  for (const l of text.split('\n')) {
    if (!l) continue
    try {
      out.push(JSON.parse(l))
    } catch {}
  }
  return out
}

function readRecord(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch {
    return null
  }
}

/**
 * Run a scenario. `opts`: { scenario, rate, prefill, watch (extra watch()
 * options), cold (default true), memswLimit (bytes: also set
 * memory.memsw.limit_in_bytes, after the memory limit; then the limit counts
 * as reached when memory.memsw.max_usage_in_bytes comes within 1 MiB of it,
 * because the kernel counts no failed memsw charge), onPoll (called with the
 * cgroup's directory every 20 ms while the child runs), nodeFlags (node's own flags, e.g.
 * --max-old-space-size=144), endOnStall (SIGKILL the child once a stall
 * is seen: the `stall` event, or a stall record for the synchronous loop),
 * timeoutMs, own (from v1Support()), parentLimit (the limits go on the
 * child and the node runs in an unlimited grandchild: the kernel then counts
 * the failed charges in the child, the leaf's memory.failcnt stays 0) }.
 * Resolves to { code, signal, stderr, markers, record (the last),
 * firstRecord (the first stall record seen), limitAt (first failed charge),
 * recordAt (when the first stall record was written), eventAt (the JS
 * `stall` event), exitAt, endedByTest, timedOut, oomKills }. Times are
 * Date.now() ms.
 */
async function runStall(opts) {
  const { scenario, rate = 0, prefill = 0, watch = {}, cold = true, endOnStall = false, timeoutMs = 60_000, own, nodeFlags = [], memswLimit = null, onPoll = null, parentLimit = false } = opts
  // `limited` holds the limits and counts the failed charges; `dir` runs node.
  const limited = h.makeCgroup(own.dir, h.uniqueName('oomguard-stall'))
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-stall-'))
  let copy = null
  let child = null
  try {
    h.setV1Limit(limited, LIMIT)
    if (memswLimit !== null) h.writeCgroupFile(limited, 'memory.memsw.limit_in_bytes', memswLimit)
    const dir = parentLimit ? h.makeCgroup(limited, 'leaf') : limited
    copy = cold ? coldNode() : null
    const node = copy ? copy.node : process.execPath
    const pkg = copy ? copy.pkg : h.REPO_ROOT
    const markerFile = path.join(work, 'marker')
    const lastWords = path.join(work, 'termination-log')
    const flags = [...nodeFlags, ...(scenario === 'burst' ? ['--expose-gc'] : [])]
    // A kill is counted in the victim's cgroup (and, where the kernel passes
    // events up, in the one above): above 0 whenever there was one.
    const kills = () => oomKills(dir) + (dir === limited ? 0 : oomKills(limited))
    const oomBefore = kills()
    const t0 = Date.now()
    child = spawn(
      'sh',
      ['-c', 'echo $$ > "$1" && shift && exec "$@"', 'sh', path.join(dir, 'cgroup.procs'), node, ...flags, CHILD, scenario, rate, prefill, markerFile, lastWords, pkg, JSON.stringify(watch)],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env } },
    )
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d) => {
      if (stderr.length < 1 << 20) stderr += d
    })
    let limitAt = null
    let eventAt = null
    let recordAt = null
    let firstRecord = null
    let endedByTest = false
    let timedOut = false
    const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, exitAt: Date.now() })))
    let done = null
    exited.then((r) => (done = r))
    const kill = () => {
      try {
        child.kill('SIGKILL')
      } catch {}
    }
    while (done === null) {
      await new Promise((r) => setTimeout(r, 20))
      if (limitAt === null && limitReached(limited, memswLimit)) limitAt = Date.now()
      if (onPoll) onPoll(dir)
      if (eventAt === null) {
        const ev = readJsonLines(markerFile).find((m) => m.event === 'stall')
        if (ev) eventAt = ev.t
      }
      if (recordAt === null) {
        const rec = readRecord(lastWords)
        if (rec && rec.verdict === 'stall') {
          firstRecord = rec
          recordAt = Date.parse(rec.time)
        }
      }
      if (endOnStall && !endedByTest && (recordAt !== null || eventAt !== null)) {
        endedByTest = true
        kill()
      }
      if (done === null && Date.now() - t0 > timeoutMs) {
        timedOut = true
        kill()
      }
    }
    await exited
    return {
      ...done,
      stderr,
      markers: readJsonLines(markerFile),
      record: readRecord(lastWords),
      limitAt,
      eventAt,
      recordAt,
      firstRecord,
      endedByTest,
      timedOut,
      oomKills: kills() - oomBefore,
      t0,
    }
  } finally {
    if (child !== null && child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL')
      } catch {}
    }
    if (copy) copy.remove()
    fs.rmSync(work, { recursive: true, force: true })
    h.removeCgroup(limited)
  }
}

/** Whether the kernel has failed a charge (or, with a memsw limit, come within 1 MiB of it). */
function limitReached(dir, memswLimit) {
  if (memswLimit === null) return Number(fs.readFileSync(path.join(dir, 'memory.failcnt'), 'utf8')) > 0
  return Number(fs.readFileSync(path.join(dir, 'memory.memsw.max_usage_in_bytes'), 'utf8')) >= memswLimit - MiB
}

function oomKills(dir) {
  const m = /oom_kill (\d+)/.exec(fs.readFileSync(path.join(dir, 'memory.oom_control'), 'utf8'))
  return m ? Number(m[1]) : NaN
}

/** A one-paragraph account of a run, for assertion messages. */
function describeStall(r) {
  const rel = (t) => (t === null ? 'never' : `${t - r.t0} ms`)
  return (
    `exit code ${r.code} signal ${r.signal}${r.timedOut ? ' (timed out)' : ''}${r.endedByTest ? ' (ended by the test)' : ''}; ` +
    `limit reached at ${rel(r.limitAt)}, stall record at ${rel(r.recordAt)}, stall event at ${rel(r.eventAt)}, exit at ${rel(r.exitAt)}; oom_kill +${r.oomKills}\n` +
    `markers: ${JSON.stringify(r.markers.map((m) => ({ event: m.event, t: m.t - r.t0, durationMs: m.durationMs })))}\n` +
    `record: ${JSON.stringify(r.record)}\n--- stderr (tail)\n${r.stderr.slice(-2000)}`
  )
}

module.exports = { runStall, describeStall, LIMIT }
