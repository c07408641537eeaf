// index.d.ts (and the index.js loader) are generated from the Rust code and committed:
// fail when they drift. scripts/test-node.sh passes its fresh build in ISEC_FRESH_BUILD;
// otherwise this rebuilds into a temporary directory.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build, drift } from '../scripts/check-dts.mjs'

test('committed index.d.ts and index.js match a fresh build', { timeout: 900_000 }, () => {
  let dir = process.env.ISEC_FRESH_BUILD
  if (!dir || !existsSync(join(dir, 'index.d.ts'))) {
    dir = mkdtempSync(join(tmpdir(), 'isec-node-dts-'))
    build(dir)
  }
  assert.deepEqual(drift(dir), [])
})
