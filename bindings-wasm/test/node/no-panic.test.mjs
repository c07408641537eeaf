// No panic across the boundary, for the browser package under Node (the nodejs build): on
// both backends, whatever a caller or an attacker hands the package, the answer is an Error
// carrying one of core's codes (`err.code`, `err.family`), delivered where the call delivers
// (a throw, or a rejection of the promise it returned), never a wasm trap (a Rust panic is a
// `RuntimeError: unreachable`), an exception thrown from a callback into the event loop, a
// promise that never settles, or unbounded growth of wasm memory.
//
// api.test.mjs checks a few errors; this adds garbage envelope bytes and text and other
// parsers' garbage (thousands of seeded cases), every truncation, envelopes and objects
// claiming huge sizes and counts (each in a child node, whose peak RSS and wasm memory are
// checked), every argument of every call replaced by values of other types and out-of-range
// numbers, byte arguments that are not bytes, oversized inputs, objects used after free(),
// overlapping async calls, and calls after `final` and after an error.
//
// Classes seen: `Error` with a core code; `TypeError` with code `invalid_parameter` for an
// argument of the wrong JS type.
import { test as nodeTest } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import zlib from 'node:zlib'

import { DECODE_CODES, Foreign, codeOfWith, assertCoreCodeSet, coreCode, envelopeAndKeyringCalls, craftedHeaderProblems, describe, envelopeCutsAndExtensions, garbageEnvelopeBytes, garbageEnvelopeText, hostileLegacyProblems, hugePartCountProblems, oversizedEnvelopeFields, oversizedKeysAndSizes, copyWithCallerLimitsProblems, sidecarBombProblems, rng } from '../../../tests/js/garbage.mjs'

import init from '../../node.mjs'

// A child run (one huge-size case, see the end of the file) registers no tests.
const CHILD = process.env.ISEC_NO_PANIC_CHILD
const test = CHILD ? () => {} : nodeTest
/** Writes a child's report and waits until it is flushed: a pipe is written asynchronously. */
const writeOut = (text) => new Promise((resolve) => process.stdout.write(text, resolve))
const isec = await init()
const FILE = fileURLToPath(import.meta.url)
const ROOT = path.resolve(path.dirname(FILE), '..', '..', '..')
const vectors = (name) => JSON.parse(readFileSync(path.join(ROOT, 'tests/vectors', name), 'utf8'))
const CODES = new Map(isec.errorCodes().map((c) => [c.code, c.family]))
const BACKENDS = ['webcrypto', 'wasm']
const F = 4096
const MIB = 1 << 20
const RSS_BOUND = 512 * MIB
const WASM_MEMORY_BOUND = 256 * MIB
// Long enough for any call on these small inputs, short enough for a test run.
const SETTLE_MS = 1500

// --- outcomes ---------------------------------------------------------------------------

// Exceptions thrown into the event loop (from a callback of the package), by whoever threw.
const uncaught = []
process.on('uncaughtException', (e) => uncaught.push(e))
process.on('unhandledRejection', (e) => uncaught.push(e))

const tick = () => new Promise((resolve) => setImmediate(resolve))

/**
 * Runs `fn` (sync or async): 'ok' or the core code it threw or rejected with. A trap, a hang,
 * an exception escaping into the event loop, or a throw without a core code is Foreign.
 */
async function outcome(fn) {
  const before = uncaught.length
  let timer
  const settled = Promise.resolve()
    .then(fn)
    .then(
      () => ({ ok: true }),
      (e) => ({ e }),
    )
  const r = await Promise.race([settled, new Promise((resolve) => (timer = setTimeout(() => resolve({ hang: true }), SETTLE_MS)))])
  clearTimeout(timer)
  await tick()
  if (uncaught.length > before) {
    const e = uncaught.splice(before)[0]
    throw new Foreign(`UNCAUGHT exception escaped into the event loop: ${e?.constructor?.name}: ${e?.message}`)
  }
  if (r.hang) throw new Foreign(`HANG: did not settle within ${SETTLE_MS} ms`)
  if (r.ok) return 'ok'
  return classify(r.e)
}

function classify(e) {
  if (e instanceof WebAssembly.RuntimeError) throw new Foreign(`wasm TRAP (a Rust panic or abort): ${e.message}`)
  return coreCode(e, CODES)
}

/** Whether a Foreign is of the crash kind (trap, hang, escape, non-Error) or only untyped. */
const isCrash = (f) => /^(wasm TRAP|HANG|UNCAUGHT)|a thrown/.test(f.message)

const codeOf = codeOfWith(outcome)

test("the code set is core's (core/src/error.rs)", () => {
  assertCoreCodeSet(ROOT, CODES)
})

// (An exception escaping into the event loop is also caught by node:test itself, which fails
// the running test with it.)
test('outcome() catches traps, hangs and untyped errors', async () => {
  const cases = [
    [() => { throw new WebAssembly.RuntimeError('unreachable') }, /TRAP/],
    [() => new Promise(() => {}), /HANG/],
    [() => { throw new Error('x') }, /without a core code/],
  ]
  for (const [fn, re] of cases) await assert.rejects(outcome(fn), (e) => e instanceof Foreign && re.test(e.message))
  assert.equal(await outcome(() => isec.Envelope.decode(new Uint8Array(0))), 'malformed_envelope')
})

// --- fixtures ---------------------------------------------------------------------------

function ringWith() {
  const r = new isec.Keyring()
  r.addKek('kek-a', Uint8Array.from(Buffer.from(vectors('keys.json').keys['kek-a'].kek, 'hex')))
  return r
}

const cat = (...parts) => new Uint8Array(Buffer.concat(parts))

