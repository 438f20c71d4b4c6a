'use strict'
// getMemoryMetrics() without the native addon (none fits or loads, or
// OOMGUARD_NATIVE=0): the same kernel files read from JavaScript, into the
// same slots (lib/core/slots.json), built into the same object by lib/reading.js.
// What the addon adds on top is left null: the limiting ancestor's figures,
// the per-process list, stall state. The NATIVE_UNAVAILABLE diagnosis says so.
//
// Every read is bounded and non-blocking (a FIFO or a device in place of a
// kernel file is an error, not a hang), and a file that cannot be read makes
// its fields null, never a throw.

const fs = require('node:fs')
const path = require('node:path')
const { SLOT, RAW_COUNT, RAW_START, INPUT, V8_INPUTS } = require('./reading.js')

// A kernel memory file longer than this is not one (src/file.rs's MAX_BYTES);
// mountinfo may be longer (many mounts).
const MAX_BYTES = 64 * 1024
const MAX_MOUNTINFO_BYTES = 1024 * 1024
// cgroup v1 prints PAGE_COUNTER_MAX pages as "no limit": anything this large is none.
const V1_UNLIMITED = 2 ** 62

const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | (fs.constants.O_NOCTTY || 0)
const scratch = Buffer.allocUnsafe(MAX_BYTES + 1)

const kindOf = (st) =>
  st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() ? 'a character device' : st.isBlockDevice() ? 'a block device' : st.isSocket() ? 'a socket' : 'not a file'

/** The text of a regular file, at most `max` bytes (more is an error), or throws. */
function readText(file, max = MAX_BYTES) {
  const fd = fs.openSync(file, OPEN_FLAGS)
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) throw Object.assign(new Error(`${file}: ${kindOf(st)}, not a regular file`), { code: 'EINVAL' })
    const buf = max <= MAX_BYTES ? scratch : Buffer.allocUnsafe(max + 1)
    let n = 0
    for (;;) {
      const r = fs.readSync(fd, buf, n, max + 1 - n, n)
      if (r === 0) break
      n += r
      if (n > max) throw Object.assign(new Error(`${file}: longer than ${max} bytes`), { code: 'EFBIG' })
    }
    return buf.toString('latin1', 0, n)
  } finally {
    fs.closeSync(fd)
  }
}

// The files that could not be read in the read under way, other than those
// that are simply absent (an optional file): [path, reason].
let problems = null

/** Why a read failed, in words, without the path. */
function reasonOf(err) {
  if (err.code === 'EINVAL' || err.code === 'EFBIG') return err.message.slice(err.message.indexOf(': ') + 2)
  return String(err.message || err).replace(/, \w+ '.*'$/s, '')
}

function problem(file, reason) {
  if (problems !== null && problems.length < 16) problems.push([file, reason])
}

/**
 * readText, or null when the file cannot be read: noted in `problems`, unless
 * it is absent and not `required` (an optional file).
 */
function tryText(file, max = MAX_BYTES, required = false) {
  try {
    return readText(file, max)
  } catch (err) {
    if (required || err.code !== 'ENOENT') problem(file, reasonOf(err))
    return null
  }
}
const needText = (file, max = MAX_BYTES) => tryText(file, max, true)

function exists(file) {
  try {
    fs.accessSync(file)
    return true
  } catch {
    return false
  }
}

const num = (s) => {
  const t = s.trim()
  return /^\d+$/.test(t) ? Number(t) : NaN
}

/** `key value` lines (memory.stat, memory.events, memory.oom_control) as [key, number] pairs. */
function parseKeyed(text) {
  const out = []
  for (const line of text.split('\n')) {
    const sp = line.indexOf(' ')
    if (sp <= 0) continue
    const v = num(line.slice(sp + 1))
    if (v === v) out.push([line.slice(0, sp), v])
  }
  return out
}

/** memory.limit_in_bytes / memory.max / memory.high: NaN when unlimited or unreadable. */
function parseLimit(text) {
  if (text === null) return NaN
  const t = text.trim()
  if (t === 'max') return NaN
  const v = num(t)
  return v >= V1_UNLIMITED ? NaN : v
}

