'use strict'
// The hand-written competitor: what a competent Node.js developer writes when
// they want the cgroup's memory numbers without a native addon. It locates the
// memory cgroup once (from /proc/self/cgroup and /proc/self/mountinfo), then
// on every read() call reads THE SAME FILES oomguard reads, each with
// fs.readFileSync, and parses them:
//
//   cgroup v1: memory.usage_in_bytes, memory.stat, memory.oom_control,
//              memory.failcnt, memory.kmem.usage_in_bytes,
//              memory.kmem.tcp.usage_in_bytes, memory.max_usage_in_bytes,
//              memory.memsw.usage_in_bytes, memory.limit_in_bytes of the
//              cgroup and each ancestor up to the mount point,
//              /proc/pressure/memory
//   cgroup v2: memory.current, memory.stat, memory.events, memory.pressure,
//              memory.peak, memory.swap.current, memory.max + memory.high +
//              memory.swap.max of the cgroup and each ancestor
//   both:      /proc/self/statm, /proc/meminfo
//
// With { keepOpen: true } it instead keeps each file open and re-reads it at
// offset 0 (fs.readSync with a position: pread), the same syscall pattern as
// oomguard; the benchmark shows it as a separate, less common variant.
//
// It is meant to be fair: no deliberate slowness, files known to be absent at
// construction are not retried on every call, and no work is done that the
// numbers do not need. It is not meant to be a library (no relocation when the
// process moves cgroups, no diagnoses).

const fs = require('node:fs')
const path = require('node:path')

// The "no limit" value cgroup v1 prints (PAGE_COUNTER_MAX * page size, 4 KiB pages);
// anything at or above it is unlimited.
// biome-ignore lint/correctness/noPrecisionLoss: exactly 2^63 - 4096, a double; written as the kernel prints it
const V1_UNLIMITED = 9223372036854771712

function readText(file) {
  return fs.readFileSync(file, 'utf8')
}

function exists(file) {
  try {
    fs.accessSync(file, fs.constants.R_OK)
    return true
  } catch {
    return false
  }
}

/** `key value` lines (memory.stat, memory.events, memory.oom_control) into an object. */
function parseKeyed(text) {
  const out = {}
  for (const line of text.split('\n')) {
    if (line === '') continue
    const sp = line.indexOf(' ')
    if (sp < 0) continue
    out[line.slice(0, sp)] = Number(line.slice(sp + 1))
  }
  return out
}

/** memory.limit_in_bytes / memory.max / memory.high: null when unlimited. */
function parseLimit(text) {
  const t = text.trim()
  if (t === 'max') return null
  const v = Number(t)
  return v >= V1_UNLIMITED ? null : v
}

/** /proc/meminfo: MemTotal and MemAvailable, in bytes. */
function parseMeminfo(text) {
  let total = null
  let available = null
  for (const line of text.split('\n')) {
    if (line.startsWith('MemTotal:')) total = parseInt(line.slice(9), 10) * 1024
    else if (line.startsWith('MemAvailable:')) available = parseInt(line.slice(13), 10) * 1024
    if (total !== null && available !== null) break
  }
  return { total, available }
}

/** PSI text (`some avg10=.. avg60=.. avg300=.. total=..`, `full ...`). */
function parsePressure(text) {
  const out = { some: null, full: null }
  for (const line of text.split('\n')) {
    if (line === '') continue
    const parts = line.split(' ')
    const entry = {}
    for (let i = 1; i < parts.length; i++) {
      const eq = parts[i].indexOf('=')
      entry[parts[i].slice(0, eq)] = Number(parts[i].slice(eq + 1))
    }
    out[parts[0]] = { avg10: entry.avg10, avg60: entry.avg60, avg300: entry.avg300, totalUs: entry.total }
  }
  return out
}

/** mountinfo escapes spaces etc. as \040-style octal. */
function unescapeMountinfo(s) {
  return s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)))
}

