// The legacy reader against the previous proxy's own objects in ../shared/vectors/s3proxy
// (relative to the repository root). Under CI=true a missing folder fails; elsewhere the
// tests skip and say what they did not check.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { isec, pattern, codeOf, ROOT } from './helpers.mjs'

const DIR = process.env.ISEC_SHARED_VECTORS
  ? join(process.env.ISEC_SHARED_VECTORS, 's3proxy')
  : join(ROOT, '..', 'shared', 'vectors', 's3proxy')
const present = existsSync(join(DIR, 'single_put.json'))

function vectors(t, what) {
  if (present) return true
  if (process.env.CI === 'true') assert.fail(`s3proxy legacy vectors not found in ${DIR}: CI must check ${what}`)
  t.skip(`NOT CHECKED: ${what}: s3proxy vectors missing in ${DIR}`)
  return false
}

const json = (name) => JSON.parse(readFileSync(join(DIR, name), 'utf8'))

function body(c) {
  const b = readFileSync(join(DIR, c.bin_file))
  assert.equal(b.length, c.len)
  assert.equal(createHash('sha256').update(b).digest('hex'), c.sha256)
  return b
}

const metaPairs = (m) => Object.entries(m ?? {}).filter(([k]) => !k.startsWith('_'))

function stream(ctx, ct, size) {
  const parts = []
  for (let at = 0; at < ct.length; at += size) parts.push(ctx.update(ct.subarray(at, at + size)))
  parts.push(ctx.final())
  return Buffer.concat(parts)
}

function checkObject(ring, obj, ct, pt) {
  const key = ring.legacyKey(obj)
  assert.deepEqual(isec.legacyDecryptSync(key, obj, ct), pt)
  for (const size of [4095, 8 * 1024 * 1024 + 29, 1 << 20]) assert.deepEqual(stream(new isec.LegacyDecryptor(key, obj), ct, size), pt)
  const n = pt.length
  for (const [a, b] of [[0, 1], [Math.floor(n / 2), Math.floor(n / 2) + 100], [Math.max(0, n - 3), n + 10], [0, n]]) {
    const plan = obj.planRange(a, b)
    const fetched = ct.subarray(plan.ctStart, plan.ctEnd)
    const want = pt.subarray(Math.min(a, n), Math.min(b, n))
    assert.deepEqual(isec.legacyDecryptRangeSync(key, obj, a, b, fetched), want, `range ${a}..${b}`)
    assert.deepEqual(stream(isec.LegacyDecryptor.forRange(key, obj, a, b), fetched, 65536), want)
  }
  const bad = Buffer.from(ct)
  bad[Math.floor(ct.length / 2)] ^= 1
  assert.equal(codeOf(() => isec.legacyDecryptSync(key, obj, bad)), 'authentication_failed')
  assert.equal(codeOf(() => isec.legacyDecryptSync(key, obj, ct.subarray(1))), 'truncated')
}

function ringFor(kek) {
  const ring = new isec.Keyring()
  ring.addLegacySecretString(kek.kid, kek.kek_secret)
  return ring
}

test('legacy single PUT objects', (t) => {
  if (!vectors(t, 'single_put.json')) return
  const v = json('single_put.json')
  for (const c of v.cases) {
    const ct = body(c.ciphertext)
    const pt = pattern(c.plaintext.len)
    const ring = ringFor(c.kek)
    for (const [name, m] of Object.entries(c.object_metadata).filter(([k]) => !k.startsWith('_'))) {
      const meta = isec.LegacyMetadata.fromPairs(metaPairs(m))
      assert.ok(meta.isLegacy, name)
      const obj = isec.LegacyObject.create(meta, null, ct.length)
      assert.equal(obj.layout, 'single')
      if (obj.kid) checkObject(ring, obj, ct, pt)
      else assert.deepEqual(isec.legacyDecryptSync(ring.legacyKey(obj, c.kek.kid), obj, ct), pt)
      assert.equal(codeOf(() => isec.LegacyObject.create(meta, null, ct.length + 1)), 'trailing_data')
    }
    const wrong = isec.LegacyObject.create(isec.LegacyMetadata.fromPairs(metaPairs(c.object_metadata.pr107_07bca1bf)), null, ct.length)
    assert.equal(codeOf(() => isec.LegacyKey.fromSecretString('not the secret', wrong.wrappedDekB64)), 'unwrap_failed')
    ring.setMinVersion(1)
    assert.equal(codeOf(() => ring.legacyKey(wrong)), 'version_refused')
  }
})

test('legacy streamed, framed and staged multipart objects', (t) => {
  if (!vectors(t, 'streaming_put_v2.json, multipart_v2_framed.json, multipart_v3_staged.json')) return
  const cases = [
    ['streaming_put_v2.json', (v) => [v.sidecars['pr107-07bca1bf'].sidecar, v.object_metadata], 'streamed'],
    ['multipart_v2_framed.json', (v) => [v.sidecar, v.object_metadata], 'framed'],
    ['multipart_v3_staged.json', (v) => [v.sidecar, v.object_metadata], 'staged'],
  ]
  for (const [file, pick, layout] of cases) {
    const v = json(file)
    const ct = body(v.object_ciphertext)
    const pt = pattern(v.plaintext.len)
    const [sc, m] = pick(v)
    const sidecar = isec.LegacySidecar.parse(Buffer.from(sc.body_base64_text))
    assert.equal(sidecar.totalSize, v.plaintext.len, file)
    const meta = isec.LegacyMetadata.fromPairs(metaPairs(m))
    let obj = isec.LegacyObject.create(meta, sidecar, ct.length)
    assert.equal(obj.layout, layout, file)
    if (v.upload_id && layout !== 'staged') obj = obj.withUploadId(v.upload_id)
    checkObject(ringFor(v.kek), obj, ct, pt)
    assert.equal(codeOf(() => isec.LegacySidecar.parse(Buffer.from(sc.body_base64_text), 16)), 'sidecar_too_large')
  }
})

test('migrating a legacy object to isec with a re-encryption job', (t) => {
  if (!vectors(t, 'legacy migration of single_put_65537')) return
  const c = json('single_put.json').cases.find((x) => x.plaintext.len === 65537)
  const ct = body(c.ciphertext)
  const ring = ringFor(c.kek)
  ring.addKek('isec-new', Buffer.alloc(32, 9))
  const obj = isec.LegacyObject.create(isec.LegacyMetadata.fromPairs(metaPairs(c.object_metadata.pr107_07bca1bf)), null, ct.length)
  const job = isec.ReencryptionJob.startLegacy(ring, obj)
  const out = Buffer.concat([job.update(ct, 0).output, job.finish()])
  assert.deepEqual(isec.decryptSync(ring.openSync(job.targetEnvelope), out), pattern(65537))
})
