// The S3 helper on the previous proxy's objects, stored in Garage exactly as that proxy
// stores them (body, user metadata, sidecar objects) from ../shared/vectors/s3proxy
// (relative to the repository root; README.md there describes the format). Without the
// vectors these tests skip and say so, except under CI=true, where they fail. The S3 server
// is the one s3.test.mjs uses (scripts/test-node.sh starts it).
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { isec, ROOT, codeOfAsync, pattern, s3Setup, garageClientConfig } from './helpers.mjs'

const require = createRequire(import.meta.url)
const MiB = 1024 * 1024
const SEAL = 8 * MiB
const CI = process.env.CI === 'true'
const BUCKET = process.env.ISEC_S3_NODE_BUCKET || 'isec-node'
const DIR = process.env.ISEC_SHARED_VECTORS
  ? join(process.env.ISEC_SHARED_VECTORS, 's3proxy')
  : join(ROOT, '..', 'shared', 'vectors', 's3proxy')


let missing = false
if (!existsSync(join(DIR, 'single_put.json'))) {
  if (CI) throw new Error(`s3proxy vectors not found in ${DIR}: CI must check reading the previous proxy's objects`)
  missing = `NOT CHECKED: the previous proxy's objects through IsecS3: s3proxy vectors missing in ${DIR}`
}
const { sdk, ENV, skip } = await s3Setup(missing)

const { IsecS3 } = require('../lib/s3.js')

const json = (name) => JSON.parse(readFileSync(join(DIR, name), 'utf8'))
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex')
const userMeta = (m) => Object.fromEntries(Object.entries(m ?? {}).filter(([k]) => !k.startsWith('_')))

/** The bytes of a vector's `*.bin`, checked against its length and digest. */
function bin(c) {
  const b = readFileSync(join(DIR, c.bin_file))
  assert.equal(b.length, c.len)
  assert.equal(sha256(b), c.sha256)
  return b
}

/**
 * The layouts, each as the proxy stores it: the body, its user metadata, and its sidecar
 * (`sidecar_key` with the vector's object key replaced by ours; a staged upload's sidecar is
 * keyed by its generation, not by the object).
 */
function layouts() {
  const single = json('single_put.json').cases.find((c) => c.plaintext.len === 1048583)
  const streamed = json('streaming_put_v2.json')
  const framed = json('multipart_v2_framed.json')
  const staged = json('multipart_v3_staged.json')
  const side = (v, sc) => ({ key: sc.sidecar_key, objectKey: v.object_key, body: sc.sidecar.body_base64_text })
  return [
    {
      name: 'single',
      layout: 'single',
      v: single,
      body: bin(single.ciphertext),
      metadata: userMeta(single.object_metadata.pr107_07bca1bf),
      sidecar: null,
    },
    {
      name: 'streamed',
      layout: 'streamed',
      v: streamed,
      body: bin(streamed.object_ciphertext),
      metadata: userMeta(streamed.object_metadata),
      sidecar: side(streamed, streamed.sidecars['pr107-07bca1bf']),
    },
    {
      name: 'framed',
      layout: 'framed',
      v: framed,
      body: bin(framed.object_ciphertext),
      metadata: userMeta(framed.object_metadata),
      sidecar: side(framed, framed),
    },
    {
      name: 'staged',
      layout: 'staged',
      v: staged,
      body: bin(staged.object_ciphertext),
      metadata: userMeta(staged.object_metadata),
      sidecar: side(staged, staged),
    },
  ]
}

const prefix = `node-legacy-${process.pid}-${crypto.randomBytes(3).toString('hex')}/`
const K = (name) => `${prefix}${name}/object.bin`

function legacyRing(secret) {
  const ring = new isec.Keyring()
  ring.addLegacySecretString('AKIAVECTORTEST000001', secret ?? 'vector-kek-secret')
  return ring
}

