import oomguard from './index.js'

export const { getMemoryMetrics } = oomguard
export default oomguard
