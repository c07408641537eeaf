// Runs every case of every corpus file in tests/vectors (walked from manifest.json) through
// the Node binding: one-shot (sync and async), streaming with odd chunkings (1 byte, frame
// size +- 1, random, whole; native contexts and stream.Transform) and ranged paths, with
// exact error codes. No format logic lives here: every expectation comes from the files.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { isec, load, hex, pattern, keyringWith, codeOf, codeOfAsync, rng, VECTORS, copyRequest } from './helpers.mjs'
import { objectCase } from '../../tests/js/vectors.mjs'

const manifest = load('manifest.json')
const ran = {}

/** Feeds `ct` to a native streaming context in pieces `next()` sizes. */
function streaming(ctx, ct, next) {
  const parts = []
  let at = 0
  const result = (code) => ({ out: Buffer.concat(parts), code })
  while (at < ct.length) {
    const n = Math.max(1, Math.min(next(), ct.length - at))
    try {
      parts.push(ctx.update(ct.subarray(at, at + n)))
    } catch (e) {
      return result(e.code)
    }
    at += n
  }
  try {
    parts.push(ctx.final())
  } catch (e) {
    return result(e.code)
  }
  return result(null)
}

/** The same through a stream.Transform, fed in pieces `next()` sizes. */
async function transform(makeStream, ct, next) {
  const parts = []
  function* chunks() {
    let at = 0
    while (at < ct.length) {
      const n = Math.max(1, Math.min(next(), ct.length - at))
      yield ct.subarray(at, at + n)
      at += n
    }
  }
  const sink = new Writable({
    write(chunk, _enc, cb) {
      parts.push(chunk)
      cb()
    },
  })
  const code = await codeOfAsync(pipeline(Readable.from(chunks()), makeStream(), sink))
  return { out: Buffer.concat(parts), code }
}

