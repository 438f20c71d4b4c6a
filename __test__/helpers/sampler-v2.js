'use strict'
// A short watch() in the VM (oom-v2.test.js), reporting what the sampler
// armed: node sampler-v2.js PACKAGE_DIR. One line: OOMGUARD_SAMPLER + JSON.
// The sampler thread arms its kernel wake-ups after its first pass, which in
// the emulated VM can take longer than a fixed wait: poll for up to 10 s.

const pkg = process.argv[2]
const oomguard = require(pkg)
const native = require(`${pkg}/index.js`)
const m = oomguard.watch({ lastWords: false }, () => {})
const started = Date.now()
const report = () => {
  const info = native.samplerInfo()
  if (info.triggers.length === 0 && Date.now() - started < 10_000) return setTimeout(report, 100)
  console.log(`OOMGUARD_SAMPLER ${JSON.stringify({ info, current: m.current, waitedMs: Date.now() - started })}`)
  m.close()
}
setTimeout(report, 100)
