// The one error mapper: every error is a JS Error with err.code = core's code and
// err.family = its family; bad input gives typed errors, never napi-rs status codes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { isec, load, keyringWith, ROOT } from './helpers.mjs'

const FAMILIES = new Set(['authentication', 'key', 'stream', 'format', 'usage'])

/** Core's own list: the length of `Error::ALL` and the codes `Error::code` returns. */
function coreCodes() {
  const src = readFileSync(join(ROOT, 'core', 'src', 'error.rs'), 'utf8')
  const count = Number(/pub const ALL: \[Error; (\d+)\]/.exec(src)[1])
  const body = src.split('pub const fn code(&self)')[1].split('pub const fn family')[0]
  return { count, codes: [...body.matchAll(/=> "([a-z_]+)"/g)].map((m) => m[1]) }
}

/** SPEC.md §9's table: code -> family. */
function specCodes() {
  const spec = readFileSync(join(ROOT, 'SPEC.md'), 'utf8')
  const table = spec.split('## 9. Errors')[1].split('## 10.')[0]
  const rows = [...table.matchAll(/^\| `([a-z_]+)` \| ([a-z]+) \|/gm)]
  return Object.fromEntries(rows.map((m) => [m[1], m[2]]))
}

function thrown(fn) {
  try {
    fn()
  } catch (e) {
    return e
  }
  assert.fail('did not throw')
}

function assertIsec(e, code) {
  assert.ok(e instanceof Error, 'an Error')
  assert.equal(e.code, code)
  assert.ok(FAMILIES.has(e.family), `family ${e.family}`)
  assert.match(e.message, new RegExp(`\\(${code}\\)`))
}

test('errorCodes lists core codes with their families; isecError builds each', () => {
  const codes = isec.errorCodes()
  const core = coreCodes()
  assert.equal(codes.length, core.count)
  assert.equal(core.codes.length, core.count)
  assert.deepEqual(codes.map((c) => c.code).sort(), [...core.codes].sort())
  assert.deepEqual(Object.fromEntries(codes.map((c) => [c.code, c.family])), specCodes())
  for (const { code, family } of codes) {
    assert.ok(FAMILIES.has(family))
    const e = isec.isecError(code)
    assertIsec(e, code)
    assert.equal(e.family, family)
  }
  const byCode = Object.fromEntries(codes.map((c) => [c.code, c.family]))
  assert.equal(byCode.truncated, 'stream')
  assert.equal(byCode.authentication_failed, 'authentication')
  assert.equal(byCode.unknown_kid, 'key')
  assert.equal(byCode.malformed_envelope, 'format')
  assert.equal(byCode.invalid_parameter, 'usage')
  assert.equal(byCode.not_encrypted, 'format')
  assertIsec(thrown(() => isec.isecError('no_such_code')), 'invalid_parameter')
})

test('malformed envelopes: each decode check has its code', () => {
  const ring = keyringWith({ 'kek-a': 'active' })
  const env = ring.createEnvelopeSync().envelope.encode()
  const cases = [
    [Buffer.alloc(0), 'malformed_envelope'],
    [Buffer.from([2]), 'unsupported_version'],
    [env.subarray(0, 48), 'malformed_envelope'],
    [Buffer.concat([env, Buffer.from([0])]), 'malformed_envelope'],
    [Buffer.alloc(400, 1), 'malformed_envelope'],
  ]
  const bad = Buffer.from(env)
  bad[1] = 9
  cases.push([bad, 'unsupported_suite'])
  const fs = Buffer.from(env)
  fs[2] = 30
  cases.push([fs, 'invalid_frame_size'])
  for (const [bytes, code] of cases) assertIsec(thrown(() => isec.Envelope.decode(bytes)), code)
  for (const text of ['', 'AQE', '!!!!', `${ring.createEnvelopeSync().envelope.toText()}=`]) {
    assertIsec(thrown(() => isec.Envelope.decodeText(text)), 'malformed_envelope')
  }
})

