// Compiled by __test__/types.test.js with `tsc --noEmit`: the declarations a
// TypeScript user gets must describe the API as it is used.
import { type CgroupProcess, getMemoryMetrics, type MemoryMetrics, type ThresholdEvent, WATCH_DEFAULTS, watch } from 'oomguard'

const m: MemoryMetrics = getMemoryMetrics()
const limit: number | null = m.limitBytes
const source: 'cgroup-v1' | 'cgroup-v2' | 'host' | null = m.source
const anon: number | null | undefined = m.stat?.anon
getMemoryMetrics(process.memoryUsage(), { root: '/tmp/fixture' })
const swap: [number | null, number | null, number | null] = [m.peakBytes, m.swapBytes, m.swapLimitBytes]
if (m.processes !== null) {
  const top: CgroupProcess | undefined = m.processes.largest[0]
  const command: string | null | undefined = top?.command
  const count: number = m.processes.count
  void [command, count, top?.rssBytes, top?.pid, m.processes.timestampMs, swap]
}
for (const d of m.diagnoses) {
  const code: string = d.code
  const rec: number | null = d.recommendedMaxOldSpaceSizeMib
  void code
  void rec
}

const monitor = watch({ thresholds: [0.7, 0.9], basis: 'usage', lastWords: { path: '/dev/termination-log' } }, (e: ThresholdEvent) => {
  const ttl: number | null = e.timeToLimitMs
  void ttl
})
monitor.on('recovered', (e) => void e.headroomBytes)
monitor.on('error', (err) => void err.message)
monitor.on('limit', (e) => {
  const grew: boolean = e.limitBytes > e.previousLimitBytes
  const verdict: 'fits' | 'near' | 'above' | null = e.heapLimit
  void [grew, verdict, e.diagnosis?.nodeOptions, e.source]
})
const level: number = monitor.level
const ratio: number | null = monitor.current.ratio
monitor.ref().unref()
monitor.close()
const t: readonly number[] = WATCH_DEFAULTS.thresholds

// @ts-expect-error basis must be one of the documented values
watch({ basis: 'heap' })

const stuck = watch({ stall: { sustainMs: 2000 }, onStall: { action: 'exit', afterMs: 30000 } })
stuck.on('stall', (e) => {
  const cause: 'v8-heap' | 'outside-heap' | 'page-cache' | 'kernel' | 'unknown' = e.cause
  const rate: number | null = e.failuresPerSec
  const scope: 'cgroup' | 'system' | undefined = e.pressure?.scope
  void [cause, rate, scope, e.durationMs]
})
stuck.on('stall-end', (e) => void e.durationMs)
const stalled: boolean | null = stuck.stalled
const stalledNow: boolean | null = m.stalled
const secs: number | null = stuck.current.stalledSeconds
watch({ stall: false })
// @ts-expect-error the only action is 'exit'
watch({ onStall: { action: 'kill' } })
void [stalled, stalledNow, secs]

void [limit, source, anon, level, ratio, t]