function world() {
  const w = {}
  w.ring = ringWith()
  ;({ envelope: w.env, key: w.key } = w.ring.createEnvelopeSync({ frameSize: F }))
  w.pt = new Uint8Array(10240).map((_, i) => i % 256)
  w.ct = isec.encryptSync(w.key, w.pt)
  w.shape = isec.Shape.fromCiphertextLength(w.env, w.ct.length)
  ;({ envelope: w.penv, key: w.pkey } = w.ring.createEnvelopeSync({ frameSize: F, partSize: 2 * F }))
  w.pct = isec.encryptSync(w.pkey, w.pt)
  ;({ envelope: w.tenv, key: w.tkey } = w.ring.createEnvelopeSync({ frameSize: F, table: true }))
  const [t1, t3] = [isec.encryptPartSync(w.tkey, 1, false, w.pt.subarray(0, 5000)), isec.encryptPartSync(w.tkey, 3, false, w.pt.subarray(5000))]
  w.tct = cat(t1, t3)
  w.table = new isec.SegmentTable([[1, 5000, t1.subarray(0, 7)], [3, w.pt.length - 5000, t3.subarray(0, 7)]]).encode(w.tkey)
  const lv = vectors('legacy.json').tests[10] // a 5000-byte single seal
  w.lsecret = lv.legacy_secret
  w.lkid = lv.kid
  w.lmeta = isec.LegacyMetadata.fromPairs(lv.metadata)
  w.lct = Uint8Array.from(Buffer.from(lv.ciphertext, 'hex'))
  w.lobj = isec.LegacyObject.create(w.lmeta, w.lct.length)
  w.lkey = isec.LegacyKey.fromSecretString(lv.legacy_secret, w.lobj.wrappedDekB64)
  w.lptLen = lv.plaintext_len
  w.lring = new isec.Keyring()
  w.lring.addLegacySecretString(lv.kid, lv.legacy_secret)
  // A public-key recipient: a writer with the public key, a reader from a keyring file.
  ;({ privateKey: w.rpriv, publicKey: w.rpub } = isec.generateRecipient())
  w.rfile = JSON.stringify({ keys: [{ kid: 'rcp', private_key: w.rpriv, state: 'active', created: '2026-12-07' }] })
  w.rwriter = new isec.Keyring()
  w.rwriter.addPublicKey('rcp', w.rpub)
  w.rreader = isec.Keyring.fromFileText(w.rfile)
  ;({ envelope: w.renv, key: w.rkey } = w.rwriter.createEnvelopeSync({ frameSize: F }))
  return w
}

const W = world()

// --- garbage ----------------------------------------------------------------------------

const sameBytes = (a, b) => Buffer.from(a).equals(Buffer.from(b))

/** A long list as a failure message: the count, and the first 60 lines. */
const listed = (list) => `${list.slice(0, 60).join('\n')}${list.length > 60 ? `\n... and ${list.length - 60} more` : ''}`

test('garbage envelope bytes: typed errors; what decodes re-encodes to itself and stays typed', async () => {
  await garbageEnvelopeBytes({ isec, outcome, good: W.env.encode(), ring: W.ring, of: (a) => Uint8Array.from(a) })
})

test('garbage envelope text: typed errors; what decodes re-encodes to itself; classification never throws', async () => {
  await garbageEnvelopeText({ isec, outcome, good: W.env.toText(), codes: CODES })
})

test('garbage for every other parser and authenticated input, on both backends', async () => {
  const r = rng(20260103)
  const gz = zlib.gzipSync('{"v": 2, "parts": []}')
  const parsers = {
    'SegmentTable.decode': (b) => isec.SegmentTable.decode(b, W.tkey),
    'Shape.fromTable': (b) => isec.Shape.fromTable(W.tkey, b, W.tct.length),
    'LegacySidecar.parse': (b) => isec.LegacySidecar.parse(b),
    'LegacySidecar.parse(gzip)': (b) => isec.LegacySidecar.parse(new TextEncoder().encode(Buffer.from(cat(gz.subarray(0, 10), b)).toString('base64'))),
    'LegacySidecar.fromJson': (b) => isec.LegacySidecar.fromJson(b),
    'LegacyKey.open': (b) => isec.LegacyKey.open(new Uint8Array(32), Buffer.from(b).toString('base64')),
    'LegacyMetadata.fromPairs': (b) => isec.LegacyMetadata.fromPairs({ isec: Buffer.from(b).toString('latin1'), 'plaintext-size': String(b.length) }),
    parseNonce: (b) => isec.parseNonce(b.subarray(0, 12)),
    legacyDecrypt: (b) => isec.legacyDecrypt(W.lkey, W.lobj, b),
  }
  const seeds = { 'SegmentTable.decode': W.table, 'Shape.fromTable': W.table, legacyDecrypt: W.lct }
  for (const backend of BACKENDS) {
    const o = { backend }
    Object.assign(parsers, {
      [`decrypt ${backend}`]: (b) => isec.decrypt(W.key, b, o),
      [`decrypt(parts) ${backend}`]: (b) => isec.decrypt(W.pkey, b, o),
      [`decryptWithTable ${backend}`]: (b) => isec.decryptWithTable(W.tkey, W.table, b, o),
      [`Decryptor ${backend}`]: async (b) => {
        const d = new isec.Decryptor(W.key, o)
        await d.update(b)
        await d.final()
      },
    })
    Object.assign(seeds, { [`decrypt ${backend}`]: W.ct, [`decrypt(parts) ${backend}`]: W.pct, [`decryptWithTable ${backend}`]: W.tct, [`Decryptor ${backend}`]: W.ct })
  }
  for (const [name, parse] of Object.entries(parsers)) {
    const seed = seeds[name]
    for (let i = 0; i < 300; i++) {
      let raw
      if (seed && r.random() < 0.7) {
        const b = new Uint8Array(seed)
        for (let k = 1 + r.int(3); k > 0; k--) b[r.int(b.length)] ^= 1 << r.int(8)
        raw = r.random() < 0.3 ? b.subarray(0, r.int(b.length + 1)) : b
      } else raw = r.bytes(r.int(300))
      const got = await outcome(() => parse(raw))
      if (seed && !sameBytes(raw, seed)) assert.notEqual(got, 'ok', `${name} accepted ${Buffer.from(raw).toString('hex').slice(0, 80)}`)
    }
  }
})

