'use strict'
// Real OOM kills on cgroup v2, in a throwaway VM (see helpers/vm.js; skipped
// without OOMGUARD_CGROUP2_VM, a failure under OOMGUARD_REQUIRE_PRIVILEGED=1):
// the scenarios of oom-v1.test.js with memory.max 256M, node inside with a
// monitor on default settings and memory growing until the kernel kills it;
// and a page-cache run that must survive without a critical event.
//
// The OOM scenarios run as containers see cgroup v2 (the runner's
// --container: own cgroup namespace, cgroup2 read-only at /sys/fs/cgroup):
// one VM boot, helpers/oom-v2-container.sh as the container's first process
// running them one after the other in its one cgroup (nothing can be created
// in a read-only cgroupfs), HOST_DIR shared over 9p so that the marker and
// last-words files come back. The page-cache run needs a file system with
// reclaimable page cache (9p with cache=loose, the runner's --9p-cache) and a
// cgroup of its own: a second boot with helpers/oom-v2-driver.js in the
// writable layout.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const h = require('./helpers/cgroup')
const { needVm, needVmOptions, stageHostDir, runVm } = require('./helpers/vm')
const { LIMIT, withRates, checkKilled } = require('./helpers/oom-scenarios')

const HELPERS = path.join(__dirname, 'helpers')
const FILES = ['oom-child.js', 'alloc.js', 'oom-v2-driver.js'].map((f) => path.join(HELPERS, f))
const CONTAINER_FILES = ['oom-child.js', 'alloc.js', 'oom-v2-container.sh', 'sampler-v2.js'].map((f) => path.join(HELPERS, f))
const PREFIX = 'OOMGUARD_V2_RESULT '
const VM_MEMORY_MAX = '400M'
// About 65 s for the OOM boot and 90 s for the page-cache one on an idle
// host; emulation makes both slow down a lot when the host is busy.
const VM_TIMEOUT_S = 240 // the runner kills its VM, runVm() the runner 15 s later
const TEST_TIMEOUT_MS = (VM_TIMEOUT_S + 30) * 1000
const CHILD_TIMEOUT_S = 90 // one scenario, inside the VM (then SIGTERM: exit 143, never 137)
// 3 x 256 MiB written and read twice through emulated 9p: about 90 s on an
// idle host, more than 240 s with the host's load average at 12 on 2 cores.
const PAGECACHE_VM_TIMEOUT_S = 480
const PAGECACHE_CHILD_TIMEOUT_MS = 420_000

// The VM is emulated (qemu TCG: no usable KVM here), some 20 to 50 times
// slower than the host's CPU, while the scenarios' rates are wall-clock
// rates. Where the guest cannot allocate at the v1 rate, oom-child.js's paced
// loop falls behind, runs ever longer between event-loop turns and starves the
// JS listener, which then misses thresholds for reasons that have nothing to
// do with the addon; so these run slower here. Measured in the VM (2 vCPUs on
// 2 host cores, 256M limit), "heard" meaning the listener got 0.8, 0.9, 0.95:
//  - V8 objects at 50 MiB/s reach 23-29 MiB/s; 0 of 2 runs heard (one got 0.8
//    only, one nothing; last words came in both, at 0.9504-0.9505, v8-heap,
//    with V8 numbers 3 s old). At 10 MiB/s 6 of 7 heard, the 0.95 event 1.6 to
//    1.7 s before the kill with V8 scavenges of 20-120 ms; the seventh got
//    last words at 0.9505 (16 MB/s, 827 ms to the limit) but its listener never
//    ran again before the kill. At 5 MiB/s: 5 of 5 (0.95 heard 2-3 s before
//    the kill).
//  - ArrayBuffers at 100 MiB/s reach 36-94 MiB/s; 1 of 3 runs heard (the others
//    0.8 only, or 0.8 and 0.9). At 25 MiB/s: 5 of 5 (0.5-0.6 s before the kill).
//  - A worker at 100 MiB/s keeps pace, but the sampler thread competes with it
//    for the two emulated CPUs: 3 of 4 runs heard; the fourth got 0.8 only
//    (ratio 0.8009, 448 ms to the limit) and was killed with no last words at
//    all. At 25 MiB/s: 5 of 5 (about 0.6 s before the kill).
// Last words and verdicts were right in every run that had them.
// In container mode (the runs one after the other in one cgroup, the files
// on 9p) V8 objects at 5 MiB/s were heard in 2 of 3 runs; the third got 0.8
// only, its last words at 0.9502 (v8-heap, V8 numbers 612 ms old, 22 MB/s
// measured as a GC pause's backlog was allocated at once). So 3 MiB/s here.
const SCENARIOS = withRates({
  'growing JS objects (V8 heap) at 50 MiB/s': 3,
  'ArrayBuffers at 100 MiB/s': 25,
  'leak in a worker thread at 100 MiB/s': 25,
})

