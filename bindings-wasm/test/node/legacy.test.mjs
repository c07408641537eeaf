// The legacy reader (wasm backend) on the objects the previous proxy's own code wrote
// (../shared/vectors/s3proxy, or $ISEC_SHARED_VECTORS): single puts, a streamed put, framed
// and staged multipart uploads, through the keyring, one-shot, LegacyDecryptStream and
// ranges. Under CI=true their absence fails; elsewhere the test says what it did not check.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import init from '../../node.mjs'

const isec = await init()
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const roots = process.env.ISEC_SHARED_VECTORS
  ? [path.join(process.env.ISEC_SHARED_VECTORS, 's3proxy'), process.env.ISEC_SHARED_VECTORS]
  : [path.join(repo, '../shared/vectors/s3proxy')]
const dir = roots.find((d) => existsSync(path.join(d, 'single_put.json')))

const sha = (b) => createHash('sha256').update(b).digest('hex')
const json = async (name) => JSON.parse(await readFile(path.join(dir, name), 'utf8'))
const pairs = (m) => Object.entries(m).filter(([k]) => !k.startsWith('_'))

function ring(kek) {
  const r = new isec.Keyring()
  r.addLegacySecretString(kek.kid ?? 'AKIAVECTORTEST000001', kek.kek_secret ?? 'vector-kek-secret')
  return r
}

async function body(c) {
  const b = await readFile(path.join(dir, c.bin_file))
  assert.equal(b.length, c.len)
  assert.equal(sha(b), c.sha256)
  return new Uint8Array(b.buffer, b.byteOffset, b.length)
}

async function checkObject(name, key, obj, ct, ptSha, ptLen) {
  assert.equal(obj.plaintextLength, ptLen, name)
  assert.equal(sha(isec.legacyDecrypt(key, obj, ct)), ptSha, `${name} one-shot`)
  const parts = []
  const s = new Blob([ct]).stream().pipeThrough(new isec.LegacyDecryptStream(key, obj))
  for await (const c of s) parts.push(c)
  assert.equal(sha(Buffer.concat(parts)), ptSha, `${name} stream`)
  const pt = Buffer.concat(parts)
  for (const [a, b] of [[0, 1], [ptLen >> 1, (ptLen >> 1) + 100_000], [Math.max(0, ptLen - 7), ptLen + 9]]) {
    const plan = obj.planRange(a, b)
    const got = isec.legacyDecryptRange(key, obj, a, b, ct.subarray(plan.ctStart, plan.ctEnd))
    assert.deepEqual(Buffer.from(got), pt.subarray(a, Math.min(b, ptLen)), `${name} range ${a}..${b}`)
  }
  const bad = ct.slice()
  bad[bad.length >> 1] ^= 1
  assert.throws(() => isec.legacyDecrypt(key, obj, bad), (e) => e.code === 'authentication_failed')
}

test('legacy proxy objects (s3proxy vectors) through the wasm legacy reader', { skip: !dir && process.env.CI !== 'true' ? 'NOT CHECKED: ../shared/vectors/s3proxy missing' : false }, async () => {
  assert.ok(dir, `s3proxy vectors not found in ${roots}`)
  let objects = 0
  const single = await json('single_put.json')
  for (const c of single.cases) {
    const ct = await body(c.ciphertext)
    for (const [variant, meta] of Object.entries(c.object_metadata).filter(([k]) => !k.startsWith('_'))) {
      const m = isec.LegacyMetadata.fromPairs(pairs(meta))
      assert.ok(m.isLegacy)
      assert.equal(isec.classifyMetadata(pairs(meta)).format, 'legacy')
      const obj = isec.LegacyObject.create(m, ct.length)
      assert.equal(obj.layout, 'single')
      const key = ring(c.kek).legacyKey(obj, 'AKIAVECTORTEST000001')
      await checkObject(`${c.case} ${variant}`, key, obj, ct, c.plaintext.sha256, c.plaintext.len)
      objects++
    }
  }
  const streamed = await json('streaming_put_v2.json')
  {
    const ct = await body(streamed.object_ciphertext)
    for (const [variant, v] of Object.entries(streamed.sidecars)) {
      const m = isec.LegacyMetadata.fromPairs([])
      assert.equal(m.sidecarKey(streamed.object_key), v.sidecar_key)
      const sc = isec.LegacySidecar.parse(new TextEncoder().encode(v.sidecar.body_base64_text))
      const obj = isec.LegacyObject.withSidecar(m, sc, ct.length).withUploadId(streamed.upload_id)
      assert.equal(obj.layout, 'streamed')
      const key = isec.LegacyKey.fromSecretString(streamed.kek.kek_secret, obj.wrappedDekB64)
      await checkObject(`streamed ${variant}`, key, obj, ct, streamed.plaintext.sha256, streamed.plaintext.len)
      objects++
    }
  }
  for (const [file, layout] of [['multipart_v2_framed.json', 'framed'], ['multipart_v3_staged.json', 'staged']]) {
    const v = await json(file)
    const ct = await body(v.object_ciphertext)
    const m = isec.LegacyMetadata.fromPairs(pairs(v.object_metadata ?? {}))
    assert.equal(m.sidecarKey(v.object_key), v.sidecar_key)
    const sc = isec.LegacySidecar.parse(new TextEncoder().encode(v.sidecar.body_base64_text))
    let obj = isec.LegacyObject.withSidecar(m, sc, ct.length)
    if (layout === 'framed') obj = obj.withUploadId(v.upload_id)
    assert.equal(obj.layout, layout)
    const key = ring(v.kek).legacyKey(obj, 'AKIAVECTORTEST000001')
    await checkObject(layout, key, obj, ct, v.plaintext.sha256, v.plaintext.len)
    objects++
  }
  console.log(`legacy s3proxy objects opened: ${objects}`)
})
