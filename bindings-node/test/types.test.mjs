// The TypeScript declarations (generated index.d.ts, lib/index.d.ts, lib/s3.d.ts) compile
// under `--strict` and type the calls the way the package behaves: test/types/usage.ts uses
// the API, and its `@ts-expect-error` lines are calls the declarations must refuse.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const PKG = join(dirname(fileURLToPath(import.meta.url)), '..')

test('the declarations type-check a program that uses them (tsc --strict)', { timeout: 300_000 }, () => {
  const tsc = require.resolve('typescript/bin/tsc')
  const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext']
  args.push('--target', 'es2022', '--types', 'node', join('test', 'types', 'usage.ts'))
  const r = spawnSync(process.execPath, [tsc, ...args], { cwd: PKG, encoding: 'utf8' })
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`)
})
