'use strict'
// Helpers for the live tests: find this process's own cgroup v1 memory
// controller, create uniquely named child cgroups under it, run node scripts
// inside them, and remove everything created (and only that), also when a
// test fails or the process exits early.

const fs = require('node:fs')
const path = require('node:path')
const crypto = require('node:crypto')
const { spawn } = require('node:child_process')

const REPO_ROOT = path.resolve(__dirname, '..', '..')
const V1_UNLIMITED = 9223372036854771712n // LONG_MAX rounded down to a page: "no limit"

// ------------------------------------------------------------------ privileges

/**
 * Skip helper for tests that need privileges or machinery this environment may
 * not have. With OOMGUARD_REQUIRE_PRIVILEGED=1 the missing privilege is a
 * test failure (throws with the reason); otherwise the test is skipped.
 * Callers: `if (reason) return privileged(t, reason)`.
 */
function privileged(t, reason) {
  if (process.env.OOMGUARD_REQUIRE_PRIVILEGED === '1') {
    throw new Error(`${reason} (OOMGUARD_REQUIRE_PRIVILEGED=1: a missing privilege is a failure, not a skip)`)
  }
  t.skip(reason)
}

// ------------------------------------------------------------------ own cgroup

/** Undo the octal escapes (\040 etc.) the kernel writes in mountinfo fields. */
function unescapeMountinfo(s) {
  return s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)))
}

/**
 * This process's cgroup v1 memory controller:
 * `{ path, mountPoint, mountRoot, dir }`, where `path` is the text after
 * `N:memory:` in /proc/self/cgroup and `dir` is the directory holding its files.
 * `null` when there is no v1 memory controller (cgroup2-only hosts, or no
 * memory line), or when its mount can't be found.
 */
function ownV1MemoryCgroup() {
  let cgroupText
  try {
    cgroupText = fs.readFileSync('/proc/self/cgroup', 'utf8')
  } catch {
    return null
  }
  let cgPath = null
  for (const line of cgroupText.split('\n')) {
    // "4:memory:/some/path" (the path itself may contain colons)
    const m = /^\d+:([^:]*):(.*)$/.exec(line)
    if (m && m[1].split(',').includes('memory')) {
      cgPath = m[2]
      break
    }
  }
  if (cgPath === null) return null

  let mountPoint = null
  let mountRoot = '/'
  try {
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const sep = line.indexOf(' - ')
      if (sep < 0) continue
      const left = line.slice(0, sep).split(' ')
      const right = line.slice(sep + 3).split(' ')
      if (right[0] !== 'cgroup') continue
      if (!(right[2] || '').split(',').includes('memory')) continue
      mountRoot = unescapeMountinfo(left[3])
      mountPoint = unescapeMountinfo(left[4])
      break
    }
  } catch {
    // fall through to the conventional mount point
  }
  if (mountPoint === null) {
    if (!fs.existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes')) return null
    mountPoint = '/sys/fs/cgroup/memory'
  }
  let rel = cgPath
  if (mountRoot !== '/' && (rel === mountRoot || rel.startsWith(`${mountRoot}/`))) {
    rel = rel.slice(mountRoot.length) || '/'
  }
  const dir = rel === '/' ? mountPoint : path.join(mountPoint, rel)
  if (!fs.existsSync(path.join(dir, 'memory.usage_in_bytes'))) return null
  return { path: cgPath, mountPoint, mountRoot, dir }
}

/** A v1 limit file's value as a Number, or null for "unlimited". */
function readV1Limit(file) {
  const v = BigInt(fs.readFileSync(file, 'utf8').trim())
  return v >= V1_UNLIMITED ? null : Number(v)
}

/** Smallest `memory.limit_in_bytes` from `dir` up to `mountPoint` (null: none). */
function effectiveV1Limit(dir, mountPoint) {
  let best = null
  for (let d = dir; ; d = path.dirname(d)) {
    let v = null
    try {
      v = readV1Limit(path.join(d, 'memory.limit_in_bytes'))
    } catch {
      // the v1 root has no limit file on some kernels
    }
    if (v !== null && (best === null || v < best)) best = v
    if (d === mountPoint || d === path.dirname(d)) break
  }
  return best
}

function readNumber(file) {
  return Number(fs.readFileSync(file, 'utf8').trim())
}

// ------------------------------------------------------------------ registry + cleanup

/** Directories this process created, in creation order. Nothing else is ever removed. */
const created = []
/** Child processes this process spawned and that have not exited yet: pid -> { group } */
const running = new Map()

function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

function uniqueName(prefix = 'oomguard-test') {
  return `${prefix}-${process.pid}-${crypto.randomBytes(4).toString('hex')}`
}

