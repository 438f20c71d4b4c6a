'use strict'
// The doctor: turns one getMemoryMetrics() result into a structured report
// (what the container's limit is and where it came from, what fills it, how
// V8's heap limit sits against it, and a sizing checklist);
// lib/integrations/doctor-render.js renders it as text. Pure functions: no file, process
// or clock access here; bin/oomguard.js gathers the inputs.

const { diagnoseMetrics, diagnoseEnv, WATCH_DEFAULTS, ownCopy } = require('../core/options.js')
const { MiB, HEAP_BAND, HEAP_SHARE, bandText, isNum, bytes, pct, basisName } = require('./doctor-words.js')

/** The first and the last of watch()'s default thresholds, for the "usage now" check. */
const USAGE_WARN = WATCH_DEFAULTS.thresholds[0]
const USAGE_FAIL = WATCH_DEFAULTS.thresholds[WATCH_DEFAULTS.thresholds.length - 1]

/**
 * What the core's diagnoses (src/diagnose.rs) share with the doctor,
 * declared once in lib/core/diagnoses.json: the kernel files they name (limit,
 * high, oomKill, and failures: the stall detector's failed-charge counter)
 * by cgroup version, and the wording of the heap-limit diagnoses.
 */
const DIAGNOSES = require('../core/diagnoses.json')
/** The files of a cgroup version; v2's where there is no cgroup, as in the core. */
const filesOf = (version) => DIAGNOSES.files[version === 1 ? 1 : 2]
const HEAP_ABOVE = DIAGNOSES.heapLimit.above
const HEAP_NEAR = DIAGNOSES.heapLimit.near

/** PSI percentages (avg10) the pressure check warns and fails at. */
const PRESSURE_SOME_WARN = 10
const PRESSURE_FULL_WARN = 1
const PRESSURE_FULL_FAIL = 10

const STATUSES = ['pass', 'warn', 'fail', 'manual']

/** The file the OOM-kill counter comes from; null without a memory cgroup. */
function oomKillFile(m) {
  if (!m.cgroup) return null
  return filesOf(m.cgroup.version).oomKill
}

function isContainerSource(source) {
  return source === 'cgroup-v1' || source === 'cgroup-v2'
}

// ---------------------------------------------------------------- sections

/** Where the limit came from, in words. */
function limitOrigin(m) {
  const cg = m.cgroup
  if (isContainerSource(m.source)) {
    const v1 = m.source === 'cgroup-v1'
    const file = filesOf(v1 ? 1 : 2).limit
    if (m.leafLimitBytes !== null && m.leafLimitBytes === m.cgroupLimitBytes) {
      return `${file} of this cgroup (cgroup v${v1 ? 1 : 2})`
    }
    const own = m.leafLimitBytes === null ? 'unlimited' : bytes(m.leafLimitBytes)
    return `${file} of a parent cgroup${v1 ? ' (hierarchical_memory_limit)' : ''}; this cgroup's own is ${own}`
  }
  if (m.source === 'host') {
    return cg
      ? `the host's MemTotal (/proc/meminfo): this process's memory cgroup was found, but neither it nor any parent has a memory limit (${filesOf(cg.version).limit} is unlimited all the way up)`
      : "no memory cgroup: the host's MemTotal (/proc/meminfo)"
  }
  return 'no limit found (neither a cgroup limit nor /proc/meminfo)'
}

/**
 * The charged memory split into anon, file (page cache without shmem), shmem,
 * kernel, other (charged but in none of those: sockets, per-cpu, ...) and
 * free (limit - usage). Without memory.stat: used and free.
 */
function breakdown(m) {
  const limit = m.limitBytes
  const usage = m.usageBytes
  if (!isNum(limit) || limit <= 0 || !isNum(usage)) return null
  const segments = []
  const add = (key, label, b) => segments.push({ key, label, bytes: Math.max(0, b), ratio: Math.max(0, b) / limit })
  const s = m.stat
  if (s && isNum(s.anon) && isNum(s.file)) {
    const shmem = isNum(s.shmem) ? s.shmem : 0
    const kernel = isNum(s.kernel) ? s.kernel : 0
    add('anon', 'anon', s.anon)
    add('file', 'file', s.file - shmem)
    add('shmem', 'shmem', shmem)
    add('kernel', 'kernel', kernel)
    const other = usage - (s.anon + s.file + kernel)
    if (other > 0) add('other', 'other', other)
  } else {
    add('used', 'used (memory.stat unreadable)', usage)
  }
  add('free', 'free', limit - usage)
  return { limitBytes: limit, usageBytes: usage, segments }
}

