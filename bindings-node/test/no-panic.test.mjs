// No panic across the boundary: whatever a caller or an attacker hands the addon, the answer
// is an Error carrying one of core's codes (`err.code`, `err.family`), never a crash of the
// process (a Rust panic cannot unwind through N-API: it aborts node), a hang or an unbounded
// allocation.
//
// errors.test.mjs checks one trigger per code and a list of wrong types; this adds garbage
// envelope bytes and text and other parsers' garbage (thousands of seeded cases), every
// truncation, envelopes and objects claiming huge sizes and counts (each in a child node under
// a 2 GiB address-space limit and a timeout, whose peak RSS is checked), every argument of
// every call replaced by values of other types and out-of-range numbers, oversized inputs,
// wrong output buffers for the `*Into` calls, detached buffers under async work, and calls
// after `final` and after an error.
//
// Classes seen: `Error` with a core code; `TypeError` with code `invalid_parameter` for an
// argument of the wrong JS type. `AbortError` (`ABORT_ERR`) only for an aborted signal.
import { test as nodeTest } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import zlib from 'node:zlib'

import { DECODE_CODES, Foreign, codeOfWith, assertCoreCodeSet, coreCode, envelopeAndKeyringCalls, craftedHeaderProblems, describe, envelopeCutsAndExtensions, garbageEnvelopeBytes, garbageEnvelopeText, hostileLegacyProblems, hugePartCountProblems, oversizedEnvelopeFields, oversizedKeysAndSizes, copyWithCallerLimitsProblems, sidecarBombProblems, rng } from '../../tests/js/garbage.mjs'

// A child run (one huge-size case, see the end of the file) registers no tests.
const CHILD = process.env.ISEC_NO_PANIC_CHILD
const test = CHILD ? () => {} : nodeTest
/** Writes a child's report and waits until it is flushed: a pipe is written asynchronously. */
const writeOut = (text) => new Promise((resolve) => process.stdout.write(text, resolve))
const require = createRequire(import.meta.url)
const isec = require('../lib/index.js')

const FILE = fileURLToPath(import.meta.url)
const ROOT = path.resolve(path.dirname(FILE), '..', '..')
const vectors = (name) => JSON.parse(readFileSync(path.join(ROOT, 'tests/vectors', name), 'utf8'))
const CODES = new Map(isec.errorCodes().map((c) => [c.code, c.family]))
const F = 4096
const MIB = 1 << 20
const RSS_BOUND = 256 * MIB

// --- outcomes ---------------------------------------------------------------------------

/** 'ok' or the core code of what `fn` threw (sync or async); anything else is Foreign. */
async function outcome(fn) {
  try {
    await fn()
    return 'ok'
  } catch (e) {
    return classify(e)
  }
}

function classify(e) {
  return coreCode(e, CODES)
}

const codeOf = codeOfWith(outcome)

test('the code set is core\'s (core/src/error.rs)', () => {
  assertCoreCodeSet(ROOT, CODES)
})

test('outcome() rejects what is not a typed error', async () => {
  for (const bad of [() => { throw new Error('x') }, () => { throw 'str' }, () => { throw Object.assign(new TypeError('t'), { code: 'ERR_X' }) }]) {
    await assert.rejects(outcome(bad), Foreign)
  }
  assert.equal(await outcome(() => isec.Envelope.decode(Buffer.alloc(0))), 'malformed_envelope')
})

// --- fixtures ---------------------------------------------------------------------------

function ringWith() {
  const r = new isec.Keyring()
  r.addKek('kek-a', Buffer.from(vectors('keys.json').keys['kek-a'].kek, 'hex'))
  return r
}

function world() {
  const w = {}
  w.ring = ringWith()
  ;({ envelope: w.env, key: w.key } = w.ring.createEnvelopeSync({ frameSize: F }))
  w.pt = Buffer.alloc(10240).map((_, i) => i % 256)
  w.ct = isec.encryptSync(w.key, w.pt)
  w.shape = isec.shapeFor(w.env, w.ct.length)
  ;({ envelope: w.penv, key: w.pkey } = w.ring.createEnvelopeSync({ frameSize: F, partSize: 2 * F }))
  w.pct = isec.encryptSync(w.pkey, w.pt)
  ;({ envelope: w.tenv, key: w.tkey } = w.ring.createEnvelopeSync({ frameSize: F, table: true }))
  const [t1, t3] = [isec.encryptPartSync(w.tkey, 1, false, w.pt.subarray(0, 5000)), isec.encryptPartSync(w.tkey, 3, false, w.pt.subarray(5000))]
  w.tct = Buffer.concat([t1, t3])
  w.table = new isec.SegmentTable([[1, 5000, t1.subarray(0, 7)], [3, w.pt.length - 5000, t3.subarray(0, 7)]]).encode(w.tkey)
  // Parts of one frame: two frames in, two parts are final.
  const job = isec.ReencryptionJob.startIsec(w.ring, w.env, w.shape, { frameSize: F, partSize: F })
  job.update(w.ct.subarray(0, 2 * (F + 28)), 0)
  w.checkpoint = job.checkpoint()
  assert.equal(isec.ReencryptionJob.parseCheckpoint(w.checkpoint).partsDone, 2)
  const lv = vectors('legacy.json').tests[10] // a 5000-byte single seal
  w.lsecret = lv.legacy_secret
  w.lmeta = isec.LegacyMetadata.fromPairs(lv.metadata)
  w.lct = Buffer.from(lv.ciphertext, 'hex')
  w.lobj = isec.LegacyObject.create(w.lmeta, null, w.lct.length)
  w.lkey = isec.LegacyKey.fromSecretString(lv.legacy_secret, w.lobj.wrappedDekB64)
  w.lptLen = lv.plaintext_len
  w.lring = new isec.Keyring()
  w.lring.addLegacySecretString(lv.kid, lv.legacy_secret)
  w.lkid = lv.kid
  return w
}

const W = world()

// --- garbage ----------------------------------------------------------------------------

