// The package's API in Node (nodejs build): errors, keyrings with external wrappers, one-shot,
// streaming, ranges, multipart parts, copy decision, streams, and contexts' state rules.
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { concurrentEnvelopesGetDifferentDeks, rewrapAnswerIsNotNewDek } from '../../../tests/js/keyring.mjs'
import init from '../../node.mjs'

const isec = await init()
const BACKENDS = ['webcrypto', 'wasm']
const pattern = (n, seed = 0) => new Uint8Array(n).map((_, i) => (i * 13 + seed) % 256)
const kek = (b) => new Uint8Array(32).fill(b)

function ring() {
  const r = new isec.Keyring()
  r.addKek('kek-1', kek(1))
  return r
}

async function rejects(p, code) {
  try {
    await p
  } catch (e) {
    assert.ok(e instanceof Error, 'an Error')
    assert.equal(e.code, code)
    assert.equal(typeof e.family, 'string')
    assert.equal(e.family, isec.errorCodes().find((c) => c.code === code).family)
    return e
  }
  assert.fail(`expected ${code}`)
}

/** Every chunk of an async iterable (Node 20 lacks Array.fromAsync). */
async function collect(it) {
  const out = []
  for await (const c of it) out.push(c)
  return out
}

const throws = (fn, code) => rejects((async () => fn())(), code)

test('errors carry code and family from core, mapped in one place', async () => {
  const codes = isec.errorCodes()
  assert.ok(codes.length >= 26)
  assert.equal(new Set(codes.map((c) => c.code)).size, codes.length)
  for (const { code, family } of codes) {
    const e = isec.isecError(code)
    assert.ok(e instanceof Error)
    assert.equal(e.code, code)
    assert.equal(e.family, family)
    assert.match(e.message, new RegExp(code))
  }
  const e = await throws(() => isec.Envelope.decodeText('!!'), 'malformed_envelope')
  assert.equal(e.family, 'format')
  const t = await throws(() => ring().createEnvelopeSync({ frameSize: 'big' }), 'invalid_parameter')
  assert.ok(t instanceof TypeError)
  await throws(() => ring().createEnvelopeSync({ frameSize: 1000 }), 'invalid_frame_size')
  await throws(() => ring().addKek('x', new Uint8Array(31)), 'invalid_parameter')
  await throws(() => new isec.Encryptor(ring().createEnvelopeSync().key, { backend: 'nope' }), 'invalid_parameter')
  assert.deepEqual(isec.backends(), ['webcrypto', 'wasm'])
  assert.equal(isec.limits().frameOverhead, 28)
})

test('one-shot round trips and cross-backend decryption', async () => {
  for (const opts of [{}, { frameSize: 4096 }, { frameSize: 4096, partSize: 3 * 4096 }, { frameSize: 1 << 20 }]) {
    const { envelope, key } = ring().createEnvelopeSync(opts)
    for (const len of [0, 1, 4095, 4096, 4097, 50_000, 3 * 4096 * 3 + 17]) {
      const pt = pattern(len, len)
      for (const enc of BACKENDS) {
        const ct = await isec.encrypt(key, pt, { backend: enc })
        assert.equal(ct.length, isec.Shape.forPlaintext(envelope, len).ciphertextLength)
        for (const dec of BACKENDS) {
          assert.deepEqual(await isec.decrypt(key, ct, { backend: dec }), pt, `${JSON.stringify(opts)} ${len} ${enc}->${dec}`)
        }
        assert.deepEqual(isec.decryptSync(key, ct), pt)
        if (len > 0) {
          const bad = ct.slice()
          bad[Math.floor(bad.length / 2)] ^= 1
          for (const dec of BACKENDS) await rejects(isec.decrypt(key, bad, { backend: dec }), 'authentication_failed')
        }
      }
    }
  }
})

