'use strict'
// Exact values from fixture trees (real captures and crafted layouts), read
// through the real, loaded addon.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { getMemoryMetrics } = require('..')

const FIXTURES = path.join(__dirname, 'fixtures')
const trees = fs.readdirSync(FIXTURES).filter((d) => fs.existsSync(path.join(FIXTURES, d, 'expected.json')))

function read(tree, usage) {
  return getMemoryMetrics(usage, { root: path.join(FIXTURES, tree) })
}

function summary(tree, r) {
  const root = path.join(FIXTURES, tree)
  return {
    version: r.cgroup ? r.cgroup.version : null,
    source: r.source,
    dir: r.cgroup ? path.relative(root, r.cgroup.dir) : null,
    resolved: r.cgroup ? r.cgroup.resolved : false,
    limitBytes: r.limitBytes,
    highBytes: r.highBytes,
    usageBytes: r.usageBytes,
    workingSetBytes: r.workingSetBytes,
    peakBytes: r.peakBytes,
    swapBytes: r.swapBytes,
    swapLimitBytes: r.swapLimitBytes,
    anon: r.stat && r.stat.anon,
    file: r.stat && r.stat.file,
    shmem: r.stat && r.stat.shmem,
    kernel: r.stat && r.stat.kernel,
    sock: r.stat && r.stat.sock,
    oomKill: r.events && r.events.oomKill,
    memTotalBytes: r.hostTotalBytes,
    memAvailableBytes: r.hostAvailableBytes,
    rssBytes: r.rssBytes,
    anonBytes: r.anonBytes,
    pressureScope: r.pressure ? r.pressure.scope : null,
    processCount: r.processes ? r.processes.count : null,
  }
}

test('fixture trees are all here', () => {
  assert.ok(trees.length >= 14, `found ${trees.length} trees`)
})

for (const tree of trees) {
  test(`fixture ${tree}: values match expected.json`, () => {
    const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, tree, 'expected.json'), 'utf8'))
    const got = summary(tree, read(tree))
    for (const key of Object.keys(expected)) {
      assert.deepEqual(got[key], expected[key], `${tree}: ${key}`)
    }
  })
}

const codes = (r) => r.diagnoses.map((d) => d.code)
const MiB = 1024 * 1024

test('v1 hybrid busy: v1 names mapped to v2, kmem files, nothing invented', () => {
  const r = read('v1-hybrid-busy')
  assert.equal(r.cgroup.version, 1)
  assert.equal(r.cgroup.mountPoint, path.join(FIXTURES, 'v1-hybrid-busy', 'sys/fs/cgroup/memory'))
  assert.equal(r.stat.anon, r.stat.raw.total_rss)
  assert.equal(r.stat.file, r.stat.raw.total_cache)
  assert.equal(r.stat.inactiveFile, r.stat.raw.total_inactive_file)
  assert.equal(r.stat.kernel, 3780608, 'memory.kmem.usage_in_bytes')
  assert.equal(r.stat.sock, 0, 'memory.kmem.tcp.usage_in_bytes')
  assert.equal(r.stat.slab, null, 'v1 memory.stat has no slab: null, not 0')
  assert.equal(r.stat.kernelStack, null)
  assert.equal(r.events.oomKill, 0)
  assert.equal(r.events.underOom, 0)
  assert.equal(r.events.failcnt, 0)
  assert.equal(r.events.max, null, 'v1 has no max event counter')
  assert.equal(r.stat.raw.hierarchical_memory_limit, 268435456)
  assert.equal(r.stat.raw.hierarchical_memsw_limit, null, 'the unlimited sentinel never leaks')
  assert.equal(r.pressure.scope, 'system')
  assert.equal(r.workingSetBytes, 200466432 - r.stat.raw.total_inactive_file)
})

