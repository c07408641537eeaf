// The cross-binding interop matrix: every writer's objects are read by every reader.
//
//   node tests/interop/run.mjs            (scripts/interop.sh checks the builds, then runs this)
//
// Sides (each both writes and reads): rust (isec-core directly, tests/interop/rust), python
// (bindings-py), node (bindings-node), wasm-node-{webcrypto,wasm} (bindings-wasm's nodejs
// build on each backend, one process), wasm-chromium-{webcrypto,wasm} (the web build in one
// headless Chromium launch, one page). Phases: plan -> every side writes (in parallel) ->
// corrupted copies of each writer's objects -> every side reads everything (in parallel) ->
// the matrix, rows writers and columns readers. Exits 1 on any failed check.
//
// Environment: ISEC_INTEROP_DIR (default target/interop), ISEC_INTEROP_RUST_BIN,
// ISEC_INTEROP_PYTHON, ISEC_INTEROP_TIMEOUT (seconds per side and phase, default 300),
// ISEC_INTEROP_VERBOSE=1 (the page's console), ISEC_INTEROP_FAULT=WRITER/OBJECT (flips a byte
// of that object after the writes, to see the matrix fail: that row must fail everywhere).
import { spawn } from 'node:child_process'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..', '..')
const OUT = path.resolve(process.env.ISEC_INTEROP_DIR ?? path.join(ROOT, 'target', 'interop'))
const RUST_BIN = process.env.ISEC_INTEROP_RUST_BIN ?? path.join(ROOT, 'target/interop-rust/release/isec-interop')
const PYTHON = process.env.ISEC_INTEROP_PYTHON ?? path.join(ROOT, 'bindings-py/.venv/bin/python')
const TIMEOUT_MS = Number(process.env.ISEC_INTEROP_TIMEOUT ?? 300) * 1000
const VERBOSE = process.env.ISEC_INTEROP_VERBOSE === '1'

const SIDES = ['rust', 'python', 'node', 'wasm-node-webcrypto', 'wasm-node-wasm', 'wasm-chromium-webcrypto', 'wasm-chromium-wasm']
const SHORT = {
  rust: 'rust',
  python: 'python',
  node: 'node',
  'wasm-node-webcrypto': 'wasm-node/wc',
  'wasm-node-wasm': 'wasm-node/wasm',
  'wasm-chromium-webcrypto': 'chromium/wc',
  'wasm-chromium-wasm': 'chromium/wasm',
}

// --- the plan ---------------------------------------------------------------------------

const F = 4096
const P = 2 * F
const OVERHEAD = 28

/** Ranges `[a, b)` worth reading in an object of `n` bytes with these segment boundaries. */
function rangesFor(n, frame, boundaries) {
  const r = [[0, n], [0, 0], [n, n + 5]]
  if (n >= 1) r.push([0, 1], [n - 1, n], [Math.max(0, n - 3), n + 100])
  if (n > frame) r.push([frame - 1, frame + 1], [frame >> 1, Math.min(n, 2 * frame + 7)])
  if (n >= 2 * frame) r.push([frame, 2 * frame])
  for (const b of boundaries) {
    if (b > 0 && b < n) r.push([b - 1, b + 1], [Math.max(0, b - 10), Math.min(n, b + 3 * frame)])
  }
  const seen = new Set()
  return r.filter(([a, b]) => {
    const k = `${a},${b}`
    return !seen.has(k) && seen.add(k)
  })
}

function objects() {
  const single = (name, size, api, extra = {}) => ({ name, layout: 'single', frame_size: F, part_size: null, declared: false, size, api, ...extra })
  const list = [
    single('s-empty', 0, 'oneshot'),
    single('s-one', 1, 'stream'),
    single('s-frame-minus-1', F - 1, 'oneshot'),
    single('s-frame', F, 'stream'),
    single('s-frame-plus-1', F + 1, 'oneshot'),
    single('s-frames', 5 * F + 123, 'stream', { declared: true }),
    single('s-64k', 150_001, 'stream', { frame_size: 65536 }),
    // Parts of two frames; four parts, the last short; one-shot parts written in reverse order.
    { name: 'p-declared', layout: 'parts', frame_size: F, part_size: P, declared: true, size: 3 * P + 1000, api: 'oneshot' },
    // Three full parts, each through a streaming part encryptor.
    { name: 'p-exact', layout: 'parts', frame_size: F, part_size: P, declared: false, size: 3 * P, api: 'stream' },
    // A relay's parts of any size, with a gap in the part numbers, and a segment table.
    { name: 'table', layout: 'table', frame_size: F, part_size: null, declared: false, parts: [[1, 5000], [2, 1], [4, 9000], [5, F]], api: 'mixed' },
  ]
  for (const o of list) {
    if (o.layout === 'table') o.size = o.parts.reduce((s, [, len]) => s + len, 0)
    const bounds = []
    if (o.layout === 'parts') for (let b = o.part_size; b < o.size; b += o.part_size) bounds.push(b)
    if (o.layout === 'table') o.parts.reduce((s, [, len]) => (bounds.push(s + len), s + len), 0)
    o.ranges = rangesFor(o.size, o.frame_size, bounds)
  }
  return list
}

