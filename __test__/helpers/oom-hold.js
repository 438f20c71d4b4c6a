'use strict'
// Runs inside a memory-limited cgroup and holds memory at the shares of the
// limit the parent asks for, one command per line on stdin, with a monitor
// on default thresholds (0.8/0.9/0.95) writing its last words to a file:
//
//   node --expose-gc oom-hold.js LAST_WORDS_FILE [PACKAGE_DIR]
//
//   hold R    grow (1 MiB Buffers) until the working set is at least R of the
//             limit, then answer {"held": ratio, "level": n}
//   release   drop every Buffer, collect, wait until the monitor is back at
//             level 0, then answer {"released": ratio, "level": 0}
//   exit      exit normally (the monitor still open)

const path = require('node:path')
const readline = require('node:readline')
const { MiB, growBuffer } = require('./alloc')

const [lastWordsFile, pkgDir] = process.argv.slice(2)
const oomguard = require(pkgDir ? path.resolve(pkgDir) : path.join(__dirname, '..', '..'))
const monitor = oomguard.watch({ maxIntervalMs: 50, lastWords: { stderr: false, path: lastWordsFile } })
monitor.on('error', (e) => console.log(JSON.stringify({ error: e.message, code: e.code })))

let keep = []
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const answer = (o) => console.log(JSON.stringify(o))

async function settle(pred) {
  for (let i = 0; i < 500 && !pred(); i++) await sleep(10)
}

async function run(line) {
  const [cmd, arg] = line.trim().split(/\s+/)
  if (cmd === 'hold') {
    const want = Number(arg)
    // A fresh reading each step (the monitor's sample may lag behind).
    const ratio = () => {
      const m = oomguard.getMemoryMetrics()
      return m.workingSetBytes / m.limitBytes
    }
    while (ratio() < want) growBuffer(keep, MiB)
    // A few samples at this level, so the record has caught up.
    const s = monitor.current.samples
    await settle(() => monitor.current.samples >= s + 3)
    answer({ held: monitor.current.ratio, level: monitor.level })
  } else if (cmd === 'release') {
    keep = []
    global.gc()
    await settle(() => monitor.level === 0)
    answer({ released: monitor.current.ratio, level: monitor.level })
  } else if (cmd === 'exit') {
    process.exit(0)
  }
}

let chain = Promise.resolve()
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  chain = chain.then(() => run(line))
})
answer({ ready: true, limitBytes: monitor.current.limitBytes })