/**
 * Where node's default heap limit comes from: libuv's constrained memory
 * (the smaller of this cgroup's own high and max; parents are not looked
 * at), else the host's memory; half of it for the old space, at least 256
 * and at most 4096 MiB, plus the young generation.
 */
function nodeSizing(m, defaultHeapLimitBytes, measured) {
  const c = m.constrainedMemoryBytes
  if (!isNum(c)) return null
  const cg = m.cgroup
  const v1 = cg && cg.version === 1
  const highFile = filesOf(v1 ? 1 : 2).high
  const maxFile = filesOf(v1 ? 1 : 2).limit
  let from
  let text
  if (!cg || (m.source === 'host' && !isNum(m.leafLimitBytes) && !isNum(m.leafHighBytes))) {
    from = 'host'
    text = cg ? `the host's memory (${bytes(c)}): this cgroup has no ${maxFile} or ${highFile} of its own and no parent has a limit.` : `the host's memory (${bytes(c)}): there is no memory cgroup.`
  } else if (!isNum(m.leafLimitBytes) && !isNum(m.leafHighBytes)) {
    from = 'host'
    text = `the host's memory (${bytes(c)}), not the limit of ${bytes(m.limitBytes)}: libuv reads ${maxFile} and ${highFile} of the process's own cgroup only, and this cgroup has neither; the limit is on a parent.`
  } else if (isNum(m.leafHighBytes) && (!isNum(m.leafLimitBytes) || m.leafHighBytes < m.leafLimitBytes) && m.leafHighBytes <= c) {
    from = 'high'
    text = `${highFile} of this cgroup (${bytes(m.leafHighBytes)}), which is below its ${maxFile} (${isNum(m.leafLimitBytes) ? bytes(m.leafLimitBytes) : 'unlimited'}): libuv takes the smaller of the two, of the process's own cgroup only.`
  } else {
    from = 'max'
    text = `${maxFile} of this cgroup (${bytes(c)}): libuv takes the smaller of ${maxFile} and ${highFile}, of the process's own cgroup only.`
  }
  const def = isNum(defaultHeapLimitBytes) ? defaultHeapLimitBytes : null
  if (def !== null) {
    const floor = c <= 512 * MiB
    text += ` Without heap flags node takes half of that for the old space${floor ? ', but never less than 256 MiB' : ' (at least 256 MiB, at most 4 GiB)'}, plus the young generation: a default heap limit of ${measured ? '' : 'about '}${bytes(def)} (${[measured ? 'measured' : 'modelled', floor && 'the ~259 MiB floor'].filter(Boolean).join('; ')})${isNum(m.limitBytes) && isContainerSource(m.source) ? `, ${pct(def / m.limitBytes)} of the limit` : ''}.`
  }
  return { constrainedMemoryBytes: c, from, defaultHeapLimitBytes: def, text }
}