function parseMountinfo(text) {
  const mounts = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    const sep = line.indexOf(' - ')
    const left = line.slice(0, sep).split(' ')
    const right = line.slice(sep + 3).split(' ')
    mounts.push({
      root: unescapeMountinfo(left[3]),
      mountPoint: unescapeMountinfo(left[4]),
      fsType: right[0],
      superOptions: (right[2] || '').split(','),
    })
  }
  return mounts
}

/** The cgroup directory: the mount point plus the path below the mount's root. */
function resolveDir(root, cgroupPath, mounts) {
  let best = null
  for (const m of mounts) {
    let rel
    if (m.root === '/') rel = cgroupPath
    else if (cgroupPath === m.root || cgroupPath.startsWith(`${m.root}/`)) rel = cgroupPath.slice(m.root.length)
    else continue
    if (best === null || m.root.length > best.mount.root.length) best = { mount: m, rel }
  }
  const mount = best ? best.mount : mounts[0]
  if (!mount) return null
  const mountPoint = path.join(root, mount.mountPoint)
  const dir = best ? path.join(mountPoint, best.rel) : mountPoint
  // Inside a container without a cgroup namespace the path may not exist: use the mount point.
  return { mountPoint, dir: exists(dir) ? dir : mountPoint }
}

/** Locate the process's memory cgroup. A v1 memory hierarchy wins over cgroup2. */
function locate(root) {
  const lines = readText(path.join(root, 'proc/self/cgroup'))
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const a = l.indexOf(':')
      const b = l.indexOf(':', a + 1)
      return { id: l.slice(0, a), controllers: l.slice(a + 1, b).split(','), path: l.slice(b + 1) }
    })
  const mounts = parseMountinfo(readText(path.join(root, 'proc/self/mountinfo')))

  const v1 = lines.find((l) => l.id !== '0' && l.controllers.includes('memory'))
  if (v1) {
    const found = resolveDir(
      root,
      v1.path,
      mounts.filter((m) => m.fsType === 'cgroup' && m.superOptions.includes('memory')),
    )
    if (found) return { version: 1, path: v1.path, ...found }
  }
  const v2 = lines.find((l) => l.id === '0')
  if (v2) {
    const found = resolveDir(
      root,
      v2.path,
      mounts.filter((m) => m.fsType === 'cgroup2'),
    )
    if (found && exists(path.join(found.dir, 'memory.current'))) return { version: 2, path: v2.path, ...found }
  }
  return null
}

/** Directories from the cgroup's own up to the mount point, leaf first. */
function ancestry(dir, mountPoint) {
  const out = [dir]
  let cur = dir
  while (cur !== mountPoint) {
    const parent = path.dirname(cur)
    if (parent === cur || !parent.startsWith(mountPoint)) break
    out.push(parent)
    cur = parent
  }
  return out
}

/** The kernel's page size, for /proc/self/statm (which counts pages). */
function pageSize(root) {
  // Node has no sysconf(_SC_PAGESIZE); /proc/self/smaps prints it per mapping.
  try {
    const fd = fs.openSync(path.join(root, 'proc/self/smaps'), 'r')
    try {
      const buf = Buffer.alloc(4096)
      const n = fs.readSync(fd, buf, 0, buf.length, 0)
      const m = /KernelPageSize:\s+(\d+) kB/.exec(buf.toString('latin1', 0, n))
      if (m) return Number(m[1]) * 1024
    } finally {
      fs.closeSync(fd)
    }
  } catch {}
  return 4096
}

