// The CommonJS entry point through require(), not `import ... from './index.js'`:
// that goes through node's ES module loader, which also scans the file for
// the names it exports: 3.4 ms more at start (benchmark/README.md).
import { createRequire } from 'node:module'

const oomguard = createRequire(import.meta.url)('./index.js')

export default oomguard
export const { getMemoryMetrics, watch, Monitor, nativeAddon } = oomguard
// A constant has no lazy form: these are read at import, from lib/core/declared.js
// (the declarations alone: neither the validator nor shed() loads with them).
export const { WATCH_DEFAULTS, SHED_DEFAULTS } = oomguard

// The integrations stay lazy for ES modules too: these wrappers load them on
// first call. (Their constants and objects are read from the default export.)
export function shed(...args) {
  return oomguard.shed(...args)
}
export function prometheus(...args) {
  return oomguard.prometheus(...args)
}
Object.defineProperty(prometheus, 'contentType', { enumerable: true, get: () => oomguard.prometheus.contentType })
export function registerPromClient(...args) {
  return oomguard.registerPromClient(...args)
}
export function observeMemory(...args) {
  return oomguard.observeMemory(...args)
}
export const doctor = Object.freeze({
  buildReport: (...args) => oomguard.doctor.buildReport(...args),
  diagnose: (...args) => oomguard.doctor.diagnose(...args),
  render: (...args) => oomguard.doctor.render(...args),
  useColor: (...args) => oomguard.doctor.useColor(...args),
})