test('peak and swap: v2 memory.peak and memory.swap.*, v1 max_usage and memsw, null where the kernel has none', () => {
  const v2 = read('v2-swap')
  assert.equal(v2.peakBytes, 201158656, 'memory.peak')
  assert.equal(v2.swapBytes, 52428800, 'memory.swap.current')
  assert.equal(v2.swapLimitBytes, 134217728, "the parent's memory.swap.max is lower than the leaf's 256 MiB")
  const busy = read('v2-busy')
  assert.equal(busy.swapBytes, 0)
  assert.equal(busy.hostSwapTotalBytes, 0, 'the captured host has no swap space')
  assert.equal(busy.swapLimitBytes, 0, 'memory.swap.max "max", but SwapTotal 0: no swap is usable')
  assert.equal(v2.hostSwapTotalBytes, 2097148 * 1024)
  const off = read('v2-swap-off')
  assert.deepEqual([off.swapBytes, off.swapLimitBytes], [0, 0], 'memory.swap.max 0 on a host with swap space')

  const v1 = read('v1-swap')
  assert.equal(v1.peakBytes, 200421376, 'memory.max_usage_in_bytes')
  assert.equal(v1.swapBytes, 252895232 - 200466432, 'memory.memsw.usage_in_bytes - memory.usage_in_bytes')
  assert.equal(v1.swapLimitBytes, 402653184 - 268435456, 'hierarchical_memsw_limit (below the leaf memsw limit) minus the memory limit')
  // The real v1 capture read memsw 199639040 just before usage 200466432:
  // the two files are read moments apart, and swap is never below 0.
  assert.equal(read('v1-hybrid-busy').swapBytes, 0)
  assert.equal(read('v1-hybrid-busy').swapLimitBytes, 0, 'memsw limit unlimited, but SwapTotal 0: no swap is usable')
  // Docker's default on a host without swap: memory+swap twice the memory
  // limit, and still nothing can swap. The memsw limit itself stays in
  // memory.stat, for the stall detector's memory+swap rule.
  const docker = read('v1-no-host-swap')
  assert.deepEqual([docker.hostSwapTotalBytes, docker.swapBytes, docker.swapLimitBytes], [0, 0, 0])
  assert.equal(docker.stat.raw.hierarchical_memsw_limit, 536870912)

  const none = read('v1-no-swap-accounting')
  assert.equal(none.swapBytes, null, 'no memory.memsw.* files: swap is not accounted, null, never 0')
  assert.equal(none.swapLimitBytes, null)
  assert.equal(none.peakBytes, 200421376, 'peak is there without swap accounting')
  assert.ok(!codes(none).includes('CGROUP_FILE_UNREADABLE'), 'absent swap files are not a problem')
  for (const tree of ['v2-root', 'no-memory-controller']) {
    const r = read(tree)
    assert.deepEqual([r.peakBytes, r.swapBytes, r.swapLimitBytes], [null, null, null], tree)
  }
})

