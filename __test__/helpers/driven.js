'use strict'
// Start helpers/driven-service.js (a service that knows nothing about
// oomguard, driven line by line on stdin) or any node script inside a v1
// child cgroup, with the zero-code register in its environment, and wait
// for its lines.

const path = require('node:path')
const { spawn } = require('node:child_process')
const cg = require('./cgroup.js')

const REGISTER = path.join(cg.REPO_ROOT, 'lib', 'integrations', 'register.js')
const SERVICE = path.join(__dirname, 'driven-service.js')

/** The environment of a child: no OOMGUARD_* or NODE_OPTIONS from outside, then `extra`. */
function childEnv(extra) {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OOMGUARD_') && k !== 'NODE_OPTIONS') env[k] = v
  return { ...env, ...extra }
}

/**
 * Follow a spawned `child`: its stdout and stderr collected by line in
 * `out`, `out.exited` and `exited` once it exits, and `waitFor(what, pick)`,
 * which resolves with pick(out)'s first truthy value, or rejects (with the
 * output) when the child exits first or `timeoutMs` passes.
 */
function follow(child, timeoutMs) {
  const out = { stdout: [], stderr: [], exited: null }
  const waiters = new Set()
  for (const name of ['stdout', 'stderr']) {
    let buf = ''
    child[name].setEncoding('utf8').on('data', (d) => {
      buf += d
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        out[name].push(buf.slice(0, i))
        buf = buf.slice(i + 1)
      }
      for (const w of waiters) w()
    })
  }
  const exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      out.exited = { code, signal }
      for (const w of waiters) w()
      resolve(out.exited)
    }),
  )
  const waitFor = (what, pick, ms = timeoutMs) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const v = pick(out)
        const done = (f, x) => {
          waiters.delete(check)
          clearTimeout(timer)
          f(x)
        }
        if (v) done(resolve, v)
        else if (out.exited) done(reject, new Error(`exited ${JSON.stringify(out.exited)} before ${what}\nstdout:\n${out.stdout.join('\n')}\nstderr:\n${out.stderr.join('\n')}`))
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`timed out waiting for ${what}\nstdout:\n${out.stdout.join('\n')}\nstderr:\n${out.stderr.join('\n')}`))
      }, ms)
      waiters.add(check)
      check()
    })
  return { out, waitFor, exited }
}

/**
 * Start `node args` in cgroup `dir` (with at most `nofile` descriptors
 * unless null), stdin a pipe, its lines collected. `waitFor(what, pick)`
 * resolves with pick(out)'s first truthy value; `exited` resolves with
 * `{ code, signal }`; `kill()` sends SIGKILL (by pid).
 */
function startIn(dir, nofile, args, env) {
  const child = spawn(
    'sh',
    ['-c', 'echo $$ > "$1" && { [ "$2" = - ] || ulimit -n "$2"; } && shift 2 && exec "$@"', 'sh', path.join(dir, 'cgroup.procs'), nofile === null ? '-' : String(nofile), process.execPath, ...args],
    { cwd: cg.REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] },
  )
  const { out, waitFor, exited } = follow(child, 20_000)
  const kill = () => {
    if (!out.exited) {
      try {
        process.kill(child.pid, 'SIGKILL')
      } catch {}
    }
  }
  return { child, out, waitFor, kill, exited, send: (line) => child.stdin.write(`${line}\n`) }
}

const json = (lines) => lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))

module.exports = { REGISTER, SERVICE, childEnv, follow, startIn, json }
