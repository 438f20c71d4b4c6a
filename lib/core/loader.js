'use strict'
// Finds and loads the native addon, and never throws: where no binary fits
// or loads, `addon` is null, `status` says why, and one warning (once per
// process) names the real cause. The package then reads the kernel's files
// from JavaScript (lib/core/plain.js), and watch() polls them (lib/core/poll.js).
//
// On Linux it tries, for this process's arch and libc (the target, as
// package.json's napi.targets names them):
//   1. oomguard.linux-<arch>-<gnu|musl>.node beside the package (a local build);
//   2. the oomguard-linux-<arch>-<gnu|musl> package (npm/*/package.json);
// or, where NAPI_RS_NATIVE_LIBRARY_PATH names a file (napi-rs's override), that
// file alone.
// The libc is the one this node runs on: the ELF interpreter (PT_INTERP) of
// process.execPath (ld-musl-* or ld-linux*), else the libc mapped into this
// process (/proc/self/maps). No /usr/bin/ldd (absent from distroless images,
// and the host's, not node's, when node is not the system's) and no
// process.report (milliseconds).
//
// OOMGUARD_NATIVE=0 loads nothing (the same fallback, without a warning).

const fs = require('node:fs')
const path = require('node:path')

const PKG_DIR = path.join(__dirname, '..', '..')
// Read, not required: a process's first require() of a JSON file costs about
// a millisecond more (measured with benchmark/startup.js).
const { name: PKG_NAME, napi } = JSON.parse(fs.readFileSync(path.join(PKG_DIR, 'package.json'), 'utf8'))
const BINARY = napi.binaryName

// Rust's names of the arches and libcs, as napi-rs maps them to Node's.
const ARCH = { x86_64: 'x64', aarch64: 'arm64' }
const ABI = { gnu: 'gnu', musl: 'musl' }
// The targets this package ships ('linux-x64-gnu', ...), from package.json.
const TARGETS = napi.targets
  .map((t) => /^(\w+)-unknown-linux-(\w+)$/.exec(t))
  .filter((m) => m && ARCH[m[1]] && ABI[m[2]])
  .map((m) => `linux-${ARCH[m[1]]}-${ABI[m[2]]}`)

// ELF e_machine numbers, to say what a file that would not load was built for.
const MACHINES = { 3: 'x86 (32-bit)', 40: 'arm (32-bit)', 62: 'x64', 183: 'arm64', 243: 'riscv', 258: 'loong64', 21: 'ppc64', 22: 's390x' }
const PT_INTERP = 3

/** Read up to `length` bytes at `position`: one bounded pread, never more. */
function readAt(fd, length, position) {
  const buf = Buffer.allocUnsafe(length)
  const n = fs.readSync(fd, buf, 0, length, position)
  return buf.subarray(0, n)
}

// The first read of a file: its ELF header and, where they follow it in
// this many bytes (as linkers write them), its program headers and
// interpreter, in one read.
const HEAD_BYTES = 4096

/** `length` bytes at `offset` of the file: from `head` where it holds them, else read. */
function bytesAt(fd, head, offset, length) {
  return offset + length <= head.length ? head.subarray(offset, offset + length) : readAt(fd, length, offset)
}

/** A little-endian u64 at `at`, as a Number (exact below 2^53, the sizes and offsets of any real file). */
const u64 = (v, at) => v.getUint32(at, true) + v.getUint32(at + 4, true) * 2 ** 32

/**
 * The header of a 64-bit little-endian ELF file: its machine and its
 * interpreter (PT_INTERP), or `problem` saying why it is not one. Parsed
 * through a DataView: on the start-up path of every process that loads the
 * package, and Buffer's readers cost more there (each compiles on first use).
 */
