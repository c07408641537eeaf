// The S3 helper (`@isec/node/s3`) against a real S3-compatible server: Garage on 127.0.0.1,
// started by scripts/garage.sh (scripts/test-node.sh exports its env). Without a server
// these tests are skipped, except under CI=true, where a missing server fails them.
// ISEC_S3=0 skips them outside CI.
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import http from 'node:http'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { createRequire } from 'node:module'
import { isec, ROOT, codeOfAsync, s3Setup, garageClientConfig, deletePrefix, seededData, randomKeks, chunked } from './helpers.mjs'

const require = createRequire(import.meta.url)
const MiB = 1024 * 1024
const BUCKET = process.env.ISEC_S3_NODE_BUCKET || 'isec-node'


const { sdk, ENV, skip } = await s3Setup()

const { IsecS3 } = require('../lib/s3.js')

// ---------------------------------------------------------------------------------------
// Clients that count what crosses the connection

/** An http.Agent that keeps every socket it opened, to read their byte counters. */
class CountingAgent extends http.Agent {
  sockets_ = []
  createConnection(options, cb) {
    const s = super.createConnection(options, cb)
    this.sockets_.push(s)
    return s
  }
  get bytes() {
    return this.sockets_.reduce((n, s) => n + s.bytesRead + s.bytesWritten, 0)
  }
}

function bodyLength(body) {
  if (body == null) return 0
  if (typeof body === 'string') return Buffer.byteLength(body)
  if (body instanceof Uint8Array) return body.length
  return NaN // a stream: counted from its Content-Length header instead
}

/**
 * An S3Client whose middleware records each command and sums request and response body
 * sizes, and whose agent counts the bytes on its sockets.
 */
function countingClient(extra = {}) {
  const agent = new CountingAgent({ keepAlive: true, maxSockets: 16 })
  const client = new sdk.S3Client(garageClientConfig(ENV, { requestHandler: { httpAgent: agent }, ...extra }))
  const log = { commands: [], up: 0, down: 0, agent, requests: [] }
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const req = args.request
      let up = bodyLength(req.body)
      if (Number.isNaN(up)) up = Number(req.headers['content-length'] ?? 0)
      log.up += up
      log.commands.push(context.commandName)
      const out = await next(args)
      // A HEAD response's Content-Length is the object's, not a body.
      const down = req.method === 'HEAD' ? 0 : Number(out.response.headers['content-length'] ?? 0)
      log.down += down
      log.requests.push({ command: context.commandName, up, down, range: req.headers.range })
      return out
    },
    { step: 'finalizeRequest', name: 'isecTestCount' },
  )
  log.reset = () => {
    log.commands.length = 0
    log.requests.length = 0
    log.up = 0
    log.down = 0
    log.agentStart = agent.bytes
  }
  log.socketBytes = () => agent.bytes - (log.agentStart ?? 0)
  return { client, log }
}

async function counters() {
  const text = await (await fetch(ENV.ISEC_S3_METRICS)).text()
  const out = {}
  for (const m of text.matchAll(/^api_s3_request_counter\{([^}]*)\}\s+(\S+)/gm)) {
    const ep = /api_endpoint="([^"]+)"/.exec(m[1])
    if (ep) out[ep[1]] = (out[ep[1]] ?? 0) + Number(m[2])
  }
  return out
}

const delta = (a, b, name) => (b[name] ?? 0) - (a[name] ?? 0)

// ---------------------------------------------------------------------------------------

const prefix = `node-${process.pid}-${crypto.randomBytes(3).toString('hex')}/`
const K = (name) => prefix + name
const { ring } = randomKeks()

const data = seededData('plaintext')

async function raw(client, Key) {
  const r = await client.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key }))
  return Buffer.from(await r.Body.transformToByteArray())
}

async function rawHead(client, Key) {
  return client.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key }))
}

async function uploadsFor(client, Key) {
  const r = await client.send(new sdk.ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: Key }))
  return (r.Uploads ?? []).filter((u) => u.Key === Key)
}