test('processes: cgroup.procs, the 16 largest by anonymous memory (statm resident - shared), comm names, null where unreadable', () => {
  const r = read('v2-processes')
  const p = r.processes
  assert.equal(p.count, 21, 'every pid in cgroup.procs is counted, the one outside the pid namespace (0) too')
  assert.ok(!p.largest.some((x) => x.pid === 0), 'a 0 is never listed')
  assert.equal(p.largest.length, 16, 'at most 16 are listed')
  const MiB = 1024 * 1024
  assert.deepEqual(
    p.largest.slice(0, 3).map((x) => ({ ...x })),
    [
      { pid: 7, command: 'convert', rssBytes: 90 * MiB, anonBytes: 48 * MiB },
      { pid: 201, command: null, rssBytes: 50 * MiB, anonBytes: 25 * MiB }, // no comm file: null, still listed
      { pid: 1, command: 'node', rssBytes: 30 * MiB, anonBytes: 20 * MiB },
    ],
  )
  // Then the small ones, largest first: pid 115 (16 x 256 KiB) down to pid 103.
  assert.deepEqual(
    p.largest.slice(3).map((x) => x.pid),
    [115, 114, 113, 112, 111, 110, 109, 108, 107, 106, 105, 104, 103],
  )
  assert.equal(p.largest[3].rssBytes, 16 * 256 * 1024)
  assert.equal(p.largest[3].anonBytes, 16 * 192 * 1024)
  assert.equal(p.largest[3].command, 'sh')
  assert.ok(!p.largest.some((x) => x.pid === 200), 'pid 200 (no statm: exited) sorts last and falls off the list')
  // RSS adds up to more than the working set; anonymous memory does not.
  const sum = (k) => p.largest.reduce((a, x) => a + x[k], 0)
  assert.ok(sum('rssBytes') > r.workingSetBytes, `RSS ${sum('rssBytes')} > working set ${r.workingSetBytes}`)
  assert.ok(sum('anonBytes') < r.workingSetBytes, `anonymous ${sum('anonBytes')} < working set ${r.workingSetBytes}`)
  assert.equal(r.anonBytes, (516 - 489) * 4096, "this process's own: resident minus shared of proc/self/statm")
  assert.equal(r.rssBytes, 516 * 4096)
  assert.ok(Number.isFinite(p.timestampMs) && Math.abs(p.timestampMs - Date.now()) < 60000)
  assert.ok(Object.isFrozen(p) && Object.isFrozen(p.largest) && Object.isFrozen(p.largest[0]), 'shared between reads: frozen')
  assert.equal(read('v2-busy').processes, null, 'no cgroup.procs: null')
  assert.equal(read('no-memory-controller').processes, null)
})

test('memory.stat raw map keeps the kernel order and every line', () => {
  const r = read('v2-busy')
  const text = fs.readFileSync(path.join(FIXTURES, 'v2-busy/sys/fs/cgroup/fxcap/busy/memory.stat'), 'utf8')
  const keys = text
    .trim()
    .split('\n')
    .map((l) => l.split(' ')[0])
  assert.deepEqual(Object.keys(r.stat.raw), keys)
  assert.equal(r.stat.slab, 1630552)
  assert.equal(r.stat.kernelStack, 32768)
})

test('v2 busy: memory.high, events, cgroup pressure and derived ratios', () => {
  const r = read('v2-busy', { heapSizeLimit: 259 * MiB, heapUsed: 10 * MiB })
  assert.equal(r.highBytes, 209715200)
  assert.equal(r.leafLimitBytes, 268435456)
  assert.deepEqual({ ...r.events }, { low: 0, high: 0, max: 0, oom: 0, oomKill: 0, oomGroupKill: 0, underOom: null, failcnt: null })
  assert.equal(r.pressure.scope, 'cgroup')
  assert.deepEqual({ ...r.pressure.some }, { avg10: 0, avg60: 0, avg300: 0, totalUs: 0 })
  assert.equal(r.basisBytes, r.workingSetBytes)
  assert.equal(r.usageRatio, r.workingSetBytes / 268435456)
  assert.equal(r.headroomBytes, 268435456 - r.workingSetBytes)
  assert.equal(r.heapLimitRatio, (259 * MiB) / 268435456)
  assert.equal(r.v8.heapUsedBytes, 10 * MiB, 'the numbers passed in are used')
  // Node 20 in a 256 MiB container: heap limit 259 MiB > limit.
  const d = r.diagnoses.find((x) => x.code === 'HEAP_LIMIT_ABOVE_CONTAINER_LIMIT')
  assert.ok(d, codes(r).join())
  assert.equal(d.severity, 'error')
  assert.equal(d.limitBytes, 268435456)
  assert.equal(d.heapSizeLimitBytes, 259 * MiB)
  // Node sizes from memory.high here (200 MiB: libuv's min(memory.high,
  // memory.max) of its own cgroup), so its young generation is 3 MiB.
  assert.equal(r.leafHighBytes, 209715200)
  assert.equal(r.constrainedMemoryBytes, 209715200)
  assert.equal(d.recommendedMaxOldSpaceSizeMib, 189, '75% of 256 MiB = 192 MiB heap, minus a 3 MiB young generation')
  assert.equal(d.modelledHeapSizeLimitBytes, 192 * MiB)
  assert.equal(d.recommendedMaxOldSpaceSizePercentage, null, 'node sizes from memory.high, not the limit: no percentage')
  assert.match(d.message, /--max-old-space-size=189/)
  assert.match(d.message, /model/)
})