test('garbage envelope bytes: typed errors; what decodes re-encodes to itself and stays typed', async () => {
  await garbageEnvelopeBytes({ isec, outcome, good: W.env.encode(), ring: W.ring, of: (a) => Buffer.from(a) })
})

test('garbage envelope text: typed errors; what decodes re-encodes to itself; classification never throws', async () => {
  await garbageEnvelopeText({ isec, outcome, good: W.env.toText(), codes: CODES })
})

test('garbage for every other parser and authenticated input', async () => {
  const r = rng(20260103, (a) => Buffer.from(a))
  const gz = zlib.gzipSync('{"version": 1, "parts": []}')
  const parsers = {
    'SegmentTable.decode': (b) => isec.SegmentTable.decode(b, W.tkey),
    'Shape.fromTable': (b) => isec.Shape.fromTable(W.tkey, b, W.tct.length),
    'ReencryptionJob.parseCheckpoint': (b) => isec.ReencryptionJob.parseCheckpoint(b),
    'ReencryptionJob.resumeIsec': (b) => isec.ReencryptionJob.resumeIsec(W.ring, W.env, W.shape, b),
    'LegacySidecar.parse': (b) => isec.LegacySidecar.parse(b),
    'LegacySidecar.parse(gzip)': (b) => isec.LegacySidecar.parse(Buffer.from(Buffer.concat([gz.subarray(0, 10), b]).toString('base64'))),
    'LegacySidecar.fromJson': (b) => isec.LegacySidecar.fromJson(b),
    'LegacyKey.open': (b) => isec.LegacyKey.open(Buffer.alloc(32), b.toString('base64')),
    'LegacyMetadata.fromPairs': (b) => isec.LegacyMetadata.fromPairs({ isec: b.toString('latin1'), 'plaintext-size': String(b.length) }),
    parseNonce: (b) => isec.parseNonce(b.subarray(0, 12)),
    decryptSync: (b) => isec.decryptSync(W.key, b),
    'decryptSync(parts)': (b) => isec.decryptSync(W.pkey, b),
    decryptWithTableSync: (b) => isec.decryptWithTableSync(W.tkey, W.table, b),
    legacyDecryptSync: (b) => isec.legacyDecryptSync(W.lkey, W.lobj, b),
    decrypt: (b) => isec.decrypt(W.key, b),
  }
  const seeds = {
    'SegmentTable.decode': W.table,
    'Shape.fromTable': W.table,
    'ReencryptionJob.parseCheckpoint': W.checkpoint,
    'ReencryptionJob.resumeIsec': W.checkpoint,
    decryptSync: W.ct,
    'decryptSync(parts)': W.pct,
    decryptWithTableSync: W.tct,
    legacyDecryptSync: W.lct,
    decrypt: W.ct,
  }
  const authenticated = new Set(Object.keys(seeds).filter((k) => k !== 'ReencryptionJob.parseCheckpoint'))
  for (const [name, parse] of Object.entries(parsers)) {
    const seed = seeds[name]
    for (let i = 0; i < 400; i++) {
      let raw
      if (seed && r.random() < 0.7) {
        const b = Buffer.from(seed)
        for (let k = 1 + r.int(3); k > 0; k--) b[r.int(b.length)] ^= 1 << r.int(8)
        raw = r.random() < 0.3 ? b.subarray(0, r.int(b.length + 1)) : b
      } else raw = r.bytes(r.int(300))
      const got = await outcome(() => parse(raw))
      if (authenticated.has(name) && !raw.equals(seed)) assert.notEqual(got, 'ok', `${name} accepted ${raw.toString('hex').slice(0, 80)}`)
    }
  }
})

// --- truncations ------------------------------------------------------------------------

test('every truncation and extension of an envelope is malformed_envelope', async () => {
  const envs = [W.env, W.penv, W.tenv, W.ring.createEnvelopeSync({ declaredSize: 123 }).envelope]
  await envelopeCutsAndExtensions({ isec, codeOf, envs, of: (a) => Buffer.from(a) })
})

test('every truncation of a ciphertext, segment table, checkpoint and legacy body', async () => {
  const stream = new Set(['truncated', 'authentication_failed', 'bad_frame_length'])
  for (const [key, env, ct] of [[W.key, W.env, W.ct], [W.pkey, W.penv, W.pct]]) {
    for (let n = 0; n < ct.length; n++) {
      const part = ct.subarray(0, n)
      assert.ok(stream.has(await codeOf(() => isec.decryptSync(key, part))), `${n}`)
      const d = new isec.Decryptor(key)
      assert.ok(stream.has(await codeOf(() => (d.update(part), d.final()))), `${n}`)
      assert.ok(['ok', 'truncated', 'bad_frame_length'].includes(await outcome(() => isec.shapeFor(env, n))), `${n}`)
    }
  }
  for (let n = 0; n < W.tct.length; n++) assert.equal(await codeOf(() => isec.decryptWithTableSync(W.tkey, W.table, W.tct.subarray(0, n))), 'truncated')
  for (let n = 0; n < W.table.length; n++) {
    assert.ok(['malformed_segment_table', 'authentication_failed'].includes(await codeOf(() => isec.SegmentTable.decode(W.table.subarray(0, n), W.tkey))))
  }
  for (let n = 0; n < W.checkpoint.length; n++) {
    const got = await codeOf(() => isec.ReencryptionJob.resumeIsec(W.ring, W.env, W.shape, W.checkpoint.subarray(0, n)))
    assert.ok(['malformed_checkpoint', 'authentication_failed'].includes(got), `${n}: ${got}`)
  }
  for (let n = 0; n < W.lct.length; n++) {
    const got = await codeOf(() => isec.legacyDecryptSync(W.lkey, W.lobj, W.lct.subarray(0, n)))
    assert.ok(['truncated', 'authentication_failed', 'malformed_legacy'].includes(got), `${n}: ${got}`)
  }
})

// --- argument types ---------------------------------------------------------------------