/** PSI text: `some avg10=.. avg60=.. avg300=.. total=..` and `full ...`. */
function parsePressure(text) {
  const out = {}
  for (const line of text.split('\n')) {
    const parts = line.split(' ')
    if (parts[0] !== 'some' && parts[0] !== 'full') continue
    const entry = {}
    for (let i = 1; i < parts.length; i++) {
      const eq = parts[i].indexOf('=')
      if (eq > 0) entry[parts[i].slice(0, eq)] = Number(parts[i].slice(eq + 1))
    }
    out[parts[0]] = entry
  }
  return out
}

const unescapeMountinfo = (s) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)))

/** The mounts in mountinfo's text; `bad(line)` is told of each line that is not one. */
function parseMountinfo(text, bad = () => {}) {
  const mounts = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    const sep = line.indexOf(' - ')
    const left = sep < 0 ? [] : line.slice(0, sep).split(' ')
    const right = sep < 0 ? [] : line.slice(sep + 3).split(' ')
    if (left.length < 5 || right.length < 3) {
      bad(line)
      continue
    }
    mounts.push({ id: left[0], parentId: left[1], root: unescapeMountinfo(left[3]), mountPoint: unescapeMountinfo(left[4]), fsType: right[0], superOptions: (right[2] || '').split(',') })
  }
  return mounts
}

/** `p` resolved lexically (`.`, `..`, repeated slashes); null where `..` climbs above `/`. */
function normalize(p) {
  const parts = []
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') {
      if (parts.length === 0) return null
      parts.pop()
    } else parts.push(part)
  }
  return `/${parts.join('/')}`
}

const atOrBelow = (inner, outer) => inner === outer || inner.startsWith(outer === '/' ? '/' : `${outer}/`)

/**
 * The mounts `wanted` picks that this process sees, in order: src/locate.rs's
 * visible_mounts rule (its comment says why). A mount is hidden by a later
 * one, or one mounted on it, whose point is its own or a directory above it;
 * never by one it is mounted inside, nor by one on `/`.
 */
function visibleMounts(mounts, wanted) {
  const n = mounts.length
  const points = mounts.map((m) => normalize(m.mountPoint))
  const byId = new Map()
  mounts.forEach((m, i) => {
    if (!byId.has(m.id)) byId.set(m.id, i)
  })
  const parent = mounts.map((m, i) => {
    const p = byId.get(m.parentId)
    return p === undefined || p === i ? null : p
  })
  const children = mounts.map(() => [])
  parent.forEach((p, i) => {
    if (p !== null) children[p].push(i)
  })
  const out = []
  for (let i = 0; i < n; i++) {
    if (!wanted(mounts[i])) continue
    const point = points[i]
    if (point === null) {
      out.push(mounts[i])
      continue
    }
    const above = new Array(n).fill(false)
    for (let cur = parent[i]; cur !== null && !above[cur] && cur !== i; cur = parent[cur]) above[cur] = true
    const below = new Array(n).fill(false)
    const stack = [...children[i]]
    while (stack.length > 0) {
      const k = stack.pop()
      if (k !== i && !below[k]) {
        below[k] = true
        stack.push(...children[k])
      }
    }
    let hidden = false
    for (let top = 0; top < n && !hidden; top++) {
      hidden = top !== i && !above[top] && (top > i || below[top]) && points[top] !== null && points[top] !== '/' && atOrBelow(point, points[top])
    }
    if (!hidden) out.push(mounts[i])
  }
  return out
}

/**
 * The cgroup's directory: the mount whose root is the longest prefix of the
 * cgroup's path (the later one in mountinfo on a tie: it covers the earlier),
 * and the path below that root. Never outside the mount point.
 */