test('garbage keyring files, key texts, HPKE-wrapped DEKs and service answers: typed errors', async () => {
  const r = rng(20261207)
  const mutate = (text) => {
    const b = Buffer.from(text, 'latin1')
    for (let k = 1 + r.int(3); k > 0; k--) b[r.int(b.length)] = r.pick([r.int(256), 0x22, 0x5c, 0x7b, 0x7d, 0x2c, 0x3a, 0x30, 0x41])
    const t = b.toString('latin1')
    return r.random() < 0.3 ? t.slice(0, r.int(t.length + 1)) : t
  }
  const texts = {
    'Keyring.fromFileText': [(t) => isec.Keyring.fromFileText(t), W.rfile],
    'Keyring.addPublicKey': [(t) => new isec.Keyring().addPublicKey('k', t), W.rpub],
    'Keyring.addPrivateKey': [(t) => new isec.Keyring().addPrivateKey('k', t), W.rpriv],
    publicKeyOf: [(t) => isec.publicKeyOf(t), W.rpriv],
  }
  for (const [name, [parse, seed]] of Object.entries(texts)) {
    for (let i = 0; i < 400; i++) {
      const t = r.random() < 0.8 ? mutate(seed) : Buffer.from(r.bytes(r.int(200))).toString('latin1')
      await outcome(() => parse(t))
    }
  }
  // The wrapped DEK and the header it is bound to, altered: never opens.
  const good = W.renv.encode()
  for (let i = 0; i < 300; i++) {
    const b = new Uint8Array(good)
    const at = r.random() < 0.7 ? b.length - 1 - r.int(80) : r.int(b.length)
    b[at] ^= 1 << r.int(8)
    const got = await outcome(() => W.rreader.openSync(isec.Envelope.decode(b)))
    assert.notEqual(got, 'ok', `opened with byte ${at} altered`)
  }
  // A service holding the private key that answers with anything but the DEK.
  const answers = [undefined, null, 1, 'dek', new Uint8Array(0), new Uint8Array(31), new Uint8Array(33), new Uint8Array(32)]
  const services = [
    ...answers.map((a) => [describe(a), () => a]),
    ['a rejection', () => Promise.reject(new Error('x'))],
    ['a throw', () => {
      throw new Error('y')
    }],
  ]
  for (const [what, service] of services) {
    const ring = new isec.Keyring()
    ring.addExternalPrivateKey('rcp', W.rpub, service)
    const got = await outcome(() => ring.open(W.renv))
    assert.ok(['external_wrapper_failed', 'commitment_mismatch'].includes(got), `${what}: ${got}`)
  }
})

// --- truncations ------------------------------------------------------------------------

test('every truncation and extension of an envelope is malformed_envelope', async () => {
  const envs = [W.env, W.penv, W.tenv, W.ring.createEnvelopeSync({ declaredSize: 123 }).envelope]
  await envelopeCutsAndExtensions({ isec, codeOf, envs, of: (a) => Uint8Array.from(a) })
})

test('every truncation of a ciphertext, segment table and legacy body, on both backends', async () => {
  const stream = new Set(['truncated', 'authentication_failed', 'bad_frame_length'])
  for (const backend of BACKENDS) {
    const o = { backend }
    for (const [key, env, ct] of [[W.key, W.env, W.ct], [W.pkey, W.penv, W.pct]]) {
      // Every length around the frame boundaries, and a stride through the rest.
      for (let n = 0; n < ct.length; n += n % (F + 28) < 40 || n % (F + 28) > F - 12 ? 1 : 97) {
        const part = ct.subarray(0, n)
        assert.ok(stream.has(await codeOf(() => isec.decrypt(key, part, o))), `${backend} ${n}`)
        const d = new isec.Decryptor(key, o)
        assert.ok(stream.has(await codeOf(async () => (await d.update(part), await d.final()))), `${backend} ${n}`)
        assert.ok(['ok', 'truncated', 'bad_frame_length'].includes(await outcome(() => isec.shapeFor(env, n))), `${n}`)
      }
    }
    for (let n = 0; n < W.tct.length; n += 37) assert.equal(await codeOf(() => isec.decryptWithTable(W.tkey, W.table, W.tct.subarray(0, n), o)), 'truncated')
  }
  for (let n = 0; n < W.table.length; n++) {
    assert.ok(['malformed_segment_table', 'authentication_failed'].includes(await codeOf(() => isec.SegmentTable.decode(W.table.subarray(0, n), W.tkey))))
  }
  for (let n = 0; n < W.lct.length; n++) {
    const got = await codeOf(() => isec.legacyDecrypt(W.lkey, W.lobj, W.lct.subarray(0, n)))
    assert.ok(['truncated', 'authentication_failed', 'malformed_legacy'].includes(got), `${n}: ${got}`)
  }
})

// --- argument types ---------------------------------------------------------------------

/** Writes `chunks` through a TransformStream; its output, or the error it failed with. */
async function drain(stream, chunks) {
  const out = []
  const reading = (async () => {
    for await (const c of stream.readable) out.push(c)
  })()
  reading.catch(() => {}) // the writer's error is the one reported
  const w = stream.writable.getWriter()
  for (const c of chunks) await w.write(c)
  await w.close()
  await reading
  return out
}