class PlainCgroupReader {
  /**
   * @param {{ root?: string, keepOpen?: boolean }} [options] `root` stands in
   *   for `/` (tests). `keepOpen`: the less common variant that keeps each file
   *   open and re-reads it at offset 0 (fs.readSync with a position, i.e.
   *   pread), as oomguard does, instead of fs.readFileSync every time.
   */
  constructor({ root = '/', keepOpen = false } = {}) {
    this.root = root
    this.keepOpen = keepOpen
    this.fds = new Map()
    this.buf = keepOpen ? Buffer.allocUnsafe(16384) : null
    this.pageSize = pageSize(root)
    this.statmFile = path.join(root, 'proc/self/statm')
    this.meminfoFile = path.join(root, 'proc/meminfo')
    const systemPressure = path.join(root, 'proc/pressure/memory')
    this.location = locate(root)
    const loc = this.location
    // Optional files absent now (no PSI, no kmem accounting, the v2 root's
    // missing memory.max) are left out instead of failing on every call.
    const present = (f) => (exists(f) ? f : null)
    if (!loc) {
      this.files = null
      this.pressureFile = present(systemPressure)
      return
    }
    const at = (name) => path.join(loc.dir, name)
    const up = (name) =>
      ancestry(loc.dir, loc.mountPoint)
        .map((d) => path.join(d, name))
        .filter(exists)
    if (loc.version === 1) {
      this.files = {
        usage: at('memory.usage_in_bytes'),
        stat: at('memory.stat'),
        events: at('memory.oom_control'),
        failcnt: present(at('memory.failcnt')),
        kmem: present(at('memory.kmem.usage_in_bytes')),
        kmemTcp: present(at('memory.kmem.tcp.usage_in_bytes')),
        limits: up('memory.limit_in_bytes'),
        highs: [],
        peak: present(at('memory.max_usage_in_bytes')),
        swap: present(at('memory.memsw.usage_in_bytes')),
        swapLimits: [],
      }
      this.pressureFile = present(systemPressure)
      this.pressureScope = 'system'
    } else {
      this.files = {
        usage: at('memory.current'),
        stat: at('memory.stat'),
        events: at('memory.events'),
        failcnt: null,
        kmem: null,
        kmemTcp: null,
        limits: up('memory.max'),
        highs: up('memory.high'),
        peak: present(at('memory.peak')),
        swap: present(at('memory.swap.current')),
        swapLimits: up('memory.swap.max'),
      }
      const own = at('memory.pressure')
      this.pressureFile = exists(own) ? own : present(systemPressure)
      this.pressureScope = exists(own) ? 'cgroup' : 'system'
    }
  }

  /**
   * Read everything once.
   * @param {NodeJS.MemoryUsage} [usage] V8 numbers to include (optional).
   */
  /** One file's text, per the reading strategy. */
  text(file) {
    if (!this.keepOpen) return fs.readFileSync(file, 'utf8')
    let fd = this.fds.get(file)
    if (fd === undefined) {
      fd = fs.openSync(file, 'r')
      this.fds.set(file, fd)
    }
    let n = fs.readSync(fd, this.buf, 0, this.buf.length, 0)
    while (n === this.buf.length) {
      const bigger = Buffer.allocUnsafe(this.buf.length * 2)
      this.buf.copy(bigger)
      this.buf = bigger
      n += fs.readSync(fd, this.buf, n, this.buf.length - n, n)
    }
    return this.buf.toString('latin1', 0, n)
  }

  textOptional(file) {
    try {
      return this.text(file)
    } catch (err) {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null
      throw err
    }
  }

  /** Close the files kept open (keepOpen). */
  close() {
    for (const fd of this.fds.values()) fs.closeSync(fd)
    this.fds.clear()
  }

