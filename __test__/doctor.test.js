'use strict'
// `oomguard doctor`: snapshot tests of its plain and --json output on fixture
// trees, colour, --strict, bad flags, and a live run on this machine.
//
// Snapshots live in __test__/snapshots/ and are compared exactly. After an
// intended change to the output, rewrite them with
//   UPDATE_SNAPSHOTS=1 node --test __test__/doctor.test.js
// and review the diff. What varies between runs and machines is fixed or
// masked: the heap limit is passed with --heap-limit (the doctor's own
// depends on the node binary and flags), the fixture trees are copied to a
// path of fixed length (/tmp/oomguard-doctor-XXXXXX: paths are part of the
// text and change how it wraps), and the JSON's time is masked.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { buildReport, diagnose } = require('../lib/integrations/doctor.js')
const { render, useColor } = require('../lib/integrations/doctor-render.js')
const { getMemoryMetrics } = require('..')

const REPO = path.join(__dirname, '..')
const BIN = path.join(REPO, 'bin', 'oomguard.js')
const FIXTURES = path.join(__dirname, 'fixtures')
const SNAPSHOTS = path.join(__dirname, 'snapshots')
const UPDATE = process.env.UPDATE_SNAPSHOTS === '1'

// Each tree with a heap limit that exercises a different verdict. The heap
// advice is modelled for the Node version given (with --root nothing is
// measured), so the text is the same under every node that runs the tests.
const NODE = ['--node-version', '24.19.0']
const CASES = [
  { tree: 'v1-hybrid-busy', args: ['--heap-limit', '192', ...NODE] }, // 75% of 256 MiB: ok
  { tree: 'v2-busy', args: ['--heap-limit', '259', ...NODE] }, // node's floor in a 256 MiB container: above the limit
  // 78% of the 64 MiB limit: in the band, but two heaps do not fit. (No
  // HEAP_LIMIT_* diagnosis here: its advice, computed by the running node,
  // would name --max-old-space-size-percentage on nodes that have it.)
  { tree: 'v2-oom-after', args: ['--heap-limit', '50', '--workers', '1', '--node-version', '20.20.2'] },
  { tree: 'no-memory-controller', args: ['--heap-limit', '2048', ...NODE] }, // no container limit
  { tree: 'unreadable', args: ['--heap-limit', '144', ...NODE] }, // memory.stat and memory.events unreadable
]

// A copy of the fixture trees at a path of fixed length.
const WORK = fs.mkdtempSync('/tmp/oomguard-doctor-')
const MASKED_WORK = '/tmp/oomguard-doctor-XXXXXX'
assert.equal(WORK.length, MASKED_WORK.length)
for (const c of CASES) fs.cpSync(path.join(FIXTURES, c.tree), path.join(WORK, c.tree), { recursive: true })
test.after(() => fs.rmSync(WORK, { recursive: true, force: true }))

/** The environment of a doctor run: no colour variables, no NODE_OPTIONS. */
function cleanEnv(extra) {
  const env = { ...process.env }
  for (const k of ['FORCE_COLOR', 'NO_COLOR', 'NODE_OPTIONS', 'NODE_DISABLE_COLORS']) delete env[k]
  return { ...env, ...extra }
}

function doctor(args, env) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: cleanEnv(env), timeout: 30_000 })
  if (r.error) throw r.error
  return r
}

const mask = (s) => s.split(WORK).join(MASKED_WORK)

function compareSnapshot(name, actual) {
  const file = path.join(SNAPSHOTS, name)
  if (UPDATE) {
    fs.mkdirSync(SNAPSHOTS, { recursive: true })
    fs.writeFileSync(file, actual)
    return
  }
  assert.ok(fs.existsSync(file), `snapshot ${name} is missing: run with UPDATE_SNAPSHOTS=1 to write it`)
  assert.equal(actual, fs.readFileSync(file, 'utf8'), `output differs from __test__/snapshots/${name} (UPDATE_SNAPSHOTS=1 rewrites it)`)
}

