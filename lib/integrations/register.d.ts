// `require('oomguard/register')` (lib/integrations/register.js): loading it starts the
// monitor; what it exports is the state of that one start per process.

import type { Server } from 'node:http'
import type { Monitor } from '../index'

declare namespace state {
  interface RegisterState {
    /** True when the monitor runs. */
    readonly started: boolean
    /** Why nothing was started: `'OOMGUARD_DISABLE is set'`, `'worker thread'`, `'npm: a tool, not the service'`; else `null`. */
    readonly reason: string | null
    /**
     * Who this process is: the service (it may own the last-words file and serve /metrics), a
     * descendant of a live service (monitors and logs; no record file, no /metrics), or a tool
     * (npm, npx, oomguard's CLI: nothing starts). `null` before it was asked (disabled, worker).
     */
    readonly role: { role: 'service' } | { role: 'child'; servicePid: number } | { role: 'tool'; name: string } | null
    /** The monitor started from the OOMGUARD_* variables (unref'd), or `null`. */
    readonly monitor: Monitor | null
    /** The /metrics server (unref'd), only with OOMGUARD_METRICS_PORT, from the event loop's first turn after the main module; else `null`. */
    readonly server: Server | null
    /** Where /metrics listens, once it does. */
    readonly metricsAddress: { host: string; port: number } | null
    /** The pid of a sibling oomguard that serves /metrics on the port this process asked for, or `null`. */
    readonly metricsServedBy: number | null
    /** The code of the heap-limit line printed at start (`HEAP_LIMIT_*`), or `null`. */
    readonly heapWarning: string | null
    /** One line per variable that was not valid (its default was used). */
    readonly problems: readonly string[]
    /** The variables read, and what each means. */
    readonly VARIABLES: Readonly<Record<string, string>>
  }
}

declare const state: state.RegisterState
export = state