/** Every entry point with valid arguments; contexts fresh per call (an error locks them). */
function calls(w) {
  const plan = w.shape.mapRange(10, 5000)
  const fetched = w.ct.subarray(plan.ctStart, plan.ctEnd)
  const lplan = w.lobj.planRange(0, 5)
  const list = [
    ...envelopeAndKeyringCalls({ isec, w, ringWith, zeros: (n) => new Uint8Array(n), frameSize: F }),
    ['encryptSync', (k, p) => isec.encryptSync(k, p), [w.key, w.pt]],
    ['decryptSync', (k, c) => isec.decryptSync(k, c), [w.key, w.ct]],
    ['encryptPartSync', (k, n, l, p) => isec.encryptPartSync(k, n, l, p), [w.pkey, 1, false, w.pt.subarray(0, 2 * F)]],
    ['decryptWithTableSync', (k, t, c) => isec.decryptWithTableSync(k, t, c), [w.tkey, w.table, w.tct]],
    ['decryptRangeSync', (k, s, a, b, f) => isec.decryptRangeSync(k, s, a, b, f), [w.key, w.shape, 10, 5000, fetched]],
    ['shapeFor', (e, n) => isec.shapeFor(e, n), [w.env, w.ct.length]],
    ['Shape.fromCiphertextLength', (e, n) => isec.Shape.fromCiphertextLength(e, n), [w.env, w.ct.length]],
    ['Shape.forPlaintext', (e, n) => isec.Shape.forPlaintext(e, n), [w.env, 100]],
    ['Shape.fromTable', (k, t, n) => isec.Shape.fromTable(k, t, n), [w.tkey, w.table, w.tct.length]],
    ['Shape.mapRange', (a, b) => w.shape.mapRange(a, b), [10, 20]],
    ['Shape.segment', (n) => w.shape.segment(n), [0]],
    ['Shape.ctBoundaryFloor', (n) => w.shape.ctBoundaryFloor(n), [5000]],
    ['SegmentTable', (e) => new isec.SegmentTable(e), [[[1, 5, new Uint8Array(7)], [2, 7, new Uint8Array(7)]]]],
    ['SegmentTable.decode', (b, k) => isec.SegmentTable.decode(b, k), [w.table, w.tkey]],
    ['SegmentTable.encode', (k) => new isec.SegmentTable([[1, 5, new Uint8Array(7)]]).encode(k), [w.tkey]],
    ['buildNonce', (p, i, s, o) => isec.buildNonce(p, i, s, o), [new Uint8Array(7), 1, false, false]],
    ['parseNonce', (b) => isec.parseNonce(b), [new Uint8Array(12)]],
    ['classifyMetadata', (m, s) => isec.classifyMetadata(m, s), [{ isec: w.env.toText() }, false]],
    ['decideCopy', (q, r) => isec.decideCopy(q, r), [{ sourceMetadata: { isec: w.env.toText() }, sourceSize: w.ct.length, targetKid: 'kek-a' }, w.ring]],
    ['isecError', (c, m) => isec.isecError(c, m), ['truncated', 'message']],
    ['LegacyMetadata.fromPairs', (m) => isec.LegacyMetadata.fromPairs(m), [{ isec: 'A'.repeat(54) + '==', 'plaintext-size': '5' }]],
    ['LegacySidecar.parse', (b, m) => isec.LegacySidecar.parse(b, m), [new TextEncoder().encode('H4sI'), 1000]],
    ['LegacySidecar.fromJson', (b) => isec.LegacySidecar.fromJson(b), [new TextEncoder().encode('{}')]],
    ['LegacyObject.create', (m, n) => isec.LegacyObject.create(m, n), [w.lmeta, w.lct.length]],
    ['LegacyObject.planRange', (a, b) => w.lobj.planRange(a, b), [5, 10]],
    ['LegacyObject.withUploadId', (u) => w.lobj.withUploadId(u), ['upload']],
    ['LegacyKey.open', (k, b) => isec.LegacyKey.open(k, b), [new Uint8Array(32), w.lobj.wrappedDekB64]],
    ['LegacyKey.fromSecretString', (s, b) => isec.LegacyKey.fromSecretString(s, b), [w.lsecret, w.lobj.wrappedDekB64]],
    ['LegacyDecryptor', (k, o) => new isec.LegacyDecryptor(k, o), [w.lkey, w.lobj]],
    ['LegacyDecryptor.forRange', (k, o, a, b) => isec.LegacyDecryptor.forRange(k, o, a, b), [w.lkey, w.lobj, 1, 2]],
    ['LegacyDecryptor.update', (c) => new isec.LegacyDecryptor(w.lkey, w.lobj).update(c), [w.lct]],
    ['legacyDecrypt', (k, o, c) => isec.legacyDecrypt(k, o, c), [w.lkey, w.lobj, w.lct]],
    ['legacyDecryptRange', (k, o, a, b, c) => isec.legacyDecryptRange(k, o, a, b, c), [w.lkey, w.lobj, 0, 5, w.lct.subarray(lplan.ctStart, lplan.ctEnd)]],
    ['LegacyDecryptStream', (k, o, opt) => drain(new isec.LegacyDecryptStream(k, o, opt), [w.lct]), [w.lkey, w.lobj, { start: 1, end: 5 }]],
    ['toBytes', (c) => isec.toBytes(c), [w.pt]],
    ['generateRecipient', () => isec.generateRecipient(), []],
    ['publicKeyOf', (t) => isec.publicKeyOf(t), [w.rpriv]],
    ['Keyring.addPublicKey', (k, t, s) => new isec.Keyring().addPublicKey(k, t, s), ['kid', w.rpub, 'active']],
    ['Keyring.addPrivateKey', (k, t, s) => new isec.Keyring().addPrivateKey(k, t, s), ['kid', w.rpriv, 'decrypt_only']],
    ['Keyring.addExternalPrivateKey', (k, t, f, s) => new isec.Keyring().addExternalPrivateKey(k, t, f, s), ['kid', w.rpub, () => 1, 'active']],
    ['Keyring.fromFileText', (t) => isec.Keyring.fromFileText(t), [w.rfile]],
    ['Keyring.openSync(recipient)', (e) => w.rreader.openSync(e), [w.renv]],
    ['Keyring.open(public key only)', (e) => w.rwriter.open(e), [w.renv]],
  ]
  for (const backend of BACKENDS) {
    const o = { backend }
    list.push(
      [`encrypt ${backend}`, (k, p, opt) => isec.encrypt(k, p, opt), [w.key, w.pt, o]],
      [`decrypt ${backend}`, (k, c, opt) => isec.decrypt(k, c, opt), [w.key, w.ct, o]],
      [`encryptPart ${backend}`, (k, n, l, p, opt) => isec.encryptPart(k, n, l, p, opt), [w.pkey, 1, false, w.pt.subarray(0, 2 * F), o]],
      [`decryptWithTable ${backend}`, (k, t, c, opt) => isec.decryptWithTable(k, t, c, opt), [w.tkey, w.table, w.tct, o]],
      [`decryptRange ${backend}`, (k, s, a, b, f, opt) => isec.decryptRange(k, s, a, b, f, opt), [w.key, w.shape, 10, 5000, fetched, o]],
      [`fetchAndDecryptRange ${backend}`, (k, e, n, a, b, f, opt) => isec.fetchAndDecryptRange(k, e, n, a, b, f, opt), [w.key, w.env, w.ct.length, 10, 5000, (s, e) => w.ct.slice(s, e), o]],
      [`Encryptor ${backend}`, (k, opt) => new isec.Encryptor(k, opt), [w.key, o]],
      [`Encryptor.forPart ${backend}`, (k, n, l, opt) => isec.Encryptor.forPart(k, n, l, opt), [w.pkey, 2, false, o]],
      [`Encryptor.update ${backend}`, (c) => new isec.Encryptor(w.key, o).update(c), [w.pt]],
      [`Encryptor.updateParts ${backend}`, (c) => new isec.Encryptor(w.key, o).updateParts(c), [[w.pt, w.pt]]],
      [`Encryptor.updateLength ${backend}`, (n) => new isec.Encryptor(w.key, o).updateLength(n), [100]],
      [`Decryptor ${backend}`, (k, opt) => new isec.Decryptor(k, opt), [w.key, o]],
      [`Decryptor.withShape ${backend}`, (k, s, opt) => isec.Decryptor.withShape(k, s, opt), [w.key, w.shape, o]],
      [`Decryptor.forRange ${backend}`, (k, s, a, b, opt) => isec.Decryptor.forRange(k, s, a, b, opt), [w.key, w.shape, 10, 5000, o]],
      [`Decryptor.update ${backend}`, (c) => new isec.Decryptor(w.key, o).update(c), [w.ct]],
      [`Decryptor.updateParts ${backend}`, (c) => new isec.Decryptor(w.key, o).updateParts(c), [[w.ct.subarray(0, 100), w.ct.subarray(100)]]],
      [`EncryptStream ${backend}`, (k, opt) => drain(new isec.EncryptStream(k, opt), [w.pt.subarray(0, 2 * F)]), [w.pkey, { partNumber: 1, isLast: false, backend }]],
      [`DecryptStream ${backend}`, (k, opt, c) => drain(new isec.DecryptStream(k, opt), [c]), [w.key, { shape: w.shape, start: 1, end: 5, backend }, fetched]],
    )
  }
  list.push(
    ['Encryptor.updateSync', (c) => new isec.Encryptor(w.key, { backend: 'wasm' }).updateSync(c), [w.pt]],
    ['Decryptor.updateSync', (c) => new isec.Decryptor(w.key, { backend: 'wasm' }).updateSync(c), [w.ct]],
  )
  return list
}