function resolveDir(root, cgroupPath, mounts, files) {
  let best = null
  for (const m of mounts) {
    let rel
    if (m.root === '/') rel = cgroupPath
    else if (cgroupPath === m.root || cgroupPath.startsWith(`${m.root}/`)) rel = cgroupPath.slice(m.root.length)
    else continue
    if (best === null || m.root.length >= best.mount.root.length) best = { mount: m, rel }
  }
  if (best === null) {
    if (mounts.length === 0) return null
    best = { mount: mounts[mounts.length - 1], rel: null }
  }
  const mountPoint = path.join(root, best.mount.mountPoint)
  const inside = (p, top) => top === '/' || p === top || p.startsWith(`${top}/`)
  if (!inside(mountPoint, path.resolve(root))) {
    problem(files.mountinfo, `the mount point ${best.mount.mountPoint} climbs out of the root`)
    return null
  }
  const dir = best.rel === null ? null : path.join(mountPoint, best.rel).replace(/(.)\/+$/, '$1')
  if (dir !== null && !inside(dir, mountPoint)) {
    problem(files.cgroup, `the cgroup path ${cgroupPath} climbs out of the root`)
    return null
  }
  // Inside a container without a cgroup namespace the path may not exist: read the mount point.
  const resolved = dir !== null && exists(dir)
  return { mountPoint, dir: resolved ? dir : mountPoint, resolved }
}

/** The process's memory cgroup under `root`, or null. A v1 memory hierarchy wins over cgroup2. */
function locate(root) {
  const files = { cgroup: path.join(root, 'proc/self/cgroup'), mountinfo: path.join(root, 'proc/self/mountinfo') }
  const cgroupText = needText(files.cgroup)
  const mountText = needText(files.mountinfo, MAX_MOUNTINFO_BYTES)
  if (cgroupText === null || mountText === null) return null
  const lines = []
  for (const l of cgroupText.split('\n')) {
    const a = l.indexOf(':')
    const b = l.indexOf(':', a + 1)
    if (a < 0 || b < 0) continue
    lines.push({ id: l.slice(0, a), controllers: l.slice(a + 1, b).split(','), path: l.slice(b + 1) })
  }
  let badLines = 0
  const mounts = parseMountinfo(mountText, (line) => {
    if (badLines++ === 0) problem(files.mountinfo, `not a mountinfo line: ${JSON.stringify(line.slice(0, 80))}`)
  })
  const v1 = lines.find((l) => l.id !== '0' && l.controllers.includes('memory'))
  if (v1) {
    const found = resolveDir(
      root,
      v1.path,
      visibleMounts(mounts, (m) => m.fsType === 'cgroup' && m.superOptions.includes('memory')),
      files,
    )
    if (found) return { version: 1, path: v1.path, ...found }
  }
  const v2 = lines.find((l) => l.id === '0')
  if (v2) {
    const found = resolveDir(
      root,
      v2.path,
      visibleMounts(mounts, (m) => m.fsType === 'cgroup2'),
      files,
    )
    if (found && exists(path.join(found.mountPoint, 'cgroup.controllers'))) {
      const controllers = tryText(path.join(found.mountPoint, 'cgroup.controllers'))
      if (controllers !== null && controllers.split(/\s+/).includes('memory')) return { version: 2, path: v2.path, ...found }
    }
  }
  return null
}

/** Directories from the cgroup's own up to the mount point, leaf first. */
function ancestry(dir, mountPoint) {
  const out = [dir]
  let cur = dir
  while (cur !== mountPoint && cur.startsWith(`${mountPoint}/`)) {
    cur = path.dirname(cur)
    out.push(cur)
  }
  return out
}

