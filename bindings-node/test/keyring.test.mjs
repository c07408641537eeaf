// Keyring, external (async) key wrappers, multipart, segment tables, copy, scan and
// re-encryption through the binding.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { isec, pattern, codeOf, codeOfAsync, load } from './helpers.mjs'
import { concurrentEnvelopesGetDifferentDeks, recordingKms as sharedRecordingKms, rewrapAnswerIsNotNewDek } from '../../tests/js/keyring.mjs'

/** A toy KMS: AES-KWP is core's business, so this one just XORs with a secret pad. */
function toyKms() {
  const pad = randomBytes(32)
  const calls = []
  const xor = (b) => Buffer.from(b.map((x, i) => x ^ pad[i % 32]))
  return {
    calls,
    wrapper: {
      wrap: async (kid, dek) => {
        calls.push(['wrap', kid])
        await new Promise((r) => setTimeout(r, 1))
        return Buffer.concat([Buffer.from('kms1'), xor(dek)])
      },
      unwrap: async (kid, wrapped) => {
        calls.push(['unwrap', kid])
        return xor(wrapped.subarray(4))
      },
    },
  }
}

test('local keyring: states, min version, keys(), activeKid, sync and async agree', async () => {
  const ring = new isec.Keyring()
  assert.equal(ring.activeKid, null)
  assert.equal(codeOf(() => ring.createEnvelopeSync()), 'key_not_active')
  ring.addKek('k1', randomBytes(32))
  ring.addKek('k2', randomBytes(32), 'decrypt_only')
  ring.addLegacySecretString('legacy', 'secret')
  assert.equal(ring.activeKid, 'k1')
  const { envelope, key } = await ring.createEnvelope({ frameSize: 4096 })
  const ct = isec.encryptSync(key, pattern(9000))
  assert.deepEqual(isec.decryptSync(await ring.open(envelope), ct), pattern(9000))
  ring.setState('k2', 'active')
  assert.deepEqual(
    ring.keys().map((k) => [k.kid, k.state, k.legacy, k.external]),
    [
      ['k1', 'decrypt_only', false, false],
      ['k2', 'active', false, false],
      ['legacy', 'decrypt_only', true, false],
    ],
  )
  const moved = await ring.rewrap(envelope)
  assert.equal(moved.kid, 'k2')
  assert.deepEqual(moved.header(), envelope.header())
  assert.deepEqual(isec.decryptSync(ring.openSync(moved), ct), pattern(9000))
  assert.equal(await codeOfAsync(ring.rewrapTo(envelope, 'k1')), 'key_not_active')
  assert.equal(codeOf(() => ring.setState('legacy', 'active')), 'invalid_parameter')
  ring.setState('k1', 'disabled')
  assert.equal(codeOf(() => ring.openSync(envelope)), 'key_disabled')
  ring.setMinVersion(2)
  assert.equal(codeOf(() => ring.openSync(moved)), 'version_refused')
  assert.equal(codeOf(() => ring.addKek('k2', randomBytes(32))), 'duplicate_kid')
})

test('wrong_key_kind: a legacy secret never opens an isec envelope, an isec KEK is no legacy key', () => {
  const writer = new isec.Keyring()
  writer.addKek('old', randomBytes(32))
  const { envelope } = writer.createEnvelopeSync()
  const ring = new isec.Keyring()
  ring.addLegacySecretString('old', 'pw')
  const e = (() => {
    try {
      ring.openSync(envelope)
    } catch (err) {
      return err
    }
    assert.fail('opened')
  })()
  assert.equal(e.code, 'wrong_key_kind')
  assert.equal(e.family, 'key')
  // The other way: an isec KEK named as the key of a previous-proxy object.
  const lv = load('legacy.json').tests[10]
  const obj = isec.LegacyObject.create(isec.LegacyMetadata.fromPairs(lv.metadata), null, Buffer.from(lv.ciphertext, 'hex').length)
  const isecRing = new isec.Keyring()
  isecRing.addKek(lv.kid, randomBytes(32))
  assert.equal(codeOf(() => isecRing.legacyKey(obj, lv.kid)), 'wrong_key_kind')
  assert.equal(codeOf(() => isec.ReencryptionJob.startLegacy(isecRing, obj, { kid: lv.kid })), 'wrong_key_kind')
})

