'use strict'
// Every process in the cgroup, and peak and swap, on the live kernel: a real
// child cgroup v1 holding two processes, a node that holds memory
// (`oomguard-holder`) and a node that reads getMemoryMetrics(); the numbers
// are compared with what the kernel's files say. Plus the scan's rate limit,
// in this process's own cgroup.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const h = require('./helpers/cgroup')
const { getMemoryMetrics } = require('..')

const CHILD = path.join(__dirname, 'helpers', 'procs-child.js')
const PREFIX = 'OOMGUARD_PROCS '
const MiB = 1024 * 1024
const HOLD_MIB = 200
const LIMIT = 512 * MiB
const MEMSW_LIMIT = 768 * MiB
// RSS moves a little between the kernel's statm read and the test's.
const RSS_TOLERANCE = 4 * MiB

function statmRss(pid) {
  const pages = Number(fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1])
  return pages * 4096
}

/** RssAnon of /proc/<pid>/status, bytes: the kernel's own count, against oomguard's statm resident - shared. */
function anonShmem(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(text)[1]) * 1024
  return kib('RssAnon')
}

test('live v1: a child cgroup with node and a second process holding memory', { timeout: 90_000 }, async (t) => {
  const support = h.v1Support()
  if (support.reason) return h.privileged(t, support.reason)
  const dir = h.makeCgroup(support.own.dir)
  let holder = null
  t.after(async () => {
    // One hook, in order (node:test runs after-hooks first to last): the holder must be gone before rmdir.
    if (holder !== null && holder.exitCode === null && holder.signalCode === null) {
      const gone = new Promise((resolve) => holder.once('exit', resolve))
      process.kill(holder.pid, 'SIGKILL')
      await gone
    }
    h.removeCgroup(dir)
  })
  h.setV1Limit(dir, LIMIT)
  // Memory plus swap may reach 768 MiB: 256 MiB of swap on top of the memory limit.
  const memsw = fs.existsSync(path.join(dir, 'memory.memsw.limit_in_bytes'))
  if (memsw) h.writeCgroupFile(dir, 'memory.memsw.limit_in_bytes', MEMSW_LIMIT)

  const started = await h.startNodeInCgroup(dir, CHILD, ['holder', HOLD_MIB], PREFIX)
  holder = started.child
  const ready = started.line
  assert.equal(ready.pid, holder.pid, 'the holder is the process sh exec-ed into')
  const peakBefore = h.readNumber(path.join(dir, 'memory.max_usage_in_bytes'))

  const run = await h.runNodeInCgroup(dir, CHILD, ['probe'])
  assert.equal(run.code, 0, h.describeRun(run))
  const probe = h.parsePrefixed(run.stdout, PREFIX).find((o) => o.kind === 'probe')
  assert.ok(probe, h.describeRun(run))
  const m = probe.metrics
  const holderRss = statmRss(holder.pid)
  const holderAnon = anonShmem(holder.pid)
  const peakAfter = h.readNumber(path.join(dir, 'memory.max_usage_in_bytes'))

  // The processes, as cgroup.procs lists them: exactly these two.
  assert.equal(m.cgroup.dir, dir)
  const p = m.processes
  assert.ok(p, 'processes are read')
  assert.equal(p.count, 2, JSON.stringify(p))
  assert.deepEqual(
    p.largest.map((x) => x.pid),
    [holder.pid, probe.pid],
    'largest first: the holder, then the probe',
  )
  const [big, self] = p.largest
  assert.equal(big.command, 'oomguard-holder', '/proc/<pid>/comm')
  // The same node as this test names its main thread the same: `node` on 20
  // and 22, `MainThread` on 24.
  assert.equal(self.command, fs.readFileSync('/proc/self/comm', 'utf8').trim(), '/proc/<pid>/comm of node')
  assert.ok(big.rssBytes >= HOLD_MIB * MiB, `holder RSS ${big.rssBytes} holds ${HOLD_MIB} MiB`)
  assert.ok(Math.abs(big.rssBytes - holderRss) <= RSS_TOLERANCE, `holder RSS ${big.rssBytes}, statm now ${holderRss}`)
  assert.ok(Math.abs(self.rssBytes - m.rssBytes) <= RSS_TOLERANCE, `the probe's own entry ${self.rssBytes} is its /proc/self/statm ${m.rssBytes}`)
  assert.ok(Math.abs(big.anonBytes - holderAnon) <= RSS_TOLERANCE, `holder anonymous ${big.anonBytes}, RssAnon now ${holderAnon}`)
  assert.ok(big.anonBytes >= HOLD_MIB * MiB && big.anonBytes < big.rssBytes, 'the held Buffers are anonymous; RSS adds the mapped node binary')
  assert.ok(Math.abs(self.anonBytes - m.anonBytes) <= RSS_TOLERANCE)
  // Together they are part of the working set, as RSS need not be.
  assert.ok(big.anonBytes + self.anonBytes <= m.workingSetBytes, `${big.anonBytes} + ${self.anonBytes} <= ${m.workingSetBytes}`)

  // The share of the working set this process's anonymous memory is, as the doctor says it.
  const share = m.anonBytes / m.workingSetBytes
  assert.ok(share > 0 && share < 0.25, `the probe is the smaller part: ${share}`)
  const text = probe.text
  assert.match(text, new RegExp(`\\b${holder.pid}\\b.*oomguard-holder`), 'the doctor lists the holder')
  assert.match(text, new RegExp(`${(share * 100).toFixed(1)}% of the working set`), text)

  // The last words of a monitor in the same cgroup name the holder, and say
  // that another process fills the cgroup (this one is under 25% of it).
  const words = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-procs-')), 'last-words.json')
  t.after(() => fs.rmSync(path.dirname(words), { recursive: true, force: true }))
  const wrun = await h.runNodeInCgroup(dir, CHILD, ['watch', words])
  assert.equal(wrun.code, 0, h.describeRun(wrun))
  const watched = h.parsePrefixed(wrun.stdout, PREFIX).find((o) => o.kind === 'watch')
  assert.ok(watched, h.describeRun(wrun))
  const rec = watched.record
  assert.equal(rec.pid, watched.pid)
  assert.equal(rec.processCount, 2)
  assert.equal(rec.largestProcess.pid, holder.pid)
  assert.equal(rec.largestProcess.command, 'oomguard-holder')
  assert.ok(Math.abs(rec.largestProcess.rssBytes - holderRss) <= RSS_TOLERANCE, `${rec.largestProcess.rssBytes} vs ${holderRss}`)
  assert.ok(Math.abs(rec.largestProcess.anonBytes - holderAnon) <= RSS_TOLERANCE, `${rec.largestProcess.anonBytes} vs ${holderAnon}`)
  assert.ok(rec.largestProcess.ageMs >= 0 && rec.largestProcess.ageMs <= 1500, `the scan's figures are at most a second old: ${rec.largestProcess.ageMs}`)
  assert.ok(rec.anonShare > 0 && rec.anonShare < 0.25, `anonShare ${rec.anonShare}`)
  assert.ok(rec.anonBytes > 0 && rec.anonBytes < rec.rssBytes, `anonymous ${rec.anonBytes}, RSS ${rec.rssBytes}`)
  // The record writes fractions with four decimals: within half a unit of the fourth.
  assert.ok(Math.abs(rec.anonShare - rec.anonBytes / rec.basisBytes) <= 0.00005 + 1e-12, `anonShare ${rec.anonShare} is ${rec.anonBytes} / ${rec.basisBytes}`)
  assert.equal(rec.verdict, 'another-process', JSON.stringify(rec))
  assert.match(rec.reason, new RegExp(`largest process in the cgroup is pid ${holder.pid} \\(oomguard-holder, `))

  // Peak: memory.max_usage_in_bytes, which only grows.
  assert.ok(m.peakBytes >= peakBefore && m.peakBytes <= peakAfter, `peak ${m.peakBytes} within [${peakBefore}, ${peakAfter}]`)
  assert.ok(m.peakBytes >= HOLD_MIB * MiB)
  // Swap: memsw - usage, and the memsw limit minus the memory limit.
  if (memsw) {
    assert.ok(m.swapBytes >= 0, `swap ${m.swapBytes}`)
    const swapTotal = /SwapTotal:\s+(\d+)/.exec(fs.readFileSync('/proc/meminfo', 'utf8'))
    assert.equal(m.hostSwapTotalBytes, Number(swapTotal[1]) * 1024, 'SwapTotal of /proc/meminfo')
    if (Number(swapTotal[1]) === 0) {
      // No swap device: memsw and usage differ only by what changed between the two reads.
      assert.ok(m.swapBytes <= RSS_TOLERANCE, `no swap on this host, swapBytes ${m.swapBytes}`)
      assert.equal(m.swapLimitBytes, 0, 'no swap space on the host: no swap is usable, whatever memory.memsw.limit_in_bytes allows')
    } else {
      assert.equal(m.swapLimitBytes, MEMSW_LIMIT - LIMIT, 'memory.memsw.limit_in_bytes - memory.limit_in_bytes')
    }
  } else {
    assert.equal(m.swapBytes, null, 'no swap accounting: null')
    assert.equal(m.swapLimitBytes, null)
  }
})