/** Every entry point with valid arguments; contexts fresh per call (an error locks them). */
function calls(w) {
  const plan = w.shape.mapRange(10, 5000)
  const fetched = w.ct.subarray(plan.ctStart, plan.ctEnd)
  const lplan = w.lobj.planRange(0, 5)
  const start = () => isec.ReencryptionJob.startIsec(w.ring, w.env, w.shape, {})
  return [
    ...envelopeAndKeyringCalls({ isec, w, ringWith, zeros: (n) => Buffer.alloc(n), frameSize: F }),
    ['encryptSync', (k, p) => isec.encryptSync(k, p), [w.key, w.pt]],
    ['encrypt', (k, p, o) => isec.encrypt(k, p, o), [w.key, w.pt, {}]],
    ['decryptSync', (k, c) => isec.decryptSync(k, c), [w.key, w.ct]],
    ['decrypt', (k, c, o) => isec.decrypt(k, c, o), [w.key, w.ct, {}]],
    ['decryptAsync', (k, c, t) => isec.decryptAsync(k, c, t), [w.key, w.ct, new isec.CancelToken()]],
    ['encryptPartSync', (k, n, l, p) => isec.encryptPartSync(k, n, l, p), [w.pkey, 1, false, w.pt.subarray(0, 2 * F)]],
    ['encryptPart', (k, n, l, p) => isec.encryptPart(k, n, l, p), [w.pkey, 1, false, w.pt.subarray(0, 2 * F)]],
    ['decryptWithTableSync', (k, t, c) => isec.decryptWithTableSync(k, t, c), [w.tkey, w.table, w.tct]],
    ['decryptWithTable', (k, t, c) => isec.decryptWithTable(k, t, c), [w.tkey, w.table, w.tct]],
    ['decryptRangeSync', (k, s, a, b, f) => isec.decryptRangeSync(k, s, a, b, f), [w.key, w.shape, 10, 5000, fetched]],
    ['decryptRange', (k, s, a, b, f) => isec.decryptRange(k, s, a, b, f), [w.key, w.shape, 10, 5000, fetched]],
    ['shapeFor', (e, n) => isec.shapeFor(e, n), [w.env, w.ct.length]],
    ['Shape.forPlaintext', (e, n) => isec.Shape.forPlaintext(e, n), [w.env, 100]],
    ['Shape.fromTable', (k, t, n) => isec.Shape.fromTable(k, t, n), [w.tkey, w.table, w.tct.length]],
    ['Shape.mapRange', (a, b) => w.shape.mapRange(a, b), [10, 20]],
    ['Shape.segment', (n) => w.shape.segment(n), [0]],
    ['Shape.ctBoundaryFloor', (n) => w.shape.ctBoundaryFloor(n), [5000]],
    ['SegmentTable', (e) => new isec.SegmentTable(e), [[[1, 5, Buffer.alloc(7)], [2, 7, Buffer.alloc(7)]]]],
    ['SegmentTable.decode', (b, k) => isec.SegmentTable.decode(b, k), [w.table, w.tkey]],
    ['SegmentTable.encode', (k) => new isec.SegmentTable([[1, 5, Buffer.alloc(7)]]).encode(k), [w.tkey]],
    ['Encryptor', (k) => new isec.Encryptor(k), [w.key]],
    ['Encryptor.forPart', (k, n, l) => isec.Encryptor.forPart(k, n, l), [w.pkey, 2, false]],
    ['Encryptor.update', (c) => new isec.Encryptor(w.key).update(c), [w.pt]],
    ['Encryptor.updateInto', (c, o) => new isec.Encryptor(w.key).updateInto(c, o), [w.pt, Buffer.alloc(w.ct.length)]],
    ['Encryptor.updateAsync', (c, t) => new isec.Encryptor(w.key).updateAsync(c, t), [w.pt, new isec.CancelToken()]],
    ['Encryptor.updateLength', (n) => new isec.Encryptor(w.key).updateLength(n), [100]],
    ['Encryptor.finalInto', (o) => new isec.Encryptor(w.key).finalInto(o), [Buffer.alloc(100)]],
    ['Decryptor', (k) => new isec.Decryptor(k), [w.key]],
    ['Decryptor.withShape', (k, s) => isec.Decryptor.withShape(k, s), [w.key, w.shape]],
    ['Decryptor.forRange', (k, s, a, b) => isec.Decryptor.forRange(k, s, a, b), [w.key, w.shape, 10, 5000]],
    ['Decryptor.update', (c) => new isec.Decryptor(w.key).update(c), [w.ct]],
    ['Decryptor.updateInto', (c, o) => new isec.Decryptor(w.key).updateInto(c, o), [w.ct, Buffer.alloc(w.ct.length)]],
    ['Decryptor.updateAsync', (c) => new isec.Decryptor(w.key).updateAsync(c), [w.ct]],
    ['Decryptor.updateLength', (n) => new isec.Decryptor(w.key).updateLength(n), [100]],
    ['Decryptor.finalInto', (o) => new isec.Decryptor(w.key).finalInto(o), [Buffer.alloc(10)]],
    ['buildNonce', (p, i, s, o) => isec.buildNonce(p, i, s, o), [Buffer.alloc(7), 1, false, false]],
    ['parseNonce', (b) => isec.parseNonce(b), [Buffer.alloc(12)]],
    ['classifyMetadata', (m, s) => isec.classifyMetadata(m, s), [{ isec: w.env.toText() }, false]],
    ['decideCopy', (q, r) => isec.decideCopy(q, r), [{ sourceMetadata: { isec: w.env.toText() }, sourceSize: w.ct.length, targetKid: 'kek-a' }, w.ring]],
    ['isecError', (c, m) => isec.isecError(c, m), ['truncated', 'message']],
    ['ScanPlanner', (r) => new isec.ScanPlanner(r), [w.ring]],
    ['ScanPlanner.add', (k, m, s, l) => new isec.ScanPlanner(w.ring).add(k, m, s, l), ['key', { isec: w.env.toText() }, w.ct.length, false]],
    ['ScanPlanner.tally', (n) => new isec.ScanPlanner(w.ring).tally(n), ['current']],
    ['ReencryptionJob.startIsec', (r, e, s, o) => isec.ReencryptionJob.startIsec(r, e, s, o), [w.ring, w.env, w.shape, { frameSize: F, partSize: F, rate: 0 }]],
    ['ReencryptionJob.resumeIsec', (r, e, s, c) => isec.ReencryptionJob.resumeIsec(r, e, s, c), [w.ring, w.env, w.shape, w.checkpoint]],
    ['ReencryptionJob.startLegacy', (r, o, opt) => isec.ReencryptionJob.startLegacy(r, o, opt), [w.lring, w.lobj, { kid: w.lkid }]],
    ['ReencryptionJob.parseCheckpoint', (c) => isec.ReencryptionJob.parseCheckpoint(c), [w.checkpoint]],
    ['ReencryptionJob.update', (c, t) => start().update(c, t), [w.ct.subarray(0, 100), 0]],
    ['ReencryptionJob.setRate', (r) => start().setRate(r), [100]],
    ['LegacyMetadata.fromPairs', (m) => isec.LegacyMetadata.fromPairs(m), [{ isec: 'A'.repeat(54) + '==', 'plaintext-size': '5' }]],
    ['LegacySidecar.parse', (b, m) => isec.LegacySidecar.parse(b, m), [Buffer.from('H4sI'), 1000]],
    ['LegacySidecar.fromJson', (b) => isec.LegacySidecar.fromJson(b), [Buffer.from('{}')]],
    ['LegacyObject.create', (m, s, n) => isec.LegacyObject.create(m, s, n), [w.lmeta, null, w.lct.length]],
    ['LegacyObject.planRange', (a, b) => w.lobj.planRange(a, b), [5, 10]],
    ['LegacyObject.withUploadId', (u) => w.lobj.withUploadId(u), ['upload']],
    ['LegacyKey.open', (k, b) => isec.LegacyKey.open(k, b), [Buffer.alloc(32), w.lobj.wrappedDekB64]],
    ['LegacyKey.fromSecretString', (s, b) => isec.LegacyKey.fromSecretString(s, b), [w.lsecret, w.lobj.wrappedDekB64]],
    ['LegacyDecryptor', (k, o) => new isec.LegacyDecryptor(k, o), [w.lkey, w.lobj]],
    ['LegacyDecryptor.forRange', (k, o, a, b) => isec.LegacyDecryptor.forRange(k, o, a, b), [w.lkey, w.lobj, 1, 2]],
    ['LegacyDecryptor.update', (c) => new isec.LegacyDecryptor(w.lkey, w.lobj).update(c), [w.lct]],
    ['LegacyDecryptor.updateInto', (c, o) => new isec.LegacyDecryptor(w.lkey, w.lobj).updateInto(c, o), [w.lct, Buffer.alloc(w.lct.length)]],
    ['legacyDecryptSync', (k, o, c) => isec.legacyDecryptSync(k, o, c), [w.lkey, w.lobj, w.lct]],
    ['legacyDecrypt', (k, o, c) => isec.legacyDecrypt(k, o, c), [w.lkey, w.lobj, w.lct]],
    ['legacyDecryptRangeSync', (k, o, a, b, c) => isec.legacyDecryptRangeSync(k, o, a, b, c), [w.lkey, w.lobj, 0, 5, w.lct.subarray(lplan.ctStart, lplan.ctEnd)]],
    ['EncryptStream', (k, o) => new isec.EncryptStream(k, o), [w.pkey, { partNumber: 1, isLast: false }]],
    ['DecryptStream', (k, o) => new isec.DecryptStream(k, o), [w.key, { shape: w.shape, range: [1, 5] }]],
    ['LegacyDecryptStream', (k, o, opt) => new isec.LegacyDecryptStream(k, o, opt), [w.lkey, w.lobj, { range: [1, 5] }]],
  ]
}