const ANSI = /\u001b\[[0-9;]*m/

const snapName = (c, ext) => `doctor-${c.tree}.${ext}`

for (const c of CASES) {
  test(`snapshot: doctor --root ${c.tree} ${c.args.join(' ')} (plain)`, () => {
    const r = doctor(['doctor', '--root', path.join(WORK, c.tree), ...c.args])
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stderr, '')
    assert.doesNotMatch(r.stdout, ANSI, 'piped output has no colour')
    compareSnapshot(snapName(c, 'txt'), mask(r.stdout))
  })

  test(`snapshot: doctor --root ${c.tree} ${c.args.join(' ')} --json`, () => {
    const r = doctor(['doctor', '--json', '--root', path.join(WORK, c.tree), ...c.args])
    assert.equal(r.status, 0, r.stderr)
    const report = JSON.parse(r.stdout)
    assert.match(report.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    report.time = '<time>'
    compareSnapshot(snapName(c, 'json'), `${mask(JSON.stringify(report, null, 2))}\n`)
  })
}

test('the JSON report: statuses, summary, and the recommendation taken from the diagnoses', () => {
  for (const c of CASES) {
    const report = JSON.parse(doctor(['--json', '--root', path.join(WORK, c.tree), ...c.args]).stdout)
    const counts = { pass: 0, warn: 0, fail: 0, manual: 0 }
    for (const ch of report.checks) {
      assert.ok(ch.status in counts, `${c.tree}: ${ch.id} has status ${ch.status}`)
      counts[ch.status]++
      if (ch.status === 'manual') assert.ok(ch.howTo, `${c.tree}: ${ch.id} says what to check by hand`)
    }
    assert.deepEqual(report.summary, counts)
    const rec = report.diagnoses.find((d) => d.recommendedMaxOldSpaceSizeMib !== null)
    assert.equal(report.heap.recommendedMaxOldSpaceSizeMib, rec ? rec.recommendedMaxOldSpaceSizeMib : null, c.tree)
    if (rec) assert.equal(report.heap.recommendation, `NODE_OPTIONS="${report.heap.advice.options[0].nodeOptions}"`)
    assert.ok(
      report.checks.some((ch) => ch.id === 'pod-limits' && ch.status === 'manual'),
      'pod limits: by hand',
    )
  }
  // Spot checks of the verdicts the cases were chosen for.
  const status = (tree, args, id) => JSON.parse(doctor(['--json', '--root', path.join(WORK, tree), ...args]).stdout).checks.find((ch) => ch.id === id).status
  assert.equal(status('v1-hybrid-busy', ['--heap-limit', '192'], 'heap-below-limit'), 'pass')
  assert.equal(status('v2-busy', ['--heap-limit', '259'], 'heap-below-limit'), 'fail')
  assert.equal(status('v2-oom-after', ['--heap-limit', '60'], 'native-headroom'), 'warn')
  assert.equal(status('v2-oom-after', ['--heap-limit', '60', '--workers', '1'], 'workers'), 'fail')
  assert.equal(status('v2-oom-after', ['--heap-limit', '60'], 'workers'), 'manual')
  assert.equal(status('v2-oom-after', ['--heap-limit', '60'], 'oom-kills'), 'warn')
  assert.equal(status('unreadable', ['--heap-limit', '144'], 'files-readable'), 'warn')
  assert.equal(status('unreadable', ['--heap-limit', '144'], 'oom-kills'), 'manual')
})

test('colour: FORCE_COLOR=1 adds ANSI codes, NO_COLOR and FORCE_COLOR=0 keep them out', () => {
  const root = path.join(WORK, 'v2-busy')
  const plain = doctor(['--root', root, '--heap-limit', '259']).stdout
  const forced = doctor(['--root', root, '--heap-limit', '259'], { FORCE_COLOR: '1' }).stdout
  assert.match(forced, ANSI)
  assert.match(forced, /\u001b\[31m\[FAIL\]\u001b\[39m/, 'a failed check is red')
  assert.match(forced, /\u001b\[32m\[pass\]\u001b\[39m/, 'a passed check is green')
  assert.match(forced, /\u2588/, 'the bar is drawn with blocks')
  assert.doesNotMatch(plain, ANSI)
  assert.doesNotMatch(doctor(['--root', root, '--heap-limit', '259'], { NO_COLOR: '1' }).stdout, ANSI)
  assert.doesNotMatch(doctor(['--root', root, '--heap-limit', '259'], { FORCE_COLOR: '0' }).stdout, ANSI)
  assert.doesNotMatch(doctor(['--json', '--root', root, '--heap-limit', '259'], { FORCE_COLOR: '1' }).stdout, ANSI, '--json is never coloured')

  // Without the codes, the coloured text is the plain text except for the bar's characters.
  const strip = (s) => s.replace(/\u001b\[[0-9;]*m/g, '')
  const a = strip(forced).split('\n')
  const b = plain.split('\n')
  assert.equal(a.length, b.length)
  const barLine = /^ {2}\[|^ {3}[a-z.u] |^ {3}[\u2588\u2591] /
  a.forEach((line, i) => {
    if (!barLine.test(b[i])) assert.equal(line, b[i], `line ${i + 1}`)
  })
})

test('useColor(): FORCE_COLOR wins, then NO_COLOR, then the TTY', () => {
  const tty = { isTTY: true }
  const pipe = { isTTY: false }
  assert.equal(useColor(tty, {}), true)
  assert.equal(useColor(pipe, {}), false)
  assert.equal(useColor(tty, { NO_COLOR: '1' }), false)
  assert.equal(useColor(tty, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not count')
  assert.equal(useColor(tty, { TERM: 'dumb' }), false)
  assert.equal(useColor(pipe, { FORCE_COLOR: '1' }), true)
  assert.equal(useColor(pipe, { FORCE_COLOR: '' }), true)
  assert.equal(useColor(tty, { FORCE_COLOR: '0' }), false)
  assert.equal(useColor(tty, { FORCE_COLOR: 'false' }), false)
  assert.equal(useColor(pipe, { FORCE_COLOR: '1', NO_COLOR: '1' }), true)
})

test('--strict: exit 1 when a check fails, 0 otherwise', () => {
  assert.equal(doctor(['--strict', '--root', path.join(WORK, 'v2-busy'), '--heap-limit', '259']).status, 1)
  assert.equal(doctor(['--root', path.join(WORK, 'v2-busy'), '--heap-limit', '259']).status, 0, 'without --strict a failed check still exits 0')
  assert.equal(doctor(['--strict', '--json', '--root', path.join(WORK, 'v2-busy'), '--heap-limit', '259']).status, 1)
  assert.equal(doctor(['--strict', '--root', path.join(WORK, 'v1-hybrid-busy'), '--heap-limit', '192']).status, 0)
  assert.equal(doctor(['--strict', '--root', path.join(WORK, 'no-memory-controller'), '--heap-limit', '2048']).status, 0, 'warnings and checks by hand do not fail')
  assert.equal(doctor(['report', '--strict', '--root', path.join(WORK, 'v2-busy'), '--heap-limit=259']).status, 1, '`report` is an alias; --flag=value works')
})

test('bad arguments: one clear line, the usage, exit 2', () => {
  const cases = [
    [['--bogus'], 'oomguard: unknown option: --bogus'],
    [['frobnicate'], 'oomguard: unknown command: frobnicate'],
    [['--heap-limit'], 'oomguard: --heap-limit needs a value'],
    [['--heap-limit', 'lots'], 'oomguard: --heap-limit must be a positive number of MiB, got "lots"'],
    [['--heap-limit', '-5'], 'oomguard: --heap-limit must be a positive number of MiB, got "-5"'],
    [['--workers', '1.5'], 'oomguard: --workers must be a whole number (0 or more), got "1.5"'],
    [['--root', '/nonexistent/oomguard'], 'oomguard: --root /nonexistent/oomguard: not a directory'],
    [['--json=yes'], 'oomguard: --json takes no value'],
    [['doctor', 'doctor'], 'oomguard: unexpected argument: doctor'],
  ]
  for (const [args, line] of cases) {
    const r = doctor(args)
    assert.equal(r.status, 2, `${args.join(' ')}: exit 2`)
    assert.equal(r.stdout, '', `${args.join(' ')}: nothing on stdout`)
    const lines = r.stderr.split('\n')
    assert.equal(lines[0], line)
    assert.equal(lines[1], '')
    assert.match(lines[2], /^usage: oomguard /)
  }
  const help = doctor(['--help'])
  assert.equal(help.status, 0)
  assert.match(help.stdout, /^usage: oomguard \[doctor\] \[options\]/)
  for (const flag of ['--json', '--heap-limit', '--workers', '--root', '--strict', '--help']) assert.ok(help.stdout.includes(flag), flag)
})

test('every bad flag value is exit 2 with one line and the usage: huge, hex, exponent, negative, NaN, Infinity', () => {
  const cases = [
    [['--heap-limit', '1e308'], 'oomguard: --heap-limit must be written in decimal digits (MiB, such as 512 or 1.5), got "1e308"'],
    [['--heap-limit', '0x100'], 'oomguard: --heap-limit must be written in decimal digits (MiB, such as 512 or 1.5), got "0x100"'],
    [['--heap-limit', '1e3'], 'oomguard: --heap-limit must be written in decimal digits (MiB, such as 512 or 1.5), got "1e3"'],
    [['--heap-limit', '9'.repeat(400)], `oomguard: --heap-limit must be at most 1073741824 MiB (1 PiB), got "${'9'.repeat(400)}"`],
    [['--heap-limit', '2000000000'], 'oomguard: --heap-limit must be at most 1073741824 MiB (1 PiB), got "2000000000"'],
    [['--heap-limit', 'NaN'], 'oomguard: --heap-limit must be a positive number of MiB, got "NaN"'],
    [['--heap-limit', 'Infinity'], 'oomguard: --heap-limit must be a positive number of MiB, got "Infinity"'],
    [['--heap-limit', '0'], 'oomguard: --heap-limit must be a positive number of MiB, got "0"'],
    [['--heap-limit', ' 512'], 'oomguard: --heap-limit must be written in decimal digits (MiB, such as 512 or 1.5), got " 512"'],
    [['--heap-limit='], 'oomguard: --heap-limit must be a positive number of MiB, got ""'],
    [['--heap-limit', '-1e308'], 'oomguard: --heap-limit must be a positive number of MiB, got "-1e308"'],
    [['--workers', '0x10'], 'oomguard: --workers must be a whole number (0 or more), got "0x10"'],
    [['--workers', '-1'], 'oomguard: --workers must be a whole number (0 or more), got "-1"'],
    [['--workers', '1e3'], 'oomguard: --workers must be a whole number (0 or more), got "1e3"'],
    [['--workers', 'NaN'], 'oomguard: --workers must be a whole number (0 or more), got "NaN"'],
    [['--workers', '99999999999999999999'], 'oomguard: --workers must be at most 65535, got "99999999999999999999"'],
  ]
  for (const [args, line] of cases) {
    const r = doctor(['--root', path.join(WORK, 'v2-busy'), ...args])
    const what = `${args.join(' ')}: ${r.stderr}`
    assert.equal(r.status, 2, what)
    assert.equal(r.stdout, '', what)
    const lines = r.stderr.split('\n')
    assert.equal(lines[0], line, what)
    assert.equal(lines[1], '')
    assert.match(lines[2], /^usage: oomguard /)
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace')
  }
  // The edges that are fine.
  for (const v of ['1073741824', '0.5', '.5', '512.25']) assert.equal(doctor(['--root', path.join(WORK, 'v2-busy'), '--heap-limit', v, '--json']).status, 0, v)
  assert.equal(doctor(['--root', path.join(WORK, 'v2-busy'), '--heap-limit', '259', '--workers', '65535', '--json']).status, 0)
})

/** Run the doctor with its stdout on a pipe whose reading end is closed before it writes. */
function doctorIntoClosedPipe(args) {
  const { spawn } = require('node:child_process')
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.destroy() // our end goes away: the child's write gets EPIPE
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error('the doctor did not exit'))
    }, 20_000)
    child.on('close', (status, signal) => {
      clearTimeout(timer)
      resolve({ status, signal, stderr })
    })
  })
}

test('a reader that goes away (EPIPE: | head, | true) ends the doctor quietly, exit status kept', async () => {
  for (const args of [[], ['--json'], ['--help']]) {
    const r = await doctorIntoClosedPipe(['--root', path.join(WORK, 'v2-busy'), '--heap-limit', '192', ...args])
    assert.equal(r.signal, null)
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`)
    assert.equal(r.stderr, '', `${args.join(' ')}: nothing on stderr`)
  }
  // --strict with a failed check still says so.
  const strict = await doctorIntoClosedPipe(['--strict', '--root', path.join(WORK, 'v2-busy'), '--heap-limit', '259'])
  assert.equal(strict.status, 1, strict.stderr)
  assert.equal(strict.stderr, '')
  // And as a shell runs it.
  const sh = spawnSync('bash', ['-c', `"${process.execPath}" "${BIN}" --root "${path.join(WORK, 'v2-busy')}" --heap-limit 192 | true; echo "status=\${PIPESTATUS[0]}" >&2`], {
    encoding: 'utf8',
    env: cleanEnv(),
    timeout: 30_000,
  })
  assert.equal(sh.stderr, 'status=0\n')
})

test('a full stdout (ENOSPC: > /dev/full) is one line on stderr and exit 1, no stack trace', { skip: fs.existsSync('/dev/full') ? false : 'no /dev/full' }, () => {
  for (const args of [[], ['--json'], ['--help']]) {
    const fd = fs.openSync('/dev/full', 'w')
    try {
      const r = spawnSync(process.execPath, [BIN, '--root', path.join(WORK, 'v2-busy'), '--heap-limit', '192', ...args], {
        encoding: 'utf8',
        env: cleanEnv(),
        stdio: ['ignore', fd, 'pipe'],
        timeout: 30_000,
      })
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`)
      assert.equal(r.stderr, 'oomguard: cannot write to stdout (ENOSPC)\n')
    } finally {
      fs.closeSync(fd)
    }
  }
})

test('live: `node bin/oomguard.js doctor` on this machine exits 0 and prints the cgroup path from /proc/self/cgroup', () => {
  const r = doctor(['doctor'])
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /sizing checklist/)
  assert.match(r.stdout, /from {10}this doctor process \(node v\d+/, "the heap limit is the doctor's own, and it says so")
  let own = null
  try {
    own = fs.readFileSync('/proc/self/cgroup', 'utf8')
  } catch {}
  const m = getMemoryMetrics()
  if (own !== null && m.cgroup) {
    // The memory controller's line on v1, the 0:: line on v2.
    const line = own.split('\n').find((l) => (m.cgroup.version === 1 ? /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l) : l.startsWith('0::')))
    const cgPath = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1)
    assert.ok(r.stdout.includes(`  path          ${cgPath} (from /proc/self/cgroup)`), `${cgPath} in\n${r.stdout}`)
  } else {
    assert.match(r.stdout, /none: no cgroup with the memory controller is visible/)
  }
  const json = JSON.parse(doctor(['--json']).stdout)
  assert.equal(json.heap.from, 'process')
  assert.equal(json.heap.nodeVersion, process.version)
  assert.ok(json.heap.heapSizeLimitBytes > 0)
  assert.equal(doctor(['report']).status, 0, 'report is an alias of doctor')
})

