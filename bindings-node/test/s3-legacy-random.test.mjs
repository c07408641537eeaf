// The previous proxy's objects beyond the shared vectors: single PUTs and streamed uploads
// made here as that proxy makes them (KEK = SHA-256 of the secret, AES-KWP-wrapped DEK,
// AES-256-GCM seals, base64(gzip(JSON)) sidecars), with random sizes, secrets and key ids,
// stored in Garage, read whole and by range, and migrated in place. The S3 server is the one
// s3.test.mjs uses (scripts/test-node.sh starts it).
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import zlib from 'node:zlib'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { isec, ROOT, codeOfAsync, s3Setup, garageClientConfig } from './helpers.mjs'

const require = createRequire(import.meta.url)
const MiB = 1024 * 1024
const BUCKET = process.env.ISEC_S3_NODE_BUCKET || 'isec-node'


const { sdk, ENV, skip } = await s3Setup()
const { IsecS3 } = require('../lib/s3.js')

/** One seal: nonce || AES-256-GCM(dek, nonce, pt) || tag. */
function seal(dek, nonce, pt) {
  const c = crypto.createCipheriv('aes-256-gcm', dek, nonce)
  return Buffer.concat([nonce, c.update(pt), c.final(), c.getAuthTag()])
}

/** The proxy's wrapped DEK: AES-KWP (RFC 5649) under SHA-256(secret), standard base64. */
function wrap(secret, dek) {
  const kek = crypto.createHash('sha256').update(secret, 'utf8').digest()
  const c = crypto.createCipheriv('id-aes256-wrap-pad', kek, Buffer.from('A65959A6', 'hex'))
  return Buffer.concat([c.update(dek), c.final()]).toString('base64')
}

const md5 = (b) => crypto.createHash('md5').update(b).digest('hex')

/** A single PUT: one seal with a random nonce, the wrapped DEK and sizes in metadata. */
function singlePut(secret, kid, pt) {
  const dek = crypto.randomBytes(32)
  const body = seal(dek, crypto.randomBytes(12), pt)
  const metadata = { isec: wrap(secret, dek), 'client-etag': md5(pt), 'plaintext-size': String(pt.length) }
  if (kid) metadata['isec-kid'] = kid
  return { body, metadata, sidecar: null }
}

/** A streamed PUT: 8 MiB backend parts of one seal each (nonce from the upload id and part
 *  number), no metadata, the DEK and parts in the object-keyed sidecar. */
function streamedPut(secret, kid, pt) {
  const dek = crypto.randomBytes(32)
  const uploadId = `2~${crypto.randomBytes(8).toString('hex')}`
  const parts = []
  const bodies = []
  for (let at = 0, pn = 1; at < pt.length || pn === 1; at += 8 * MiB, pn++) {
    const chunk = pt.subarray(at, Math.min(at + 8 * MiB, pt.length))
    const nonce = crypto.createHash('sha256').update(`${uploadId}${pn}`).digest().subarray(0, 12)
    const s = seal(dek, nonce, chunk)
    bodies.push(s)
    parts.push({ pn, ps: chunk.length, cs: s.length, etag: md5(s), md5: md5(chunk), ip: [] })
    if (at + 8 * MiB >= pt.length) break
  }
  const json = JSON.stringify({ v: 2, pc: parts.length, ts: pt.length, dek: wrap(secret, dek), kid, parts })
  return { body: Buffer.concat(bodies), metadata: {}, sidecar: zlib.gzipSync(json).toString('base64') }
}

describe('IsecS3 on generated previous-proxy objects of random sizes and secrets (Garage)', { skip, concurrency: false }, () => {
  let client
  const written = new Set()
  const prefix = `node-legacy-random-${process.pid}-${crypto.randomBytes(3).toString('hex')}/`

  before(async () => {
    client = new sdk.S3Client(garageClientConfig(ENV))
    try {
      await client.send(new sdk.HeadBucketCommand({ Bucket: BUCKET }))
    } catch {
      const { execFileSync } = await import('node:child_process')
      execFileSync('bash', [join(ROOT, 'scripts', 'garage.sh'), 'bucket', BUCKET], { stdio: 'inherit' })
    }
  })

  after(async () => {
    if (!client) return
    for (const Key of written) await client.send(new sdk.DeleteObjectCommand({ Bucket: BUCKET, Key }))
    client.destroy()
  })

  async function store(Key, o) {
    if (o.sidecar) {
      const sk = isec.sidecarKey('legacy', Key)
      await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: sk, Body: Buffer.from(o.sidecar) }))
      written.add(sk)
    }
    await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key, Body: o.body, Metadata: o.metadata }))
    written.add(Key)
  }

  const sizes = [0, 1, 27, 28, 4095, 65_537, 1 + Math.floor(Math.random() * 300_000), 8 * MiB + 1 + Math.floor(Math.random() * 50_000)]
  for (const [i, n] of sizes.entries()) {
    // The proxy never streams an empty body (its single PUT handles it): no empty streamed upload.
    for (const layout of n === 0 ? ['single'] : ['single', 'streamed']) {
      test(`${layout}, ${n} bytes: read whole and by range with its secret, wrong secret refused, migrated in place`, async () => {
        const secret = crypto.randomBytes(1 + (i % 20)).toString('hex')
        const kid = `AKIA${crypto.randomBytes(6).toString('hex').toUpperCase()}`
        const pt = crypto.randomBytes(n)
        const o = layout === 'single' ? singlePut(secret, kid, pt) : streamedPut(secret, kid, pt)
        const Key = `${prefix}${layout}-${i}/object.bin`
        await store(Key, o)

        const ring = new isec.Keyring()
        ring.addLegacySecretString(kid, secret)
        const s3 = new IsecS3(client, ring)
        const h = await s3.headObject({ Bucket: BUCKET, Key })
        assert.deepEqual([h.format, h.kid, h.plaintextLength], ['legacy', kid, n])
        const g = await s3.getObject({ Bucket: BUCKET, Key })
        assert.ok(Buffer.from(g.Body).equals(pt), 'whole object')
        for (let r = 0; r < 4 && n > 0; r++) {
          const a = Math.floor(Math.random() * n)
          const b = a + 1 + Math.floor(Math.random() * Math.min(n - a, 100_000))
          const got = await s3.getRange({ Bucket: BUCKET, Key, start: a, end: b, head: h })
          assert.ok(Buffer.from(got.Body).equals(pt.subarray(a, b)), `range [${a}, ${b})`)
        }

        const wrong = new isec.Keyring()
        wrong.addLegacySecretString(kid, `${secret}x`)
        assert.equal(await codeOfAsync(new IsecS3(client, wrong).getObject({ Bucket: BUCKET, Key })), 'unwrap_failed')

        ring.addKek('kek-new', crypto.randomBytes(32))
        const m = await new IsecS3(client, ring, { partSize: 5 * MiB }).migrate(BUCKET, Key)
        assert.equal(m.migrated, true)
        const back = await s3.getObject({ Bucket: BUCKET, Key })
        assert.equal(back.format, 'isec')
        assert.ok(Buffer.from(back.Body).equals(pt), 'migrated object')
      })
    }
  }
})