test('streaming contexts: any chunking, state rules, released counts', async () => {
  const { key } = ring().createEnvelopeSync({ frameSize: 4096 })
  const pt = pattern(100_003)
  for (const backend of BACKENDS) {
    const e = new isec.Encryptor(key, { backend })
    assert.equal(e.backend, backend)
    const parts = []
    for (let at = 0; at < pt.length; at += 7777) parts.push(await e.update(pt.subarray(at, at + 7777)))
    parts.push(await e.final())
    await rejects(e.update(pt), 'invalid_state')
    const ct = Buffer.concat(parts)
    const d = new isec.Decryptor(key, { backend })
    const out = []
    for (let at = 0; at < ct.length; at += 5000) out.push(await d.update(ct.subarray(at, at + 5000)))
    out.push(await d.final())
    assert.deepEqual(new Uint8Array(Buffer.concat(out)), pt)
    assert.equal(d.released, pt.length)
    assert.equal(d.done, true)
    // The same through the *Parts methods (what the streams use).
    const ep = new isec.Encryptor(key, { backend })
    const pieces = []
    for (let at = 0; at < pt.length; at += 9000) pieces.push(...(await ep.updateParts(pt.subarray(at, at + 9000))))
    pieces.push(...(await ep.finalParts()))
    assert.ok(pieces.every((p) => p instanceof Uint8Array && p.length > 0))
    const ct2 = Buffer.concat(pieces)
    const dp = new isec.Decryptor(key, { backend })
    const outs = []
    for (let at = 0; at < ct2.length; at += 6000) outs.push(...(await dp.updateParts(ct2.subarray(at, at + 6000))))
    outs.push(...(await dp.finalParts()))
    assert.deepEqual(new Uint8Array(Buffer.concat(outs)), pt)
    assert.equal(dp.released, pt.length)
    // One call at a time.
    const d2 = new isec.Decryptor(key, { backend })
    const first = d2.update(ct)
    if (backend === 'webcrypto') await rejects(d2.update(ct), 'invalid_state')
    await first
    // Sync methods are for the wasm backend.
    if (backend === 'webcrypto') await throws(() => new isec.Encryptor(key, { backend }).updateSync(pt), 'invalid_state')
    else {
      const e2 = new isec.Encryptor(key, { backend })
      const ct2 = Buffer.concat([e2.updateSync(pt), e2.finalSync()])
      assert.deepEqual(isec.decryptSync(key, ct2), pt)
    }
    // After an error the context refuses further use.
    const bad = ct.slice()
    bad[10] ^= 1
    const d3 = new isec.Decryptor(key, { backend })
    await rejects(d3.update(bad), 'authentication_failed')
    await rejects(d3.update(ct), 'invalid_state')
  }
})

test('ranges: mapping, ranged decrypt and fetchAndDecryptRange on both backends', async () => {
  const { envelope, key } = ring().createEnvelopeSync({ frameSize: 4096, partSize: 16384 })
  const pt = pattern(70_000)
  const ct = await isec.encrypt(key, pt)
  const shape = isec.Shape.fromCiphertextLength(envelope, ct.length)
  assert.equal(shape.plaintextLength, pt.length)
  assert.equal(shape.segmentCount, 5)
  const info = envelope.inspect(ct.length)
  assert.equal(info.plaintextLength, pt.length)
  assert.equal(info.segmentCount, 5)
  for (const backend of BACKENDS) {
    for (const [a, b] of [[0, 1], [4095, 4097], [16383, 16385], [60_000, Infinity], [5, 5], [69_999, 80_000]]) {
      const plan = shape.mapRange(a, b)
      const got = await isec.decryptRange(key, shape, a, b, ct.subarray(plan.ctStart, plan.ctEnd), { backend })
      assert.deepEqual(got, pt.subarray(a, Math.min(b, pt.length)))
      let fetches = 0
      const viaFetch = await isec.fetchAndDecryptRange(key, envelope, ct.length, a, b, async (s, e, p) => {
        fetches++
        assert.equal(p.httpRange, `bytes=${s}-${e - 1}`)
        return ct.slice(s, e)
      }, { backend })
      assert.deepEqual(viaFetch, got)
      assert.equal(fetches, a < b && a < pt.length ? 1 : 0)
    }
    const plan = shape.mapRange(100, 200)
    await rejects(isec.decryptRange(key, shape, 100, 200, ct.subarray(plan.ctStart, plan.ctEnd - 1), { backend }), 'truncated')
  }
})