test('the doctor reports the heap limit of NODE_OPTIONS it runs under', () => {
  const r = spawnSync(process.execPath, [BIN, '--json', '--root', path.join(WORK, 'v2-busy')], {
    encoding: 'utf8',
    env: cleanEnv({ NODE_OPTIONS: '--max-old-space-size=144 --max-semi-space-size=1' }),
  })
  const report = JSON.parse(r.stdout)
  assert.equal(report.heap.nodeOptions, '--max-old-space-size=144 --max-semi-space-size=1')
  // 144 MiB of old space and three 1 MiB semi-spaces, on every Node version.
  assert.equal(report.heap.heapSizeLimitBytes, 147 * 1024 * 1024)
  assert.equal(report.heap.verdict, 'pass')
})

test('diagnose() and render() are pure: the same input gives the same output', () => {
  const m = getMemoryMetrics({ heapSizeLimit: 259 * 1024 * 1024 }, { root: path.join(WORK, 'v2-busy') })
  const env = { heapLimitFrom: 'flag' }
  assert.deepEqual(diagnose(m, env), diagnose(m, env))
  assert.equal(render(diagnose(m, env)), render(diagnose(m, env)))
  assert.doesNotMatch(render(diagnose(m, env), { color: false }), ANSI)
  assert.match(render(diagnose(m, env), { color: true }), ANSI)
  assert.throws(() => diagnose(null), TypeError)
  assert.throws(() => diagnose({}), TypeError)
})

