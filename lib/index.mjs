import oomguard from './index.js'

export const { getMemoryMetrics, watch, Monitor, WATCH_DEFAULTS } = oomguard
export default oomguard