describe("IsecS3 on the previous proxy's objects (Garage)", { skip, concurrency: false }, () => {
  let client
  const log = []
  const written = new Set()
  let L
  let s3

  /** Puts an object and, where it has one, its sidecar, as the proxy stores them. */
  async function store(Key, l, { body = l.body, metadata = l.metadata, sidecar = l.sidecar?.body } = {}) {
    if (l.sidecar && sidecar !== null) {
      const sk = l.sidecar.key.replace(l.sidecar.objectKey, Key)
      await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: sk, Body: Buffer.from(sidecar, 'utf8') }))
      written.add(sk)
    }
    await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key, Body: body, Metadata: metadata }))
    written.add(Key)
  }

  async function raw(Key) {
    const r = await client.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key }))
    return Buffer.from(await r.Body.transformToByteArray())
  }

  before(async () => {
    client = new sdk.S3Client(garageClientConfig(ENV))
    client.middlewareStack.add(
      (next, context) => async (args) => {
        log.push({ command: context.commandName, key: args.input.Key, range: args.request?.headers?.range })
        return next(args)
      },
      { step: 'finalizeRequest', name: 'legacyTestLog' },
    )
    try {
      await client.send(new sdk.HeadBucketCommand({ Bucket: BUCKET }))
    } catch {
      const { execFileSync } = await import('node:child_process')
      execFileSync('bash', [join(ROOT, 'scripts', 'garage.sh'), 'bucket', BUCKET], { stdio: 'inherit' })
    }
    L = layouts()
    s3 = new IsecS3(client, legacyRing())
    for (const l of L) await store(K(l.name), l)
  })

  after(async () => {
    if (!client) return
    for (const Key of written) await client.send(new sdk.DeleteObjectCommand({ Bucket: BUCKET, Key }))
    client.destroy()
  })

  for (const name of ['single', 'streamed', 'framed', 'staged']) {
    test(`${name}: getObject, getObjectStream, headObject and getRange read it with the legacy secret`, async () => {
      const l = L.find((x) => x.name === name)
      const Key = K(name)
      const n = l.v.plaintext.len
      const pt = pattern(n)
      assert.equal(sha256(pt), l.v.plaintext.sha256)

      const h = await s3.headObject({ Bucket: BUCKET, Key })
      assert.deepEqual([h.format, h.kid, h.plaintextLength, h.legacyLayout], ['legacy', 'AKIAVECTORTEST000001', n, l.layout])

      // The object as core opens it from the stored metadata and sidecar, for its range plans.
      const open = new isec.ObjectOpen(Key, l.metadata, l.body.length)
      let step = open.next
      if (step.kind === 'fetch') step = open.feed(Buffer.from(l.sidecar.body, 'utf8'))
      const object = step.legacy
      assert.equal(object.layout, l.layout)

      const g = await s3.getObject({ Bucket: BUCKET, Key })
      assert.equal(sha256(g.Body), l.v.plaintext.sha256)
      assert.equal(g.format, 'legacy')
      // No option reads a previous-proxy object as stored.
      const g2 = await s3.getObject({ Bucket: BUCKET, Key, allowPlaintext: true })
      assert.equal(sha256(g2.Body), l.v.plaintext.sha256)

      const st = await s3.getObjectStream({ Bucket: BUCKET, Key })
      const hash = crypto.createHash('sha256')
      for await (const c of st.Body) hash.update(c)
      assert.equal(hash.digest('hex'), l.v.plaintext.sha256)

      // Ranges: the start, across seal boundaries, the tail, clamped past the end.
      const ranges =
        n > SEAL
          ? [
              [0, 10],
              [SEAL - 5, SEAL + 5],
              [SEAL - 100, 2 * SEAL + 100],
              [n - 3, n + 10],
              [12_345, 12_345 + 70_000],
            ]
          : [
              [0, 1],
              [Math.floor(n / 2), Math.floor(n / 2) + 100],
              [n - 3, n + 10],
            ]
      for (const [a, b] of ranges) {
        log.length = 0
        const r = await s3.getRange({ Bucket: BUCKET, Key, start: a, end: b, head: h })
        const want = pt.subarray(a, Math.min(b, n))
        assert.ok(r.Body.equals(want), `${name} range [${a}, ${b})`)
        assert.deepEqual(r.range, [a, a + want.length])
        // Only the seals the range needs, as core's legacy range plan names them.
        const plan = object.planRange(a, Math.min(b, n))
        const gets = log.filter((q) => q.command === 'GetObjectCommand')
        assert.deepEqual(gets.map((q) => q.range), [plan.httpRange], `${name} [${a}, ${b})`)
        if (n > SEAL) assert.ok(plan.ctEnd - plan.ctStart < b - a + 2 * (SEAL + 28), `${name} [${a}, ${b})`)
      }
      // The streaming form of a range, across a boundary where there is one.
      const [a, b] = n > SEAL ? [SEAL - 7, SEAL + 9] : [3, 9]
      const sr = await s3.getObjectStream({ Bucket: BUCKET, Key, start: a, end: b })
      const parts = []
      for await (const c of sr.Body) parts.push(c)
      assert.ok(Buffer.concat(parts).equals(pt.subarray(a, b)))
    })
  }

  test('copyObject copies natively, with the object-keyed sidecar where core says; the copies read back', async () => {
    for (const l of L) {
      const src = K(l.name)
      const dst = `${prefix}copies/${l.name}.bin`
      log.length = 0
      const c = await s3.copyObject({ SourceBucket: BUCKET, SourceKey: src, Bucket: BUCKET, Key: dst })
      written.add(dst)
      assert.equal(c.action, 'native', l.name)
      // Native: no object bytes through the client (sidecar GETs only, to open the source).
      const moved = log.filter((q) => /^(PutObject|UploadPart)Command$/.test(q.command))
      assert.deepEqual(moved, [], l.name)
      assert.ok(log.filter((q) => q.command === 'GetObjectCommand').every((q) => q.key !== src), l.name)
      const objectKeyed = l.layout === 'streamed' || l.layout === 'framed'
      assert.equal(c.plan.copySidecar, objectKeyed, l.name)
      if (objectKeyed) {
        const sk = isec.sidecarKey('legacy', dst)
        written.add(sk)
        assert.ok((await raw(sk)).equals(Buffer.from(l.sidecar.body, 'utf8')), l.name)
        const copies = log.filter((q) => q.command === 'CopyObjectCommand').map((q) => q.key)
        assert.deepEqual(copies, [sk, dst], `${l.name}: the sidecar first`)
      }
      const g = await s3.getObject({ Bucket: BUCKET, Key: dst })
      assert.equal(sha256(g.Body), l.v.plaintext.sha256, l.name)
      assert.equal((await s3.headObject({ Bucket: BUCKET, Key: dst })).format, 'legacy')
    }
  })

  test('copyObject in parts (small copy limits) and the undo requests of a failed step', async () => {
    const framed = L.find((x) => x.name === 'framed')
    const limits = { singleCopyMax: 1 * MiB, partMin: 5 * MiB, partMax: 6 * MiB }
    const inParts = new IsecS3(client, legacyRing(), { copyLimits: limits })
    const dst = `${prefix}parts/object.bin`
    log.length = 0
    const c = await inParts.copyObject({ SourceBucket: BUCKET, SourceKey: K('framed'), Bucket: BUCKET, Key: dst })
    written.add(dst)
    written.add(isec.sidecarKey('legacy', dst))
    assert.deepEqual([c.action, c.plan.sidecar, c.parts], ['part_copy', 'legacy', c.plan.ranges.length])
    const sent = log.filter((q) => !/^(HeadObject|GetObject)Command$/.test(q.command)).map((q) => q.command)
    const steps = isec.copySteps(c.plan, { bucket: BUCKET, key: K('framed') }, framed.metadata, { bucket: BUCKET, key: dst })
    assert.deepEqual(sent, steps.map((q) => `${q.op}Command`))
    assert.equal(sha256((await s3.getObject({ Bucket: BUCKET, Key: dst })).Body), framed.v.plaintext.sha256)

    // A client whose requests to `failKey` fail as `failOn` says.
    const failing = (failOn, failKey) => ({
      send(command, options) {
        if (command.constructor.name === failOn && command.input.Key === failKey && !(command.input.PartNumber > 1)) {
          const e = new Error(`${failOn} refused`)
          e.$metadata = { httpStatusCode: 403 }
          return Promise.reject(e)
        }
        return client.send(command, options)
      },
    })
    const exists = async (Key) =>
      client.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key })).then(
        () => true,
        () => false,
      )
    // The object's copy fails after its sidecar's: the sidecar copy is deleted again.
    const d1 = `${prefix}undo-native/object.bin`
    const native = new IsecS3(failing('CopyObjectCommand', d1), legacyRing())
    await assert.rejects(
      native.copyObject({ SourceBucket: BUCKET, SourceKey: K('streamed'), Bucket: BUCKET, Key: d1 }),
      /CopyObjectCommand refused/,
    )
    assert.equal(await exists(isec.sidecarKey('legacy', d1)), false)
    assert.equal(await exists(d1), false)
    // A part copy fails: the upload is aborted and the sidecar copy deleted.
    const d2 = `${prefix}undo-parts/object.bin`
    const parts = new IsecS3(failing('UploadPartCopyCommand', d2), legacyRing(), { copyLimits: limits, concurrency: 1 })
    await assert.rejects(
      parts.copyObject({ SourceBucket: BUCKET, SourceKey: K('framed'), Bucket: BUCKET, Key: d2 }),
      /UploadPartCopyCommand refused/,
    )
    const uploads = await client.send(new sdk.ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: d2 }))
    assert.deepEqual((uploads.Uploads ?? []).filter((u) => u.Key === d2), [])
    assert.equal(await exists(isec.sidecarKey('legacy', d2)), false)
    // The sources are untouched.
    assert.equal(sha256((await s3.getObject({ Bucket: BUCKET, Key: K('framed') })).Body), framed.v.plaintext.sha256)
  })

  test('migrateLegacy re-encrypts a previous-proxy object into an isec object under the active key', async () => {
    const l = L.find((x) => x.name === 'streamed')
    const ring = legacyRing()
    ring.addKek('kek-new', crypto.randomBytes(32), 'active')
    const m = new IsecS3(client, ring, { partSize: 5 * MiB })
    const dst = `${prefix}migrated.bin`
    const c = await m.copyObject({ SourceBucket: BUCKET, SourceKey: K(l.name), Bucket: BUCKET, Key: dst, migrateLegacy: true })
    written.add(dst)
    assert.deepEqual([c.action, c.reason, c.kid], ['reencrypt', 'legacy_migration', 'kek-new'])
    const h = await m.headObject({ Bucket: BUCKET, Key: dst })
    assert.equal(h.format, 'isec')
    assert.equal(sha256((await m.getObject({ Bucket: BUCKET, Key: dst })).Body), l.v.plaintext.sha256)
  })

  /** A keyring with the previous proxy's secret and a new active isec key. */
  function migrationRing() {
    const ring = legacyRing()
    ring.addKek('kek-new', crypto.randomBytes(32), 'active')
    return ring
  }

  async function exists(Key) {
    try {
      await client.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key }))
      return true
    } catch (e) {
      if (e.$metadata?.httpStatusCode === 404) return false
      throw e
    }
  }

  for (const name of ['single', 'streamed', 'framed', 'staged']) {
    test(`${name}: migrate re-encrypts in place under the active key, keeps user metadata and headers, then drops the object-keyed sidecar`, async () => {
      const l = L.find((x) => x.name === name)
      const Key = `${prefix}migrate/${name}/object.bin`
      const metadata = { ...l.metadata, owner: 'alice', 'project-id': '42' }
      await store(Key, l, { metadata })
      await client.send(
        new sdk.CopyObjectCommand({
          Bucket: BUCKET,
          Key,
          CopySource: `${BUCKET}/${Key}`,
          MetadataDirective: 'REPLACE',
          Metadata: metadata,
          ContentType: 'application/x-test',
          CacheControl: 'max-age=7',
        }),
      )
      const sidecar = l.sidecar ? l.sidecar.key.replace(l.sidecar.objectKey, Key) : null
      const objectKeyed = sidecar === isec.sidecarKey('legacy', Key)
      const m = new IsecS3(client, migrationRing(), { partSize: 5 * MiB })
      const before = log.length
      const r = await m.migrate(BUCKET, Key)
      assert.equal(r.migrated, true)
      assert.equal(r.kid, 'kek-new')
      assert.equal(r.plaintextLength, l.v.plaintext.len)
      assert.equal(r.sidecarDeleted, objectKeyed ? sidecar : null)
      assert.equal(r.sidecarLeft, sidecar && !objectKeyed ? sidecar : null)
      // In place, even one part is a multipart upload, created before the source is read
      // (SPEC.md §15.5): one S3 part per isec part, completed.
      const sent = log.slice(before).map((q) => q.command)
      const parts = Math.max(1, Math.ceil(l.v.plaintext.len / (5 * MiB)))
      assert.ok(!sent.includes('PutObjectCommand'), sent.join())
      const created = sent.indexOf('CreateMultipartUploadCommand')
      assert.ok(created >= 0 && sent.slice(created, sent.indexOf('UploadPartCommand')).includes('GetObjectCommand'), sent.join())
      assert.equal(sent.filter((c) => c === 'UploadPartCommand').length, parts, sent.join())
      assert.ok(sent.includes('CompleteMultipartUploadCommand'))
      // The deletion comes after the new object was read back.
      if (objectKeyed) {
        assert.equal(sent.at(-1), 'DeleteObjectCommand')
        assert.ok(sent.lastIndexOf('GetObjectCommand') < sent.lastIndexOf('DeleteObjectCommand'))
      }

      const g = await m.getObject({ Bucket: BUCKET, Key })
      assert.equal(sha256(g.Body), l.v.plaintext.sha256)
      assert.equal(g.format, 'isec')
      const h = await m.headObject({ Bucket: BUCKET, Key })
      assert.deepEqual([h.format, h.kid, h.plaintextLength], ['isec', 'kek-new', l.v.plaintext.len])
      assert.equal(h.ContentType, 'application/x-test')
      assert.equal(h.CacheControl, 'max-age=7')
      // The user's keys kept, the previous proxy's format keys gone: exactly core's metadata.
      const raw = await client.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key }))
      const want = Object.fromEntries(isec.objectMetadata(Object.fromEntries(isec.userMetadata(metadata)), h.envelope))
      assert.deepEqual(raw.Metadata, want)
      assert.equal(raw.Metadata.owner, 'alice')
      assert.equal(raw.Metadata['project-id'], '42')
      if (sidecar) assert.equal(await exists(sidecar), !objectKeyed)
      if (sidecar && !objectKeyed) written.add(sidecar)

      // Again: an isec object is left alone.
      const n = log.length
      const again = await m.migrate(BUCKET, Key)
      assert.deepEqual(
        [again.migrated, again.kid, again.plaintextLength, again.sidecarDeleted, again.sidecarLeft],
        [false, 'kek-new', l.v.plaintext.len, null, null],
      )
      assert.deepEqual(
        log.slice(n).filter((q) => !/^(HeadObject|GetObject)Command$/.test(q.command)),
        [],
      )
    })
  }

  test('migrate: a tampered body byte rejects with authentication_failed and leaves object, metadata and sidecar as they were', async () => {
    for (const name of ['single', 'streamed', 'framed']) {
      const l = L.find((x) => x.name === name)
      const bad = Buffer.from(l.body)
      bad[bad.length - 100] ^= 1
      const Key = `${prefix}migrate-bad/${name}/object.bin`
      await store(Key, l, { body: bad })
      const sidecar = l.sidecar ? l.sidecar.key.replace(l.sidecar.objectKey, Key) : null
      const headBefore = await client.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key }))
      const m = new IsecS3(client, migrationRing(), { partSize: 5 * MiB })
      const before = log.length
      assert.equal(await codeOfAsync(m.migrate(BUCKET, Key)), 'authentication_failed', name)
      const sent = log.slice(before).map((q) => q.command)
      assert.ok(!sent.includes('CompleteMultipartUploadCommand') && !sent.includes('DeleteObjectCommand'), sent.join())
      assert.ok(!sent.includes('PutObjectCommand'), sent.join())
      const headAfter = await client.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key }))
      assert.equal(headAfter.ETag, headBefore.ETag)
      assert.deepEqual(headAfter.Metadata, headBefore.Metadata)
      assert.equal(sha256(await raw(Key)), sha256(bad))
      if (sidecar) assert.equal((await raw(sidecar)).toString('utf8'), l.sidecar.body)
      const uploads = await client.send(new sdk.ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: Key }))
      assert.deepEqual(uploads.Uploads ?? [], [])
      assert.equal((await m.headObject({ Bucket: BUCKET, Key })).format, 'legacy')
    }
  })

  test('migrate: VerifyIsec reads the new object back (HEAD, first part, ranges pinned); a replaced object stops it and keeps the sidecar', async () => {
    const l = L.find((x) => x.name === 'framed' && x.sidecar) ?? L.find((x) => x.sidecar)
    const Key = `${prefix}migrate-verify/object.bin`
    const sidecar = l.sidecar.key.replace(l.sidecar.objectKey, Key)
    const objectKeyed = sidecar === isec.sidecarKey('legacy', Key)
    // A client that, once armed, overwrites the object just before the check's HEAD.
    const racing = new sdk.S3Client(garageClientConfig(ENV))
    const seen = []
    let arm = false
    racing.middlewareStack.add(
      (next, context) => async (args) => {
        seen.push({ command: context.commandName, key: args.input.Key, part: args.input.PartNumber, ifMatch: args.input.IfMatch })
        if (arm && context.commandName === 'HeadObjectCommand' && seen.some((q) => /^(PutObject|CompleteMultipartUpload)Command$/.test(q.command))) {
          arm = false
          await new IsecS3(client, migrationRing()).putObject({ Bucket: BUCKET, Key, Body: Buffer.from('someone else') })
        }
        return next(args)
      },
      { step: 'initialize', name: 'verifyRace' },
    )
    try {
      await store(Key, l)
      const m = new IsecS3(racing, migrationRing(), { partSize: 5 * MiB })
      arm = true
      assert.equal(await codeOfAsync(m.migrate(BUCKET, Key)), 'invalid_state')
      assert.ok(!seen.some((q) => q.command === 'DeleteObjectCommand'), 'nothing deleted')
      assert.equal((await raw(sidecar)).toString('utf8'), l.sidecar.body, 'the sidecar is kept')

      // Unraced: after the upload, a HEAD, then the whole read (first part, then ranges
      // pinned to its ETag), then the sidecar's deletion when it is the object's own.
      await store(Key, l)
      seen.length = 0
      const r = await m.migrate(BUCKET, Key)
      assert.equal(r.migrated, true)
      const up = seen.findLastIndex((q) => /^(PutObject|CompleteMultipartUpload)Command$/.test(q.command))
      const after = seen.slice(up + 1).filter((q) => q.key === Key)
      assert.equal(after[0].command, 'HeadObjectCommand')
      assert.deepEqual([after[1].command, after[1].part, after[1].ifMatch], ['GetObjectCommand', isec.FIRST_PART, r.ETag])
      for (const q of after.slice(2)) assert.deepEqual([q.command, q.ifMatch], ['GetObjectCommand', r.ETag])
      assert.equal(r.sidecarDeleted, objectKeyed ? sidecar : null)
      assert.equal(seen.at(-1).command, objectKeyed ? 'DeleteObjectCommand' : 'GetObjectCommand')
      if (!objectKeyed) written.add(sidecar)
    } finally {
      racing.destroy()
    }
  })

  test('migrate: an object without isec-kid needs the default legacy key; plaintext is not_encrypted', async () => {
    const single = L.find((x) => x.name === 'single')
    const Key = `${prefix}migrate-nokid/object.bin`
    const metadata = userMeta(single.v.object_metadata.legacy_68f2c15)
    assert.equal(metadata['isec-kid'], undefined)
    await store(Key, single, { metadata })
    const ring = migrationRing()
    const m = new IsecS3(client, ring)
    const h0 = await client.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key }))
    assert.equal(await codeOfAsync(m.migrate(BUCKET, Key)), 'unknown_kid')
    const h1 = await client.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key }))
    assert.equal(h1.ETag, h0.ETag)
    assert.equal(isec.classifyMetadata(h1.Metadata).format, 'legacy')
    ring.setDefaultLegacy('AKIAVECTORTEST000001')
    const r = await m.migrate(BUCKET, Key)
    assert.deepEqual([r.migrated, r.kid, r.sidecarDeleted, r.sidecarLeft], [true, 'kek-new', null, null])
    assert.equal(sha256((await m.getObject({ Bucket: BUCKET, Key })).Body), single.v.plaintext.sha256)
    assert.equal((await m.headObject({ Bucket: BUCKET, Key })).kid, 'kek-new')

    const plain = `${prefix}migrate-plain/object.bin`
    await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: plain, Body: Buffer.from('plain') }))
    written.add(plain)
    assert.equal(await codeOfAsync(m.migrate(BUCKET, plain)), 'not_encrypted')
    assert.equal((await raw(plain)).toString(), 'plain')
  })

  test('damage fails with one code each and leaves the original readable', async () => {
    const single = L.find((x) => x.name === 'single')
    const streamed = L.find((x) => x.name === 'streamed')
    const staged = L.find((x) => x.name === 'staged')
    const originalReads = async () => {
      for (const l of [single, streamed, staged]) {
        assert.equal(sha256((await s3.getObject({ Bucket: BUCKET, Key: K(l.name) })).Body), l.v.plaintext.sha256)
      }
    }

    // A tampered body byte: the seal's tag.
    for (const l of [single, streamed]) {
      const bad = Buffer.from(l.body)
      bad[Math.floor(bad.length / 2)] ^= 1
      const Key = `${prefix}bad-body/${l.name}/object.bin`
      await store(Key, l, { body: bad })
      assert.equal(await codeOfAsync(s3.getObject({ Bucket: BUCKET, Key })), 'authentication_failed', l.name)
      const st = await s3.getObjectStream({ Bucket: BUCKET, Key })
      const streamErr = await codeOfAsync(
        (async () => {
          for await (const _ of st.Body) void _
        })(),
      )
      assert.equal(streamErr, 'authentication_failed', l.name)
      const mid = Math.floor(l.v.plaintext.len / 2)
      assert.equal(
        await codeOfAsync(s3.getRange({ Bucket: BUCKET, Key, start: mid - 10, end: mid + 10 })),
        'authentication_failed',
        l.name,
      )
    }

    // A tampered sidecar: its gzip (or JSON) does not parse; core's parse code.
    const sc = Buffer.from(streamed.sidecar.body, 'base64')
    sc[sc.length - 5] ^= 0x40
    const badSidecar = `${prefix}bad-sidecar/object.bin`
    await store(badSidecar, streamed, { sidecar: sc.toString('base64') })
    const codeSidecar = await codeOfAsync(s3.getObject({ Bucket: BUCKET, Key: badSidecar }))
    assert.equal(codeSidecar, 'malformed_legacy')
    assert.equal(await codeOfAsync(s3.headObject({ Bucket: BUCKET, Key: badSidecar })), 'malformed_legacy')
    assert.equal(
      await codeOfAsync(s3.copyObject({ SourceBucket: BUCKET, SourceKey: badSidecar, Bucket: BUCKET, Key: `${prefix}x` })),
      'malformed_legacy',
    )
    // One larger than core's cap is refused unread (a 16 MiB + 1 body).
    const huge = `${prefix}huge-sidecar/object.bin`
    await store(huge, streamed, { sidecar: 'A'.repeat(16 * MiB + 1) })
    assert.equal(await codeOfAsync(s3.getObject({ Bucket: BUCKET, Key: huge })), 'sidecar_too_large')

    // A missing sidecar: a staged upload names its generation's, which must exist.
    const noSidecar = `${prefix}no-sidecar/object.bin`
    const otherGen = { ...staged.metadata, 's3proxy-generation': '0'.repeat(64) }
    await store(noSidecar, staged, { metadata: otherGen, sidecar: null })
    assert.equal(await codeOfAsync(s3.getObject({ Bucket: BUCKET, Key: noSidecar })), 'malformed_legacy')
    assert.equal(
      await codeOfAsync(s3.getRange({ Bucket: BUCKET, Key: noSidecar, start: 0, end: 10 })),
      'malformed_legacy',
    )
    // A streamed upload without its sidecar looks plain: refused as not encrypted.
    const lost = `${prefix}lost-sidecar/object.bin`
    await store(lost, streamed, { sidecar: null })
    assert.equal(await codeOfAsync(s3.getObject({ Bucket: BUCKET, Key: lost })), 'not_encrypted')

    // The wrong secret: the DEK does not unwrap.
    const wrong = new IsecS3(client, legacyRing('not-the-secret'))
    for (const l of [single, streamed, staged]) {
      assert.equal(await codeOfAsync(wrong.getObject({ Bucket: BUCKET, Key: K(l.name) })), 'unwrap_failed', l.name)
      assert.equal(
        await codeOfAsync(wrong.getRange({ Bucket: BUCKET, Key: K(l.name), start: 0, end: 5 })),
        'unwrap_failed',
        l.name,
      )
    }
    await originalReads()
  })

  test('a plain object with no sidecar still reads as not_encrypted, and as stored with allowPlaintext', async () => {
    const Key = `${prefix}plain/object.bin`
    const body = crypto.randomBytes(5000)
    await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key, Body: body, Metadata: { a: 'b' } }))
    written.add(Key)
    assert.equal(await codeOfAsync(s3.getObject({ Bucket: BUCKET, Key })), 'not_encrypted')
    assert.ok((await s3.getObject({ Bucket: BUCKET, Key, allowPlaintext: true })).Body.equals(body))
    const h = await s3.headObject({ Bucket: BUCKET, Key })
    assert.deepEqual([h.format, h.plaintextLength], ['plaintext', 5000])
  })
})
