'use strict'
// The mount the process sees, for real: node runs in its own mount namespace
// (`unshare -m`, private propagation: the host's mounts are untouched) where
// a second mount covers the first on the memory controller's mount point, or
// a mount on its parent directory covers it. The covered mount's root holds
// the cgroup path too, and leads elsewhere: to a parent cgroup with another
// limit, or to the hierarchy's root (the host's numbers, as with Docker's
// `-v /sys/fs/cgroup/memory:/sys/fs/cgroup/memory`). getMemoryMetrics() must
// report the cgroup that the visible mount leads to: its limit and usage.
// Needs root and a writable v1 memory controller (skipped otherwise; a
// failure under OOMGUARD_REQUIRE_PRIVILEGED=1).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const h = require('./helpers/cgroup')

const PROBE = path.join(__dirname, 'helpers', 'probe-v1.js')
const PREFIX = 'OOMGUARD_PROBE_V1 '
const MOUNT = 'OOMGUARD_MOUNT '
const MiB = 1024 * 1024
// The addon and the probe read memory.usage_in_bytes a moment apart, and the
// cgroup holds only the probe.
const TOLERANCE = 4 * MiB
const OUTER_LIMIT = 160 * MiB
const INNER_LIMIT = 96 * MiB

// In the new namespace, before node starts: $1 the controller's mount point,
// $2 the outer cgroup, $3 the inner one (a child of $2), $4 the layout. "."
// keeps a directory of the mount about to be covered reachable, so it can be
// bound on top. Then it prints the mounts now on that point (the kernel's own
// list, for the assertions) and execs the probe.
const SETUP = `set -e
mp=$1; outer=$2; inner=$3; layout=$4; shift 4
case $layout in
  same-point) cd "$outer"; mount --bind "$inner" "$mp"; mount --no-canonicalize --bind . "$mp" ;;
  hierarchy) cd "$mp"; mount --bind "$outer" "$mp"; mount --no-canonicalize --bind . "$mp" ;;
  parent-dir) cd "$mp"; mount --bind "$inner" "$mp"; mount -t tmpfs oomguard-test "\${mp%/*}"; mkdir "$mp"; mount --no-canonicalize --bind . "$mp" ;;
esac
cd /
while read -r id parent dev root point rest; do
  case $point in "$mp" | "\${mp%/*}") echo "${MOUNT}$id $parent $root $point \${rest#* - }" ;; esac
done < /proc/self/mountinfo
exec "$@"`

/**
 * Run the probe in `member` (a cgroup we made), in a mount namespace laid out
 * as `layout` says. Resolves with { metrics, kernel, mounts }.
 */
async function probe(own, outer, inner, member, layout, probeDir) {
  const procs = path.join(member, 'cgroup.procs')
  const r = await h.runProcess(
    'sh',
    [
      '-c',
      'echo $$ > "$1" && shift && exec unshare -m --propagation private sh -c "$@"',
      'sh',
      procs,
      SETUP,
      'sh',
      own.mountPoint,
      outer,
      inner,
      layout,
      process.execPath,
      PROBE,
      h.REPO_ROOT,
      probeDir,
    ],
    { timeoutMs: 30_000 },
  )
  assert.equal(r.code, 0, h.describeRun(r))
  const found = h.parsePrefixed(r.stdout, PREFIX)
  assert.equal(found.length, 1, h.describeRun(r))
  const mounts = r.stdout
    .split('\n')
    .filter((l) => l.startsWith(MOUNT))
    .map((l) => l.slice(MOUNT.length))
  return { ...found[0], mounts, run: r }
}

/** The cgroup path (as /proc/self/cgroup prints it) of the cgroup at `dir` outside. */
function cgroupPath(own, dir) {
  return path.posix.join(own.mountRoot, path.relative(own.mountPoint, dir))
}

/** Where the cgroup at `dir` outside is in the namespace, under a mount on the same point with root `mountRoot`. */
function below(own, mountRoot, dir) {
  return path.join(own.mountPoint, path.relative(mountRoot, cgroupPath(own, dir)))
}

