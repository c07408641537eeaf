// The shared corpus in Node against the `--target nodejs` build, on both backends (Node has
// globalThis.crypto.subtle, so the WebCrypto path runs here too).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

import init from '../../node.mjs'
import { runCorpus } from '../corpus.js'

const vectors = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../../tests/vectors')
const load = async (name) => JSON.parse(await readFile(path.join(vectors, name), 'utf8'))
const sha256 = async (name) => createHash('sha256').update(await readFile(path.join(vectors, name))).digest('hex')

const isec = await init()

for (const backend of ['webcrypto', 'wasm']) {
  test(`corpus, ${backend} backend`, async () => {
    const r = await runCorpus(isec, load, { backends: [backend], sha256 })
    console.log(`corpus [${backend}]: ${r.passed} checks passed, ${r.failed} failed; cases ${JSON.stringify(r.cases)}`)
    assert.deepEqual(r.failures, [])
    assert.ok(r.passed > 1000)
  })
}
