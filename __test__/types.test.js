'use strict'
// The TypeScript declarations compile against real usage (strict mode), and
// a misuse is rejected (the @ts-expect-error line in types/usage.ts).

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

test('index.d.ts and lib/index.d.ts type-check a strict TypeScript user', { timeout: 120_000 }, () => {
  const tsc = require.resolve('typescript/bin/tsc')
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types', 'tsconfig.json')], { encoding: 'utf8' })
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`)
})
