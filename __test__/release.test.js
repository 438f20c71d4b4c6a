'use strict'
// What a release needs from the repository: the license, the package's
// links, and one npm/<platform>/ package per napi target that agrees with
// the main package (version, engines, license). See README "Releasing".

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