/** mkdir a cgroup we own under `parentDir`; registered for removal. */
function makeCgroup(parentDir, name = uniqueName()) {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`bad cgroup name ${JSON.stringify(name)}`)
  const dir = path.join(parentDir, name)
  fs.mkdirSync(dir) // throws EEXIST rather than adopting someone else's cgroup
  created.push(dir)
  return dir
}

function isOurs(dir) {
  return created.includes(dir)
}

/** Set `memory.limit_in_bytes` on a cgroup this process created. */
function setV1Limit(dir, bytes) {
  if (!isOurs(dir)) throw new Error(`refusing to write to a cgroup this test did not create: ${dir}`)
  fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(bytes))
}

/** Write `value` to a file (e.g. `memory.memsw.limit_in_bytes`) of a cgroup this process created. */
function writeCgroupFile(dir, file, value) {
  if (!isOurs(dir)) throw new Error(`refusing to write to a cgroup this test did not create: ${dir}`)
  if (file.includes('/')) throw new Error(`not a cgroup file name: ${file}`)
  fs.writeFileSync(path.join(dir, file), String(value))
}

function rmdirWithRetry(dir, attempts = 40, delayMs = 50) {
  for (let i = 1; ; i++) {
    try {
      fs.rmdirSync(dir)
      return
    } catch (e) {
      if (e.code === 'ENOENT') return
      if (i >= attempts || (e.code !== 'EBUSY' && e.code !== 'EAGAIN' && e.code !== 'ENOTEMPTY')) {
        let procs = ''
        try {
          procs = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').trim().replace(/\n/g, ' ')
        } catch {}
        e.message += ` (rmdir ${dir} after ${i} attempts; cgroup.procs: ${procs || 'empty'})`
        throw e
      }
      sleepSync(delayMs)
    }
  }
}

/**
 * Remove `dir` and every cgroup this process created below it, deepest first.
 * Only directories in the registry are touched. Synchronous, so it also works
 * from an 'exit' handler.
 */
function removeCgroup(dir) {
  const mine = created.filter((d) => d === dir || d.startsWith(`${dir}/`)).sort((a, b) => b.split('/').length - a.split('/').length)
  let firstError = null
  for (const d of mine) {
    try {
      rmdirWithRetry(d)
      created.splice(created.indexOf(d), 1)
    } catch (e) {
      firstError = firstError || e
    }
  }
  if (firstError) throw firstError
}

/** Kill what we spawned and is still running (by pid / our own process group). */
function killRunning() {
  for (const [pid, { group }] of running) {
    try {
      process.kill(group ? -pid : pid, 'SIGKILL')
    } catch {}
  }
}

function cleanupAll() {
  killRunning()
  const roots = created.filter((d) => !created.some((o) => o !== d && d.startsWith(`${o}/`)))
  for (const r of roots) {
    try {
      removeCgroup(r)
    } catch (e) {
      process.stderr.write(`oomguard test cleanup: ${e.message}\n`)
    }
  }
}

process.on('exit', cleanupAll)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    cleanupAll()
    // Nobody else handles it: die of the signal as we would have without this handler.
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
  })
}

// ------------------------------------------------------------------ capability check

/**
 * Can this process create v1 memory cgroups under its own one and set a
 * limit there? Returns `{ own }` when it can, `{ reason }` when it cannot.
 */
function v1Support() {
  if (process.platform !== 'linux') return { reason: 'live cgroup tests need Linux' }
  const own = ownV1MemoryCgroup()
  if (!own) {
    return { reason: 'no cgroup v1 memory controller for this process (/proc/self/cgroup has no usable memory line)' }
  }
  // Try it for real (root, or a delegated writable hierarchy), on a throwaway cgroup.
  let dir = null
  try {
    dir = makeCgroup(own.dir, uniqueName('oomguard-probe'))
    setV1Limit(dir, 64 * 1024 * 1024)
  } catch (e) {
    if (dir) removeCgroup(dir)
    const uid = typeof process.getuid === 'function' ? process.getuid() : null
    const who = uid === 0 ? 'as root' : `as uid ${uid}: creating cgroups needs root`
    return { reason: `cannot create a memory cgroup with a limit under ${own.dir} (${who}): ${e.code || e.message}` }
  }
  removeCgroup(dir)
  return { own }
}

// ------------------------------------------------------------------ running things

/**
 * Run a command and collect `{ code, signal, stdout, stderr, timedOut, ms }`.
 * `group: true` starts it in its own process group so a timeout kills the
 * whole tree it started (e.g. a VM runner and its qemu) — only that group.
 */