test('multipart: parts in any order on either backend assemble into one object', async () => {
  const { envelope, key } = ring().createEnvelopeSync({ frameSize: 4096, partSize: 8192, declaredSize: 20_000 })
  const pt = pattern(20_000)
  const parts = new Map()
  for (const [n, backend] of [[3, 'webcrypto'], [1, 'wasm'], [2, 'webcrypto']]) {
    parts.set(n, await isec.encryptPart(key, n, n === 3, pt.subarray((n - 1) * 8192, n * 8192), { backend }))
  }
  const ct = Buffer.concat([parts.get(1), parts.get(2), parts.get(3)])
  for (const backend of BACKENDS) assert.deepEqual(await isec.decrypt(key, ct, { backend }), pt)
  await rejects(isec.encryptPart(key, 3, false, pt.subarray(16384)), 'invalid_parameter')
  // A streamed part through EncryptStream.
  const s = new Blob([pt.subarray(8192, 16384)]).stream().pipeThrough(new isec.EncryptStream(key, { partNumber: 2 }))
  const p2 = Buffer.concat(await collect(s))
  const whole = Buffer.concat([parts.get(1), p2, parts.get(3)])
  assert.deepEqual(await isec.decrypt(key, whole), pt)
  assert.equal(envelope.inspect(whole.length).segmentCount, 3)
})

test('table layout: relay parts of any size with a segment table', async () => {
  const { key } = ring().createEnvelopeSync({ frameSize: 4096, table: true })
  const sizes = [5000, 1, 9000, 700]
  const pt = pattern(14_701)
  const cts = []
  const entries = []
  let at = 0
  for (const [i, n] of sizes.entries()) {
    const part = pt.subarray(at, at + n)
    const backend = i % 2 ? 'wasm' : 'webcrypto'
    let body, prefix
    if (i < 2) {
      // One-shot: the prefix is the part's first 7 bytes.
      body = await isec.encryptPart(key, i + 1, false, part, { backend })
      prefix = body.subarray(0, 7)
    } else if (i === 2) {
      // Streaming: the encryptor's prefix, readable after final.
      const enc = isec.Encryptor.forPart(key, i + 1, false, { backend })
      body = Buffer.concat([await enc.update(part), await enc.final()])
      prefix = enc.prefix
      assert.ok(prefix instanceof Uint8Array && prefix.length === 7)
    } else {
      // A stream: its prefix, known from the start.
      const es = new isec.EncryptStream(key, { partNumber: i + 1, backend })
      body = Buffer.concat(await collect(new Blob([part]).stream().pipeThrough(es)))
      prefix = es.prefix
    }
    assert.deepEqual(new Uint8Array(prefix), new Uint8Array(body.subarray(0, 7)))
    cts.push(body)
    entries.push([i + 1, n, prefix])
    at += n
  }
  const ct = Buffer.concat(cts)
  const st = new isec.SegmentTable(entries)
  assert.deepEqual(st.entries, entries.map(([n, l, p]) => [n, l, new Uint8Array(p)]))
  const table = st.encode(key)
  // Another authentic encryption of part 3 than the one the table records is refused.
  const retried = await isec.encryptPart(key, 3, false, pt.subarray(5001, 14_001))
  const swapped = Buffer.concat([cts[0], cts[1], retried, cts[3]])
  for (const backend of BACKENDS) await rejects(isec.decryptWithTable(key, table, swapped, { backend }), 'frame_out_of_order')
  // A prefix of another length is invalid_parameter; of another type, or a missing one, a TypeError.
  const z = new Uint8Array(7)
  await throws(() => new isec.SegmentTable([[1, 1, new Uint8Array(6)]]), 'invalid_parameter')
  await throws(() => new isec.SegmentTable([[2, 1, z], [1, 1, z]]), 'malformed_segment_table')
  for (const bad of [[[1, 1]], [[1, 1, 'abcdefg']], [[1, 1, [0, 0, 0, 0, 0, 0, 0]]], [[1, 1, new Uint16Array(7)]]]) {
    const e = await throws(() => new isec.SegmentTable(bad), 'invalid_parameter')
    assert.ok(e instanceof TypeError, JSON.stringify(bad))
  }
  for (const backend of BACKENDS) {
    assert.deepEqual(await isec.decryptWithTable(key, table, ct, { backend }), pt)
    const shape = isec.Shape.fromTable(key, table, ct.length)
    const out = Buffer.concat(await collect(new Blob([ct]).stream().pipeThrough(new isec.DecryptStream(key, { shape, backend }))))
    assert.deepEqual(new Uint8Array(out), pt)
    const r = Buffer.concat(
      await collect(
        new Blob([ct.subarray(shape.mapRange(4000, 6000).ctStart, shape.mapRange(4000, 6000).ctEnd)])
          .stream()
          .pipeThrough(new isec.DecryptStream(key, { shape, start: 4000, end: 6000, backend })),
      ),
    )
    assert.deepEqual(new Uint8Array(r), pt.subarray(4000, 6000))
  }
})

