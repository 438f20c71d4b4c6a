'use strict'
// The package as users meet it: `npm pack`, install the tarball into a fresh
// folder outside the repository, then require() and import it there, and
// preload its register by absolute path and by file: URL, as Dockerfiles do.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { pathToFileURL } = require('node:url')
const { execFileSync, spawnSync } = require('node:child_process')

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-pack-'))
test.after(() => fs.rmSync(work, { recursive: true, force: true }))

const { npm } = require('./helpers/npm')
const { pack, optionalDependencies } = require('../scripts/pack.js')

/** This machine's platform package, as napi names it (linux-x64-gnu). */
const HOST = `linux-${process.arch}-${process.report.getReport().header.glibcVersionRuntime ? 'gnu' : 'musl'}`

/**
 * Pack once (scripts/pack.js: the main package and this machine's platform
 * package) and install both tarballs into `work/app`, offline, as npm
 * installs the main package with its optional dependency: `{ files, manifest, app }`.
 */
let installed = null
function install() {
  if (installed) return installed
  const packed = pack({ out: work, platforms: [HOST] })
  const app = path.join(work, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
  npm(['install', '--no-audit', '--no-fund', '--offline', packed.main, packed.platforms[HOST]], app)
  const files = execFileSync('tar', ['-tzf', packed.main], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''))
  const manifest = JSON.parse(execFileSync('tar', ['-xOzf', packed.main, 'package/package.json'], { encoding: 'utf8' }))
  installed = { files, manifest, app }
  return installed
}

/** The environment of a child: no OOMGUARD_* or NODE_OPTIONS from outside. */
function childEnv(extra = {}) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OOMGUARD_') && k !== 'NODE_OPTIONS') env[k] = v
  return { ...env, ...extra }
}

test('npm pack, install elsewhere, require and import', { timeout: 180_000 }, () => {
  const { files, app } = install()
  for (const f of ['index.js', 'index.d.ts', 'lib/index.js', 'lib/index.mjs', 'lib/index.d.ts', 'register.js', 'register.mjs', 'package.json', 'README.md']) {
    assert.ok(files.includes(f), `${f} in the tarball`)
  }
  // The README links into docs/: every page ships with it.
  for (const f of fs.readdirSync(path.join(__dirname, '..', 'docs'))) assert.ok(files.includes(`docs/${f}`), `docs/${f} in the tarball`)
  assert.deepEqual(
    files.filter((f) => f.endsWith('.node')),
    [],
    'no binary of any platform in the main package',
  )
  assert.ok(!files.some((f) => f.startsWith('__test__/') || f.startsWith('target/') || f.startsWith('scripts/')), 'no tests, scripts or build output')
  // The four platform packages at this version (release.test.js checks the list against npm/).
  assert.deepEqual(installed.manifest.optionalDependencies, optionalDependencies())
  assert.equal(Object.keys(installed.manifest.optionalDependencies).length, 4)

  const cjs = `const { getMemoryMetrics } = require('oomguard');
    const r = getMemoryMetrics();
    const maps = require('fs').readFileSync('/proc/self/maps', 'utf8').split('\\n').map((l) => l.split(/\\s+/).slice(5).join(' '))
    console.log(JSON.stringify({ limit: r.limitBytes, rss: r.rssBytes, heap: r.v8.heapUsedBytes, file: require.resolve('oomguard'), loaded: [...new Set(maps.filter((f) => f.endsWith('.node')))] }))`
  const esm = `import { getMemoryMetrics } from 'oomguard';
    import oomguard from 'oomguard';
    const r = getMemoryMetrics(process.memoryUsage());
    console.log(JSON.stringify({ limit: r.limitBytes, rss: r.rssBytes, heap: r.v8.heapUsedBytes, same: oomguard.getMemoryMetrics === getMemoryMetrics }))`
  fs.writeFileSync(path.join(app, 'a.cjs'), cjs)
  fs.writeFileSync(path.join(app, 'b.mjs'), esm)
  const a = JSON.parse(execFileSync(process.execPath, ['a.cjs'], { cwd: app, encoding: 'utf8' }))
  const b = JSON.parse(execFileSync(process.execPath, ['b.mjs'], { cwd: app, encoding: 'utf8' }))
  assert.ok(a.file.startsWith(path.join(app, 'node_modules', 'oomguard')), `loaded from the install: ${a.file}`)
  assert.deepEqual(a.loaded, [path.join(app, 'node_modules', `oomguard-${HOST}`, `oomguard.${HOST}.node`)], 'the binary of the platform package')
  for (const r of [a, b]) {
    assert.ok(r.limit > 0 && r.rss > 0 && r.heap > 0, JSON.stringify(r))
  }
  assert.equal(b.same, true)
})