function heapSection(m, env) {
  const limit = isContainerSource(m.source) ? m.limitBytes : null
  const heap = m.v8 ? m.v8.heapSizeLimitBytes : null
  const diag = m.diagnoses.find((d) => d.code === HEAP_ABOVE.code) || m.diagnoses.find((d) => d.code === HEAP_NEAR.code) || null
  const advice = limit !== null && env.heapAdvice && Array.isArray(env.heapAdvice.options) && env.heapAdvice.options.length ? env.heapAdvice : null
  const from = env.heapLimitFrom === 'flag' ? 'flag' : 'process'
  let verdict
  let message
  if (!isNum(heap)) {
    verdict = 'unknown'
    message = "V8's heap limit is not known."
  } else if (limit === null) {
    verdict = 'unknown'
    message = 'There is no container limit to compare the heap limit with.'
  } else if (diag) {
    // The core's sentence, in the doctor's units (bytes() here, whole MiB there).
    const w = diag.code === HEAP_ABOVE.code ? HEAP_ABOVE : HEAP_NEAR
    verdict = w === HEAP_ABOVE ? 'fail' : 'warn'
    const relation = w.relation.replace('{high}', HEAP_BAND.high * 100)
    message = `The V8 heap limit (${bytes(heap)}) ${relation} the container limit (${bytes(limit)}): ${w.consequence}.`
  } else {
    verdict = 'pass'
    message =
      heap < limit * HEAP_BAND.low
        ? `The V8 heap limit (${bytes(heap)}) is ${pct(heap / limit)} of the container limit (${bytes(limit)}), below ${bandText}: safe, and the heap could be larger.`
        : `The V8 heap limit (${bytes(heap)}) is ${pct(heap / limit)} of the container limit (${bytes(limit)}), within ${bandText}: no change needed.`
  }
  const rec = diag ? diag.recommendedMaxOldSpaceSizeMib : null
  let recommendation = null
  if (diag) {
    recommendation = advice ? `NODE_OPTIONS="${advice.options[0].nodeOptions}"` : `NODE_OPTIONS="${diag.percentageNodeOptions || diag.nodeOptions}"`
  }
  return {
    heapSizeLimitBytes: isNum(heap) ? heap : null,
    from,
    nodeVersion: from === 'process' ? (env.nodeVersion ?? null) : null,
    nodeOptions: from === 'process' ? (env.nodeOptions ?? null) : null,
    containerLimitBytes: limit,
    ratio: limit !== null && isNum(heap) ? heap / limit : null,
    band: { ...HEAP_BAND },
    verdict,
    message,
    recommendedMaxOldSpaceSizeMib: isNum(rec) ? rec : null,
    recommendation,
    advice: advice ? { ...advice, band: { ...advice.band }, options: advice.options.map((o) => ({ ...o })) } : null,
    nodeSizing: nodeSizing(m, advice ? advice.defaultHeapLimitBytes : env.defaultHeapLimitBytes, !!(advice && advice.measured)),
  }
}

/**
 * The processes in the cgroup (cgroup.procs), largest first, each with its
 * share of the working set, and this process's share: resident anonymous
 * memory (RssAnon) over the working set, which adds up (RSS counts mapped
 * files charged elsewhere and does not). One figure
 * per process: where env.own names this process (the CLI), its entry in
 * the list (scanned up to a second before) takes this reading's own
 * figures. null without a process list.
 */
function processesSection(m, env) {
  const p = m.processes
  if (!p) return null
  const ws = isNum(m.workingSetBytes) && m.workingSetBytes > 0 ? m.workingSetBytes : null
  const share = (b) => (ws !== null && isNum(b) ? b / ws : null)
  const num = (b) => (isNum(b) ? b : null)
  const selfPid = env.own && env.own.processes.length ? env.own.processes[0].pid : null
  const entry = (x) => (x.pid === selfPid ? { ...x, rssBytes: m.rssBytes, anonBytes: m.anonBytes } : x)
  return {
    count: p.count,
    largest: p.largest.map(entry).map((x) => ({ pid: x.pid, command: x.command, rssBytes: num(x.rssBytes), anonBytes: num(x.anonBytes), share: share(x.anonBytes) })),
    timestampMs: num(p.timestampMs),
    selfRssBytes: num(m.rssBytes),
    selfAnonBytes: num(m.anonBytes),
    selfShare: share(m.anonBytes),
  }
}

/** Peak and swap, and when the kernel kills with swap. null without a memory cgroup. */
function swapSection(m) {
  if (!m.cgroup) return null
  const swap = isNum(m.swapBytes) ? m.swapBytes : null
  const swapLimit = isNum(m.swapLimitBytes) ? m.swapLimitBytes : null
  const memLimit = isNum(m.cgroupLimitBytes) ? bytes(m.cgroupLimitBytes) : 'no limit'
  const hostSwap = isNum(m.hostSwapTotalBytes) ? m.hostSwapTotalBytes : null
  let message
  if (swap === null) {
    message = 'The kernel accounts no swap for this cgroup (no swap files): the OOM killer acts when memory reaches the limit.'
  } else if (hostSwap === 0) {
    message = "The host has no swap space (SwapTotal 0 in /proc/meminfo), so nothing can be swapped out whatever the cgroup's swap limit says: the OOM killer acts when memory reaches the limit."
  } else if (swapLimit === 0) {
    message = 'This cgroup may not swap (swap limit 0): the OOM killer acts when memory reaches the limit.'
  } else {
    message =
      `With swap, the kernel OOM-kills only when memory and swap have both reached their limits (memory ${memLimit}, ` +
      `swap ${swapLimit === null ? `no limit of its own: up to the host's swap${hostSwap === null ? '' : ` (${bytes(hostSwap)})`}` : bytes(swapLimit)}); until then it moves ` +
      'anonymous memory out to swap and the service slows down first.' +
      (hostSwap === null ? " The host's swap space is unknown (no SwapTotal in /proc/meminfo): without any, the memory limit alone decides." : '')
  }
  return { peakBytes: isNum(m.peakBytes) ? m.peakBytes : null, swapBytes: swap, swapLimitBytes: swapLimit, hostSwapTotalBytes: hostSwap, message }
}

