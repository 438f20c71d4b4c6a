#!/usr/bin/env node
'use strict'
// `oomguard doctor` (the default command; `report` is an alias, and
// `npm start` in the repository runs it): this container's memory as the
// kernel counts it, V8's heap limit against it, and a sizing checklist.

const fs = require('node:fs')
const v8 = require('node:v8')
const { getMemoryMetrics } = require('../lib/core/metrics.js')
const { buildReport } = require('../lib/integrations/doctor.js')
const { render, useColor } = require('../lib/integrations/doctor-render.js')

const EARLIER_MS = 500
const { CLI_FLAGS, cliFlagsUsage } = require('../lib/core/options.js')
const { heapAdvice, probeRoom } = require('../lib/integrations/heap-probe.js')
const native = require('../lib/core/native.js')
const { status: nativeAddon } = require('../lib/core/loader.js')

const MiB = 1024 * 1024

const USAGE = `usage: oomguard [doctor] [options]

  doctor             check this container's memory sizing (the default; "report" is an alias)
  explain [FILE|-]   explain a last-words record (oomguard explain --help)

options:
${cliFlagsUsage()}

Colour: on a terminal; FORCE_COLOR=1 forces it, NO_COLOR=1 turns it off.
Exit status: 0 done, 1 a check failed (with --strict) or stdout could not be
written, 2 bad arguments. A reader that stops early (| head, | true) is not an
error: the doctor stops quietly.`

class UsageError extends Error {}

const FLAGS = new Map()
for (const f of CLI_FLAGS) {
  FLAGS.set(f.flag, f)
  if (f.short) FLAGS.set(f.short, f)
}

function parseArgs(argv) {
  const opts = Object.create(null)
  for (const f of CLI_FLAGS) opts[f.key] = f.arg ? undefined : false
  let command = null
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i]
    let inline
    if (a.startsWith('--') && a.includes('=')) {
      inline = a.slice(a.indexOf('=') + 1)
      a = a.slice(0, a.indexOf('='))
    }
    if (a === 'doctor' || a === 'report') {
      if (command !== null) throw new UsageError(`unexpected argument: ${a}`)
      command = a
      continue
    }
    const f = FLAGS.get(a)
    if (f === undefined) throw new UsageError(a.startsWith('-') ? `unknown option: ${a}` : `unknown command: ${a}`)
    if (!f.arg) {
      if (inline !== undefined) throw new UsageError(`${a} takes no value`)
      opts[f.key] = true
      continue
    }
    let v = inline
    if (v === undefined) {
      if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) throw new UsageError(`${a} needs a value`)
      v = argv[++i]
    }
    const parsed = f.parse(v)
    if (parsed.error !== undefined) throw new UsageError(parsed.error)
    opts[f.key] = parsed.value
  }
  return opts
}

/**
 * Write the whole output to stdout and end quietly if it cannot be: a reader
 * that went away (EPIPE: `| head`, `| true`) is no failure and keeps the exit
 * status; any other error (ENOSPC: `> /dev/full`) is one line on stderr and
 * exit status 1. Never a stack trace.
 */
function output(text) {
  const stdout = process.stdout
  stdout.on('error', (err) => {
    if (err && err.code === 'EPIPE') return
    try {
      fs.writeSync(2, `oomguard: cannot write to stdout (${(err && (err.code || err.message)) || 'error'})\n`)
    } catch {}
    process.exitCode = 1
  })
  stdout.write(text)
}

/** A small /proc file's text, or null (the process exited, or /proc hides it). */
function readProc(file) {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return null
  }
}

/** `/proc/<pid>/status`: its name, parent, and resident anonymous bytes (RssAnon; null where the kernel shows none). */
function procStatus(pid) {
  const text = readProc(`/proc/${pid}/status`)
  if (text === null) return null
  const field = (k) => {
    const m = new RegExp(`^${k}:[ \\t]*(.*)$`, 'm').exec(text)
    return m ? m[1] : null
  }
  const kib = (k) => {
    const n = Number.parseInt(field(k) ?? '', 10)
    return Number.isFinite(n) ? n * 1024 : null
  }
  return { name: field('Name'), ppid: Number(field('PPid')), bytes: kib('RssAnon') }
}

/** npm's title for `npx X` and `npm exec X` ("npm exec X"), and npx's own before npm 7. */
const LAUNCHER = /^(npm|npx)( |$)/
const SHELL = /^(sh|bash|dash|ash)$/

/**
 * This doctor's own processes in the cgroup it reads, with their resident
 * anonymous memory (charged here while they run; the measure of the
 * process list, src/procs.rs): this process,
 * and, where npx or `npm exec` started it, the npm process and the shell
 * between (same memory cgroup, parents up to npm; pid 1 never). This
 * process's figure is the reading's own (`metrics.anonBytes`), so that the
 * report gives it one figure. The report counts the service without them.
 * null where neither the reading nor /proc/self/status has it.
 */