describe('IsecS3 against Garage', { skip, concurrency: false }, () => {
  let client
  let log
  const ringA = () => ring({ 'kek-a': 'active' })
  const PART = 5 * MiB

  before(async () => {
    ;({ client, log } = countingClient())
    try {
      await client.send(new sdk.HeadBucketCommand({ Bucket: BUCKET }))
    } catch {
      // Our own bucket, made with the same key and CORS as the shared one.
      execFileSync('bash', [join(ROOT, 'scripts', 'garage.sh'), 'bucket', BUCKET], { stdio: 'inherit' })
      await client.send(new sdk.HeadBucketCommand({ Bucket: BUCKET }))
    }
  })

  after(async () => {
    if (!client) return
    await deletePrefix(sdk, client, BUCKET, prefix)
    client.destroy()
  })

  test('constructor checks its arguments', () => {
    assert.throws(() => new IsecS3({}, ringA()), { code: 'invalid_parameter' })
    assert.throws(() => new IsecS3(client, {}), { code: 'invalid_parameter' })
    assert.throws(() => new IsecS3(client, ringA(), { partSize: 1 * MiB }), { code: 'invalid_parameter' })
    assert.throws(() => new IsecS3(client, ringA(), { concurrency: 0 }), { code: 'invalid_parameter' })
  })

  test('single PUT round trip keeps user metadata and content type; stored bytes are ciphertext', async () => {
    const s3 = new IsecS3(client, ringA(), { partSize: PART })
    const body = data(100_000, 7)
    const put = await s3.putObject({
      Bucket: BUCKET,
      Key: K('single'),
      Body: body,
      Metadata: { owner: 'alice', isec: 'forged', 'isec-kid': 'forged' },
      ContentType: 'application/x-test',
    })
    assert.equal(put.parts, 0)
    assert.equal(put.kid, 'kek-a')
    const stored = await raw(client, K('single'))
    assert.equal(stored.length, put.ciphertextLength)
    assert.equal(stored.indexOf(body.subarray(0, 64)), -1)

    const h = await s3.headObject({ Bucket: BUCKET, Key: K('single') })
    assert.equal(h.format, 'isec')
    assert.equal(h.kid, 'kek-a')
    assert.equal(h.info.layout, 'single')
    assert.equal(h.plaintextLength, body.length)
    assert.equal(h.ContentType, 'application/x-test')
    assert.equal(h.Metadata.owner, 'alice')
    // The caller's values under the format's keys were replaced by the envelope's.
    assert.equal(h.Metadata['isec-kid'], 'kek-a')
    assert.ok(h.envelope.equals(put.envelope))

    const got = await s3.getObject({ Bucket: BUCKET, Key: K('single') })
    assert.ok(got.Body.equals(body))
    assert.equal(got.ContentType, 'application/x-test')
    assert.equal(got.kid, 'kek-a')

    // Metadata over S3's 2 KB budget is core's limit_exceeded, before anything is stored.
    const big = { note: 'x'.repeat(2000) }
    const tooBig = s3.putObject({ Bucket: BUCKET, Key: K('big-meta'), Body: body, Metadata: big })
    assert.equal(await codeOfAsync(tooBig), 'limit_exceeded')
    await assert.rejects(rawHead(client, K('big-meta')), sdk.S3ServiceException)
    // User keys of the legacy proxy's format are dropped (core's objectMetadata): readers
    // take the object for what it is.
    await s3.putObject({
      Bucket: BUCKET,
      Key: K('proxy-meta'),
      Body: body,
      Metadata: { 's3proxy-format': 'single-v3', 'plaintext-size': '1', keep: 'me' },
    })
    const proxyHead = await rawHead(client, K('proxy-meta'))
    assert.deepEqual(Object.keys(proxyHead.Metadata).sort(), ['isec', 'isec-kid', 'keep'])
    assert.equal((await s3.headObject({ Bucket: BUCKET, Key: K('proxy-meta') })).format, 'isec')
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('proxy-meta') })).Body.equals(body))

    // Empty objects too, from a Buffer and from an empty stream.
    await s3.putObject({ Bucket: BUCKET, Key: K('empty'), Body: Buffer.alloc(0) })
    assert.equal((await s3.getObject({ Bucket: BUCKET, Key: K('empty') })).Body.length, 0)
    await s3.putObject({ Bucket: BUCKET, Key: K('empty-stream'), Body: Readable.from([]) })
    assert.equal((await s3.getObject({ Bucket: BUCKET, Key: K('empty-stream') })).Body.length, 0)
  })

  test('multipart from a Buffer: parts encrypted and uploaded in parallel, object decrypts', async () => {
    const s3 = new IsecS3(client, ringA(), { partSize: PART, concurrency: 3 })
    const body = data(2 * PART + 12_345, 11)
    log.reset()
    const put = await s3.putObject({ Bucket: BUCKET, Key: K('multi'), Body: body })
    assert.equal(put.parts, 3)
    assert.deepEqual(
      log.commands.filter((c) => c !== 'UploadPartCommand'),
      ['CreateMultipartUploadCommand', 'CompleteMultipartUploadCommand'],
    )
    assert.equal(log.commands.filter((c) => c === 'UploadPartCommand').length, 3)
    const h = await s3.headObject({ Bucket: BUCKET, Key: K('multi') })
    assert.equal(h.info.layout, 'parts')
    assert.equal(h.info.partSize, PART)
    assert.equal(h.info.declaredSize, body.length)
    assert.equal(h.info.segmentCount, 3)
    assert.equal(h.ContentLength, isec.Shape.forPlaintext(put.envelope, body.length).ciphertextLength)
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('multi') })).Body.equals(body))
  })

  test('parts go up in parallel, at most `concurrency` at once, reading the body only that far ahead', async () => {
    const { client: watched } = countingClient()
    const concurrency = 2
    const chunk = 64 * 1024
    let pulled = 0
    let inflight = 0
    let maxInflight = 0
    let completed = 0
    let maxAhead = 0
    let barrierMet = false
    watched.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'UploadPartCommand') return next(args)
        inflight += 1
        maxInflight = Math.max(maxInflight, inflight)
        maxAhead = Math.max(maxAhead, pulled - completed * PART)
        // Hold the first part until a second one is under way (a sequential uploader
        // never gets there and the flag stays false after the timeout).
        if (args.input.PartNumber === 1) {
          const t0 = Date.now()
          while (inflight < 2 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5))
          barrierMet = inflight >= 2
        }
        try {
          return await next(args)
        } finally {
          inflight -= 1
          completed += 1
        }
      },
      { step: 'initialize', name: 'isecTestInflight' },
    )
    try {
      const body = data(6 * PART + 1, 5)
      async function* source() {
        for (let pos = 0; pos < body.length; pos += chunk) {
          const c = body.subarray(pos, pos + chunk)
          pulled += c.length
          yield c
        }
      }
      const s3 = new IsecS3(watched, ringA(), { partSize: PART, concurrency })
      const put = await s3.putObject({ Bucket: BUCKET, Key: K('parallel'), Body: Readable.from(source()) })
      assert.equal(put.parts, 7)
      assert.ok(barrierMet, 'a second part was uploading while the first was held')
      assert.ok(maxInflight <= concurrency, `${maxInflight} parts in flight`)
      // Held: the parts in flight plus the one being read and its look-ahead chunk.
      assert.ok(maxAhead <= (concurrency + 1) * PART + chunk, `read ${maxAhead} bytes ahead of the uploads`)
      assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('parallel') })).Body.equals(body))
    } finally {
      watched.destroy()
    }
  })

  test('multipart from a stream of unknown length, from a file, and an exact multiple of the part size', async () => {
    const s3 = new IsecS3(client, ringA(), { partSize: PART, concurrency: 2 })
    const body = data(2 * PART + 777, 13)
    const put = await s3.putObject({
      Bucket: BUCKET,
      Key: K('stream'),
      Body: Readable.from(chunked(body, [65_536, 1, 300_001, 4096])),
    })
    assert.equal(put.parts, 3)
    assert.equal(put.plaintextLength, body.length)
    const h = await s3.headObject({ Bucket: BUCKET, Key: K('stream') })
    assert.equal(h.info.declaredSize, undefined)
    const streamed = await s3.getObjectStream({ Bucket: BUCKET, Key: K('stream') })
    const chunks = []
    for await (const c of streamed.Body) chunks.push(c)
    assert.ok(Buffer.concat(chunks).equals(body))

    const exact = data(2 * PART, 17)
    const put2 = await s3.putObject({ Bucket: BUCKET, Key: K('exact'), Body: Readable.from(chunked(exact, [1 << 20])) })
    assert.equal(put2.parts, 2)
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('exact') })).Body.equals(exact))

    const dir = mkdtempSync(join(tmpdir(), 'isec-s3-'))
    try {
      const file = join(dir, 'in.bin')
      const fbody = data(PART + 99, 19)
      writeFileSync(file, fbody)
      const put3 = await s3.putObject({ Bucket: BUCKET, Key: K('file'), Body: file })
      assert.equal(put3.parts, 2)
      assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('file') })).Body.equals(fbody))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }

    // A stream that is not as long as it claims is refused before anything is stored.
    const short = Readable.from([Buffer.alloc(10)])
    const shortPut = s3.putObject({ Bucket: BUCKET, Key: K('short'), Body: short, ContentLength: 11 })
    assert.equal(await codeOfAsync(shortPut), 'invalid_parameter')
    const long = Readable.from(chunked(data(PART + 10, 3), [1 << 20]))
    const longPut = s3.putObject({ Bucket: BUCKET, Key: K('long'), Body: long, ContentLength: PART + 5 })
    assert.equal(await codeOfAsync(longPut), 'invalid_parameter')
    assert.deepEqual(await uploadsFor(client, K('long')), [])
  })

  test('part sizes come from core: grown to fit 10000 parts for a known length, whole frames', async () => {
    const { client: watched } = countingClient()
    const created = []
    watched.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'CreateMultipartUploadCommand') created.push(args.input.Metadata)
        return next(args)
      },
      { step: 'initialize', name: 'isecTestCreated' },
    )
    const frame = 65_536
    try {
      // 10001 parts of 5 MiB would be one too many: the envelope takes larger parts. The
      // stream then ends after 1 MiB, which core refuses against the declared size.
      const s3 = new IsecS3(watched, ringA(), { partSize: PART })
      const size = 10_001 * PART
      const short = Readable.from([data(MiB, 3)])
      const put = s3.putObject({ Bucket: BUCKET, Key: K('grown'), Body: short, ContentLength: size })
      assert.equal(await codeOfAsync(put), 'invalid_parameter')
      assert.equal(created.length, 1)
      const info = isec.classifyMetadata(created[0]).envelope.inspect()
      assert.equal(info.partSize, Math.ceil(size / 10_000 / frame) * frame)
      assert.ok(info.partSize > PART)
      assert.equal(info.declaredSize, size)
      // The smallest whole-frame size that fits.
      assert.ok(Math.ceil(size / info.partSize) <= 10_000)
      assert.ok(Math.ceil(size / (info.partSize - frame)) > 10_000)
      assert.deepEqual(await uploadsFor(client, K('grown')), [])
    } finally {
      watched.destroy()
    }
    // A partSize of no whole number of frames is rounded up to one.
    const odd = new IsecS3(client, ringA(), { partSize: PART + 1 })
    const body = data(2 * PART + 10, 5)
    const put = await odd.putObject({ Bucket: BUCKET, Key: K('odd-part'), Body: body })
    assert.equal(put.envelope.inspect().partSize, PART + frame)
    assert.equal(put.parts, 2)
    assert.ok((await odd.getObject({ Bucket: BUCKET, Key: K('odd-part') })).Body.equals(body))
  })

  test('ranged gets fetch only the mapped ciphertext, across part boundaries too', async () => {
    const s3 = new IsecS3(client, ringA(), { partSize: PART })
    const body = data(2 * PART + 5000, 23)
    await s3.putObject({ Bucket: BUCKET, Key: K('ranged'), Body: body })
    const head = await s3.headObject({ Bucket: BUCKET, Key: K('ranged') })
    const shape = isec.shapeFor(head.envelope, head.ContentLength)
    const cases = [
      [0, 1],
      [0, 100_000],
      [PART - 10, PART + 10], // across the first part boundary
      [PART - 65_536, 2 * PART + 1], // spans a whole part
      [2 * PART + 4000, 2 * PART + 5000], // the tail
      [2 * PART + 4990, 3 * PART], // clamped to the object
      [123_456, 123_456 + 65_536 * 2 + 3],
    ]
    for (const [a, b] of cases) {
      log.reset()
      const r = await s3.getRange({ Bucket: BUCKET, Key: K('ranged'), start: a, end: b, head })
      const want = body.subarray(a, Math.min(b, body.length))
      assert.ok(r.Body.equals(want), `range [${a}, ${b})`)
      assert.deepEqual(r.range, [a, a + want.length])
      const plan = shape.mapRange(a, b)
      assert.deepEqual(
        log.requests.map((q) => [q.command, q.range, q.down]),
        [['GetObjectCommand', plan.httpRange, plan.ctEnd - plan.ctStart]],
      )
      assert.ok(plan.ctEnd - plan.ctStart < want.length + 2 * (65_536 + 28) + 28 * Math.ceil(want.length / 65_536))
    }
    // Without a head: one HEAD, then the ranged GET.
    log.reset()
    const r = await s3.getRange({ Bucket: BUCKET, Key: K('ranged'), start: PART, end: PART + 3 })
    assert.ok(r.Body.equals(body.subarray(PART, PART + 3)))
    assert.deepEqual(log.commands, ['HeadObjectCommand', 'GetObjectCommand'])
    // An empty range fetches nothing.
    log.reset()
    const e = await s3.getRange({ Bucket: BUCKET, Key: K('ranged'), start: 50, end: 50, head })
    assert.equal(e.Body.length, 0)
    assert.deepEqual(log.commands, [])
    // The streaming form.
    const st = await s3.getObjectStream({ Bucket: BUCKET, Key: K('ranged'), start: PART - 3, end: PART + 70_000 })
    const chunks = []
    for await (const c of st.Body) chunks.push(c)
    assert.ok(Buffer.concat(chunks).equals(body.subarray(PART - 3, PART + 70_000)))
  })

  test('copy: native COPY and REPLACE with the plan metadata', async () => {
    const s3 = new IsecS3(client, ringA(), { partSize: PART })
    const body = data(300_000, 29)
    await s3.putObject({ Bucket: BUCKET, Key: K('c-src'), Body: body, Metadata: { a: '1' }, ContentType: 'text/plain' })

    const c1 = await s3.copyObject({ SourceBucket: BUCKET, SourceKey: K('c-src'), Bucket: BUCKET, Key: K('c-native') })
    assert.equal(c1.action, 'native')
    // Keys that need URL encoding in CopySource.
    const odd = K('dir/a key+é%?#.bin')
    await s3.copyObject({ SourceBucket: BUCKET, SourceKey: K('c-src'), Bucket: BUCKET, Key: odd })
    const c0 = await s3.copyObject({ SourceBucket: BUCKET, SourceKey: odd, Bucket: BUCKET, Key: K('c-odd') })
    assert.equal(c0.action, 'native')
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('c-odd') })).Body.equals(body))
    const h1 = await rawHead(client, K('c-native'))
    assert.deepEqual(h1.Metadata, (await rawHead(client, K('c-src'))).Metadata)
    assert.equal(h1.ContentType, 'text/plain')
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('c-native') })).Body.equals(body))

    const c2 = await s3.copyObject({
      SourceBucket: BUCKET,
      SourceKey: K('c-src'),
      Bucket: BUCKET,
      Key: K('c-replace'),
      MetadataDirective: 'REPLACE',
      Metadata: { b: '2', isec: 'stale' },
      ContentType: 'text/csv',
    })
    assert.equal(c2.action, 'native_replace')
    assert.equal(c2.rewrapped, false)
    const h2 = await rawHead(client, K('c-replace'))
    assert.equal(h2.Metadata.b, '2')
    assert.equal(h2.Metadata.a, undefined)
    assert.equal(h2.Metadata.isec, (await rawHead(client, K('c-src'))).Metadata.isec)
    assert.equal(h2.ContentType, 'text/csv')
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('c-replace') })).Body.equals(body))
    // A REPLACE without headers of the caller's keeps the source's (SPEC.md §12.2).
    await s3.copyObject({
      SourceBucket: BUCKET,
      SourceKey: K('c-src'),
      Bucket: BUCKET,
      Key: K('c-replace2'),
      MetadataDirective: 'REPLACE',
      Metadata: { c: '3' },
    })
    const h3 = await rawHead(client, K('c-replace2'))
    assert.deepEqual([h3.Metadata.c, h3.ContentType], ['3', 'text/plain'])
  })

  test('copy: another kid rewraps into a native REPLACE; only the new key reads the copy', async () => {
    const body = data(200_000, 31)
    await new IsecS3(client, ringA()).putObject({
      Bucket: BUCKET,
      Key: K('x-src'),
      Body: body,
      Metadata: { keep: 'yes' },
      ContentType: 'image/png',
    })
    const both = ring({ 'kek-a': 'decrypt_only', 'kek-b': 'active' })
    const s3 = new IsecS3(client, both)
    const c = await s3.copyObject({
      SourceBucket: BUCKET,
      SourceKey: K('x-src'),
      Bucket: BUCKET,
      Key: K('x-dst'),
      targetKid: 'kek-b',
    })
    assert.equal(c.action, 'native_replace')
    assert.equal(c.rewrapped, true)
    const h = await rawHead(client, K('x-dst'))
    assert.equal(h.Metadata['isec-kid'], 'kek-b')
    assert.equal(h.Metadata.keep, 'yes')
    assert.equal(h.ContentType, 'image/png')
    assert.ok((await raw(client, K('x-dst'))).equals(await raw(client, K('x-src'))))
    const onlyB = new IsecS3(client, ring({ 'kek-b': 'active' }))
    assert.ok((await onlyB.getObject({ Bucket: BUCKET, Key: K('x-dst') })).Body.equals(body))
    assert.equal(await codeOfAsync(onlyB.getObject({ Bucket: BUCKET, Key: K('x-src') })), 'unknown_kid')
  })

  test('copy: part_copy with small copy limits runs UploadPartCopy over frame-aligned ranges', async () => {
    const limits = { singleCopyMax: 1 * MiB, partMin: 5 * MiB, partMax: 6 * MiB }
    const s3 = new IsecS3(client, ring({ 'kek-a': 'decrypt_only', 'kek-b': 'active' }), {
      partSize: PART,
      copyLimits: limits,
    })
    const body = data(13 * MiB + 3, 37)
    await new IsecS3(client, ringA(), { partSize: PART }).putObject({
      Bucket: BUCKET,
      Key: K('p-src'),
      Body: body,
      Metadata: { m: 'v' },
      ContentType: 'video/mp4',
    })
    const head = await rawHead(client, K('p-src'))
    const env = isec.Envelope.decodeText(head.Metadata.isec)
    const shape = isec.shapeFor(env, head.ContentLength)
    log.reset()
    const c = await s3.copyObject({ SourceBucket: BUCKET, SourceKey: K('p-src'), Bucket: BUCKET, Key: K('p-dst') })
    assert.equal(c.action, 'part_copy')
    assert.equal(c.parts, c.plan.ranges.length)
    assert.ok(c.plan.ranges.length >= 3)
    for (const [s, e] of c.plan.ranges) {
      assert.equal(shape.ctBoundaryFloor(s), s)
      assert.ok(e === head.ContentLength || shape.ctBoundaryFloor(e) === e)
    }
    assert.equal(log.commands.filter((x) => x === 'UploadPartCopyCommand').length, c.plan.ranges.length)
    assert.equal(log.commands.filter((x) => /^(GetObject|PutObject|UploadPart)Command$/.test(x)).length, 0)
    const h = await rawHead(client, K('p-dst'))
    assert.equal(h.ContentType, 'video/mp4')
    assert.equal(h.Metadata.m, 'v')
    assert.ok((await raw(client, K('p-dst'))).equals(await raw(client, K('p-src'))))
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('p-dst') })).Body.equals(body))

    // With a key change the parts carry the rewrapped envelope.
    const c2 = await s3.copyObject({
      SourceBucket: BUCKET,
      SourceKey: K('p-src'),
      Bucket: BUCKET,
      Key: K('p-dst-b'),
      targetKid: 'kek-b',
    })
    assert.equal(c2.action, 'part_copy')
    assert.equal(c2.rewrapped, true)
    const onlyB = new IsecS3(client, ring({ 'kek-b': 'active' }))
    assert.ok((await onlyB.getObject({ Bucket: BUCKET, Key: K('p-dst-b') })).Body.equals(body))
  })

  test('reencrypt in place: the upload exists before the source is read, so a writer that starts after it wins', async () => {
    const Key = K('in-place')
    const s3w = new IsecS3(client, ringA(), { partSize: PART })
    await s3w.putObject({ Bucket: BUCKET, Key, Body: data(1000, 3) })
    // A client that lets another writer overwrite the key just after the source's GET
    // answered: the window between reading the source and completing its replacement.
    const { client: racing } = countingClient()
    const writer = Buffer.from('the writer was here')
    const order = []
    racing.middlewareStack.add(
      (next, context) => async (args) => {
        order.push(context.commandName)
        const out = await next(args)
        if (context.commandName === 'GetObjectCommand' && args.input.Key === Key && !order.includes('writer')) {
          order.push('writer')
          await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key, Body: writer }))
        }
        return out
      },
      { step: 'initialize', name: 'isecTestWriter' },
    )
    try {
      const s3 = new IsecS3(racing, ringA(), { partSize: PART })
      const err = await s3
        .copyObject({ SourceBucket: BUCKET, SourceKey: Key, Bucket: BUCKET, Key, rotateDek: true })
        .then(() => null, (e) => e)
      assert.ok(order.indexOf('CreateMultipartUploadCommand') < order.indexOf('GetObjectCommand'), order.join())
      assert.ok(err, `the stale re-encryption completed: ${order.join()}`)
      assert.ok((await raw(client, Key)).equals(writer), 'the writer keeps its data')
      assert.deepEqual(await uploadsFor(client, Key), [])
    } finally {
      racing.destroy()
    }
  })

  test('copy: reencrypt for a DEK rotation and for a plaintext source', async () => {
    const s3 = new IsecS3(client, ringA(), { partSize: PART })
    const body = data(PART + 4321, 41)
    await s3.putObject({ Bucket: BUCKET, Key: K('r-src'), Body: body, Metadata: { r: '1' }, ContentType: 'a/b' })
    log.reset()
    const c = await s3.copyObject({
      SourceBucket: BUCKET,
      SourceKey: K('r-src'),
      Bucket: BUCKET,
      Key: K('r-dst'),
      rotateDek: true,
    })
    assert.equal(c.action, 'reencrypt')
    assert.equal(c.reason, 'dek_rotation')
    assert.ok(log.commands.includes('GetObjectCommand'))
    const src = await s3.headObject({ Bucket: BUCKET, Key: K('r-src') })
    const dst = await s3.headObject({ Bucket: BUCKET, Key: K('r-dst') })
    assert.ok(!dst.envelope.equals(src.envelope))
    assert.notDeepEqual(dst.envelope.header(), src.envelope.header())
    // The parts layout, one isec part per S3 part (two here).
    assert.equal(dst.info.layout, 'parts')
    assert.equal(log.commands.filter((c) => c === 'UploadPartCommand').length, 2)
    assert.equal(dst.info.declaredSize, body.length)
    assert.equal(dst.Metadata.r, '1')
    // The plan's user metadata plus the new envelope's keys, nothing of the source's envelope.
    assert.deepEqual(Object.keys(dst.Metadata).sort(), ['isec', 'isec-kid', 'r'])
    assert.equal(dst.Metadata.isec, c.envelope.toText())
    assert.equal(dst.ContentType, 'a/b')
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('r-dst') })).Body.equals(body))
    // With REPLACE: the new user metadata, format keys in it dropped.
    const c1 = await s3.copyObject({
      SourceBucket: BUCKET,
      SourceKey: K('r-src'),
      Bucket: BUCKET,
      Key: K('r-dst2'),
      rotateDek: true,
      MetadataDirective: 'REPLACE',
      Metadata: { n: '2', isec: 'stale', 's3proxy-format': 'single-v3' },
    })
    assert.equal(c1.action, 'reencrypt')
    const m1 = (await rawHead(client, K('r-dst2'))).Metadata
    assert.deepEqual(Object.keys(m1).sort(), ['isec', 'isec-kid', 'n'])
    assert.equal(m1.isec, c1.envelope.toText())
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('r-dst2') })).Body.equals(body))

    // A plaintext source under requireEncryption becomes an isec object.
    const plain = data(PART + 10, 43)
    await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: K('plain'), Body: plain, Metadata: { p: 'q' } }))
    assert.equal(await codeOfAsync(s3.getObject({ Bucket: BUCKET, Key: K('plain') })), 'not_encrypted')
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('plain'), allowPlaintext: true })).Body.equals(plain))
    const c2 = await s3.copyObject({
      SourceBucket: BUCKET,
      SourceKey: K('plain'),
      Bucket: BUCKET,
      Key: K('plain-enc'),
      requireEncryption: true,
    })
    assert.equal(c2.action, 'reencrypt')
    assert.equal(c2.reason, 'encrypt_plaintext')
    const h = await s3.headObject({ Bucket: BUCKET, Key: K('plain-enc') })
    assert.equal(h.format, 'isec')
    assert.equal(h.Metadata.p, 'q')
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('plain-enc') })).Body.equals(plain))
    // Without requireEncryption a plaintext object is byte-copied.
    const c3 = await s3.copyObject({
      SourceBucket: BUCKET,
      SourceKey: K('plain'),
      Bucket: BUCKET,
      Key: K('plain-copy'),
    })
    assert.equal(c3.action, 'native')
  })

  test('rewrap in place: metadata only; afterwards only the new KEK is needed', async () => {
    const body = data(2 * PART + 1, 47)
    await new IsecS3(client, ringA(), { partSize: PART }).putObject({
      Bucket: BUCKET,
      Key: K('rw'),
      Body: body,
      Metadata: { who: 'bob' },
      ContentType: 'application/json',
      CacheControl: 'no-store',
    })
    const before = await raw(client, K('rw'))
    const s3 = new IsecS3(client, ring({ 'kek-a': 'decrypt_only', 'kek-b': 'active' }))
    log.reset()
    const r = await s3.rewrap({ Bucket: BUCKET, Key: K('rw') })
    assert.equal(r.action, 'native_replace')
    assert.equal(r.rewrapped, true)
    assert.deepEqual(log.commands, ['HeadObjectCommand', 'CopyObjectCommand'])
    assert.ok(log.up + log.down < 4096, `${log.up + log.down} body bytes`)
    const h = await rawHead(client, K('rw'))
    assert.equal(h.Metadata['isec-kid'], 'kek-b')
    assert.equal(h.Metadata.who, 'bob')
    assert.equal(h.ContentType, 'application/json')
    assert.equal(h.CacheControl, 'no-store')
    assert.ok((await raw(client, K('rw'))).equals(before))
    const onlyB = new IsecS3(client, ring({ 'kek-b': 'active' }))
    assert.ok((await onlyB.getObject({ Bucket: BUCKET, Key: K('rw') })).Body.equals(body))
    const ranged = await onlyB.getRange({ Bucket: BUCKET, Key: K('rw'), start: PART - 1, end: PART + 1 })
    assert.ok(ranged.Body.equals(body.subarray(PART - 1, PART + 1)))
    // Already under the target key: nothing to do, no copy made.
    log.reset()
    const again = await onlyB.rewrap({ Bucket: BUCKET, Key: K('rw'), newKid: 'kek-b' })
    assert.equal(again.rewrapped, false)
    assert.deepEqual(log.commands, ['HeadObjectCommand'])
    // A key the keyring does not hold is core's error, before any request changes anything.
    assert.equal(await codeOfAsync(onlyB.rewrap({ Bucket: BUCKET, Key: K('rw'), newKid: 'kek-zzz' })), 'unknown_kid')
  })

  test('native copies and rewrap move no object bytes: Garage counters and the client connection', async () => {
    const limits = { singleCopyMax: 1 * MiB, partMin: 5 * MiB, partMax: 6 * MiB }
    const body = data(12 * MiB + 17, 53)
    await new IsecS3(client, ringA(), { partSize: PART }).putObject({ Bucket: BUCKET, Key: K('n-src'), Body: body })
    const s3 = new IsecS3(client, ring({ 'kek-a': 'decrypt_only', 'kek-b': 'active' }))
    const s3parts = new IsecS3(client, ring({ 'kek-a': 'decrypt_only', 'kek-b': 'active' }), { copyLimits: limits })
    // Garage's counters are server-wide: another suite's traffic on the same server can
    // disturb one round, never every round, while a copy that moved data always would.
    let last
    for (let round = 0; round < 3; round++) {
      const m0 = await counters()
      log.reset()
      const a = await s3.copyObject({ SourceBucket: BUCKET, SourceKey: K('n-src'), Bucket: BUCKET, Key: K('n-1') })
      const b = await s3.copyObject({
        SourceBucket: BUCKET,
        SourceKey: K('n-src'),
        Bucket: BUCKET,
        Key: K('n-2'),
        MetadataDirective: 'REPLACE',
        Metadata: { z: '1' },
      })
      const c = await s3.rewrap({ Bucket: BUCKET, Key: K('n-1') })
      const d = await s3parts.copyObject({ SourceBucket: BUCKET, SourceKey: K('n-src'), Bucket: BUCKET, Key: K('n-3') })
      const m1 = await counters()
      assert.deepEqual(
        [a.action, b.action, c.action, d.action],
        ['native', 'native_replace', 'native_replace', 'part_copy'],
      )
      const bodies = log.up + log.down
      const sockets = log.socketBytes()
      last = {
        get: delta(m0, m1, 'GetObject'),
        put: delta(m0, m1, 'PutObject'),
        part: delta(m0, m1, 'UploadPart'),
        copy: delta(m0, m1, 'CopyObject'),
        partCopy: delta(m0, m1, 'UploadPartCopy'),
        bodies,
        sockets,
      }
      // What this client sent: only metadata requests, whatever the server saw.
      assert.equal(log.commands.filter((x) => /^(GetObject|PutObject|UploadPart)Command$/.test(x)).length, 0)
      assert.ok(bodies < 8 * 1024, `${bodies} body bytes for a ${body.length}-byte object`)
      assert.ok(sockets < 64 * 1024, `${sockets} bytes on the connection`)
      assert.ok(last.copy >= 3 && last.partCopy >= d.plan.ranges.length, JSON.stringify(last))
      if (last.get === 0 && last.put === 0 && last.part === 0) break
    }
    assert.deepEqual([last.get, last.put, last.part], [0, 0, 0], JSON.stringify(last))
    const onlyB = new IsecS3(client, ring({ 'kek-b': 'active' }))
    assert.ok((await onlyB.getObject({ Bucket: BUCKET, Key: K('n-1') })).Body.equals(body))
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('n-2') })).Body.equals(body))
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('n-3') })).Body.equals(body))
  })

  test('table-layout objects (relay uploads): table inline or in a sidecar; reads, copies, rewrap', async () => {
    const s3 = new IsecS3(client, ringA(), { partSize: PART })
    const p1 = data(PART + 100, 81)
    const p3 = data(70_000, 83)
    const body = Buffer.concat([p1, p3])
    /** A relay's object: parts (default 1 and 3) of arbitrary sizes, its table where `inline` says. */
    async function putTable(
      Key,
      inline,
      parts = [
        [1, p1],
        [3, p3],
      ],
    ) {
      const { envelope, key } = ringA().createEnvelopeSync({ table: true })
      // Each entry records the nonce prefix of the part's encryption that is uploaded.
      const bodies = parts.map(([n, pt]) => isec.encryptPartSync(key, n, false, pt))
      const table = new isec.SegmentTable(parts.map(([n, pt], i) => [n, pt.length, bodies[i].subarray(0, 7)])).encode(key)
      const Metadata = { isec: envelope.toText(), 'isec-kid': envelope.kid }
      if (inline) Metadata['isec-table'] = table.toString('base64url')
      else await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: `${Key}.isec-table`, Body: table }))
      const { UploadId } = await client.send(new sdk.CreateMultipartUploadCommand({ Bucket: BUCKET, Key, Metadata }))
      const done = []
      for (const [i, [PartNumber]] of parts.entries()) {
        const r = await client.send(new sdk.UploadPartCommand({ Bucket: BUCKET, Key, UploadId, PartNumber, Body: bodies[i] }))
        done.push({ PartNumber, ETag: r.ETag })
      }
      await client.send(
        new sdk.CompleteMultipartUploadCommand({ Bucket: BUCKET, Key, UploadId, MultipartUpload: { Parts: done } }),
      )
      return table
    }
    await putTable(K('tbl-inline'), true)
    const table = await putTable(K('tbl-side'), false)

    for (const Key of [K('tbl-inline'), K('tbl-side')]) {
      const h = await s3.headObject({ Bucket: BUCKET, Key })
      assert.equal(h.info.layout, 'table')
      assert.ok((await s3.getObject({ Bucket: BUCKET, Key })).Body.equals(body), Key)
      const r = await s3.getRange({ Bucket: BUCKET, Key, start: PART + 50, end: PART + 20_000 })
      assert.ok(r.Body.equals(body.subarray(PART + 50, PART + 20_000)), Key)
      const st = await s3.getObjectStream({ Bucket: BUCKET, Key })
      const chunks = []
      for await (const c of st.Body) chunks.push(c)
      assert.ok(Buffer.concat(chunks).equals(body), Key)
    }

    // Copies: the inline table travels in metadata; a sidecar is copied along (core's plan).
    const c1 = await s3.copyObject({
      SourceBucket: BUCKET,
      SourceKey: K('tbl-inline'),
      Bucket: BUCKET,
      Key: K('tbl-c1'),
    })
    assert.deepEqual([c1.action, c1.plan.copySidecar], ['native', false])
    const c2 = await s3.copyObject({ SourceBucket: BUCKET, SourceKey: K('tbl-side'), Bucket: BUCKET, Key: K('tbl-c2') })
    assert.deepEqual([c2.action, c2.plan.copySidecar], ['native', true])
    assert.ok((await raw(client, K('tbl-c2') + '.isec-table')).equals(table))
    for (const Key of [K('tbl-c1'), K('tbl-c2')]) {
      assert.ok((await s3.getObject({ Bucket: BUCKET, Key })).Body.equals(body), Key)
    }

    // Copied in parts (small copy limits): the verified table gives core the object's shape,
    // so every part starts on a frame boundary; the sidecar is copied first.
    const bigParts = [
      [1, data(6 * MiB + 100, 85)],
      [2, data(5 * MiB + 3, 87)],
      [4, data(70_000, 89)],
    ]
    const bigBody = Buffer.concat(bigParts.map(([, pt]) => pt))
    const bigTable = await putTable(K('tbl-big'), false, bigParts)
    const limits = { singleCopyMax: 1 * MiB, partMin: 5 * MiB, partMax: 6 * MiB }
    const inParts = new IsecS3(client, ringA(), { copyLimits: limits })
    log.reset()
    const c3 = await inParts.copyObject({ SourceBucket: BUCKET, SourceKey: K('tbl-big'), Bucket: BUCKET, Key: K('tbl-c3') })
    assert.deepEqual([c3.action, c3.plan.sidecar], ['part_copy', 'table'])
    assert.ok(c3.plan.ranges.length >= 2)
    const h3 = await rawHead(client, K('tbl-big'))
    const bigKey = ringA().openSync(isec.classifyMetadata(h3.Metadata).envelope)
    const bigShape = isec.Shape.fromTable(bigKey, bigTable, h3.ContentLength)
    for (const [start] of c3.plan.ranges) assert.equal(bigShape.ctBoundaryFloor(start), start)
    // Without the shape core cuts at plain byte offsets, which the check above would catch.
    const blind = isec.decideCopy({ sourceMetadata: h3.Metadata, sourceSize: h3.ContentLength, sourceSidecar: true, limits })
    assert.ok(blind.ranges.some(([start]) => bigShape.ctBoundaryFloor(start) !== start))
    const copies = log.commands.filter((x) => /^(CopyObject|UploadPartCopy)Command$/.test(x))
    assert.deepEqual(copies, ['CopyObjectCommand', ...c3.plan.ranges.map(() => 'UploadPartCopyCommand')])
    assert.ok((await raw(client, K('tbl-c3') + '.isec-table')).equals(bigTable))
    assert.ok((await inParts.getObject({ Bucket: BUCKET, Key: K('tbl-c3') })).Body.equals(bigBody))

    // Rewrap in place: the sidecar's MAC key comes from the unchanged DEK, so it stays valid.
    const both = new IsecS3(client, ring({ 'kek-a': 'decrypt_only', 'kek-b': 'active' }))
    assert.equal((await both.rewrap({ Bucket: BUCKET, Key: K('tbl-side') })).rewrapped, true)
    const onlyB = new IsecS3(client, ring({ 'kek-b': 'active' }))
    assert.ok((await onlyB.getObject({ Bucket: BUCKET, Key: K('tbl-side') })).Body.equals(body))

    // A DEK rotation re-encrypts it into a parts-layout object.
    const rot = await onlyB.copyObject({
      SourceBucket: BUCKET,
      SourceKey: K('tbl-side'),
      Bucket: BUCKET,
      Key: K('tbl-rot'),
      rotateDek: true,
    })
    assert.equal(rot.action, 'reencrypt')
    assert.equal((await onlyB.headObject({ Bucket: BUCKET, Key: K('tbl-rot') })).info.layout, 'parts')
    assert.ok((await onlyB.getObject({ Bucket: BUCKET, Key: K('tbl-rot') })).Body.equals(body))

    // A forged table (another length for part 3) fails its MAC.
    const forged = Buffer.from(table)
    forged[forged.length - 40] ^= 1
    await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: K('tbl-c2') + '.isec-table', Body: forged }))
    assert.equal(await codeOfAsync(s3.getObject({ Bucket: BUCKET, Key: K('tbl-c2') })), 'authentication_failed')
    assert.equal(
      await codeOfAsync(s3.getRange({ Bucket: BUCKET, Key: K('tbl-c2'), start: 0, end: 10 })),
      'authentication_failed',
    )
  })

  test('a tampered stored object is a typed error on every read path', async () => {
    const s3 = new IsecS3(client, ringA(), { partSize: PART })
    const body = data(300_000, 59)
    await s3.putObject({ Bucket: BUCKET, Key: K('t'), Body: body })
    const h = await rawHead(client, K('t'))
    const stored = await raw(client, K('t'))
    stored[200_000] ^= 1
    await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: K('t'), Body: stored, Metadata: h.Metadata }))

    assert.equal(await codeOfAsync(s3.getObject({ Bucket: BUCKET, Key: K('t') })), 'authentication_failed')
    assert.equal(
      await codeOfAsync(s3.getRange({ Bucket: BUCKET, Key: K('t'), start: 199_000, end: 199_100 })),
      'authentication_failed',
    )
    // Ranges away from the damaged frame still read.
    const ok = await s3.getRange({ Bucket: BUCKET, Key: K('t'), start: 0, end: 1000 })
    assert.ok(ok.Body.equals(body.subarray(0, 1000)))
    const st = await s3.getObjectStream({ Bucket: BUCKET, Key: K('t') })
    let released = 0
    const err = await codeOfAsync(
      (async () => {
        for await (const c of st.Body) released += c.length
      })(),
    )
    assert.equal(err, 'authentication_failed')
    assert.ok(released < 200_000, 'no plaintext released past the damaged frame')
    // Re-encrypting the damaged object fails and leaves no destination behind.
    const rot = s3.copyObject({
      SourceBucket: BUCKET,
      SourceKey: K('t'),
      Bucket: BUCKET,
      Key: K('t-rot'),
      rotateDek: true,
    })
    assert.equal(await codeOfAsync(rot), 'authentication_failed')
    await assert.rejects(rawHead(client, K('t-rot')), sdk.S3ServiceException)
    assert.deepEqual(await uploadsFor(client, K('t-rot')), [])

    // A truncated object too, and a swapped envelope (another object's metadata).
    // Cut on a frame boundary, so the stored length alone looks like a shorter object.
    const cut = stored.subarray(0, 2 * (65_536 + 28))
    await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: K('t2'), Body: cut, Metadata: h.Metadata }))
    assert.equal(await codeOfAsync(s3.getObject({ Bucket: BUCKET, Key: K('t2') })), 'truncated')
    const other = await s3.putObject({ Bucket: BUCKET, Key: K('t3'), Body: data(10, 1) })
    await s3.putObject({ Bucket: BUCKET, Key: K('t5'), Body: data(10, 2) })
    await client.send(
      new sdk.PutObjectCommand({
        Bucket: BUCKET,
        Key: K('t4'),
        Body: await raw(client, K('t5')),
        Metadata: { isec: other.envelope.toText(), 'isec-kid': 'kek-a' },
      }),
    )
    assert.equal(await codeOfAsync(s3.getObject({ Bucket: BUCKET, Key: K('t4') })), 'authentication_failed')
  })

  test('S3 errors stay SDK errors; isec errors carry core codes', async () => {
    const s3 = new IsecS3(client, ringA())
    await assert.rejects(s3.getObject({ Bucket: BUCKET, Key: K('missing') }), (e) => {
      assert.ok(e instanceof sdk.S3ServiceException)
      assert.equal(e.name, 'NoSuchKey')
      return true
    })
    await assert.rejects(s3.headObject({ Bucket: BUCKET, Key: K('missing') }), sdk.S3ServiceException)
    await s3.putObject({ Bucket: BUCKET, Key: K('e'), Body: Buffer.from('x') })
    const stranger = new IsecS3(client, ring({ 'kek-b': 'active' }))
    await assert.rejects(stranger.getObject({ Bucket: BUCKET, Key: K('e') }), (e) => {
      assert.equal(e.code, 'unknown_kid')
      assert.equal(e.family, 'key')
      return true
    })
    const ringDisabled = ring({ 'kek-a': 'disabled' })
    const disabled = new IsecS3(client, ringDisabled).getObject({ Bucket: BUCKET, Key: K('e') })
    assert.equal(await codeOfAsync(disabled), 'key_disabled')
    const noActive = ring({ 'kek-a': 'decrypt_only' })
    const inactive = new IsecS3(client, noActive).putObject({ Bucket: BUCKET, Key: K('e2'), Body: Buffer.from('x') })
    assert.equal(await codeOfAsync(inactive), 'key_not_active')
    // Larger than the format allows: core refuses the envelope before any upload starts.
    const tooBig = 2 ** 44 + 1
    const huge = s3.putObject({ Bucket: BUCKET, Key: K('huge'), Body: Readable.from([]), ContentLength: tooBig })
    assert.equal(await codeOfAsync(huge), 'limit_exceeded')
    assert.deepEqual(await uploadsFor(client, K('huge')), [])
    // Unparseable isec metadata: the decoder's code.
    await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: K('bad'), Body: 'x', Metadata: { isec: 'AQ' } }))
    assert.equal(await codeOfAsync(s3.getObject({ Bucket: BUCKET, Key: K('bad') })), 'malformed_envelope')
  })

  test('a part that fails is encrypted again with a fresh nonce prefix; a failed upload is aborted', async () => {
    const { client: flaky } = countingClient({ maxAttempts: 1 })
    const attempts = []
    let failures = 1
    flaky.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UploadPartCommand') {
          const body = args.input.Body
          attempts.push({ part: args.input.PartNumber, prefix: isec.parseNonce(body.subarray(0, 12)).prefix })
          if (args.input.PartNumber === 2 && failures > 0) {
            failures -= 1
            const e = new Error('connection reset (injected)')
            e.$metadata = {}
            throw e
          }
        }
        return next(args)
      },
      { step: 'initialize', name: 'isecTestFlaky' },
    )
    try {
      const body = data(2 * PART + 3, 61)
      const s3 = new IsecS3(flaky, ringA(), { partSize: PART, concurrency: 1, partAttempts: 2 })
      const put = await s3.putObject({ Bucket: BUCKET, Key: K('retry'), Body: body })
      assert.equal(put.parts, 3)
      const two = attempts.filter((a) => a.part === 2)
      assert.equal(two.length, 2)
      assert.ok(!two[0].prefix.equals(two[1].prefix), 'the retry drew a fresh nonce prefix')
      assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('retry') })).Body.equals(body))
      // The uploaded part 2 is the second encryption.
      const stored = await raw(client, K('retry'))
      const shape = isec.shapeFor(put.envelope, stored.length)
      const seg = shape.segment(1)
      assert.ok(isec.parseNonce(stored.subarray(seg.ctStart, seg.ctStart + 12)).prefix.equals(two[1].prefix))

      // With one attempt the failure is the caller's, and the upload is aborted.
      failures = 1
      const once = new IsecS3(flaky, ringA(), { partSize: PART, concurrency: 2, partAttempts: 1 })
      await assert.rejects(once.putObject({ Bucket: BUCKET, Key: K('retry-fail'), Body: body }), /injected/)
      assert.deepEqual(await uploadsFor(client, K('retry-fail')), [])
      await assert.rejects(rawHead(client, K('retry-fail')), sdk.S3ServiceException)
    } finally {
      flaky.destroy()
    }
  })

  test('AbortSignal cancels uploads and downloads', async () => {
    const s3 = new IsecS3(client, ringA(), { partSize: PART, concurrency: 1 })
    const body = data(3 * PART, 67)
    const ac = new AbortController()
    const p = s3.putObject({ Bucket: BUCKET, Key: K('abort'), Body: body, signal: ac.signal })
    setTimeout(() => ac.abort(new Error('stop')), 20)
    await assert.rejects(p, (e) => e.code === 'ABORT_ERR' || e.name === 'AbortError')
    assert.deepEqual(await uploadsFor(client, K('abort')), [])
    await assert.rejects(rawHead(client, K('abort')), sdk.S3ServiceException)

    const done = new AbortController()
    done.abort()
    const early = s3.getObject({ Bucket: BUCKET, Key: K('single'), signal: done.signal })
    assert.equal(await codeOfAsync(early), 'ABORT_ERR')

    await s3.putObject({ Bucket: BUCKET, Key: K('abort-read'), Body: body })
    const ac2 = new AbortController()
    const st = await s3.getObjectStream({ Bucket: BUCKET, Key: K('abort-read'), signal: ac2.signal })
    let n = 0
    await assert.rejects(
      (async () => {
        for await (const c of st.Body) {
          n += c.length
          if (n > 0) ac2.abort()
        }
      })(),
      (e) => e.code === 'ABORT_ERR',
    )
    assert.ok(n < body.length)
  })

  test('an external (KMS-style) key works through the helper', async () => {
    const kms = crypto.randomBytes(32)
    const wrapper = {
      async wrap(kid, dek) {
        const iv = crypto.randomBytes(12)
        const c = crypto.createCipheriv('aes-256-gcm', kms, iv)
        return Buffer.concat([iv, c.update(dek), c.final(), c.getAuthTag()])
      },
      async unwrap(kid, w) {
        const d = crypto.createDecipheriv('aes-256-gcm', kms, w.subarray(0, 12))
        d.setAuthTag(w.subarray(w.length - 16))
        return Buffer.concat([d.update(w.subarray(12, w.length - 16)), d.final()])
      },
    }
    const r = ring({ 'kek-a': 'decrypt_only' })
    r.addExternal('kms-1', wrapper, 'active')
    const s3 = new IsecS3(client, r, { partSize: PART })
    const body = data(PART + 5, 71)
    const put = await s3.putObject({ Bucket: BUCKET, Key: K('kms'), Body: body })
    assert.equal(put.kid, 'kms-1')
    const h = await s3.headObject({ Bucket: BUCKET, Key: K('kms') })
    assert.equal(h.info.wrapAlg, 'external')
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('kms') })).Body.equals(body))
    // An object under the local key moves under the external one by rewrap.
    const small = data(1000, 73)
    await new IsecS3(client, ringA()).putObject({ Bucket: BUCKET, Key: K('kms-rw'), Body: small })
    const rw = await s3.rewrap({ Bucket: BUCKET, Key: K('kms-rw') })
    assert.equal(rw.rewrapped, true)
    const onlyKms = new isec.Keyring()
    onlyKms.addExternal('kms-1', wrapper, 'active')
    assert.ok((await new IsecS3(client, onlyKms).getObject({ Bucket: BUCKET, Key: K('kms-rw') })).Body.equals(small))
  })
})