/**
 * The doctor's own share of the charge: its own process and the npm/npx
 * that started it (env.own, gathered by bin/oomguard.js: resident
 * anonymous memory, charged to this cgroup while they run), and
 * the usage and working set without them: the container as it was before
 * the doctor started, near enough (their kernel memory stays counted).
 * null where the doctor does not run in the cgroup it reads.
 */
function doctorSection(m, env) {
  const own = env.own
  if (!own || !isNum(own.bytes) || !Array.isArray(own.processes)) return null
  const less = (b) => (isNum(b) ? Math.max(0, b - own.bytes) : null)
  const basis = isNum(m.basisBytes) && basisName(m) === 'working set' ? less(m.basisBytes) : null
  return {
    bytes: own.bytes,
    processes: own.processes.map((p) => ({ pid: p.pid, command: p.command ?? null, bytes: p.bytes })),
    usageBytes: less(m.usageBytes),
    workingSetBytes: less(m.workingSetBytes),
    usageRatio: basis !== null && isNum(m.limitBytes) && m.limitBytes > 0 ? basis / m.limitBytes : null,
    headroomBytes: basis !== null && isNum(m.limitBytes) ? m.limitBytes - basis : null,
  }
}

// ---------------------------------------------------------------- checks

function check(id, title, status, detail, howTo, command) {
  const c = { id, title, status, detail }
  if (howTo) c.howTo = howTo
  if (command) c.command = command
  return c
}

const POD_HOW_TO =
  'from inside a container only its own cgroup is visible. Check that every container in the pod ' +
  "(sidecars and init containers included) has resources.limits.memory, and that this container's limit " +
  'is the one the heap was sized for:'
const POD_COMMAND = 'kubectl get pod POD -o jsonpath=\'{range .spec.containers[*]}{.name}{"\\t"}{.resources.limits.memory}{"\\n"}{end}\''

