'use strict'
// What a release needs from the repository: the license, the package's
// links, and one npm/<platform>/ package per napi target that agrees with
// the main package (version, engines, license). See CONTRIBUTING.md "Releasing".

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

const REPO = path.join(__dirname, '..')
const pkg = require('../package.json')

test('LICENSE is the MIT license package.json names, and it is packed', () => {
  assert.equal(pkg.license, 'MIT')
  assert.match(fs.readFileSync(path.join(REPO, 'LICENSE'), 'utf8'), /^MIT License\n/)
  assert.ok(pkg.files.includes('LICENSE'))
})

test('repository, bugs and homepage are set', () => {
  assert.match(pkg.repository.url, /^git\+https:\/\/.+\.git$/)
  assert.match(pkg.bugs.url, /^https:\/\/.+\/issues$/)
  assert.match(pkg.homepage, /^https:\/\//)
})

test('one npm/ package per napi target, agreeing with the main package', () => {
  const platform = {
    'x86_64-unknown-linux-gnu': ['linux-x64-gnu', 'x64', 'glibc'],
    'aarch64-unknown-linux-gnu': ['linux-arm64-gnu', 'arm64', 'glibc'],
    'x86_64-unknown-linux-musl': ['linux-x64-musl', 'x64', 'musl'],
    'aarch64-unknown-linux-musl': ['linux-arm64-musl', 'arm64', 'musl'],
  }
  const dirs = fs.readdirSync(path.join(REPO, 'npm')).sort()
  assert.deepEqual(dirs, pkg.napi.targets.map((t) => platform[t][0]).sort(), 'npm/ has exactly the targets')
  for (const t of pkg.napi.targets) {
    const [dir, cpu, libc] = platform[t]
    const p = JSON.parse(fs.readFileSync(path.join(REPO, 'npm', dir, 'package.json'), 'utf8'))
    assert.equal(p.name, `${pkg.name}-${dir}`)
    assert.equal(p.version, pkg.version, `${dir}: version`)
    assert.deepEqual(p.os, ['linux'])
    assert.deepEqual(p.cpu, [cpu])
    assert.deepEqual(p.libc, [libc])
    assert.equal(p.main, `${pkg.napi.binaryName}.${dir}.node`)
    assert.deepEqual(p.engines, pkg.engines, `${dir}: engines`)
    assert.equal(p.license, pkg.license)
  }
})

test('the main package carries no binary; the packed one names each platform package at its version', () => {
  assert.ok(!pkg.files.some((f) => f.includes('.node')), `"files" packs no .node: ${JSON.stringify(pkg.files)}`)
  assert.equal(pkg.optionalDependencies, undefined, 'added to the packed copy only (scripts/pack.js): unpublished, they would break npm ci')
  const { PLATFORMS } = require('../scripts/toolchain.js')
  const { optionalDependencies } = require('../scripts/pack.js')
  assert.deepEqual(
    Object.values(PLATFORMS)
      .map((p) => p.target)
      .sort(),
    [...pkg.napi.targets].sort(),
    'scripts/toolchain.js builds the napi targets',
  )
  assert.deepEqual(optionalDependencies(), Object.fromEntries(fs.readdirSync(path.join(REPO, 'npm')).map((d) => [`${pkg.name}-${d}`, pkg.version])))
  for (const [dir, p] of Object.entries(PLATFORMS)) {
    const m = JSON.parse(fs.readFileSync(path.join(REPO, 'npm', dir, 'package.json'), 'utf8'))
    assert.deepEqual([m.cpu, m.libc], [[p.cpu], [p.libc]], `npm/${dir} agrees with scripts/toolchain.js`)
  }
})

test('the release workflow builds and packs with the same commands as .ci/run', () => {
  const yml = fs.readFileSync(path.join(REPO, '.github/workflows/release.yml'), 'utf8')
  const ci = fs.readFileSync(path.join(REPO, '.ci/run'), 'utf8')
  for (const cmd of ['npm run build:all', 'npm run pack:all']) {
    assert.ok(yml.includes(`run: ${cmd}`), `release.yml runs ${cmd}`)
    assert.ok(ci.includes(cmd), `.ci/run runs ${cmd}`)
  }
})
