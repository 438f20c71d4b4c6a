'use strict'
// Run inside the cgroup v2 VM by processes.test.js (copied into the VM's
// /host folder next to the package files), in the runner's memory-limited
// cgroup: sets memory.swap.max, starts a second node that holds 64 MiB
// (`oomguard-holder`), reads getMemoryMetrics() and the kernel's own files
// around it, and prints one line: PREFIX + JSON.

const fs = require('node:fs')
const path = require('node:path')
const { spawn } = require('node:child_process')

const PREFIX = 'OOMGUARD_PROCS_V2 '
const SWAP_MAX = 32 * 1024 * 1024
const { getMemoryMetrics } = require(path.resolve(__dirname))

function read(file) {
  try {
    return fs.readFileSync(file, 'utf8').trim()
  } catch (e) {
    return `<${e.code || e.message}>`
  }
}

function ownDir() {
  const cg = fs
    .readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'))
    .slice(3)
  let mount = '/sys/fs/cgroup'
  for (const l of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = l.indexOf(' - ')
    if (sep >= 0 && l.slice(sep + 3).startsWith('cgroup2 ')) {
      mount = l.slice(0, sep).split(' ')[4]
      break
    }
  }
  return { dir: path.join(mount, cg), mount }
}

const { dir, mount } = ownDir()
let swapWrite = 'ok'
try {
  fs.writeFileSync(path.join(dir, 'memory.swap.max'), String(SWAP_MAX))
} catch (e) {
  swapWrite = e.code || e.message
}
const holder = spawn(process.execPath, ['-e', "process.title = 'oomguard-holder'; const b = Buffer.alloc(64 << 20, 1); console.log('ready'); setInterval(() => b.length, 1e9)"], {
  stdio: ['ignore', 'pipe', 'inherit'],
})
holder.stdout.once('data', () => {
  const peakBefore = Number(read(path.join(dir, 'memory.peak')))
  const m = getMemoryMetrics()
  const peakAfter = Number(read(path.join(dir, 'memory.peak')))
  const swapMaxes = []
  for (let d = dir; d.startsWith(mount); d = path.dirname(d)) {
    swapMaxes.push(read(path.join(d, 'memory.swap.max')))
    if (d === mount) break
  }
  process.stdout.write(
    PREFIX +
      JSON.stringify({
        pid: process.pid,
        holderPid: holder.pid,
        holderStatm: read(`/proc/${holder.pid}/statm`),
        swapWrite,
        peakBefore,
        peakAfter,
        swapCurrent: read(path.join(dir, 'memory.swap.current')),
        swapMaxes,
        metrics: {
          cgroupDir: m.cgroup && m.cgroup.dir,
          processes: m.processes,
          rssBytes: m.rssBytes,
          workingSetBytes: m.workingSetBytes,
          peakBytes: m.peakBytes,
          swapBytes: m.swapBytes,
          swapLimitBytes: m.swapLimitBytes,
          hostSwapTotalBytes: m.hostSwapTotalBytes,
        },
      }) +
      '\n',
  )
  holder.kill('SIGKILL')
})
