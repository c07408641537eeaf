// What every S3 helper asks the core, through the addon: a new object's metadata, the user
// part of an object's metadata, where a segment table is, which sidecar a copy moves and
// under which key, and a part size that fits S3's 10000 parts. Plus the contract of the
// streaming contexts a helper drives: one call at a time, locked after any error.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isec, keyringWith, codeOf, codeOfAsync } from './helpers.mjs'

const F = 65536
const ring = () => keyringWith({ 'kek-a': 'active' })

test('objectMetadata: the user keys (format keys dropped, names normalised) plus the envelope', () => {
  const { envelope } = ring().createEnvelopeSync()
  const user = {
    'X-Amz-Meta-Owner': 'ana',
    isec: 'forged',
    'isec-kid': 'forged',
    's3proxy-format': 'single-v3',
    'plaintext-size': '9',
  }
  const meta = isec.objectMetadata(user, envelope)
  assert.deepEqual(meta, [
    ['owner', 'ana'],
    ['isec', envelope.toText()],
    ['isec-kid', 'kek-a'],
  ])
  // Pairs in, the same answer; nothing but the envelope for no user metadata.
  assert.deepEqual(isec.objectMetadata(Object.entries(user), envelope), meta)
  assert.deepEqual(isec.objectMetadata({}, envelope), [
    ['isec', envelope.toText()],
    ['isec-kid', 'kek-a'],
  ])
  // What a reader then sees: an isec object under that envelope.
  const cls = isec.classifyMetadata(Object.fromEntries(meta))
  assert.equal(cls.format, 'isec')
  assert.ok(cls.envelope.equals(envelope))
  assert.equal(isec.classifyMetadata({ owner: 'x' }).envelope, undefined)
  assert.equal(codeOf(() => isec.objectMetadata({ a: 1 }, envelope)), 'invalid_parameter')
  assert.equal(codeOf(() => isec.objectMetadata({}, {})), 'invalid_parameter')
})

test('userMetadata strips every format key; metadataSize counts what S3 counts', () => {
  const meta = {
    isec: 'e',
    'isec-kid': 'k',
    'isec-table': 't',
    'client-etag': 'c',
    'plaintext-size': '1',
    's3proxy-format': 'f',
    's3proxy-generation': 'g',
    'x-amz-meta-Colour': 'blue',
  }
  assert.deepEqual(isec.userMetadata(meta), [['colour', 'blue']])
  assert.deepEqual(isec.userMetadata([]), [])
  // Names (without x-amz-meta-) and values, in UTF-8 bytes.
  assert.equal(isec.metadataSize({ 'x-amz-meta-ab': 'cde', é: 'ü' }), 2 + 3 + 2 + 2)
  assert.equal(isec.metadataSize({}), 0)
})

test('tableSource: inline bytes, null for the sidecar, malformed values refused', () => {
  assert.equal(isec.tableSource({ owner: 'x' }), null)
  assert.deepEqual(isec.tableSource({ 'isec-table': 'AQID' }), Buffer.from([1, 2, 3]))
  assert.deepEqual(isec.tableSource({ 'X-Amz-Meta-Isec-Table': 'AQID' }), Buffer.from([1, 2, 3]))
  assert.equal(codeOf(() => isec.tableSource({ 'isec-table': 'AQ+D' })), 'malformed_segment_table')
  assert.equal(codeOf(() => isec.tableSource({ 'isec-table': 'A'.repeat(200_000) })), 'malformed_segment_table')
  // An inline table round-trips into the object's shape.
  const { envelope, key } = ring().createEnvelopeSync({ table: true })
  const table = new isec.SegmentTable([
    [1, 10, Buffer.alloc(7)],
    [2, 5, Buffer.alloc(7)],
  ]).encode(key)
  const meta = Object.fromEntries(isec.objectMetadata({}, envelope))
  meta['isec-table'] = table.toString('base64url')
  const inline = isec.tableSource(meta)
  assert.deepEqual(inline, table)
  assert.equal(isec.Shape.fromTable(key, inline, 15 + 2 * 28).plaintextLength, 15)
})