function ownProcesses(metrics) {
  const self = procStatus('self')
  const bytes = typeof metrics.anonBytes === 'number' ? metrics.anonBytes : self && self.bytes
  if (!self || typeof bytes !== 'number') return null
  const processes = [{ pid: process.pid, command: self.name, bytes }]
  const cgroup = readProc('/proc/self/cgroup')
  const chain = []
  for (let pid = self.ppid, hop = 0; hop < 4 && Number.isInteger(pid) && pid > 1; hop++) {
    const st = procStatus(pid)
    if (!st || st.bytes === null || st.name === null || readProc(`/proc/${pid}/cgroup`) !== cgroup) break
    chain.push({ pid, command: st.name, bytes: st.bytes })
    if (LAUNCHER.test(st.name)) {
      processes.push(...chain)
      break
    }
    if (!SHELL.test(st.name)) break
    pid = st.ppid
  }
  return { bytes: processes.reduce((a, p) => a + p.bytes, 0), processes }
}

/**
 * The heap advice for this container, measured by starting this node binary
 * with the advised flags (in this cgroup) unless the doctor reads another
 * tree (--root) or the service runs another Node version, and only while
 * the room below watch()'s first default threshold allows a probe (a fresh
 * reading before each: probeRoom()); and node's default heap limit, for the
 * explanation of where it comes from.
 */
function heapInputs(metrics, opts, heapSizeLimit) {
  const constrained = metrics.constrainedMemoryBytes
  if (!native || typeof constrained !== 'number') return {}
  const nodeVersion = opts.nodeVersion || process.version
  const container = metrics.source === 'cgroup-v1' || metrics.source === 'cgroup-v2'
  const limit = container && typeof metrics.limitBytes === 'number' ? metrics.limitBytes : null
  const model = native.heapModel(limit ?? constrained, constrained, nodeVersion)
  if (limit === null) return { defaultHeapLimitBytes: model.defaultHeapLimitMib * MiB }
  let why = null
  if (opts.root !== undefined) why = 'Modelled, not measured: with --root the doctor reads another tree, not the cgroup it runs in.'
  else if (nodeVersion !== process.version) why = `Modelled, not measured: the service runs node ${nodeVersion}, this doctor ${process.version}.`
  return {
    heapAdvice: heapAdvice({
      limitBytes: limit,
      constrainedMemoryBytes: constrained,
      model,
      nodeVersion,
      measure: why === null,
      why,
      room: () => probeRoom(getMemoryMetrics({ heapSizeLimit })),
    }),
  }
}

/**
 * The report's text with which native addon loaded, or why none did, right
 * after its title line: without it the numbers are plain reads and some
 * sections are missing, which the reader must know first.
 */
function withNativeLines(text) {
  const lines = nativeAddon.loaded
    ? [`  native addon  ${nativeAddon.target}: ${nativeAddon.file}`]
    : [
        `  native addon  NOT LOADED: ${nativeAddon.reason}`,
        '                the numbers below are plain reads of the same kernel files; no heap',
        '                measurement, stall state or process list; watch() polls on a timer',
        '                and writes no last words',
      ]
  const nl = text.indexOf('\n')
  return nl < 0 ? `${text}\n${lines.join('\n')}\n` : `${text.slice(0, nl + 1)}${lines.join('\n')}\n${text.slice(nl + 1)}`
}

function main() {
  if (process.argv[2] === 'explain') return require('../lib/integrations/explain.js').main(process.argv.slice(3))
  let opts
  try {
    opts = parseArgs(process.argv.slice(2))
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    try {
      fs.writeSync(2, `oomguard: ${err.message}\n\n${USAGE}\n`)
    } catch {}
    process.exitCode = 2
    return
  }
  if (opts.help) {
    output(`${USAGE}\n`)
    return
  }
  const fromFlag = opts.heapLimitMib !== undefined
  const heapSizeLimit = fromFlag ? Math.round(opts.heapLimitMib * 1024 * 1024) : v8.getHeapStatistics().heap_size_limit
  // Only the heap limit is passed: the doctor's own heap use says nothing about the service.
  // On the live system, two readings half a second apart: are charges
  // failing at the limit now (a stall), or not? A fixture tree does not move.
  const earlier = opts.root === undefined ? getMemoryMetrics({ heapSizeLimit }) : null
  if (earlier !== null) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, EARLIER_MS)
  const metrics = getMemoryMetrics({ heapSizeLimit }, { root: opts.root })
  // The doctor's own processes, read with the reading: the report counts
  // the service without them. Only in the cgroup it runs in.
  const own = opts.root === undefined ? ownProcesses(metrics) : null
  const report = buildReport(metrics, {
    ...heapInputs(metrics, opts, heapSizeLimit),
    own,
    heapLimitFrom: fromFlag ? 'flag' : 'process',
    nodeVersion: process.version,
    nodeOptions: (Object.hasOwn(process.env, 'NODE_OPTIONS') && process.env.NODE_OPTIONS) || null,
    workers: opts.workers,
    earlier,
  })
  // Which addon loaded is this process's, not a --root tree's: said there
  // only when none did (the numbers are then plain reads).
  const sayNative = opts.root === undefined || !nativeAddon.loaded
  const text = () => render(report, { color: useColor(process.stdout, process.env) })
  const out = opts.json ? `${JSON.stringify(sayNative ? { ...report, nativeAddon } : report, null, 2)}\n` : sayNative ? withNativeLines(text()) : text()
  if (opts.strict && report.summary.fail > 0) process.exitCode = 1
  output(out)
}

main()