const runners = {
  'keys.json': () => 0,

  // Each case's keyring is a keyring file (SPEC.md §10.3), read by core through the binding.
  'recipients.json': async (doc) => {
    let n = 0
    for (const t of doc.tests) {
      const id = `tc ${t.tcId}`
      n++
      if (t.stage === 'decode') {
        assert.equal(codeOf(() => isec.Envelope.decodeText(t.envelope)), t.error, id)
        continue
      }
      let env = isec.Envelope.decodeText(t.envelope)
      let ring = isec.Keyring.fromFileText(JSON.stringify(t.keyring))
      if (t.inspect) assert.equal(env.wrapAlg, t.inspect.wrap_alg, id)
      if (t.rewrap_then_open_with) {
        env = await ring.rewrap(env)
        assert.equal(env.wrapAlg, t.rewrapped_wrap_alg, id)
        ring = isec.Keyring.fromFileText(Buffer.from(JSON.stringify(t.rewrap_then_open_with)))
      }
      if (t.result === 'valid') {
        const key = await ring.open(env)
        assert.deepEqual(isec.decryptSync(key, hex(t.ciphertext)), pattern(t.plaintext_len), id)
      } else {
        assert.equal(await codeOfAsync(ring.open(env)), t.error, id)
        assert.equal(codeOf(() => ring.openSync(env)), t.error, `${id} sync`)
      }
    }
    return n
  },

  'envelope.json': (doc) => {
    const ring = keyringWith()
    let n = 0
    for (const t of doc.tests) {
      const id = `tc ${t.tcId}`
      if (t.stage === 'decode') {
        assert.equal(codeOf(() => isec.Envelope.decodeText(t.envelope)), t.error, id)
        n++
        continue
      }
      const env = isec.Envelope.decodeText(t.envelope)
      if (t.inspect) {
        const i = env.inspect()
        const want = t.inspect
        assert.equal(i.version, want.version, id)
        assert.equal(i.suite, want.suite, id)
        assert.equal(i.kid, want.kid, id)
        assert.equal(i.wrapAlg, want.wrap_alg, id)
        assert.equal(i.frameSize, want.frame_size, id)
        assert.equal(i.layout, want.layout, id)
        assert.equal(i.partSize ?? null, want.part_size, id)
        assert.equal(i.declaredSize ?? null, want.declared_size, id)
        assert.equal(i.envelopeLength, want.envelope_len, id)
        assert.equal(env.toText(), t.envelope, `${id} re-encode`)
        assert.ok(isec.Envelope.decode(env.encode()).equals(env), `${id} binary round trip`)
      }
      const code = codeOf(() => ring.openSync(env))
      assert.equal(code, t.result === 'valid' ? null : t.error, id)
      n++
    }
    const first = isec.Envelope.decodeText(doc.tests[0].envelope)
    assert.equal(first.header().toString('hex'), doc.key_schedule.header)
    return n
  },

  'nonces.json': (doc) => {
    for (const t of doc.tests) {
      const id = `tc ${t.tcId}`
      if (t.result === 'valid') {
        const built = isec.buildNonce(hex(t.prefix), t.index, t.segment_end, t.object_end)
        assert.equal(built.toString('hex'), t.nonce, id)
        const p = isec.parseNonce(hex(t.nonce))
        assert.deepEqual(
          [p.prefix.toString('hex'), p.index, p.segmentEnd, p.objectEnd],
          [t.prefix, t.index, t.segment_end, t.object_end],
          id,
        )
      } else {
        assert.equal(codeOf(() => isec.parseNonce(hex(t.nonce))), t.error, id)
      }
    }
    return doc.tests.length
  },

  'ranges.json': (doc) => {
    for (const t of doc.tests) {
      const id = `tc ${t.tcId}`
      const env = isec.Envelope.decodeText(t.envelope)
      if (t.result === 'invalid') {
        assert.equal(codeOf(() => isec.shapeFor(env, t.ciphertext_len)), t.error, id)
        continue
      }
      const plan = isec.shapeFor(env, t.ciphertext_len).mapRange(t.range[0], t.range[1])
      assert.deepEqual(
        [plan.ctStart, plan.ctEnd, plan.skip, plan.len],
        [t.expect.ct_start, t.expect.ct_end, t.expect.skip, t.expect.len],
        id,
      )
      assert.equal(plan.httpRange ?? null, plan.ctEnd > plan.ctStart ? `bytes=${plan.ctStart}-${plan.ctEnd - 1}` : null)
    }
    return doc.tests.length
  },

  'frames.json': objectVectors,
  'multipart.json': objectVectors,

  'copy_decisions.json': (doc) => {
    for (const t of doc.tests) {
      const id = `tc ${t.tcId}`
      const r = t.request
      const req = copyRequest(r)
      const ring = keyringWith(t.keys)
      if (t.result === 'invalid') {
        assert.equal(codeOf(() => isec.decideCopy(req, ring)), t.error, id)
        continue
      }
      const p = isec.decideCopy(req, ring)
      const e = t.expect
      assert.equal(p.action, e.action, id)
      assert.deepEqual(p.metadata ?? null, e.metadata, id)
      assert.deepEqual(p.ranges, e.ranges, id)
      assert.equal(p.copySidecar, e.copy_sidecar, id)
      assert.equal(p.sidecar !== null, e.copy_sidecar, id)
      assert.equal(p.rewrapped, e.rewrapped, id)
      assert.equal(p.reason ?? null, e.reason, id)
      assert.equal(p.requests, e.requests, id)
      assert.equal(p.clientBytes, e.client_bytes, id)
    }
    return doc.tests.length
  },

  'rotation.json': async (doc) => {
    for (const t of doc.tests) {
      const id = `tc ${t.tcId}`
      const ring = keyringWith(t.keys)
      ring.setMinVersion(t.min_version)
      const env = isec.Envelope.decodeText(t.envelope)
      if (t.operation === 'open') {
        const want = t.result === 'valid' ? null : t.error
        assert.equal(codeOf(() => ring.openSync(env)), want, id)
        assert.equal(await codeOfAsync(ring.open(env)), want, `${id} async`)
      } else if (t.operation === 'rewrap') {
        if (t.result === 'valid') {
          for (const e of [ring.rewrapSync(env), await ring.rewrap(env)]) {
            assert.equal(e.toText(), t.expect.envelope, id)
            assert.equal(e.kid, t.expect.kid, id)
          }
        } else {
          assert.equal(codeOf(() => ring.rewrapSync(env)), t.error, id)
          assert.equal(await codeOfAsync(ring.rewrap(env)), t.error, `${id} async`)
        }
      } else {
        assert.fail(`${id}: unknown operation ${t.operation}`)
      }
    }
    return doc.tests.length
  },

  'legacy.json': async (doc) => {
    for (const t of doc.tests) {
      const id = `tc ${t.tcId}`
      const ct = hex(t.ciphertext)
      let obj, key
      const setup = codeOf(() => {
        const meta = isec.LegacyMetadata.fromPairs(t.metadata)
        obj = isec.LegacyObject.create(meta, null, ct.length)
        key = isec.LegacyKey.fromSecretString(t.legacy_secret, obj.wrappedDekB64)
      })
      const want = t.result === 'valid' ? null : t.error
      if (setup !== null) {
        assert.equal(setup, want, id)
        continue
      }
      const pt = pattern(t.plaintext_len)
      const paths = [
        ['one-shot', () => isec.legacyDecryptSync(key, obj, ct)],
        ['streaming 1', () => streamOrThrow(new isec.LegacyDecryptor(key, obj), ct, () => 1)],
        ['streaming 4095', () => streamOrThrow(new isec.LegacyDecryptor(key, obj), ct, () => 4095)],
      ]
      for (const [name, run] of paths) {
        if (want === null) assert.deepEqual(run(), pt, `${id} ${name}`)
        else assert.equal(codeOf(run), want, `${id} ${name}`)
      }
      assert.equal(await codeOfAsync(isec.legacyDecrypt(key, obj, ct)), want, `${id} async`)
      if (want === null && pt.length > 0) {
        const plan = obj.planRange(1, pt.length)
        const got = isec.legacyDecryptRangeSync(key, obj, 1, pt.length, ct.subarray(plan.ctStart, plan.ctEnd))
        assert.deepEqual(got, pt.subarray(1), `${id} range`)
      }
    }
    return doc.tests.length
  },
}

