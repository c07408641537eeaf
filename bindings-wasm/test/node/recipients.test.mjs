// Public-key recipients (SPEC.md §3.5) through the package: key pairs and their text forms,
// a writer holding only the public key (creates, never opens: public_key_only), keyring
// files, and a private key held by a service that a JS callback reaches. The service is
// played by the test-hooks build (pkg/test-node), the only one that hands out a DEK.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

import init from '../../node.mjs'
import { bind } from '../../js/api.js'

const isec = await init()
const hooks = bind(createRequire(import.meta.url)('../../pkg/test-node/isec_wasm.js'))
const pattern = (n, seed = 0) => new Uint8Array(n).map((_, i) => (i * 13 + seed) % 256)
const LABEL = new TextEncoder().encode('isec/v1/hpke-x25519')

async function code(fn) {
  try {
    await fn()
  } catch (e) {
    assert.equal(typeof e.family, 'string', String(e))
    return e.code
  }
  return null
}

test('key pairs: text forms, publicKeyOf, refusals', async () => {
  const a = isec.generateRecipient()
  const b = isec.generateRecipient()
  assert.match(a.publicKey, /^isec-x25519-public:[A-Za-z0-9_-]{43}$/)
  assert.match(a.privateKey, /^isec-x25519-private:[A-Za-z0-9_-]{43}$/)
  assert.notEqual(a.privateKey, b.privateKey)
  assert.equal(isec.publicKeyOf(a.privateKey), a.publicKey)
  assert.equal(await code(() => isec.publicKeyOf(a.publicKey)), 'invalid_parameter')
  const r = new isec.Keyring()
  assert.equal(await code(() => r.addPublicKey('p', a.privateKey)), 'invalid_parameter')
  assert.equal(await code(() => r.addPublicKey('p', a.publicKey.slice(0, -1))), 'invalid_parameter')
  assert.equal(await code(() => r.addPrivateKey('p', a.publicKey)), 'invalid_parameter')
  // The refusal of a private key never repeats it.
  try {
    r.addPrivateKey('p', a.privateKey + 'x')
    assert.fail('accepted')
  } catch (e) {
    assert.ok(!e.message.includes(a.privateKey.slice(20)), e.message)
  }
  assert.deepEqual(r.keys(), [])
})

test('a writer with the public key only creates envelopes it cannot open; the private key opens them', async () => {
  const { privateKey, publicKey } = isec.generateRecipient()
  const writer = new isec.Keyring()
  writer.addPublicKey('rcp', publicKey)
  assert.deepEqual(writer.keys(), [
    { kid: 'rcp', state: 'active', legacy: false, external: false, kind: 'public_key', publicKey },
  ])
  const a = writer.createEnvelopeSync()
  const b = await writer.createEnvelope({ partSize: 8 << 20 })
  assert.equal(a.envelope.wrapAlg, 'hpke-x25519')
  assert.equal(a.envelope.inspect().wrapAlg, 'hpke-x25519')
  assert.equal(b.envelope.layout, 'parts')
  assert.notDeepEqual(a.envelope.encode().slice(-80), b.envelope.encode().slice(-80))
  const ct = await isec.encrypt(a.key, pattern(100_000))
  assert.equal(await code(() => writer.openSync(a.envelope)), 'public_key_only')
  assert.equal(await code(() => writer.open(a.envelope)), 'public_key_only')
  assert.equal(await code(() => writer.rewrap(a.envelope)), 'public_key_only')

  const reader = new isec.Keyring()
  reader.addPrivateKey('rcp', privateKey, 'decrypt_only')
  assert.equal(reader.keys()[0].kind, 'private_key')
  assert.equal(reader.keys()[0].publicKey, publicKey)
  assert.deepEqual(await isec.decrypt(reader.openSync(a.envelope), ct), pattern(100_000))
  assert.deepEqual(await isec.decrypt(await reader.open(a.envelope), ct), pattern(100_000))
  // Another recipient's private key under the same kid, and a KEK under it.
  const other = new isec.Keyring()
  other.addPrivateKey('rcp', isec.generateRecipient().privateKey)
  assert.equal(await code(() => other.openSync(a.envelope)), 'unwrap_failed')
  const kek = new isec.Keyring()
  kek.addKek('rcp', new Uint8Array(32))
  assert.equal(await code(() => kek.openSync(a.envelope)), 'wrong_key_kind')
  // A KEK envelope rewrapped to the recipient by a keyring holding the KEK and the public key.
  kek.addKek('kek', new Uint8Array(32).fill(9))
  const k = kek.createEnvelopeSync()
  const both = new isec.Keyring()
  both.addKek('kek', new Uint8Array(32).fill(9), 'decrypt_only')
  both.addPublicKey('rcp', publicKey)
  const moved = await both.rewrap(k.envelope)
  assert.equal(moved.wrapAlg, 'hpke-x25519')
  const kct = isec.encryptSync(k.key, pattern(10))
  assert.deepEqual(isec.decryptSync(reader.openSync(moved), kct), pattern(10))
})

