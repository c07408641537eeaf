// Seeded garbage and the checks over it that the Node addon's and the browser package's
// no-panic tests share (bindings-node/test/no-panic.test.mjs, bindings-wasm/test/node/
// no-panic.test.mjs): both packages wrap the same core, so the same garbage must meet the
// same typed errors. Each test passes its package, its fixtures and its `outcome` (how it
// runs a call and names the core code it ended with); the bytes type is the package's own.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'

/** The codes an envelope decoder may refuse garbage with. */
export const DECODE_CODES = new Set(['malformed_envelope', 'unsupported_version', 'unsupported_suite', 'invalid_frame_size', 'limit_exceeded'])

/**
 * The package's code set (`codes`: code to family) is the one core defines, read from
 * core/src/error.rs under `root`.
 */
export function assertCoreCodeSet(root, codes) {
  const src = readFileSync(path.join(root, 'core/src/error.rs'), 'utf8')
  const body = src.split('pub const fn code(&self)')[1].split('pub const fn family')[0]
  const core = new Set([...body.matchAll(/=> "([a-z_]+)"/g)].map((m) => m[1]))
  assert.ok(core.size >= 26)
  assert.deepEqual(new Set(codes.keys()), core)
}

/**
 * xorshift64*, seeded: the same garbage on every run. `of` turns an array of byte values
 * into the package's bytes type (Buffer for the addon, Uint8Array for the browser package).
 */