class Other {}

/** Values of other JS types than `good` (and isec objects of other classes). */
function wrongValues(w, good) {
  const kind = (v) => (v === null ? 'null' : ArrayBuffer.isView(v) ? 'view' : Array.isArray(v) ? 'array' : typeof v === 'object' ? v.constructor?.name ?? 'object' : typeof v)
  const all = [undefined, null, 'text', 7, true, [], [1, 2], {}, { a: 1 }, () => 1, Symbol('s'), 10n, new Other(), new Date(0),
    new Uint16Array(2), new ArrayBuffer(4), new DataView(new ArrayBuffer(4)), w.env, w.key, w.shape, w.ring, w.lobj, new isec.CancelToken()]
  return all.filter((v) => kind(v) !== kind(good))
}

/** Numbers outside what a parameter holds (and NaN): a value error, typed. */
const BAD_NUMBERS = [-1, -0.5, 1.5, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64, Number.MAX_VALUE]

/** Runs every substitution; returns the throws that carried no core code. */
async function substitutions(w) {
  const untyped = []
  let tried = 0
  for (const [name, fn, args] of calls(w)) {
    for (let i = 0; i < args.length; i++) {
      const bads = typeof args[i] === 'number' ? [...wrongValues(w, args[i]), ...BAD_NUMBERS] : wrongValues(w, args[i])
      for (const bad of bads) {
        const a = [...args]
        a[i] = bad
        tried++
        try {
          await outcome(() => fn(...a))
        } catch (e) {
          if (!(e instanceof Foreign)) throw e
          untyped.push(`${name}(arg ${i} = ${describe(bad)}): ${e.message}`)
        }
      }
    }
  }
  return { tried, untyped }
}

test('valid calls succeed or throw typed', async () => {
  for (const [name, fn, args] of calls(W)) {
    await outcome(() => fn(...args)).catch((e) => assert.fail(`${name}: ${e.message}`))
  }
})