test('heap limit well below the container limit: no heap diagnosis', () => {
  const r = read('v2-busy', { heapSizeLimit: 150 * MiB })
  assert.ok(!codes(r).some((c) => c.startsWith('HEAP_LIMIT')), codes(r).join())
  const near = read('v2-busy', { heapSizeLimit: 230 * MiB })
  assert.deepEqual(
    codes(near).filter((c) => c.startsWith('HEAP_LIMIT')),
    ['HEAP_LIMIT_NEAR_CONTAINER_LIMIT'],
  )
})

test('parent limit lower than the leaf: the smallest one up the hierarchy wins', () => {
  const r = read('v2-parent-lower')
  assert.equal(r.limitBytes, 134217728)
  assert.equal(r.cgroupLimitBytes, 134217728)
  assert.equal(r.leafLimitBytes, 536870912, 'the leaf keeps its own')
  assert.equal(r.highBytes, 100663296)
  const g = read('v1-grandchild')
  assert.equal(g.limitBytes, 134217728)
  assert.equal(g.leafLimitBytes, null, 'unlimited leaf is null')
})

test('previous OOM kill is reported with its count', () => {
  for (const tree of ['v1-oom-after', 'v2-oom-after']) {
    const r = read(tree)
    const d = r.diagnoses.find((x) => x.code === 'PREVIOUS_OOM_KILL')
    assert.ok(d, `${tree}: ${codes(r).join()}`)
    assert.equal(d.oomKillCount, 1)
    assert.equal(r.events.oomKill, 1)
  }
})

test('no limit anywhere: host MemTotal, source host, NO_LIMIT', () => {
  for (const tree of ['v1-hybrid-root', 'v2-root']) {
    const r = read(tree)
    assert.equal(r.source, 'host')
    assert.equal(r.cgroupLimitBytes, null)
    assert.equal(r.limitBytes, r.hostTotalBytes)
    assert.ok(codes(r).includes('NO_LIMIT'), codes(r).join())
    assert.ok(!codes(r).some((c) => c.startsWith('HEAP_LIMIT')), 'no heap advice against the host')
    // The case is named: a cgroup that exists and has no limit, not a failed detection.
    const d = r.diagnoses.find((x) => x.code === 'NO_LIMIT')
    assert.match(d.message, /memory cgroup \(.*\) was found and has no memory limit, nor has any parent/)
    assert.match(d.message, /source is 'host'/)
    assert.equal(d.path, r.cgroup.dir)
  }
  const root = read('v2-root')
  assert.equal(root.usageBytes, null, 'the v2 root cgroup has no memory.current')
  assert.equal(root.basisBytes, root.hostTotalBytes - root.hostAvailableBytes, 'basis is host used memory')
  assert.ok(!codes(root).includes('CGROUP_FILE_UNREADABLE'), codes(root).join())
})

test('no memory controller: cgroup fields null, host numbers present', () => {
  const r = read('no-memory-controller')
  assert.equal(r.cgroup, null)
  assert.equal(r.stat, null)
  assert.equal(r.events, null)
  assert.equal(r.usageBytes, null)
  assert.equal(r.source, 'host')
  assert.ok(r.hostTotalBytes > 0)
  assert.deepEqual(codes(r), ['NO_MEMORY_CGROUP'])
})

