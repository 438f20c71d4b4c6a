#!/usr/bin/env node
'use strict'
// `oomguard doctor` (the default command; `report` is an alias, and
// `npm start` in the repository runs it): this container's memory as the
// kernel counts it, V8's heap limit against it, and a sizing checklist.

const fs = require('node:fs')
const v8 = require('node:v8')
const { getMemoryMetrics } = require('../lib/metrics.js')
const { diagnose, render, useColor } = require('../lib/doctor.js')

const USAGE = `usage: oomguard [doctor] [options]

  doctor             check this container's memory sizing (the default; "report" is an alias)

options:
  --json             print the report as JSON
  --heap-limit MIB   the service's V8 heap limit in MiB, when it differs from this
                     doctor's own (node -p "v8.getHeapStatistics().heap_size_limit/2**20")
  --workers N        the number of worker threads the service runs (each has its own heap)
  --root DIR         read a fixture tree that stands in for /
  --strict           exit with status 1 when a check fails
  -h, --help         print this help

Colour: on a terminal; FORCE_COLOR=1 forces it, NO_COLOR=1 turns it off.
Exit status: 0 done, 1 a check failed (with --strict), 2 bad arguments.`

class UsageError extends Error {}

function parseArgs(argv) {
  const opts = { json: false, strict: false, help: false, root: undefined, heapLimitMib: undefined, workers: undefined }
  let command = null
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i]
    let inline
    if (a.startsWith('--') && a.includes('=')) {
      inline = a.slice(a.indexOf('=') + 1)
      a = a.slice(0, a.indexOf('='))
    }
    const value = () => {
      if (inline !== undefined) return inline
      if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) throw new UsageError(`${a} needs a value`)
      return argv[++i]
    }
    const flag = () => {
      if (inline !== undefined) throw new UsageError(`${a} takes no value`)
    }
    switch (a) {
      case 'doctor':
      case 'report':
        if (command !== null) throw new UsageError(`unexpected argument: ${a}`)
        command = a
        break
      case '--json':
        flag()
        opts.json = true
        break
      case '--strict':
        flag()
        opts.strict = true
        break
      case '-h':
      case '--help':
        flag()
        opts.help = true
        break
      case '--root': {
        const dir = value()
        let st = null
        try {
          st = fs.statSync(dir)
        } catch {}
        if (!st || !st.isDirectory()) throw new UsageError(`--root ${dir}: not a directory`)
        opts.root = dir
        break
      }
      case '--heap-limit': {
        const v = value()
        const n = Number(v)
        if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--heap-limit must be a positive number of MiB, got ${JSON.stringify(v)}`)
        opts.heapLimitMib = n
        break
      }
      case '--workers': {
        const v = value()
        const n = Number(v)
        if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new UsageError(`--workers must be a whole number (0 or more), got ${JSON.stringify(v)}`)
        opts.workers = n
        break
      }
      default:
        throw new UsageError(a.startsWith('-') ? `unknown option: ${a}` : `unknown command: ${a}`)
    }
  }
  return opts
}

function main() {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2))
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`oomguard: ${err.message}\n\n${USAGE}\n`)
    process.exitCode = 2
    return
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`)
    return
  }
  const fromFlag = opts.heapLimitMib !== undefined
  const heapSizeLimit = fromFlag ? Math.round(opts.heapLimitMib * 1024 * 1024) : v8.getHeapStatistics().heap_size_limit
  // Only the heap limit is passed: the doctor's own heap use says nothing about the service.
  const metrics = getMemoryMetrics({ heapSizeLimit }, { root: opts.root })
  const report = diagnose(metrics, {
    heapLimitFrom: fromFlag ? 'flag' : 'process',
    nodeVersion: process.version,
    nodeOptions: process.env.NODE_OPTIONS || null,
    workers: opts.workers,
  })
  const out = opts.json ? `${JSON.stringify(report, null, 2)}\n` : render(report, { color: useColor(process.stdout, process.env) })
  process.stdout.write(out)
  if (opts.strict && report.summary.fail > 0) process.exitCode = 1
}

main()
