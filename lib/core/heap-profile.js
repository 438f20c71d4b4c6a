'use strict'
// Where the memory went: V8's sampling heap profiler in this thread's
// isolate, read into the top allocation sites of the memory still live.
// lib/core/watch.js starts it (at the first threshold by default, or at once) and
// asks for sites at each level, at a stall, and at a bounded rate while at or
// above the first threshold. The sites go on the `threshold` and `stall`
// events and, pre-encoded and bounded, to the native side, which appends them
// to the monitor's flight records where they fit (src/watch/lastwords.rs,
// `with_appendix`). At each level and stall the whole profile can also be
// written as gzipped pprof.
//
// Two routes to the same sampler, the profile in the same shape:
// - 'v8': V8's own API, which node exports, called from the addon
//   (src/napi/v8heap.rs), sampling started without kSamplingForceGC, so a
//   read is a walk of the sampled tree (about a millisecond), whatever the
//   heap's size. Used where the addon loaded and the running V8's major is one
//   whose layout was checked (V8 11-13: Node 20, 22, 24).
// - 'inspector': node:inspector's HeapProfiler.startSampling and
//   getSamplingProfile, everywhere else (or with heapProfile.route
//   'inspector', OOMGUARD_HEAP_PROFILE_ROUTE=inspector). The inspector starts sampling
//   with kSamplingForceGC, so each read first runs a full garbage collection
//   and the pause grows with the live heap (about 0.9 ms per MiB).
// Reading stops the JavaScript thread either way. Hence the bounds: no read
// more often than every MIN_GAP_MS nor than PAUSE_DUTY of the time, and none
// when the limit is nearer (at the current growth) than the read's expected
// pause, which each route estimates from its own reads.

const fs = require('node:fs')
const nodePath = require('node:path')
const native = require('./native.js')
const bufferSites = require('./buffer-sites.js')
const { usageNow } = require('./usage.js')

/** This isolate's name in records and pprof labels. */
// This isolate's name ('main', 'worker <threadId>'): node:worker_threads
// loads on first use, not at require (start-up time).
let isolateName = null
function isolate() {
  if (isolateName === null) {
    const { isMainThread, threadId } = require('node:worker_threads')
    isolateName = isMainThread ? 'main' : `worker ${threadId}`
  }
  return isolateName
}

/** Reads no closer together than this, ms... */
const MIN_GAP_MS = 2000
/** ...and the first read after sampling starts waits this long (a fast leak may kill within two seconds of the first threshold). */
const START_GAP_MS = 500
/** ...and pauses at most this share of the time (a 500 ms read: every 2.5 s at most). */
const PAUSE_DUTY = 0.2
/** The inspector's expected pause per MiB of used heap before the first read measured one (ms). */
const PRIOR_MS_PER_MIB = 3
/** The V8 route's expected pause before the first read measured one (ms): a tree walk, not a GC. */
const PRIOR_V8_MS = 20
/** The V8 route's stack depth per sample (@datadog/pprof's; the inspector's is 128). */
const STACK_DEPTH = 64
/** Sites in an event; the record keeps fewer (see candidates()). */
const EVENT_SITES = 10
/** Calling frames kept per site in an event. */
const EVENT_CALLERS = 8
const MiB = 1048576

// The record's candidates, longest first: [heap sites, Buffer sites, callers
// per site, byte cap of a frame]. Each is under 1400 bytes or left out; the
// native side appends the first that fits the record's line (2048 bytes),
// which a long cgroup path and a stall's member leave short: hence the small
// shapes, down to one site and its place alone, and none. (The native side
// takes at most MAX_APPENDIX_CANDIDATES of them: src/watch/lastwords/appendix.rs.)
const RECORD_SHAPES = [
  [5, 3, 3, 100],
  [3, 2, 2, 80],
  [1, 1, 1, 100],
  [1, 1, 0, 60],
  [1, 0, 0, 60],
  [0, 0, 0, 0],
]