test('setDefaultLegacy: the previous-proxy key for objects that record no kid', () => {
  const lv = load('legacy.json').tests[10]
  const pairs = lv.metadata.filter(([k]) => k.toLowerCase() !== 'x-amz-meta-isec-kid' && k.toLowerCase() !== 'isec-kid')
  const obj = isec.LegacyObject.create(isec.LegacyMetadata.fromPairs(pairs), null, Buffer.from(lv.ciphertext, 'hex').length)
  assert.equal(obj.kid, null)
  const ring = new isec.Keyring()
  ring.addKek('isec', randomBytes(32))
  ring.addLegacySecretString(lv.kid, lv.legacy_secret)
  assert.equal(codeOf(() => ring.legacyKey(obj)), 'unknown_kid')
  // Only a previous-proxy secret qualifies, and only a known kid.
  assert.equal(codeOf(() => ring.setDefaultLegacy('isec')), 'wrong_key_kind')
  assert.equal(codeOf(() => ring.setDefaultLegacy('nobody')), 'unknown_kid')
  assert.equal(codeOf(() => ring.legacyKey(obj)), 'unknown_kid')
  ring.setDefaultLegacy(lv.kid)
  const ct = Buffer.from(lv.ciphertext, 'hex')
  assert.equal(isec.legacyDecryptSync(ring.legacyKey(obj), obj, ct).length, lv.plaintext_len)
  // An explicit kid still wins: an isec KEK named is refused.
  assert.equal(codeOf(() => ring.legacyKey(obj, 'isec')), 'wrong_key_kind')
})

test('external keys: async wrap and unwrap, failures are external_wrapper_failed', async () => {
  const kms = toyKms()
  const ring = new isec.Keyring()
  ring.addExternal('kms', kms.wrapper)
  const { envelope, key } = await ring.createEnvelope()
  assert.equal(envelope.wrapAlg, 'external')
  assert.equal(envelope.kid, 'kms')
  assert.deepEqual(kms.calls, [['wrap', 'kms']])
  const ct = isec.encryptSync(key, Buffer.from('hello'))
  const opened = await ring.open(envelope)
  assert.equal(isec.decryptSync(opened, ct).toString(), 'hello')
  assert.equal(codeOf(() => ring.openSync(envelope)), 'external_wrapper_failed')
  ring.keys().forEach((k) => assert.equal(k.external, true))
  // Rotate to a local key and back to the KMS: rewrap touches only the envelope.
  ring.addKek('local', randomBytes(32))
  const local = await ring.rewrap(envelope)
  assert.equal(local.wrapAlg, 'aes-kwp')
  assert.equal(isec.decryptSync(ring.openSync(local), ct).toString(), 'hello')
  ring.setState('kms', 'active')
  const back = await ring.rewrapTo(local, 'kms')
  assert.equal(isec.decryptSync(await ring.open(back), ct).toString(), 'hello')
  // A wrapper that rejects, or answers with a wrong DEK.
  const bad = new isec.Keyring()
  bad.addExternal('kms', { wrap: async () => { throw new Error('KMS down') }, unwrap: async () => randomBytes(32) })
  await assert.rejects(bad.createEnvelope(), (e) => e.code === 'external_wrapper_failed' && e.cause.message === 'KMS down')
  assert.equal(await codeOfAsync(bad.open(envelope)), 'commitment_mismatch')
  const short = new isec.Keyring()
  short.addExternal('kms', { wrap: async () => Buffer.alloc(0), unwrap: async () => Buffer.alloc(5) })
  assert.equal(await codeOfAsync(short.open(envelope)), 'external_wrapper_failed')
  assert.equal(await codeOfAsync(short.createEnvelope()), 'external_wrapper_failed')
  assert.throws(() => short.addExternal('x', {}), (e) => e.code === 'invalid_parameter')
  // Concurrent opens do not mix their answers.
  const keys = await Promise.all([1, 2, 3, 4].map(() => ring.open(envelope)))
  for (const k of keys) assert.equal(isec.decryptSync(k, ct).toString(), 'hello')
})

const shared = { isec, assert, of: (b) => Buffer.from(b), kid: 'kms' }
const recordingKms = () => sharedRecordingKms(shared.of)

test('external keys: concurrently created envelopes get different DEKs', () => concurrentEnvelopesGetDifferentDeks(shared))

test("external keys: a rewrap's wrap answer is not a new envelope's DEK", () => rewrapAnswerIsNotNewDek(shared))