test('live: the process list is scanned at most once a second; other numbers stay fresh', { timeout: 30_000 }, async (t) => {
  const a = getMemoryMetrics()
  if (a.processes === null) return h.privileged(t, 'no memory cgroup with cgroup.procs for this process')
  const b = getMemoryMetrics()
  assert.equal(b.processes, a.processes, 'the same scan, shared (frozen) between reads within a second')
  assert.ok(
    a.processes.largest.some((x) => x.pid === process.pid),
    'this process is in its own cgroup.procs',
  )
  assert.ok(a.processes.count >= 1)
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const c = getMemoryMetrics()
  assert.notEqual(c.processes, a.processes, 'a new scan after a second')
  assert.ok(c.processes.timestampMs >= a.processes.timestampMs + 1000, `${a.processes.timestampMs} -> ${c.processes.timestampMs}`)
  assert.ok(c.timestampMs >= c.processes.timestampMs)
})

// ---------------------------------------------------------------------------
// The doctor's sections, on fixture trees.

const { diagnose } = require('../lib/integrations/doctor.js')
const { render } = require('../lib/integrations/doctor-render.js')
const FIXTURES = path.join(__dirname, 'fixtures')
const fixture = (tree) => getMemoryMetrics({ heapSizeLimit: 192 * MiB }, { root: path.join(FIXTURES, tree) })

