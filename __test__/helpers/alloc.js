'use strict'
// Memory growth shared by the OOM test child (oom-child.js) and the
// benchmark's poller child, so both grow memory the same way.

const MiB = 1024 * 1024

/** Touch `bytes` of fresh anonymous memory outside the V8 heap and keep it. */
function growBuffer(keep, bytes) {
  const b = Buffer.allocUnsafe(bytes)
  b.fill(1)
  keep.push(b)
}

/** Call `step(bytes)` to allocate `rate` bytes per second, in 10 ms ticks, at most 1 MiB a call. */
function paced(rate, step) {
  const t0 = Date.now()
  let done = 0
  const tick = () => {
    const want = ((Date.now() - t0) / 1000) * rate
    while (done < want) {
      const n = Math.min(MiB, want - done)
      step(n)
      done += n
    }
    setTimeout(tick, 10)
  }
  tick()
}

module.exports = { MiB, growBuffer, paced }
