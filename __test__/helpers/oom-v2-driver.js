'use strict'
// Runs inside the cgroup v2 VM (staged into /host by oom-v2.test.js), in the
// runner's writable layout, and runs each scenario of one VM boot, one after
// the other, in a cgroup of its own (the page-cache run; the OOM scenarios run
// in the container layout: oom-v2-container.sh):
//
//   node oom-v2-driver.js PLAN_JSON
//
// PLAN_JSON: { limitBytes, pkgDir, childTimeoutMs, runs: [{ id, kind, scenario, rate, prefill }] }
// kind 'oom': oom-child.js in a fresh cgroup with memory.max = limitBytes;
// kind 'pagecache': the same, with the child's work folder in HOST_DIR, which
//   must be shared over 9p with cache=loose so that the file's pages are
//   reclaimable page cache (the VM's root file system is tmpfs: shmem, never
//   reclaimable without swap; the VM has no block device).
//
// The VM runner started this process in its own memory-limited cgroup C. The
// cgroup v2 "no internal processes" rule: C can only give its children the
// memory controller (C/cgroup.subtree_control += memory) while C itself holds
// no process, so the driver first moves itself into the leaf C/driver.
//
// Every result is one line on stdout: PREFIX + JSON. The host side reads
// nothing else back (the VM's files are gone when it powers off).

const fs = require('node:fs')
const path = require('node:path')
const { spawn, spawnSync } = require('node:child_process')

const PREFIX = 'OOMGUARD_V2_RESULT '
const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const HERE = __dirname
const CHILD = path.join(HERE, 'oom-child.js')
const TAIL = 6000 // bytes of a child's output kept: results travel over the serial console

function emit(obj) {
  fs.writeSync(1, `${PREFIX}${JSON.stringify(obj)}\n`)
}

function read(file) {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return null
  }
}

function eventsOf(dir) {
  const out = {}
  for (const line of (read(path.join(dir, 'memory.events')) || '').split('\n')) {
    const [k, v] = line.split(' ')
    if (k) out[k] = Number(v)
  }
  return out
}

function sh(cmd) {
  const r = spawnSync('/bin/sh', ['-c', cmd], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${cmd}: exit ${r.status} ${r.stderr || ''}${r.stdout || ''}`.trim())
  return r.stdout
}

/** Run `argv` with its first process already in cgroup `dir`; resolves with the result. */
function runIn(dir, argv, { timeoutMs, cwd = HERE, tail = TAIL } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now()
    const child = spawn('/bin/sh', ['-c', 'echo $$ > "$1" && shift && exec "$@"', 'sh', path.join(dir, 'cgroup.procs'), ...argv], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout: stdout.slice(-tail), stderr: stderr.slice(-tail), timedOut, ms: Date.now() - t0, endedAt: Date.now() })
    })
  })
}

function rmdirLater(dir) {
  for (let i = 0; i < 50; i++) {
    try {
      fs.rmdirSync(dir)
      return
    } catch (e) {
      if (e.code === 'ENOENT') return
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20)
    }
  }
}

// ------------------------------------------------------------------ setup

const own = fs
  .readFileSync('/proc/self/cgroup', 'utf8')
  .split('\n')
  .find((l) => l.startsWith('0::'))
  .slice(3)
const C = path.join('/sys/fs/cgroup', own)
const setup = { cgroup: own, memoryMax: read(path.join(C, 'memory.max')).trim() }

// Keep the kernel's OOM reports off the serial console, where they could
// land in the middle of a result line (they stay in dmesg).
fs.writeFileSync('/proc/sys/kernel/printk', '1')

fs.mkdirSync(path.join(C, 'driver'))
fs.writeFileSync(path.join(C, 'driver', 'cgroup.procs'), String(process.pid))
fs.writeFileSync(path.join(C, 'cgroup.subtree_control'), '+memory')
setup.subtreeControl = read(path.join(C, 'cgroup.subtree_control')).trim()
emit({ kind: 'setup', ...setup, node: process.version, kernel: read('/proc/sys/kernel/osrelease').trim() })

// ------------------------------------------------------------------ page cache

/**
 * A folder whose files' pages are ordinary, reclaimable page cache. The VM's
 * root file system is tmpfs (shmem: never reclaimable without swap) and it has
 * no block device, so only HOST_DIR shared over 9p with cache=loose qualifies.
 */
function pageCacheDir() {
  const mount = read('/proc/mounts')
    .split('\n')
    .map((l) => l.split(' '))
    .find((f) => f[1] === HERE)
  if (!mount || mount[2] !== '9p' || !/(^|,)(cache=)?loose(,|$)/.test(mount[3])) {
    throw new Error(`no file system with reclaimable page cache: ${HERE} is ${mount ? `${mount[2]} (${mount[3]})` : 'not a mount'}, not 9p with cache=loose`)
  }
  // 9p has no cgroup writeback, so the global dirty limits apply (20% of the
  // guest's RAM, most of the 256 MiB limit). Cap dirty memory well below the
  // limit, as the per-cgroup dirty limits of ext4 or xfs would.
  fs.writeFileSync('/proc/sys/vm/dirty_background_bytes', String(16 << 20))
  fs.writeFileSync('/proc/sys/vm/dirty_bytes', String(32 << 20))
  return HERE
}

// ------------------------------------------------------------------ runs

async function runOne(spec) {
  const dir = path.join(C, `run-${spec.id}`)
  fs.mkdirSync(dir)
  fs.writeFileSync(path.join(dir, 'memory.max'), String(plan.limitBytes))
  const result = { kind: 'run', id: spec.id, limit: read(path.join(dir, 'memory.max')).trim() }
  const before = eventsOf(dir)
  const work = path.join(spec.kind === 'pagecache' ? pageCacheDir() : '/tmp', `oomguard-run-${spec.id}`)
  fs.mkdirSync(work)
  const marker = path.join(work, 'marker')
  const lastWords = path.join(work, 'termination-log')
  result.run = await runIn(dir, [process.execPath, CHILD, spec.scenario, spec.rate, marker, lastWords, plan.pkgDir, spec.prefill], {
    timeoutMs: plan.childTimeoutMs,
  })
  result.markersText = read(marker)
  result.lastWordsText = read(lastWords)
  fs.rmSync(work, { recursive: true, force: true })
  const after = eventsOf(dir)
  result.oomKills = after.oom_kill - before.oom_kill
  result.events = after
  result.peak = Number(read(path.join(dir, 'memory.peak')))
  rmdirLater(dir)
  return result
}

async function main() {
  for (const spec of plan.runs) {
    let result
    try {
      result = await runOne(spec)
    } catch (e) {
      result = { kind: 'run', id: spec.id, error: e.stack || String(e) }
    }
    emit(result)
  }
  let dmesg = ''
  try {
    dmesg = sh('dmesg')
      .split('\n')
      .filter((l) => /oom|killed process/i.test(l))
      .slice(-20)
      .join('\n')
  } catch {}
  emit({ kind: 'done', dmesg })
}

main().catch((e) => {
  emit({ kind: 'fatal', error: e.stack || String(e) })
  process.exitCode = 1
})