test('truncated, extended and tampered ciphertexts; contexts lock after an error', () => {
  const ring = keyringWith({ 'kek-a': 'active' })
  const { key } = ring.createEnvelopeSync({ frameSize: 4096 })
  const ct = isec.encryptSync(key, Buffer.alloc(10000, 3))
  assertIsec(thrown(() => isec.decryptSync(key, ct.subarray(0, 8248))), 'truncated')
  assertIsec(thrown(() => isec.decryptSync(key, Buffer.alloc(0))), 'truncated')
  assertIsec(thrown(() => isec.decryptSync(key, Buffer.concat([ct, ct.subarray(0, 4124)]))), 'authentication_failed')
  const bad = Buffer.from(ct)
  bad[100] ^= 1
  const e = thrown(() => isec.decryptSync(key, bad))
  assertIsec(e, 'authentication_failed')
  assert.equal(e.family, 'authentication')
  const d = new isec.Decryptor(key)
  assertIsec(thrown(() => d.update(bad)), 'authentication_failed')
  assertIsec(thrown(() => d.update(ct)), 'invalid_state')
  const enc = new isec.Encryptor(key)
  enc.final()
  assertIsec(thrown(() => enc.update(Buffer.alloc(1))), 'invalid_state')
  // Oversized: a part beyond its declared size, a frame size out of range.
  const parts = ring.createEnvelopeSync({ frameSize: 4096, partSize: 8192, declaredSize: 10000 }).key
  assertIsec(thrown(() => isec.encryptPartSync(parts, 1, false, Buffer.alloc(8193))), 'invalid_parameter')
  assertIsec(thrown(() => isec.encryptPartSync(parts, 10001, true, Buffer.alloc(1))), 'invalid_parameter')
  assertIsec(thrown(() => ring.createEnvelopeSync({ frameSize: 1 << 24 })), 'invalid_frame_size')
  assertIsec(thrown(() => ring.createEnvelopeSync({ frameSize: 5000 })), 'invalid_frame_size')
  assertIsec(thrown(() => ring.createEnvelopeSync({ declaredSize: 2 ** 45 })), 'limit_exceeded')
  const small = Buffer.alloc(10)
  assertIsec(thrown(() => new isec.Encryptor(key).updateInto(Buffer.alloc(5000), small)), 'buffer_too_small')
})

test('wrong argument types are TypeErrors with code invalid_parameter', () => {
  const ring = keyringWith({ 'kek-a': 'active' })
  const { key, envelope } = ring.createEnvelopeSync()
  const calls = [
    () => isec.encryptSync(key, 'text'),
    () => isec.encryptSync(key, [1, 2, 3]),
    () => isec.encryptSync(key, new Uint16Array(4)),
    () => isec.encryptSync(envelope, Buffer.alloc(1)),
    () => isec.encryptSync({}, Buffer.alloc(1)),
    () => isec.decryptSync(null, Buffer.alloc(1)),
    () => isec.Envelope.decodeText(42),
    () => isec.Envelope.decode('AQE'),
    () => isec.shapeFor(envelope, '28'),
    () => isec.shapeFor(envelope, -1),
    () => isec.shapeFor(envelope, 1.5),
    () => isec.encryptPartSync(key, 1, 'yes', Buffer.alloc(1)),
    () => ring.addKek(7, Buffer.alloc(32)),
    () => ring.openSync('envelope'),
    () => isec.decideCopy({ sourceMetadata: 'x', sourceSize: 1 }),
    () => isec.decideCopy({ sourceMetadata: [['a']], sourceSize: 1 }),
  ]
  for (const call of calls) {
    const e = thrown(call)
    assert.equal(e.code, 'invalid_parameter', String(call))
    assert.equal(e.family, 'usage')
    if (!/-1|1\.5/.test(String(call))) assert.ok(e instanceof TypeError, `${call}: TypeError`)
  }
  assertIsec(thrown(() => ring.addKek('k', Buffer.alloc(31))), 'invalid_parameter')
  assertIsec(thrown(() => ring.addKek('bad kid', Buffer.alloc(32))), 'invalid_parameter')
  assertIsec(thrown(() => ring.setState('kek-a', 'sleepy')), 'invalid_parameter')
  assertIsec(thrown(() => ring.setState('nope', 'active')), 'unknown_kid')
  const e = thrown(() => new isec.Encryptor(key).updateInto(Buffer.alloc(70000), Buffer.alloc(10)))
  assert.equal(e.code, 'buffer_too_small')
  const shared = Buffer.alloc(70000)
  assertIsec(thrown(() => new isec.Encryptor(key).updateInto(shared.subarray(0, 66000), shared)), 'invalid_parameter')
})

test('async calls reject through the same mapper', async () => {
  const ring = keyringWith({ 'kek-a': 'active' })
  const { key } = ring.createEnvelopeSync()
  await assert.rejects(isec.decrypt(key, Buffer.alloc(5)), (e) => e.code === 'truncated' && e.family === 'stream')
  assert.throws(() => isec.decrypt(key, 'x'), (e) => e.code === 'invalid_parameter' && e instanceof TypeError)
  const ac = new AbortController()
  ac.abort(new Error('stop'))
  await assert.rejects(isec.encrypt(key, Buffer.alloc(10), { signal: ac.signal }), (e) => {
    return e.name === 'AbortError' && e.code === 'ABORT_ERR' && e.cause.message === 'stop'
  })
  const plain = load('keys.json')
  assert.ok(plain.keys)
})