class Other {}

/** Values of other JS types than `good` (and isec objects of other classes). */
function wrongValues(w, good) {
  const kind = (v) => (v === null ? 'null' : ArrayBuffer.isView(v) ? 'view' : Array.isArray(v) ? 'array' : typeof v === 'object' ? v.constructor?.name ?? 'object' : typeof v)
  const all = [undefined, null, 'text', 7, true, [], [1, 2], {}, { a: 1 }, () => 1, Symbol('s'), 10n, new Other(), new Date(0),
    new Uint16Array(2), new ArrayBuffer(4), new DataView(new ArrayBuffer(4)), w.env, w.key, w.shape, w.ring, w.lobj]
  return all.filter((v) => kind(v) !== kind(good))
}

const BAD_NUMBERS = [-1, -0.5, 1.5, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 64, Number.MAX_VALUE]

/**
 * Every substitution of every argument of one call. The substitutions of one argument run
 * together (so a call that never settles costs one timeout, not one per value); an exception
 * escaping into the event loop meanwhile is charged to that argument.
 */
async function substituteCall([name, fn, args], w) {
  const crashes = []
  const untyped = []
  let tried = 0
  for (let i = 0; i < args.length; i++) {
    const bads = typeof args[i] === 'number' ? [...wrongValues(w, args[i]), ...BAD_NUMBERS] : wrongValues(w, args[i])
    const before = uncaught.length
    const results = await Promise.all(
      bads.map((bad) => {
        const a = [...args]
        a[i] = bad
        tried++
        return outcomeQuiet(() => fn(...a)).then((r) => [bad, r])
      }),
    )
    await tick()
    for (const [bad, r] of results) {
      if (r.hang) crashes.push(`${name}(arg ${i} = ${describe(bad)}): HANG, never settled`)
      else if (r.error) {
        try {
          classify(r.error)
        } catch (f) {
          ;(isCrash(f) ? crashes : untyped).push(`${name}(arg ${i} = ${describe(bad)}): ${f.message}`)
        }
      }
    }
    for (const e of uncaught.splice(before)) crashes.push(`${name}(arg ${i}, one of ${bads.length} values): UNCAUGHT ${e?.constructor?.name}: ${e?.message}`)
  }
  return { tried, crashes, untyped }
}

/** Calls that run on the package's async machinery (WebCrypto, wasm-bindgen futures). */
const isAsync = (name) => / (webcrypto|wasm)$/.test(name) || ['Keyring.open', 'Keyring.createEnvelope', 'LegacyDecryptStream'].includes(name)

/**
 * The substitutions of each async call in a child node of its own, the synchronous calls
 * together in one more: a wrong argument that wedges the package's async machinery (calls
 * that never settle) must not be charged to the calls tested after it. Six children at a time.
 */
