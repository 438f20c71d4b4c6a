'use strict'
// The doctor's report (lib/integrations/doctor.js buildReport()) as text, in colour or
// not. Pure functions: the report and the options in, a string out.

const { renderReport, renderOptions, colorEnv, ownCopy } = require('../core/options.js')
const { bandText, isNum, bytes, pct, basisName } = require('./doctor-words.js')

const ESC = '\u001b['
const sgr = (open, close) => (s) => `${ESC}${open}m${s}${ESC}${close}m`
const STYLES = {
  bold: sgr(1, 22),
  dim: sgr(2, 22),
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
  blue: sgr(34, 39),
  magenta: sgr(35, 39),
  cyan: sgr(36, 39),
  gray: sgr(90, 39),
}
const PLAIN = Object.fromEntries(Object.keys(STYLES).map((k) => [k, (s) => s]))

const SEGMENT_LOOK = {
  anon: { char: 'a', style: 'magenta' },
  file: { char: 'f', style: 'blue' },
  shmem: { char: 's', style: 'cyan' },
  kernel: { char: 'k', style: 'yellow' },
  other: { char: 'o', style: 'gray' },
  used: { char: 'u', style: 'magenta' },
  free: { char: '.', style: 'green' },
}
const MARK = { pass: ['pass', 'green'], warn: ['warn', 'yellow'], fail: ['FAIL', 'red'], manual: ['hand', 'cyan'] }
const VERDICT = { pass: ['ok', 'green'], warn: ['too high', 'yellow'], fail: ['too high', 'red'], unknown: ['unknown', 'cyan'] }
const BAR_WIDTH = 60

/** Split `width` characters between the segments by their share (largest remainder). */
function barCells(segments, width) {
  const total = segments.reduce((a, s) => a + s.bytes, 0)
  if (total <= 0) return segments.map(() => 0)
  const exact = segments.map((s) => (s.bytes / total) * width)
  const cells = exact.map(Math.floor)
  let left = width - cells.reduce((a, b) => a + b, 0)
  const order = exact.map((e, i) => [e - Math.floor(e), i]).sort((a, b) => b[0] - a[0] || a[1] - b[1])
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) cells[order[k][1]]++
  return cells
}

function renderBar(b, c, color) {
  const cells = barCells(b.segments, BAR_WIDTH)
  let bar = ''
  b.segments.forEach((s, i) => {
    const look = SEGMENT_LOOK[s.key]
    if (cells[i] === 0) return
    if (color) bar += c[look.style]((s.key === 'free' ? '\u2591' : '\u2588').repeat(cells[i]))
    else bar += look.char.repeat(cells[i])
  })
  const legend = b.segments.map((s) => {
    const look = SEGMENT_LOOK[s.key]
    const key = color ? c[look.style](s.key === 'free' ? '\u2591' : '\u2588') : look.char
    return `${key} ${s.label} ${bytes(s.bytes)} (${pct(s.ratio)})`
  })
  const lines = [`  [${bar}] ${bytes(b.limitBytes)}`]
  // Three legend entries per line keeps the lines short.
  for (let i = 0; i < legend.length; i += 3) lines.push(`   ${legend.slice(i, i + 3).join('   ')}`)
  return lines
}

function wrap(text, width, indent) {
  const words = text.split(' ')
  const lines = []
  let line = ''
  for (const w of words) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line)
      line = w
    } else line = line ? `${line} ${w}` : w
  }
  if (line) lines.push(line)
  return lines.map((l) => indent + l)
}

/**
 * Render a report from `buildReport()` as text. `color: true` adds ANSI colours
 * (decide with `useColor()`); without it the text has no escape codes.
 */