/** FNV-1a, for per-writer seeds that differ for every writer and object. */
function fnv1a(s) {
  let h = 0x811c9dc5
  for (const c of Buffer.from(s)) h = Math.imul(h ^ c, 0x01000193) >>> 0
  return h
}

const NEGATIVES = [
  { name: 'neg-body', base: 's-frames', expect: 'authentication_failed', what: 'one ciphertext byte flipped in the middle of a frame' },
  { name: 'neg-part', base: 'p-declared', expect: 'authentication_failed', what: 'one ciphertext byte flipped inside part 2' },
  { name: 'neg-table', base: 'table', expect: 'authentication_failed', what: "one byte of the segment table's MAC flipped" },
  { name: 'neg-envelope', base: 's-frames', expect: 'commitment_mismatch', what: 'one byte of the envelope salt flipped' },
]

async function makePlan() {
  const keys = JSON.parse(await readFile(path.join(ROOT, 'tests/vectors/keys.json'), 'utf8')).keys
  const objs = objects()
  const seeds = Object.fromEntries(SIDES.map((w) => [w, Object.fromEntries(objs.map((o) => [o.name, fnv1a(`${w}/${o.name}`)]))]))
  return {
    schema: 'isec-interop-plan-v1',
    kid: 'kek-a',
    kek: keys['kek-a'].kek,
    chunks: [1000, 5000, 1, 8191],
    read_chunks: [1337, 4124, 9000, 3],
    writers: SIDES,
    readers: SIDES,
    objects: objs,
    seeds,
    negatives: NEGATIVES.map(({ name, base, expect }) => ({ name, base, expect })),
  }
}

/** The corrupted copies of one writer's objects (files of writer `w`, one byte changed each). */
async function makeNegatives(plan, w) {
  const dir = path.join(OUT, w)
  const copy = async (neg, { ct, meta, table }) => {
    await writeFile(path.join(dir, `${neg}.bin`), ct)
    await writeFile(path.join(dir, `${neg}.meta.json`), meta)
    if (table) await writeFile(path.join(dir, `${neg}.isec-table`), table)
  }
  const load = async (name, table) => ({
    ct: await readFile(path.join(dir, `${name}.bin`)),
    meta: await readFile(path.join(dir, `${name}.meta.json`), 'utf8'),
    table: table ? await readFile(path.join(dir, `${name}.isec-table`)) : undefined,
  })
  const frames = await load('s-frames')
  frames.ct[frames.ct.length >> 1] ^= 0x01
  await copy('neg-body', frames)

  const parts = await load('p-declared')
  const partCt = P + OVERHEAD * (P / F)
  parts.ct[partCt + (partCt >> 1)] ^= 0x01
  await copy('neg-part', parts)

  const table = await load('table', true)
  table.table[table.table.length - 1] ^= 0x01
  await copy('neg-table', table)

  const env = await load('s-frames')
  const meta = JSON.parse(env.meta)
  const bin = Buffer.from(meta.isec, 'base64url')
  bin[20] ^= 0x01 // inside the salt (bytes 17..49)
  meta.isec = bin.toString('base64url')
  env.meta = JSON.stringify(meta)
  await copy('neg-envelope', env)
}

// --- running the sides -------------------------------------------------------------------

function run(label, cmd, args) {
  const t0 = Date.now()
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const timer = setTimeout(() => {
      out += `\n(killed after ${TIMEOUT_MS / 1000} s)`
      child.kill('SIGKILL')
    }, TIMEOUT_MS)
    child.on('error', (e) => {
      clearTimeout(timer)
      resolve({ label, ok: false, ms: Date.now() - t0, out: String(e) })
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ label, ok: code === 0, ms: Date.now() - t0, out: out + (code === 0 ? '' : `\n(exit ${code ?? signal})`) })
    })
  })
}

function processSides(mode) {
  const node = process.execPath
  const side = path.join(HERE, 'node-side.mjs')
  return [
    run(`rust ${mode}`, RUST_BIN, [mode, 'rust', OUT]),
    run(`python ${mode}`, PYTHON, [path.join(HERE, 'interop.py'), mode, 'python', OUT]),
    run(`node ${mode}`, node, [side, mode, 'node', OUT]),
    run(`wasm-node ${mode}`, node, [side, mode, 'wasm-node-webcrypto,wasm-node-wasm', OUT]),
  ]
}

