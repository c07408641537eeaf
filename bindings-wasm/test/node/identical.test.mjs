// Both backends write identical bytes: the same key, prefix and plaintext through the
// WebCrypto path (core's Unsealed frames sealed by crypto.subtle) and the wasm path
// (RustCrypto in WebAssembly). Uses the test-hooks build (pkg/test-node), the only one with a
// caller-chosen nonce prefix.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

import { bind } from '../../js/api.js'

const isec = bind(createRequire(import.meta.url)('../../pkg/test-node/isec_wasm.js'))

function ring() {
  const r = new isec.Keyring()
  r.addKek('k', new Uint8Array(32).map((_, i) => i * 7))
  return r
}

async function run(key, part, isLast, prefix, chunks, backend) {
  const e = isec.Encryptor.__withPrefix(key, part, isLast, prefix, { backend })
  const out = []
  for (const c of chunks) out.push(await e.update(c))
  out.push(await e.final())
  return Buffer.concat(out)
}

const pattern = (n, seed = 0) => new Uint8Array(n).map((_, i) => (i * 31 + seed) % 256)

test('webcrypto and wasm backends produce identical ciphertext', async () => {
  const prefix = new Uint8Array([1, 2, 3, 4, 5, 6, 7])
  let compared = 0
  for (const frameSize of [4096, 65536]) {
    const { key } = ring().createEnvelopeSync({ frameSize })
    for (const len of [0, 1, frameSize - 1, frameSize, frameSize + 1, 5 * frameSize + 123]) {
      const pt = pattern(len, len)
      for (const split of [1000, frameSize, len || 1]) {
        const chunks = []
        for (let at = 0; at < len; at += split) chunks.push(pt.subarray(at, at + split))
        const web = await run(key, 0, true, prefix, chunks, 'webcrypto')
        const wasm = await run(key, 0, true, prefix, chunks, 'wasm')
        assert.equal(web.length, wasm.length)
        assert.ok(web.equals(wasm), `frame ${frameSize}, len ${len}, split ${split}`)
        compared++
      }
    }
  }
  // Parts: segment keys differ per part.
  const { key } = ring().createEnvelopeSync({ frameSize: 4096, partSize: 8192 })
  for (const [part, isLast, len] of [[1, false, 8192], [2, false, 8192], [3, true, 5000]]) {
    const pt = pattern(len, part)
    const web = await run(key, part, isLast, prefix, [pt], 'webcrypto')
    const wasm = await run(key, part, isLast, prefix, [pt], 'wasm')
    assert.ok(web.equals(wasm), `part ${part}`)
    compared++
  }
  console.log(`identical bytes: ${compared} encryptions compared`)
})