function checks(m, heap, env) {
  const out = []
  const limit = heap.containerLimitBytes
  const codes = new Set(m.diagnoses.map((d) => d.code))

  // 1. A limit at all.
  if (m.cgroup && !m.cgroup.resolved) {
    out.push(
      check(
        'limit-set',
        'a memory limit is set on this container',
        'warn',
        `The cgroup directory for ${m.cgroup.path} was not found; the mount point is read instead, so ${bytes(m.limitBytes)} may be another cgroup's limit.`,
        "kubectl describe pod (Limits: memory) or docker inspect --format '{{.HostConfig.Memory}}'.",
      ),
    )
  } else if (limit !== null) {
    out.push(check('limit-set', 'a memory limit is set on this container', 'pass', `${bytes(limit)} from ${limitOrigin(m)}.`))
  } else if (m.cgroup) {
    out.push(
      check(
        'limit-set',
        'a memory limit is set on this container',
        'warn',
        `No limit on this cgroup or any parent; the host's ${bytes(m.hostTotalBytes)} is the only ceiling. Set a container memory limit (resources.limits.memory, docker run -m).`,
      ),
    )
  } else {
    out.push(
      check(
        'limit-set',
        'a memory limit is set on this container',
        'warn',
        `Not in a memory cgroup: the numbers are the host's (${bytes(m.hostTotalBytes)}). In a container, the memory controller is not visible or not enabled.`,
      ),
    )
  }

  // 2 and 3. The heap limit against the container limit.
  const heapMib = heap.heapSizeLimitBytes === null ? 'n/a' : bytes(heap.heapSizeLimitBytes)
  if (heap.verdict === 'unknown') {
    const how =
      heap.heapSizeLimitBytes === null
        ? "pass the service's heap limit with --heap-limit MiB."
        : `run the doctor where the limit is set (inside the container), or compare by hand: the heap limit (${heapMib}) should be ${bandText} of the container limit.`
    out.push(check('heap-below-limit', 'V8 heap limit set below the container limit', 'manual', heap.message, how))
    out.push(
      check(
        'native-headroom',
        'headroom for native memory and page cache',
        'manual',
        `${bandText} of the limit should go to the V8 heap; the rest is for Buffers, native code, thread stacks, page cache and kernel memory.`,
        how,
      ),
    )
  } else {
    const above = heap.verdict === 'fail'
    out.push(
      check(
        'heap-below-limit',
        'V8 heap limit set below the container limit',
        above ? 'fail' : 'pass',
        `Heap limit ${heapMib} is ${pct(heap.ratio)} of ${bytes(limit)}${above ? `: the kernel kills before V8 runs out of heap. Use ${heap.recommendation}.` : '.'}`,
      ),
    )
    const left = limit - heap.heapSizeLimitBytes
    out.push(
      check(
        'native-headroom',
        'headroom for native memory and page cache',
        heap.verdict,
        heap.verdict === 'pass'
          ? `${bytes(left)} (${pct(left / limit)}) of the limit is outside the heap limit for Buffers, native code, thread stacks and page cache.`
          : `${left > 0 ? `Only ${bytes(left)} (${pct(left / limit)})` : 'Nothing'} of the limit is left outside the heap limit for Buffers, native code, thread stacks and page cache; keep the heap limit within ${bandText} of the limit${heap.recommendation ? `: ${heap.recommendation}` : ''}.`,
      ),
    )
  }

  // 4. Worker threads: each has its own heap.
  const workers = env.workers
  const workerTitle = 'worker threads counted (each has its own V8 heap)'
  if (limit === null || heap.heapSizeLimitBytes === null) {
    out.push(
      check(
        'workers',
        workerTitle,
        'manual',
        'No container limit or heap limit to count them against.',
        "each worker_threads Worker has its own V8 heap, as large as the main thread's unless resourceLimits says otherwise: (1 + workers) x the heap limit must fit in the container limit.",
      ),
    )
  } else if (isNum(workers)) {
    const total = heap.heapSizeLimitBytes * (1 + workers)
    const status = total >= limit ? 'fail' : total > limit * HEAP_BAND.high ? 'warn' : 'pass'
    out.push(
      check(
        'workers',
        workerTitle,
        status,
        `(1 + ${workers}) x ${heapMib} = ${bytes(total)}, ${pct(total / limit)} of ${bytes(limit)}.` +
          (status === 'pass'
            ? ''
            : ` Give each worker resourceLimits.maxOldGenerationSizeMb, or lower --max-old-space-size, so that all heaps together stay at or below ${HEAP_BAND.high * 100}% of the limit.`),
      ),
    )
  } else {
    out.push(
      check(
        'workers',
        workerTitle,
        'manual',
        "The doctor cannot see the service's worker threads (another process).",
        `each worker_threads Worker has its own V8 heap, as large as the main thread's (${heapMib}) unless resourceLimits.maxOldGenerationSizeMb says otherwise: (1 + workers) x the heap limit must stay at or below ${HEAP_BAND.high * 100}% of ${bytes(limit)}. Rerun with --workers N to check.`,
      ),
    )
  }

  // 5. Usage now: the service's, without the doctor's own processes.
  const doc = doctorSection(m, env)
  if (doc && isNum(doc.usageRatio)) {
    const r = doc.usageRatio
    const status = r >= USAGE_FAIL ? 'fail' : r >= USAGE_WARN ? 'warn' : 'pass'
    out.push(
      check(
        'usage-now',
        `usage now below ${USAGE_WARN * 100}% of the limit`,
        status,
        `working set without this doctor ${bytes(doc.workingSetBytes)} is ${pct(r)} of ${bytes(m.limitBytes)}; ${bytes(doc.headroomBytes)} headroom ` +
          `(the doctor's own ${bytes(doc.bytes)} not counted: with it, ${pct(m.usageRatio)}).`,
      ),
    )
  } else if (isNum(m.usageRatio)) {
    const r = m.usageRatio
    const status = r >= USAGE_FAIL ? 'fail' : r >= USAGE_WARN ? 'warn' : 'pass'
    const what = basisName(m)
    out.push(
      check('usage-now', `usage now below ${USAGE_WARN * 100}% of the limit`, status, `${what} ${bytes(m.basisBytes)} is ${pct(r)} of ${bytes(m.limitBytes)}; ${bytes(m.headroomBytes)} headroom.`),
    )
  } else {
    const partly =
      isNum(m.usageBytes) && isNum(m.limitBytes)
        ? `Usage is ${bytes(m.usageBytes)} (${pct(m.usageBytes / m.limitBytes)} of the limit), but the working set (usage minus inactive page cache, from memory.stat) could not be read.`
        : 'Usage could not be read.'
    out.push(
      check(
        'usage-now',
        `usage now below ${USAGE_WARN * 100}% of the limit`,
        'manual',
        partly,
        'kubectl top pod (it shows the working set), or memory.current / memory.usage_in_bytes minus inactive_file from memory.stat.',
      ),
    )
  }

  // 6. Earlier OOM kills.
  const kills = m.events ? m.events.oomKill : null
  const killFile = oomKillFile(m)
  if (isNum(kills)) {
    out.push(
      check(
        'oom-kills',
        'no earlier OOM kills in this cgroup',
        kills > 0 ? 'warn' : 'pass',
        kills > 0 ? `The kernel has OOM-killed ${kills} process${kills === 1 ? '' : 'es'} in this cgroup (oom_kill in ${killFile}).` : `oom_kill is 0 in ${killFile}.`,
      ),
    )
  } else {
    out.push(
      check(
        'oom-kills',
        'no earlier OOM kills in this cgroup',
        'manual',
        m.cgroup ? `${killFile} could not be read.` : 'Not in a memory cgroup: there is no per-container OOM-kill counter.',
        'kubectl describe pod (Last State: Terminated, Reason: OOMKilled, Exit Code: 137), or dmesg | grep -i "killed process".',
      ),
    )
  }

  // 7. Pressure.
  const p = m.pressure
  if (p) {
    const some = p.some.avg10
    const full = p.full ? p.full.avg10 : 0
    const status = full >= PRESSURE_FULL_FAIL ? 'fail' : some >= PRESSURE_SOME_WARN || full >= PRESSURE_FULL_WARN ? 'warn' : 'pass'
    out.push(
      check(
        'pressure',
        'memory pressure low',
        status,
        `some ${some.toFixed(2)}%, full ${p.full ? `${full.toFixed(2)}%` : 'n/a'} (avg10, ${p.scope === 'cgroup' ? 'this cgroup' : "system-wide: the host's, not this container's"}).`,
      ),
    )
  } else {
    out.push(
      check(
        'pressure',
        'memory pressure low',
        'manual',
        'No pressure stall information (PSI) on this kernel.',
        'watch major page faults (pgmajfault in memory.stat) and latency; PSI needs a kernel with CONFIG_PSI and psi=1.',
      ),
    )
  }

  // 7b. Stuck at the limit now (needs an earlier reading to take rates from).
  if (env.earlier) out.push(stallCheck(m, env.earlier))

  // 8. Files readable.
  if (m.cgroup) {
    const bad = m.diagnoses.filter((d) => d.code === 'CGROUP_FILE_UNREADABLE')
    out.push(
      check(
        'files-readable',
        'cgroup memory files readable',
        bad.length ? 'warn' : 'pass',
        bad.length ? `Could not read ${bad.map((d) => d.path).join(', ')}; what comes from ${bad.length === 1 ? 'it' : 'them'} is unknown.` : `Read from ${m.cgroup.dir}.`,
      ),
    )
  }

  // 9. The pod.
  let podDetail = "Not checkable from inside: other containers' limits are not visible here."
  if (codes.has('NO_LIMIT') || !m.cgroup) podDetail = 'Not checkable from inside, and this container has no limit of its own.'
  else if (isNum(m.cgroupLimitBytes) && (m.leafLimitBytes === null || m.cgroupLimitBytes < m.leafLimitBytes)) {
    podDetail = `A parent cgroup (the pod's, on Kubernetes) has the lower limit (${bytes(m.cgroupLimitBytes)}), shared by every container in it.`
  }
  out.push(check('pod-limits', 'per-container limits in the pod', 'manual', podDetail, POD_HOW_TO, POD_COMMAND))
  return out
}

