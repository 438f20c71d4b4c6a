#!/usr/bin/env node
'use strict'
// `npm run build`: the release build of the addon. On Linux (x64, arm64) it links
// against glibc 2.28, as Node's own Linux binaries do, so the .node loads on
// Debian 10+, Ubuntu 20.04+ and RHEL 8+: `napi build -x` with
// cargo-zigbuild and zig, fetched on first use (cargo-zigbuild from
// crates.io into ~/.cargo/bin, zig from PyPI's ziglang into a cache folder).
// When they cannot be had, it builds against this machine's glibc and says
// so in one line. Without Rust it says what to do in one line.
//
//   node scripts/build.js [--debug] [--plain]
//   --debug  a debug build (always against this machine's glibc)
//   --plain  skip the glibc 2.28 toolchain
// OOMGUARD_PLAIN_BUILD=1 is --plain.

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const REPO = path.join(__dirname, '..')
const GLIBC = '2.28'
const ARCH = { x64: 'x86_64', arm64: 'aarch64' }[process.arch]
const TARGET = `${ARCH}-unknown-linux-gnu`
const args = process.argv.slice(2)
const debug = args.includes('--debug')
const plain = args.includes('--plain') || process.env.OOMGUARD_PLAIN_BUILD === '1'
const say = (line) => process.stderr.write(`oomguard build: ${line}\n`)

function run(cmd, argv, env = process.env, quiet = false) {
  const r = spawnSync(cmd, argv, { cwd: REPO, env, stdio: quiet ? 'pipe' : 'inherit', encoding: 'utf8' })
  return r.error ? { status: null, error: r.error, stdout: '', stderr: '' } : r
}

const works = (cmd, argv, env) => run(cmd, argv, env, true).status === 0

function napi(extra, env, release = !debug) {
  const cli = path.join(REPO, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
  const r = run(process.execPath, [cli, 'build', '--platform', ...(release ? ['--release'] : []), ...extra], env)
  return r.status === 0
}

/** zig on PATH, else the ziglang wheel in the cache (installed now if missing); the PATH to use, or null. */
function zigPath(cache) {
  if (works('zig', ['version'])) return process.env.PATH
  const dir = path.join(cache, 'ziglang')
  const bin = path.join(dir, 'ziglang')
  const withZig = `${bin}${path.delimiter}${process.env.PATH}`
  if (fs.existsSync(path.join(bin, 'zig')) && works('zig', ['version'], { ...process.env, PATH: withZig })) return withZig
  say('fetching zig (python3 -m pip install ziglang) for the glibc 2.28 build')
  fs.mkdirSync(cache, { recursive: true })
  // Into a folder of its own, then renamed: two builds at once do not mix.
  const tmp = `${dir}.${process.pid}`
  fs.rmSync(tmp, { recursive: true, force: true })
  const r = run('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--target', tmp, 'ziglang'], process.env, true)
  if (r.status !== 0) {
    fs.rmSync(tmp, { recursive: true, force: true })
    return null
  }
  fs.rmSync(dir, { recursive: true, force: true })
  try {
    fs.renameSync(tmp, dir)
  } catch {
    fs.rmSync(tmp, { recursive: true, force: true }) // another build put it there first
  }
  return works('zig', ['version'], { ...process.env, PATH: withZig }) ? withZig : null
}

/** cargo-zigbuild, installed now (cargo install) if missing. */
function haveZigbuild(env) {
  if (works('cargo-zigbuild', ['--version'], env)) return true
  say('installing cargo-zigbuild (cargo install --locked cargo-zigbuild; once, a few minutes) for the glibc 2.28 build')
  return run('cargo', ['install', '--locked', 'cargo-zigbuild'], env).status === 0 && works('cargo-zigbuild', ['--version'], env)
}

/** musl (Alpine): there is no glibc to target; build for this machine. */
function isMusl() {
  const report = process.report && process.report.getReport ? process.report.getReport() : null
  return !!(report && report.header && !report.header.glibcVersionRuntime)
}

function main() {
  if (!works('cargo', ['--version'])) {
    say('Rust is not installed (no cargo on PATH): install Rust (rustup, https://rustup.rs) or use the published package (npm install oomguard)')
    return 1
  }
  const portable = !debug && !plain && process.platform === 'linux' && ARCH !== undefined && !isMusl()
  if (portable) {
    const cache = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'oomguard-build')
    const PATH = zigPath(cache)
    const env = PATH && { ...process.env, PATH }
    const why = !PATH ? 'zig could not be found or fetched' : !haveZigbuild(env) ? 'cargo-zigbuild could not be installed' : null
    if (why === null) {
      if (napi(['-x', '--target', `${TARGET}.${GLIBC}`], env)) return 0
      say(`the glibc ${GLIBC} build failed (above): building against this machine's glibc instead; the .node will not load where glibc is older than here`)
      return napi([]) ? 0 : 1
    }
    say(`${why}: building against this machine's glibc instead; the .node will not load where glibc is older than here (OOMGUARD_PLAIN_BUILD=1 skips the attempt)`)
  }
  return napi([]) ? 0 : 1
}

module.exports = { GLIBC, napi, zigPath, haveZigbuild, say }

if (require.main === module) process.exitCode = main()
