// Runs bench.html in headless Chromium and prints MB/s, ratios and the .wasm size.
// Not a test: `cd benches/wasm && npm install && node run.mjs [--mib 64 --wasm-mib 16 --reps 3]`
// after `bash bindings-wasm/scripts/build.sh` (or scripts/test-wasm.sh).
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const pkg = path.resolve(here, '../../bindings-wasm')
const { serve } = await import(path.join(pkg, 'test/browser/server.mjs'))
const { launch, runPage } = await import(path.join(pkg, 'test/browser/chromium.js'))

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}

// age-encryption is an ES module with bare imports: bundle it once for the page.
execFileSync(path.join(here, 'node_modules/.bin/esbuild'), [
  path.join(here, 'node_modules/age-encryption/dist/index.js'),
  '--bundle', '--format=esm', '--log-level=warning', `--outfile=${path.join(here, 'age.bundle.js')}`,
])

const server = await serve()
const browser = await launch()
try {
  const q = `mib=${arg('mib', 64)}&wasmMib=${arg('wasm-mib', 16)}&reps=${arg('reps', 3)}`
  const r = await runPage(browser.context, `${server.url}/benches/bench.html?${q}`, { timeout: 900_000 })
  const get = (impl, frame, op) => r.rows.find((x) => x.impl === impl && x.frame === frame && x.op === op)?.mbps
  console.log(`\n${r.userAgent}`)
  console.log(`data: ${r.mib} MiB (wasm backend and age: ${r.wasmMib} MiB), best of ${r.reps}\n`)
  console.log('| implementation | frame | op | MB/s | vs raw subtle sequential | vs raw subtle 16 in flight |')
  console.log('| --- | --- | --- | ---: | ---: | ---: |')
  for (const x of r.rows) {
    const seq = get('raw subtle, sequential', x.frame === 65536 ? 65536 : x.frame, x.op)
    const conc = get('raw subtle, 16 in flight', x.frame, x.op)
    const f = x.frame >= 1 << 20 ? `${x.frame >> 20} MiB` : `${x.frame >> 10} KiB`
    const ratio = (d) => (d ? (x.mbps / d).toFixed(2) : '-')
    console.log(`| ${x.impl} | ${f} | ${x.op} | ${x.mbps} | ${ratio(seq)} | ${ratio(conc)} |`)
  }
  console.log(`\n.wasm: ${r.wasmBytes} bytes (${(r.wasmBytes / 1024).toFixed(0)} KiB), gzip ${r.wasmGzipBytes} bytes (${(r.wasmGzipBytes / 1024).toFixed(0)} KiB)`)
  writeFileSync(path.join(here, 'results-latest.json'), JSON.stringify(r, null, 1))
} finally {
  await browser.close()
  await server.close()
}