// One profiler per thread, shared by this thread's monitors (kept on the
// global object, as lib/core/watch.js keeps its monitors).
const kState = Symbol.for('oomguard.heapProfile')
const state =
  globalThis[kState] ||
  (globalThis[kState] = {
    session: null,
    route: null, // 'v8' or 'inspector', while sampling
    routeNote: null, // why not 'v8', when the inspector is used
    sampling: false,
    startedAtMs: null,
    intervalBytes: null,
    // id -> { config, monitor }
    monitors: new Map(),
    msPerMiB: null, // the inspector route's expected pause per MiB
    pauseMs: null, // the V8 route's expected pause
    lastReadAt: 0,
    lastPauseMs: 0,
    last: null, // the latest summary (see take())
    lastProfile: null, // the latest raw profile, for a level's file between reads
    file: null, // the latest pprof file
    fileSeq: 0,
    writing: false,
    peer: false, // another profiler runs V8's sampler: read it, never stop it
  })

function inspector() {
  try {
    return require('node:inspector')
  } catch {
    return null
  }
}

/** Why the V8 route is not used in this process, or null. */
function v8RouteUnavailable(route) {
  if (route === 'inspector') return "heapProfile.route is 'inspector'"
  if (native === null || typeof native.v8HeapUnavailable !== 'function') return 'no native addon'
  try {
    return native.v8HeapUnavailable(process.versions.v8)
  } catch (err) {
    return err && err.message ? err.message : String(err)
  }
}

/**
 * Start sampling in this isolate (idempotent): V8's API where it can, else
 * the inspector; and Buffers' allocation sites (lib/core/buffer-sites.js)
 * unless `buffers` is false. Returns why not, or null.
 */
function startSampling({ intervalBytes, buffers, route }) {
  if (state.sampling) return null
  const why = startV8Sampler(intervalBytes, route)
  if (why === null && buffers !== false) bufferSites.start(intervalBytes)
  return why
}

function startV8Sampler(intervalBytes, route) {
  let why = v8RouteUnavailable(route)
  if (why === null) {
    try {
      // V8 has one sampling heap profiler per isolate: 'peer' when another
      // profiler runs it (@datadog/pprof's, dd-trace's), read but never stopped here.
      const started = native.v8HeapStart(process.versions.v8, intervalBytes, STACK_DEPTH)
      return started === 'started' || started === 'peer' ? begin('v8', started === 'peer', intervalBytes, null) : `V8 route: ${started}`
    } catch (err) {
      why = err && err.message ? err.message : String(err)
    }
  }
  return startInspector(intervalBytes, why)
}

function begin(route, peer, intervalBytes, note) {
  state.route = route
  state.routeNote = note
  state.peer = peer
  state.sampling = true
  state.startedAtMs = Date.now()
  state.intervalBytes = intervalBytes
  return null
}

function startInspector(intervalBytes, note) {
  const insp = inspector()
  if (insp === null || typeof insp.Session !== 'function') return 'node:inspector is not available in this build of node'
  let error = null
  let peer = false
  try {
    if (state.session === null) {
      const s = new insp.Session()
      s.connect()
      state.session = s
    }
    // Another profiler may run V8's sampler already: then it is read, never
    // started or stopped here (a session that started it stops it when it
    // disconnects, which would end the other's profile). Asking answers at
    // once when none runs.
    state.session.post('HeapProfiler.getSamplingProfile', (err) => {
      if (!err) peer = true
    })
    if (!peer) {
      state.session.post('HeapProfiler.startSampling', { samplingInterval: intervalBytes }, (err) => {
        if (err) error = err.message || String(err)
      })
    }
  } catch (err) {
    error = err && err.message ? err.message : String(err)
  }
  if (error !== null) return error
  return begin('inspector', peer, intervalBytes, note)
}

function stopSampling() {
  if (!state.sampling) return
  state.sampling = false
  bufferSites.stop()
  if (state.route === 'v8') {
    // Stopping builds no profile (no GC); another profiler's sampler is left running.
    if (!state.peer) {
      try {
        native.v8HeapStop(process.versions.v8)
      } catch {}
    }
  } else {
    // Disconnecting disables the session's HeapProfiler, which stops the
    // sampling this session started (not another profiler's) without building
    // a profile (HeapProfiler.stopSampling would: a full GC, 284 ms at a 200
    // MiB heap, measured, on every clean exit).
    try {
      state.session.disconnect()
    } catch {}
    state.session = null
  }
  state.route = null
  state.last = null
  state.lastProfile = null
  state.file = null
}