test('keyring: external wrapper in two phases, rotation, rewrap, copy decision', async () => {
  const calls = []
  const r = new isec.Keyring()
  r.addKek('old', kek(2))
  const kms = {
    async wrap(kid, dek) {
      calls.push(['wrap', kid])
      return Uint8Array.from([...dek].map((b) => b ^ 0x5a)).slice() // a reversible "KMS"
    },
    async unwrap(kid, blob) {
      calls.push(['unwrap', kid])
      return Uint8Array.from([...blob].map((b) => b ^ 0x5a))
    },
  }
  r.addExternal('kms-1', kms)
  assert.equal(r.activeKid, 'kms-1')
  assert.deepEqual(r.keys().map((k) => [k.kid, k.state, k.external]), [['old', 'decrypt_only', false], ['kms-1', 'active', true]])
  const { envelope, key } = await r.createEnvelope({ frameSize: 4096 })
  assert.equal(envelope.wrapAlg, 'external')
  const pt = pattern(9999)
  const ct = await isec.encrypt(key, pt)
  const k2 = await r.open(isec.Envelope.decodeText(envelope.toText()))
  assert.deepEqual(await isec.decrypt(k2, ct), pt)
  assert.deepEqual(calls, [['wrap', 'kms-1'], ['unwrap', 'kms-1']])
  await throws(() => r.openSync(envelope), 'external_wrapper_failed')
  // Rotate to a local key: rewrap unwraps through the KMS, wraps locally.
  r.addKek('new', kek(3))
  const rewrapped = await r.rewrap(envelope)
  assert.equal(rewrapped.kid, 'new')
  assert.deepEqual(isec.decryptSync(r.openSync(rewrapped), ct), pt)
  // A failing wrapper surfaces as external_wrapper_failed with the cause.
  const bad = new isec.Keyring()
  bad.addExternal('down', { wrap: async () => { throw new Error('503') }, unwrap: async () => new Uint8Array(32) })
  const e = await rejects(bad.createEnvelope(), 'external_wrapper_failed')
  assert.equal(e.cause.message, '503')
  // Copy decision with a target kid needing the KMS: the rewrap runs first, as a task.
  const meta = { isec: envelope.toText(), 'isec-kid': envelope.kid }
  const request = { sourceMetadata: meta, sourceSize: ct.length, targetKid: 'new' }
  await throws(() => isec.decideCopy(request, r), 'external_wrapper_failed')
  request.rewrapped = await r.withExternal(isec.beginCopyRewrap(request, r))
  assert.equal(request.rewrapped.kid, 'new')
  const plan = isec.decideCopy(request, r)
  assert.equal(isec.beginCopyRewrap({ sourceMetadata: meta, sourceSize: ct.length }, r), undefined)
  // Only the source's own envelope under the target key stands in for the rewrap.
  await throws(() => isec.decideCopy({ ...request, rewrapped: r.createEnvelopeSync().envelope }, r), 'invalid_parameter')
  assert.equal(plan.action, 'native_replace')
  assert.equal(plan.rewrapped, true)
  assert.equal(isec.classifyMetadata(meta).format, 'isec')
  // Disabled and unknown keys.
  r.setState('kms-1', 'disabled')
  await rejects(r.open(envelope), 'key_disabled')
  await rejects(new isec.Keyring().open(envelope), 'unknown_kid')
  // A previous-proxy secret never opens an isec envelope naming its kid.
  const legacyOnly = new isec.Keyring()
  legacyOnly.addLegacySecretString('old', 'pw')
  const local = new isec.Keyring()
  local.addKek('old', kek(2))
  const underOld = local.createEnvelopeSync().envelope
  await throws(() => legacyOnly.openSync(underOld), 'wrong_key_kind')
  await rejects(legacyOnly.open(underOld), 'wrong_key_kind')
})