/**
 * Build the doctor's report from one `getMemoryMetrics()` result.
 *
 * `env` (all optional): `heapLimitFrom` ('process': the heap limit is the
 * doctor process's own; 'flag': passed in with --heap-limit), `nodeVersion`,
 * `nodeOptions` (shown when the heap limit is the process's own), `workers`
 * (the service's worker thread count, when known).
 */
function buildReport(metrics, env) {
  // Bad input is a named TypeError/RangeError with a code; `env` is copied from own properties.
  // Both are read from null-prototype copies of their own properties, so no
  // key the result or the text reads can come from a polluted prototype.
  const m = ownCopy(diagnoseMetrics(metrics), 'metrics')
  env = ownCopy(diagnoseEnv(env), 'env')
  const heap = heapSection(m, env)
  const list = checks(m, heap, env)
  const summary = { pass: 0, warn: 0, fail: 0, manual: 0 }
  for (const c of list) summary[c.status]++
  return {
    oomguard: 'doctor',
    version: 1,
    time: isNum(m.timestampMs) ? new Date(m.timestampMs).toISOString() : null,
    cgroup: m.cgroup ? { ...m.cgroup } : null,
    limit: {
      bytes: m.limitBytes,
      source: m.source,
      origin: limitOrigin(m),
      cgroupLimitBytes: m.cgroupLimitBytes,
      leafLimitBytes: m.leafLimitBytes,
      highBytes: m.highBytes,
      leafHighBytes: m.leafHighBytes ?? null,
      constrainedMemoryBytes: m.constrainedMemoryBytes ?? null,
      hostTotalBytes: m.hostTotalBytes,
    },
    memory: {
      usageBytes: m.usageBytes,
      workingSetBytes: m.workingSetBytes,
      basisBytes: m.basisBytes,
      usageRatio: m.usageRatio,
      headroomBytes: m.headroomBytes,
      doctor: doctorSection(m, env),
    },
    breakdown: breakdown(m),
    heap,
    oomKills: {
      count: m.events ? m.events.oomKill : null,
      file: oomKillFile(m),
      events: m.events ? { ...m.events } : null,
    },
    pressure: m.pressure ? { scope: m.pressure.scope, some: { ...m.pressure.some }, full: m.pressure.full ? { ...m.pressure.full } : null } : null,
    swap: swapSection(m),
    processes: processesSection(m, env),
    checks: list,
    summary,
    diagnoses: m.diagnoses.map((d) => ({ ...d })),
  }
}

