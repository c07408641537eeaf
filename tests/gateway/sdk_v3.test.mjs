// The JS SDK v3 (@aws-sdk/client-s3, from bindings-node/node_modules) against `isec gateway`,
// and the backend behind it read and written directly with the Node helper (lib/s3.js) holding
// the gateway's keyring. Run by scripts/test-gateway.sh, which starts the gateway and passes
// GW_ENDPOINT, GW_ACCESS_KEY, GW_SECRET_KEY, GW_BUCKET, GW_PREFIX, GW_KEYRING, GW_BIG, GW_FILES
// and the backend's ISEC_S3_* variables.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const nodePkg = createRequire(join(ROOT, 'bindings-node', 'package.json'))
const sdk = nodePkg('@aws-sdk/client-s3')
const { IsecS3 } = nodePkg('./lib/s3.js')
const { Keyring } = nodePkg('./lib/index.js')

const ENV = process.env
const BUCKET = ENV.GW_BUCKET
const PREFIX = `${ENV.GW_PREFIX}/sdk-v3`
const MiB = 1 << 20
const PART = 7 * MiB

const gw = new sdk.S3Client({
  endpoint: ENV.GW_ENDPOINT,
  region: ENV.ISEC_S3_REGION,
  forcePathStyle: true,
  maxAttempts: 1,
  credentials: { accessKeyId: ENV.GW_ACCESS_KEY, secretAccessKey: ENV.GW_SECRET_KEY },
})
const backend = new sdk.S3Client({
  endpoint: ENV.ISEC_S3_ENDPOINT,
  region: ENV.ISEC_S3_REGION,
  forcePathStyle: true,
  credentials: { accessKeyId: ENV.ISEC_S3_ACCESS_KEY_ID, secretAccessKey: ENV.ISEC_S3_SECRET_ACCESS_KEY },
})
const helper = new IsecS3(backend, Keyring.fromFileText(readFileSync(ENV.GW_KEYRING, 'utf8')), { partSize: 5 * MiB })

const md5 = (b) => createHash('md5').update(b).digest()
const unquote = (e) => e.replace(/"/g, '')
/** The ETag S3 gives an upload of these parts. */
const etagOf = (parts) =>
  parts.length === 1
    ? md5(parts[0]).toString('hex')
    : `${md5(Buffer.concat(parts.map(md5))).toString('hex')}-${parts.length}`

async function get(key, extra = {}) {
  const r = await gw.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key: key, ...extra }))
  return { r, body: Buffer.from(await r.Body.transformToByteArray()) }
}

async function status(promise) {
  try {
    await promise
    return 200
  } catch (e) {
    return e.$metadata?.httpStatusCode ?? e.name
  }
}

/** Uploads `parts` by hand: CreateMultipartUpload, UploadPart (two at a time), ListParts, Complete. */
async function multipart(key, parts) {
  const { UploadId } = await gw.send(new sdk.CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }))
  const etags = new Array(parts.length)
  let next = 0
  const worker = async () => {
    while (next < parts.length) {
      const i = next++
      const r = await gw.send(
        new sdk.UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: i + 1, Body: parts[i] }),
      )
      assert.equal(unquote(r.ETag), md5(parts[i]).toString('hex'), `part ${i + 1} ETag`)
      etags[i] = r.ETag
    }
  }
  await Promise.all([worker(), worker()])
  const listed = await gw.send(new sdk.ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId }))
  assert.deepEqual(
    listed.Parts.map((p) => [p.PartNumber, p.Size]),
    parts.map((p, i) => [i + 1, p.length]),
  )
  const done = await gw.send(
    new sdk.CompleteMultipartUploadCommand({
      Bucket: BUCKET,
      Key: key,
      UploadId,
      MultipartUpload: { Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })) },
    }),
  )
  return unquote(done.ETag)
}

test('PutObject, GetObject, HeadObject: 0, 1, 65536, 65537 bytes and 3 MB; ETag = MD5', async () => {
  for (const n of [0, 1, 65536, 65537, 3_000_000]) {
    const data = readFileSync(join(ENV.GW_FILES, `f${n}`))
    const key = `${PREFIX}/f${n}`
    const put = await gw.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: key, Body: data, Metadata: { n: `${n}` } }))
    assert.equal(unquote(put.ETag), md5(data).toString('hex'))
    const { r, body } = await get(key)
    assert.ok(body.equals(data), `f${n}: bytes`)
    assert.deepEqual(r.Metadata, { n: `${n}` })
    const head = await gw.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key: key }))
    assert.equal(head.ContentLength, n)
    assert.equal(unquote(head.ETag), md5(data).toString('hex'))
  }
})