const shared = { isec, assert, of: (b) => b, kid: 'kms-1' }

test('keyring: concurrently created envelopes get different DEKs', () => concurrentEnvelopesGetDifferentDeks(shared))

test("keyring: a rewrap's wrap answer is not a new envelope's DEK", () => rewrapAnswerIsNotNewDek(shared))

test('WHATWG streams: EncryptStream and DecryptStream with backpressure and errors', async () => {
  const { key } = ring().createEnvelopeSync({ frameSize: 65536 })
  const pt = pattern(3 * 65536 + 999)
  for (const backend of BACKENDS) {
    const enc = new isec.EncryptStream(key, { backend })
    assert.equal(enc.backend, backend)
    const ct = Buffer.concat(await collect(new Blob([pt]).stream().pipeThrough(enc)))
    const out = Buffer.concat(await collect(new Blob([ct]).stream().pipeThrough(new isec.DecryptStream(key, { backend }))))
    assert.deepEqual(new Uint8Array(out), pt)
    const bad = Buffer.from(ct)
    bad[bad.length - 1] ^= 1
    const chunks = []
    const err = await rejects(
      (async () => {
        for await (const c of new Blob([bad]).stream().pipeThrough(new isec.DecryptStream(key, { backend }))) chunks.push(c)
      })(),
      'authentication_failed',
    )
    assert.ok(err)
    assert.ok(Buffer.concat(chunks).length <= 3 * 65536)
    const cut = ct.subarray(0, 2 * (65536 + 28))
    await rejects(collect(new Blob([cut]).stream().pipeThrough(new isec.DecryptStream(key, { backend }))), 'truncated')
  }
})

/** Writes `pt` into `stream` in chunks of the given sizes, from ONE buffer the writer
 * overwrites as soon as each write resolves (as a reader that reuses its buffer does), and
 * collects what comes out. */
async function throughReused(stream, pt, sizes) {
  const outP = collect(stream.readable)
  const w = stream.writable.getWriter()
  const buf = new Uint8Array(Math.max(...sizes))
  for (let at = 0, i = 0; at < pt.length; i++) {
    const n = Math.min(sizes[i % sizes.length], pt.length - at)
    const view = buf.subarray(0, n)
    view.set(pt.subarray(at, at + n))
    await w.write(view)
    view.fill(0xee)
    at += n
  }
  await w.close()
  return Buffer.concat(await outP)
}

test('streams keep no chunk after it is written, with frames in flight across writes', async () => {
  // Frames in flight across many writes, chunks smaller than, equal to, larger than and
  // straddling frames; the writer reuses its buffer after every write.
  const { key } = ring().createEnvelopeSync({ frameSize: 4096 })
  const pt = pattern(40 * 4096 + 123, 5)
  const splits = [[4096], [1000], [4096 * 3 + 7], [1, 4095, 4097, 50_000], [4124]]
  for (const backend of BACKENDS) {
    for (const sizes of splits) {
      const ct = await throughReused(new isec.EncryptStream(key, { backend }), pt, sizes)
      assert.deepEqual(await isec.decrypt(key, ct, { backend: 'wasm' }), pt, `${backend} encrypt ${sizes}`)
      const back = await throughReused(new isec.DecryptStream(key, { backend }), ct, sizes)
      assert.deepEqual(new Uint8Array(back), pt, `${backend} decrypt ${sizes}`)
    }
  }
})

