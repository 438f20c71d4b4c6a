'use strict'
// Run the npm that belongs to the node running the tests: its npm-cli.js
// beside the binary (<prefix>/lib/node_modules/npm), started with this very
// node; `npm` from PATH only when there is none. (A node unpacked from an
// archive that dropped symlinks, as the Python wheels of Node do, has a
// bin/npm that cannot find its lib/cli.js.)

const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const cli = path.join(path.dirname(fs.realpathSync(process.execPath)), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js')

/** `npm args...` in `cwd`; returns stdout. */
function npm(args, cwd) {
  const env = { ...process.env, npm_config_update_notifier: 'false' }
  return fs.existsSync(cli) ? execFileSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', env }) : execFileSync('npm', args, { cwd, encoding: 'utf8', env })
}

module.exports = { npm }