function elfInfo(file) {
  let fd
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  } catch (err) {
    return { problem: `cannot open it (${err.code || err.message})` }
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) return { problem: 'not a regular file' }
    const h = readAt(fd, HEAD_BYTES, 0)
    const hv = new DataView(h.buffer, h.byteOffset, h.length)
    if (h.length < 4 || hv.getUint32(0) !== 0x7f454c46) return { problem: `not an ELF file (${st.size} bytes)` }
    if (h.length < 64) return { problem: `truncated: ${st.size} bytes, shorter than an ELF header` }
    const machine = hv.getUint16(18, true)
    const arch = MACHINES[machine] || `machine ${machine}`
    if (h[4] !== 2 || h[5] !== 1) return { machine, arch, problem: `not a 64-bit little-endian ELF file (built for ${arch})` }
    const phoff = u64(hv, 32)
    const phentsize = hv.getUint16(54, true)
    const phnum = hv.getUint16(56, true)
    if (phentsize < 56 || phnum > 256 || phoff + phentsize * phnum > st.size) {
      return { machine, arch, problem: `truncated or damaged: ${st.size} bytes, its program headers end past the end of the file` }
    }
    const ph = bytesAt(fd, h, phoff, phentsize * phnum)
    const pv = new DataView(ph.buffer, ph.byteOffset, ph.length)
    let interp = null
    let end = 0
    for (let i = 0; i + 56 <= ph.length; i += phentsize) {
      const off = u64(pv, i + 8)
      const size = u64(pv, i + 32)
      end = Math.max(end, off + size)
      if (pv.getUint32(i, true) === PT_INTERP) {
        const name = bytesAt(fd, h, off, Math.min(size, 4096))
        const nul = name.indexOf(0)
        interp = name.toString('latin1', 0, nul < 0 ? name.length : nul)
      }
    }
    // dlopen maps the segments: one past the end of the file is a SIGBUS
    // when touched, not an error. Refused here instead.
    if (end > st.size) return { machine, arch, interp, problem: `truncated: ${st.size} bytes, its segments end at byte ${end}` }
    return { machine, arch, interp, problem: null }
  } catch (err) {
    return { problem: `cannot read it (${err.code || err.message})` }
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * 'musl', 'gnu' or null (unknown), and how it was found: from the ELF
 * interpreter of `exe` (node), else from the libraries in `maps`.
 */
function detectLibc(exe = process.execPath, maps = '/proc/self/maps') {
  const { interp } = elfInfo(exe)
  if (interp) {
    if (/\/ld-musl-/.test(interp)) return { libc: 'musl', how: `${exe} is linked with ${interp}` }
    if (/\/ld-linux|\/ld64\.so/.test(interp)) return { libc: 'gnu', how: `${exe} is linked with ${interp}` }
  }
  // Started through its loader, linked statically, or an interpreter of
  // another name: the libc mapped into this process decides.
  try {
    const fd = fs.openSync(maps, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
    let text
    try {
      text = readAt(fd, 256 * 1024, null).toString('latin1')
    } finally {
      fs.closeSync(fd)
    }
    if (/\/(ld-musl-|libc\.musl-|[\w.]+-linux-musl\/libc\.so)/.test(text)) return { libc: 'musl', how: `musl is mapped into this process (${maps})` }
    if (/\/(ld-linux[^/\s]*\.so|libc\.so\.6)/.test(text)) return { libc: 'gnu', how: `glibc is mapped into this process (${maps})` }
  } catch {}
  return { libc: null, how: 'neither the ELF interpreter of node nor /proc/self/maps names a libc' }
}

/** Why `file` did not load: the loader's error, and what the file is where that helps. */
function loadFailure(file, err, expectedArch) {
  const message = String((err && err.message) || err).split('\n')[0]
  const elf = elfInfo(file)
  let why = elf.problem
  if (why === null && elf.arch !== expectedArch) why = `built for ${elf.arch}, this process is ${expectedArch}`
  return why ? `${message} (the file is ${why})` : message
}

function unavailable(status, reason, warn) {
  status.reason = reason
  return { addon: null, status, warn }
}

/** Loads `file` as the addon for `target`: the addon, or null with the reason added to status.tried. */
function attempt(status, file, target, arch) {
  try {
    // A file dlopen would crash on (truncated) or refuse with a misleading
    // message (another arch: "No such file") is not loaded.
    const elf = elfInfo(file)
    const notElf = elf.problem || (elf.arch !== arch ? `built for ${elf.arch}, this process is ${arch}` : null)
    if (notElf) {
      status.tried.push({ file, error: `not loaded: the file is ${notElf}` })
      return null
    }
    // process.dlopen, not require(): the path is already resolved.
    const mod = { exports: {} }
    process.dlopen(mod, file)
    const problem = checkAddon(mod.exports)
    if (problem) {
      status.tried.push({ file, error: problem })
      return null
    }
    Object.assign(status, { loaded: true, file, target })
    return mod.exports
  } catch (err) {
    status.tried.push({ file, error: loadFailure(file, err, arch) })
    return null
  }
}

function load(env, platform, arch) {
  const status = { loaded: false, file: null, target: null, libc: null, reason: null, tried: [] }
  const forced = Object.hasOwn(env, 'OOMGUARD_NATIVE') ? String(env.OOMGUARD_NATIVE).trim() : ''
  if (platform !== 'linux') return unavailable(status, `no native addon off Linux (this is ${platform}); the host's numbers are used`, false)
  if (forced === '0') return unavailable(status, 'OOMGUARD_NATIVE=0: the native addon is not loaded', false)
  const { libc, how } = detectLibc()
  status.libc = libc
  const libcs = libc ? [libc] : ['gnu', 'musl']
  const targets = libcs.map((l) => `linux-${arch}-${l}`)
  const detected = `linux ${arch}, libc ${libc === 'gnu' ? 'glibc' : libc || 'unknown'} (${how})`
  if (!targets.some((t) => TARGETS.includes(t))) {
    return unavailable(status, `no binary is built for ${detected}; built: ${TARGETS.join(', ')}`, true)
  }
  // napi-rs's own override: this one file and no other (tests, vendored builds).
  const explicit = Object.hasOwn(env, 'NAPI_RS_NATIVE_LIBRARY_PATH') ? String(env.NAPI_RS_NATIVE_LIBRARY_PATH) : ''
  if (explicit) {
    const target = TARGETS.find((t) => path.basename(explicit) === `${BINARY}.${t}.node`) || null
    const addon = attempt(status, path.resolve(explicit), target, arch)
    if (addon) return { addon, status, warn: false }
  } else {
    for (const target of targets.filter((t) => TARGETS.includes(t))) {
      const local = path.join(PKG_DIR, `${BINARY}.${target}.node`)
      if (!fs.existsSync(local)) status.tried.push({ file: local, error: 'not found' })
      else {
        const addon = attempt(status, local, target, arch)
        if (addon) return { addon, status, warn: false }
      }
      const pkg = `${PKG_NAME}-${target}`
      let file
      try {
        file = require.resolve(pkg, { paths: [PKG_DIR] })
      } catch (err) {
        const notFound = err && err.code === 'MODULE_NOT_FOUND'
        status.tried.push({ file: `${pkg} (package)`, error: notFound ? 'not installed' : String((err && err.message) || err).split('\n')[0] })
        continue
      }
      const addon = attempt(status, file, target, arch)
      if (addon) return { addon, status, warn: false }
    }
  }
  const tried = status.tried.map((t) => `${t.file}: ${t.error}`).join('; ')
  return unavailable(status, `no native addon loaded for ${detected}. Tried ${tried}`, true)
}

/** A loaded addon this package cannot use, or null. */
function checkAddon(addon) {
  // The slot layout is lib/core/slots.json's; an addon built from another
  // version of it would fill slots that the JavaScript side misnames. (Read
  // here rather than through lib/core/reading.js, which the preload never needs.)
  const NAMES = JSON.parse(fs.readFileSync(path.join(__dirname, 'slots.json'), 'utf8')).slots
  let names
  try {
    names = addon.slotNames()
  } catch (err) {
    return `not this version's addon (${(err && err.message) || err})`
  }
  if (!Array.isArray(names) || names.join('\n') !== NAMES.join('\n')) return 'built from another lib/core/slots.json (rebuild it: npm run build)'
  return null
}

// Once per thread (a worker loads its own copy), however often this module
// is loaded there (a cleared require cache).
const kWarned = Symbol.for('oomguard.native.warned')

let result
try {
  result = load(process.env, process.platform, process.arch)
} catch (err) {
  // A bug here must not stop the service either.
  result = { addon: null, status: { loaded: false, file: null, target: null, libc: null, reason: `the loader failed: ${(err && err.message) || err}`, tried: [] }, warn: true }
}
for (const t of result.status.tried) Object.freeze(t)
Object.freeze(result.status.tried)
const status = Object.freeze(result.status)

if (result.warn && !globalThis[kWarned]) {
  try {
    Object.defineProperty(globalThis, kWarned, { value: true, configurable: true })
    process.emitWarning(
      `oomguard: ${status.reason}. Reading the cgroup files from JavaScript instead: getMemoryMetrics() works, watch() polls on a timer, without last words or stall detection. See nativeAddon and docs/internals.md, "Without the native addon".`,
      { code: 'OOMGUARD_NATIVE_UNAVAILABLE' },
    )
  } catch {}
}

module.exports = { addon: result.addon, status, elfInfo, detectLibc, TARGETS }