test('pipelined decryption across part boundaries: segments predicted by core, tampering stops release', async () => {
  // Two frames per part, so the 16 frames in flight span eight parts.
  const { envelope, key } = ring().createEnvelopeSync({ frameSize: 4096, partSize: 2 * 4096 })
  const pt = pattern(41 * 4096 + 5, 9)
  const parts = []
  const P = 2 * 4096
  const count = Math.ceil(pt.length / P)
  for (let n = 1; n <= count; n++) parts.push(await isec.encryptPart(key, n, n === count, pt.subarray((n - 1) * P, n * P)))
  const ct = Buffer.concat(parts)
  assert.equal(ct.length, isec.Shape.forPlaintext(envelope, pt.length).ciphertextLength)
  for (const backend of BACKENDS) {
    assert.deepEqual(await isec.decrypt(key, ct, { backend }), pt)
    for (const sizes of [[4124], [100_000], [777]]) {
      const out = await throughReused(new isec.DecryptStream(key, { backend }), ct, sizes)
      assert.deepEqual(new Uint8Array(out), pt, `${backend} ${sizes}`)
    }
    // A ranged stream starting mid-part.
    const shape = isec.Shape.fromCiphertextLength(envelope, ct.length)
    const plan = shape.mapRange(3 * 4096 + 10, 30 * 4096 + 1)
    const ranged = await throughReused(
      new isec.DecryptStream(key, { backend, shape, start: 3 * 4096 + 10, end: 30 * 4096 + 1 }),
      ct.subarray(plan.ctStart, plan.ctEnd),
      [5000],
    )
    assert.deepEqual(new Uint8Array(ranged), pt.subarray(3 * 4096 + 10, 30 * 4096 + 1))
    // A tampered frame in part 7: only frames before it come out, and the stream errors.
    const bad = Buffer.from(ct)
    const at = 13 * (4096 + 28) + 100
    bad[at] ^= 1
    const chunks = []
    await rejects(
      (async () => {
        for await (const c of new Blob([bad]).stream().pipeThrough(new isec.DecryptStream(key, { backend }))) chunks.push(c)
      })(),
      'authentication_failed',
    )
    const released = Buffer.concat(chunks)
    assert.ok(released.length <= 13 * 4096, `${backend}: released ${released.length}`)
    assert.deepEqual(new Uint8Array(released), pt.subarray(0, released.length))
    // Two parts swapped (each part has its own segment key) and a part dropped: refused
    // with the code of the synchronous wasm decryptor.
    for (const reordered of [[parts[1], parts[0], ...parts.slice(2)], [parts[0], ...parts.slice(2)]]) {
      const body = Buffer.concat(reordered)
      const code = (await throws(() => isec.decryptSync(key, body), 'authentication_failed')).code
      await rejects(isec.decrypt(key, body, { backend }), code)
      await rejects(collect(new Blob([body]).stream().pipeThrough(new isec.DecryptStream(key, { backend }))), code)
    }
  }
})

test('setDefaultLegacy: the previous-proxy key for objects that record no kid', async () => {
  const { readFileSync } = await import('node:fs')
  const lv = JSON.parse(readFileSync(new URL('../../../tests/vectors/legacy.json', import.meta.url), 'utf8')).tests[10]
  const meta = isec.LegacyMetadata.fromPairs(lv.metadata.filter(([k]) => k !== 'isec-kid'))
  const ct = Uint8Array.from(Buffer.from(lv.ciphertext, 'hex'))
  const obj = isec.LegacyObject.create(meta, ct.length)
  assert.equal(obj.kid ?? null, null)
  const r = new isec.Keyring()
  r.addKek('isec', kek(3))
  r.addLegacySecretString(lv.kid, lv.legacy_secret)
  await throws(() => r.legacyKey(obj), 'unknown_kid')
  // Only a previous-proxy secret qualifies, and only a known kid.
  await throws(() => r.setDefaultLegacy('isec'), 'wrong_key_kind')
  await throws(() => r.setDefaultLegacy('nobody'), 'unknown_kid')
  await throws(() => r.legacyKey(obj), 'unknown_kid')
  r.setDefaultLegacy(lv.kid)
  assert.equal(isec.legacyDecrypt(r.legacyKey(obj), obj, ct).length, lv.plaintext_len)
  // An explicit kid still wins: an isec KEK named is refused.
  await throws(() => r.legacyKey(obj, 'isec'), 'wrong_key_kind')
})