const runs = [
  { id: 'sampler', kind: 'sampler', scenario: '-', rate: 0, prefill: 0 },
  ...SCENARIOS.map((s, i) => ({ id: `s${i}`, kind: 'oom', scenario: s.scenario, rate: s.rate, prefill: s.prefill })),
]

function parseBoot(r) {
  const byId = new Map()
  let done = null
  let setup = null
  for (const o of h.parsePrefixed(r.stdout, PREFIX)) {
    if (o.kind === 'run') byId.set(o.id, o)
    else if (o.kind === 'done') done = o
    else if (o.kind === 'setup') setup = o
    else if (o.kind === 'fatal') throw new Error(`the driver failed in the VM: ${o.error}\n${h.describeRun(r)}`)
  }
  assert.equal(r.code, 0, `VM runner failed\n${h.describeRun(r)}`)
  assert.ok(setup && done, `the driver did not finish in the VM\n${h.describeRun(r)}`)
  return { byId, setup, done, run: r }
}

/** Boot the VM with `plan` once; every test of the boot awaits the same promise. */
function bootOnce(t, vm, plan, options, vmTimeoutS = VM_TIMEOUT_S) {
  const hostDir = stageHostDir(t, FILES)
  fs.writeFileSync(path.join(hostDir, 'plan.json'), JSON.stringify(plan))
  return runVm(vm, {
    options,
    hostDir,
    memoryMax: VM_MEMORY_MAX,
    command: ['node', 'oom-v2-driver.js', 'plan.json'],
    vmTimeoutS,
  }).then(parseBoot)
}

/**
 * The one container-mode boot for every run of `runs`; every test awaits the
 * same promise. Resolves with a Map id -> the run's files, read back from HOST_DIR.
 */
let oomBoot = null
function containerBoot(t, vm) {
  if (oomBoot) return oomBoot
  const hostDir = stageHostDir(t, CONTAINER_FILES)
  fs.writeFileSync(path.join(hostDir, 'plan'), runs.map((r) => `${r.id} ${r.kind} ${r.scenario} ${r.rate} ${r.prefill}\n`).join(''))
  const command = ['sh', 'oom-v2-container.sh', 'plan', String(CHILD_TIMEOUT_S)]
  oomBoot = runVm(vm, { options: ['--container', '--9p'], hostDir, memoryMax: String(LIMIT), command, vmTimeoutS: VM_TIMEOUT_S }).then((run) => {
    assert.equal(run.code, 0, `VM runner failed\n${h.describeRun(run)}`)
    const out = path.join(hostDir, 'out')
    const read = (f) => (fs.existsSync(path.join(out, f)) ? fs.readFileSync(path.join(out, f), 'utf8') : null)
    const byId = new Map()
    for (const r of runs) {
      const code = read(`${r.id}.code`)
      if (code === null) continue
      const before = eventsOf(read(`${r.id}.events-before`))
      const after = eventsOf(read(`${r.id}.events-after`))
      byId.set(r.id, {
        run: { code: Number(code), signal: null, stdout: read(`${r.id}.stdout`) || '', stderr: read(`${r.id}.stderr`) || '', timedOut: false, ms: 0 },
        markersText: read(`${r.id}.marker`),
        lastWordsText: read(`${r.id}.last-words`),
        oomKills: after.oom_kill - before.oom_kill,
        events: after,
        eventsBefore: before,
        limit: (read('memory.max') || '').trim(),
      })
    }
    return { byId, run }
  })
  oomBoot.then(
    (b) => t.diagnostic(`one container-mode VM boot for ${runs.length} runs: ${(b.run.ms / 1000).toFixed(1)} s`),
    () => {},
  )
  return oomBoot
}

function eventsOf(text) {
  const out = {}
  for (const line of (text || '').split('\n')) {
    const [k, v] = line.split(' ')
    if (k) out[k] = Number(v)
  }
  return out
}

async function oomRun(t, id) {
  const vm = needVm(t)
  if (!vm) return null
  if (!needVmOptions(t, vm, ['--container', '--9p'], 'the OOM scenarios run in the container layout of cgroup v2, with their files shared back over 9p')) return null
  const boot = await containerBoot(t, vm)
  const r = boot.byId.get(id)
  assert.ok(r, `no result for run ${id}\n${h.describeRun(boot.run)}`)
  assert.equal(r.limit, String(LIMIT), 'the container cgroup has memory.max 256M')
  return r
}

