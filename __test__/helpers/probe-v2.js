'use strict'
// Run inside a cgroup v2 VM by live-v2.test.js (copied into the VM's /host
// folder next to the package files):
//   node probe-v2.js main       (started by the VM runner in its memory-limited cgroup)
//   node probe-v2.js kid        (started by `main` in a child cgroup, see below)
//   node probe-v2.js container  (the runner's --container mode: own cgroup
//                                namespace, cgroup2 read-only at /sys/fs/cgroup;
//                                only (a), as nothing can be created there)
// Every result is one line: PREFIX + JSON { kind, ... }.
//
// `main` does, in one VM boot:
//  (a) kind 'self': getMemoryMetrics() of itself in the runner's cgroup C
//      (memory.max and maybe memory.high set there), with the kernel's own
//      memory.current read just before and just after the call;
//  (b) a child cgroup with no memory.max of its own. cgroup v2's "no internal
//      processes" rule: C's memory controller can only be enabled for children
//      (C/cgroup.subtree_control += memory) while C holds no process itself. So
//      main first moves itself into a leaf C/probe, then enables memory in C,
//      creates C/kid (memory.max "max") and runs `probe-v2.js kid` there
//      (kind 'kid'). Without memory enabled in C, C/kid would have no memory.*
//      files at all and the reader would rightly use C's files instead.
//  kind 'nested-error' says which step of (b) failed and why.

const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const PREFIX = 'OOMGUARD_PROBE_V2 '
const mode = process.argv[2] || 'main'
const { getMemoryMetrics } = require(path.resolve(__dirname))

function emit(obj) {
  process.stdout.write(`${PREFIX}${JSON.stringify(obj)}\n`)
}

function read(file) {
  try {
    return fs.readFileSync(file, 'utf8').trim()
  } catch (e) {
    return `<${e.code || e.message}>`
  }
}

/** This process's cgroup v2 path and directory, from /proc/self/cgroup and mountinfo. */
function ownCgroup() {
  const line = fs
    .readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'))
  const cgPath = line.slice(3)
  let mount = '/sys/fs/cgroup'
  let mountOptions = null
  for (const l of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = l.indexOf(' - ')
    if (sep >= 0 && l.slice(sep + 3).startsWith('cgroup2 ')) {
      mount = l.slice(0, sep).split(' ')[4]
      mountOptions = l.slice(0, sep).split(' ')[5]
      break
    }
  }
  return { path: cgPath, dir: cgPath === '/' ? mount : path.join(mount, cgPath), mount, mountOptions }
}

function measure(kind) {
  const own = ownCgroup()
  const currentFile = path.join(own.dir, 'memory.current')
  const currentBefore = Number(read(currentFile))
  const m = getMemoryMetrics()
  const currentAfter = Number(read(currentFile))
  emit({
    kind,
    metrics: {
      source: m.source,
      limitBytes: m.limitBytes,
      cgroupLimitBytes: m.cgroupLimitBytes,
      leafLimitBytes: m.leafLimitBytes,
      highBytes: m.highBytes,
      usageBytes: m.usageBytes,
      workingSetBytes: m.workingSetBytes,
      cgroup: m.cgroup,
      events: m.events,
      pressureScope: m.pressure && m.pressure.scope,
      diagnoses: (m.diagnoses || []).map((d) => d.code),
    },
    kernel: {
      path: own.path,
      dir: own.dir,
      mount: own.mount,
      mountOptions: own.mountOptions,
      currentBefore,
      currentAfter,
      max: read(path.join(own.dir, 'memory.max')),
      high: read(path.join(own.dir, 'memory.high')),
      parentSubtreeControl: read(path.join(path.dirname(own.dir), 'cgroup.subtree_control')),
    },
  })
  return own
}

if (mode === 'kid') {
  measure('kid')
} else if (mode === 'container') {
  measure('self')
} else {
  const own = measure('self')
  let step = 'start'
  try {
    step = 'mkdir probe leaf'
    const leaf = path.join(own.dir, 'probe')
    fs.mkdirSync(leaf)
    step = 'move this process into the probe leaf'
    fs.writeFileSync(path.join(leaf, 'cgroup.procs'), String(process.pid))
    step = 'enable memory in cgroup.subtree_control'
    fs.writeFileSync(path.join(own.dir, 'cgroup.subtree_control'), '+memory')
    step = 'mkdir kid'
    const kid = path.join(own.dir, 'kid')
    fs.mkdirSync(kid)
    step = 'run node in kid'
    const r = spawnSync('sh', ['-c', 'echo $$ > "$1" && shift && exec "$@"', 'sh', path.join(kid, 'cgroup.procs'), process.execPath, __filename, 'kid'], {
      stdio: ['ignore', 'inherit', 'pipe'],
      timeout: 60000,
      encoding: 'utf8',
    })
    if (r.status !== 0) throw new Error(`kid exited ${r.status} (signal ${r.signal}): ${r.stderr || r.error}`)
  } catch (e) {
    emit({ kind: 'nested-error', step, message: String((e && e.message) || e) })
  }
}