test('100 MiB multipart upload by hand in 7 MiB parts; ETag, listing, whole and ranged reads', async () => {
  const big = readFileSync(ENV.GW_BIG)
  const parts = []
  for (let o = 0; o < big.length; o += PART) parts.push(big.subarray(o, o + PART))
  assert.equal(parts.length, 15)
  const key = `${PREFIX}/big`
  const etag = await multipart(key, parts)
  assert.equal(etag, etagOf(parts))
  const head = await gw.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key: key }))
  assert.equal(head.ContentLength, big.length)
  assert.equal(unquote(head.ETag), etag)
  const listed = await gw.send(new sdk.ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${PREFIX}/` }))
  const entry = listed.Contents.find((o) => o.Key === key)
  assert.equal(entry.Size, big.length)
  assert.equal(unquote(entry.ETag), etag)
  assert.ok(!listed.Contents.some((o) => o.Key.endsWith('.isec-table')))
  const { body } = await get(key)
  assert.ok(body.equals(big), 'whole object')
  for (const [a, b] of [
    [0, 0],
    [PART - 10, PART + 10],
    [65536 - 3, 65536 + 3],
    [big.length - 1, big.length - 1],
  ]) {
    const { r, body: got } = await get(key, { Range: `bytes=${a}-${b}` })
    assert.ok(got.equals(big.subarray(a, b + 1)), `bytes=${a}-${b}`)
    assert.equal(r.ContentRange, `bytes ${a}-${b}/${big.length}`)
  }
  const { body: tail } = await get(key, { Range: 'bytes=-100' })
  assert.ok(tail.equals(big.subarray(big.length - 100)), 'bytes=-100')
  // The Node helper, on the backend with the gateway's keyring, reads it too.
  const r = await helper.getRange({ Bucket: BUCKET, Key: key, start: 3 * PART - 5, end: 3 * PART + 70_000 })
  assert.ok(Buffer.from(r.Body).equals(big.subarray(3 * PART - 5, 3 * PART + 70_000)), 'helper range')
})

test('the Node helper reads what the gateway wrote; the backend holds ciphertext', async () => {
  const parts = [randomBytes(5 * MiB + 3), randomBytes(5 * MiB), randomBytes(1)]
  const key = `${PREFIX}/cross/three-parts`
  assert.equal(await multipart(key, parts), etagOf(parts))
  const all = Buffer.concat(parts)
  const got = await helper.getObject({ Bucket: BUCKET, Key: key })
  assert.ok(Buffer.from(got.Body).equals(all), 'helper: whole object')
  const single = randomBytes(150_000)
  await gw.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}/cross/single`, Body: single }))
  const one = await helper.getObject({ Bucket: BUCKET, Key: `${PREFIX}/cross/single` })
  assert.ok(Buffer.from(one.Body).equals(single), 'helper: single')
  const raw = await backend.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}/cross/single` }))
  const stored = Buffer.from(await raw.Body.transformToByteArray())
  assert.ok(!stored.equals(single) && stored.indexOf(single.subarray(0, 64)) < 0, 'backend holds plaintext')
})

test('the gateway reads what the Node helper wrote into the backend', async () => {
  const objects = { single: randomBytes(100_000), multipart: randomBytes(12 * MiB + 12_345) }
  for (const [name, data] of Object.entries(objects)) {
    const put = await helper.putObject({
      Bucket: BUCKET,
      Key: `${PREFIX}/from-helper/${name}`,
      Body: data,
      Metadata: { writer: 'node' },
    })
    assert.equal(put.parts, name === 'multipart' ? 3 : 0)
  }
  for (const [name, data] of Object.entries(objects)) {
    const key = `${PREFIX}/from-helper/${name}`
    const { r, body } = await get(key)
    assert.ok(body.equals(data), `${name}: whole`)
    assert.deepEqual(r.Metadata, { writer: 'node' })
    const ranges = [[0, 9], [65530, 65545], [data.length - 1, data.length - 1]]
    if (data.length > 5 * MiB) ranges.push([5 * MiB - 3, 5 * MiB + 3])
    for (const [a, b] of ranges) {
      const { body: got } = await get(key, { Range: `bytes=${a}-${b}` })
      assert.ok(got.equals(data.subarray(a, b + 1)), `${name} bytes=${a}-${b}`)
    }
    const { body: tail } = await get(key, { Range: 'bytes=-100' })
    assert.ok(tail.equals(data.subarray(data.length - 100)), `${name} bytes=-100`)
    const head = await gw.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key: key }))
    assert.equal(head.ContentLength, data.length)
  }
})

test('conditional reads: If-None-Match the ETag is 304, If-Match another is 412', async () => {
  const key = `${PREFIX}/f65537`
  const head = await gw.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key: key }))
  assert.equal(await status(get(key, { IfNoneMatch: head.ETag })), 304)
  assert.equal(await status(get(key, { IfMatch: '"0123456789abcdef0123456789abcdef"' })), 412)
  const { body } = await get(key, { IfMatch: head.ETag })
  assert.equal(body.length, 65537)
})

test('an aborted multipart upload leaves nothing, on the gateway or the backend', async () => {
  const key = `${PREFIX}/aborted`
  const { UploadId } = await gw.send(new sdk.CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }))
  await gw.send(new sdk.UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: randomBytes(5 * MiB) }))
  await gw.send(new sdk.AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId }))
  assert.equal(await status(gw.send(new sdk.ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId }))), 404)
  const open = await backend.send(new sdk.ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: key }))
  assert.deepEqual(open.Uploads ?? [], [])
  assert.equal(await status(gw.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key: key }))), 404)
  assert.equal(await status(backend.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key: key }))), 404)
})

test('a wrong secret key is refused with SignatureDoesNotMatch', async () => {
  const bad = new sdk.S3Client({
    endpoint: ENV.GW_ENDPOINT,
    region: ENV.ISEC_S3_REGION,
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: { accessKeyId: ENV.GW_ACCESS_KEY, secretAccessKey: `x${ENV.GW_SECRET_KEY}` },
  })
  await assert.rejects(bad.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}/f1` })), (e) => {
    assert.equal(e.name, 'SignatureDoesNotMatch')
    assert.equal(e.$metadata.httpStatusCode, 403)
    return true
  })
})
