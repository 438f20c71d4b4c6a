'use strict'
// A node:http server with oomguard load shedding.
//
//   PORT=3000 node examples/http.js
//   curl -i localhost:3000/              hello (503 + Retry-After while memory is near the limit)
//   curl -s localhost:3000/health/memory the memory state as JSON (200 ok, 503 shedding)
//   curl -s localhost:3000/metrics       Prometheus text (never shed)
//
// `require('oomguard')` works here as in your app: Node resolves a package's
// own name from inside it, so this file runs from the repository as is.
// OOMGUARD_ROOT (tests only) points the monitor at a fixture tree instead of `/`.

const http = require('node:http')
const { shed, prometheus } = require('oomguard')

const root = process.env.OOMGUARD_ROOT || undefined

// Shed at the monitor's highest level: working set at or above 95% of the
// container's limit (the default thresholds are 0.8, 0.9, 0.95), until it
// falls back below 90%. Health and metrics paths always pass.
const guard = shed({ retryAfter: 10, watch: { root } })

function handler(req, res) {
  if (req.url === '/metrics') {
    res.writeHead(200, { 'content-type': prometheus.contentType })
    res.end(prometheus({ monitor: guard.monitor, root }))
    return
  }
  if (req.url === '/' || req.url.startsWith('/?')) {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
    res.end('hello\n')
    return
  }
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
  res.end('not found\n')
}

// guard.wrap(handler) is `(req, res) => guard(req, res, () => handler(req, res))`
// without the closure per request.
const server = http.createServer(guard.wrap(handler))

server.listen(Number(process.env.PORT || 0), process.env.HOST || '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}`)
})

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    guard.close()
    server.close()
    server.closeAllConnections()
  })
}