// The named memory.stat slots and their keys: v2's own, v1's hierarchical
// total_* (src/stat.rs maps them the same way; __test__/fallback.test.js
// compares the two over every fixture).
const STAT_KEYS = {
  anon: ['anon', 'total_rss'],
  file: ['file', 'total_cache'],
  kernel: ['kernel', null],
  kernelStack: ['kernel_stack', null],
  pagetables: ['pagetables', null],
  sock: ['sock', null],
  shmem: ['shmem', 'total_shmem'],
  fileMapped: ['file_mapped', 'total_mapped_file'],
  fileDirty: ['file_dirty', 'total_dirty'],
  fileWriteback: ['file_writeback', 'total_writeback'],
  anonThp: ['anon_thp', 'total_rss_huge'],
  inactiveAnon: ['inactive_anon', 'total_inactive_anon'],
  activeAnon: ['active_anon', 'total_active_anon'],
  inactiveFile: ['inactive_file', 'total_inactive_file'],
  activeFile: ['active_file', 'total_active_file'],
  unevictable: ['unevictable', 'total_unevictable'],
  slab: ['slab', null],
  slabReclaimable: ['slab_reclaimable', null],
  slabUnreclaimable: ['slab_unreclaimable', null],
  pgfault: ['pgfault', 'total_pgfault'],
  pgmajfault: ['pgmajfault', 'total_pgmajfault'],
}
const STAT_SLOTS = Object.entries(STAT_KEYS).map(([name, keys]) => [SLOT[`stat.${name}`], keys])
const EVENT_KEYS = { low: 'low', high: 'high', max: 'max', oom: 'oom', oomKill: 'oom_kill', oomGroupKill: 'oom_group_kill', underOom: 'under_oom' }
const PRESSURE = ['some', 'full'].map((kind) => [kind, SLOT[`pressure.${kind}`], ['avg10', 'avg60', 'avg300', 'totalUs'].map((k) => [k === 'totalUs' ? 'total' : k, SLOT[`pressure.${kind}.${k}`]])])

// The caller's V8 numbers, written before read(): kept.
const INPUT_SLOTS = new Set(V8_INPUTS.map(([, slot]) => slot))

const get = (pairs, key) => {
  if (key === null) return NaN
  for (const [k, v] of pairs) if (k === key) return v
  return NaN
}
const minOf = (values) => values.reduce((a, v) => (v === v && !(a <= v) ? v : a), NaN)

let pageSize = 0
function statmPageSize() {
  // Node has no sysconf(_SC_PAGESIZE); /proc/self/smaps names it per mapping.
  if (pageSize === 0) {
    let text = null
    try {
      const fd = fs.openSync('/proc/self/smaps', OPEN_FLAGS)
      try {
        const n = fs.readSync(fd, scratch, 0, 4096, 0)
        text = scratch.toString('latin1', 0, n)
      } finally {
        fs.closeSync(fd)
      }
    } catch {}
    const m = text && /KernelPageSize:\s+(\d+) kB/.exec(text)
    pageSize = m ? Number(m[1]) * 1024 : 4096
  }
  return pageSize
}

/** One root's reader: the cgroup located once (again when its directory goes away). */
class PlainReader {
  constructor(root) {
    this.root = root === undefined ? '/' : root
    this.location = undefined
    this.shapes = new Map()
  }

  /**
   * Fill `b` (lib/core/slots.json's layout; the V8 input slots already written)
   * and return describe()'s half: the strings and lists. `diagnoses(found,
   * unreadable)` gives the caller's (frozen) list, for a process in a memory
   * cgroup or not, and the files that could not be read ([path, reason]).
   */
  read(b, diagnoses) {
    problems = []
    try {
      return this.readAll(b, diagnoses)
    } finally {
      problems = null
    }
  }

