'use strict'
// A copy of node, and of this package, whose pages are in no page cache: a
// process started from it reads its own code for the first time inside its
// cgroup, so those pages are charged there, as in a container started from a
// freshly pulled image. At the limit the kernel then reclaims node's code,
// node faults it straight back, and the OOM killer may never come (a stall).
//
// The copies live in a fresh directory under os.tmpdir(); remove() deletes it.
// The cache is dropped with `dd iflag=nocache count=0` (GNU coreutils: a
// posix_fadvise(POSIX_FADV_DONTNEED) over the whole file) after an fsync, so
// no page is dirty and every one can go.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { REPO_ROOT } = require('./cgroup')

const PACKAGE_FILES = ['package.json', 'index.js', 'lib']

function copySynced(from, to) {
  fs.copyFileSync(from, to)
  fs.chmodSync(to, fs.statSync(from).mode)
  const fd = fs.openSync(to, 'r')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

function dropCache(file) {
  execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'], { stdio: 'ignore' })
}

/** The filesystem type os.tmpdir() is on (from /proc/self/mountinfo), or null. */
function tmpFilesystem(dir) {
  let best = null
  try {
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const sep = line.indexOf(' - ')
      if (sep < 0) continue
      const mount = line
        .slice(0, sep)
        .split(' ')[4]
        .replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)))
      const type = line.slice(sep + 3).split(' ')[0]
      if ((dir === mount || dir.startsWith(mount === '/' ? '/' : `${mount}/`)) && (best === null || mount.length >= best.mount.length)) {
        best = { mount, type }
      }
    }
  } catch {}
  return best && best.type
}

/**
 * Why a cold copy cannot be made here, or null. A tmpfs page is never
 * dropped (it is the file), so the copy would stay warm.
 */
function coldNodeUnsupported() {
  const dir = fs.realpathSync(os.tmpdir())
  const type = tmpFilesystem(dir)
  if (type === 'tmpfs' || type === 'ramfs') return `${dir} is on ${type}: a copy of node there cannot be made cold`
  try {
    execFileSync('dd', ['--version'], { stdio: 'ignore' })
  } catch {
    return 'GNU dd (coreutils) is needed to drop a file from the page cache'
  }
  return null
}

/**
 * Make the cold copies. Returns `{ node, pkg, dir, remove() }`: `node` the
 * executable, `pkg` a directory to require() the package from.
 */
function coldNode() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-cold-'))
  try {
    const node = path.join(dir, 'node')
    copySynced(process.execPath, node)
    const pkg = path.join(dir, 'pkg')
    fs.mkdirSync(pkg)
    const files = []
    for (const name of PACKAGE_FILES) {
      fs.cpSync(path.join(REPO_ROOT, name), path.join(pkg, name), { recursive: true })
    }
    for (const name of fs.readdirSync(REPO_ROOT).filter((f) => f.endsWith('.node'))) {
      copySynced(path.join(REPO_ROOT, name), path.join(pkg, name))
      files.push(path.join(pkg, name))
    }
    for (const f of [node, ...files]) dropCache(f)
    return {
      node,
      pkg,
      dir,
      remove() {
        fs.rmSync(dir, { recursive: true, force: true })
      },
    }
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw e
  }
}

module.exports = { coldNode, coldNodeUnsupported, dropCache }