/** The raw profile and how long the read stopped this thread, ms; null on failure. */
function readProfile() {
  let out = null
  const t0 = process.hrtime.bigint()
  try {
    if (state.route === 'v8') out = native.v8HeapRead(process.versions.v8)
    else {
      state.session.post('HeapProfiler.getSamplingProfile', (err, res) => {
        if (!err && res && res.profile) out = res.profile
      })
    }
  } catch {}
  const pauseMs = Number(process.hrtime.bigint() - t0) / 1e6
  return out === null ? null : { profile: out, pauseMs }
}

// ------------------------------------------------------------------ sites

const frameKey = (cf) => `${cf.functionName}\u0000${cf.url}\u0000${cf.lineNumber}\u0000${cf.columnNumber}`

/** A script's URL as a short path: file:// stripped, relative to the working directory when under it. */
function shortFile(url) {
  if (typeof url !== 'string' || url === '') return '(native)'
  let f = url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url
  const cwd = process.cwd()
  if (f.startsWith(`${cwd}/`)) f = f.slice(cwd.length + 1)
  return f
}

function frame(cf) {
  return {
    functionName: cf.functionName || '(anonymous)',
    file: shortFile(cf.url),
    line: cf.lineNumber >= 0 ? cf.lineNumber + 1 : null,
    column: cf.columnNumber >= 0 ? cf.columnNumber + 1 : null,
  }
}

const frameText = (f) => `${f.functionName} (${f.file}${f.line === null ? '' : `:${f.line}`}${f.column === null ? '' : `:${f.column}`})`

/**
 * The top allocation sites of a sampling profile: the live sampled bytes
 * grouped by the allocating function (the frame that allocated, with its
 * file, line and column), heaviest first, each with the calling frames of
 * its heaviest stack. `sampledBytes` is the whole sampled live heap.
 */
function topSites(profile, n = EVENT_SITES, callers = EVENT_CALLERS) {
  const parent = new Map()
  const bySite = new Map()
  let total = 0
  const stack = [profile.head]
  while (stack.length > 0) {
    const node = stack.pop()
    const children = Array.isArray(node.children) ? node.children : []
    for (const c of children) {
      parent.set(c, node)
      stack.push(c)
    }
    const size = node.selfSize
    if (!(size > 0)) continue
    total += size
    const key = frameKey(node.callFrame)
    let site = bySite.get(key)
    if (site === undefined) bySite.set(key, (site = { bytes: 0, node, nodeBytes: 0 }))
    site.bytes += size
    if (size > site.nodeBytes) {
      site.node = node
      site.nodeBytes = size
    }
  }
  const sites = [...bySite.values()].sort((a, b) => b.bytes - a.bytes).slice(0, n)
  return {
    sampledBytes: total,
    sites: sites.map((s) => {
      const stackFrames = []
      for (let p = parent.get(s.node); p !== undefined && stackFrames.length < callers; p = parent.get(p)) {
        // The head is no frame: V8's '(root)', or the Buffers' tree's own.
        if (p === profile.head || p.callFrame.functionName === '(root)') break
        stackFrames.push(frameText(frame(p.callFrame)))
      }
      return { ...frame(s.node.callFrame), bytes: Math.round(s.bytes), share: total > 0 ? round3(s.bytes / total) : 0, stack: stackFrames }
    }),
  }
}

const round3 = (x) => Math.round(x * 1000) / 1000

// ------------------------------------------------------------------ pprof

/**
 * The profile as a gzipped pprof: sample types inuse_objects (count) and
 * inuse_space (bytes), one sample per allocating stack, labelled with the
 * isolate, the verdict and the event. inuse_space is V8's estimate of the
 * live bytes (each sample scaled up for the sampling); inuse_objects is the
 * number of live samples, not an estimate of objects: the inspector gives
 * each sample's scaled bytes (size × count) but not the object's size, so
 * the count cannot be recovered (a small object's sample stands for about
 * `intervalBytes` of objects like it).
 */