  readAll(b, diagnoses) {
    const at = (rel) => path.join(this.root, rel)
    if (this.location === undefined || (this.location !== null && !exists(this.location.dir))) this.location = locate(this.root)
    const loc = this.location
    for (let i = 0; i < RAW_START; i++) if (!INPUT_SLOTS.has(i)) b[i] = NaN
    b[RAW_COUNT] = 0
    b[SLOT.timestampMs] = Date.now()

    const meminfo = needText(at('proc/meminfo'))
    let total = NaN
    let available = NaN
    let swapTotal = NaN
    if (meminfo !== null) {
      const t = /^MemTotal:\s+(\d+) kB/m.exec(meminfo)
      const a = /^MemAvailable:\s+(\d+) kB/m.exec(meminfo)
      const st = /^SwapTotal:\s+(\d+) kB/m.exec(meminfo)
      if (t) total = Number(t[1]) * 1024
      if (a) available = Number(a[1]) * 1024
      if (st) swapTotal = Number(st[1]) * 1024
    }
    b[SLOT.hostTotalBytes] = total
    b[SLOT.hostAvailableBytes] = available
    b[SLOT.hostSwapTotalBytes] = swapTotal
    const statm = needText(at('proc/self/statm'))
    if (statm !== null) {
      // resident, and resident less shared (anonymous), in pages (src/parse.rs's parse_statm_*).
      const [, resident, shared] = statm.split(' ').map((f) => num(f))
      b[SLOT.rssBytes] = resident * statmPageSize()
      if (resident === resident && shared === shared) b[SLOT.anonBytes] = Math.max(0, resident - shared) * statmPageSize()
    }

    let source = 'host'
    let rawKeys = []
    let limit = NaN
    let basis = total - available
    let pressureFile = at('proc/pressure/memory')
    let pressureScope = 'system'
    let limitFailed = false
    if (loc !== null) {
      const v1 = loc.version === 1
      const dirs = ancestry(loc.dir, loc.mountPoint)
      const own = (name) => path.join(loc.dir, name)
      const v2Root = !v1 && loc.dir === loc.mountPoint && !exists(own('memory.current'))
      const statText = needText(own('memory.stat'))
      const stat = statText === null ? [] : parseKeyed(statText)
      const usage = v2Root ? NaN : num(needText(own(v1 ? 'memory.usage_in_bytes' : 'memory.current')) ?? '')
      // The own limit file is required, except at the v2 root (which has none).
      // A limit file that cannot be read leaves no limit: the host's in its
      // place would raise or silence alarms.
      const before = problems.length
      const limits = dirs.map((d, i) => parseLimit(tryText(path.join(d, v1 ? 'memory.limit_in_bytes' : 'memory.max'), MAX_BYTES, i === 0 && !v2Root)))
      limitFailed = problems.length > before
      b[SLOT.leafLimitBytes] = limits[0]
      if (v1) limits.push(parseLimit(String(get(stat, 'hierarchical_memory_limit'))))
      const cgroupLimit = minOf(limits)
      b[SLOT.cgroupLimitBytes] = cgroupLimit
      const highs = v1 ? [] : dirs.map((d) => parseLimit(tryText(path.join(d, 'memory.high'))))
      b[SLOT.highBytes] = minOf(highs)
      const leafHigh = v1 ? parseLimit(tryText(own('memory.soft_limit_in_bytes'))) : highs[0]
      b[SLOT.leafHighBytes] = leafHigh
      const constrained = minOf([leafHigh, b[SLOT.leafLimitBytes]])
      b[SLOT.constrainedMemoryBytes] = constrained === constrained ? minOf([constrained, total]) : total
      b[SLOT.usageBytes] = usage
      if (statText !== null) {
        b[SLOT.stat] = 1
        for (const [slot, [k2, k1]] of STAT_SLOTS) b[slot] = get(stat, v1 ? k1 : k2)
        if (!v1 && !(b[SLOT['stat.slab']] >= 0)) b[SLOT['stat.slab']] = b[SLOT['stat.slabReclaimable']] + b[SLOT['stat.slabUnreclaimable']]
        if (v1) {
          b[SLOT['stat.kernel']] = num(tryText(own('memory.kmem.usage_in_bytes')) ?? '')
          b[SLOT['stat.sock']] = num(tryText(own('memory.kmem.tcp.usage_in_bytes')) ?? '')
        }
        const n = Math.min(stat.length, b.length - RAW_START)
        // A value past the no-limit mark (a v1 hierarchical limit of none) is null, as the addon gives it.
        for (let i = 0; i < n; i++) b[RAW_START + i] = stat[i][1] >= V1_UNLIMITED ? NaN : stat[i][1]
        b[RAW_COUNT] = n
        rawKeys = stat.slice(0, n).map(([k]) => k)
      }
      const inactive = b[SLOT['stat.inactiveFile']]
      if (usage === usage && inactive === inactive) b[SLOT.workingSetBytes] = Math.max(0, usage - inactive)
      if (!v2Root) basis = b[SLOT.workingSetBytes]
      if (cgroupLimit === cgroupLimit) {
        limit = cgroupLimit
        source = v1 ? 'cgroup-v1' : 'cgroup-v2'
      }
      if (!v2Root) {
        b[SLOT.peakBytes] = num(tryText(own(v1 ? 'memory.max_usage_in_bytes' : 'memory.peak')) ?? '')
        const swap = num(tryText(own(v1 ? 'memory.memsw.usage_in_bytes' : 'memory.swap.current')) ?? '')
        if (v1) {
          // memsw is memory and swap together; its limit is memory.stat's hierarchical_memsw_limit.
          if (swap === swap && usage === usage) b[SLOT.swapBytes] = Math.max(0, swap - usage)
          const memsw = parseLimit(String(get(stat, 'hierarchical_memsw_limit')))
          if (swap === swap && memsw === memsw) b[SLOT.swapLimitBytes] = Math.max(0, memsw - (cgroupLimit === cgroupLimit ? cgroupLimit : 0))
        } else {
          b[SLOT.swapBytes] = swap
          b[SLOT.swapLimitBytes] = minOf(dirs.map((d) => parseLimit(tryText(path.join(d, 'memory.swap.max')))))
        }
        // No swap space on the host: no swap limit is usable (src/reader.rs says the same).
        if (b[SLOT.swapBytes] === b[SLOT.swapBytes] && swapTotal === 0) b[SLOT.swapLimitBytes] = 0
        const eventsText = needText(own(v1 ? 'memory.oom_control' : 'memory.events'))
        if (eventsText !== null) {
          const events = parseKeyed(eventsText)
          b[SLOT.events] = 1
          for (const [name, key] of Object.entries(EVENT_KEYS)) {
            if (v1 ? name === 'oomKill' || name === 'underOom' : name !== 'underOom') b[SLOT[`events.${name}`]] = get(events, key)
          }
          if (v1) b[SLOT['events.failcnt']] = num(tryText(own('memory.failcnt')) ?? '')
        }
      }
      if (!v1 && exists(own('memory.pressure'))) {
        pressureFile = own('memory.pressure')
        pressureScope = 'cgroup'
      }
    }
    if (!(limit === limit) && !limitFailed) limit = total
    b[SLOT.limitBytes] = limit
    if (loc === null) b[SLOT.constrainedMemoryBytes] = total
    b[SLOT.basisBytes] = basis
    b[SLOT.usageRatio] = basis / limit
    b[SLOT.headroomBytes] = limit - basis
    b[SLOT.heapLimitRatio] = b[SLOT[`${INPUT}.heapSizeLimitBytes`]] / limit

    const pressureText = tryText(pressureFile)
    if (pressureText !== null) {
      const p = parsePressure(pressureText)
      b[SLOT.pressure] = 1
      for (const [kind, presence, fields] of PRESSURE) {
        if (!p[kind]) continue
        b[presence] = 1
        for (const [key, slot] of fields) b[slot] = p[kind][key] ?? NaN
      }
    } else pressureScope = null
    b[SLOT[INPUT]] = 1

    const cgroup = loc === null ? null : { version: loc.version, path: loc.path, dir: loc.dir, mountPoint: loc.mountPoint, resolved: loc.resolved }
    const unreadable = problems
    const key = `${source}\0${JSON.stringify(cgroup)}\0${rawKeys.join(' ')}\0${pressureScope}\0${JSON.stringify(unreadable)}`
    let shape = this.shapes.get(key)
    if (shape === undefined) {
      if (this.shapes.size >= 8) this.shapes.clear()
      shape = Object.freeze({
        source,
        cgroup: cgroup && Object.freeze(cgroup),
        rawKeys: Object.freeze(rawKeys),
        pressureScope,
        limitingCgroupPath: null,
        diagnoses: diagnoses(loc !== null, unreadable),
        processes: null,
      })
      this.shapes.set(key, shape)
    }
    return shape
  }
}

module.exports = { PlainReader, locate, readText, parseKeyed, parseLimit, parsePressure, parseMountinfo }
