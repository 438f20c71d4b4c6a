// `require('oomguard/register')` (lib/register.js): loading it starts the
// monitor; what it exports is the state of that one start per process.

import type { Monitor } from './index'
import type { Server } from 'node:http'

declare namespace state {
  interface RegisterState {
    /** True when the monitor runs. */
    readonly started: boolean
    /** Why nothing was started: `'OOMGUARD_DISABLE is set'`, `'worker thread'`; else `null`. */
    readonly reason: string | null
    /** The monitor started from the OOMGUARD_* variables (unref'd), or `null`. */
    readonly monitor: Monitor | null
    /** The /metrics server (unref'd), only with OOMGUARD_METRICS_PORT; else `null`. */
    readonly server: Server | null
    /** Where /metrics listens, once it does. */
    readonly metricsAddress: { host: string; port: number } | null
    /** One line per variable that was not valid (its default was used). */
    readonly problems: readonly string[]
    /** The variables read, and what each means. */
    readonly VARIABLES: Readonly<Record<string, string>>
  }
}

declare const state: state.RegisterState
export = state