test('numbers the kernel did not give are n/a or a check by hand, never a guess', () => {
  // As a core that refuses to stand another number in for the working set reports memory.stat failing.
  const m = getMemoryMetrics({ heapSizeLimit: 144 * 1024 * 1024 }, { root: path.join(WORK, 'unreadable') })
  const partial = { ...m, workingSetBytes: null, basisBytes: null, usageRatio: null, headroomBytes: null }
  const report = diagnose(partial, { heapLimitFrom: 'flag' })
  const usageNow = report.checks.find((c) => c.id === 'usage-now')
  assert.equal(usageNow.status, 'manual')
  assert.match(usageNow.detail, /^Usage is 172\.8 MiB \(67\.5% of the limit\), but the working set .* could not be read\.$/)
  const text = render(report)
  assert.match(text, /^ {2}headroom {6}n\/a$/m)
  assert.match(text, /^ {2}working set {3}n\/a$/m)
  // Nothing at all: no cgroup, no host numbers.
  const empty = diagnose(
    {
      ...partial,
      source: null,
      limitBytes: null,
      cgroup: null,
      usageBytes: null,
      stat: null,
      events: null,
      pressure: null,
      hostTotalBytes: null,
      cgroupLimitBytes: null,
      leafLimitBytes: null,
      highBytes: null,
      diagnoses: [],
    },
    {},
  )
  assert.ok(render(empty).includes('no limit found'))
  assert.equal(empty.summary.fail, 0)
})