test("doctor: the processes, largest first, with their shares of the working set and this process's", () => {
  const m = fixture('v2-processes')
  const report = diagnose(m, {})
  const p = report.processes
  assert.equal(p.count, 21)
  assert.equal(p.largest.length, 16)
  // Shares are of anonymous memory: the convert's 90 MiB of RSS
  // would be 68.2% of the working set, its 48 MiB are 36.4%.
  assert.deepEqual(p.largest[0], { pid: 7, command: 'convert', rssBytes: 90 * MiB, anonBytes: 48 * MiB, share: (48 * MiB) / m.workingSetBytes })
  assert.equal(p.timestampMs, m.processes.timestampMs)
  assert.equal(p.selfRssBytes, m.rssBytes)
  assert.equal(p.selfAnonBytes, 108 * 1024)
  assert.equal(p.selfShare, (108 * 1024) / m.workingSetBytes)
  const sum = p.largest.reduce((a, x) => a + x.share, 0)
  assert.ok(sum > 0.8 && sum <= 1, `the shares add up to at most 100%: ${sum}`)
  const text = render(report)
  assert.match(text, /^processes\n {2}count {9}21 in this cgroup \(cgroup\.procs\)$/m)
  assert.match(text, /^ {2}this process {2}0\.1 MiB anonymous, 0\.1% of the working set \(2\.0 MiB RSS\)$/m)
  assert.match(text, /^ {2}largest {7}pid 7 \(convert\), 48\.0 MiB anonymous, 36\.4% of the working set \(90\.0 MiB RSS\)$/m)
  assert.match(text, /^ {7}pid {3}anonymous {3}share {9}rss {2}command$/m)
  assert.match(text, /^ {9}7 {4}48\.0 MiB {3}36\.4% {4}90\.0 MiB {2}convert$/m)
  assert.match(text, /^ {7}201 {4}25\.0 MiB {3}19\.0% {4}50\.0 MiB {2}\?$/m, 'an unreadable command is ?')
  assert.match(text, /^ {2}\.\.\. and 5 more$/m)
  assert.match(
    text.replace(/\n +/g, ' '),
    /Shares are of resident anonymous memory \(RssAnon: resident minus shared in \/proc\/PID\/statm\), which each process put in this cgroup: they add up to at most 100%\. RSS also counts mapped files/,
  )
  assert.doesNotMatch(text, /Over 100%|Together/)
  // A share over 100% says why.
  const big = { ...m, processes: { ...m.processes, largest: [{ pid: 9, command: 'moved', rssBytes: 300 * MiB, anonBytes: 200 * MiB }] } }
  const over = render(diagnose(big, {}))
  assert.match(over, /^ {9}9 {3}200\.0 MiB {2}151\.6% {3}300\.0 MiB {2}moved$/m)
  assert.match(
    over.replace(/\n +/g, ' '),
    /Over 100% \(pid 9\): part of that memory is charged to another cgroup \(on v1 a process moved here keeps the charges it made before\), or shared with other processes/,
  )
  // The CLI names this process (env.own): its entry takes the reading's own figures, one per process.
  const own = diagnose(m, { own: { bytes: 108 * 1024, processes: [{ pid: 1, command: 'node', bytes: 108 * 1024 }] } })
  const self = own.processes.largest.find((x) => x.pid === 1)
  assert.deepEqual([self.rssBytes, self.anonBytes], [m.rssBytes, m.anonBytes])
  assert.equal(diagnose(fixture('v2-busy'), {}).processes, null, 'no process list: no section')
  assert.doesNotMatch(render(diagnose(fixture('v2-busy'), {})), /^processes$/m)
})

