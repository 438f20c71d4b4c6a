'use strict'
// An Express server with oomguard load shedding.
//
//   PORT=3000 node examples/express.js
//   curl -i localhost:3000/              hello (503 + Retry-After while memory is near the limit)
//   curl -s localhost:3000/health/memory the memory state as JSON (200 ok, 503 shedding)
//   curl -s localhost:3000/metrics       Prometheus text (never shed)
//
// `require('oomguard')` works here as in your app: Node resolves a package's
// own name from inside it, so this file runs from the repository as is.
// OOMGUARD_ROOT (tests only) points the monitor at a fixture tree instead of `/`.

const express = require('express')
const { shed, prometheus } = require('oomguard')

const root = process.env.OOMGUARD_ROOT || undefined
const app = express()

// First middleware, at the top, so it sees full paths and runs before any
// work. Sheds at the monitor's highest level (95% of the limit by default).
const guard = shed({ retryAfter: 10, watch: { root } })
app.use(guard)

app.get('/metrics', (req, res) => {
  res.type(prometheus.contentType).send(prometheus({ monitor: guard.monitor, root }))
})

app.get('/', (req, res) => {
  res.type('text/plain').send('hello\n')
})

const server = app.listen(Number(process.env.PORT || 0), process.env.HOST || '127.0.0.1', (err) => {
  if (err) throw err // Express 5 passes listen errors here
  console.log(`listening on ${server.address().port}`)
})

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    guard.close()
    server.close()
    server.closeAllConnections()
  })
}