test('external keys: a KeyTask stops at the request, checks the answer and runs once', async () => {
  const ring = new isec.Keyring()
  ring.addExternal('kms', { wrap: () => Buffer.alloc(40, 1), unwrap: () => Buffer.alloc(32) })
  const task = ring.beginCreate()
  assert.equal(codeOf(() => task.finish()), 'invalid_parameter')
  const req = task.step(ring)
  assert.equal(req.kid, 'kms')
  assert.equal(req.op, 'wrap')
  assert.equal(req.input.length, 32)
  assert.equal(codeOf(() => task.answer(Buffer.alloc(0))), 'external_wrapper_failed')
  // A failed task is spent.
  assert.equal(codeOf(() => task.step(ring)), 'invalid_parameter')
  const ok = ring.beginCreate({ fitParts: { size: 1 << 20, preferred: 5 << 20 } })
  assert.equal(ok.step(ring).op, 'wrap')
  ok.answer(Buffer.alloc(40, 2))
  assert.equal(ok.step(ring), null)
  const { envelope } = ok.finish()
  assert.equal(envelope.layout, 'parts')
  assert.equal(codeOf(() => ok.finish()), 'invalid_parameter')
  // Local keys never stop.
  const local = new isec.Keyring()
  local.addKek('k', randomBytes(32))
  const t = local.beginCreate()
  assert.equal(t.step(local), null)
  assert.equal(t.finish().envelope.kid, 'k')
  assert.equal(
    codeOf(() => local.beginCreate({ partSize: 1 << 16, table: true })),
    'invalid_parameter',
    'conflicting layouts',
  )
  await assert.rejects(ring.withExternal(() => 1), (e) => e.code === 'invalid_parameter')
})

/** Starts a job under the keyring's (possibly external) keys: target and source keys first. */
async function startIsec(ring, src, shape, options = {}) {
  const target = await ring.withExternal(isec.ReencryptionJob.beginTarget(ring, shape.plaintextLength, options))
  const sourceKey = await ring.open(src.envelope)
  return isec.ReencryptionJob.startIsec(ring, src.envelope, shape, {
    ...options,
    sourceKey,
    targetEnvelope: target.envelope,
    targetKey: target.key,
  })
}

test('re-encryption: two jobs started concurrently get different DEKs', async () => {
  const kms = recordingKms()
  const ring = new isec.Keyring()
  ring.addKek('old', randomBytes(32))
  const src = ring.createEnvelopeSync()
  const ct = isec.encryptSync(src.key, pattern(1000))
  ring.addExternal('kms', kms.wrapper)
  const shape = isec.shapeFor(src.envelope, ct.length)
  const jobs = await Promise.all([startIsec(ring, src, shape), startIsec(ring, src, shape)])
  assert.equal(kms.deks.length, 2, 'one KMS wrap per job')
  assert.notDeepEqual(kms.deks[0], kms.deks[1])
  assert.notDeepEqual(kms.dekOf(jobs[0].targetEnvelope), kms.dekOf(jobs[1].targetEnvelope))
  for (const job of jobs) {
    const out = Buffer.concat([job.update(ct, 0).output, job.finish()])
    assert.deepEqual(isec.decryptSync(await ring.open(job.targetEnvelope), out), pattern(1000))
  }
})

