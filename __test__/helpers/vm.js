'use strict'
// The throwaway cgroup v2 VM the live v2 tests run node in. The VM runner is
// named by the environment variable OOMGUARD_CGROUP2_VM:
//   "$OOMGUARD_CGROUP2_VM" [options] HOST_DIR MEMORY_MAX -- COMMAND...
// It makes HOST_DIR the guest's /host (the command's cwd; packed into the
// initramfs, or shared live with --9p), puts the host's node in the guest,
// runs the command in a child cgroup with memory.max = MEMORY_MAX and exits
// with the command's status (137 on an OOM kill). With --container the
// command runs as a container runtime starts one on cgroup v2: its own cgroup
// namespace, cgroup2 mounted read-only at /sys/fs/cgroup. Without the
// variable the tests are skipped (a failure under OOMGUARD_REQUIRE_PRIVILEGED=1).

const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const h = require('./cgroup')

const VM_ENV = 'OOMGUARD_CGROUP2_VM'

/** The runner's path, or null after skipping the test (privileged()) when the variable is unset. */
function needVm(t) {
  const vm = process.env[VM_ENV]
  if (!vm) {
    h.privileged(t, `${VM_ENV} is not set: point it at the cgroup v2 VM runner script ` + `(usage: "$${VM_ENV}" HOST_DIR MEMORY_MAX -- COMMAND...) to run the live cgroup v2 tests`)
    return null
  }
  try {
    fs.accessSync(vm, fs.constants.X_OK)
  } catch (e) {
    throw new Error(`${VM_ENV}=${vm} is not an executable file (${e.code})`)
  }
  return vm
}

/** Whether the runner's --help lists `option` (e.g. '--9p-cache'). */
function vmHasOption(vm, option) {
  const r = spawnSync(vm, ['--help'], { encoding: 'utf8', timeout: 10_000 })
  return new RegExp(`(^|\\s)${option.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\s|$)`, 'm').test(`${r.stdout}${r.stderr}`)
}

/**
 * Whether the runner has every one of `options` (e.g. '--container'); when
 * one is missing, skips the test through privileged() (a failure under
 * OOMGUARD_REQUIRE_PRIVILEGED=1) and returns false.
 */
function needVmOptions(t, vm, options, why) {
  const missing = options.filter((o) => !vmHasOption(vm, o))
  if (missing.length === 0) return true
  h.privileged(t, `the cgroup v2 VM runner (${vm}) has no ${missing.join(', ')} option: ${why}`)
  return false
}

/**
 * A small HOST_DIR in a temp folder, removed after the test: the package
 * (lib/, index.js, package.json, the .node file) and `files` (absolute paths,
 * copied to its top level). Never node_modules or target.
 */
function stageHostDir(t, files = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oomguard-v2-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const root = h.REPO_ROOT
  fs.cpSync(path.join(root, 'lib'), path.join(dir, 'lib'), { recursive: true })
  for (const f of ['index.js', 'package.json']) fs.copyFileSync(path.join(root, f), path.join(dir, f))
  // Only this machine's own binary: the guest runs the host's node, and the
  // runner links in what each staged .node needs (ldd), which fails on the
  // other platforms' binaries that `npm run build:all` leaves here.
  const addons = fs.readdirSync(root).filter((f) => f.endsWith(`.linux-${process.arch}-gnu.node`))
  assert.ok(addons.length > 0, `no *.node file in ${root}: build the addon first (npx napi build --platform --release)`)
  for (const f of addons) fs.copyFileSync(path.join(root, f), path.join(dir, f))
  for (const f of files) fs.copyFileSync(f, path.join(dir, path.basename(f)))
  return dir
}

/**
 * Boot the VM: `command` (an argv) in HOST_DIR under MEMORY_MAX. The runner
 * kills its VM after `vmTimeoutS`; this side kills the runner's whole process
 * group 15 s later. Resolves with runProcess()'s result.
 */
function runVm(vm, { options = [], hostDir, memoryMax, command, vmTimeoutS }) {
  const args = [...options, '--timeout', String(vmTimeoutS), hostDir, memoryMax, '--', ...command]
  return h.runProcess(vm, args, { timeoutMs: (vmTimeoutS + 15) * 1000, group: true })
}

module.exports = { VM_ENV, needVm, vmHasOption, needVmOptions, stageHostDir, runVm }
