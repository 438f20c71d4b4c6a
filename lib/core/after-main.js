'use strict'
// Work that waits until the main module has run, off the service's start-up
// path: the register's /metrics server and heap-limit line, the monitor's
// first read of the heap limit (node:v8).
//
// A CommonJS main runs in one piece, so the next turn of the event loop is
// after it. An ES module main (a .mjs, or any main under `--import`) is
// loaded over many turns, its files read asynchronously: a plain immediate
// runs in between, before the main module (benchmark/startup.js: the
// preload's /metrics server and heap-limit line, about 9 ms, landed there).

// Past this, the work runs even if the main module has not finished (a
// top-level await that takes long, or never settles).
const MAIN_WAIT_MS = 1000

/** node's ES module loader's listener on 'exit' (the warning about an unsettled top-level await). */
const isLoaderListener = (event, listener) => event === 'exit' && typeof listener === 'function' && listener.name === 'handleProcessExit'

/**
 * Is node's ES module loader still loading or running the main module? It
 * adds its `handleProcessExit` listener on 'exit' before the first
 * `--import` and removes it once the main module has run; a CommonJS main
 * run without `--import` has none. (Node 20 to 24; where the name is not
 * found, nothing waits.)
 */
function mainLoading() {
  const listeners = process.listeners('exit')
  for (let i = 0; i < listeners.length; i++) if (isLoaderListener('exit', listeners[i])) return true
  return false
}

/**
 * Run `fn` once the main module has run: on the next turn (`keep`: an
 * immediate, which keeps the process for that one turn; else an unref'd
 * timer), unless node's ES module loader is then still at the main module
 * (with `-r` the loader starts after the preload: so it is asked again on
 * that turn). Then as soon as the loader removes its listener (process's
 * 'removeListener' event): in a microtask right after the main module, before
 * the event loop goes on, so before the main module's own first immediate;
 * MAIN_WAIT_MS at most (an unref'd timer). `fn` must not throw.
 */
function afterMain(fn, keep) {
  const next = () => (mainLoading() ? whenLoaded(fn) : fn())
  if (mainLoading()) whenLoaded(fn)
  else if (keep) setImmediate(next)
  else setTimeout(next, 0).unref()
}

function whenLoaded(fn) {
  let done = false
  const run = () => {
    if (done) return
    done = true
    process.removeListener('removeListener', onRemove)
    clearTimeout(timer)
    fn()
  }
  // A microtask: process.exit() removes the listener too, then exits before any microtask runs.
  const onRemove = (event, listener) => {
    if (isLoaderListener(event, listener)) queueMicrotask(run)
  }
  process.on('removeListener', onRemove)
  const timer = setTimeout(run, MAIN_WAIT_MS).unref()
}

module.exports = { afterMain, mainLoading, MAIN_WAIT_MS }
