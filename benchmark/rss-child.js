'use strict'
// A fresh process for watch-cost.js: resident set size before loading
// oomguard, after require(), and after watch() has been running a while.
//
//   node rss-child.js MODE WAIT_MS [PACKAGE_DIR]
//
// MODE: oomguard | control (the same waits, nothing loaded: how much RSS
//   drifts on its own). Prints `OOMGUARD_RSS {json}`: for each step
//   { rss, anon, file } in bytes (VmRSS, RssAnon, RssFile of
//   /proc/self/status). Steps: start, before (after WAIT_MS idle),
//   afterNative (the napi-rs loader and the .node: PACKAGE_DIR/index.js),
//   afterRequire (the package), afterWatch (WAIT_MS after watch()). Also
//   `mappings`: Rss added from `before` to `afterWatch` by mapping
//   (/proc/self/smaps, read before the first wait and after
//   afterWatch, so its own allocations stay out of the other numbers): the node executable, the .node addon, anonymous
//   memory (V8 heap, malloc, thread stacks), everything else.

const fs = require('node:fs')
const path = require('node:path')

const [mode, waitArg, pkgDir] = process.argv.slice(2)
const waitMs = Number(waitArg)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
function rss() {
  const t = fs.readFileSync('/proc/self/status', 'utf8')
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(t)[1]) * 1024
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') }
}

function smaps() {
  const out = { node: 0, addon: 0, anon: 0, other: 0 }
  let kind = null
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (m) {
      const name = m[1]
      kind = name === process.execPath ? 'node' : name.endsWith('.node') ? 'addon' : name === '' || name.startsWith('[heap]') || name.startsWith('[stack') ? 'anon' : 'other'
      continue
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line)
    if (r && kind) out[kind] += Number(r[1]) * 1024
  }
  return out
}

async function main() {
  const out = { mode, start: rss() }
  const maps0 = smaps() // before the idle wait, so the garbage it makes is in the baseline
  await sleep(waitMs)
  out.before = rss()
  let oomguard = null
  if (mode === 'oomguard') require(path.join(path.resolve(pkgDir), 'index.js'))
  out.afterNative = rss()
  if (mode === 'oomguard') oomguard = require(path.resolve(pkgDir))
  out.afterRequire = rss()
  const monitor = oomguard ? oomguard.watch() : null
  await sleep(waitMs)
  out.afterWatch = rss()
  const maps1 = smaps()
  out.mappings = Object.fromEntries(Object.keys(maps0).map((k) => [k, maps1[k] - maps0[k]]))
  if (monitor) {
    const c = monitor.current
    out.samples = c.samples
    out.source = c.source
    monitor.close()
  }
  process.stdout.write(`OOMGUARD_RSS ${JSON.stringify(out)}\n`)
}

main()
