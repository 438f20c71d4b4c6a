import oomguard from './index.js'

export const { getMemoryMetrics, watch, Monitor, WATCH_DEFAULTS } = oomguard
export default oomguard
export const { shed, SHED_DEFAULTS } = oomguard
export const { prometheus, registerPromClient, observeMemory } = oomguard
export const { doctor } = oomguard