  read(usage) {
    const statm = this.text(this.statmFile)
    const rssBytes = Number(statm.split(' ')[1]) * this.pageSize
    const meminfo = parseMeminfo(this.text(this.meminfoFile))
    const out = {
      version: 0,
      dir: null,
      limitBytes: meminfo.total,
      cgroupLimitBytes: null,
      highBytes: null,
      usageBytes: null,
      workingSetBytes: null,
      peakBytes: null,
      swapBytes: null,
      swapLimitBytes: null,
      usageRatio: null,
      headroomBytes: null,
      stat: null,
      events: null,
      kmemBytes: null,
      kmemTcpBytes: null,
      pressure: null,
      rssBytes,
      hostTotalBytes: meminfo.total,
      hostAvailableBytes: meminfo.available,
      v8: usage ? { rssBytes: usage.rss, heapTotalBytes: usage.heapTotal, heapUsedBytes: usage.heapUsed, externalBytes: usage.external } : null,
    }
    const f = this.files
    if (f) {
      const v1 = this.location.version === 1
      out.version = this.location.version
      out.dir = this.location.dir
      out.usageBytes = Number(this.text(f.usage))
      const stat = parseKeyed(this.text(f.stat))
      out.stat = stat

      let limit = null
      for (const file of f.limits) {
        const l = parseLimit(this.text(file))
        if (l !== null && (limit === null || l < limit)) limit = l
      }
      if (v1 && stat.hierarchical_memory_limit !== undefined && stat.hierarchical_memory_limit < V1_UNLIMITED) {
        if (limit === null || stat.hierarchical_memory_limit < limit) limit = stat.hierarchical_memory_limit
      }
      for (const file of f.highs) {
        const h = parseLimit(this.text(file))
        if (h !== null && (out.highBytes === null || h < out.highBytes)) out.highBytes = h
      }
      out.cgroupLimitBytes = limit
      if (limit !== null) out.limitBytes = limit

      // Working set as kubelet/cAdvisor count it: usage minus inactive file cache.
      const inactiveFile = v1 ? stat.total_inactive_file : stat.inactive_file
      if (inactiveFile !== undefined) out.workingSetBytes = Math.max(0, out.usageBytes - inactiveFile)

      const events = parseKeyed(this.text(f.events))
      if (f.failcnt) events.failcnt = Number(this.text(f.failcnt))
      out.events = events
      if (f.kmem) out.kmemBytes = Number(this.text(f.kmem))
      if (f.kmemTcp) out.kmemTcpBytes = Number(this.text(f.kmemTcp))

      if (f.peak) out.peakBytes = Number(this.text(f.peak))
      if (f.swap) {
        const swap = Number(this.text(f.swap))
        // v1 memsw is memory plus swap, and its limit is memory.stat's hierarchical_memsw_limit.
        out.swapBytes = v1 ? Math.max(0, swap - out.usageBytes) : swap
        let swapLimit = null
        for (const file of f.swapLimits) {
          const l = parseLimit(this.text(file))
          if (l !== null && (swapLimit === null || l < swapLimit)) swapLimit = l
        }
        const memsw = stat.hierarchical_memsw_limit
        if (v1 && memsw !== undefined && memsw < V1_UNLIMITED) swapLimit = Math.max(0, memsw - (limit ?? 0))
        out.swapLimitBytes = swapLimit
      }
    }
    if (this.pressureFile) {
      const text = this.textOptional(this.pressureFile)
      if (text !== null) out.pressure = { scope: this.pressureScope || 'system', ...parsePressure(text) }
    }
    const basis = out.workingSetBytes ?? out.usageBytes ?? meminfo.total - meminfo.available
    if (out.limitBytes) {
      out.usageRatio = basis / out.limitBytes
      out.headroomBytes = out.limitBytes - basis
    }
    return out
  }

  /** Every file one read() opens, in order (for checking it matches oomguard). */
  filesPerCall() {
    const list = [this.statmFile, this.meminfoFile]
    const f = this.files
    if (f) {
      list.push(f.usage, f.stat, ...f.limits, ...f.highs, f.events)
      for (const x of [f.failcnt, f.kmem, f.kmemTcp, f.peak, f.swap]) if (x) list.push(x)
      if (f.swap) list.push(...f.swapLimits)
    }
    if (this.pressureFile) list.push(this.pressureFile)
    return list
  }
}

module.exports = { PlainCgroupReader, locate, parseKeyed, parseLimit, parseMeminfo, parsePressure }
