// Runs bench.html in headless Chromium and prints MB/s, ratios and the .wasm size.
// Not a test:
//   bash bindings-wasm/scripts/build.sh          # or scripts/test-wasm.sh
//   cd benches/wasm && npm ci && node run.mjs [--mib 64 --wasm-mib 16 --reps 5 --only wasm,raw --frames 65536]
// Builds its two baselines first: the age-encryption bundle (esbuild) and RustCrypto's
// aes-gcm for wasm32 with and without simd128 (cargo + the wasm-bindgen CLI that
// scripts/test-wasm.sh installs into .tools/bin). Writes results-latest.json.
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const repo = path.resolve(here, '../..')
const pkg = path.join(repo, 'bindings-wasm')
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

// The RustCrypto baseline, built as bindings-wasm is (release, LTO), with and without simd128.
const env = { ...process.env, PATH: `${path.join(repo, '.tools/bin')}:${process.env.PATH}` }
for (const [name, flags] of [['simd', '-C target-feature=+simd128'], ['plain', '']]) {
  const target = path.join(repo, 'target/bench-wasm', name)
  execFileSync('cargo', ['build', '-q', '--release', '--target', 'wasm32-unknown-unknown', '--locked'], {
    cwd: path.join(here, 'rustcrypto'),
    env: { ...env, CARGO_TARGET_DIR: target, RUSTFLAGS: flags },
    stdio: 'inherit',
  })
  execFileSync('wasm-bindgen', ['--target', 'web', '--out-dir', path.join(here, 'rustcrypto/pkg', name),
    path.join(target, 'wasm32-unknown-unknown/release/rustcrypto_gcm_bench.wasm')], { env, stdio: 'inherit' })
}

// What each row is compared with: a like-for-like baseline (the same work: one output array,
// the same Blob stream, the same copies across the wasm boundary), then the strictest one.
const BASELINES = {
  'isec one-shot [webcrypto]': ['raw subtle into one array', 'raw subtle, 16 in flight'],
  'isec EncryptStream/DecryptStream [webcrypto]': ['raw subtle over Blob.stream()', 'raw subtle, 16 in flight'],
  'isec one-shot [wasm]': ['RustCrypto aes-gcm, per frame from JS (simd128)', 'RustCrypto aes-gcm, wasm memory (simd128)'],
  'isec EncryptStream/DecryptStream [wasm]': ['RustCrypto aes-gcm, per frame from JS (simd128)', 'RustCrypto aes-gcm, wasm memory (simd128)'],
}

const server = await serve()
const browser = await launch()
try {
  const only = (arg('only') ? `&only=${encodeURIComponent(arg('only'))}` : '') + (arg('frames') ? `&frames=${arg('frames')}` : '')
  const q = `mib=${arg('mib', 64)}&wasmMib=${arg('wasm-mib', 16)}&reps=${arg('reps', 5)}${only}`
  const r = await runPage(browser.context, `${server.url}/benches/bench.html?${q}`, { timeout: 1_800_000 })
  const get = (impl, frame, op) => r.rows.find((x) => x.impl === impl && x.frame === frame && x.op === op)?.mbps
  const size = (f) => (f >= 1 << 20 ? `${f >> 20} MiB` : `${f >> 10} KiB`)
  console.log(`\n${r.userAgent}, ${r.cores} logical cores`)
  console.log(`data: ${r.mib} MiB (wasm backend, RustCrypto and age: ${r.wasmMib} MiB), best of ${r.reps} interleaved rounds\n`)
  console.log('| implementation | frame | op | MB/s | like-for-like baseline | ratio | strict baseline | ratio |')
  console.log('| --- | --- | --- | ---: | --- | ---: | --- | ---: |')
  for (const x of r.rows) {
    const cells = (BASELINES[x.impl] ?? []).flatMap((b) => {
      const base = get(b, x.frame, x.op)
      return [b, base ? (x.mbps / base).toFixed(2) : '-']
    })
    if (x.impl.startsWith('age')) {
      const isec = get('isec one-shot [webcrypto]', 65536, x.op)
      cells.push('isec one-shot [webcrypto], 64 KiB', isec ? `${(isec / x.mbps).toFixed(1)}x faster` : '-')
    }
    while (cells.length < 4) cells.push('')
    console.log(`| ${x.impl} | ${size(x.frame)} | ${x.op} | ${x.mbps} | ${cells.join(' | ')} |`)
  }
  console.log(`\n.wasm: ${r.wasmBytes} bytes (${(r.wasmBytes / 1024).toFixed(0)} KiB), gzip ${r.wasmGzipBytes} bytes (${(r.wasmGzipBytes / 1024).toFixed(0)} KiB)`)
  writeFileSync(path.join(here, 'results-latest.json'), JSON.stringify(r, null, 1))
} finally {
  await browser.close()
  await server.close()
}
