'use strict'
// `oomguard explain [FILE|-] [--json]`: a last-words record for a person.
// The record is the termination-log file, the text of
//   kubectl get pod P -o jsonpath='{.status.containerStatuses[0].lastState.terminated.message}'
// piped in, or the stderr line copied from a log (with whatever the log put
// before it). Says the verdict in words, what filled the limit, the timeline
// of levels (from every record of the same process in the input), the top
// allocation sites and the fix. Anything that is not a whole record of this
// version is one line on stderr and exit status 1; never a stack trace.

const fs = require('node:fs')
const HEAP_BAND = require('../core/heap-band.json')

/** The record version this oomguard writes (src/watch/lastwords.rs). */
const VERSION = 1
const MARK = '{"oomguard":"last-words"'
/** A log keeps this much of a line (Kubernetes' FallbackToLogsOnError tail). */
const LINE_BYTES = 2048
/** The most input read: a termination message is 4096 bytes; a log excerpt more. */
const MAX_INPUT = 4 * 1024 * 1024

const USAGE = `usage: oomguard explain [FILE|-] [--json]

  Explain a last-words record: the termination-log file (FILE), or the
  record piped in (-, the default when stdin is not a terminal): the
  termination message from kubectl, or log lines holding the record.

  --json     print the explanation as JSON
  -h, --help print this help

Exit status: 0 explained, 1 no whole record of this version in the input,
2 bad arguments.`

class ExplainError extends Error {}

const MiB = 1048576
const mib = (b) => (typeof b === 'number' && Number.isFinite(b) ? `${(b / MiB).toFixed(b >= 100 * MiB ? 0 : 1)} MiB` : '?')
const pct = (r) => (typeof r === 'number' && Number.isFinite(r) ? `${(r * 100).toFixed(1)}%` : '?')
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
const num = (o, k) => (isObj(o) && Object.hasOwn(o, k) && typeof o[k] === 'number' && Number.isFinite(o[k]) ? o[k] : null)
const str = (o, k) => (isObj(o) && Object.hasOwn(o, k) && typeof o[k] === 'string' ? o[k] : null)

const VERDICTS = {
  'v8-heap': 'the V8 heap (JavaScript objects) filled the limit',
  'outside-heap': 'memory outside the V8 heap (Buffers, ArrayBuffers, native allocations) filled the limit',
  'page-cache': 'page cache that could not be dropped (tmpfs/shmem, active files) filled the limit',
  kernel: 'kernel memory (sockets, slab) filled the limit',
  'another-process': 'another process in the container filled the limit',
  stall: 'the container was stuck at its limit (reclaiming and faulting back) without being OOM-killed',
  unknown: 'what filled the limit is not known',
}

/**
 * Every record in `text` (from each MARK to the end of its line), in
 * order. Returns `{ records, problem }`: `problem` says why the last
 * candidate is not a record (cut, garbled, another version), or null.
 */