test('buildReport() is the report builder; doctor.diagnose is the same function under its earlier name', () => {
  const { doctor } = require('..')
  assert.equal(typeof buildReport, 'function')
  assert.equal(doctor.buildReport, buildReport)
  assert.equal(doctor.diagnose, buildReport)
  assert.equal(diagnose, buildReport)
})

test("the files the doctor names are the core's (declared in lib/core/diagnoses.json, compiled into the addon)", () => {
  const native = require('../index.js')
  const files = { 1: {}, 2: {} }
  for (const [version, fact, file] of native.cgroupFiles()) files[version][fact] = file
  assert.deepEqual(Object.keys(files[1]).sort(), ['failures', 'high', 'limit', 'oomKill'])
  assert.deepEqual(Object.keys(files[2]).sort(), ['failures', 'high', 'limit', 'oomKill'])
  assert.deepEqual(files, require('../lib/core/diagnoses.json').files, 'the addon was built from lib/core/diagnoses.json')
  assert.equal(files[1].failures, 'memory.failcnt')
  assert.equal(files[2].failures, 'memory.events max')
  for (const [fixture, version] of [
    ['v1-oom-after', 1],
    ['v2-oom-after', 2],
  ]) {
    const m = getMemoryMetrics(null, { root: path.join(FIXTURES, fixture) })
    assert.equal(m.cgroup.version, version)
    const report = buildReport(m, { heapLimitFrom: 'flag' })
    assert.equal(report.oomKills.file, files[version].oomKill, fixture)
    const kill = m.diagnoses.find((d) => d.code === 'PREVIOUS_OOM_KILL')
    assert.ok(kill, `${fixture} has earlier OOM kills`)
    assert.ok(kill.message.includes(`(oom_kill in ${files[version].oomKill})`), `${fixture}: the core names the same file: ${kill.message}`)
    assert.ok(report.limit.origin.startsWith(files[version].limit), `${fixture}: ${report.limit.origin}`)
  }
})