let subs
const SUBS = () => (subs ??= substitutions(W))

test('wrong argument types and out-of-range numbers: no crash, no hang, only Errors', async () => {
  const { tried, untyped } = await SUBS()
  assert.ok(tried > 1500, `${tried}`)
  // Every throw was an Error (outcome() turns anything else into a listed Foreign, and
  // non-Errors are listed with "a thrown"), and the process is still here.
  assert.deepEqual(untyped.filter((u) => u.includes('a thrown')), [])
})

test('wrong argument types and out-of-range numbers: every error carries a core code (the package promises TypeError + invalid_parameter)', async () => {
  const untyped = [...(await SUBS()).untyped]
  // Also: napi-rs's own errors on misuse of the classes.
  const extra = [
    ['new ObjectKey()', () => new isec.ObjectKey()],
    ['new Envelope()', () => new isec.Envelope()],
    ['new Shape()', () => new isec.Shape()],
    ['ObjectKey.frameSize on a foreign this', () => Object.getOwnPropertyDescriptor(isec.ObjectKey.prototype, 'frameSize').get.call(W.env)],
  ]
  // A method called on an object of another class is refused by V8 itself ("Illegal
  // invocation", a TypeError without code) before the addon runs: accepted, and checked to
  // be no worse than that.
  for (const fn of [() => isec.Encryptor.prototype.update.call({}, Buffer.alloc(1)), () => isec.Decryptor.prototype.update.call(new isec.Encryptor(W.key), W.ct)]) {
    assert.throws(fn, (e) => e instanceof TypeError && /Illegal invocation/.test(e.message))
  }
  for (const [name, fn] of extra) {
    try {
      await outcome(fn)
    } catch (e) {
      untyped.push(`${name}: ${e.message}`)
    }
  }
  assert.deepEqual(untyped, [], `${untyped.length} throws without a core code:\n${untyped.join('\n')}`)
})

// --- oversized inputs -------------------------------------------------------------------

test('oversized inputs: kids, keys, frame and part sizes, wrapped keys, parser inputs', async () => {
  await oversizedKeysAndSizes({ isec, codeOf, outcome, ring: W.ring, env: W.env, zeros: (n) => Buffer.alloc(n), frameSize: F })
  // A wrapper whose unwrap returns a DEK of the wrong length.
  const store = new Map()
  const echo = new isec.Keyring()
  echo.addExternal('kms', {
    wrap: (kid, dek) => {
      const h = Buffer.concat([Buffer.from('w'), dek.subarray(0, 8)])
      store.set(h.toString('hex'), Buffer.from(dek))
      return h
    },
    unwrap: (kid, wrapped) => Buffer.concat([store.get(Buffer.from(wrapped).toString('hex')), Buffer.from('extra')]),
  })
  const { envelope } = await echo.createEnvelope()
  assert.ok(['external_wrapper_failed', 'unwrap_failed', 'invalid_parameter'].includes(await codeOf(() => echo.open(envelope))))
  await oversizedEnvelopeFields({ isec, outcome, env: W.env, of: (a) => Buffer.from(a) })
  // Big inputs to the parsers are refused by size.
  for (const text of ['A'.repeat(465), 'A'.repeat(MIB)]) assert.equal(await codeOf(() => isec.Envelope.decodeText(text)), 'malformed_envelope')
  assert.ok(DECODE_CODES.has(await codeOf(() => isec.Envelope.decode(Buffer.alloc(349)))))
  assert.equal(await codeOf(() => isec.parseNonce(Buffer.alloc(13))), 'invalid_parameter')
  assert.equal(await codeOf(() => isec.buildNonce(Buffer.alloc(8), 0, false, false)), 'invalid_parameter')
  assert.equal(await codeOf(() => new isec.SegmentTable(Array.from({ length: 10_001 }, (_, i) => [i + 1, 1, Buffer.alloc(7)]))), 'malformed_segment_table')
  assert.ok(['malformed_segment_table', 'authentication_failed'].includes(await codeOf(() => isec.SegmentTable.decode(Buffer.alloc(MIB), W.tkey))))
  assert.equal(await codeOf(() => isec.ReencryptionJob.parseCheckpoint(Buffer.concat([Buffer.from('ISCK\x01'), Buffer.alloc(MIB)]))), 'malformed_checkpoint')
  assert.ok(['sidecar_too_large', 'malformed_legacy'].includes(await codeOf(() => isec.LegacySidecar.parse(Buffer.alloc(17 * MIB, 65)))))
  const big = { isec: 'A'.repeat(MIB), 'isec-kid': 'k'.repeat(65536), ['x'.repeat(1000)]: 'y' }
  assert.equal(isec.classifyMetadata(big).format, 'unreadable')
  assert.ok(['ok', 'malformed_legacy'].includes(await outcome(() => isec.LegacyMetadata.fromPairs(big))))
  assert.equal(await outcome(() => isec.LegacyKey.fromSecretString('s'.repeat(MIB), W.lobj.wrappedDekB64)), 'unwrap_failed')
})

// --- output buffers ---------------------------------------------------------------------

