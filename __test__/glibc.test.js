'use strict'
// The published .node must load where Node's own Linux binaries do: glibc
// 2.28 (Debian 10+, Ubuntu 20.04+, RHEL 8+). The highest GLIBC_ symbol
// version the built binary needs is read from its ELF version-needs section
// (.gnu.version_r), parsed here so the test needs no binutils.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

const REPO = path.join(__dirname, '..')
const MAX_GLIBC = '2.28'

const SHT_GNU_VERNEED = 0x6ffffffe

/**
 * The version names (e.g. GLIBC_2.28) an ELF64 little-endian shared object
 * needs, by library: `{ 'libc.so.6': ['GLIBC_2.2.5', ...] }`.
 */
function versionNeeds(buf) {
  if (buf.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file')
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error('not a 64-bit little-endian ELF file')
  const shoff = Number(buf.readBigUInt64LE(0x28))
  const shentsize = buf.readUInt16LE(0x3a)
  const shnum = buf.readUInt16LE(0x3c)
  const sections = []
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize
    sections.push({
      type: buf.readUInt32LE(o + 4),
      offset: Number(buf.readBigUInt64LE(o + 0x18)),
      size: Number(buf.readBigUInt64LE(o + 0x20)),
      link: buf.readUInt32LE(o + 0x28),
      info: buf.readUInt32LE(o + 0x2c),
    })
  }
  const str = (table, at) => {
    const start = table.offset + at
    return buf.toString('latin1', start, buf.indexOf(0, start))
  }
  const out = {}
  for (const s of sections.filter((x) => x.type === SHT_GNU_VERNEED)) {
    const strtab = sections[s.link]
    let o = s.offset
    for (let n = 0; n < s.info; n++) {
      // Elf64_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32
      const cnt = buf.readUInt16LE(o + 2)
      const file = str(strtab, buf.readUInt32LE(o + 4))
      const names = (out[file] = out[file] || [])
      let a = o + buf.readUInt32LE(o + 8)
      for (let k = 0; k < cnt; k++) {
        // Elf64_Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32
        names.push(str(strtab, buf.readUInt32LE(a + 8)))
        a += buf.readUInt32LE(a + 12)
      }
      o += buf.readUInt32LE(o + 12)
    }
  }
  return out
}

const compare = (a, b) => {
  const x = a.split('.').map(Number)
  const y = b.split('.').map(Number)
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) - (y[i] || 0)
  return 0
}

/** The highest GLIBC_x.y the object needs, e.g. '2.28'; null if none. */
function highestGlibc(needs) {
  const versions = Object.values(needs)
    .flat()
    .filter((v) => /^GLIBC_\d+(\.\d+)*$/.test(v))
    .map((v) => v.slice(6))
  return versions.sort(compare).pop() || null
}

test('versionNeeds() reads the version needs of a real ELF object: node itself', () => {
  const needs = versionNeeds(fs.readFileSync(process.execPath))
  assert.ok(needs['libc.so.6'] && needs['libc.so.6'].includes('GLIBC_2.2.5'), JSON.stringify(needs))
  assert.ok(compare(highestGlibc(needs), '2.17') >= 0)
})

test(`the built addons need at most glibc ${MAX_GLIBC} (gnu), none at all (musl)`, { skip: process.platform !== 'linux' && 'Linux only' }, () => {
  const files = fs.readdirSync(REPO).filter((f) => f.endsWith('.node'))
  assert.ok(files.length > 0, 'no .node at the repository root: npm run build first')
  for (const f of files) {
    const needs = versionNeeds(fs.readFileSync(path.join(REPO, f)))
    if (f.endsWith('-musl.node')) {
      // npm run build:all's musl builds: musl's libc.so, no glibc at all.
      assert.deepEqual(
        Object.keys(needs).filter((lib) => /^(libc|libm|libpthread|libdl)\.so\.\d/.test(lib)),
        [],
        `${f} needs glibc: ${JSON.stringify(needs)}`,
      )
      continue
    }
    const max = highestGlibc(needs)
    assert.ok(max !== null, `${f}: needs no GLIBC_ version at all? ${JSON.stringify(needs)}`)
    assert.ok(compare(max, MAX_GLIBC) <= 0, `${f} needs GLIBC_${max}, more than ${MAX_GLIBC} (${JSON.stringify(needs)}); build with npm run build, which targets glibc ${MAX_GLIBC}`)
  }
})

module.exports = { versionNeeds, highestGlibc }
