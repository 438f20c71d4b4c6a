'use strict'
// Real OOM kills on cgroup v1: a child cgroup with a 256 MiB limit, node
// inside it with a monitor on default settings, memory growing until the
// kernel kills it. Needs root (skipped otherwise; a failure under
// OOMGUARD_REQUIRE_PRIVILEGED=1).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const h = require('./helpers/cgroup')
const { SCENARIOS, LIMIT, readLines, checkKilled } = require('./helpers/oom-scenarios')

const CHILD = path.join(__dirname, 'helpers', 'oom-child.js')

function oomKillCount(dir) {
  const m = /oom_kill (\d+)/.exec(fs.readFileSync(path.join(dir, 'memory.oom_control'), 'utf8'))
  return m ? Number(m[1]) : NaN
}

async function runScenario(t, s) {
  const support = h.v1Support()
  if (support.reason) return h.privileged(t, support.reason)
  const dir = h.makeCgroup(support.own.dir)
  t.after(() => h.removeCgroup(dir))
  h.setV1Limit(dir, LIMIT)
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-oom-'))
  t.after(() => fs.rmSync(work, { recursive: true, force: true }))
  const marker = path.join(work, 'marker')
  const lastWords = path.join(work, 'termination-log')
  const before = oomKillCount(dir)
  const run = await h.runNodeInCgroup(dir, CHILD, [s.scenario, s.rate, marker, lastWords, h.REPO_ROOT, s.prefill], {
    timeoutMs: 90_000,
  })
  return {
    run,
    markers: readLines(marker),
    lastWordsText: fs.existsSync(lastWords) ? fs.readFileSync(lastWords, 'utf8') : null,
    oomKills: oomKillCount(dir) - before,
    source: 'cgroup-v1',
  }
}

for (const s of SCENARIOS) {
  test(`v1 OOM kill: ${s.name}`, { timeout: 120_000 }, async (t) => {
    const r = await runScenario(t, s)
    if (!r) return
    const lw = checkKilled(s, r, h.describeRun(r.run))
    t.diagnostic(`${s.name}: verdict ${lw.verdict}, last words at ratio ${lw.ratio}, growth ${(lw.growthBytesPerSec / 1048576).toFixed(0)} MiB/s, markers ${r.markers.length}`)
  })
}

test('v1: page cache far larger than the limit raises no critical event', { timeout: 120_000 }, async (t) => {
  const r = await runScenario(t, { scenario: 'pagecache', rate: 0, prefill: 0 })
  if (!r) return
  const desc = h.describeRun(r.run)
  assert.equal(r.run.code, 0, `the page-cache run survives\n${desc}`)
  assert.equal(r.oomKills, 0)
  const [report] = h.parsePrefixed(r.run.stdout, 'OOMGUARD_PAGECACHE ')
  assert.ok(report, desc)
  assert.ok(report.maxUsageRatio > 0.8, `page cache did fill the cgroup (max usage ${report.maxUsageRatio})`)
  assert.ok(!r.markers.some((m) => m.level === 3), `no critical event: ${JSON.stringify(r.markers)}`)
  assert.equal(r.lastWordsText, null, 'no last words')
})