test("the doctor's own processes are stated and left out of the usage check (env.own)", () => {
  const MiB = 1024 * 1024
  const m = getMemoryMetrics(null, { root: path.join(FIXTURES, 'v2-busy') })
  const own = {
    bytes: 40 * MiB,
    processes: [
      { pid: 31, command: 'node', bytes: 10 * MiB },
      { pid: 20, command: 'npm exec oomgua', bytes: 30 * MiB },
    ],
  }
  const r = buildReport(m, { own })
  const d = r.memory.doctor
  assert.equal(d.bytes, 40 * MiB)
  assert.equal(d.usageBytes, m.usageBytes - 40 * MiB)
  assert.equal(d.workingSetBytes, m.workingSetBytes - 40 * MiB)
  assert.equal(d.usageRatio, (m.workingSetBytes - 40 * MiB) / m.limitBytes)
  assert.equal(d.headroomBytes, m.limitBytes - (m.workingSetBytes - 40 * MiB))
  const usage = r.checks.find((c) => c.id === 'usage-now')
  assert.match(usage.detail, /^working set without this doctor 91\.9 MiB is 35\.9% of 256\.0 MiB; 164\.1 MiB headroom \(the doctor's own 40\.0 MiB not counted: with it, 51\.5%\)\.$/)
  const text = render(r)
  assert.ok(
    text.includes(
      [
        "  this doctor   40.0 MiB of that is this doctor's own (resident anonymous memory):",
        '                pid 31 node 10.0 MiB, pid 20 npm exec oomgua 30.0 MiB',
        '  without it    usage 132.8 MiB (51.9%), working set 91.9 MiB (35.9%):',
        '                the container as it was before the doctor started, near enough;',
      ].join('\n'),
    ),
    text,
  )
  // The same reading without env.own: no section, the whole working set counted.
  const plain = buildReport(m, {})
  assert.equal(plain.memory.doctor, null)
  assert.doesNotMatch(render(plain), /this doctor {3}/)
  assert.match(plain.checks.find((c) => c.id === 'usage-now').detail, /^working set 131\.9 MiB is 51\.5%/)
  // More than the working set: never below 0.
  assert.equal(buildReport(m, { own: { bytes: 1e12, processes: [] } }).memory.doctor.workingSetBytes, 0)
  for (const bad of [5, { bytes: -1, processes: [] }, { bytes: 1 }, { bytes: 1, processes: [{ pid: 'x', bytes: 1 }] }, { bytes: 1, processes: [null] }]) {
    assert.throws(() => buildReport(m, { own: bad }), { name: 'TypeError', message: /^env\.own/ }, JSON.stringify(bad))
  }
})

test("live: the doctor states its own process and subtracts it from the service's usage", () => {
  const r = JSON.parse(doctor(['--json']).stdout)
  if (!r.cgroup) return
  const d = r.memory.doctor
  assert.ok(d, 'run in its own cgroup: the section is there')
  // The doctor runs this node: its name for the main thread (`node` on 20 and 22, `MainThread` on 24).
  assert.ok(d.processes.length >= 1 && d.processes[0].command === fs.readFileSync('/proc/self/comm', 'utf8').trim(), JSON.stringify(d))
  assert.ok(d.processes[0].bytes > 1024 * 1024 && d.processes[0].bytes < 200 * 1024 * 1024, JSON.stringify(d))
  assert.equal(
    d.bytes,
    d.processes.reduce((a, p) => a + p.bytes, 0),
  )
})