function encodePprof(profile, { intervalBytes, labels, timeMs }) {
  const { Profile, StringTable, ValueType, Sample, Location, Line, Function: Fn, Label } = require('pprof-format')
  const st = new StringTable()
  const fns = []
  const locs = []
  const locOf = new Map()
  const location = (cf) => {
    const key = frameKey(cf)
    let id = locOf.get(key)
    if (id !== undefined) return id
    id = locs.length + 1
    const f = frame(cf)
    fns.push(new Fn({ id, name: st.dedup(f.functionName), systemName: st.dedup(f.functionName), filename: st.dedup(f.file), startLine: f.line ?? 0 }))
    locs.push(new Location({ id, line: [new Line({ functionId: id, line: f.line ?? 0, column: f.column ?? 0 })] }))
    locOf.set(key, id)
    return id
  }
  const counts = new Map()
  for (const s of Array.isArray(profile.samples) ? profile.samples : []) {
    counts.set(s.nodeId, (counts.get(s.nodeId) || 0) + 1)
  }
  const label = []
  for (const [k, v] of Object.entries(labels)) if (typeof v === 'string') label.push(new Label({ key: st.dedup(k), str: st.dedup(v) }))
  const samples = []
  const stack = [[profile.head, []]]
  while (stack.length > 0) {
    const [node, above] = stack.pop()
    const here = node.callFrame.functionName === '(root)' ? above : [location(node.callFrame), ...above]
    for (const c of Array.isArray(node.children) ? node.children : []) stack.push([c, here])
    if (node.selfSize > 0 && here.length > 0) {
      // A Buffers' tree node counts its own live samples (it has no entry in V8's samples).
      const n = typeof node.count === 'number' ? node.count : counts.get(node.id) || 0
      samples.push(new Sample({ locationId: here, value: [Math.round(n), Math.round(node.selfSize)], label }))
    }
  }
  const p = new Profile({
    sampleType: [new ValueType({ type: st.dedup('inuse_objects'), unit: st.dedup('count') }), new ValueType({ type: st.dedup('inuse_space'), unit: st.dedup('bytes') })],
    sample: samples,
    location: locs,
    function: fns,
    stringTable: st,
    timeNanos: BigInt(Math.round(timeMs)) * 1000000n,
    periodType: new ValueType({ type: st.dedup('space'), unit: st.dedup('bytes') }),
    period: intervalBytes,
  })
  return require('node:zlib').gzipSync(p.encode())
}

const FILE_RE = /^oomguard-heap-.*\.pb\.gz$/
const TMP_RE = /^\.oomguard-heap-.*\.tmp$/

/** Keep the directory within `maxFiles` and `maxBytes` of our files, oldest first out; stale temp files go too. */
function prune(dir, maxFiles, maxBytes) {
  let names
  try {
    names = fs.readdirSync(dir)
  } catch {
    return
  }
  const files = []
  for (const name of names) {
    const full = nodePath.join(dir, name)
    if (TMP_RE.test(name) && !name.includes(`-${process.pid}-`)) {
      try {
        fs.unlinkSync(full)
      } catch {}
      continue
    }
    if (!FILE_RE.test(name)) continue
    try {
      const st = fs.lstatSync(full)
      if (st.isFile()) files.push({ full, size: st.size, mtime: st.mtimeMs, name })
    } catch {}
  }
  files.sort((a, b) => a.mtime - b.mtime || (a.name < b.name ? -1 : 1))
  let bytes = files.reduce((s, f) => s + f.size, 0)
  while (files.length > 0 && (files.length > maxFiles || bytes > maxBytes)) {
    const f = files.shift()
    bytes -= f.size
    try {
      fs.unlinkSync(f.full)
    } catch {}
  }
}

/**
 * Write the pprof file: a temporary name, then a rename, so a kill in the
 * middle never leaves a partial file under the final name. Returns its path,
 * or throws.
 */