test('*Into with wrong output buffers; shared memory; detached buffers under async work', async () => {
  const need = new isec.Encryptor(W.key).updateLength(W.pt.length)
  for (const n of [0, 1, need - 1]) assert.equal(await codeOf(() => new isec.Encryptor(W.key).updateInto(W.pt, Buffer.alloc(n))), 'buffer_too_small')
  for (const out of [new Uint16Array(need), new ArrayBuffer(need), new DataView(new ArrayBuffer(need)), 'x'.repeat(need), [0]]) {
    assert.equal(await codeOf(() => new isec.Encryptor(W.key).updateInto(W.pt, out)), 'invalid_parameter')
  }
  assert.equal(await codeOf(() => new isec.Encryptor(W.key).finalInto(Buffer.alloc(27))), 'buffer_too_small')
  const dneed = new isec.Decryptor(W.key).updateLength(W.ct.length)
  for (const n of [0, 1, dneed - 1]) assert.equal(await codeOf(() => new isec.Decryptor(W.key).updateInto(W.ct, Buffer.alloc(n))), 'buffer_too_small')
  const d = new isec.Decryptor(W.key)
  d.update(W.ct.subarray(0, 100))
  assert.ok(['buffer_too_small', 'truncated'].includes(await codeOf(() => d.finalInto(Buffer.alloc(1)))))
  assert.equal(await codeOf(() => new isec.LegacyDecryptor(W.lkey, W.lobj).updateInto(W.lct, Buffer.alloc(10))), 'buffer_too_small')
  // Input and output in one ArrayBuffer: refused, or right.
  for (const [inAt, outAt] of [[0, 0], [0, 5], [5, 0], [0, need + W.pt.length]]) {
    const mem = Buffer.alloc(2 * need + 2 * W.pt.length)
    W.pt.copy(mem, inAt)
    const e = new isec.Encryptor(W.key)
    const got = await outcome(() => e.updateInto(mem.subarray(inAt, inAt + W.pt.length), mem.subarray(outAt, outAt + need)))
    if (got === 'ok') {
      const ct = Buffer.concat([mem.subarray(outAt, outAt + need), e.final()])
      assert.deepEqual(isec.decryptSync(W.key, ct), W.pt, `in ${inAt}, out ${outAt}`)
    } else assert.equal(got, 'invalid_parameter', `in ${inAt}, out ${outAt}`)
  }
  // A detached output or input buffer.
  const detached = new Uint8Array(need)
  structuredClone(detached.buffer, { transfer: [detached.buffer] })
  assert.ok(['buffer_too_small', 'invalid_parameter'].includes(await codeOf(() => new isec.Encryptor(W.key).updateInto(W.pt, detached))))
  assert.equal(await outcome(() => isec.encryptSync(W.key, detached)), 'ok')
  // Detaching the input while the libuv pool works on it: the right answer or a typed error.
  for (const [run, check] of [
    [(buf) => isec.encrypt(W.key, buf), (out) => assert.deepEqual(isec.decryptSync(W.key, out), Buffer.alloc(8 * MIB, 7))],
    [(buf) => new isec.Encryptor(W.key).updateAsync(buf), (out) => assert.ok(out.length > 0)],
  ]) {
    const buf = new Uint8Array(8 * MIB).fill(7)
    const p = run(buf)
    structuredClone(buf.buffer, { transfer: [buf.buffer] })
    let out
    const got = await outcome(async () => (out = await p))
    if (got === 'ok') check(out)
  }
})

// --- state ------------------------------------------------------------------------------

test('contexts refuse every call after final and after an error', async () => {
  const bad = Buffer.from(W.ct)
  bad[50] ^= 1
  const e = new isec.Encryptor(W.key)
  e.update(W.pt)
  e.final()
  for (const call of [() => e.update(Buffer.alloc(1)), () => e.updateInto(Buffer.alloc(1), Buffer.alloc(100)), () => e.updateAsync(Buffer.alloc(1)), () => e.final(), () => e.finalInto(Buffer.alloc(100))]) {
    assert.equal(await codeOf(call), 'invalid_state')
  }
  const d = new isec.Decryptor(W.key)
  d.update(W.ct)
  d.final()
  for (const call of [() => d.update(W.ct), () => d.final(), () => d.updateAsync(W.ct)]) assert.equal(await codeOf(call), 'invalid_state')
  for (const make of [() => new isec.Decryptor(W.key), () => isec.Decryptor.withShape(W.key, W.shape)]) {
    for (const fail of [(x) => x.update(bad), (x) => x.updateAsync(bad), (x) => x.updateInto(bad, Buffer.alloc(bad.length))]) {
      const x = make()
      assert.equal(await codeOf(() => fail(x)), 'authentication_failed')
      for (const call of [() => x.update(W.ct), () => x.update(Buffer.alloc(0)), () => x.updateInto(W.ct, Buffer.alloc(W.ct.length)), () => x.updateAsync(W.ct), () => x.final(), () => x.finalInto(Buffer.alloc(F))]) {
        assert.equal(await codeOf(call), 'invalid_state')
      }
    }
  }
  const r = isec.Decryptor.forRange(W.key, W.shape, 0, 10)
  assert.ok(['trailing_data', 'invalid_parameter'].includes(await codeOf(() => r.update(W.ct))))
  assert.equal(await codeOf(() => r.update(Buffer.alloc(1))), 'invalid_state')
  const lbad = Buffer.from(W.lct)
  lbad[lbad.length - 1] ^= 1
  const ld = new isec.LegacyDecryptor(W.lkey, W.lobj)
  assert.equal(await codeOf(() => (ld.update(lbad), ld.final())), 'authentication_failed')
  assert.equal(await codeOf(() => ld.update(W.lct)), 'invalid_state')
  assert.equal(await codeOf(() => ld.final()), 'invalid_state')
  // Re-encryption after finish and after a source error.
  const job = isec.ReencryptionJob.startIsec(W.ring, W.env, W.shape, { frameSize: F })
  const out = []
  for (let at = 0; at < W.ct.length;) {
    const step = job.update(W.ct.subarray(at), 0)
    at += step.consumed
    out.push(step.output)
  }
  out.push(job.finish())
  assert.deepEqual(isec.decryptSync(W.ring.openSync(job.targetEnvelope), Buffer.concat(out)), W.pt)
  assert.equal(await codeOf(() => job.update(Buffer.alloc(1), 0)), 'invalid_state')
  assert.equal(await codeOf(() => job.finish()), 'invalid_state')
  const job2 = isec.ReencryptionJob.startIsec(W.ring, W.env, W.shape, { frameSize: F })
  assert.equal(await codeOf(() => job2.update(bad, 0)), 'authentication_failed')
  assert.equal(await codeOf(() => job2.update(W.ct, 0)), 'invalid_state')
  assert.equal(await codeOf(() => job2.finish()), 'invalid_state')
  // Streams report the typed error through 'error'.
  const got = await outcome(() => pipeline(Readable.from([bad.subarray(0, 5000), bad.subarray(5000)]), new isec.DecryptStream(W.key), async function* (src) { for await (const _ of src); }))
  assert.equal(got, 'authentication_failed')
  const ac = new AbortController()
  ac.abort()
  await assert.rejects(isec.decrypt(W.key, W.ct, { signal: ac.signal }), (err) => err.code === 'ABORT_ERR')
})

