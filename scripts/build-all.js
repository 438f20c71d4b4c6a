#!/usr/bin/env node
'use strict'
// `npm run build:all`: the release build for the four Linux platforms, on
// an x86_64 Linux machine, from the package registries alone:
//
//  - linux-x64-gnu: `npm run build` (scripts/build.js: glibc 2.28, zig);
//  - linux-arm64-gnu (glibc 2.28), linux-x64-musl, linux-arm64-musl:
//    `napi build -x` (cargo-zigbuild and zig link) with Debian's Rust 1.96
//    building std for the target (scripts/toolchain.js fetches it).
//
// Each .node lands at the repository root (oomguard.<platform>.node, where
// the loader looks first); `npm run pack:all` (scripts/pack.js) puts each in
// its npm/<platform>/ package. Prints the time and size of each.
//
//   node scripts/build-all.js [linux-arm64-musl ...]   (default: all four)

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { GLIBC, napi, zigPath, haveZigbuild } = require('./build.js')
const { CACHE, PLATFORMS, compilerEnv, runMain } = require('./toolchain.js')

const REPO = path.join(__dirname, '..')
const { binaryName } = require('../package.json').napi
const say = (line) => process.stderr.write(`oomguard build:all: ${line}\n`)

/** Build one platform; throws with what failed. */
function build(platform) {
  const spec = PLATFORMS[platform]
  if (platform === 'linux-x64-gnu') {
    // Exactly `npm run build`, with no fall-back to this machine's glibc.
    const r = spawnSync(process.execPath, [path.join(__dirname, 'build.js')], { cwd: REPO, stdio: 'inherit', env: { ...process.env, OOMGUARD_PLAIN_BUILD: '' } })
    if (r.status !== 0) throw new Error('npm run build failed')
    return
  }
  const PATH = zigPath(CACHE)
  if (!PATH) throw new Error('zig could not be found or fetched')
  const env = compilerEnv({ ...process.env, PATH })
  if (!haveZigbuild(env)) throw new Error('cargo-zigbuild could not be installed')
  const target = spec.libc === 'glibc' ? `${spec.target}.${GLIBC}` : spec.target
  if (!napi(['-x', '--target', target], env, true)) throw new Error(`napi build -x --target ${target} failed`)
}

function main(args) {
  const wanted = args.length ? args : Object.keys(PLATFORMS)
  for (const p of wanted) if (!PLATFORMS[p]) throw new Error(`unknown platform ${p} (one of ${Object.keys(PLATFORMS).join(', ')})`)
  const done = []
  for (const platform of wanted) {
    const file = `${binaryName}.${platform}.node`
    const built = path.join(REPO, file)
    fs.rmSync(built, { force: true }) // a stale one must not pass for a new one
    say(`${platform}: building`)
    const t0 = Date.now()
    build(platform)
    if (!fs.existsSync(built)) throw new Error(`${platform}: the build left no ${file}`)
    done.push(`${platform} ${((Date.now() - t0) / 1000).toFixed(0)} s, ${fs.statSync(built).size} bytes`)
  }
  for (const d of done) say(d)
  return 0
}

if (require.main === module) runMain(main, say)
