'use strict'
// Shared bits of the benchmarks: option parsing, statistics, markdown
// tables, machine/version info, and (for the watch benchmarks) a reader of
// the kernel log (/dev/kmsg) that gives the kernel's own timestamp of an OOM
// kill, converted to wall-clock milliseconds.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const ROOT = path.join(__dirname, '..')
const MiB = 1024 * 1024

// ------------------------------------------------------------------ options

/**
 * Parse `--name value` / `--flag` arguments against a spec:
 * `{ name: { def, type: 'bool' | 'int' | 'num' | 'list' | 'str', help } }`.
 * Names are camelCased (`--seconds-per-level` -> secondsPerLevel).
 */
function parseArgs(argv, spec, usage) {
  const opts = {}
  for (const [k, s] of Object.entries(spec)) opts[k] = s.def
  const camel = (s) => s.replace(/-([a-z])/g, (_, c) => c.toUpperCase())
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '-h' || a === '--help') {
      console.log(usage)
      for (const [k, s] of Object.entries(spec)) {
        const flag = `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`
        console.log(`  ${flag.padEnd(22)} ${s.help} (default ${Array.isArray(s.def) ? s.def.join(',') : s.def})`)
      }
      process.exit(0)
    }
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`)
    const key = camel(a.slice(2))
    const s = spec[key]
    if (!s) throw new Error(`unknown option ${a} (see --help)`)
    if (s.type === 'bool') {
      opts[key] = true
      continue
    }
    const raw = argv[++i]
    if (raw === undefined) throw new Error(`${a} needs a value`)
    if (s.type === 'int' || s.type === 'num') {
      const v = Number(raw)
      if (!Number.isFinite(v) || v < 0 || (s.type === 'int' && !Number.isInteger(v))) throw new Error(`${a}: bad number ${raw}`)
      opts[key] = v
    } else if (s.type === 'list') {
      const v = raw.split(',').map((x) => Number(x.trim()))
      if (v.some((x) => !Number.isFinite(x) || x < 0)) throw new Error(`${a}: bad list ${raw}`)
      opts[key] = v
    } else opts[key] = raw
  }
  return opts
}

// ------------------------------------------------------------------ statistics

function quantile(values, q) {
  const s = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b)
  if (s.length === 0) return null
  const pos = (s.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return s[lo] + (s[hi] - s[lo]) * (pos - lo)
}
const median = (v) => quantile(v, 0.5)
/** Median and quartiles of the finite numbers in `values`. */
function summary(values) {
  const n = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).length
  return { median: quantile(values, 0.5), p25: quantile(values, 0.25), p75: quantile(values, 0.75), n }
}
const minOf = (v) => quantile(v, 0)

/** Format a number, or '–' when missing. */
function fmt(v, digits = 1) {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits)
}

function table(header, rows) {
  const out = [`| ${header.join(' | ')} |`, `| ${header.map((h, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`]
  for (const r of rows) out.push(`| ${r.join(' | ')} |`)
  return out.join('\n')
}

// ------------------------------------------------------------------ machine

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch {
    return null
  }
}

function clkTck() {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
}

function machineInfo() {
  const cpus = os.cpus()
  let cgroupVersion = null
  try {
    const text = fs.readFileSync('/proc/self/cgroup', 'utf8')
    cgroupVersion = /^\d+:[^:]*\bmemory\b[^:]*:/m.test(text) ? 1 : /^0::/m.test(text) ? 2 : null
  } catch {}
  return {
    cpuModel: cpus.length ? cpus[0].model.trim() : 'unknown',
    cores: cpus.length,
    memoryMiB: Math.round(os.totalmem() / MiB),
    kernel: `${os.type()} ${os.release()}`,
    arch: process.arch,
    cgroupVersion,
    loadavg: os.loadavg().map((v) => Number(v.toFixed(2))),
  }
}

/** The built addon measured (the one the loader loads here): others may rebuild it between runs, so say which. */
function addonInfo() {
  try {
    // The one this machine loads (the tree may hold every platform's, after npm run build:all).
    const full = require(path.join(ROOT, 'lib', 'core', 'loader.js')).status.file
    if (!full) return null
    const file = path.basename(full)
    const hash = require('node:crypto').createHash('sha256').update(fs.readFileSync(full)).digest('hex').slice(0, 12)
    let commit = null
    try {
      commit = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    } catch {}
    return { file, sha256: hash, built: fs.statSync(full).mtime.toISOString(), commit }
  } catch {
    return null
  }
}

function versions() {
  return { node: process.version, oomguard: readJson(path.join(ROOT, 'package.json'))?.version ?? null, addon: addonInfo() }
}

function describeMachine(m, v) {
  return [
    `machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryMiB} MiB, ${m.kernel} (${m.arch}), cgroup v${m.cgroupVersion}, load ${m.loadavg.join(' ')}`,
    `versions: node ${v.node}, oomguard ${v.oomguard}${v.addon ? ` (${v.addon.file} sha256 ${v.addon.sha256}, built ${v.addon.built}, HEAD ${v.addon.commit})` : ''}`,
  ].join('\n')
}

// ------------------------------------------------------------------ kernel log

/**
 * Reads /dev/kmsg incrementally (the fd keeps its position) and maps the
 * kernel's record timestamps (local_clock, µs since boot) to wall-clock ms.
 *
 * Mapping: calibrate() writes a marker record into the kernel log at a known
 * wall-clock instant. The wall-clock instant is taken on an edge of
 * Date.now() (spin until the millisecond turns over) and carried to the
 * moment of the write with performance.now(), so it is good to a few µs;
 * offset = wall − record timestamp. Calibrating once per run removes drift
 * between the kernel's clock and CLOCK_REALTIME (NTP slewing).
 */
class KernelLog {
  constructor() {
    this.rfd = fs.openSync('/dev/kmsg', fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
    this.wfd = fs.openSync('/dev/kmsg', 'w')
    this.buf = Buffer.alloc(16384)
    this.pending = []
    this.offsetMs = null
    this.drain() // skip everything logged before us
    this.pending = []
  }

  /** Read every record not read yet into this.pending. */
  drain() {
    for (;;) {
      let n
      try {
        n = fs.readSync(this.rfd, this.buf, 0, this.buf.length, null)
      } catch (e) {
        if (e.code === 'EAGAIN') break
        if (e.code === 'EPIPE') continue // records overwritten before we read them: skip ahead
        throw e
      }
      if (n <= 0) break
      const text = this.buf.toString('utf8', 0, n)
      const semi = text.indexOf(';')
      if (semi < 0) continue
      const [, seq, ts] = text.slice(0, semi).split(',')
      const nl = text.indexOf('\n', semi)
      this.pending.push({ seq: Number(seq), tsUs: Number(ts), msg: text.slice(semi + 1, nl < 0 ? undefined : nl) })
    }
    return this.pending
  }

  calibrate() {
    const nonce = `oomguard-bench: clock ${process.pid}-${Math.random().toString(36).slice(2, 10)}`
    const d0 = Date.now()
    let d1
    while ((d1 = Date.now()) === d0);
    const pEdge = performance.now()
    const p0 = performance.now()
    // The newline ends the record; without it the kernel holds it open for
    // a continuation and readers do not see it yet.
    fs.writeSync(this.wfd, `${nonce}\n`)
    const p1 = performance.now()
    const wallAtWrite = d1 + ((p0 + p1) / 2 - pEdge)
    let rec
    for (let i = 0; i < 50 && !(rec = this.drain().find((r) => r.msg.includes(nonce))); i++) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2)
    }
    if (!rec) throw new Error('kernel log: the calibration record did not come back')
    this.offsetMs = wallAtWrite - rec.tsUs / 1000
    return { offsetMs: this.offsetMs, writeUs: (p1 - p0) * 1000 }
  }

  /** Wall-clock ms of a record. */
  wallMs(rec) {
    return rec.tsUs / 1000 + this.offsetMs
  }

  /**
   * The OOM kill of the process in cgroup `name` (the last path component):
   * `{ pid, killMs, invokedMs, recordMs }` from the "oom-kill:...task_memcg=…/name,…,pid=N"
   * and "Killed process N" records, or null. Consumes the records it has seen.
   */
  findOomKill(name) {
    this.drain()
    let pid = null
    let killRec = null
    let summaryRec = null
    let invokedRec = null
    for (let i = 0; i < this.pending.length; i++) {
      const r = this.pending[i]
      const m = /^oom-kill:.*task_memcg=([^,]*),.*,pid=(\d+),/.exec(r.msg)
      if (m && m[1].endsWith(`/${name}`)) {
        pid = Number(m[2])
        summaryRec = r
        // "… invoked oom-killer" is the start of this OOM's report.
        for (let j = i - 1; j >= 0; j--) {
          if (/invoked oom-killer/.test(this.pending[j].msg)) {
            invokedRec = this.pending[j]
            break
          }
        }
        continue
      }
      if (pid !== null && killRec === null && new RegExp(`Killed process ${pid} `).test(r.msg)) killRec = r
    }
    this.pending = []
    if (pid === null) return null
    return {
      pid,
      // SIGKILL is sent between the summary record and the "Killed process"
      // record (tens of µs apart); the later one is used as the kill time.
      killMs: this.wallMs(killRec || summaryRec),
      summaryMs: this.wallMs(summaryRec),
      invokedMs: invokedRec ? this.wallMs(invokedRec) : null,
    }
  }

  close() {
    for (const fd of [this.rfd, this.wfd]) {
      try {
        fs.closeSync(fd)
      } catch {}
    }
  }
}

/** The JSON objects of a file's lines (missing file: []). Malformed lines are skipped. */
function readJsonLines(file) {
  if (!fs.existsSync(file)) return []
  const out = []
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue
    try {
      out.push(JSON.parse(line))
    } catch {}
  }
  return out
}

// ------------------------------------------------------------------ the floor

// The sampler's assumed fastest growth (src/watch/ ASSUMED_RATE): where no
// kernel wake-up can be armed it samples at the interval such a fill needs
// to reach the next threshold, from watch()'s default first one.
const ASSUMED_FILL = 2 * 1024 * MiB
const FIRST_THRESHOLD = require('../lib/core/options.js').WATCH_DEFAULTS.thresholds[0]

/** The interval, ms, of a read-only sampler at `share` of `limitBytes` below the first threshold. */
function readOnlyIntervalMs(share, limitBytes) {
  return ((FIRST_THRESHOLD - share) * limitBytes * 1000) / ASSUMED_FILL
}

/**
 * The levels of `levels` below the first threshold, with the interval a
 * read-only sampler keeps at each: what the floor (floor.c) runs at.
 */
function floorLevels(levels, limitBytes) {
  return levels.filter((l) => l < FIRST_THRESHOLD).map((share) => ({ share, intervalMs: readOnlyIntervalMs(share, limitBytes) }))
}

/**
 * benchmark/floor.c compiled with cc into `exe` (a C loop of ppoll and
 * preads, no logic: see the file). Throws where there is no C compiler.
 */
function buildFloor(exe) {
  execFileSync('cc', ['-O2', '-o', exe, path.join(__dirname, 'floor.c')], { stdio: 'pipe', timeout: 60000 })
}

// A process's CPU time (user + system, all its threads: the GC's helpers
// too), from /proc, in clock ticks of TICK_MS.
const TICK_MS = 1000 / (Number(require('node:child_process').spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100)
function cpuTicks(pid) {
  const f = require('node:fs').readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return Number(f[11]) + Number(f[12])
}

/** Whether `taskset` can pin processes here (a server on one CPU, its load generator on the other). */
const CAN_PIN = require('node:child_process').spawnSync('taskset', ['-c', '0', 'true']).status === 0

/**
 * A server in its own process (node ARGS, on CPU 0 with `pin`), resolved
 * with { child, port } once it prints `READY <port>`.
 */
function serveChild(args, { pin = false, env = process.env } = {}) {
  const { spawn } = require('node:child_process')
  return new Promise((resolve, reject) => {
    const child = pin
      ? spawn('taskset', ['-c', '0', process.execPath, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env })
      : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env })
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
      const m = /READY (\d+)/.exec(out)
      if (m) resolve({ child, port: Number(m[1]) })
    })
    child.on('exit', (code) => reject(new Error(`${args.join(' ')}: the server exited ${code}`)))
  })
}

module.exports = {
  CAN_PIN,
  serveChild,
  TICK_MS,
  cpuTicks,
  ROOT,
  floorLevels,
  buildFloor,
  MiB,
  parseArgs,
  quantile,
  median,
  summary,
  readJson,
  minOf,
  fmt,
  table,
  clkTck,
  machineInfo,
  versions,
  describeMachine,
  KernelLog,
  readJsonLines,
}