test('an encryptor refuses every call after an error (SPEC.md §9: invalid_state is a call after an error)', async () => {
  // A part encryptor given more than its part: the error, then nothing more from it. The
  // Python package locks the context here; this addon answers the next update with output.
  const ep = isec.Encryptor.forPart(W.pkey, 1, false)
  assert.equal(await codeOf(() => ep.update(Buffer.alloc(2 * F + 1))), 'invalid_parameter')
  assert.equal(await codeOf(() => ep.update(Buffer.alloc(F + 1))), 'invalid_state')
  assert.equal(await codeOf(() => ep.final()), 'invalid_state')
})

test('async calls in flight on one context: refused, or applied in call order', async () => {
  // Eight updateAsync calls on one encryptor before any settles. Either all but the first
  // are refused (invalid_state, as the wasm package does), or the output, concatenated in
  // call order, decrypts to the input in call order. Taking them in whatever order the libuv
  // pool runs them writes frames out of order: an object that no reader will open.
  let misordered = 0
  for (let i = 0; i < 1000; i++) {
    const chunks = Array.from({ length: 8 }, (_, k) => Buffer.alloc(20000, k + 1))
    const e = new isec.Encryptor(W.key)
    const outs = await Promise.allSettled(chunks.map((c) => e.updateAsync(c)))
    const refused = outs.filter((o) => o.status === 'rejected')
    for (const o of refused) assert.equal(classify(o.reason), 'invalid_state')
    if (refused.length > 0) continue
    const ct = Buffer.concat([...outs.map((o) => o.value), e.final()])
    let pt = null
    await outcome(() => (pt = isec.decryptSync(W.key, ct)))
    if (pt === null || !pt.equals(Buffer.concat(chunks))) misordered++
  }
  assert.equal(misordered, 0, `${misordered} of 1000 objects written out of call order`)
})

// --- huge sizes and counts, in a child process ------------------------------------------

async function hugeDeclaredSize() {
  const problems = []
  const ring = ringWith()
  const { envelope: env, key } = ring.createEnvelopeSync({ frameSize: F, declaredSize: 2 ** 44 })
  const shape = isec.Shape.forPlaintext(env, 2 ** 44)
  if (shape.frameCount !== 2 ** 32) problems.push(`frameCount ${shape.frameCount}`)
  if (env.inspect(shape.ciphertextLength).plaintextLength !== 2 ** 44) problems.push('inspect')
  for (const [a, b] of [[0, 10], [2 ** 44 - 5, 2 ** 44], [2 ** 43 - 3, 2 ** 43 + 3]]) {
    const plan = shape.mapRange(a, b)
    const dr = isec.Decryptor.forRange(key, shape, a, b)
    const got = await outcome(() => (dr.update(Buffer.alloc(plan.ctEnd - plan.ctStart)), dr.final()))
    if (got !== 'authentication_failed') problems.push(`range ${a}..${b} of garbage: ${got}`)
    const got2 = await outcome(() => isec.decryptRangeSync(key, shape, a, b, Buffer.alloc(plan.ctEnd - plan.ctStart)))
    if (got2 !== 'authentication_failed') problems.push(`decryptRangeSync ${a}..${b}: ${got2}`)
  }
  const d = new isec.Decryptor(key)
  const got = await outcome(() => { for (let i = 0; i < 8; i++) d.update(Buffer.alloc(MIB)) })
  if (got !== 'authentication_failed') problems.push(`stream of garbage: ${got}`)
  const e = new isec.Encryptor(key)
  e.update(Buffer.alloc(MIB))
  if ((await outcome(() => e.final())) === 'ok') problems.push('1 MiB finished under a declared size of 16 TiB')
  for (const n of [shape.ciphertextLength + 1, shape.ciphertextLength - 1, 2 ** 53]) {
    if ((await outcome(() => isec.shapeFor(env, n))) === 'ok') problems.push(`shape of ${n} bytes accepted`)
  }
  const job = isec.ReencryptionJob.startIsec(ring, env, shape, { frameSize: F })
  const gotJob = await outcome(() => job.update(Buffer.alloc(F + 28), 0))
  if (gotJob !== 'authentication_failed') problems.push(`re-encryption of garbage: ${gotJob}`)
  return problems
}

async function craftedHeaders() {
  const ring = ringWith()
  const problems = await craftedHeaderProblems({ isec, ring, outcome, of: (b) => Buffer.from(b), frameSize: F })
  const { key } = ring.createEnvelopeSync({ frameSize: 2 ** 23, partSize: 2 ** 40 })
  for (const n of [1, 10_000, 10_001]) for (const last of [true, false]) await outcome(() => isec.Encryptor.forPart(key, n, last).update(Buffer.alloc(1)))
  const d = new isec.Decryptor(key)
  const got = await outcome(() => { for (let i = 0; i < 12; i++) d.update(Buffer.alloc(MIB)) })
  if (got !== 'authentication_failed') problems.push(`8 MiB frames, garbage: ${got}`)
  return problems
}

async function hugePartCounts() {
  return hugePartCountProblems({ isec, ring: ringWith(), outcome, zeros: (n) => Buffer.alloc(n), frameSize: F })
}

