#!/usr/bin/env node
'use strict'
// `npm run pack:all`: the five tarballs npm users get, into one folder:
//
//  - oomguard-<version>.tgz, the main package: no binary of any platform,
//    with optionalDependencies on the four platform packages at its own
//    version (added here, to the packed copy only: in the repository they
//    would make `npm ci` look for packages not yet published);
//  - oomguard-linux-<cpu>-<libc>-<version>.tgz, one per platform
//    (npm/<platform>/, its .node from `npm run build:all`), each with os,
//    cpu and libc so npm installs only the one that fits.
//
//   node scripts/pack.js [--out DIR] [--platform P]... [--json]
//   --platform  only these platform packages (default: all four; `none`: the main package alone)
//   --json      print { main, platforms: { <platform>: tarball }, sizes } on stdout

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { PLATFORMS } = require('./toolchain.js')

const REPO = path.join(__dirname, '..')
const pkg = require('../package.json')

/** npm, as the node running this script has it (see __test__/helpers/npm.js). */
function npm(args, cwd) {
  const cli = path.join(path.dirname(fs.realpathSync(process.execPath)), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js')
  const env = { ...process.env, npm_config_update_notifier: 'false' }
  return fs.existsSync(cli) ? execFileSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', env }) : execFileSync('npm', args, { cwd, encoding: 'utf8', env })
}

/** `npm pack` of `dir` into `out`: the tarball's path. */
function packDir(dir, out) {
  const [r] = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', out, dir], REPO))
  return path.join(out, r.filename)
}

/** The optionalDependencies the published main package names: each platform package at this version. */
function optionalDependencies() {
  const out = {}
  for (const p of Object.keys(PLATFORMS)) out[`${pkg.name}-${p}`] = pkg.version
  return out
}

function packMain(out) {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-pack-'))
  try {
    const first = packDir(REPO, stage)
    const dir = path.join(stage, 'package')
    execFileSync('tar', ['-xzf', first, '-C', stage])
    fs.rmSync(first)
    const found = []
    const walk = (d) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(d, e.name))
        else if (e.name.endsWith('.node')) found.push(path.relative(dir, path.join(d, e.name)))
      }
    }
    walk(dir)
    if (found.length) throw new Error(`the main package would carry ${found.join(', ')}: binaries go in npm/<platform>/ only`)
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
    manifest.optionalDependencies = optionalDependencies()
    fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
    return packDir(dir, out)
  } finally {
    fs.rmSync(stage, { recursive: true, force: true })
  }
}

function packPlatform(platform, out) {
  const dir = path.join(REPO, 'npm', platform)
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
  if (manifest.version !== pkg.version) throw new Error(`npm/${platform}: version ${manifest.version}, the main package's is ${pkg.version}`)
  // The build at the repository root (npm run build:all) is the one packed.
  const built = path.join(REPO, manifest.main)
  if (!fs.existsSync(built)) throw new Error(`no ${manifest.main} for npm/${platform}: npm run build:all first`)
  fs.copyFileSync(built, path.join(dir, manifest.main))
  return packDir(dir, out)
}

function main(args) {
  const at = args.indexOf('--out')
  const out = path.resolve(at >= 0 ? args[at + 1] : REPO)
  fs.mkdirSync(out, { recursive: true })
  const result = { main: packMain(out), platforms: {}, sizes: {} }
  const chosen = args.flatMap((a, i) => (args[i - 1] === '--platform' ? [a] : []))
  for (const p of chosen) if (p !== 'none' && !PLATFORMS[p]) throw new Error(`unknown platform ${p}`)
  for (const p of chosen.length ? chosen.filter((x) => x !== 'none') : Object.keys(PLATFORMS)) result.platforms[p] = packPlatform(p, out)
  for (const f of [result.main, ...Object.values(result.platforms)]) result.sizes[path.basename(f)] = fs.statSync(f).size
  if (args.includes('--json')) process.stdout.write(`${JSON.stringify(result)}\n`)
  else for (const [f, n] of Object.entries(result.sizes)) process.stderr.write(`oomguard pack: ${f} ${(n / 1000).toFixed(0)} kB\n`)
  return 0
}

/** Pack from another script: `pack({ out, platforms })` returns what --json prints. */
function pack({ out, platforms }) {
  const args = ['--out', out, '--json', ...(platforms || []).flatMap((p) => ['--platform', p])]
  const r = require('node:child_process').spawnSync(process.execPath, [__filename, ...args], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`scripts/pack.js ${args.join(' ')}: exit ${r.status}\n${r.stderr}`)
  return JSON.parse(r.stdout)
}

module.exports = { optionalDependencies, pack }

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2))
  } catch (e) {
    process.stderr.write(`oomguard pack: ${e.message}\n`)
    process.exitCode = 1
  }
}
