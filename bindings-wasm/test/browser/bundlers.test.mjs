// The package as npm users get it, through the bundlers they use: `npm pack`, installed from
// the tarball into a fresh consumer project, bundled there with esbuild (ESM and IIFE, with
// the README's one line), Vite (build and dev server) and webpack (no configuration), each
// loaded in headless Chromium for an encrypt + decrypt round trip on every backend. A bundle
// that cannot find the module (esbuild without the line) fails with ERR_ISEC_WASM_LOAD, and
// the declarations type-check in the consumer with lib ["es2022", "dom"]. The bundlers are
// this package's pinned devDependencies.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { serve } from './server.mjs'
import { launch, runPage } from './chromium.js'

const run = promisify(execFile)
const require = createRequire(import.meta.url)
const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const fixture = path.join(pkg, 'test/bundlers')
const npmEnv = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' }

let work, consumer, dist, packed, server, browser
const log = (s) => console.log(s)

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'isec-wasm-bundlers-'))
  consumer = path.join(work, 'consumer')
  dist = path.join(consumer, 'dist')
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: pkg, env: npmEnv })
  packed = JSON.parse(stdout)[0]
  await mkdir(path.join(consumer, 'src'), { recursive: true })
  await writeFile(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  await run('npm', ['install', '--no-audit', '--no-fund', '--no-progress', path.join(work, packed.filename)], { cwd: consumer, env: npmEnv })
  for (const f of ['app.js', 'default.js', 'esbuild.js', 'usage.ts']) await copyFile(path.join(fixture, f), path.join(consumer, 'src', f))
  server = await serve({ mounts: { '/dist/': dist } })
  browser = await launch()
})

after(async () => {
  await browser?.close()
  await server?.close()
  if (work) await rm(work, { recursive: true, force: true })
})

/** An index.html in dist/<name>/ that loads `script`. */
async function page(name, script, module) {
  await writeFile(
    path.join(dist, name, 'index.html'),
    `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script ${module ? 'type="module" ' : ''}src="./${script}"></script>\n`,
  )
  return `${server.url}/dist/${name}/index.html`
}

function assertRoundTrip(r, name) {
  assert.deepEqual(Object.keys(r.checks).sort(), ['wasm', 'webcrypto'], name)
  for (const [backend, ok] of Object.entries(r.checks)) assert.equal(ok, true, `${name} [${backend}]`)
}

test('the tarball holds the code, declarations, module and license files, and no tests', () => {
  const files = packed.files.map((f) => f.path)
  for (const f of ['LICENSE-MIT', 'LICENSE-APACHE', 'README.md', 'package.json', 'index.js', 'index.d.ts', 'node.mjs', 'wasm-url.d.ts', 'pkg/web/isec_wasm.js', 'pkg/web/isec_wasm.d.ts', 'pkg/web/isec_wasm_bg.wasm', 'pkg/node/isec_wasm.js', 'js/api.js']) {
    assert.ok(files.includes(f), `${f} not in the tarball: ${files}`)
  }
  assert.deepEqual(files.filter((f) => /(^|\/)test|\.test\.|^src\/|^examples\/|^scripts\/|Cargo|^pkg\/test-node/.test(f)), [])
})

test('package.json: public, licensed, with its repository', async () => {
  const p = JSON.parse(await readFile(path.join(pkg, 'package.json'), 'utf8'))
  assert.equal(p.private, undefined)
  assert.equal(p.license, 'MIT OR Apache-2.0')
  assert.deepEqual(p.repository, { type: 'git', url: 'git+https://github.com/isec-rs/isec.git', directory: 'bindings-wasm' })
  assert.match(p.homepage, /^https:\/\/github\.com\/isec-rs\/isec/)
  assert.deepEqual(p.publishConfig, { access: 'public' })
})

test('the declarations type-check in a consumer with lib ["es2022", "dom"] (tsc --strict)', async () => {
  await writeFile(
    path.join(consumer, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, target: 'es2022', module: 'es2022', moduleResolution: 'bundler', lib: ['es2022', 'dom'], skipLibCheck: false, types: [] },
      files: ['src/usage.ts'],
    }),
  )
  const tsc = path.join(pkg, 'node_modules/typescript/bin/tsc')
  await run(process.execPath, [tsc, '-p', consumer], { cwd: consumer }).catch((e) => {
    assert.fail(`tsc: ${e.stdout}${e.stderr}`)
  })
})

test('esbuild (ESM and IIFE) with --loader:.wasm=file and init(wasmUrl): round trip in Chromium', async () => {
  const esbuild = require('esbuild')
  for (const format of ['esm', 'iife']) {
    const name = `esbuild-${format}`
    await esbuild.build({
      entryPoints: [path.join(consumer, 'src/esbuild.js')],
      bundle: true,
      format,
      loader: { '.wasm': 'file' },
      outdir: path.join(dist, name),
      logLevel: 'error',
    })
    assertRoundTrip(await runPage(browser.context, await page(name, 'esbuild.js', format === 'esm'), { log }), name)
  }
})

test('esbuild without the loader line: init() rejects with ERR_ISEC_WASM_LOAD (404; no import.meta.url in IIFE)', async () => {
  const esbuild = require('esbuild')
  const expected = { esm: /ERR_ISEC_WASM_LOAD .*404 .*isec_wasm_bg\.wasm.*--loader:\.wasm=file/, iife: /ERR_ISEC_WASM_LOAD .*no import\.meta\.url/ }
  for (const format of ['esm', 'iife']) {
    const name = `esbuild-${format}-plain`
    await esbuild.build({ entryPoints: [path.join(consumer, 'src/default.js')], bundle: true, format, outdir: path.join(dist, name), logLevel: 'error' })
    await assert.rejects(runPage(browser.context, await page(name, 'default.js', format === 'esm'), { log, timeout: 60_000 }), expected[format])
  }
})

test('Vite (vite build, no configuration): round trip in Chromium', async () => {
  const { build } = await import('vite')
  await writeFile(path.join(consumer, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/src/default.js"></script>\n')
  await build({ root: consumer, base: './', configFile: false, logLevel: 'warn', build: { outDir: path.join(dist, 'vite'), emptyOutDir: true } })
  assertRoundTrip(await runPage(browser.context, `${server.url}/dist/vite/index.html`, { log }), 'vite')
})

test('Vite dev server (dependency pre-bundling, no configuration): round trip in Chromium', async () => {
  const { createServer } = await import('vite')
  await writeFile(path.join(consumer, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/src/default.js"></script>\n')
  const vite = await createServer({ root: consumer, configFile: false, logLevel: 'error', server: { host: '127.0.0.1', port: 0 } })
  try {
    await vite.listen()
    assertRoundTrip(await runPage(browser.context, vite.resolvedUrls.local[0], { log }), 'vite dev')
  } finally {
    await vite.close()
  }
})

test('webpack 5 (production, no configuration beyond the entry): round trip in Chromium', async () => {
  const webpack = require('webpack')
  const stats = await new Promise((resolve, reject) =>
    webpack(
      { mode: 'production', context: consumer, entry: './src/default.js', output: { path: path.join(dist, 'webpack'), filename: 'main.js' }, performance: { hints: false } },
      (err, s) => (err ? reject(err) : resolve(s)),
    ),
  )
  assert.equal(stats.hasErrors(), false, stats.toString('errors-only'))
  assertRoundTrip(await runPage(browser.context, await page('webpack', 'main.js', false), { log }), 'webpack')
})
