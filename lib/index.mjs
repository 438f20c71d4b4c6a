import oomguard from './index.js'

export default oomguard
export const { getMemoryMetrics, watch, Monitor, WATCH_DEFAULTS, nativeAddon } = oomguard

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
// A constant has no lazy form: reading it loads lib/integrations/shed.js.
export const SHED_DEFAULTS = oomguard.SHED_DEFAULTS
