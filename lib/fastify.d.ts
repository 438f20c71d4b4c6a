// oomguard for Fastify (`oomguard/fastify`): load shedding and a memory
// health route, as a Fastify plugin (Fastify 4 and 5).
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { Monitor, ShedHealth, ShedOptions } from './index'

export type { ShedHealth } from './index'

/**
 * The plugin's options: those of `shed()`, with Fastify's request and reply
 * passed to `exclude` and `onShed`.
 */
export type OomguardFastifyOptions = ShedOptions<FastifyRequest, FastifyReply>

/** What the plugin decorates the instance with as `fastify.oomguard`. */
export interface OomguardFastifyState {
  /** The monitor read on each request (created by the plugin unless passed in). */
  readonly monitor: Monitor
  /** The level at which requests are shed. */
  readonly level: number
  readonly retryAfter: number
  readonly healthPath: string | null
  /** True while requests are being shed. No I/O. */
  readonly shedding: boolean
  /** Requests answered 503 so far. */
  readonly shedTotal: number
  /** The health route's body, now. No I/O. */
  health(): ShedHealth
}

declare module 'fastify' {
  interface FastifyInstance {
    /** oomguard's monitor (see `watch()`). */
    memoryMonitor: Monitor
    /** oomguard's shedding state. */
    oomguard: OomguardFastifyState
  }
  interface FastifyContextConfig {
    /** `false`: this route is never shed. */
    oomguard?: boolean
  }
}

/**
 * Load shedding for Fastify. An `onRequest` hook answers `503 Service
 * Unavailable` with `Retry-After` while the container's memory is at or above
 * `options.level` of the monitor; excluded paths and routes with
 * `config: { oomguard: false }` pass. Applies to the whole application (like a
 * plugin wrapped with fastify-plugin). Registers the health route
 * (`options.healthPath`, default `GET /health/memory`) and closes a monitor it
 * created when Fastify closes.
 *
 * ```js
 * await fastify.register(require('oomguard/fastify'), { retryAfter: 10 })
 * ```
 */
declare const oomguard: FastifyPluginAsync<OomguardFastifyOptions>
export default oomguard
export { oomguard }