test('sidecarKey and the plan\'s sidecar kind', () => {
  assert.equal(isec.sidecarKey('table', 'a/b'), 'a/b.isec-table')
  assert.equal(isec.sidecarKey('legacy', 'a/b'), '.s3proxy-internal/a/b.meta')
  assert.equal(codeOf(() => isec.sidecarKey('other', 'a')), 'invalid_parameter')
  assert.equal(codeOf(() => isec.sidecarKey('table', 5)), 'invalid_parameter')

  const r = ring()
  const { envelope } = r.createEnvelopeSync({ table: true })
  const meta = Object.fromEntries(isec.objectMetadata({}, envelope))
  const withSidecar = isec.decideCopy({ sourceMetadata: meta, sourceSize: 0, sourceSidecar: true }, r)
  assert.deepEqual([withSidecar.copySidecar, withSidecar.sidecar], [true, 'table'])
  const without = isec.decideCopy({ sourceMetadata: meta, sourceSize: 0 }, r)
  assert.deepEqual([without.copySidecar, without.sidecar], [false, null])
  const plain = isec.decideCopy({ sourceMetadata: { owner: 'x' }, sourceSize: 5 })
  assert.deepEqual([plain.sidecar, plain.metadata], [null, null])
  // A legacy object whose parts live in the object-keyed sidecar.
  const legacy = isec.decideCopy({ sourceMetadata: {}, sourceSize: 100, sourceSidecar: true })
  assert.deepEqual([legacy.copySidecar, legacy.sidecar], [true, 'legacy'])
})

test('re-encrypting plans carry the user metadata; objectMetadata completes it', () => {
  const r = ring()
  const { envelope } = r.createEnvelopeSync()
  const meta = { ...Object.fromEntries(isec.objectMetadata({}, envelope)), owner: 'ana' }
  const plan = isec.decideCopy({ sourceMetadata: meta, sourceSize: 100, rotateDek: true }, r)
  assert.equal(plan.action, 'reencrypt')
  assert.deepEqual(plan.metadata, [['owner', 'ana']])
  const replaced = isec.decideCopy(
    { sourceMetadata: meta, sourceSize: 100, rotateDek: true, directive: 'REPLACE', newMetadata: { team: 'b', isec: 'x' } },
    r,
  )
  assert.deepEqual(replaced.metadata, [['team', 'b']])
  const next = r.createEnvelopeSync().envelope
  assert.deepEqual(isec.objectMetadata(replaced.metadata, next), [
    ['team', 'b'],
    ['isec', next.toText()],
    ['isec-kid', 'kek-a'],
  ])
})

test('copy limits no S3 accepts are refused before planning', () => {
  const req = (limits) => ({ sourceMetadata: {}, sourceSize: 2 ** 40, limits })
  for (const limits of [{ maxParts: 4e9, partMax: 1, partMin: 1 }, { maxParts: 0 }, { partMin: 10, partMax: 5 }]) {
    assert.equal(codeOf(() => isec.decideCopy(req(limits))), 'invalid_parameter', JSON.stringify(limits))
  }
  assert.equal(codeOf(() => isec.decideCopy(req('big'))), 'invalid_parameter')
})

test('fitParts: part sizes in whole frames, grown to fit 10000 parts', () => {
  const r = ring()
  const a = r.createEnvelopeSync({ fitParts: { size: 100 * 2 ** 20, preferred: 5_000_000 } })
  assert.equal(a.key.partSize, 77 * F) // 5,000,000 rounded up to whole frames
  assert.equal(a.envelope.inspect().partSize, 77 * F)
  assert.equal(a.envelope.layout, 'parts')
  // 1 TiB at 8 MiB would be 131072 parts: the smallest whole-frame size that fits.
  const size = 2 ** 40
  const b = r.createEnvelopeSync({ fitParts: { size, preferred: 8 * 2 ** 20 }, declaredSize: size })
  const part = b.key.partSize
  assert.equal(part % F, 0)
  assert.ok(Math.ceil(size / part) <= 10_000)
  assert.ok(Math.ceil(size / (part - F)) > 10_000)
  assert.equal(isec.Shape.forPlaintext(b.envelope, size).segmentCount, Math.ceil(size / part))
  // Frames of another size: whole frames of that size.
  const c = r.createEnvelopeSync({ frameSize: 4096, fitParts: { size: 10, preferred: 5000 } })
  assert.equal(c.key.partSize, 8192)
  assert.equal(codeOf(() => r.createEnvelopeSync({ fitParts: { size: 10, preferred: 0 } })), 'invalid_parameter')
  assert.equal(codeOf(() => r.createEnvelopeSync({ fitParts: { size: 2 ** 45, preferred: 8 * 2 ** 20 } })), 'limit_exceeded')
  assert.equal(codeOf(() => r.createEnvelopeSync({ fitParts: { size: 1, preferred: 6 * 2 ** 30 } })), 'limit_exceeded')
  for (const other of [{ partSize: F }, { table: true }]) {
    const opts = { fitParts: { size: 10, preferred: F }, ...other }
    assert.equal(codeOf(() => r.createEnvelopeSync(opts)), 'invalid_parameter')
  }
  for (const bad of ['x', null, { size: 1 }, { size: -1, preferred: F }, [1, 2]]) {
    assert.equal(codeOf(() => r.createEnvelopeSync({ fitParts: bad })), 'invalid_parameter', JSON.stringify(bad))
  }
})