function describe(r) {
  return `${h.describeRun(r.run)}\n--- memory.events of the run's cgroup: ${JSON.stringify(r.events)}${r.peak === undefined ? '' : `, memory.peak ${r.peak}`}`
}

function parseMarkers(text) {
  return (text || '')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
}

test('v2 container mode: the sampler reads its read-only cgroup and arms the memory.events wake-up', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const r = await oomRun(t, 'sampler')
  if (!r) return
  assert.equal(r.run.code, 0, describe(r))
  const [report] = h.parsePrefixed(r.run.stdout, 'OOMGUARD_SAMPLER ')
  assert.ok(report, describe(r))
  t.diagnostic(`samplerInfo(): ${JSON.stringify(report.info)}`)
  assert.equal(report.current.source, 'cgroup-v2')
  assert.equal(report.current.limitBytes, LIMIT)
  assert.equal(report.info.running, true)
  assert.ok(
    report.info.triggers.some((k) => /memory\.events/.test(k)),
    `a kernel wake-up on memory.events is armed on v2 (triggers: ${JSON.stringify(report.info.triggers)})`,
  )
})

for (const [i, s] of SCENARIOS.entries()) {
  test(`v2 container mode, OOM kill: ${s.name}`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const r = await oomRun(t, `s${i}`)
    if (!r) return
    const markers = parseMarkers(r.markersText)
    const lw = checkKilled(s, { ...r, markers, source: 'cgroup-v2' }, describe(r))
    assert.equal(lw.cgroup, '/', 'the record names the cgroup as the container sees it')
    t.diagnostic(
      `${s.name}${s.rateNote ? ` (${s.rateNote})` : ''}: verdict ${lw.verdict}, last words at ratio ${lw.ratio}, ` +
        `growth ${(lw.growthBytesPerSec / 1048576).toFixed(0)} MiB/s, markers ${markers.length}, ` +
        `memory.events max +${r.events.max - r.eventsBefore.max}`,
    )
  })
}

// Page cache far larger than the limit must raise no critical event. The VM
// has no block device and its root file system is tmpfs, whose pages are
// shmem (not reclaimable without swap), so the file must live in HOST_DIR
// shared over 9p with cache=loose (its pages are then ordinary page cache,
// charged to the run's cgroup and reclaimable). The runner mounts 9p with its
// default cache=none (no page cache at all) unless it has a --9p-cache option.
test('v2: page cache far larger than the limit raises no critical event', { timeout: (PAGECACHE_VM_TIMEOUT_S + 30) * 1000 }, async (t) => {
  const vm = needVm(t)
  if (!vm) return
  const why = 'without 9p cache=loose the VM has no file system with reclaimable page cache (its root is tmpfs, and it has no block device)'
  if (!needVmOptions(t, vm, ['--9p-cache'], why)) return
  const plan = {
    limitBytes: LIMIT,
    pkgDir: '/host',
    childTimeoutMs: PAGECACHE_CHILD_TIMEOUT_MS,
    runs: [{ id: 'pagecache', kind: 'pagecache', scenario: 'pagecache', rate: 0, prefill: 0 }],
  }
  const boot = await bootOnce(t, vm, plan, ['--9p', '--9p-cache', 'loose'], PAGECACHE_VM_TIMEOUT_S)
  t.diagnostic(`VM boot: ${(boot.run.ms / 1000).toFixed(1)} s`)
  const r = boot.byId.get('pagecache')
  assert.ok(r, `no page-cache result\n${h.describeRun(boot.run)}`)
  assert.ok(!r.error, `the page-cache run failed in the VM: ${r.error}`)
  const desc = describe(r)
  assert.equal(r.run.code, 0, `the page-cache run survives\n${desc}`)
  assert.equal(r.oomKills, 0)
  const [report] = h.parsePrefixed(r.run.stdout, 'OOMGUARD_PAGECACHE ')
  assert.ok(report, desc)
  t.diagnostic(`page cache: ${JSON.stringify(report)}, memory.events ${JSON.stringify(r.events)}`)
  assert.ok(report.maxUsageRatio > 0.8, `page cache did fill the cgroup (max usage ${report.maxUsageRatio})`)
  const markers = parseMarkers(r.markersText)
  assert.ok(!markers.some((m) => m.level === 3), `no critical event: ${JSON.stringify(markers)}`)
  // A clean exit below every threshold empties the file, so none or empty.
  assert.ok(r.lastWordsText === null || r.lastWordsText.trim() === '', `no last words: ${r.lastWordsText}`)
})