export function rng(seed, of = (a) => Uint8Array.from(a)) {
  let s = BigInt(seed) | 1n
  const next = () => {
    s ^= s >> 12n
    s ^= (s << 25n) & 0xffffffffffffffffn
    s ^= s >> 27n
    return Number(((s * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn) >> 11n) / 2 ** 53
  }
  const int = (n) => Math.floor(next() * n)
  return { int, random: next, of, bytes: (n) => of(Array.from({ length: n }, () => int(256))), pick: (a) => a[int(a.length)] }
}

const sameBytes = (a, b) => Buffer.from(a).equals(Buffer.from(b))

/** An envelope built field by field from likely and unlikely values, sometimes cut or extended. */
function structuredEnvelope(r) {
  const kid = r.of(Array.from({ length: r.int(70) }, () => r.pick([...Buffer.from('abcz-09 '), 0, 0x7f, 0xff])))
  const wrappedLen = r.pick([40, 40, 0, 1, 200, 201, 255, r.int(256)])
  const u32 = Buffer.alloc(4)
  u32.writeUInt32BE(r.pick([0, 1, 2, 0xffffffff, r.int(2 ** 32)]))
  const u64 = Buffer.alloc(8)
  u64.writeBigUInt64BE(r.pick([0n, 1n, 1n << 44n, (1n << 44n) + 1n, (1n << 64n) - 1n, BigInt(r.int(2 ** 52))]))
  let b = Buffer.concat([
    Buffer.from([r.pick([1, 1, 1, 0, 2, 255]), r.pick([1, 1, 1, 0, 2]), r.pick([12, 16, 23, 11, 24, 0, 255, r.int(256)]), r.pick([0, 1, 2, 3, 255])]),
    u32,
    Buffer.from([r.pick([0, 1, 1, 2])]),
    u64,
    r.bytes(64),
    Buffer.from([r.random() < 0.8 ? kid.length : r.int(256)]),
    kid,
    Buffer.from([r.pick([1, 1, 2, 0, 3]), wrappedLen]),
    r.bytes(wrappedLen),
  ])
  if (r.random() < 0.2) b = b.subarray(0, r.int(b.length + 1))
  if (r.random() < 0.1) b = Buffer.concat([b, r.bytes(1 + r.int(20))])
  return r.of(b)
}

/**
 * Garbage envelope bytes (random, built field by field, edits of `good`): typed errors; what
 * decodes re-encodes to itself, and what follows from it (inspection, shapes, opening with
 * `ring`) stays typed. `of` makes the package's bytes type from byte values.
 */
export async function garbageEnvelopeBytes({ isec, outcome, good, ring, of, seed = 20260101 }) {
  const r = rng(seed, of)
  const MIB = 1 << 20
  let accepted = 0
  for (let i = 0; i < 6000; i++) {
    let raw
    if (i % 3 === 0) raw = r.bytes(r.int(400))
    else if (i % 3 === 1) raw = structuredEnvelope(r)
    else {
      const b = [...good]
      for (let k = 1 + r.int(5); k > 0; k--) {
        const at = r.int(b.length + 1)
        const op = r.int(3)
        if (op === 0 && at < b.length) b[at] = r.int(256)
        else if (op === 1) b.splice(at, 0, ...r.bytes(1 + r.int(3)))
        else b.splice(at, 1 + r.int(3))
      }
      raw = r.of(b)
    }
    const got = await outcome(() => isec.Envelope.decode(raw))
    if (got !== 'ok') {
      assert.ok(DECODE_CODES.has(got), `${Buffer.from(raw).toString('hex')}: ${got}`)
      continue
    }
    accepted++
    const env = isec.Envelope.decode(raw)
    assert.ok(sameBytes(env.encode(), raw), 'accepted envelope does not re-encode to its input')
    assert.ok(sameBytes(isec.Envelope.decodeText(env.toText()).encode(), raw))
    for (const n of [0, 28, r.int(MIB), r.int(2 ** 52), 2 ** 53, Number.MAX_VALUE]) {
      await outcome(() => env.inspect(n))
      await outcome(() => isec.shapeFor(env, n).mapRange(r.int(2 ** 52), r.int(2 ** 52)))
    }
    await outcome(() => ring.openSync(env))
  }
  assert.ok(accepted > 50, `only ${accepted} garbage envelopes decoded: the generator does not reach past decoding`)
}

/**
 * Garbage envelope text (random over several alphabets, edits of `good`): typed errors; what
 * decodes re-encodes to itself; classifying it as metadata never throws.
 */
export async function garbageEnvelopeText({ isec, outcome, good, codes, seed = 20260102 }) {
  const r = rng(seed)
  const b64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const alphabets = [b64, b64 + '=+/', Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join(''), 'é€\u0000\ud800\u{1f600}\t\n A']
  for (let i = 0; i < 6000; i++) {
    let text
    if (i % 4 === 3) {
      const t = [...good]
      for (let k = 1 + r.int(3); k > 0; k--) t[r.int(t.length)] = r.pick([...alphabets[i % 3]])
      text = t.join('')
    } else {
      const a = [...alphabets[i % 4]]
      text = Array.from({ length: r.pick([r.int(500), r.int(4000)]) }, () => r.pick(a)).join('')
    }
    const got = await outcome(() => isec.Envelope.decodeText(text))
    if (got === 'ok') assert.equal(isec.Envelope.decodeText(text).toText(), text)
    else assert.ok(DECODE_CODES.has(got), `${text.slice(0, 60)}: ${got}`)
    const c = isec.classifyMetadata({ isec: text, 'isec-kid': text.slice(0, 10) })
    assert.ok(['isec', 'legacy', 'unreadable', 'plaintext'].includes(c.format))
    if (c.format === 'unreadable') assert.ok(codes.has(c.error), c.error)
  }
}

/**
 * Envelopes patched to claim huge declared sizes or part geometries: each decodes (or is
 * refused as too large), inspection and shapes of it stay typed, and `ring` refuses to open
 * it (the header is committed). `of` copies bytes into the package's bytes type. Returns
 * what went wrong, one line each.
 */
export async function craftedHeaderProblems({ isec, ring, outcome, of, frameSize }) {
  const problems = []
  const raw = ring.createEnvelopeSync({ frameSize }).envelope.encode()
  const u64 = (v) => { const b = Buffer.alloc(9); b[0] = 1; b.writeBigUInt64BE(v, 1); return b }
  const variants = {
    'declared 2**64-1': [8, u64((1n << 64n) - 1n)],
    'declared 2**44': [8, u64(1n << 44n)],
    'parts of 2**32-1 frames of 8 MiB': [2, Buffer.from([0x17, 1, 0xff, 0xff, 0xff, 0xff])],
    'parts of 1 frame of 4 KiB': [2, Buffer.from([0x0c, 1, 0, 0, 0, 1])],
    'table, 8 MiB frames': [2, Buffer.from([0x17, 2, 0, 0, 0, 0])],
  }
  for (const [name, [at, patch]] of Object.entries(variants)) {
    const b = of(raw)
    b.set(patch, at)
    const got = await outcome(() => isec.Envelope.decode(b))
    if (got !== 'ok') {
      if (!(name === 'declared 2**64-1' && got === 'limit_exceeded')) problems.push(`${name}: decode ${got}`)
      continue
    }
    const env = isec.Envelope.decode(b)
    for (const n of [0, 28, 2 ** 40, 2 ** 53, Number.MAX_SAFE_INTEGER]) {
      await outcome(() => env.inspect(n))
      await outcome(() => isec.shapeFor(env, n).mapRange(0, Infinity))
    }
    if ((await outcome(() => ring.openSync(env))) !== 'commitment_mismatch') problems.push(`${name}: opened despite the changed header`)
  }
  return problems
}

/**
 * Part and segment counts at and past the 10,000 limit: shapes, part numbers, segment tables
 * and copy decisions count right or refuse with the right code. `zeros(n)` makes n zero
 * bytes of the package's type; `copyCodes` are the codes the package may refuse a plaintext
 * copy of 2**53 bytes with. Returns what went wrong, one line each.
 */
export async function hugePartCountProblems({ isec, ring, outcome, zeros, frameSize: F, copyCodes = ['limit_exceeded'] }) {
  const problems = []
  const { envelope: env, key } = ring.createEnvelopeSync({ frameSize: F, partSize: F })
  const partCt = F + 28
  if (isec.shapeFor(env, 10_000 * partCt).segmentCount !== 10_000) problems.push('10000 parts')
  if ((await outcome(() => isec.shapeFor(env, 10_001 * partCt))) !== 'limit_exceeded') problems.push('10001 parts accepted')
  for (const n of [0, 10_001, 2 ** 32 - 1]) {
    if ((await outcome(() => isec.Encryptor.forPart(key, n, true))) !== 'invalid_parameter') problems.push(`part number ${n} accepted`)
  }
  const { key: tkey } = ring.createEnvelopeSync({ frameSize: F, table: true })
  const enc = new isec.SegmentTable(Array.from({ length: 10_000 }, (_, i) => [i + 1, 2 ** 30, zeros(7)])).encode(tkey)
  const got = await outcome(() => isec.Shape.fromTable(tkey, enc, 10))
  if (got !== 'truncated') problems.push(`10000 x 1 GiB table on 10 bytes: ${got}`)
  if ((await outcome(() => new isec.SegmentTable(Array.from({ length: 10_000 }, (_, i) => [i + 1, 2 ** 32, zeros(7)])))) !== 'malformed_segment_table') problems.push('table over 2**44 accepted')
  for (const size of [10_000 * partCt, 2 ** 44 + 1, 2 ** 53]) await outcome(() => isec.decideCopy({ sourceMetadata: { isec: env.toText() }, sourceSize: size }, ring))
  const plan = await outcome(() => isec.decideCopy({ sourceMetadata: {}, sourceSize: 2 ** 53 }))
  if (!copyCodes.includes(plan)) problems.push(`plaintext copy of 2**53 bytes: ${plan}`)
  return problems
}

/** How a substituted or returned value reads in a failure message. */
export function describe(v) {
  if (typeof v === 'symbol' || typeof v === 'bigint') return `${typeof v} ${String(v)}`
  if (typeof v === 'function') return 'a function'
  if (v && typeof v === 'object') return `a ${v.constructor?.name ?? 'object'}`
  return JSON.stringify(v) ?? String(v)
}

/**
 * Every truncation of each envelope's bytes and text, and bytes or text appended to it, is
 * malformed_envelope. `of` makes the package's bytes type from byte values.
 */
export async function envelopeCutsAndExtensions({ isec, codeOf, envs, of }) {
  for (const env of envs) {
    const raw = env.encode()
    const text = env.toText()
    for (let n = 0; n < raw.length; n++) assert.equal(await codeOf(() => isec.Envelope.decode(raw.subarray(0, n))), 'malformed_envelope', `${n}`)
    for (let n = 0; n < text.length; n++) assert.equal(await codeOf(() => isec.Envelope.decodeText(text.slice(0, n))), 'malformed_envelope', `${n}`)
    for (const extra of [[0], [1, 1, 1, 1, 1, 1, 1], new Array(300).fill(0)]) {
      assert.equal(await codeOf(() => isec.Envelope.decode(of([...raw, ...extra]))), 'malformed_envelope')
    }
    for (const extra of ['A', 'AA', '=', 'AAAA', ' ']) assert.equal(await codeOf(() => isec.Envelope.decodeText(text + extra)), 'malformed_envelope')
  }
}

/**
 * Kids, KEKs, frame, part and declared sizes over their limits, and external wrappers that
 * return oversized, empty or mistyped keys, throw or reject: each refused with its code.
 * `ring` holds kek-a and made `env`; `zeros(n)` makes n zero bytes of the package's type.
 */
export async function oversizedKeysAndSizes({ isec, codeOf, outcome, ring, env, zeros, frameSize: F }) {
  const MIB = 1 << 20
  assert.equal(await codeOf(() => new isec.Keyring().addKek('k'.repeat(65), zeros(32))), 'invalid_parameter')
  assert.equal(await outcome(() => new isec.Keyring().addKek('k'.repeat(64), zeros(32))), 'ok')
  for (const kid of ['', 'a b', 'é', 'a\u0000', '\u007f']) assert.equal(await codeOf(() => new isec.Keyring().addKek(kid, zeros(32))), 'invalid_parameter', kid)
  for (const n of [31, 33, MIB]) assert.equal(await codeOf(() => new isec.Keyring().addKek('k', zeros(n))), 'invalid_parameter')
  assert.ok(['invalid_parameter', 'unknown_kid'].includes(await codeOf(() => ring.rewrapToSync(env, 'x'.repeat(65)))))
  for (const fs of [0, 1, 2048, 3000, 4095, 4097, 2 ** 24, 2 ** 40]) {
    assert.equal(await codeOf(() => ring.createEnvelopeSync({ frameSize: fs })), 'invalid_frame_size', `${fs}`)
  }
  for (const ps of [0, 1, F + 1, 2 ** 32 * F]) {
    assert.ok(['invalid_parameter', 'limit_exceeded'].includes(await codeOf(() => ring.createEnvelopeSync({ frameSize: F, partSize: ps }))), `${ps}`)
  }
  assert.equal(await codeOf(() => ring.createEnvelopeSync({ declaredSize: 2 ** 44 + 1 })), 'limit_exceeded')
  assert.equal(await codeOf(() => ring.createEnvelopeSync({ partSize: 16 * F, table: true })), 'invalid_parameter')
  // External wrappers that misbehave: oversized, empty, wrong type, throwing, rejecting.
  for (const out of [zeros(201), zeros(MIB), zeros(0), 'text', null, 5, new Uint16Array(20)]) {
    for (const asAsync of [false, true]) {
      const r = new isec.Keyring()
      r.addExternal('kms', { wrap: () => (asAsync ? Promise.resolve(out) : out), unwrap: () => out })
      const got = await codeOf(() => r.createEnvelope())
      assert.ok(['external_wrapper_failed', 'invalid_parameter', 'limit_exceeded'].includes(got), `${describe(out)}: ${got}`)
    }
  }
  for (const thrower of [() => { throw new Error('down') }, () => Promise.reject(new Error('down')), () => { throw 'str' }]) {
    const r = new isec.Keyring()
    r.addExternal('kms', { wrap: thrower, unwrap: thrower })
    assert.equal(await codeOf(() => r.createEnvelope()), 'external_wrapper_failed')
  }
  assert.equal(await codeOf(() => new isec.Keyring().addExternal('k'.repeat(65), { wrap() {}, unwrap() {} })), 'invalid_parameter')
}

/**
 * Envelopes whose kid or wrapped DEK are over their limits (SPEC.md §3.1), by field, built on
 * the first 81 bytes of `env` (a kek-a envelope). `of` makes the package's bytes type.
 */
export async function oversizedEnvelopeFields({ isec, outcome, env, of }) {
  const head = [...env.encode().subarray(0, 81)]
  const field = (...parts) => of([...head, ...parts.flatMap((p) => [...(typeof p === 'string' ? Buffer.from(p) : p)])])
  const fields = {
    'kid of 65': [field([65], 'k'.repeat(65), [1, 40], new Array(40).fill(0)), 'malformed_envelope'],
    'kid of 64': [field([64], 'k'.repeat(64), [1, 40], new Array(40).fill(0)), 'ok'],
    'external wrapped DEK of 201': [field([5], 'kek-a', [2, 201], new Array(201).fill(0)), 'malformed_envelope'],
    'external wrapped DEK of 200': [field([5], 'kek-a', [2, 200], new Array(200).fill(0)), 'ok'],
    'AES-KWP wrapped DEK of 41': [field([5], 'kek-a', [1, 41], new Array(41).fill(0)), 'malformed_envelope'],
    'wrapped length past the end': [field([5], 'kek-a', [2, 255], new Array(10).fill(0)), 'malformed_envelope'],
  }
  for (const [name, [bytes, want]] of Object.entries(fields)) assert.equal(await outcome(() => isec.Envelope.decode(bytes)), want, name)
}

/**
 * Legacy objects declaring huge sizes (parts of 4 TiB, a seal of 1 TiB as a sidecar part and
 * as a single PUT): ranges fetch one seal, garbage is refused as inauthentic, and no call
 * buffers a seal whole. `legacyObject(meta, sidecar, ciphertextLength)` is the package's
 * constructor (sidecar null: a single PUT); `sync` suffixes the one-shot decrypt calls' names
 * ('Sync' in the addon); `eachHugeSeal(name, object)` adds the package's own checks of the
 * 1 TiB seals. `legacy` holds the world's legacy object (`lobj`) and key (`lkey`).
 */
export async function hostileLegacyProblems({ isec, outcome, legacy: { lobj, lkey }, of, legacyObject, sync = '', eachHugeSeal = async () => [] }) {
  const MIB = 1 << 20
  const problems = []
  const zeros = (n) => of(new Uint8Array(n))
  const noMeta = () => isec.LegacyMetadata.fromPairs({})
  // A real wrapped DEK, so the key opens and frames are read.
  const sidecar = (doc) => isec.LegacySidecar.fromJson(of(new TextEncoder().encode(JSON.stringify({ v: 2, dek: lobj.wrappedDekB64, ...doc }))))
  // Three parts of 4 TiB: 1.5 million seals, read at a range in the middle and streamed.
  const ps = 2 ** 42
  const cs = ps + 28 * Math.ceil(ps / (8 * MIB))
  const obj = legacyObject(noMeta(), sidecar({ pc: 3, ts: 3 * ps, parts: [1, 2, 3].map((pn) => ({ pn, ps, cs })) }), 3 * cs)
  if (obj.sealCount !== 3 * Math.ceil(ps / (8 * MIB))) problems.push(`seal count ${obj.sealCount}`)
  const [a, b] = [2 ** 43, 2 ** 43 + 10]
  const plan = obj.planRange(a, b)
  if (plan.ctEnd - plan.ctStart > 8 * MIB + 28) problems.push(`a 10-byte range fetches ${plan.ctEnd - plan.ctStart} bytes`)
  const fetched = zeros(plan.ctEnd - plan.ctStart)
  for (const [name, fn] of [
    ['forRange', () => isec.LegacyDecryptor.forRange(lkey, obj, a, b).update(fetched)],
    [`legacyDecryptRange${sync}`, () => isec[`legacyDecryptRange${sync}`](lkey, obj, a, b, fetched)],
    ['stream', () => { const d = new isec.LegacyDecryptor(lkey, obj); for (let i = 0; i < 20; i++) d.update(zeros(MIB)) }],
  ]) {
    const got = await outcome(fn)
    if (got !== 'authentication_failed') problems.push(`4 TiB parts, ${name} of garbage: ${got}`)
  }
  if ((await outcome(() => isec[`legacyDecrypt${sync}`](lkey, obj, zeros(100)))) !== 'truncated') problems.push('12 TiB object from 100 bytes')
  // One seal of 1 TiB (a sidecar part, and a single-PUT object): never buffered whole.
  const lone = legacyObject(noMeta(), sidecar({ pc: 1, ts: 2 ** 40, parts: [{ pn: 1, ps: 2 ** 40, cs: 2 ** 40 + 28 }] }), 2 ** 40 + 28)
  const single = legacyObject(isec.LegacyMetadata.fromPairs({ isec: lobj.wrappedDekB64, 'plaintext-size': String(2 ** 40) }), null, 2 ** 40 + 28)
  for (const [name, o] of [['lone seal', lone], ['single PUT', single]]) {
    for (const [how, fn] of [
      ['stream', () => { const d = new isec.LegacyDecryptor(lkey, o); for (let i = 0; i < 40; i++) d.update(zeros(MIB)) }],
      ['range', () => isec.LegacyDecryptor.forRange(lkey, o, 5, 10)],
    ]) {
      if ((await outcome(fn)) === 'ok') problems.push(`1 TiB seal (${name}), ${how}: 40 MiB buffered without an error`)
    }
    problems.push(...(await eachHugeSeal(name, o)))
  }
  return problems
}

/** A gzip bomb (`bomb`, base64) as a sidecar: sidecar_too_large under the default cap and a caller's. */
export async function sidecarBombProblems({ isec, outcome, bomb }) {
  const problems = []
  for (const cap of [undefined, 32 * (1 << 20)]) {
    const got = await outcome(() => isec.LegacySidecar.parse(bomb, cap))
    if (got !== 'sidecar_too_large') problems.push(`gzip bomb, cap ${cap}: ${got}`)
  }
  return problems
}

/**
 * Copy limits are the caller's; a maxParts above S3's 10000 must not become an allocation
 * of maxParts ranges (in wasm: a trap once the 4 GiB memory is exhausted).
 */
export async function copyWithCallerLimitsProblems({ isec, outcome }) {
  const got = await outcome(() => isec.decideCopy({ sourceMetadata: {}, sourceSize: 4e9, limits: { singleCopyMax: 0, partMin: 0, partMax: 1, maxParts: 4e9 } }))
  return got === 'ok' ? ['4e9 one-byte parts planned'] : []
}

/** What a call ended with where a typed error (or success) was expected: a finding. */
export class Foreign extends Error {}

/**
 * The core code `e` carries, with its family (`codes`: code to family) and the only
 * TypeError code (invalid_parameter) checked; anything else throws a Foreign naming it.
 */
export function coreCode(e, codes) {
  if (e instanceof Error && typeof e.code === 'string' && codes.has(e.code)) {
    if (e.family !== codes.get(e.code)) throw new Foreign(`${e.code} with family ${e.family}`)
    if (e instanceof TypeError && e.code !== 'invalid_parameter') throw new Foreign(`TypeError with code ${e.code}`)
    return e.code
  }
  const what = e instanceof Error ? `${e.constructor.name}: ${e.message}` : `a thrown ${typeof e}: ${String(e)}`
  throw new Foreign(`${what} (code ${e?.code}) crossed the boundary without a core code`)
}

/** `codeOf(fn)`: the core code `fn` failed with, through `outcome`; success fails the test. */
export function codeOfWith(outcome) {
  return async (fn) => {
    const got = await outcome(fn)
    assert.notEqual(got, 'ok', 'expected a typed error, the call succeeded')
    return got
  }
}

/**
 * The envelope and keyring entries of a no-panic call table, as [name, fn, valid args]: both
 * packages name them and take their arguments alike. `w` is the test's fixtures, `ringWith()`
 * a fresh keyring holding kek-a, `zeros(n)` n zero bytes of the package's type.
 */
export function envelopeAndKeyringCalls({ isec, w, ringWith, zeros, frameSize: F }) {
  return [
    ['Envelope.decode', (b) => isec.Envelope.decode(b), [w.env.encode()]],
    ['Envelope.decodeText', (t) => isec.Envelope.decodeText(t), [w.env.toText()]],
    ['Envelope.inspect', (n) => w.env.inspect(n), [w.ct.length]],
    ['Envelope.equals', (o) => w.env.equals(o), [w.penv]],
    ['Keyring.addKek', (k, b, s) => new isec.Keyring().addKek(k, b, s), ['kid', zeros(32), 'decrypt_only']],
    ['Keyring.addLegacySecretString', (k, s) => new isec.Keyring().addLegacySecretString(k, s), ['kid', 'secret']],
    ['Keyring.setState', (k, s) => ringWith().setState(k, s), ['kek-a', 'decrypt_only']],
    ['Keyring.setMinVersion', (v) => ringWith().setMinVersion(v), [1]],
    ['Keyring.createEnvelopeSync', (o) => w.ring.createEnvelopeSync(o), [{ frameSize: F, partSize: 2 * F, declaredSize: 100 }]],
    ['Keyring.createEnvelope', (o) => w.ring.createEnvelope(o), [{ frameSize: F, table: true }]],
    ['Keyring.openSync', (e) => w.ring.openSync(e), [w.env]],
    ['Keyring.open', (e) => w.ring.open(e), [w.env]],
    ['Keyring.rewrapSync', (e) => w.ring.rewrapSync(e), [w.env]],
    ['Keyring.rewrapToSync', (e, k) => w.ring.rewrapToSync(e, k), [w.env, 'kek-a']],
    ['Keyring.legacyKey', (o, k) => w.lring.legacyKey(o, k), [w.lobj, w.lkid]],
    ['Keyring.setDefaultLegacy', (k) => w.lring.setDefaultLegacy(k), [w.lkid]],
    ['Keyring.addExternal', (k, wr, s) => new isec.Keyring().addExternal(k, wr, s), ['kms', { wrap: () => 1, unwrap: () => 1 }, 'active']],
  ]
}
