// index.d.ts (with the generated pkg/web/isec_wasm.d.ts) type-checks a typical use.
import { test } from 'node:test'
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const tsc = path.join(here, '../../node_modules/typescript/bin/tsc')

test('TypeScript definitions compile (tsc --noEmit, strict)', () => {
  execFileSync(process.execPath, [tsc, '-p', path.join(here, '../types/tsconfig.json')], { stdio: 'inherit' })
})
