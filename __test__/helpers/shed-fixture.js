'use strict'
// Drive a monitor's level deterministically: copy the v2-busy fixture tree to
// a temporary directory and rewrite its memory.current in place (same inode,
// same length) so the working set lands at a chosen ratio of the limit. Used
// by shed.test.js and examples.test.js. Loopback HTTP helpers too.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const http = require('node:http')

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'v2-busy')
const LEAF = path.join('sys', 'fs', 'cgroup', 'fxcap', 'busy')
const LIMIT = 268435456 // fxcap/memory.max
const INACTIVE_FILE = 42819584 // memory.stat inactive_file: working set = current - this

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A private copy of the v2-busy tree. `setRatio(r)` moves its working set to r × limit. */
function fixtureCopy() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-shed-'))
  fs.cpSync(FIXTURE, dir, { recursive: true })
  const current = path.join(dir, LEAF, 'memory.current')
  const fd = fs.openSync(current, 'r+')
  const originalLength = fs.fstatSync(fd).size
  let ratio = (181149696 - INACTIVE_FILE) / LIMIT
  return {
    root: dir,
    limit: LIMIT,
    get ratio() {
      return ratio
    },
    /** Rewrite memory.current in place. Every value used has 9 digits, so one pwrite of the same length replaces it. */
    setRatio(r) {
      const text = `${Math.round(r * LIMIT) + INACTIVE_FILE}\n`
      if (text.length !== originalLength) throw new Error(`ratio ${r} gives ${text.length - 1} digits; keep it in 0.3..0.99`)
      fs.writeSync(fd, text, 0)
      ratio = r
    },
    cleanup() {
      try {
        fs.closeSync(fd)
      } catch {
        // already closed
      }
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Poll `cond()` every few ms until true; throws after `timeoutMs`. */
async function until(cond, what, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await cond()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

/** Set the ratio and wait until `monitor` has sampled it. */
async function driveTo(fx, monitor, r) {
  fx.setRatio(r)
  await until(() => monitor.current.ratio !== null && Math.abs(monitor.current.ratio - r) < 1e-6, `the monitor to see ratio ${r}`)
}

/** One HTTP request to 127.0.0.1:port without keep-alive. Resolves { status, headers, body, json }. */
function request(port, pathname, { method = 'GET', body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathname, method, agent: false, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json
        try {
          json = JSON.parse(text)
        } catch {
          json = undefined
        }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json })
      })
      res.on('error', reject)
    })
    req.setTimeout(5000, () => req.destroy(new Error(`request ${method} ${pathname} timed out`)))
    req.on('error', reject)
    req.end(body)
  })
}

/** Listen on 127.0.0.1, an ephemeral port. Resolves the port. */
function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve(server.address().port))
  })
}

module.exports = { fixtureCopy, until, driveTo, request, listen, sleep, LIMIT }
