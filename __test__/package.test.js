'use strict'
// The package as users meet it: `npm pack`, install the tarball into a fresh
// folder outside the repository, then require() and import it there.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const REPO = path.join(__dirname, '..')

test('npm pack, install elsewhere, require and import', { timeout: 180_000 }, (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-pack-'))
  t.after(() => fs.rmSync(work, { recursive: true, force: true }))
  const npm = (args, cwd) =>
    execFileSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } })

  const packed = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', work], REPO))
  const files = packed[0].files.map((f) => f.path)
  for (const f of ['index.js', 'index.d.ts', 'lib/index.js', 'lib/index.mjs', 'lib/index.d.ts', 'package.json', 'README.md']) {
    assert.ok(files.includes(f), `${f} in the tarball`)
  }
  assert.ok(files.some((f) => f.endsWith('.node')), 'the native addon is in the tarball')
  assert.ok(!files.some((f) => f.startsWith('__test__/') || f.startsWith('target/')), 'no tests or build output')

  const app = path.join(work, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
  npm(['install', '--no-audit', '--no-fund', '--offline', path.join(work, packed[0].filename)], app)

  const cjs = `const { getMemoryMetrics } = require('oomguard');
    const r = getMemoryMetrics();
    console.log(JSON.stringify({ limit: r.limitBytes, rss: r.rssBytes, heap: r.v8.heapUsedBytes, file: require.resolve('oomguard') }))`
  const esm = `import { getMemoryMetrics } from 'oomguard';
    import oomguard from 'oomguard';
    const r = getMemoryMetrics(process.memoryUsage());
    console.log(JSON.stringify({ limit: r.limitBytes, rss: r.rssBytes, heap: r.v8.heapUsedBytes, same: oomguard.getMemoryMetrics === getMemoryMetrics }))`
  fs.writeFileSync(path.join(app, 'a.cjs'), cjs)
  fs.writeFileSync(path.join(app, 'b.mjs'), esm)
  const a = JSON.parse(execFileSync(process.execPath, ['a.cjs'], { cwd: app, encoding: 'utf8' }))
  const b = JSON.parse(execFileSync(process.execPath, ['b.mjs'], { cwd: app, encoding: 'utf8' }))
  assert.ok(a.file.startsWith(path.join(app, 'node_modules', 'oomguard')), `loaded from the install: ${a.file}`)
  for (const r of [a, b]) {
    assert.ok(r.limit > 0 && r.rss > 0 && r.heap > 0, JSON.stringify(r))
  }
  assert.equal(b.same, true)
})