function withTimeout(p, label) {
  let timer
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${label}: no answer after ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS)
    }),
  ])
}

/** One Chromium launch and one page for both wasm backends, writing and reading. */
async function startChromium() {
  const wasmTest = path.join(ROOT, 'bindings-wasm/test/browser')
  const { serve } = await import(path.join(wasmTest, 'server.mjs'))
  const { launch } = await import(path.join(wasmTest, 'chromium.js'))
  const onRequest = async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1')
    if (req.method !== 'PUT' || !url.pathname.startsWith('/interop-put/')) return false
    const file = path.resolve(OUT, decodeURIComponent(url.pathname.slice('/interop-put/'.length)))
    if (!file.startsWith(OUT + path.sep)) {
      res.writeHead(403).end('outside the matrix directory')
      return true
    }
    const body = []
    for await (const c of req) body.push(c)
    await mkdir(path.dirname(file), { recursive: true })
    await writeFile(file, Buffer.concat(body))
    res.writeHead(204).end()
    return true
  }
  const t0 = Date.now()
  const server = await serve({ mounts: { '/tests/interop/': HERE, '/interop-data/': OUT }, onRequest })
  let browser
  try {
    browser = await launch()
    const page = await browser.context.newPage()
    const errors = []
    page.on('pageerror', (e) => errors.push(String(e)))
    if (VERBOSE) page.on('console', (m) => console.log(`[chromium] ${m.text()}`))
    await page.goto(`${server.url}/tests/interop/browser.html`)
    await page.waitForFunction(() => window.__ready === true || window.__error !== undefined, null, { timeout: 60_000 })
    const failed = await page.evaluate(() => window.__error)
    if (failed !== undefined) throw new Error(`interop page: ${failed}`)
    const backends = await page.evaluate(() => window.interop.backends())
    if (!backends.includes('webcrypto')) throw new Error(`Chromium offers no WebCrypto backend: ${backends}`)
    const call = async (fn, args) => {
      const r = await withTimeout(page.evaluate(fn, args), `chromium ${args[1]}`)
      if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`)
      return r
    }
    const ms = Date.now() - t0
    return {
      ms,
      async write(plan) {
        for (const backend of ['webcrypto', 'wasm']) {
          await call(([p, n, b]) => window.interop.write(p, n, b), [plan, `wasm-chromium-${backend}`, backend])
        }
      },
      async read(plan) {
        for (const backend of ['webcrypto', 'wasm']) {
          const name = `wasm-chromium-${backend}`
          const doc = await call(([p, n, b]) => window.interop.read(p, n, b), [plan, name, backend])
          await writeFile(path.join(OUT, 'results', `${name}.json`), JSON.stringify(doc))
        }
      },
      async close() {
        await browser.close()
        await server.close()
      },
    }
  } catch (e) {
    await browser?.close().catch(() => {})
    await server.close()
    throw e
  }
}

async function chromiumPhase(chromium, mode, plan) {
  const t0 = Date.now()
  try {
    const c = await chromium
    await c[mode](plan)
    return { label: `chromium ${mode}`, ok: true, ms: Date.now() - t0, out: '' }
  } catch (e) {
    return { label: `chromium ${mode}`, ok: false, ms: Date.now() - t0, out: String(e.stack ?? e) }
  }
}

// --- the matrix -------------------------------------------------------------------------

function cellOf(plan, results, writer, reader) {
  const doc = results[reader]
  if (!doc) return { total: 0, passed: 0, failures: ['no result: the reader did not finish'], label: 'NO RESULT' }
  const c = doc.cells[writer] ?? { total: 0, passed: 0, failures: ['writer missing from the result'], negatives: {} }
  const cell = { total: c.total, passed: c.passed, failures: [...c.failures] }
  if (c.failures.some((f) => f.startsWith('no objects'))) cell.label = 'NO OBJECTS'
  for (const neg of plan.negatives) {
    for (const mode of ['oneshot', 'stream', 'range']) {
      cell.total++
      const got = c.negatives?.[neg.name]?.[mode] ?? 'not run'
      if (got === neg.expect) cell.passed++
      else cell.failures.push(`${neg.name} ${mode}: ${got} (every reader must give ${neg.expect})`)
    }
  }
  return cell
}

function printMatrix(plan, results) {
  const col = 15
  const pad = (s, n) => String(s).padEnd(n)
  let failed = 0
  const details = []
  console.log('\nisec interop matrix: rows wrote, columns read; each cell = checks passed / checks run')
  console.log(pad('writer \\ reader', 25) + plan.readers.map((r) => pad(SHORT[r], col)).join(''))
  for (const w of plan.writers) {
    let line = pad(w, 25)
    for (const r of plan.readers) {
      const c = cellOf(plan, results, w, r)
      const ok = c.failures.length === 0 && c.total > 0
      if (!ok) {
        failed++
        details.push(`  ${w} -> ${r}:`, ...c.failures.slice(0, 6).map((f) => `    ${f}`))
        if (c.failures.length > 6) details.push(`    ... and ${c.failures.length - 6} more`)
      }
      line += pad(c.label ?? `${ok ? 'ok' : 'FAIL'} ${c.passed}/${c.total}`, col)
    }
    console.log(line)
  }
  console.log('(wc: WebCrypto backend; wasm: the wasm AES-GCM backend)')
  const perCell = plan.objects.reduce((s, o) => s + 4 + o.ranges.length, 0)
  console.log(
    `per cell: ${plan.objects.length} objects (${plan.objects.map((o) => o.name).join(', ')}), each checked for its plaintext ` +
      `hash, envelope, whole and streamed decryption and ${plan.objects.reduce((s, o) => s + o.ranges.length, 0)} ranges in all ` +
      `(${perCell} checks), and ${plan.negatives.length} corrupted copies read 3 ways (${plan.negatives.length * 3} checks)`,
  )
  for (const n of NEGATIVES) console.log(`  ${n.name}: ${n.what}; every reader must fail with ${n.expect}`)
  if (details.length) console.log('\nfailures:\n' + details.join('\n'))
  return failed
}

// --- main -------------------------------------------------------------------------------

const t0 = Date.now()
await rm(OUT, { recursive: true, force: true })
await mkdir(path.join(OUT, 'results'), { recursive: true })
const plan = await makePlan()
await writeFile(path.join(OUT, 'plan.json'), JSON.stringify(plan, null, 1))

const chromium = startChromium()
chromium.catch(() => {}) // reported by the phases
const phases = []
let sideFailures = 0
const report = (rs) => {
  for (const r of rs) {
    phases.push(`${r.label}: ${r.ok ? 'ok' : 'FAILED'} in ${(r.ms / 1000).toFixed(1)} s`)
    if (!r.ok) {
      sideFailures++
      console.log(`\n${r.label} FAILED:\n${r.out.trim().split('\n').slice(-25).join('\n')}`)
    }
  }
}

const tw = Date.now()
report(await Promise.all([...processSides('write'), chromiumPhase(chromium, 'write', plan)]))
const writeMs = Date.now() - tw
for (const w of SIDES) {
  try {
    await makeNegatives(plan, w)
  } catch {
    // The writer did not finish: its readers report it.
  }
}
if (process.env.ISEC_INTEROP_FAULT) {
  const file = path.join(OUT, `${process.env.ISEC_INTEROP_FAULT}.bin`)
  const b = await readFile(file)
  b[b.length >> 1] ^= 0x80
  await writeFile(file, b)
  console.log(`fault injected: ${path.relative(ROOT, file)} byte ${b.length >> 1} flipped`)
}
const tr = Date.now()
report(await Promise.all([...processSides('read'), chromiumPhase(chromium, 'read', plan)]))
const readMs = Date.now() - tr
try {
  const c = await chromium
  phases.push(`chromium launch and page load: ${(c.ms / 1000).toFixed(1)} s`)
  await c.close()
} catch {
  // Already reported by the phases.
}

const results = {}
for (const r of SIDES) {
  try {
    results[r] = JSON.parse(await readFile(path.join(OUT, 'results', `${r}.json`), 'utf8'))
  } catch {
    // Missing: the matrix shows it.
  }
}
const failedCells = printMatrix(plan, results)
console.log(`\nphases: write ${(writeMs / 1000).toFixed(1)} s, read ${(readMs / 1000).toFixed(1)} s; total ${((Date.now() - t0) / 1000).toFixed(1)} s`)
for (const p of phases) console.log(`  ${p}`)
for (const r of SIDES) if (results[r]) console.log(`  reader ${r}: ${(results[r].ms / 1000).toFixed(1)} s of checks`)
console.log(`matrix directory: ${path.relative(ROOT, OUT) || OUT}`)
if (failedCells || sideFailures) {
  console.log(`\nINTEROP FAILED: ${failedCells} of ${SIDES.length * SIDES.length} cells failed, ${sideFailures} side runs failed`)
  process.exit(1)
}
console.log(`\ninterop ok: ${SIDES.length} x ${SIDES.length} cells`)
