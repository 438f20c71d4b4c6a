'use strict'
// Run by platforms.test.js under a platform's own node (arm64 under
// qemu-user, musl under musl's loader), inside a memory-limited child cgroup:
//
//   node platform-probe.js PACKAGE_DIR CGROUP_DIR LAST_WORDS_FILE
//
// 1. getMemoryMetrics(), bracketed by reads of the cgroup's own files;
// 2. watch() with one threshold 48 MiB above the working set now and
//    last words to LAST_WORDS_FILE; grows filled Buffers 4 MiB at a time
//    until the threshold event (or 60 s);
// 3. which .node files this process mapped (/proc/self/maps: qemu-user
//    shows the guest's), node's version, arch and libc.
// Prints one line: PREFIX + JSON.

const fs = require('node:fs')
const path = require('node:path')

const PREFIX = 'OOMGUARD_PLATFORM '
const MiB = 1024 * 1024
const [pkgDir, cgDir, lastWordsFile] = process.argv.slice(2)
const read = (f) => fs.readFileSync(path.join(cgDir, f), 'utf8').trim()

const out = { version: process.version, arch: process.arch, glibc: process.report.getReport().header.glibcVersionRuntime || null }
const oomguard = require(pkgDir)

// 0. The heap profile's V8 route in this platform's node: V8's sampler
//    started through node's exported V8 API, a named allocation, one read.
function platformHoard() {
  const a = []
  for (let i = 0; i < 100000; i++) a.push({ i })
  return a
}
{
  const native = require(path.join(pkgDir, 'lib', 'core', 'native.js'))
  const v = process.versions.v8
  const hp = { unavailable: native.v8HeapUnavailable(v), top: null, pauseMs: null }
  if (hp.unavailable === null) {
    native.v8HeapStart(v, 65536, 64)
    globalThis.platformKeep = platformHoard()
    const t0 = process.hrtime.bigint()
    const profile = native.v8HeapRead(v)
    hp.pauseMs = Number(process.hrtime.bigint() - t0) / 1e6
    hp.top = require(path.join(pkgDir, 'lib', 'core', 'heap-profile.js')).topSites(profile, 1, 0).sites[0].functionName
    native.v8HeapStop(v)
    globalThis.platformKeep = null
  }
  out.heapProfile = hp
}

const usageBefore = Number(read('memory.usage_in_bytes'))
const metrics = oomguard.getMemoryMetrics()
const usageAfter = Number(read('memory.usage_in_bytes'))
out.metrics = metrics
out.kernel = { usageBefore, usageAfter, limit: Number(read('memory.limit_in_bytes')), procCgroup: fs.readFileSync('/proc/self/cgroup', 'utf8') }

const threshold = Math.ceil(((metrics.workingSetBytes + 48 * MiB) / metrics.limitBytes) * 1000) / 1000
out.threshold = threshold
const keep = []
const lastWords = () => (fs.existsSync(lastWordsFile) ? fs.readFileSync(lastWordsFile, 'utf8') : '')
const finish = async (event) => {
  out.event = event
  out.grownBytes = keep.length * 4 * MiB
  // The sampler thread writes the record at the crossing; give it 2 s.
  for (const until = Date.now() + 2000; event && !lastWords().endsWith('\n') && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20))
  out.lastWords = lastWords() || null
  out.loaded = [
    ...new Set(
      fs
        .readFileSync('/proc/self/maps', 'utf8')
        .split('\n')
        .map((l) => l.split(/\s+/).slice(5).join(' '))
        .filter((f) => f.endsWith('.node')),
    ),
  ]
  monitor.close()
  process.stdout.write(`${PREFIX}${JSON.stringify(out)}\n`)
}
const monitor = oomguard.watch({ thresholds: [threshold], lastWords: { path: lastWordsFile, stderr: false } })
monitor.on('error', (e) => (out.error = e.message))
let done = false
monitor.on('threshold', (e) => {
  if (done) return
  done = true
  finish(e)
})
const end = Date.now() + 60_000
const grow = () => {
  if (done) return
  if (Date.now() > end) {
    done = true
    return finish(null)
  }
  keep.push(Buffer.alloc(4 * MiB, 1))
  setTimeout(grow, 10)
}
grow()