test('encryptPartInto and Decryptor#updateIntoAsync write into the caller\'s buffers', async () => {
  const ring = new isec.Keyring()
  ring.addKek('k', randomBytes(32))
  const pt = pattern(20000)
  const { envelope, key } = ring.createEnvelopeSync({ frameSize: 4096, partSize: 8192 })
  const shape = isec.Shape.forPlaintext(envelope, pt.length)
  const out = Buffer.alloc(shape.segment(0).ctLen + 100)
  const parts = []
  const prefixes = []
  for (let n = 1; n <= 3; n++) {
    const at = (n - 1) * 8192
    const len = await isec.encryptPartInto(key, n, n === 3, pt.subarray(at, at + 8192), out)
    assert.equal(len, shape.segment(n - 1).ctLen)
    parts.push(Buffer.from(out.subarray(0, len)))
    prefixes.push(isec.parseNonce(out.subarray(0, 12)).prefix)
  }
  assert.ok(!prefixes[0].equals(prefixes[1]), 'a fresh nonce prefix per call')
  const ct = Buffer.concat(parts)
  assert.deepEqual(isec.decryptSync(key, ct), pt)
  // The same part into the same buffer again: a new encryption.
  await isec.encryptPartInto(key, 1, false, pt.subarray(0, 8192), out)
  assert.ok(!isec.parseNonce(out.subarray(0, 12)).prefix.equals(prefixes[0]))
  // Too small an output, an output overlapping the input, an aborted call.
  assert.equal(await codeOfAsync(isec.encryptPartInto(key, 1, false, pt.subarray(0, 8192), Buffer.alloc(8192))), 'buffer_too_small')
  const both = Buffer.alloc(30000)
  assert.equal(await codeOfAsync(isec.encryptPartInto(key, 1, false, both.subarray(0, 8192), both.subarray(100))), 'invalid_parameter')
  const ac = new AbortController()
  ac.abort()
  assert.equal(await codeOfAsync(isec.encryptPartInto(key, 1, false, pt.subarray(0, 8192), out, { signal: ac.signal })), 'ABORT_ERR')

  const dec = isec.Decryptor.withShape(key, isec.shapeFor(envelope, ct.length))
  const plain = Buffer.alloc(ct.length)
  let w = 0
  for (let at = 0; at < ct.length; at += 7000) {
    const chunk = ct.subarray(at, at + 7000)
    w += await dec.updateIntoAsync(chunk, plain.subarray(w))
  }
  w += dec.finalInto(plain.subarray(w))
  assert.deepEqual(plain.subarray(0, w), pt)
  // One call at a time, as updateAsync.
  const d2 = isec.Decryptor.withShape(key, isec.shapeFor(envelope, ct.length))
  const first = d2.updateIntoAsync(ct.subarray(0, 5000), Buffer.alloc(10000))
  assert.equal(await codeOfAsync(d2.updateIntoAsync(ct.subarray(5000, 6000), Buffer.alloc(10000))), 'invalid_state')
  await first
  // A damaged frame: rejected, nothing left in the output.
  const bad = Buffer.from(ct)
  bad[100] ^= 1
  const d3 = isec.Decryptor.withShape(key, isec.shapeFor(envelope, ct.length))
  const o3 = Buffer.alloc(ct.length)
  assert.equal(await codeOfAsync(d3.updateIntoAsync(bad, o3)), 'authentication_failed')
  assert.ok(o3.every((b) => b === 0))
})

test('multipart: parts in any order, table layout with its segment table, shapes', async () => {
  const ring = new isec.Keyring()
  ring.addKek('k', randomBytes(32))
  const pt = pattern(20000)
  const { envelope, key } = ring.createEnvelopeSync({ frameSize: 4096, partSize: 8192 })
  const parts = [3, 1, 2].map((n) => [n, isec.encryptPartSync(key, n, n === 3, pt.subarray((n - 1) * 8192, n * 8192))])
  const ct = Buffer.concat(parts.sort((a, b) => a[0] - b[0]).map((p) => p[1]))
  assert.deepEqual(isec.decryptSync(key, ct), pt)
  assert.deepEqual(await isec.encryptPart(key, 1, false, pt.subarray(0, 8192)).then((b) => b.length), 8192 + 2 * 28)
  const shape = isec.shapeFor(envelope, ct.length)
  assert.equal(shape.segmentCount, 3)
  assert.equal(shape.plaintextLength, 20000)
  assert.deepEqual(isec.decryptSync(key, await isec.encrypt(key, pt)), pt)
  assert.equal(envelope.inspect(ct.length).plaintextLength, 20000)
  // Table layout.
  const t = ring.createEnvelopeSync({ frameSize: 4096, table: true })
  const sizes = [[2, 5000], [5, 1], [9, 5299]]
  let at = 0
  const entries = []
  const bodies = sizes.map(([n, len]) => {
    let b
    if (n === 5) {
      // Streaming: the encryptor's prefix, readable after final.
      const enc = isec.Encryptor.forPart(t.key, n, false)
      b = Buffer.concat([enc.update(pt.subarray(at, at + len)), enc.final()])
      assert.deepEqual(enc.prefix, b.subarray(0, 7))
      entries.push([n, len, enc.prefix])
    } else {
      // One-shot: the prefix is the part's first 7 bytes.
      b = isec.encryptPartSync(t.key, n, false, pt.subarray(at, at + len))
      entries.push([n, len, new Uint8Array(b.subarray(0, 7))])
    }
    at += len
    return b
  })
  const table = new isec.SegmentTable(entries)
  const encoded = table.encode(t.key)
  assert.deepEqual(
    isec.SegmentTable.decode(encoded, t.key).entries,
    entries.map(([n, len, p]) => [n, len, Buffer.from(p)]),
  )
  const tct = Buffer.concat(bodies)
  assert.deepEqual(isec.decryptWithTableSync(t.key, encoded, tct), pt.subarray(0, 10300))
  const tshape = isec.Shape.fromTable(t.key, encoded, tct.length)
  const plan = tshape.mapRange(4999, 5002)
  assert.deepEqual(isec.decryptRangeSync(t.key, tshape, 4999, 5002, tct.subarray(plan.ctStart, plan.ctEnd)), pt.subarray(4999, 5002))
  const z = Buffer.alloc(7)
  assert.equal(codeOf(() => new isec.SegmentTable([[2, 1, z], [1, 1, z]])), 'malformed_segment_table')
  // A prefix of another length is invalid_parameter; of another type, or an entry without
  // one, a TypeError with that code.
  assert.equal(codeOf(() => new isec.SegmentTable([[1, 1, Buffer.alloc(6)]])), 'invalid_parameter')
  assert.equal(codeOf(() => new isec.SegmentTable([[1, 1, Buffer.alloc(8)]])), 'invalid_parameter')
  for (const bad of [[[1, 1]], [[1, 1, 'abcdefg']], [[1, 1, [0, 0, 0, 0, 0, 0, 0]]], [[1, 1, new Uint16Array(7)]]]) {
    let e
    try {
      new isec.SegmentTable(bad)
    } catch (err) {
      e = err
    }
    assert.ok(e instanceof TypeError, JSON.stringify(bad))
    assert.equal(e.code, 'invalid_parameter')
  }
  // Another authentic encryption of part 9 than the one the table records is refused.
  const retried = isec.encryptPartSync(t.key, 9, false, pt.subarray(5001, 10300))
  const swapped = Buffer.concat([bodies[0], bodies[1], retried])
  assert.equal(codeOf(() => isec.decryptWithTableSync(t.key, encoded, swapped)), 'frame_out_of_order')
})