function writePprof(cfg, gz, event, timeMs) {
  const stamp = new Date(timeMs).toISOString().replace(/[:.]/g, '-')
  const who = isolate().replace(/\s+/g, '')
  state.fileSeq += 1
  const base = `oomguard-heap-${process.pid}-${who}-${stamp}-${state.fileSeq}-${event}.pb.gz`
  const tmp = nodePath.join(cfg.dir, `.oomguard-heap-${process.pid}-${who}-${state.fileSeq}.tmp`)
  const final = nodePath.join(cfg.dir, base)
  fs.writeFileSync(tmp, gz, { flag: 'wx', mode: 0o644 })
  try {
    fs.renameSync(tmp, final)
  } catch (err) {
    try {
      fs.unlinkSync(tmp)
    } catch {}
    throw err
  }
  prune(cfg.dir, cfg.maxFiles, cfg.maxBytes)
  return final
}

// ------------------------------------------------------------------ the record's part

/** `s` cut to at most `max` UTF-16 units, the tail kept for paths (the file name matters most). */
function cutTail(s, max) {
  return s.length <= max ? s : `…${s.slice(s.length - max + 1)}`
}
function cutHead(s, max) {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`
}

/** A site as the record keeps it: short keys, cut names. */
function recordSite(s, nCallers, cap) {
  return {
    fn: cutHead(s.functionName, 60),
    at: cutTail(`${s.file}${s.line === null ? '' : `:${s.line}`}${s.column === null ? '' : `:${s.column}`}`, cap - 20),
    bytes: s.bytes,
    share: s.share,
    stack: s.stack.slice(0, nCallers).map((f) => cutTail(f, cap)),
  }
}

/**
 * The record's `heapProfile` member in each shape of RECORD_SHAPES,
 * longest first: the native side appends the first that fits under the
 * line's 2048 bytes.
 */
function candidates(summary) {
  const out = []
  for (const [nSites, nBuffers, nCallers, cap] of RECORD_SHAPES) {
    const v = {
      isolate: summary.isolate,
      route: summary.route,
      covers: 'v8-heap',
      takenAt: summary.takenAt,
      sinceMs: summary.sinceMs,
      intervalBytes: summary.intervalBytes,
      pauseMs: summary.pauseMs,
      sampledBytes: summary.sampledBytes,
      heapUsedBytes: summary.heapUsedBytes,
      outsideHeapBytes: summary.outsideHeapBytes,
      file: summary.file === null ? null : cutTail(summary.file, 200),
      sites: summary.sites.slice(0, nSites).map((s) => recordSite(s, nCallers, cap)),
    }
    // The Buffers' sites (sampled apart; the verdict outside the heap needs them), where there are any.
    if (summary.buffers && summary.buffers.sites.length > 0 && nBuffers > 0) {
      v.buffers = { sampledBytes: summary.buffers.sampledBytes, sites: summary.buffers.sites.slice(0, nBuffers).map((s) => recordSite(s, nCallers, cap)) }
    }
    const text = `"heapProfile":${JSON.stringify(v)}`
    if (Buffer.byteLength(text) < 1400) out.push(text)
  }
  return out
}

// ------------------------------------------------------------------ reading, bounded

/** The pause the next read is expected to take, ms, for the heap in use now. */
function expectedPauseMs(heapUsedBytes) {
  // The V8 route walks the sampled tree (its size follows the sampled stacks, not the heap).
  if (state.route === 'v8') return state.pauseMs ?? PRIOR_V8_MS
  return (heapUsedBytes / MiB) * (state.msPerMiB ?? PRIOR_MS_PER_MIB)
}

/** The expectation follows the worst recent read (a pause is what the guard must not underestimate). */
function learnPause(pauseMs, heapUsedBytes) {
  const worst = (prior, x) => (prior === null ? x : Math.max(x, 0.7 * prior + 0.3 * x))
  if (state.route === 'v8') state.pauseMs = worst(state.pauseMs, pauseMs)
  else state.msPerMiB = worst(state.msPerMiB, pauseMs / Math.max(1, heapUsedBytes / MiB))
}

/** The live Buffer samples as a tree whose node ids follow the profile's (for the pprof file). */
function bufferTree(profile) {
  let maxId = 0
  const stack = [profile.head]
  while (stack.length > 0) {
    const n = stack.pop()
    if (n.id > maxId) maxId = n.id
    if (Array.isArray(n.children)) for (const c of n.children) stack.push(c)
  }
  return bufferSites.tree(maxId + 1)
}

/**
 * Take sites now, if the bounds allow: `force` (a level or a stall) still
 * keeps the rate bound, but takes them where a refresh would wait; never
 * when the limit is nearer than the read's expected pause. Returns the
 * summary (fresh, or the last one with its age), with `skipped` saying why
 * a read was not made.
 */
function take({ timeToLimitMs, event, verdict, cfg }) {
  if (!state.sampling) return null
  const now = Date.now()
  // Never throws (no descriptor left: the heap from node:v8, the RSS unknown).
  const u = usageNow(true)
  const gap = Math.max(MIN_GAP_MS, state.lastPauseMs / PAUSE_DUTY)
  let skipped = null
  // A refresh also waits a while after the start (little is sampled before); a level or a stall does not.
  if (now - state.lastReadAt < gap || (event === 'refresh' && now - state.startedAtMs < START_GAP_MS)) skipped = 'rate'
  const expected = expectedPauseMs(u.heapUsed)
  if (skipped === null && typeof timeToLimitMs === 'number' && timeToLimitMs < expected) skipped = 'limit-nearer-than-pause'
  if (skipped !== null) {
    if (state.last === null) return { skipped }
    // A level or a stall between reads: its file is the last read's profile.
    const fileError = event !== 'refresh' ? writeFile(cfg, state.lastProfile, event, verdict, state.last.takenAtMs) : null
    return { ...state.last, ageMs: now - state.last.takenAtMs, skipped, fileError }
  }
  const read = readProfile()
  state.lastReadAt = Date.now()
  if (read === null) return state.last === null ? { skipped: 'read-failed' } : { ...state.last, ageMs: now - state.last.takenAtMs, skipped: 'read-failed' }
  state.lastPauseMs = read.pauseMs
  learnPause(read.pauseMs, u.heapUsed)
  const { sampledBytes, sites } = topSites(read.profile)
  const buffers = bufferSites.status().on ? bufferTree(read.profile) : null
  const after = usageNow(true)
  state.last = {
    isolate: isolate(),
    route: state.route,
    takenAtMs: now,
    takenAt: new Date(now).toISOString(),
    sinceMs: now - state.startedAtMs,
    intervalBytes: state.intervalBytes,
    pauseMs: Math.round(read.pauseMs),
    sampledBytes: Math.round(sampledBytes),
    heapUsedBytes: after.heapUsed,
    // What the profile cannot see: the process's memory outside the V8 heap
    // (Buffer and ArrayBuffer backing stores, native allocations, code).
    outsideHeapBytes: Number.isFinite(after.rss) ? Math.max(0, after.rss - after.heapUsed) : null,
    file: state.file,
    sites,
    // Where the live Buffers were allocated (sampled apart: V8's sampler sees only their wrappers).
    buffers: buffers === null ? null : { sampledBytes: Math.round(buffers.bytes), sites: topSites({ head: buffers.root }).sites },
  }
  // The file's profile: the Buffers' tree beside V8's, under its own root frame.
  state.lastProfile = buffers === null ? read.profile : { ...read.profile, head: { ...read.profile.head, children: [...(read.profile.head.children || []), buffers.root] } }
  // The records get the sites at once.
  publish()
  const fileError = event !== 'refresh' ? writeFile(cfg, state.lastProfile, event, verdict, now) : null
  return { ...state.last, ageMs: 0, skipped: null, fileError }
}

/**
 * A level's or a stall's pprof file, when a directory is set: labelled with
 * the verdict (the event's, else the monitor's last record's); the records
 * then name it. Returns why it failed, or null.
 */
function writeFile(cfg, profile, event, verdict, timeMs) {
  if (cfg.dir === undefined || profile === null) return null
  try {
    const recorded = publish()
    const gz = encodePprof(profile, { intervalBytes: state.intervalBytes, labels: { isolate: isolate(), verdict: verdict ?? recorded ?? undefined, event }, timeMs })
    state.file = state.last.file = writePprof(cfg, gz, event, Date.now())
    publish()
    return null
  } catch (err) {
    return err && err.message ? err.message : String(err)
  }
}

/** Hand the latest sites to every monitor of this thread; returns the last record's verdict. */
function publish() {
  if (state.last === null || native === null || typeof native.watchAppendix !== 'function') return null
  const list = candidates(state.last)
  let verdict = null
  for (const id of state.monitors.keys()) {
    try {
      verdict = native.watchAppendix(id, list) ?? verdict
    } catch {}
  }
  return verdict
}

// ------------------------------------------------------------------ what lib/core/watch.js calls

/** A monitor started with `cfg` (its heapProfile settings). */
function attach(id, cfg) {
  if (cfg === undefined || cfg === null || cfg.start === 'off') return
  state.monitors.set(id, cfg)
  // Registered now, so that the native side keeps this monitor's verdicts from its first record.
  if (native !== null && typeof native.watchAppendix === 'function') {
    try {
      native.watchAppendix(id, state.last === null ? [] : candidates(state.last))
    } catch {}
  }
  if (cfg.start === 'start') startSampling(cfg)
}

/** A monitor closed (the native side forgets its appendix); the last monitor stops the sampling. */
function detach(id) {
  if (!state.monitors.delete(id)) return
  if (state.monitors.size === 0) stopSampling()
}

/**
 * A level or a stall of monitor `id` (kind 'threshold' or 'stall'): start
 * sampling from the first threshold, take sites within the bounds, hand them
 * to the records, and return what the event carries (null when off).
 */
function onEvent(id, kind, e) {
  const cfg = state.monitors.get(id)
  if (cfg === undefined) return null
  if (!state.sampling && e.level > 0) {
    const why = startSampling(cfg)
    // Nothing is sampled yet: the refreshes take the first sites.
    return why === null ? { skipped: 'just-started', error: null, sites: [] } : { skipped: 'unavailable', error: why, sites: [] }
  }
  if (!state.sampling) return null
  const event = kind === 'stall' ? 'stall' : `level${e.level}`
  const verdict = kind === 'stall' && e.stall ? `stall:${e.stall.cause}` : null
  const out = take({ timeToLimitMs: e.timeToLimitMs ?? null, event, verdict, cfg })
  return out === null ? null : eventView(out)
}

/** While at or above the first threshold: refresh the sites if the bounds allow (no file). */
function refresh(levelOf, timeToLimitOf) {
  if (!state.sampling || state.monitors.size === 0) return
  let alert = false
  let ttl = null
  for (const id of state.monitors.keys()) {
    if (levelOf(id) > 0) {
      alert = true
      const t = timeToLimitOf(id)
      if (typeof t === 'number' && (ttl === null || t < ttl)) ttl = t
    }
  }
  if (!alert) return
  const cfg = state.monitors.values().next().value
  take({ timeToLimitMs: ttl, event: 'refresh', verdict: null, cfg })
}

/** The event's `heapProfile`: the summary without internals. */
function eventView(s) {
  if (s.isolate === undefined) return { skipped: s.skipped, error: s.error ?? null, sites: [] }
  return {
    isolate: s.isolate,
    route: s.route,
    takenAt: s.takenAt,
    ageMs: s.ageMs,
    sinceMs: s.sinceMs,
    intervalBytes: s.intervalBytes,
    pauseMs: s.pauseMs,
    sampledBytes: s.sampledBytes,
    heapUsedBytes: s.heapUsedBytes,
    outsideHeapBytes: s.outsideHeapBytes,
    file: s.file,
    fileError: s.fileError ?? null,
    skipped: s.skipped,
    sites: s.sites,
    buffers: s.buffers ?? null,
  }
}

/** For tests and the benchmark: the state of this thread's profiler. */
function info() {
  return {
    isolate: isolate(),
    sampling: state.sampling,
    route: state.route,
    routeNote: state.routeNote,
    peer: state.peer,
    monitors: state.monitors.size,
    expectedPauseMs: state.sampling ? expectedPauseMs(usageNow(true).heapUsed) : null,
    lastPauseMs: state.lastPauseMs,
    file: state.file,
  }
}

module.exports = { attach, detach, onEvent, refresh, info, topSites, encodePprof, candidates, prune, MIN_GAP_MS, PAUSE_DUTY }
Object.defineProperty(module.exports, 'ISOLATE', { enumerable: true, get: isolate })
