// oomguard for Fastify (`oomguard/fastify`): load shedding and a memory
// health route, as a Fastify plugin (Fastify 4 and 5).
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { Monitor, ShedOptions, ShedState } from '../index'

export type { ShedHealth } from '../index'

/**
 * The plugin's options: those of `shed()`, with Fastify's request and reply
 * passed to `exclude` and `onShed`.
 */
export type OomguardFastifyOptions = ShedOptions<FastifyRequest, FastifyReply>

/** What the plugin decorates the instance with as `fastify.oomguard`: the
 * same state `shed()`'s middleware exposes. */
export type OomguardFastifyState = ShedState

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