test('classes made by factories refuse `new` with a typed error', () => {
  for (const C of [
    isec.Envelope,
    isec.ObjectKey,
    isec.Shape,
    isec.ReencryptionJob,
    isec.LegacyMetadata,
    isec.LegacySidecar,
    isec.LegacyObject,
    isec.LegacyKey,
  ]) {
    assert.throws(
      () => new C(),
      (e) => e instanceof TypeError && e.code === 'invalid_parameter' && e.family === 'usage',
      C.name,
    )
  }
  // Their factories still make instances that the addon accepts.
  const { envelope } = ring().createEnvelopeSync()
  const shape = isec.Shape.forPlaintext(envelope, 10)
  assert.ok(shape instanceof isec.Shape)
  assert.ok(isec.Envelope.decodeText(envelope.toText()) instanceof isec.Envelope)
  assert.equal(isec.shapeFor(envelope, shape.ciphertextLength).plaintextLength, 10)
})

test('a context locks after any error of a call that feeds it', async () => {
  const r = ring()
  const { key } = r.createEnvelopeSync({ frameSize: 4096, partSize: 8192 })
  // More than the part holds: the error, then nothing more from this encryptor.
  const e = isec.Encryptor.forPart(key, 1, false)
  assert.equal(codeOf(() => e.update(Buffer.alloc(8193))), 'invalid_parameter')
  assert.equal(codeOf(() => e.update(Buffer.alloc(1))), 'invalid_state')
  assert.equal(codeOf(() => e.final()), 'invalid_state')
  assert.equal(codeOf(() => e.consumed), 'invalid_state')
  // A too small output buffer too: the caller cannot tell what was consumed.
  const single = r.createEnvelopeSync({ frameSize: 4096 }).key
  const e2 = new isec.Encryptor(single)
  assert.equal(codeOf(() => e2.updateInto(Buffer.alloc(5000), Buffer.alloc(10))), 'buffer_too_small')
  assert.equal(codeOf(() => e2.update(Buffer.alloc(1))), 'invalid_state')
  // An aborted async update: its input never reached the stream, which is therefore done.
  const e3 = new isec.Encryptor(single)
  const token = new isec.CancelToken()
  token.cancel()
  assert.equal(await codeOfAsync(e3.updateAsync(Buffer.alloc(10), token)), 'ABORT_ERR')
  assert.equal(codeOf(() => e3.update(Buffer.alloc(1))), 'invalid_state')
  // Without errors the same calls make an object.
  const e4 = new isec.Encryptor(single)
  assert.equal(e4.updateLength(4096), 0)
  assert.equal(e4.finalLength, 28)
  const ct = Buffer.concat([e4.update(Buffer.alloc(10, 7)), e4.final()])
  assert.deepEqual(isec.decryptSync(single, ct), Buffer.alloc(10, 7))
})

test('one call at a time: calls while an updateAsync is in flight are refused, and the stream locks', async () => {
  const { key } = ring().createEnvelopeSync({ frameSize: 4096 })
  // Awaited one after the other: fine, in order.
  const chunks = Array.from({ length: 4 }, (_, i) => Buffer.alloc(10_000, i + 1))
  const ok = new isec.Encryptor(key)
  const outs = []
  for (const c of chunks) outs.push(await ok.updateAsync(c))
  outs.push(ok.final())
  assert.deepEqual(isec.decryptSync(key, Buffer.concat(outs)), Buffer.concat(chunks))

  // Overlapping: the first runs, the others are refused; the context then refuses all.
  const e = new isec.Encryptor(key)
  const first = e.updateAsync(chunks[0])
  const second = e.updateAsync(chunks[1])
  assert.equal(codeOf(() => e.update(chunks[2])), 'invalid_state')
  assert.equal(codeOf(() => e.consumed), 'invalid_state')
  assert.equal(await codeOfAsync(second), 'invalid_state')
  assert.ok((await first).length > 0)
  assert.equal(codeOf(() => e.update(chunks[3])), 'invalid_state')
  assert.equal(codeOf(() => e.final()), 'invalid_state')

  // A query while one is in flight is refused but does not lock.
  const d = new isec.Encryptor(key)
  const p = d.updateAsync(chunks[0])
  assert.equal(codeOf(() => d.updateLength(1)), 'invalid_state')
  const parts = [await p, d.update(chunks[1]), d.final()]
  assert.deepEqual(isec.decryptSync(key, Buffer.concat(parts)), Buffer.concat(chunks.slice(0, 2)))
})