test('copy decision and bucket scan', () => {
  const ring = new isec.Keyring()
  ring.addKek('old', randomBytes(32))
  const { envelope } = ring.createEnvelopeSync({ frameSize: 4096 })
  ring.addKek('new', randomBytes(32))
  const meta = { isec: envelope.toText(), 'isec-kid': 'old', owner: 'alice' }
  const plan = isec.decideCopy({ sourceMetadata: meta, sourceSize: 28, targetKid: 'new' }, ring)
  assert.equal(plan.action, 'native_replace')
  assert.equal(plan.rewrapped, true)
  assert.equal(isec.Envelope.decodeText(Object.fromEntries(plan.metadata).isec).kid, 'new')
  assert.equal(isec.decideCopy({ sourceMetadata: meta, sourceSize: 28 }).action, 'native')
  assert.equal(isec.classifyMetadata(meta).format, 'isec')
  const scan = new isec.ScanPlanner(ring)
  assert.equal(scan.add('a', meta, 100), 'needs_rewrap')
  assert.equal(scan.add('b', {}, 5), 'plaintext')
  assert.equal(scan.add('a.isec-table', {}, 5), 'sidecar')
  assert.deepEqual(scan.remaining(), { objects: 1, bytes: 100 })
  assert.deepEqual(scan.tally('plaintext'), { objects: 1, bytes: 5 })
  assert.equal(scan.byKid().length, 3)
  assert.equal(codeOf(() => scan.tally('nope')), 'invalid_parameter')
})

