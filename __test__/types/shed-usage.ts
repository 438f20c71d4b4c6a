// Compiled by __test__/shed.test.js with `tsc --noEmit` (tsconfig.shed.json):
// the declarations of shed() and the Fastify plugin, as they are used.
import * as http from 'node:http'
import Fastify from 'fastify'
import { SHED_DEFAULTS, type ShedHealth, type ShedMiddleware, shed, watch } from 'oomguard'
import oomguard, { type OomguardFastifyOptions } from 'oomguard/fastify'

const guard: ShedMiddleware = shed({ retryAfter: 5, exclude: ['/metrics'], healthPath: false })
http.createServer(guard.wrap((req, res) => void res.end('hello')))
http.createServer((req, res) => guard(req, res, () => res.end('hello')))
const health: ShedHealth = guard.health()
const status: 'ok' | 'shedding' = health.status
const shedding: boolean = guard.shedding
guard.close()

const monitor = watch({ thresholds: [0.9] })
shed({ monitor, level: 1, exclude: (req) => req.url === '/x', onShed: (req, res) => void res.statusCode })
shed({ watch: { thresholds: [0.85], basis: 'usage' } })
shed()
const excluded: readonly string[] = SHED_DEFAULTS.exclude
// @ts-expect-error level is a number
shed({ level: 'high' })

const app = Fastify()
const opts: OomguardFastifyOptions = { level: 1, exclude: (request) => request.routeOptions.url === '/x' }
app.register(oomguard, opts)
app.register(oomguard, { onShed: (request, reply) => void reply.statusCode, healthPath: '/mem' })
app.get('/free', { config: { oomguard: false } }, async () => 'ok')
app.after(() => {
  const level: number = app.memoryMonitor.level
  const s: boolean = app.oomguard.shedding
  const h: ShedHealth = app.oomguard.health()
  void [level, s, h]
})

void [status, shedding, excluded]