test('Keyring.fromFileText: every kind of entry, created, states; refusals', async () => {
  const { privateKey, publicKey } = isec.generateRecipient()
  const other = isec.generateRecipient()
  const file = {
    min_version: 1,
    keys: [
      { kid: 'old', kek: '11'.repeat(32), state: 'decrypt_only', created: '2026-01-02T03:04:05Z' },
      { kid: 'proxy', legacy_secret: 'secret' },
      { kid: 'rcp', private_key: privateKey, public_key: publicKey, state: 'decrypt_only' },
      { kid: 'out', public_key: other.publicKey, state: 'active' },
    ],
  }
  const r = isec.Keyring.fromFileText(JSON.stringify(file))
  assert.ok(r instanceof isec.Keyring)
  assert.equal(r.minVersion, 1)
  assert.equal(r.activeKid, 'out')
  assert.deepEqual(
    r.keys().map((k) => [k.kid, k.kind, k.state, k.publicKey ?? null, k.created ?? null]),
    [
      ['old', 'kek', 'decrypt_only', null, '2026-01-02T03:04:05Z'],
      ['proxy', 'legacy', 'decrypt_only', null, null],
      ['rcp', 'private_key', 'decrypt_only', publicKey, null],
      ['out', 'public_key', 'active', other.publicKey, null],
    ],
  )
  // The async methods of the JS class are there.
  const { envelope } = await r.createEnvelope()
  assert.equal(await code(() => r.open(envelope)), 'public_key_only')
  const mismatch = { keys: [{ kid: 'rcp', private_key: privateKey, public_key: other.publicKey }] }
  assert.equal(await code(() => isec.Keyring.fromFileText(JSON.stringify(mismatch))), 'invalid_parameter')
  assert.equal(await code(() => isec.Keyring.fromFileText('{"keys": [')), 'invalid_parameter')
  assert.equal(await code(() => isec.Keyring.fromFileText(1)), 'invalid_parameter')
  assert.equal(await code(() => r._loadFileText(JSON.stringify(file))), 'invalid_parameter')
})

test('a private key held by a service: the callback gets the wrapped DEK and the HPKE info', async () => {
  const { privateKey, publicKey } = isec.generateRecipient()
  const calls = []
  const answered = []
  const service = new hooks.Keyring()
  service.addExternalPrivateKey('hsm', publicKey, async ({ kid, wrapped, info }) => {
    calls.push({ kid, wrapped: Uint8Array.from(wrapped), info: Uint8Array.from(info) })
    await new Promise((r) => setTimeout(r, 1))
    const dek = hooks.__recipientUnwrap(privateKey, wrapped, info)
    answered.push(dek)
    return dek
  })
  assert.deepEqual(
    service.keys().map((k) => [k.kind, k.external, k.state, k.publicKey]),
    [['external_private_key', true, 'active', publicKey]],
  )
  // Creating wraps with the public key here: no call.
  const c = await service.createEnvelope()
  assert.equal(c.envelope.wrapAlg, 'hpke-x25519')
  assert.equal(calls.length, 0)
  const ct = hooks.encryptSync(c.key, pattern(5000))
  const opened = await service.open(c.envelope)
  assert.equal(calls.length, 1)
  assert.equal(calls[0].kid, 'hsm')
  assert.deepEqual(calls[0].wrapped, c.envelope.encode().slice(-80))
  assert.deepEqual(calls[0].info, Uint8Array.from([...LABEL, ...c.envelope.header()]))
  assert.deepEqual(answered[0], new Uint8Array(32), 'the DEK is zeroed once core took it')
  assert.deepEqual(hooks.decryptSync(opened, ct), pattern(5000))
  // The synchronous path cannot await the service.
  assert.equal(await code(() => service.openSync(c.envelope)), 'external_wrapper_failed')

  // A service that fails, and one that answers with another DEK.
  const failing = new hooks.Keyring()
  failing.addExternalPrivateKey('hsm', publicKey, async () => {
    throw new Error('hsm offline')
  })
  try {
    await failing.open(c.envelope)
    assert.fail('opened')
  } catch (e) {
    assert.equal(e.code, 'external_wrapper_failed')
    assert.equal(e.cause.message, 'hsm offline')
  }
  const lying = new hooks.Keyring()
  lying.addExternalPrivateKey('hsm', publicKey, () => new Uint8Array(32).fill(7))
  assert.equal(await code(() => lying.open(c.envelope)), 'commitment_mismatch')
  assert.equal(await code(() => lying.addExternalPrivateKey('x', publicKey, 'not a function')), 'invalid_parameter')
  assert.equal(await code(() => lying.addExternalPrivateKey('x', 'isec-x25519-public:AA', () => null)), 'invalid_parameter')
})