test('doctor: peak and swap, and when the kernel kills with swap', () => {
  const v1 = diagnose(fixture('v1-swap'), {})
  assert.deepEqual({ ...v1.swap, message: undefined }, { peakBytes: 200421376, swapBytes: 50 * MiB, swapLimitBytes: 128 * MiB, hostSwapTotalBytes: 2097148 * 1024, message: undefined })
  assert.match(v1.swap.message, /only when memory and swap have both reached their limits \(memory 256\.0 MiB, swap 128\.0 MiB\)/)
  const text = render(v1)
  assert.match(text, /^ {2}swap {10}50\.0 MiB in use, limit 128\.0 MiB$/m)
  assert.match(text, /^ {2}peak {10}191\.1 MiB \(74\.7% of the limit/m)

  const unlimited = diagnose({ ...fixture('v2-busy'), swapLimitBytes: null, hostSwapTotalBytes: 2 * 1024 * MiB }, {}).swap
  assert.equal(unlimited.swapLimitBytes, null)
  assert.match(unlimited.message, /swap no limit of its own: up to the host's swap \(2048\.0 MiB\)/)
  assert.doesNotMatch(unlimited.message, /memory limit alone/)
  const unknown = diagnose({ ...fixture('v2-busy'), swapLimitBytes: null, hostSwapTotalBytes: null }, {}).swap
  assert.match(unknown.message, /host's swap space is unknown .*: without any, the memory limit alone decides/)

  // No swap space on the host (the captured hosts, Docker's default memsw of
  // twice the limit there): the swap text does not apply.
  for (const tree of ['v2-busy', 'v1-no-host-swap', 'v1-hybrid-busy']) {
    const r = diagnose(fixture(tree), {})
    assert.equal(r.swap.swapLimitBytes, 0, tree)
    assert.match(r.swap.message, /^The host has no swap space \(SwapTotal 0 in \/proc\/meminfo\), so nothing can be swapped out .*: the OOM killer acts when memory reaches the limit\.$/, tree)
    assert.doesNotMatch(r.swap.message, /With swap/, tree)
    assert.match(render(r), /^ {2}swap {10}none: the host has no swap space$/m, tree)
  }

  const none = diagnose(fixture('v1-no-swap-accounting'), {}).swap
  assert.equal(none.swapBytes, null)
  assert.match(none.message, /accounts no swap .* when memory reaches the limit/)
  assert.match(render(diagnose(fixture('v1-no-swap-accounting'), {})), /^ {2}swap {10}not accounted$/m)

  const off = diagnose({ ...fixture('v2-swap'), swapLimitBytes: 0 }, {}).swap
  assert.match(off.message, /may not swap \(swap limit 0\)/)
  assert.equal(diagnose(fixture('no-memory-controller'), {}).swap, null, 'no memory cgroup: no section')
})

// ---------------------------------------------------------------------------
// cgroup v2, in the throwaway VM (OOMGUARD_CGROUP2_VM; skipped without it).

test('live v2 (VM): memory.peak, memory.swap.current and .max, and the processes of the cgroup', { timeout: 150_000 }, async (t) => {
  const { needVm, stageHostDir, runVm } = require('./helpers/vm')
  const vm = needVm(t)
  if (!vm) return
  const hostDir = stageHostDir(t, [path.join(__dirname, 'helpers', 'procs-v2.js')])
  const r = await runVm(vm, { hostDir, memoryMax: '256M', command: ['node', 'procs-v2.js'], vmTimeoutS: 120 })
  t.diagnostic(`VM run took ${(r.ms / 1000).toFixed(1)} s`)
  assert.equal(r.code, 0, h.describeRun(r))
  const o = h.parsePrefixed(r.stdout, 'OOMGUARD_PROCS_V2 ')[0]
  assert.ok(o, h.describeRun(r))
  t.diagnostic(`kernel: swap.current ${o.swapCurrent}, swap.max ${o.swapMaxes.join(' / ')}, peak ${o.peakBefore}..${o.peakAfter}`)
  const m = o.metrics
  // Peak: memory.peak, which only grows.
  assert.ok(m.peakBytes >= o.peakBefore && m.peakBytes <= o.peakAfter, `peak ${m.peakBytes} within [${o.peakBefore}, ${o.peakAfter}]`)
  assert.ok(m.peakBytes >= 64 * MiB)
  // Swap: memory.swap.current as read, and memory.swap.max as written (32 MiB).
  if (o.swapCurrent.startsWith('<')) {
    assert.equal(m.swapBytes, null, `no memory.swap.current (${o.swapCurrent}): null`)
  } else {
    assert.equal(o.swapWrite, 'ok', 'memory.swap.max is writable in our own cgroup')
    assert.equal(m.swapBytes, Number(o.swapCurrent))
    // As written (32 MiB), where the guest has swap space; none is usable where it has none.
    const expected = m.hostSwapTotalBytes === 0 ? 0 : 32 * MiB
    assert.equal(m.swapLimitBytes, expected, `memory.swap.max up the hierarchy: ${o.swapMaxes.join(', ')}; SwapTotal ${m.hostSwapTotalBytes}`)
  }
  // Processes: this node and the holder, the holder first.
  const p = m.processes
  assert.equal(p.count, 2, JSON.stringify(p))
  assert.deepEqual(
    p.largest.map((x) => x.pid),
    [o.holderPid, o.pid],
  )
  assert.equal(p.largest[0].command, 'oomguard-holder')
  const holderRss = Number(o.holderStatm.split(' ')[1]) * 4096
  assert.ok(Math.abs(p.largest[0].rssBytes - holderRss) <= RSS_TOLERANCE, `${p.largest[0].rssBytes} vs statm ${holderRss}`)
  assert.ok(Math.abs(p.largest[1].rssBytes - m.rssBytes) <= RSS_TOLERANCE)
})