test('the register preloaded by absolute path and by file: URL, from the installed package', { timeout: 180_000 }, () => {
  const { app } = install()
  const pkg = path.join(app, 'node_modules', 'oomguard')
  // The app runs from a folder with no node_modules, as a Dockerfile's CMD
  // may: only the preload path leads to the package.
  const elsewhere = fs.mkdtempSync(path.join(work, 'elsewhere-'))
  const report = `const s = globalThis[Symbol.for('oomguard.register')];
    console.log(JSON.stringify({ started: s ? s.started : null, reason: s ? s.reason : null,
      thresholds: s && s.monitor ? s.monitor.thresholds : null, problems: s ? s.problems : null,
      preloaded: Object.keys(require.cache).filter((f) => f.includes('/node_modules/')) }))`
  fs.writeFileSync(path.join(elsewhere, 'app.js'), report)
  fs.writeFileSync(path.join(elsewhere, 'app.mjs'), `import { createRequire } from 'node:module'\nconst require = createRequire(import.meta.url)\n${report}`)
  const register = path.join(pkg, 'register')
  const fileUrl = pathToFileURL(path.join(pkg, 'register.mjs')).href
  const cases = [
    { name: `-r ${register}`, args: ['-r', register, 'app.js'] },
    { name: `NODE_OPTIONS=-r ${register}`, args: ['app.js'], env: { NODE_OPTIONS: `-r ${register}` } },
    { name: `--import ${fileUrl}`, args: ['--import', fileUrl, 'app.mjs'] },
    { name: `NODE_OPTIONS=--import ${fileUrl}`, args: ['app.mjs'], env: { NODE_OPTIONS: `--import ${fileUrl}` } },
    { name: `--import ${path.join(pkg, 'register.mjs')}`, args: ['--import', path.join(pkg, 'register.mjs'), 'app.mjs'] },
  ]
  for (const c of cases) {
    const r = spawnSync(process.execPath, c.args, { cwd: elsewhere, encoding: 'utf8', env: childEnv({ OOMGUARD_THRESHOLDS: '0.7,0.99', ...c.env }), timeout: 30_000 })
    assert.equal(r.status, 0, `${c.name}: exit ${r.status}\n${r.stderr}`)
    const info = JSON.parse(r.stdout)
    assert.equal(info.started, true, `${c.name}: the monitor started (${JSON.stringify(info)})`)
    assert.deepEqual(info.thresholds, [0.7, 0.99], `${c.name}: the settings come from the environment`)
    assert.deepEqual(info.problems, [])
    assert.ok(
      info.preloaded.length > 0 && info.preloaded.every((f) => f.startsWith(pkg + path.sep) || f.startsWith(path.join(app, 'node_modules', `oomguard-${HOST}`) + path.sep)),
      `${c.name}: the installed package (and its platform package) was loaded, nothing else: ${JSON.stringify(info.preloaded)}`,
    )
  }
  // Without the root register.js, the first case is MODULE_NOT_FOUND: make sure the
  // test would see that (the same spawn with a path that does not exist).
  const missing = spawnSync(process.execPath, ['-r', path.join(pkg, 'no-such-register'), 'app.js'], { cwd: elsewhere, encoding: 'utf8', env: childEnv(), timeout: 30_000 })
  assert.notEqual(missing.status, 0)
  assert.match(missing.stderr, /MODULE_NOT_FOUND|Cannot find module/)
})