test('re-encryption: pause, rate limit, checkpoint at a part boundary, resume under fresh prefixes', () => {
  const ring = new isec.Keyring()
  ring.addKek('old', randomBytes(32))
  const src = ring.createEnvelopeSync({ frameSize: 4096 })
  const pt = pattern(50000)
  const ct = isec.encryptSync(src.key, pt)
  ring.addKek('new', randomBytes(32))
  const shape = isec.shapeFor(src.envelope, ct.length)
  const run = (job, out, stopAt) => {
    let now = 0
    while (job.sourceOffset < ct.length) {
      if (stopAt !== undefined && job.targetOffset >= stopAt) return false
      const step = job.update(ct.subarray(job.sourceOffset, job.sourceOffset + 3000), now)
      out.push(step.output)
      now += step.waitMs || 1
    }
    out.push(job.finish())
    return true
  }
  const job = isec.ReencryptionJob.startIsec(ring, src.envelope, shape, { frameSize: 4096, partSize: 8192 })
  const partCt = 2 * (4096 + 28)
  assert.equal(job.targetPartLength, partCt)
  assert.deepEqual([job.progress.partsDone, job.progress.partsTotal], [0, 7]) // 50000 / 8192
  job.pause()
  assert.equal(job.update(ct.subarray(0, 100), 0).consumed, 0)
  assert.equal(job.progress.paused, true)
  job.unpause()
  const first = []
  assert.equal(run(job, first, 20000), false)
  const cp = job.checkpoint()
  const info = isec.ReencryptionJob.parseCheckpoint(cp)
  // Whole parts only: the target offset is a part boundary.
  assert.ok(info.partsDone >= 1)
  assert.equal(job.progress.partsDone, info.partsDone)
  assert.equal(info.targetOffset, info.partsDone * partCt)
  assert.equal(info.envelope.kid, 'new')
  assert.equal(info.envelope.layout, 'parts')
  const resumed = isec.ReencryptionJob.resumeIsec(ring, src.envelope, shape, cp)
  assert.equal(resumed.targetOffset, info.targetOffset)
  const rest = []
  assert.equal(run(resumed, rest), true)
  assert.equal(resumed.progress.finished, true)
  assert.equal(resumed.progress.partsDone, 7)
  const kept = Buffer.concat(first).subarray(0, info.targetOffset)
  const out = Buffer.concat([kept, ...rest])
  const newKey = ring.openSync(resumed.targetEnvelope)
  assert.deepEqual(isec.decryptSync(newKey, out), pt)
  // Resuming again from the same checkpoint writes the unfinished parts under fresh nonce
  // prefixes: other bytes, the same plaintext.
  const again = isec.ReencryptionJob.resumeIsec(ring, src.envelope, shape, cp)
  const whole = []
  run(again, whole)
  assert.notDeepEqual(Buffer.concat(whole).subarray(0, 7), Buffer.concat(rest).subarray(0, 7))
  assert.deepEqual(isec.decryptSync(newKey, Buffer.concat([kept, ...whole])), pt)
  // A checkpoint of another source, a forged one.
  const other = isec.shapeFor(src.envelope, ct.length - 1000 - 28 * 0)
  assert.equal(codeOf(() => isec.ReencryptionJob.resumeIsec(ring, src.envelope, other, cp)), 'malformed_checkpoint')
  const forged = Buffer.from(cp)
  forged[forged.length - 1] ^= 1
  assert.equal(codeOf(() => isec.ReencryptionJob.resumeIsec(ring, src.envelope, shape, forged)), 'authentication_failed')
  // Rate limit: 4096 bytes per second lets about one frame through per second.
  const slow = isec.ReencryptionJob.startIsec(ring, src.envelope, shape, { frameSize: 4096, rate: 4096 })
  slow.update(ct.subarray(0, 20000), 0)
  const step = slow.update(ct.subarray(slow.sourceOffset, slow.sourceOffset + 20000), 0)
  assert.equal(step.consumed, 0)
  assert.ok(step.waitMs > 0)
})

test('re-encryption under an external active key', async () => {
  const kms = toyKms()
  const ring = new isec.Keyring()
  ring.addKek('old', randomBytes(32))
  const src = ring.createEnvelopeSync()
  const ct = isec.encryptSync(src.key, pattern(1000))
  ring.addExternal('kms', kms.wrapper)
  const shape = isec.shapeFor(src.envelope, ct.length)
  assert.equal(codeOf(() => isec.ReencryptionJob.startIsec(ring, src.envelope, shape)), 'external_wrapper_failed')
  const job = await startIsec(ring, src, shape)
  // Resuming under the external key: the checkpoint's envelope is opened first.
  const cp = job.checkpoint()
  const targetKey = await ring.open(isec.ReencryptionJob.parseCheckpoint(cp).envelope)
  const resumed = isec.ReencryptionJob.resumeIsec(ring, src.envelope, shape, cp, { targetKey })
  assert.ok(resumed.targetEnvelope.equals(job.targetEnvelope))
  const out = Buffer.concat([job.update(ct, 0).output, job.finish()])
  assert.equal(job.targetEnvelope.kid, 'kms')
  assert.deepEqual(isec.decryptSync(await ring.open(job.targetEnvelope), out), pattern(1000))
  // An external source key too: the source opened first.
  const ring2 = new isec.Keyring()
  ring2.addExternal('kms', kms.wrapper)
  ring2.addKek('new', randomBytes(32))
  const src2 = { envelope: job.targetEnvelope }
  const job2 = await startIsec(ring2, src2, isec.shapeFor(job.targetEnvelope, out.length))
  const out2 = Buffer.concat([job2.update(out, 0).output, job2.finish()])
  assert.deepEqual(isec.decryptSync(ring2.openSync(job2.targetEnvelope), out2), pattern(1000))
})
