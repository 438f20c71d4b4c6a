'use strict'
// An HTTP service with a leak behind a route, watched by oomguard with the
// heap profile on, run inside a memory-limited cgroup until the kernel kills
// it. The parent drives the load over loopback.
//
//   node heap-leak-server.js FRAMEWORK LAST_WORDS_FILE PROFILE_DIR PACKAGE_DIR [START]
//
// FRAMEWORK: express | fastify | worker (an express server whose /orders
//   route hands the work to a worker thread, which leaks; the worker has the
//   monitor) | express-buffers (the leak is of Buffers: retainReceipts)
// START: the heap profile's start mode (default: threshold)
//
// Prints `OOMGUARD_LEAK {"port":N}` once listening.

const path = require('node:path')
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads')

// The leak: orders kept forever in a module-level cache, about 64 KiB of
// V8 heap per call. Its name and line are what the record must name. (Its
// bytecode is over TurboFan's inlining bound, 460 bytes: V8's sampler names
// the outermost function of an optimized frame, so a leak inlined into the
// route's handler is reported as the handler. docs/evidence.md: "What the heap profile can and cannot say".)
const cache = []
function retainOrders(n, customer = 'anonymous', region = 'eu-west') {
  const batch = new Array(n)
  const day = new Date().toISOString().slice(0, 10)
  for (let i = 0; i < n; i++) {
    const qty = (i * 7) & 15
    const price = Math.round((i % 97) * 1.5 * 100) / 100
    batch[i] = {
      id: `${customer}-${cache.length}-${i}`,
      sku: `sku-${i % 500}`,
      qty,
      price,
      total: qty * price,
      region: region === 'eu-west' ? 'EU' : region === 'us-east' ? 'US' : 'OTHER',
      day,
      flags: qty > 8 ? (price > 50 ? 3 : 2) : price > 50 ? 1 : 0,
      tax: region === 'eu-west' ? Math.round(qty * price * 21) / 100 : Math.round(qty * price * 8) / 100,
      currency: region === 'eu-west' ? 'EUR' : region === 'us-east' ? 'USD' : 'XXX',
      priority: qty > 12 ? 'high' : qty > 4 ? 'normal' : 'low',
      note: i % 10 === 0 ? `bulk-${customer}` : null,
      next: null,
    }
  }
  if (cache.length > 0 && cache.length % 1000 === 0) process.stdout.write(`cached ${cache.length}\n`)
  cache.push(batch)
  return batch.length
}

// The leak outside the heap (FRAMEWORK express-buffers): each order's
// receipt kept as a Buffer, about 64 KiB of backing store per call.
const receipts = []
function retainReceipts(n) {
  const head = Buffer.from(JSON.stringify({ n, at: Date.now(), seq: receipts.length }))
  receipts.push(Buffer.concat([head, Buffer.alloc(65536 - head.length, receipts.length & 255)]))
  return receipts.length
}

// Each other route allocates and drops: garbage the profile must not name.
function shortLived() {
  const tmp = []
  for (let i = 0; i < 500; i++) tmp.push({ i, s: `t-${i}` })
  return tmp.length
}

const [framework, lastWords, dir, pkgDir, start = 'threshold'] = process.argv.slice(2)
const PER_REQUEST = 400 // objects: ~64 KiB with their strings

// Each event's heap profile, in short, for the test's diagnostics.
function report(monitor) {
  const say = (kind) => (e) => {
    const hp = e.heapProfile
    const top = hp && hp.sites && hp.sites[0]
    process.stdout.write(
      `OOMGUARD_EVENT ${JSON.stringify({ kind, level: e.level, t: Date.now(), skipped: hp ? hp.skipped : 'off', pauseMs: hp ? hp.pauseMs : null, ageMs: hp ? hp.ageMs : null, top: top ? `${top.functionName} ${top.file}:${top.line} ${top.share}` : null, file: hp ? hp.file : null, fileError: hp ? hp.fileError : null })}\n`,
    )
  }
  monitor.on('threshold', say('threshold'))
  monitor.on('stall', say('stall'))
}

function announce(port) {
  process.stdout.write(`OOMGUARD_LEAK ${JSON.stringify({ port, pid: process.pid })}\n`)
}

if (!isMainThread) {
  // The worker: the monitor and the leak live here.
  const oomguard = require(path.resolve(workerData.pkgDir))
  report(oomguard.watch({ lastWords: { path: workerData.lastWords }, heapProfile: { start: workerData.start, dir: workerData.dir } }))
  parentPort.on('message', (n) => parentPort.postMessage(retainOrders(n)))
} else if (framework === 'worker') {
  const worker = new Worker(__filename, { workerData: { pkgDir, lastWords, dir, start } })
  const waiting = []
  worker.on('message', (n) => waiting.shift()?.(n))
  const express = require('express')
  const app = express()
  app.get('/orders', (req, res) => {
    waiting.push((n) => res.json({ n }))
    worker.postMessage(PER_REQUEST)
  })
  app.get('/ping', (req, res) => res.json({ n: shortLived() }))
  const server = app.listen(0, '127.0.0.1', () => announce(server.address().port))
} else {
  const oomguard = require(path.resolve(pkgDir))
  report(oomguard.watch({ lastWords: { path: lastWords }, heapProfile: { start, dir } }))
  if (framework === 'express' || framework === 'express-buffers') {
    const express = require('express')
    const app = express()
    const leak = framework === 'express' ? () => retainOrders(PER_REQUEST) : () => retainReceipts(PER_REQUEST)
    app.get('/orders', (req, res) => res.json({ n: leak() }))
    app.get('/ping', (req, res) => res.json({ n: shortLived() }))
    const server = app.listen(0, '127.0.0.1', () => announce(server.address().port))
  } else {
    const app = require('fastify')()
    app.get('/orders', async () => ({ n: retainOrders(PER_REQUEST) }))
    app.get('/ping', async () => ({ n: shortLived() }))
    app.listen({ port: 0, host: '127.0.0.1' }).then(() => announce(app.server.address().port))
  }
}