async function hostileLegacySizes() {
  const wrapped = W.lobj.wrappedDekB64 // a real wrapped DEK, so the key opens and frames are read
  for (const size of ['18446744073709551615', '18446744073709551616', '-1', '1e9', '9'.repeat(100), ' 5', '0x10']) {
    const got = await outcome(() => isec.LegacyMetadata.fromPairs({ isec: wrapped, 'plaintext-size': size }))
    if (got !== 'ok') continue
    const meta = isec.LegacyMetadata.fromPairs({ isec: wrapped, 'plaintext-size': size })
    for (const n of [28, 2 ** 52, 2 ** 53]) await outcome(() => isec.LegacyObject.create(meta, null, n).planRange(0, Infinity))
  }
  const sidecar = (doc) => isec.LegacySidecar.fromJson(Buffer.from(JSON.stringify({ v: 2, dek: wrapped, ...doc })))
  const lring = new isec.Keyring()
  lring.addLegacySecretString(W.lkid, W.lsecret)
  lring.addKek('new', Buffer.alloc(32))
  const problems = await hostileLegacyProblems({
    isec,
    outcome,
    legacy: W,
    of: (b) => Buffer.from(b),
    legacyObject: (meta, sc, n) => isec.LegacyObject.create(meta, sc, n),
    sync: 'Sync',
    // Longer than any AES-GCM message may be (2^36 - 32 bytes): not authentic, refused
    // before migration streams any of it.
    eachHugeSeal: async (name, o) => {
      const start = await outcome(() => isec.ReencryptionJob.startLegacy(lring, o, { kid: W.lkid }))
      return start === 'limit_exceeded' ? [] : [`1 TiB seal (${name}), re-encryption start: ${start}`]
    },
  })
  // Migration opens such a seal as it arrives (its tag is checked at its end): the output
  // streams, and no checkpoint vouches for bytes whose tag was not checked.
  const reencrypt = (o) => {
    const j = isec.ReencryptionJob.startLegacy(lring, o, { kid: W.lkid })
    const found = []
    let written = 0
    for (let i = 0; i < 40; i++) {
      const step = j.update(Buffer.alloc(MIB), 0)
      if (step.consumed !== MIB) return [`took ${step.consumed} of 1 MiB`]
      written += step.output.length
    }
    if (written < 39 * MIB) found.push(`${written} bytes out for 40 MiB in: buffered`)
    if (j.progress.partsDone !== 0 || isec.ReencryptionJob.parseCheckpoint(j.checkpoint()).partsDone !== 0) {
      found.push('a checkpoint covers plaintext whose tag was not checked')
    }
    return found
  }
  // One seal of 32 GiB, within GCM's limit: migration opens it as it arrives.
  const lone32 = isec.LegacyObject.create(isec.LegacyMetadata.fromPairs({}), sidecar({ pc: 1, ts: 2 ** 35, parts: [{ pn: 1, ps: 2 ** 35, cs: 2 ** 35 + 28 }] }), 2 ** 35 + 28)
  const single32 = isec.LegacyObject.create(isec.LegacyMetadata.fromPairs({ isec: wrapped, 'plaintext-size': String(2 ** 35) }), null, 2 ** 35 + 28)
  for (const [name, o] of [['lone seal', lone32], ['single PUT', single32]]) {
    let found = []
    const got = await outcome(() => { found = reencrypt(o) })
    if (got !== 'ok' || found.length) problems.push(`32 GiB seal (${name}), re-encryption: ${got} ${found.join('; ')}`)
  }
  // A gzip bomb (64 MiB of spaces in 64 KiB) under the default 16 MiB cap, and under 32 MiB.
  const gz = zlib.createGzip({ level: 9 })
  const out = []
  gz.on('data', (c) => out.push(c))
  const ended = once(gz, 'end')
  const space = Buffer.alloc(MIB, 32)
  gz.write('{')
  for (let i = 0; i < 64; i++) if (!gz.write(space)) await once(gz, 'drain')
  gz.end('}')
  await ended
  const bomb = Buffer.from(Buffer.concat(out).toString('base64'))
  problems.push(...(await sidecarBombProblems({ isec, outcome, bomb })))
  return problems
}

const copyWithCallerLimits = () => copyWithCallerLimitsProblems({ isec, outcome })

const ISOLATED = { hugeDeclaredSize, craftedHeaders, hugePartCounts, hostileLegacySizes, copyWithCallerLimits }

if (process.env.ISEC_NO_PANIC_CHILD) {
  let problems
  try {
    problems = await ISOLATED[process.env.ISEC_NO_PANIC_CHILD]()
  } catch (e) {
    problems = [String(e.stack ?? e)]
  }
  // VmHWM: the peak RSS of this process image (ru_maxrss would carry the forking parent's).
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))
  await writeOut(`${JSON.stringify({ problems, maxRss: Number(hwm[1]) * 1024 })}\n`)
  process.exit(0)
}

for (const name of Object.keys(ISOLATED)) {
  test(`huge sizes and counts in a child node (2 GiB address space): ${name}`, { skip: process.platform !== 'linux' && 'ulimit -v and /proc/self/status' }, () => {
    // In a child: a Rust panic or a failed allocation aborts node. `copyWithCallerLimits`
    // fails while core builds maxParts ranges (it aborts on the failed allocation).
    const env = { ...process.env, ISEC_NO_PANIC_CHILD: name, RUST_BACKTRACE: '0' }
    delete env.NODE_TEST_CONTEXT
    delete env.NODE_OPTIONS
    const p = spawnSync('/bin/sh', ['-c', 'ulimit -v 2097152 && exec "$0" "$@"', process.execPath, FILE], { env, encoding: 'utf8', timeout: 300_000 })
    assert.equal(p.status, 0, `${name}: child died (${p.status ?? p.signal}): ${(p.stderr ?? '').trim().slice(-800)}`)
    const report = JSON.parse(p.stdout.trim().split('\n').pop())
    console.log(`${name}: peak RSS ${(report.maxRss / MIB).toFixed(0)} MiB`)
    assert.deepEqual(report.problems, [])
    assert.ok(report.maxRss < RSS_BOUND, `${name}: peak RSS ${(report.maxRss / MIB).toFixed(0)} MiB`)
  })
}