function streamOrThrow(ctx, ct, next) {
  const r = streaming(ctx, ct, next)
  if (r.code !== null) throw Object.assign(new Error(r.code), { code: r.code })
  return r.out
}

async function objectVectors(doc) {
  const ring = keyringWith()
  let n = 0
  for (const t of doc.tests) {
    const id = `tc ${t.tcId}`
    const { env, key, ct, pt, error, rangedError, released, table, frame } = objectCase(isec, ring, t, { hex, pattern })

    // One-shot, sync and async: all or nothing.
    const oneShot = table
      ? [() => isec.decryptWithTableSync(key, table, ct), () => isec.decryptWithTable(key, table, ct)]
      : [() => isec.decryptSync(key, ct), () => isec.decrypt(key, ct)]
    if (error === null) {
      assert.deepEqual(oneShot[0](), pt, `${id} one-shot`)
      assert.deepEqual(await oneShot[1](), pt, `${id} one-shot async`)
    } else {
      assert.equal(codeOf(oneShot[0]), error, `${id} one-shot`)
      assert.equal(await codeOfAsync(oneShot[1]()), error, `${id} one-shot async`)
    }

    // Streaming with awkward split points.
    const cycle = (sizes) => {
      let i = 0
      return () => sizes[i++ % sizes.length]
    }
    const random = rng(t.tcId * 7919)
    const splits = [
      ['1', cycle([1])],
      ['F-1', cycle([frame - 1])],
      ['F+1', cycle([frame + 1])],
      ['F+27,F+29', cycle([frame + 27, frame + 29])],
      ['7,4099,13,65536', cycle([7, 4099, 13, 65536])],
      ['random', () => 1 + random(frame * 2)],
      ['whole', cycle([Number.MAX_SAFE_INTEGER])],
    ]
    let shape = null
    if (table) {
      const c = codeOf(() => (shape = isec.Shape.fromTable(key, table, ct.length)))
      if (c !== null) assert.equal(c, error, `${id} table shape`)
    }
    const makeDecryptor = () => (table ? isec.Decryptor.withShape(key, shape) : new isec.Decryptor(key))
    if (!table || shape) {
      for (const [name, next] of splits) {
        const { out, code } = streaming(makeDecryptor(), ct, next)
        assert.equal(code, error, `${id} streaming ${name}`)
        if (name === '1' || error === null) assert.equal(out.length, released, `${id} released (${name})`)
        else assert.ok(out.length <= released, `${id} released ${out.length} > ${released} (${name})`)
        assert.deepEqual(out, pt.subarray(0, out.length), `${id} released plaintext (${name})`)
      }
      // Through stream.Transform, synchronously and on the libuv pool.
      for (const asyncThreshold of [Infinity, 1]) {
        const r = await transform(
          () => new isec.DecryptStream(key, { shape: shape ?? undefined, asyncThreshold }),
          ct,
          () => 1 + random(frame + 100),
        )
        assert.equal(r.code, error, `${id} Transform (threshold ${asyncThreshold})`)
        assert.ok(r.out.length <= released, `${id} Transform released`)
        assert.deepEqual(r.out, pt.subarray(0, r.out.length), `${id} Transform plaintext`)
      }
    }

    // Ranged: sub-ranges of valid objects, and the whole object through the range path.
    let rshape = null
    const shapeCode = codeOf(() => {
      rshape = table ? isec.Shape.fromTable(key, table, ct.length) : isec.shapeFor(env, ct.length)
    })
    if (rangedError === null) {
      assert.equal(shapeCode, null, `${id} shape`)
      const l = pt.length
      const ranges = [
        [0, l],
        [0, 1],
        [1, Math.floor(l / 2) + 1],
        [Math.floor(l / 3), l],
        [Math.max(0, l - 1), l + 5],
        [l, l + 1],
        [4096, 8193],
        [0, Infinity],
      ]
      for (const [a, b] of ranges) {
        const lo = Math.min(a, l)
        const hi = Math.max(lo, Math.min(b, l))
        const want = pt.subarray(lo, hi)
        const plan = rshape.mapRange(a, b)
        const fetched = ct.subarray(plan.ctStart, plan.ctEnd)
        assert.deepEqual(isec.decryptRangeSync(key, rshape, a, b, fetched), want, `${id} range ${a}..${b}`)
        assert.deepEqual(await isec.decryptRange(key, rshape, a, b, fetched), want, `${id} range async ${a}..${b}`)
        const s = streaming(isec.Decryptor.forRange(key, rshape, a, b), fetched, () => 1 + random(frame + 30))
        assert.equal(s.code, null, `${id} streamed range ${a}..${b}`)
        assert.deepEqual(s.out, want, `${id} streamed range ${a}..${b}`)
        const tr = await transform(
          () => new isec.DecryptStream(key, { shape: rshape, range: [a, b], asyncThreshold: 1 }),
          fetched,
          () => 1 + random(frame + 30),
        )
        assert.equal(tr.code, null, `${id} Transform range ${a}..${b}`)
        assert.deepEqual(tr.out, want, `${id} Transform range ${a}..${b}`)
      }
    } else {
      for (const [name, next] of [splits[0], splits[2], splits[6]]) {
        let code = shapeCode
        if (code === null) {
          const r = streaming(isec.Decryptor.withShape(key, rshape), ct, next)
          assert.ok(r.out.length <= Math.max(released, pt.length), id)
          assert.deepEqual(r.out, pt.subarray(0, r.out.length), `${id} released plaintext (ranged)`)
          code = r.code
        }
        assert.equal(code, rangedError, `${id} ranged ${name}`)
      }
    }
    n++
  }
  return n
}

test('manifest lists every corpus file with its hash and count', () => {
  assert.equal(manifest.schema, 'isec-manifest-v1')
  for (const f of manifest.files) {
    const bytes = readFileSync(join(VECTORS, f.file))
    assert.equal(createHash('sha256').update(bytes).digest('hex'), f.sha256, `${f.file} hash`)
    const doc = JSON.parse(bytes)
    if (doc.tests) {
      assert.equal(doc.tests.length, f.tests, `${f.file} count`)
      assert.equal(new Set(doc.tests.map((t) => t.tcId)).size, doc.tests.length, `${f.file} tcIds unique`)
    }
    assert.ok(runners[f.file], `the harness has no runner for ${f.file}`)
  }
})

for (const f of manifest.files) {
  test(`corpus ${f.file}`, async () => {
    const doc = load(f.file)
    const n = await runners[f.file](doc)
    assert.equal(n, f.tests, `${f.file}: every case ran`)
    ran[f.file] = n
  })
}

test('every case of every file ran', () => {
  const total = manifest.files.reduce((s, f) => s + f.tests, 0)
  assert.equal(
    Object.values(ran).reduce((s, n) => s + n, 0),
    total,
  )
})
