'use strict'
// A service that knows nothing about oomguard (the register watches it),
// driven line by line on stdin:
//   emfile    open /dev/null until EMFILE and keep every descriptor
//   alloc N   allocate N MiB more (Buffers, touched) and keep them
//   release   close the descriptors opened by `emfile`
//   child     run `node -e` as a child process (spawnSync) and print what the
//             register did there: {"child": {role, reason, lastWordsFile, server}}
//   exit      exit normally (status 0)
// It serves HTTP on 127.0.0.1 (port 0; printed first as {"listening":port})
// and answers each request with the descriptors it holds and its memory.
// Every step prints one JSON line on stdout.

const http = require('node:http')
const fs = require('node:fs')
const readline = require('node:readline')
const { spawnSync } = require('node:child_process')

// On its first turn of the event loop: the register starts /metrics on the turn after the main module.
const CHILD = `const s = globalThis[Symbol.for('oomguard.register')]
setImmediate(() => process.stdout.write(JSON.stringify({ role: s.role, reason: s.reason, lastWordsFile: s.monitor && s.monitor.lastWordsFile, server: s.server !== null })))`

const held = []
const fds = []
const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`)

const server = http.createServer((req, res) => {
  res.end(JSON.stringify({ pid: process.pid, fds: fds.length, heldMiB: held.length }))
})
server.keepAliveTimeout = 120_000
server.listen(0, '127.0.0.1', () => say({ listening: server.address().port }))

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, arg] = line.trim().split(/\s+/)
  if (cmd === 'emfile') {
    let code = null
    try {
      for (;;) fds.push(fs.openSync('/dev/null', 'r'))
    } catch (err) {
      code = err.code
    }
    let usage = null
    try {
      process.memoryUsage()
      usage = 'ok'
    } catch (err) {
      usage = err.code
    }
    say({ emfile: fds.length, code, memoryUsage: usage })
  } else if (cmd === 'alloc') {
    for (let i = 0; i < Number(arg); i++) held.push(Buffer.alloc(1024 * 1024, 1))
    say({ allocated: held.length })
  } else if (cmd === 'child') {
    const r = spawnSync(process.execPath, ['-e', CHILD], { encoding: 'utf8', timeout: 20_000 })
    say({ child: r.status === 0 ? JSON.parse(r.stdout) : { status: r.status, stderr: r.stderr } })
  } else if (cmd === 'exit') {
    process.exit(0)
  } else if (cmd === 'release') {
    for (const fd of fds.splice(0)) fs.closeSync(fd)
    say({ released: true })
  }
})