async function substitutions(w) {
  const jobs = ['*sync', ...calls(w).map(([name]) => name).filter(isAsync)]
  const total = { tried: 0, crashes: [], untyped: [] }
  let next = 0
  const worker = async () => {
    while (next < jobs.length) {
      const job = jobs[next++]
      const r = await runChild(`subs:${job}`)
      if (!r.report) {
        total.crashes.push(`${job}: the child died (${r.status}): ${r.stderr.trim().slice(-300)}`)
        continue
      }
      total.tried += r.report.tried
      total.crashes.push(...r.report.crashes)
      total.untyped.push(...r.report.untyped)
    }
  }
  await Promise.all(Array.from({ length: 6 }, worker))
  return total
}

/** Runs this file as a child on one case; its last stdout line is its JSON report. */
function runChild(spec) {
  const env = { ...process.env, ISEC_NO_PANIC_CHILD: spec }
  delete env.NODE_TEST_CONTEXT
  delete env.NODE_OPTIONS
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [FILE], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000)
    child.on('close', (status, signal) => {
      clearTimeout(timer)
      let report
      try {
        report = JSON.parse(out.trim().split('\n').pop())
      } catch {
        report = undefined
      }
      resolve({ status: status ?? signal, report: status === 0 ? report : undefined, stderr: err })
    })
  })
}

/** `fn`'s settlement without classifying: { ok } / { error } / { hang }. */
async function outcomeQuiet(fn) {
  let timer
  const r = await Promise.race([
    Promise.resolve().then(fn).then(() => ({ ok: true }), (error) => ({ error })),
    new Promise((resolve) => (timer = setTimeout(() => resolve({ hang: true }), SETTLE_MS))),
  ])
  clearTimeout(timer)
  return r
}

test('valid calls succeed or reject typed', async () => {
  for (const [name, fn, args] of calls(W)) await outcome(() => fn(...args)).catch((e) => assert.fail(`${name}: ${e.message}`))
})

let subs
const SUBS = () => (subs ??= substitutions(W))

test('wrong argument types and out-of-range numbers: no trap, no hang, nothing escapes into the event loop', async () => {
  const { tried, crashes } = await SUBS()
  assert.ok(tried > 1500, `${tried}`)
  assert.equal(crashes.length, 0, `${crashes.length} calls crashed, hung or threw into the event loop:\n${listed(crashes)}`)
})

test('wrong argument types and out-of-range numbers: every error carries a core code (TypeError + invalid_parameter)', async () => {
  const untyped = [...(await SUBS()).untyped]
  // wasm-bindgen's own refusals: objects used after free(), and constructors not exported.
  const freed = W.ring.createEnvelopeSync().key
  freed.free()
  for (const [name, fn] of [
    ['encryptSync with a freed key', () => isec.encryptSync(freed, W.pt)],
    ['encrypt with a freed key', () => isec.encrypt(freed, W.pt)],
    ['new Envelope() then toText()', () => new isec.Envelope().toText()],
  ]) {
    try {
      await outcome(fn)
    } catch (e) {
      untyped.push(`${name}: ${e.message}`)
    }
  }
  assert.equal(untyped.length, 0, `${untyped.length} errors without a core code:\n${listed(untyped)}`)
})

/** Encrypts values that are not bytes; lists the calls that did not refuse them. */
async function nonBytes() {
  // Encrypting a string, a Uint16Array or an ArrayBuffer must not silently encrypt other
  // bytes (zeros, the low byte of each element, nothing): the package answers
  // invalid_parameter, or encrypts exactly the bytes the value holds.
  const values = [['"abc"', 'abc'], ['an ArrayBuffer of 4', new Uint8Array([1, 2, 3, 4]).buffer], ['Uint16Array [1, 256, 65535]', new Uint16Array([1, 256, 65535])],
    ['{ length: 3 }', { length: 3 }], ['[1, "x", 300, -1, 2.7]', [1, 'x', 300, -1, 2.7]], ['a DataView', new DataView(new Uint8Array([9, 9]).buffer)], ['{}', {}]]
  const wrong = []
  for (const [label, v] of values) {
    const bytesOf = ArrayBuffer.isView(v) ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : v instanceof ArrayBuffer ? new Uint8Array(v) : null
    for (const [name, enc] of [
      ['encryptSync', () => isec.encryptSync(W.key, v)],
      ['encrypt wasm', () => isec.encrypt(W.key, v, { backend: 'wasm' })],
      ['encrypt webcrypto', () => isec.encrypt(W.key, v, { backend: 'webcrypto' })],
      ['encryptPartSync', () => isec.encryptPartSync(W.pkey, 1, true, v)],
    ]) {
      let ct
      let got
      try {
        got = await outcome(async () => (ct = await enc()))
      } catch (e) {
        wrong.push(`${name}(${label}): ${e.message}`)
        continue
      }
      if (got !== 'ok') {
        if (got !== 'invalid_parameter') wrong.push(`${name}(${label}): ${got}, not invalid_parameter`)
        continue
      }
      const key = name === 'encryptPartSync' ? W.pkey : W.key
      const pt = isec.decryptSync(key, ct)
      if (!bytesOf || !sameBytes(pt, bytesOf)) wrong.push(`${name}(${label}) encrypted [${Array.from(pt).join(', ')}]`)
    }
  }
  return wrong
}

test('byte arguments that are not bytes are refused, never read as something else', async () => {
  // In a child node: a refusal that throws into the event loop may wedge later async calls.
  const r = await runChild('bytes')
  assert.ok(r.report, `the child died (${r.status}): ${r.stderr.trim().slice(-800)}`)
  assert.deepEqual(r.report, [], `${r.report.length} calls took a non-byte value as other bytes:\n${r.report.join('\n')}`)
})

// --- oversized inputs -------------------------------------------------------------------

