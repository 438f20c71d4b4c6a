'use strict'
// A short watch() in the VM (oom-v2.test.js), reporting what the sampler
// armed: node sampler-v2.js PACKAGE_DIR. One line: OOMGUARD_SAMPLER + JSON.

const pkg = process.argv[2]
const oomguard = require(pkg)
const native = require(`${pkg}/index.js`)
const m = oomguard.watch({ lastWords: false }, () => {})
setTimeout(() => {
  console.log(`OOMGUARD_SAMPLER ${JSON.stringify({ info: native.samplerInfo(), current: m.current })}`)
  m.close()
}, 300)