function runProcess(cmd, args, { timeoutMs = 30000, env, cwd, group = false } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now()
    const child = spawn(cmd, args, {
      cwd: cwd || REPO_ROOT,
      env: env || process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: group,
    })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
    if (child.pid) running.set(child.pid, { group })
    const timer = setTimeout(() => {
      timedOut = true
      try {
        process.kill(group ? -child.pid : child.pid, 'SIGKILL')
      } catch {}
    }, timeoutMs)
    child.on('error', (e) => {
      clearTimeout(timer)
      running.delete(child.pid)
      reject(e)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      running.delete(child.pid)
      resolve({ code, signal, stdout, stderr, timedOut, ms: Date.now() - t0 })
    })
  })
}

/**
 * Run `node <script> ...args` inside the cgroup `dir`: a shell writes its own
 * pid to `cgroup.procs` and then execs node, so node is in the cgroup from its
 * first instruction. `readOnly`: a mount point (the v1 memory controller's)
 * that node sees read-only, as Docker and Kubernetes mount cgroupfs: node runs
 * in its own mount namespace (`unshare -m`, private propagation: the host's
 * mount is untouched) with that mount remounted `ro`.
 */
function runNodeInCgroup(dir, script, args = [], opts = {}) {
  const { readOnly, ...rest } = opts
  return runProcess('sh', ['-c', ...enterCgroup(dir, readOnly), process.execPath, script, ...args.map(String)], rest)
}

/** The `sh -c` script and its first arguments that enter `dir` (see runNodeInCgroup). */
function enterCgroup(dir, readOnly) {
  const procs = path.join(dir, 'cgroup.procs')
  if (!readOnly) return ['echo $$ > "$1" && shift && exec "$@"', 'sh', procs]
  return ['echo $$ > "$1" && shift && exec unshare -m --propagation private sh -c \'mount -o remount,bind,ro "$1" && shift && exec "$@"\' sh "$@"', 'sh', procs, readOnly]
}

/**
 * Start `node <script> ...args` inside the cgroup `dir` (as runNodeInCgroup)
 * and leave it running. Resolves with `{ child, line }` once it prints a line
 * starting with `prefix` (`line` is the JSON after it); rejects if it exits or
 * `timeoutMs` passes first. The caller kills it (by `child.pid`); whatever is
 * still running at exit is killed by cleanupAll().
 */
function startNodeInCgroup(dir, script, args, prefix, { timeoutMs = 30000, readOnly } = {}) {
  const child = spawn('sh', ['-c', ...enterCgroup(dir, readOnly), process.execPath, script, ...args.map(String)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  if (child.pid) running.set(child.pid, { group: false })
  child.on('exit', () => running.delete(child.pid))
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    const fail = (why) => {
      clearTimeout(timer)
      try {
        process.kill(child.pid, 'SIGKILL')
      } catch {}
      reject(new Error(`${why}\n--- stdout\n${out.slice(-2000)}\n--- stderr\n${err.slice(-2000)}`))
    }
    const timer = setTimeout(() => fail(`no ${prefix.trim()} line within ${timeoutMs} ms`), timeoutMs)
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d))
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d
      const found = parsePrefixed(out.slice(0, out.lastIndexOf('\n') + 1), prefix)
      if (found.length > 0) {
        clearTimeout(timer)
        resolve({ child, line: found[0] })
      }
    })
    child.on('error', (e) => fail(e.message))
    child.on('exit', (code, signal) => fail(`exited (code ${code}, signal ${signal}) before its ${prefix.trim()} line`))
  })
}

/** The JSON objects on lines starting with `prefix`/** The JSON objects on lines starting with `prefix` (anywhere in the line). */
function parsePrefixed(output, prefix) {
  const out = []
  for (const line of output.split('\n')) {
    const i = line.indexOf(prefix)
    if (i >= 0) out.push(JSON.parse(line.slice(i + prefix.length).trim()))
  }
  return out
}

/** A one-line description of a finished process, for assertion messages. */
function describeRun(r) {
  return `exit code ${r.code} signal ${r.signal}${r.timedOut ? ' (timed out)' : ''} after ${r.ms} ms\n` + `--- stdout (tail)\n${r.stdout.slice(-4000)}\n--- stderr (tail)\n${r.stderr.slice(-4000)}`
}

module.exports = {
  REPO_ROOT,
  privileged,
  ownV1MemoryCgroup,
  effectiveV1Limit,
  readV1Limit,
  readNumber,
  uniqueName,
  makeCgroup,
  setV1Limit,
  writeCgroupFile,
  removeCgroup,
  cleanupAll,
  v1Support,
  runProcess,
  runNodeInCgroup,
  enterCgroup,
  startNodeInCgroup,
  parsePrefixed,
  describeRun,
}
