// IsecS3's buffer handling and caches against Garage: reused ciphertext buffers on upload
// (short last parts, files, streams, retried parts), whole gets decrypted while they
// download, and ranged reads from the cache of opened objects when the object changes
// underneath. The S3 server is the one s3.test.mjs uses (scripts/test-node.sh starts it).
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { createRequire } from 'node:module'
import { isec, codeOfAsync, s3Setup, garageClientConfig, deletePrefix, seededData, randomKeks, chunked } from './helpers.mjs'

const require = createRequire(import.meta.url)
const MiB = 1024 * 1024
const BUCKET = process.env.ISEC_S3_NODE_BUCKET || 'isec-node'

const { sdk, ENV, skip } = await s3Setup()

const { IsecS3 } = require('../lib/s3.js')

const prefix = `node-buf-${process.pid}-${crypto.randomBytes(3).toString('hex')}/`
const K = (name) => prefix + name
const { ring } = randomKeks()
const PART = 5 * MiB

const data = seededData('buffers')

/** An S3Client that records its commands (`log`), with `maxAttempts` and a hook per request. */
function loggingClient(extra = {}) {
  const client = new sdk.S3Client(garageClientConfig(ENV, extra))
  const log = []
  client.middlewareStack.add(
    (next, context) => async (args) => {
      log.push(context.commandName)
      return next(args)
    },
    { step: 'finalizeRequest', name: 'isecTestLog' },
  )
  return { client, log }
}