const LAYOUTS = [
  {
    layout: 'same-point',
    what: 'a bind of the outer cgroup over a bind of the inner one, on one mount point',
    member: 'inner',
    // Covered: root = inner (it would read the mount point, i.e. outer, 160 MiB).
    visibleRoot: (own, outer) => cgroupPath(own, outer),
    limit: INNER_LIMIT,
  },
  {
    layout: 'hierarchy',
    what: "the hierarchy's root bound over a bind of the outer cgroup (docker -v /sys/fs/cgroup/memory:...)",
    member: 'outer',
    // Covered: root = outer (it would read the mount point, i.e. the hierarchy's root: no limit, the host's).
    visibleRoot: (own) => own.mountRoot,
    limit: OUTER_LIMIT,
  },
  {
    layout: 'parent-dir',
    what: 'a tmpfs on the parent directory covering a bind of the inner cgroup, the hierarchy bound again below it',
    member: 'inner',
    // Covered: root = inner (it would read the mount point, i.e. the hierarchy's root).
    visibleRoot: (own) => own.mountRoot,
    limit: INNER_LIMIT,
  },
]

for (const L of LAYOUTS) {
  test(`the visible mount is resolved, not the covered one: ${L.what}`, { timeout: 60_000 }, async (t) => {
    const support = h.v1Support()
    if (support.reason) return h.privileged(t, support.reason)
    const own = support.own
    if (L.layout === 'parent-dir' && path.dirname(own.mountPoint) === '/') {
      return h.privileged(t, `the memory controller is mounted at ${own.mountPoint}: no parent directory to cover but /`)
    }
    const outer = h.makeCgroup(own.dir, h.uniqueName('oomguard-mount'))
    t.after(() => h.removeCgroup(outer))
    const inner = h.makeCgroup(outer, 'inner')
    h.setV1Limit(outer, OUTER_LIMIT)
    h.setV1Limit(inner, INNER_LIMIT)
    const member = L.member === 'inner' ? inner : outer
    const visibleRoot = L.visibleRoot(own, outer)
    const wantDir = below(own, visibleRoot, member)
    // Through the hierarchy's root, the limits above our own cgroup count too.
    const above = visibleRoot === own.mountRoot ? h.effectiveV1Limit(own.dir, own.mountPoint) : null
    const wantLimit = above === null ? L.limit : Math.min(L.limit, above)

    const { metrics, kernel, mounts, run } = await probe(own, outer, inner, member, L.layout, wantDir)
    const seen = `mounts in the namespace:\n${mounts.join('\n')}\n${h.describeRun(run)}`
    // The host's mount, copied into the namespace, is on that point too.
    const onPoint = mounts.filter((m) => m.split(' ')[3] === own.mountPoint)
    assert.equal(onPoint.length, 3, `three mounts on ${own.mountPoint}: ${seen}`)
    assert.equal(onPoint.at(-1).split(' ')[2], visibleRoot, `the last one has root ${visibleRoot}: ${seen}`)
    if (L.layout === 'parent-dir') {
      assert.ok(
        mounts.some((m) => m.split(' ')[3] === path.dirname(own.mountPoint) && / tmpfs /.test(m)),
        `a tmpfs covers ${path.dirname(own.mountPoint)}: ${seen}`,
      )
    }
    t.diagnostic(JSON.stringify({ layout: L.layout, dir: metrics.cgroup && metrics.cgroup.dir, limitBytes: metrics.limitBytes, mounts }))

    assert.equal(metrics.source, 'cgroup-v1', seen)
    assert.equal(metrics.cgroup.dir, wantDir, seen)
    assert.equal(metrics.cgroup.mountPoint, own.mountPoint)
    assert.equal(metrics.cgroup.resolved, true)
    assert.equal(metrics.limitBytes, wantLimit, `the limit of the cgroup the visible mount leads to: ${seen}`)
    const codes = metrics.diagnoses.map((d) => d.code)
    assert.ok(!codes.includes('NO_LIMIT') && !codes.includes('CGROUP_UNRESOLVED'), codes.join(', '))
    const lo = Math.min(kernel.usageBefore, kernel.usageAfter) - TOLERANCE
    const hi = Math.max(kernel.usageBefore, kernel.usageAfter) + TOLERANCE
    assert.ok(metrics.usageBytes >= lo && metrics.usageBytes <= hi, `usageBytes ${metrics.usageBytes} against ${wantDir}/memory.usage_in_bytes ${kernel.usageBefore}..${kernel.usageAfter}`)
    assert.ok(kernel.usageAfter > 4 * MiB, `the probe's own node is charged there: ${kernel.usageAfter}`)
  })
}