// ---------------------------------------------------------------- stalls

/**
 * Charges failing at the limit between two readings, with the pressure and
 * refaults that tell a stall (the kernel reclaiming and faulting back, never
 * OOM-killing) from page cache being reclaimed. The rates are the doctor's
 * to show; the verdict over seconds is watch()'s (`stall` events).
 */
function stallCheck(m, e) {
  const title = 'no failed charges at the limit now'
  const dt = isNum(m.timestampMs) && isNum(e.timestampMs) ? (m.timestampMs - e.timestampMs) / 1000 : NaN
  // The core's counter file (v1 memory.failcnt, v2 memory.events max); the
  // reading's events field is named by its last word (failcnt, max). Where a
  // parent cgroup holds the limit, the kernel counts the failed charges
  // there, and its working set is what sits at the limit: the stall
  // detector's numbers (src/watch/stall.rs), read from limitingCgroup.
  const lim = m.limitingCgroup
  const limBefore = lim && e.limitingCgroup && e.limitingCgroup.path === lim.path ? e.limitingCgroup : null
  const file = filesOf(m.cgroup && m.cgroup.version).failures
  const counterName = lim ? `${file} of ${lim.path}` : file
  const counter = file.split(/[ .]/).pop()
  const now = lim ? lim.failures : m.events ? m.events[counter] : null
  const before = lim ? (limBefore ? limBefore.failures : null) : e.events ? e.events[counter] : null
  if (!(dt > 0) || !isNum(now) || !isNum(before)) {
    return check(
      'charge-failures',
      title,
      'manual',
      m.cgroup ? `${counterName} could not be read twice.` : 'Not in a memory cgroup: no charge-failure counter.',
      `read ${counterName} twice a second apart; a count rising fast while the working set sits at the limit, with memory pressure, is a service stuck at its limit that the kernel may never OOM-kill.`,
    )
  }
  const rate = (now - before) / dt
  const parts = [`${Math.round(rate)} failed charges/s (${counterName}, over ${dt.toFixed(1)} s)`]
  const p = m.pressure
  const q = e.pressure
  const kind = p && p.scope === 'cgroup' && p.full ? 'full' : 'some'
  let pressure = null
  if (p && q && p.scope === q.scope && p[kind] && q[kind]) {
    pressure = Math.max(0, p[kind].totalUs - q[kind].totalUs) / (dt * 1e6)
    parts.push(`${p.scope === 'cgroup' ? 'cgroup' : 'system-wide'} memory pressure ${kind} ${pct(pressure)}`)
  }
  const refaults = refaultCount(m) !== null && refaultCount(e) !== null ? (refaultCount(m) - refaultCount(e)) / dt : null
  if (refaults !== null) parts.push(`${Math.round(refaults)} refaults/s`)
  const wsBytes = lim ? lim.workingSetBytes : m.workingSetBytes
  const ws = isNum(wsBytes) && isNum(m.cgroupLimitBytes) ? wsBytes / m.cgroupLimitBytes : null
  if (ws !== null) parts.push(`${lim ? `working set of ${lim.path}` : 'working set'} ${pct(ws)} of the limit`)
  const margin = WATCH_DEFAULTS.stall.margin
  // v1 with a memory+swap limit that binds (Docker --memory-swap equal to
  // --memory): the memsw charge fails first and the kernel counts no failed
  // charge at all, so a zero rate proves nothing there (the stall detector
  // judges it by refaults: decidedBy 'refaults').
  const memsw = memswShare(m)
  const memswBinds = memsw !== null && memsw >= 1 - margin
  if (memswBinds) parts.push(`memory+swap ${pct(memsw)} of its limit, where the kernel counts no failed charges`)
  if (!(rate > 0) && !memswBinds) return check('charge-failures', title, 'pass', `${parts.join(', ')}.`)
  const stuck = ws !== null && ws >= 1 - margin && ((pressure !== null && pressure > 0) || (refaults !== null && refaults > 0))
  return check(
    'charge-failures',
    title,
    stuck ? 'fail' : 'warn',
    `${parts.join(', ')}. ${
      stuck
        ? 'The working set is at the limit and what is reclaimed is needed again: this looks like a stall, where the kernel keeps reclaiming and may never OOM-kill.'
        : 'The kernel is reclaiming at the limit (page cache, most likely): fine while the working set stays well below it.'
    }`,
    stuck
      ? "size the V8 heap below the limit so that heap growth ends in a fast V8 failure with a stack trace, and let oomguard end a stall: watch({ onStall: { action: 'exit', afterMs: 30000 } }) or OOMGUARD_ON_STALL=exit:30000."
      : null,
  )
}