test('oversized inputs: kids, keys, frame and part sizes, wrapped keys, parser inputs', async () => {
  await oversizedKeysAndSizes({ isec, codeOf, outcome, ring: W.ring, env: W.env, zeros: (n) => new Uint8Array(n), frameSize: F })
  await oversizedEnvelopeFields({ isec, outcome, env: W.env, of: (a) => Uint8Array.from(a) })
  for (const text of ['A'.repeat(465), 'A'.repeat(MIB)]) assert.equal(await codeOf(() => isec.Envelope.decodeText(text)), 'malformed_envelope')
  assert.ok(DECODE_CODES.has(await codeOf(() => isec.Envelope.decode(new Uint8Array(349)))))
  assert.equal(await codeOf(() => isec.parseNonce(new Uint8Array(13))), 'invalid_parameter')
  assert.equal(await codeOf(() => isec.buildNonce(new Uint8Array(8), 0, false, false)), 'invalid_parameter')
  assert.equal(await codeOf(() => new isec.SegmentTable(Array.from({ length: 10_001 }, (_, i) => [i + 1, 1, new Uint8Array(7)]))), 'malformed_segment_table')
  assert.ok(['malformed_segment_table', 'authentication_failed'].includes(await codeOf(() => isec.SegmentTable.decode(new Uint8Array(MIB), W.tkey))))
  assert.ok(['sidecar_too_large', 'malformed_legacy'].includes(await codeOf(() => isec.LegacySidecar.parse(new Uint8Array(17 * MIB).fill(65)))))
  const big = { isec: 'A'.repeat(MIB), 'isec-kid': 'k'.repeat(65536), ['x'.repeat(1000)]: 'y' }
  assert.equal(isec.classifyMetadata(big).format, 'unreadable')
  assert.ok(['ok', 'malformed_legacy'].includes(await outcome(() => isec.LegacyMetadata.fromPairs(big))))
  assert.equal(await outcome(() => isec.LegacyKey.fromSecretString('s'.repeat(MIB), W.lobj.wrappedDekB64)), 'unwrap_failed')
  assert.ok(isec.wasmMemoryBytes() < WASM_MEMORY_BOUND, `wasm memory ${isec.wasmMemoryBytes() / MIB} MiB`)
})

// --- state ------------------------------------------------------------------------------

test('contexts refuse every call after final and after an error; one call at a time', async () => {
  const bad = new Uint8Array(W.ct)
  bad[50] ^= 1
  for (const backend of BACKENDS) {
    const o = { backend }
    const sync = backend === 'wasm'
    const e = new isec.Encryptor(W.key, o)
    await e.update(W.pt)
    await e.final()
    const eCalls = [() => e.update(new Uint8Array(1)), () => e.updateParts(new Uint8Array(1)), () => e.final(), () => e.finalParts()]
    if (sync) eCalls.push(() => e.updateSync(new Uint8Array(1)), () => e.finalSync())
    for (const call of eCalls) assert.equal(await codeOf(call), 'invalid_state', backend)
    for (const make of [() => new isec.Decryptor(W.key, o), () => isec.Decryptor.withShape(W.key, W.shape, o)]) {
      const fails = [(x) => x.update(bad), (x) => x.updateParts([bad.subarray(0, 7), bad.subarray(7)])]
      if (sync) fails.push((x) => x.updateSync(bad))
      for (const fail of fails) {
        const x = make()
        assert.equal(await codeOf(() => fail(x)), 'authentication_failed', backend)
        const after = [() => x.update(W.ct), () => x.update(new Uint8Array(0)), () => x.updateParts(W.ct), () => x.final(), () => x.finalParts()]
        if (sync) after.push(() => x.updateSync(W.ct), () => x.finalSync())
        for (const call of after) assert.equal(await codeOf(call), 'invalid_state', backend)
      }
    }
    const d = new isec.Decryptor(W.key, o)
    await d.update(W.ct)
    await d.final()
    for (const call of [() => d.update(W.ct), () => d.final()]) assert.equal(await codeOf(call), 'invalid_state', backend)
    const r = isec.Decryptor.forRange(W.key, W.shape, 0, 10, o)
    assert.ok(['trailing_data', 'invalid_parameter'].includes(await codeOf(async () => (await r.update(W.ct), await r.final()))), backend)
    assert.equal(await codeOf(() => r.update(new Uint8Array(1))), 'invalid_state', backend)
    // One call at a time: on WebCrypto a second update while one is in flight is refused; the
    // wasm backend runs each call to its end before returning, so calls apply in call order
    // (here: the object fed twice, which the second call reports).
    const c = new isec.Decryptor(W.key, o)
    const first = c.update(W.ct)
    first.catch(() => {})
    const second = await outcome(() => c.update(W.ct))
    assert.equal(await outcome(() => first), 'ok', backend)
    if (sync) assert.notEqual(second, 'ok', backend)
    else assert.equal(second, 'invalid_state', backend)
    // Streams error with the typed code.
    assert.equal(await codeOf(() => drain(new isec.DecryptStream(W.key, o), [bad.subarray(0, 5000), bad.subarray(5000)])), 'authentication_failed', backend)
  }
  const ld = new isec.LegacyDecryptor(W.lkey, W.lobj)
  const lbad = new Uint8Array(W.lct)
  lbad[lbad.length - 1] ^= 1
  assert.equal(await codeOf(() => (ld.update(lbad), ld.final())), 'authentication_failed')
  assert.equal(await codeOf(() => ld.update(W.lct)), 'invalid_state')
  assert.equal(await codeOf(() => ld.final()), 'invalid_state')
})

test('an encryptor refuses every call after an error (SPEC.md §9: invalid_state is a call after an error)', async () => {
  // A part encryptor given more than its part: the error, then nothing more from it. The
  // WebCrypto backend locks the context here; the wasm backend answers the next update.
  for (const backend of BACKENDS) {
    const ep = isec.Encryptor.forPart(W.pkey, 1, false, { backend })
    assert.equal(await codeOf(() => ep.update(new Uint8Array(2 * F + 1))), 'invalid_parameter', backend)
    assert.equal(await codeOf(() => ep.update(new Uint8Array(F + 1))), 'invalid_state', backend)
    assert.equal(await codeOf(() => ep.final()), 'invalid_state', backend)
  }
})

// --- huge sizes and counts, in a child process ------------------------------------------