function findRecords(text) {
  const records = []
  let problem = null
  let at = text.indexOf(MARK)
  if (at < 0) return { records, problem: 'no oomguard last-words record in the input' }
  while (at >= 0) {
    let end = text.indexOf('\n', at)
    if (end < 0) end = text.length
    const line = text.slice(at, end).replace(/[\s\u0000]+$/, '')
    const next = text.indexOf(MARK, at + MARK.length)
    let rec = null
    try {
      rec = JSON.parse(line)
    } catch {
      const bytes = Buffer.byteLength(line)
      // The whole line, with what a log put before the record: near 2048 bytes, a log's cut.
      const whole = Buffer.byteLength(text.slice(text.lastIndexOf('\n', at) + 1, end))
      problem = !line.endsWith('}')
        ? `the record is cut after ${bytes} bytes, without its end${whole >= LINE_BYTES - 100 ? ` (a log keeps ${LINE_BYTES} bytes of a line: read the termination-log file, or kubectl's terminated.message, instead)` : ''}`
        : 'the record is garbled (not valid JSON)'
    }
    if (rec !== null) {
      const v = isObj(rec) ? rec.version : undefined
      if (!isObj(rec) || rec.oomguard !== 'last-words') problem = 'the record is garbled (not an oomguard last-words object)'
      else if (v !== VERSION) problem = `the record is version ${JSON.stringify(v)}; this oomguard reads version ${VERSION} (explain it with the oomguard version that wrote it)`
      else if (typeof rec.verdict !== 'string' || typeof rec.level !== 'number' || !Array.isArray(rec.thresholds)) problem = 'the record is garbled (fields missing or of the wrong type)'
      else {
        records.push(rec)
        problem = null
      }
    }
    at = next
  }
  return { records, problem }
}

/** The explanation of the last record (with the earlier ones of its process as its timeline), as data. */
function explain(records) {
  const r = records[records.length - 1]
  const pid = num(r, 'pid')
  const same = records.filter((x) => num(x, 'pid') === pid)
  const thresholds = r.thresholds.filter((t) => typeof t === 'number')
  const verdict = r.verdict
  const cause = verdict === 'stall' ? str(r, 'cause') : null
  const v8 = isObj(r.v8) ? r.v8 : null
  const b = isObj(r.breakdown) ? r.breakdown : null
  const hp = isObj(r.heapProfile) ? r.heapProfile : null
  const sites = hp && Array.isArray(hp.sites) ? hp.sites.filter(isObj) : []
  const buffers = hp && isObj(hp.buffers) ? hp.buffers : null
  const bufferSites = buffers && Array.isArray(buffers.sites) ? buffers.sites.filter(isObj) : []
  const limit = num(r, 'limitBytes')

  const filled = []
  filled.push(
    `${num(r, 'basisBytes') === null ? 'the working set' : `${mib(num(r, 'basisBytes'))} (working set)`} of a ${mib(limit)} limit (${str(r, 'source') ?? 'no limit source'}), ${pct(num(r, 'ratio'))}`,
  )
  if (b) filled.push(`anonymous ${mib(num(b, 'anon'))}, file ${mib(num(b, 'file'))}, shmem ${mib(num(b, 'shmem'))}, kernel ${mib(num(b, 'kernel'))}, sockets ${mib(num(b, 'sock'))}`)
  if (v8)
    filled.push(
      `V8 heap ${mib(num(v8, 'heapUsedBytes'))} used of ${mib(num(v8, 'heapTotalBytes'))} (its limit ${mib(num(v8, 'heapSizeLimitBytes'))}), external ${mib(num(v8, 'externalBytes'))}, ArrayBuffers ${mib(num(v8, 'arrayBuffersBytes'))}`,
    )
  if (num(r, 'rssBytes') !== null) filled.push(`this process: RSS ${mib(num(r, 'rssBytes'))} of ${num(r, 'processCount') ?? '?'} process(es)`)

  const timeline = same.map((x) => ({
    time: str(x, 'time'),
    event: str(x, 'event'),
    level: num(x, 'level'),
    ratio: num(x, 'ratio'),
    growthBytesPerSec: num(x, 'growthBytesPerSec'),
    timeToLimitMs: num(x, 'timeToLimitMs'),
    seq: num(x, 'seq'),
  }))

  const fix = []
  const heapish = verdict === 'v8-heap' || cause === 'v8-heap'
  const outside = verdict === 'outside-heap' || cause === 'outside-heap'
  const top = sites[0]
  if (top && (heapish || (!outside && typeof top.share === 'number' && top.share >= 0.5))) {
    fix.push(
      `Look at ${top.fn} (${top.at}): it allocated ${pct(top.share)} of the sampled live heap (${mib(top.bytes)}), still live${Array.isArray(top.stack) && top.stack.length ? `, called from ${top.stack[0]}` : ''}.`,
    )
  }
  if (heapish && limit !== null) {
    const heapLimit = num(v8, 'heapSizeLimitBytes')
    const target = Math.floor((limit * HEAP_BAND.target) / MiB)
    if (heapLimit !== null && heapLimit >= limit * HEAP_BAND.high) {
      fix.push(
        `V8's heap limit (${mib(heapLimit)}) is above ${Math.round(HEAP_BAND.high * 100)}% of the container limit: the kernel kills before V8 can report heap exhaustion. Cap it: node --max-old-space-size=${target} (or raise the limit); npx oomguard doctor measures the advice in the container.`,
      )
    } else {
      fix.push(`If the heap grows by design, raise the limit; node --max-old-space-size=${target} keeps the heap at ${Math.round(HEAP_BAND.target * 100)}% of this one.`)
    }
  }
  const topBuffer = bufferSites[0]
  if (outside && topBuffer) {
    fix.push(
      `Look at ${topBuffer.fn} (${topBuffer.at}): it allocated ${pct(topBuffer.share)} of the sampled live Buffer memory (${mib(topBuffer.bytes)}), still live${Array.isArray(topBuffer.stack) && topBuffer.stack.length ? `, called from ${topBuffer.stack[0]}` : ''}.`,
    )
  }
  if (outside) {
    fix.push(
      topBuffer
        ? "Buffers are sampled where Buffer.alloc, allocUnsafe, allocUnsafeSlow, from and concat make them; a stream's or socket's chunks, new ArrayBuffer and native modules' memory are not: if the site above does not explain the figures, look there (external and arrayBuffers above)."
        : 'The V8 heap profile cannot see Buffer and ArrayBuffer backing stores or native memory; look for Buffers, streams and native modules that hold memory (external and arrayBuffers above).',
    )
    if (hp && num(hp, 'outsideHeapBytes') !== null) fix.push(`At the last profile, ${mib(num(hp, 'outsideHeapBytes'))} of the process was outside the V8 heap.`)
  }
  if (verdict === 'page-cache') fix.push('Files in tmpfs (/dev/shm, an emptyDir with medium: Memory) count against the limit: write them to disk, or raise the limit.')
  if (verdict === 'another-process')
    fix.push(
      `Another process is the largest: ${isObj(r.largestProcess) ? `pid ${num(r.largestProcess, 'pid')} (${str(r.largestProcess, 'command') ?? '?'}), RSS ${mib(num(r.largestProcess, 'rssBytes'))}` : 'see largestProcess'}.`,
    )
  if (verdict === 'kernel') fix.push('Kernel memory (sockets, slab) is charged to the container: look for connection leaks or many open sockets.')
  if (verdict === 'stall') fix.push('A stall is as bad as a kill: raise the limit, or set onStall: { action: "exit" } (OOMGUARD_ON_STALL=exit) so the process restarts instead of crawling.')
  if (fix.length === 0) fix.push('Raise the limit, or find what grows from the figures above.')

  return {
    oomguard: 'explain',
    version: VERSION,
    pid,
    time: str(r, 'time'),
    verdict,
    cause,
    verdictText: VERDICTS[verdict] ?? `verdict ${verdict}`,
    causeText: cause === null ? null : (VERDICTS[cause] ?? cause),
    reason: str(r, 'reason'),
    final: r.final === true,
    level: r.level,
    thresholds,
    filled,
    timeline,
    heapProfile:
      hp === null
        ? null
        : {
            isolate: str(hp, 'isolate'),
            covers: str(hp, 'covers'),
            takenAt: str(hp, 'takenAt'),
            sampledBytes: num(hp, 'sampledBytes'),
            heapUsedBytes: num(hp, 'heapUsedBytes'),
            outsideHeapBytes: num(hp, 'outsideHeapBytes'),
            file: str(hp, 'file'),
            sites: sites.map(siteView),
            buffers: buffers === null ? null : { sampledBytes: num(buffers, 'sampledBytes'), sites: bufferSites.map(siteView) },
          },
    fix,
  }
}

function siteView(s) {
  return {
    functionName: str(s, 'fn'),
    at: str(s, 'at'),
    bytes: num(s, 'bytes'),
    share: num(s, 'share'),
    stack: Array.isArray(s.stack) ? s.stack.filter((x) => typeof x === 'string') : [],
  }
}

/** Sites as numbered lines, each with its calling frames. */
function siteLines(out, sites) {
  sites.forEach((s, i) => {
    out.push(`  ${i + 1}. ${s.functionName ?? '?'} (${s.at ?? '?'})  ${mib(s.bytes)}, ${pct(s.share)}`)
    for (const f of s.stack) out.push(`       < ${f}`)
  })
}

/** The explanation in words. */
function render(x) {
  const out = []
  out.push(`oomguard: the last words of pid ${x.pid ?? '?'} at ${x.time ?? '?'}`)
  out.push('')
  out.push(`Verdict: ${x.verdictText}${x.causeText ? `; the cause: ${x.causeText}` : ''}.`)
  if (x.reason) out.push(`  ${x.reason}`)
  out.push('')
  out.push('What filled the limit:')
  for (const f of x.filled) out.push(`  ${f}`)
  out.push('')
  out.push(`Timeline (thresholds ${x.thresholds.map(pct).join(', ')}; level ${x.level} of ${x.thresholds.length}${x.final ? ', the highest' : ''}):`)
  for (const t of x.timeline) {
    const ttl = t.timeToLimitMs === null ? '' : `, limit in ${t.timeToLimitMs} ms at that rate`
    out.push(`  ${t.time ?? '?'}  #${t.seq ?? '?'} ${t.event ?? '?'}: level ${t.level ?? '?'}, ${pct(t.ratio)} of the limit, growing ${mib(t.growthBytesPerSec)}/s${ttl}`)
  }
  out.push('')
  const hp = x.heapProfile
  if (hp === null) out.push('Top allocation sites: none in the record (heapProfile off, or the profile was not read before the end).')
  else {
    out.push(
      `Top allocation sites (${hp.isolate ?? '?'}, ${hp.covers ?? 'v8-heap'} only: ${mib(hp.sampledBytes)} sampled live of ${mib(hp.heapUsedBytes)} heap used; ${mib(hp.outsideHeapBytes)} outside the heap, ${hp.buffers ? 'its Buffers sampled below' : 'not profiled'}; read ${hp.takenAt ?? '?'}):`,
    )
    if (hp.sites.length === 0) out.push('  none sampled yet')
    siteLines(out, hp.sites)
    if (hp.buffers) {
      out.push(`Top Buffer allocation sites (sampled apart, where Buffer.alloc/allocUnsafe/allocUnsafeSlow/from/concat made them: ${mib(hp.buffers.sampledBytes)} sampled live):`)
      if (hp.buffers.sites.length === 0) out.push('  none sampled yet')
      siteLines(out, hp.buffers.sites)
    }
    if (hp.file) out.push(`  pprof: ${hp.file} (go tool pprof -top FILE)`)
  }
  out.push('')
  out.push('Fix:')
  for (const f of x.fix) out.push(`  ${f}`)
  return `${out.join('\n')}\n`
}

function readInput(arg) {
  if (arg === '-') {
    return new Promise((resolve, reject) => {
      const chunks = []
      let size = 0
      process.stdin.on('data', (d) => {
        if (size >= MAX_INPUT) return
        chunks.push(d)
        size += d.length
        if (size >= MAX_INPUT) process.stdin.pause()
      })
      process.stdin.on('end', () => resolve(Buffer.concat(chunks).subarray(0, MAX_INPUT).toString('utf8')))
      process.stdin.on('error', (e) => reject(new ExplainError(`cannot read stdin: ${e.code || e.message}`)))
      if (size >= MAX_INPUT) resolve(Buffer.concat(chunks).toString('utf8'))
    })
  }
  let st
  try {
    st = fs.statSync(arg)
  } catch (e) {
    throw new ExplainError(`${arg}: ${e.code === 'ENOENT' ? 'no such file' : e.code || e.message}`)
  }
  // A FIFO or a device could block the open or the read: files only.
  if (!st.isFile()) throw new ExplainError(`${arg}: not a regular file`)
  let fd
  try {
    fd = fs.openSync(arg, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
    const buf = Buffer.alloc(Math.min(st.size, MAX_INPUT))
    const n = fs.readSync(fd, buf, 0, buf.length, 0)
    return Promise.resolve(buf.subarray(0, n).toString('utf8'))
  } catch (e) {
    throw new ExplainError(`${arg}: ${e.code || e.message}`)
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}

function parseArgs(argv) {
  const opts = { json: false, help: false, file: null }
  for (const a of argv) {
    if (a === '--json') opts.json = true
    else if (a === '--help' || a === '-h') opts.help = true
    else if (a === '-' || !a.startsWith('-')) {
      if (opts.file !== null) throw new ExplainError(`one input only, got ${JSON.stringify(opts.file)} and ${JSON.stringify(a)}`)
      opts.file = a
    } else throw new ExplainError(`unknown option: ${a}`)
  }
  return opts
}

function say(fd, text) {
  try {
    fs.writeSync(fd, text)
  } catch {}
}

/** The CLI: `argv` after `explain`. Sets process.exitCode; never throws. */
async function main(argv) {
  let opts
  try {
    opts = parseArgs(argv)
  } catch (err) {
    say(2, `oomguard explain: ${err.message}\n\n${USAGE}\n`)
    process.exitCode = 2
    return
  }
  if (opts.help) {
    say(1, `${USAGE}\n`)
    return
  }
  const file = opts.file ?? '-'
  if (file === '-' && process.stdin.isTTY) {
    say(2, `oomguard explain: give a record: a file, or pipe it in\n\n${USAGE}\n`)
    process.exitCode = 2
    return
  }
  try {
    const text = await readInput(file)
    const { records, problem } = findRecords(text)
    if (records.length === 0 || problem !== null) throw new ExplainError(problem ?? 'no oomguard last-words record in the input')
    const x = explain(records)
    const out = opts.json ? `${JSON.stringify(x, null, 2)}\n` : render(x)
    process.stdout.on('error', () => {})
    process.stdout.write(out)
  } catch (err) {
    const msg = err instanceof ExplainError ? err.message : `cannot explain: ${err && err.message ? err.message : String(err)}`
    say(2, `oomguard explain: ${msg}\n`)
    process.exitCode = 1
  }
}

module.exports = { main, findRecords, explain, render, VERSION }
