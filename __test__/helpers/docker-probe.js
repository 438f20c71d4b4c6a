'use strict'
// Run inside a Docker container by docker.test.js (/app/t/docker-probe.js,
// the package installed at /app/node_modules/oomguard): one line, PREFIX +
// JSON { metrics, doctor, kernel }, with the kernel's own view (the memory
// line of /proc/self/cgroup, the memory cgroup mount, memory.usage_in_bytes
// read just before and just after the call), and the node's own: its libc
// (glibc version or null) and the .node files it mapped (/proc/self/maps).

const fs = require('node:fs')

const PREFIX = 'OOMGUARD_DOCKER_PROBE '
const oomguard = require('oomguard')

const read = (f) => {
  try {
    return fs.readFileSync(f, 'utf8').trim()
  } catch (e) {
    return `<${e.code}>`
  }
}
const memoryLine = read('/proc/self/cgroup')
  .split('\n')
  .map((l) => /^\d+:([^:]*):(.*)$/.exec(l))
  .find((m) => m && m[1].split(',').includes('memory'))
const mount = read('/proc/self/mountinfo')
  .split('\n')
  .map((l) => {
    const sep = l.indexOf(' - ')
    if (sep < 0) return null
    const left = l.slice(0, sep).split(' ')
    const right = l.slice(sep + 3).split(' ')
    return { root: left[3], mountPoint: left[4], options: left[5], type: right[0], superOptions: right[2] }
  })
  .find((m) => m && m.type === 'cgroup' && m.superOptions.split(',').includes('memory'))

const dir = mount ? mount.mountPoint : '/sys/fs/cgroup/memory'
const usageBefore = Number(read(`${dir}/memory.usage_in_bytes`))
const metrics = oomguard.getMemoryMetrics()
const usageAfter = Number(read(`${dir}/memory.usage_in_bytes`))
const doctor = oomguard.doctor.diagnose(metrics)

process.stdout.write(
  PREFIX +
    JSON.stringify({
      metrics,
      doctor: { heap: doctor.heap, checks: doctor.checks.map((c) => ({ id: c.id, status: c.status })) },
      kernel: {
        memoryCgroupPath: memoryLine ? memoryLine[2] : null,
        mount,
        limit: read(`${dir}/memory.limit_in_bytes`),
        usageBefore,
        usageAfter,
      },
      node: {
        glibc: process.report.getReport().header.glibcVersionRuntime || null,
        loaded: [
          ...new Set(
            read('/proc/self/maps')
              .split('\n')
              .map((l) => l.split(/\s+/).slice(5).join(' '))
              .filter((f) => f.endsWith('.node')),
          ),
        ],
      },
    }) +
    '\n',
)