async function hugeDeclaredSize() {
  const problems = []
  const { envelope: env, key } = ringWith().createEnvelopeSync({ frameSize: F, declaredSize: 2 ** 44 })
  const shape = isec.Shape.forPlaintext(env, 2 ** 44)
  if (shape.frameCount !== 2 ** 32) problems.push(`frameCount ${shape.frameCount}`)
  if (env.inspect(shape.ciphertextLength).plaintextLength !== 2 ** 44) problems.push('inspect')
  for (const backend of BACKENDS) {
    const o = { backend }
    for (const [a, b] of [[0, 10], [2 ** 44 - 5, 2 ** 44], [2 ** 43 - 3, 2 ** 43 + 3]]) {
      const plan = shape.mapRange(a, b)
      const got = await outcome(() => isec.decryptRange(key, shape, a, b, new Uint8Array(plan.ctEnd - plan.ctStart), o))
      if (got !== 'authentication_failed') problems.push(`${backend} range ${a}..${b} of garbage: ${got}`)
    }
    const d = new isec.Decryptor(key, o)
    const got = await outcome(async () => { for (let i = 0; i < 8; i++) await d.update(new Uint8Array(MIB)) })
    if (got !== 'authentication_failed') problems.push(`${backend} stream of garbage: ${got}`)
    const e = new isec.Encryptor(key, o)
    await e.update(new Uint8Array(MIB))
    if ((await outcome(() => e.final())) === 'ok') problems.push(`${backend}: 1 MiB finished under a declared size of 16 TiB`)
  }
  for (const n of [shape.ciphertextLength + 1, shape.ciphertextLength - 1, 2 ** 53]) {
    if ((await outcome(() => isec.shapeFor(env, n))) === 'ok') problems.push(`shape of ${n} bytes accepted`)
  }
  return problems
}

async function craftedHeaders() {
  const ring = ringWith()
  const problems = await craftedHeaderProblems({ isec, ring, outcome, of: (b) => new Uint8Array(b), frameSize: F })
  const { key } = ring.createEnvelopeSync({ frameSize: 2 ** 23, partSize: 2 ** 40 })
  for (const backend of BACKENDS) {
    for (const n of [1, 10_000, 10_001]) for (const last of [true, false]) await outcome(() => isec.Encryptor.forPart(key, n, last, { backend }).update(new Uint8Array(1)))
    const d = new isec.Decryptor(key, { backend })
    const got = await outcome(async () => { for (let i = 0; i < 12; i++) await d.update(new Uint8Array(MIB)) })
    if (got !== 'authentication_failed') problems.push(`${backend}, 8 MiB frames, garbage: ${got}`)
  }
  return problems
}

async function hugePartCounts() {
  return hugePartCountProblems({ isec, ring: ringWith(), outcome, zeros: (n) => new Uint8Array(n), frameSize: F, copyCodes: ['limit_exceeded', 'invalid_parameter'] })
}

async function hostileLegacySizes() {
  const problems = await hostileLegacyProblems({
    isec,
    outcome,
    legacy: W,
    of: (b) => new Uint8Array(b),
    legacyObject: (meta, sc, n) => (sc ? isec.LegacyObject.withSidecar(meta, sc, n) : isec.LegacyObject.create(meta, n)),
  })
  const bomb = new TextEncoder().encode(zlib.gzipSync(Buffer.alloc(64 * MIB, 32), { level: 9 }).toString('base64'))
  problems.push(...(await sidecarBombProblems({ isec, outcome, bomb })))
  return problems
}

const copyWithCallerLimits = () => copyWithCallerLimitsProblems({ isec, outcome })

const ISOLATED = { hugeDeclaredSize, craftedHeaders, hugePartCounts, hostileLegacySizes, copyWithCallerLimits }

if (CHILD?.startsWith('subs:')) {
  const name = CHILD.slice(5)
  const todo = calls(W).filter(([n]) => (name === '*sync' ? !isAsync(n) : n === name))
  const total = { tried: 0, crashes: [], untyped: [] }
  for (const call of todo) {
    const r = await substituteCall(call, W)
    total.tried += r.tried
    total.crashes.push(...r.crashes)
    total.untyped.push(...r.untyped)
  }
  await writeOut(`${JSON.stringify(total)}\n`)
  process.exit(0)
}

if (CHILD === 'bytes') {
  await writeOut(`${JSON.stringify(await nonBytes())}\n`)
  process.exit(0)
}

if (CHILD) {
  let problems
  try {
    problems = await ISOLATED[CHILD]()
  } catch (e) {
    problems = [String(e.stack ?? e)]
  }
  // VmHWM: the peak RSS of this process image (ru_maxrss would carry the forking parent's).
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))
  await writeOut(`${JSON.stringify({ problems, maxRss: Number(hwm[1]) * 1024, wasmMemory: isec.wasmMemoryBytes() })}\n`)
  process.exit(0)
}

for (const name of Object.keys(ISOLATED)) {
  test(`huge sizes and counts in a child node: ${name}`, { skip: process.platform !== 'linux' && '/proc/self/status' }, async () => {
    // In a child: a trap may leave the instance unusable. Its wasm memory (4 GiB at most,
    // never returned) and peak RSS are checked; no address-space limit, since V8 reserves
    // guard regions for wasm memories.
    const p = await runChild(name)
    assert.ok(p.report, `${name}: child died (${p.status}): ${p.stderr.trim().slice(-800)}`)
    const report = p.report
    console.log(`${name}: peak RSS ${(report.maxRss / MIB).toFixed(0)} MiB, wasm memory ${(report.wasmMemory / MIB).toFixed(0)} MiB`)
    assert.deepEqual(report.problems, [])
    assert.ok(report.maxRss < RSS_BOUND, `${name}: peak RSS ${(report.maxRss / MIB).toFixed(0)} MiB`)
    assert.ok(report.wasmMemory < WASM_MEMORY_BOUND, `${name}: wasm memory ${(report.wasmMemory / MIB).toFixed(0)} MiB`)
  })
}