describe('IsecS3 buffers and caches against Garage', { skip, concurrency: false }, () => {
  let client
  let log
  const ringA = () => ring({ 'kek-a': 'active' })

  before(() => {
    ;({ client, log } = loggingClient())
  })

  after(async () => {
    if (!client) return
    await deletePrefix(sdk, client, BUCKET, prefix)
    client.destroy()
  })

  test('reused ciphertext buffers: Buffer, file and stream bodies at concurrency 1 and 4, short last part', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'isec-s3-buf-'))
    try {
      for (const concurrency of [1, 4]) {
        const s3 = new IsecS3(client, ringA(), { partSize: PART, concurrency })
        // Seven parts: more than the concurrency + 1 buffers, so every buffer is reused.
        const body = data(6 * PART + 12_345, 10 + concurrency)
        const file = join(dir, `in-${concurrency}.bin`)
        writeFileSync(file, body)
        const sources = {
          buffer: () => body,
          file: () => file,
          stream: () => Readable.from(chunked(body, [1 << 20, 77_777])),
        }
        for (const [name, source] of Object.entries(sources)) {
          const Key = K(`reuse-${concurrency}-${name}`)
          const put = await s3.putObject({ Bucket: BUCKET, Key, Body: source() })
          assert.equal(put.parts, 7, name)
          assert.equal(put.plaintextLength, body.length)
          const got = await s3.getObject({ Bucket: BUCKET, Key })
          assert.ok(got.Body.equals(body), `${name} at concurrency ${concurrency}`)
          // The stored object is exactly its shape's length, and each part opens on its own.
          const h = await s3.headObject({ Bucket: BUCKET, Key })
          assert.equal(h.ContentLength, isec.Shape.forPlaintext(h.envelope, body.length).ciphertextLength)
          assert.equal(h.ContentLength, put.ciphertextLength)
          const last = await s3.getRange({ Bucket: BUCKET, Key, start: 6 * PART, head: h })
          assert.ok(last.Body.equals(body.subarray(6 * PART)))
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('a part whose request failed after the server stored it is encrypted again into a new buffer', async () => {
    const { client: flaky } = loggingClient({ maxAttempts: 1 })
    const attempts = []
    let failing = new Set()
    // Fails a part after the server answered: the stored part is then replaced by the retry.
    flaky.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args)
        if (context.commandName === 'UploadPartCommand') {
          const body = args.request.body
          attempts.push({ part: args.input.PartNumber, prefix: isec.parseNonce(Buffer.from(body).subarray(0, 12)).prefix })
          if (failing.delete(args.input.PartNumber)) {
            const e = new Error('connection reset after the response (injected)')
            e.$metadata = {}
            throw e
          }
        }
        return out
      },
      { step: 'finalizeRequest', name: 'isecTestFlakyAfter' },
    )
    const dir = mkdtempSync(join(tmpdir(), 'isec-s3-retry-'))
    try {
      const body = data(5 * PART + 999, 31)
      const file = join(dir, 'in.bin')
      writeFileSync(file, body)
      const sources = {
        buffer: () => body,
        file: () => file,
        stream: () => Readable.from(chunked(body, [1 << 20])),
      }
      for (const concurrency of [1, 4]) {
        for (const [name, source] of Object.entries(sources)) {
          attempts.length = 0
          failing = new Set([2, 5])
          const s3 = new IsecS3(flaky, ringA(), { partSize: PART, concurrency, partAttempts: 2 })
          const Key = K(`retry-${concurrency}-${name}`)
          const put = await s3.putObject({ Bucket: BUCKET, Key, Body: source() })
          assert.equal(put.parts, 6)
          for (const n of [2, 5]) {
            const tries = attempts.filter((a) => a.part === n)
            assert.equal(tries.length, 2, `part ${n}`)
            assert.ok(!tries[0].prefix.equals(tries[1].prefix), 'the retry drew a fresh nonce prefix')
          }
          const got = await s3.getObject({ Bucket: BUCKET, Key })
          assert.ok(got.Body.equals(body), `${name} at concurrency ${concurrency}`)
        }
      }
    } finally {
      flaky.destroy()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('whole gets decrypt while downloading: sizes around the staging buffers, all or nothing', async () => {
    const s3 = new IsecS3(client, ringA(), { partSize: PART, concurrency: 2 })
    for (const n of [0, 1, 2 * MiB - 1, 2 * MiB + 30, 4 * MiB + 65_536, PART + 1, 2 * PART + 3 * MiB]) {
      const body = data(n, n)
      const Key = K(`whole-${n}`)
      await s3.putObject({ Bucket: BUCKET, Key, Body: body })
      const got = await s3.getObject({ Bucket: BUCKET, Key })
      assert.ok(got.Body.equals(body), `${n} bytes`)
      assert.equal(got.ContentLength, n)
      assert.equal(got.format, 'isec')
    }
    // Damage in the last stage, and a body cut short in the middle of a stage.
    const body = data(2 * PART + 3 * MiB, 5)
    const Key = K('whole-2')
    await s3.putObject({ Bucket: BUCKET, Key, Body: body })
    const h = await client.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key }))
    const r = await client.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key }))
    const stored = Buffer.from(await r.Body.transformToByteArray())
    const bad = Buffer.from(stored)
    bad[bad.length - 100] ^= 1
    await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: K('whole-bad'), Body: bad, Metadata: h.Metadata }))
    assert.equal(await codeOfAsync(s3.getObject({ Bucket: BUCKET, Key: K('whole-bad') })), 'authentication_failed')
    const early = Buffer.from(stored)
    early[3 * MiB + 17] ^= 1
    await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: K('whole-early'), Body: early, Metadata: h.Metadata }))
    assert.equal(await codeOfAsync(s3.getObject({ Bucket: BUCKET, Key: K('whole-early') })), 'authentication_failed')
  })

  test('whole gets of pieces in parallel verify what a whole decryption verifies', async () => {
    const a = ringA()
    const s3 = new IsecS3(client, a, { partSize: PART, concurrency: 4 })
    const one = new IsecS3(client, a, { partSize: PART, concurrency: 1 })
    // Seven parts: the first part's GET, then six ranged GETs; a short last part.
    const body = data(6 * PART + 4321, 71)
    const Key = K('par')
    await s3.putObject({ Bucket: BUCKET, Key, Body: body })
    log.length = 0
    const got = await s3.getObject({ Bucket: BUCKET, Key })
    assert.ok(got.Body.equals(body))
    assert.equal(got.Body.length, body.length)
    assert.deepEqual(log, Array(7).fill('GetObjectCommand'))
    assert.ok((await one.getObject({ Bucket: BUCKET, Key })).Body.equals(body))

    // Stored objects built part by part, to damage them in ways each run could miss.
    const { envelope, key } = a.createEnvelopeSync({ fitParts: { size: body.length, preferred: PART } })
    const Metadata = Object.fromEntries(isec.objectMetadata({}, envelope))
    const parts = []
    for (let n = 1, at = 0; at < body.length; n++, at += PART) {
      parts.push(isec.encryptPartSync(key, n, at + PART >= body.length, body.subarray(at, at + PART)))
    }
    const put = (name, stored) =>
      client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: K(name), Body: stored, Metadata }))
    const reads = async (name) => [
      await codeOfAsync(s3.getObject({ Bucket: BUCKET, Key: K(name) })),
      await codeOfAsync(one.getObject({ Bucket: BUCKET, Key: K(name) })),
    ]
    await put('par-ok', Buffer.concat(parts))
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key: K('par-ok') })).Body.equals(body))
    // One bit in the last run.
    const bad = Buffer.concat(parts)
    bad[bad.length - 5] ^= 1
    await put('par-bad', bad)
    assert.deepEqual(await reads('par-bad'), ['authentication_failed', 'authentication_failed'])
    // Part 3 spliced from two authentic encryptions of it (other nonce prefixes from frame 10):
    // the pieces go through one decryptor in order, which sees both halves.
    const again = isec.encryptPartSync(key, 3, false, body.subarray(2 * PART, 3 * PART))
    const cut = 10 * (65_536 + 28)
    const spliced = Buffer.concat([parts[0], parts[1], parts[2].subarray(0, cut), again.subarray(cut), ...parts.slice(3)])
    await put('par-splice', spliced)
    const [p, o] = await reads('par-splice')
    assert.equal(p, o)
    assert.ok(p, 'the spliced part is refused')
    // The last part dropped (the object ends early, on a part boundary): refused by both.
    await put('par-cut', Buffer.concat(parts.slice(0, 6)))
    const [c1, c2] = await reads('par-cut')
    assert.ok(c1 && c1 === c2, `${c1} / ${c2}`)
  })

  test('an AbortSignal stops a whole get of pieces in parallel and a streamed get', async () => {
    const s3 = new IsecS3(client, ringA(), { partSize: PART, concurrency: 3 })
    const body = data(5 * PART + 1, 91)
    const Key = K('par-abort')
    await s3.putObject({ Bucket: BUCKET, Key, Body: body })
    for (const delay of [0, 5, 20]) {
      const ac = new AbortController()
      const p = s3.getObject({ Bucket: BUCKET, Key, signal: ac.signal })
      setTimeout(() => ac.abort(new Error('stop')), delay)
      const r = await p.then(
        (v) => v,
        (e) => e,
      )
      // Either it finished first (then whole and right) or it is an abort.
      if (r instanceof Error) assert.ok(r.code === 'ABORT_ERR' || r.name === 'AbortError', `${r.code} ${r.name}`)
      else assert.ok(r.Body.equals(body))
    }
    const ac = new AbortController()
    const st = await s3.getObjectStream({ Bucket: BUCKET, Key, signal: ac.signal })
    let n = 0
    await assert.rejects(
      (async () => {
        for await (const c of st.Body) {
          n += c.length
          ac.abort()
        }
      })(),
      (e) => e.code === 'ABORT_ERR',
    )
    assert.ok(n < body.length)
    // The helper still reads the object afterwards.
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key })).Body.equals(body))
  })

  test('a whole get whose object is replaced between its GETs rejects with the 412 (no silent re-read)', async () => {
    const body = data(4 * PART + 10, 81)
    const next = data(3 * PART + 20, 82)
    const Key = K('par-replaced')
    const { client: racing, log: racingLog } = loggingClient()
    let replace = true
    racing.middlewareStack.add(
      (nextMw, context) => async (args) => {
        if (context.commandName === 'GetObjectCommand' && args.request.headers.range && replace) {
          replace = false
          await new IsecS3(client, ringA(), { partSize: PART }).putObject({ Bucket: BUCKET, Key, Body: next })
        }
        return nextMw(args)
      },
      { step: 'finalizeRequest', name: 'isecTestReplace' },
    )
    try {
      // Two connections or more: a whole read makes ranged GETs (one connection makes one
      // GET, which nothing can replace midway).
      for (const concurrency of [2, 4]) {
        const s3 = new IsecS3(racing, ringA(), { partSize: PART, concurrency })
        await s3.putObject({ Bucket: BUCKET, Key, Body: body })
        replace = true
        racingLog.length = 0
        await assert.rejects(
          s3.getObject({ Bucket: BUCKET, Key }),
          (e) => e.$metadata && e.$metadata.httpStatusCode === 412,
          `getObject at concurrency ${concurrency}`,
        )
        // No read of the new object followed: only the first GET and (some of) the four
        // pinned ranges.
        assert.ok(racingLog.length >= 2 && racingLog.length <= 5, racingLog.join())
        // Streamed: the stream errors with the 412.
        await s3.putObject({ Bucket: BUCKET, Key, Body: body })
        replace = true
        const st = await s3.getObjectStream({ Bucket: BUCKET, Key })
        await assert.rejects(
          (async () => {
            for await (const c of st.Body) void c
          })(),
          (e) => e.$metadata && e.$metadata.httpStatusCode === 412,
          `getObjectStream at concurrency ${concurrency}`,
        )
      }
      // Now the new object reads whole.
      const s3 = new IsecS3(racing, ringA(), { partSize: PART })
      assert.ok((await s3.getObject({ Bucket: BUCKET, Key })).Body.equals(next))
    } finally {
      racing.destroy()
    }
  })

  test('ranged reads keep the opened object; a replaced object reads as the new one', async () => {
    const s3 = new IsecS3(client, ring({ 'kek-a': 'active', 'kek-b': 'decrypt_only' }), { partSize: PART })
    const Key = K('cached')
    const first = data(PART + 70_000, 41)
    await s3.putObject({ Bucket: BUCKET, Key, Body: first })
    log.length = 0
    let r = await s3.getRange({ Bucket: BUCKET, Key, start: 1000, end: 2000 })
    assert.ok(r.Body.equals(first.subarray(1000, 2000)))
    assert.deepEqual(log, ['HeadObjectCommand', 'GetObjectCommand'])
    log.length = 0
    r = await s3.getRange({ Bucket: BUCKET, Key, start: PART - 5, end: PART + 5 })
    assert.ok(r.Body.equals(first.subarray(PART - 5, PART + 5)))
    assert.deepEqual(log, ['GetObjectCommand'], 'the second read of the object needs no HEAD')

    // Overwritten with other content of another length: the pinned GET fails (412), the
    // helper opens the new object and reads it.
    const second = data(2 * PART + 5, 42)
    await s3.putObject({ Bucket: BUCKET, Key, Body: second })
    log.length = 0
    r = await s3.getRange({ Bucket: BUCKET, Key, start: PART - 5, end: PART + 5 })
    assert.ok(r.Body.equals(second.subarray(PART - 5, PART + 5)), 'the new content, not the old')
    assert.equal(r.plaintextLength, second.length)
    assert.deepEqual(log, ['GetObjectCommand', 'HeadObjectCommand', 'GetObjectCommand'])
    // The streaming form shares the cache.
    log.length = 0
    const st = await s3.getObjectStream({ Bucket: BUCKET, Key, start: 2 * PART - 3, end: 2 * PART + 5 })
    const chunks = []
    for await (const c of st.Body) chunks.push(c)
    assert.ok(Buffer.concat(chunks).equals(second.subarray(2 * PART - 3)))
    assert.deepEqual(log, ['GetObjectCommand'])

    // Overwritten with the same length (same shape) and other content.
    const third = data(2 * PART + 5, 43)
    await s3.putObject({ Bucket: BUCKET, Key, Body: third })
    r = await s3.getRange({ Bucket: BUCKET, Key, start: 0, end: 100 })
    assert.ok(r.Body.equals(third.subarray(0, 100)))
    const st2 = await s3.getObjectStream({ Bucket: BUCKET, Key, start: 10, end: 20 })
    const chunks2 = []
    for await (const c of st2.Body) chunks2.push(c)
    assert.ok(Buffer.concat(chunks2).equals(third.subarray(10, 20)))

    // Rewrapped in place: the same bytes (and ETag) under other metadata; the result reports
    // the new key.
    const other = new IsecS3(client, ring({ 'kek-a': 'decrypt_only', 'kek-b': 'active' }))
    await other.rewrap({ Bucket: BUCKET, Key })
    log.length = 0
    r = await s3.getRange({ Bucket: BUCKET, Key, start: 5, end: 10 })
    assert.ok(r.Body.equals(third.subarray(5, 10)))
    assert.equal(r.kid, 'kek-b')

    // Replaced by a plaintext object: refused, not the old plaintext.
    await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key, Body: Buffer.alloc(100, 7) }))
    assert.equal(await codeOfAsync(s3.getRange({ Bucket: BUCKET, Key, start: 0, end: 10 })), 'not_encrypted')
    // Deleted: the SDK's 404.
    await client.send(new sdk.DeleteObjectCommand({ Bucket: BUCKET, Key }))
    await assert.rejects(s3.getRange({ Bucket: BUCKET, Key, start: 0, end: 10 }), sdk.S3ServiceException)

    // openCache 0: a HEAD every time; clearCache forgets.
    const fourth = data(1000, 44)
    await s3.putObject({ Bucket: BUCKET, Key, Body: fourth })
    const none = new IsecS3(client, ringA(), { openCache: 0 })
    for (let i = 0; i < 2; i++) {
      log.length = 0
      r = await none.getRange({ Bucket: BUCKET, Key, start: 1, end: 3 })
      assert.ok(r.Body.equals(fourth.subarray(1, 3)))
      assert.deepEqual(log, ['HeadObjectCommand', 'GetObjectCommand'])
    }
    await s3.getRange({ Bucket: BUCKET, Key, start: 1, end: 3 })
    s3.clearCache()
    log.length = 0
    await s3.getRange({ Bucket: BUCKET, Key, start: 1, end: 3 })
    assert.deepEqual(log, ['HeadObjectCommand', 'GetObjectCommand'])
    assert.throws(() => new IsecS3(client, ringA(), { openCache: -1 }), { code: 'invalid_parameter' })
  })

  test('the range cache holds no key: a key disabled after a cached read refuses the next one', async () => {
    const keys = ringA()
    const s3 = new IsecS3(client, keys, { partSize: PART })
    const Key = K('cache-nokey')
    const body = data(PART + 100, 45)
    await s3.putObject({ Bucket: BUCKET, Key, Body: body })
    assert.ok((await s3.getRange({ Bucket: BUCKET, Key, start: 10, end: 20 })).Body.equals(body.subarray(10, 20)))
    log.length = 0
    assert.ok((await s3.getRange({ Bucket: BUCKET, Key, start: PART, end: PART + 50 })).Body.equals(body.subarray(PART, PART + 50)))
    assert.deepEqual(log, ['GetObjectCommand'], 'cached: no HEAD')
    keys.setState('kek-a', 'disabled')
    assert.equal(await codeOfAsync(s3.getRange({ Bucket: BUCKET, Key, start: 10, end: 20 })), 'key_disabled')
    const st = s3.getObjectStream({ Bucket: BUCKET, Key, start: 10, end: 20 })
    assert.equal(await codeOfAsync(st), 'key_disabled')
    keys.setState('kek-a', 'decrypt_only')
    assert.ok((await s3.getRange({ Bucket: BUCKET, Key, start: 10, end: 20 })).Body.equals(body.subarray(10, 20)))
  })
})
