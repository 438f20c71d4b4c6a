'use strict'
// A Fastify server with oomguard load shedding.
//
//   PORT=3000 node examples/fastify.js
//   curl -i localhost:3000/              hello (503 + Retry-After while memory is near the limit)
//   curl -s localhost:3000/health/memory the memory state as JSON (200 ok, 503 shedding)
//   curl -s localhost:3000/metrics       Prometheus text (never shed)
//
// `require('oomguard/fastify')` works here as in your app: Node resolves a
// package's own name from inside it, so this file runs from the repository as is.
// OOMGUARD_ROOT (tests only) points the monitor at a fixture tree instead of `/`.

const Fastify = require('fastify')
const { prometheus } = require('oomguard')

const root = process.env.OOMGUARD_ROOT || undefined
const fastify = Fastify({ logger: false })

// Applies to the whole app (like a fastify-plugin plugin). Sheds at the
// monitor's highest level (95% of the limit by default), adds GET
// /health/memory, decorates fastify.memoryMonitor, closes the monitor on close.
fastify.register(require('oomguard/fastify'), { retryAfter: 10, watch: { root } })

fastify.get('/metrics', async (request, reply) => {
  reply.type(prometheus.contentType)
  return prometheus({ monitor: fastify.memoryMonitor, root })
})

fastify.get('/', async () => 'hello\n')

fastify.listen({ port: Number(process.env.PORT || 0), host: process.env.HOST || '127.0.0.1' }).then(
  () => console.log(`listening on ${fastify.server.address().port}`),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => fastify.close())
}
