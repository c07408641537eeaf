// Rebuilds the addon into a temporary directory and fails when the generated index.d.ts or
// index.js differ from the committed ones (the declarations drifted from the Rust code), or
// lib/keyring.js from its source (scripts/sync-keyring.mjs).
// Usage: node scripts/check-dts.mjs [--out DIR] [--install]
//   --out DIR   build into DIR (kept) instead of a fresh temporary directory
//   --install   then copy the built .node next to package.json
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { keyringDrift } from './sync-keyring.mjs'

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const outIdx = args.indexOf('--out')
const out = outIdx >= 0 ? args[outIdx + 1] : mkdtempSync(join(tmpdir(), 'isec-node-build-'))

export function build(dir) {
  const cli = join(pkg, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
  execFileSync(process.execPath, [cli, 'build', '--platform', '--release', '--output-dir', dir], {
    cwd: pkg,
    stdio: ['ignore', 'inherit', 'inherit'],
  })
}

export function drift(dir) {
  const problems = keyringDrift()
  for (const f of ['index.d.ts', 'index.js']) {
    const fresh = readFileSync(join(dir, f), 'utf8')
    const committed = readFileSync(join(pkg, f), 'utf8')
    if (fresh !== committed) problems.push(`${f} differs from the code's (regenerate: npx napi build --platform --release)`)
  }
  return problems
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  build(out)
  const problems = drift(out)
  if (args.includes('--install')) {
    for (const f of readdirSync(out).filter((f) => f.endsWith('.node'))) copyFileSync(join(out, f), join(pkg, f))
  }
  if (problems.length) {
    for (const p of problems) console.error(`DRIFT: ${p}`)
    process.exit(1)
  }
  console.log(`index.d.ts, index.js and lib/keyring.js match their sources (fresh build in ${out})`)
}