/**
 * v1: memory+swap usage as a share of the memory+swap limit (memory.stat
 * hierarchical_memsw_limit, as the stall detector reads it: the memsw
 * counter binds there with or without swap space, so not the usable swap
 * of swapLimitBytes), or null; the limiting parent's where one holds the limit.
 */
function memswShare(m) {
  if (!m.cgroup || m.cgroup.version !== 1) return null
  const lim = m.limitingCgroup
  if (lim) return isNum(lim.memswUsageBytes) && isNum(lim.memswLimitBytes) && lim.memswLimitBytes > 0 ? lim.memswUsageBytes / lim.memswLimitBytes : null
  const { usageBytes: u, swapBytes: s } = m
  const memswLimit = m.stat && m.stat.raw ? m.stat.raw.hierarchical_memsw_limit : null
  if (![u, s, memswLimit].every(isNum) || !(memswLimit > 0)) return null
  return (u + s) / memswLimit
}

/** Refaults so far from the raw memory.stat (v2 names, v1 total_ names), or null. */
function refaultCount(m) {
  const raw = m.stat && m.stat.raw
  if (!raw) return null
  for (const prefix of ['total_', '']) {
    const a = raw[`${prefix}workingset_refault_anon`]
    const f = raw[`${prefix}workingset_refault_file`]
    if (isNum(a) || isNum(f)) return (isNum(a) ? a : 0) + (isNum(f) ? f : 0)
    if (isNum(raw[`${prefix}workingset_refault`])) return raw[`${prefix}workingset_refault`]
  }
  return null
}

// `diagnose` is buildReport's public name of old (doctor.diagnose): kept as an alias.
module.exports = { buildReport, diagnose: buildReport, STATUSES, HEAP_SHARE, HEAP_BAND }