function render(report, options) {
  report = ownCopy(renderReport(report), 'report')
  const { color } = renderOptions(options)
  const c = color ? STYLES : PLAIN
  const L = []
  const head = (s) => L.push('', c.bold(s))
  const row = (k, v) => L.push(`  ${k.padEnd(13)} ${v}`)

  L.push(c.bold('oomguard doctor: memory as the kernel counts it, for this container'))

  head('cgroup')
  const cg = report.cgroup
  if (cg) {
    row('version', `v${cg.version}`)
    row('path', `${cg.path} (from /proc/self/cgroup)`)
    row('files', cg.resolved ? cg.dir : `${cg.dir} (the cgroup's directory was not found; reading the mount point)`)
  } else {
    row('version', 'none: no cgroup with the memory controller is visible')
  }
  row('limit from', report.limit.origin)

  head('memory')
  const mem = report.memory
  row('limit', `${bytes(report.limit.bytes)}${isNum(report.limit.highBytes) ? `, memory.high ${bytes(report.limit.highBytes)} (throttling starts there)` : ''}`)
  row('usage', `${bytes(mem.usageBytes)}${isNum(mem.usageBytes) && isNum(report.limit.bytes) ? ` (${pct(mem.usageBytes / report.limit.bytes)})` : ''}`)
  row(
    'working set',
    `${bytes(mem.workingSetBytes)}${isNum(mem.workingSetBytes) && isNum(report.limit.bytes) ? ` (${pct(mem.workingSetBytes / report.limit.bytes)}; usage minus inactive page cache)` : ''}`,
  )
  row('headroom', isNum(mem.headroomBytes) ? `${bytes(mem.headroomBytes)} (limit minus ${basisName(mem)})` : 'n/a')
  const doc = mem.doctor
  if (doc) {
    const who = doc.processes.map((p) => `pid ${p.pid} ${p.command === null ? '?' : p.command} ${bytes(p.bytes)}`).join(', ')
    const [first, ...rest] = wrap(`${bytes(doc.bytes)} of that is this doctor's own (resident anonymous memory): ${who}`, 66, '')
    row('this doctor', first)
    L.push(...rest.map((l) => `                ${l}`))
    const of = (b) => (isNum(b) && isNum(report.limit.bytes) ? ` (${pct(b / report.limit.bytes)})` : '')
    row('without it', `usage ${bytes(doc.usageBytes)}${of(doc.usageBytes)}, working set ${bytes(doc.workingSetBytes)}${of(doc.workingSetBytes)}:`)
    L.push(...wrap('the container as it was before the doctor started, near enough; the checks below count the service without the doctor.', 66, '                '))
  }
  if (report.breakdown) {
    L.push('')
    L.push(...renderBar(report.breakdown, c, color))
  } else {
    row('breakdown', 'n/a (no memory cgroup usage to break down)')
  }

  head('V8 heap')
  const h = report.heap
  row('heap limit', `${bytes(h.heapSizeLimitBytes)}${isNum(h.ratio) ? ` (${pct(h.ratio)} of the container limit)` : ''}`)
  if (h.from === 'flag') row('from', '--heap-limit')
  else {
    const about = [h.nodeVersion && `node ${h.nodeVersion}`, h.nodeOptions && `NODE_OPTIONS=${JSON.stringify(h.nodeOptions)}`].filter(Boolean)
    row('from', `this doctor process${about.length ? ` (${about.join(', ')})` : ''}`)
    L.push(...wrap("The service's heap limit is the same only if it runs the same node with the same flags; if not, pass its limit with --heap-limit MiB.", 66, '                '))
  }
  const [vText, vStyle] = VERDICT[h.verdict]
  row('verdict', c[vStyle](c.bold(vText)))
  L.push(...wrap(h.message, 66, '                '))
  if (h.recommendation) row('use', c.bold(h.recommendation))
  if (h.nodeSizing) {
    row('default', 'node sizes its default heap from')
    L.push(...wrap(h.nodeSizing.text, 66, '                '))
  }
  if (h.advice) {
    const a = h.advice
    row('advice', `a heap limit within ${bandText} of ${bytes(a.limitBytes)}, aiming at ${bytes(a.targetBytes)}, for node ${a.nodeVersion}:`)
    const pad = '                '
    a.options.forEach((o, i) => {
      const why = o.form === 'percentage' ? ' (follows the limit across restarts and resizes)' : a.options.length > 1 ? ' (any Node version)' : ''
      L.push(`${pad}${i === 0 ? '' : 'or '}${c.bold(`NODE_OPTIONS="${o.nodeOptions}"`)}${why}`)
      L.push(`${pad}  ${o.measured ? 'measured' : 'modelled'}: heap limit ${bytes(o.heapSizeLimitBytes)} (${pct(o.ratio)} of the limit)${o.inBand ? '' : `, outside ${bandText}`}`)
    })
    const how = a.measured ? 'Measured: the same node binary started with each NODE_OPTIONS in this cgroup, reading v8.getHeapStatistics().heap_size_limit.' : a.note || 'Modelled, not measured.'
    L.push(...wrap(how, 66, pad))
  }

  head('OOM kills')
  const k = report.oomKills
  if (isNum(k.count)) row('earlier', `${k.count === 0 ? 'none' : c.red(String(k.count))} in this cgroup (oom_kill in ${k.file})`)
  else row('earlier', report.cgroup ? `unknown (${k.file} could not be read)` : 'unknown (not in a memory cgroup)')

  head('pressure')
  const p = report.pressure
  if (p) {
    const line = (l) => (l ? `${l.avg10.toFixed(2)}% / ${l.avg60.toFixed(2)}% / ${l.avg300.toFixed(2)}%` : 'n/a')
    row('some', `${line(p.some)} (avg10 / avg60 / avg300)`)
    row('full', line(p.full))
    row('scope', p.scope === 'cgroup' ? 'this cgroup (memory.pressure)' : "system-wide (/proc/pressure/memory): the host's, not this container's")
  } else {
    row('pressure', 'n/a (no PSI on this kernel)')
  }

  const sw = report.swap
  if (sw) {
    head('peak and swap')
    row(
      'peak',
      `${bytes(sw.peakBytes)}${isNum(sw.peakBytes) && isNum(report.limit.bytes) ? ` (${pct(sw.peakBytes / report.limit.bytes)} of the limit; the most charged since the cgroup was created)` : ''}`,
    )
    row(
      'swap',
      sw.swapBytes === null
        ? 'not accounted'
        : sw.hostSwapTotalBytes === 0
          ? 'none: the host has no swap space'
          : `${bytes(sw.swapBytes)} in use, ${sw.swapLimitBytes === null ? 'no swap limit of its own' : `limit ${bytes(sw.swapLimitBytes)}`}`,
    )
    L.push(...wrap(sw.message, 66, '                '))
  }

  const pr = report.processes
  if (pr) {
    head('processes')
    row('count', `${pr.count} in this cgroup (cgroup.procs)`)
    const top = pr.largest[0]
    if (top && (isNum(top.anonBytes) || isNum(top.rssBytes))) {
      row('largest', `pid ${top.pid} (${top.command === null ? '?' : top.command}), ${bytes(top.anonBytes)} anonymous, ${pct(top.share)} of the working set (${bytes(top.rssBytes)} RSS)`)
    }
    row('this process', `${bytes(pr.selfAnonBytes)} anonymous, ${pct(pr.selfShare)} of the working set (${bytes(pr.selfRssBytes)} RSS)`)
    L.push(`  ${'pid'.padStart(8)}  ${'anonymous'.padStart(10)}  ${'share'.padStart(6)}  ${'rss'.padStart(10)}  command`)
    for (const x of pr.largest) {
      L.push(`  ${String(x.pid).padStart(8)}  ${bytes(x.anonBytes).padStart(10)}  ${pct(x.share).padStart(6)}  ${bytes(x.rssBytes).padStart(10)}  ${x.command === null ? '?' : x.command}`)
    }
    if (pr.count > pr.largest.length) L.push(`  ... and ${pr.count - pr.largest.length} more`)
    L.push(
      ...wrap(
        "Shares are of resident anonymous memory (RssAnon: resident minus shared in /proc/PID/statm), which each process put in this cgroup: they add up to at most 100%. RSS also counts mapped files (node's own binary, libraries), charged to whichever cgroup read them first, and can exceed the working set; shared memory (tmpfs, /dev/shm) is the cgroup's shmem above.",
        66,
        '  ',
      ),
    )
    const over = pr.largest.filter((x) => isNum(x.share) && x.share > 1).map((x) => `pid ${x.pid}`)
    if (isNum(pr.selfShare) && pr.selfShare > 1) over.push('this process')
    if (over.length) {
      L.push(
        ...wrap(
          `Over 100% (${over.join(', ')}): part of that memory is charged to another cgroup (on v1 a process moved here keeps the charges it made before), or shared with other processes after fork(), so counted in each.`,
          66,
          '  ',
        ),
      )
    }
    const sum = pr.largest.reduce((a, x) => a + (isNum(x.share) ? x.share : 0), 0)
    if (!over.length && sum > 1) {
      L.push(...wrap(`Together ${pct(sum)}: processes share anonymous pages after fork(), counted in each of them.`, 66, '  '))
    }
  }

  head('sizing checklist')
  for (const ch of report.checks) {
    const [mark, style] = MARK[ch.status]
    L.push(`  ${c[style](`[${mark}]`)} ${c.bold(ch.title)}`)
    L.push(...wrap(ch.detail, 70, '         '))
    if (ch.howTo) L.push(...wrap(`Check by hand: ${ch.howTo}`, 70, '         '))
    if (ch.command) L.push(`           ${ch.command}`)
  }

  if (report.diagnoses.length) {
    head('findings (getMemoryMetrics().diagnoses)')
    for (const d of report.diagnoses) {
      const style = d.severity === 'error' ? 'red' : d.severity === 'warning' ? 'yellow' : 'cyan'
      L.push(`  ${c[style](d.severity)} ${d.code}`)
      L.push(...wrap(d.message, 70, '    '))
    }
  }

  const s = report.summary
  L.push('')
  L.push(`${c.bold('summary')}: ${c.green(`${s.pass} pass`)}, ${c.yellow(`${s.warn} warn`)}, ${c.red(`${s.fail} fail`)}, ${c.cyan(`${s.manual} to check by hand`)}`)
  return `${L.join('\n')}\n`
}

/**
 * Whether to colour output written to `stream`: FORCE_COLOR (set and not
 * `0`/`false`) forces it on, FORCE_COLOR=0 or a non-empty NO_COLOR turn it
 * off, otherwise only on a TTY whose TERM is not `dumb`.
 */
function useColor(stream, env) {
  env = colorEnv(env)
  const force = env.FORCE_COLOR
  if (force !== undefined) return !(force === '0' || force.toLowerCase() === 'false')
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  return !!(stream && stream.isTTY) && env.TERM !== 'dumb'
}

module.exports = { render, useColor }
