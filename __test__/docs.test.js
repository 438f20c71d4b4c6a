'use strict'
// Every relative link and every #anchor between the documentation pages
// resolves: README.md, CONTRIBUTING.md, docs/*.md and benchmark/README.md.
// Anchors follow GitHub's rule for heading ids. No network: links to other
// sites are not followed.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

const REPO = path.join(__dirname, '..')
const PAGES = [
  'README.md',
  'CONTRIBUTING.md',
  'benchmark/README.md',
  ...fs
    .readdirSync(path.join(REPO, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]

/** The lines of a markdown text outside fenced code blocks, with their numbers. */
function prose(text) {
  const out = []
  let fence = null
  text.split('\n').forEach((line, i) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(line)
    if (m) {
      if (fence === null) fence = m[1][0]
      else if (m[1][0] === fence) fence = null
      return
    }
    if (fence === null) out.push({ line, n: i + 1 })
  })
  return out
}

/** GitHub's id for a heading's text (github-slugger): lower case, punctuation dropped, spaces to hyphens. */
function slug(heading) {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links: their text
    .replace(/<[^>]+>/g, '') // inline HTML
    .replace(/[`*]/g, '') // code and emphasis markers
    .trim()
    .toLowerCase()
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-')
}

/** The anchors a page offers: its headings' ids (duplicates numbered as GitHub does) and explicit ids. */
function anchors(text) {
  const seen = new Map()
  const ids = new Set()
  for (const { line } of prose(text)) {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (h) {
      const base = slug(h[1])
      const count = seen.get(base) || 0
      seen.set(base, count + 1)
      ids.add(count === 0 ? base : `${base}-${count}`)
    }
    for (const m of line.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) ids.add(m[1])
  }
  return ids
}

/** The link targets of a page, outside code blocks and code spans: inline and reference definitions. */
function links(text) {
  const out = []
  for (const { line, n } of prose(text)) {
    const plain = line.replace(/`[^`]*`/g, '``')
    for (const m of plain.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) out.push({ target: m[1], n })
    const def = /^\s*\[[^\]]+\]:\s+(\S+)/.exec(plain)
    if (def) out.push({ target: def[1], n })
  }
  return out
}

test('the documentation pages exist and each is linked from the README or another page', () => {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8')
  for (const page of PAGES.filter((p) => p !== 'README.md')) {
    const linked = PAGES.some((from) => {
      if (from === page) return false
      const dir = path.posix.dirname(from)
      return links(fs.readFileSync(path.join(REPO, from), 'utf8')).some(({ target }) => path.posix.normalize(path.posix.join(dir, target.split('#')[0])) === page)
    })
    assert.ok(linked, `${page} is linked from another page`)
  }
  assert.ok(PAGES.length >= 10, `pages: ${PAGES.join(', ')}`)
  assert.match(readme, /npm install oomguard/)
})

test('every relative link and #anchor between the pages resolves', () => {
  const cache = new Map()
  const idsOf = (file) => {
    if (!cache.has(file)) cache.set(file, anchors(fs.readFileSync(path.join(REPO, file), 'utf8')))
    return cache.get(file)
  }
  const broken = []
  let checked = 0
  for (const page of PAGES) {
    const text = fs.readFileSync(path.join(REPO, page), 'utf8')
    for (const { target, n } of links(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // https:, mailto: ...
      checked++
      const [file, anchor] = target.split('#')
      const resolved = file === '' ? page : path.posix.normalize(path.posix.join(path.posix.dirname(page), decodeURIComponent(file)))
      if (resolved.startsWith('..') || !fs.existsSync(path.join(REPO, resolved))) {
        broken.push(`${page}:${n}: ${target}: no file ${resolved}`)
        continue
      }
      if (anchor === undefined) continue
      if (!resolved.endsWith('.md')) {
        broken.push(`${page}:${n}: ${target}: an anchor into a file that is not markdown`)
      } else if (!idsOf(resolved).has(decodeURIComponent(anchor))) {
        broken.push(`${page}:${n}: ${target}: no heading #${anchor} in ${resolved}`)
      }
    }
  }
  assert.deepEqual(broken, [], `${broken.length} broken of ${checked} links`)
  assert.ok(checked > 50, `${checked} links checked`)
})

test("the slug rule is GitHub's", () => {
  assert.equal(slug('`/metrics`: Prometheus, prom-client, OpenTelemetry'), 'metrics-prometheus-prom-client-opentelemetry')
  assert.equal(slug('Warnings before the kill: `watch()`'), 'warnings-before-the-kill-watch')
  assert.equal(slug('Sizing the heap: the rule and the measurement'), 'sizing-the-heap-the-rule-and-the-measurement')
  assert.equal(slug('With a memory+swap limit equal to the limit (`--memsw`)'), 'with-a-memoryswap-limit-equal-to-the-limit---memsw')
  assert.equal(slug('The heap profile: `heap-pause.js`, `heap-profile.js`'), 'the-heap-profile-heap-pausejs-heap-profilejs')
  assert.deepEqual([...anchors('# A\n## Usage\n```\n# not a heading\n```\n## Usage\n')], ['a', 'usage', 'usage-1'])
})