test('unreadable files: null and a diagnosis naming the file, never a throw', () => {
  const r = read('unreadable')
  assert.equal(r.stat, null)
  assert.equal(r.events, null)
  assert.equal(r.workingSetBytes, null)
  assert.equal(r.usageBytes, 181149696, 'the readable parts are still read')
  assert.equal(r.basisBytes, null, 'without memory.stat there is no working set: no ratio, never another number')
  assert.equal(r.usageRatio, null)
  assert.equal(r.limitBytes, 268435456, 'the limit files are fine')
  const bad = r.diagnoses.filter((d) => d.code === 'CGROUP_FILE_UNREADABLE').map((d) => path.basename(d.path))
  assert.deepEqual(bad.sort(), ['memory.events', 'memory.stat'])
  for (const d of r.diagnoses.filter((x) => x.code === 'CGROUP_FILE_UNREADABLE')) {
    assert.match(d.message, /memory\.(stat|events)/)
  }
})

test('directory that does not exist: fall back to the mount point and say so', () => {
  const r = read('v2-fallback')
  assert.equal(r.cgroup.resolved, false)
  assert.equal(r.cgroup.path, '/gone/away')
  assert.equal(r.cgroup.dir, r.cgroup.mountPoint)
  assert.equal(r.limitBytes, 268435456)
  assert.ok(codes(r).includes('CGROUP_UNRESOLVED'), codes(r).join())
})

test('mountinfo escapes and colons in cgroup paths', () => {
  const r = read('escaped')
  assert.equal(r.cgroup.path, '/kubepods/pod:abc:1/ctr')
  assert.ok(r.cgroup.mountPoint.endsWith('sys/fs/cgroup/mem ory'), r.cgroup.mountPoint)
  assert.equal(r.limitBytes, 268435456)
})

test('docker on v1 without a cgroup namespace: files at the mount point', () => {
  const r = read('v1-docker')
  assert.equal(r.cgroup.path, '/docker/3f1c9e0b7a2d')
  assert.equal(r.cgroup.dir, r.cgroup.mountPoint)
  assert.equal(r.cgroup.resolved, true)
  assert.equal(r.source, 'cgroup-v1')
})

test('cgroup namespace on v2: 0::/ is the mount point', () => {
  const r = read('v2-namespace')
  assert.equal(r.cgroup.path, '/')
  assert.equal(r.cgroup.dir, r.cgroup.mountPoint)
  assert.equal(r.limitBytes, 268435456)
  assert.equal(r.usageBytes, 181149696)
})

test('a root that does not exist at all: host-less nulls and diagnoses, no throw', () => {
  const r = getMemoryMetrics(undefined, { root: '/nonexistent/oomguard-root' })
  assert.equal(r.cgroup, null)
  assert.equal(r.limitBytes, null)
  assert.equal(r.hostTotalBytes, null)
  assert.ok(codes(r).includes('CGROUP_UNRESOLVED'), codes(r).join())
  assert.ok(r.diagnoses.find((d) => d.code === 'CGROUP_UNRESOLVED').message.includes('/proc/self/cgroup'))
})

test('repeated mount points: the mount on top is read, a covered one never', () => {
  const stacked = read('v1-stacked')
  assert.equal(stacked.cgroup.mountPoint, path.join(FIXTURES, 'v1-stacked', 'sys/fs/cgroup/memory'))
  assert.equal(stacked.cgroup.path, '/docker/3f1c9e0b7a2d')
  assert.equal(stacked.source, 'cgroup-v1', 'not the host root cgroup the covered mount leads to')
  assert.ok(!codes(stacked).includes('NO_LIMIT'), codes(stacked).join(', '))
  const covered = read('v1-covered-no-memory')
  assert.equal(covered.cgroup, null, 'the covered files are in the tree but out of sight')
  assert.deepEqual(codes(covered), ['NO_MEMORY_CGROUP'])
})
