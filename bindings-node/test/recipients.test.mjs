// Public-key recipients (SPEC.md §3.5) through the Node binding: a writer with only the public
// key encrypts and opens nothing; the private key, here or in a service, reads; rewrap crosses
// between a KEK and a recipient.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isec, codeOf, codeOfAsync } from './helpers.mjs'

test('a public key creates envelopes that only the private key opens', async () => {
  const { privateKey, publicKey } = isec.generateRecipient()
  assert.match(publicKey, /^isec-x25519-public:[A-Za-z0-9_-]{43}$/)
  assert.equal(isec.publicKeyOf(privateKey), publicKey)
  const writer = new isec.Keyring()
  writer.addPublicKey('uploads', publicKey)
  const { envelope, key } = await writer.createEnvelope()
  assert.equal(envelope.wrapAlg, 'hpke-x25519')
  const pt = Buffer.alloc(100_000, 7)
  const ct = isec.encryptSync(key, pt)
  assert.equal(codeOf(() => writer.openSync(envelope)), 'public_key_only')
  assert.equal(await codeOfAsync(writer.open(envelope)), 'public_key_only')
  const reader = new isec.Keyring()
  reader.addPrivateKey('uploads', privateKey, 'decrypt_only')
  assert.deepEqual(isec.decryptSync(reader.openSync(isec.Envelope.decodeText(envelope.toText())), ct), pt)
  assert.deepEqual(
    reader.keys().map((k) => [k.kind, k.publicKey, k.external]),
    [['private_key', publicKey, false]],
  )
  const wrong = new isec.Keyring()
  wrong.addPrivateKey('uploads', isec.generateRecipient().privateKey)
  assert.equal(codeOf(() => wrong.openSync(envelope)), 'unwrap_failed')
  assert.equal(codeOf(() => writer.addPublicKey('x', privateKey)), 'invalid_parameter')
})

test('a service holding the private key answers requests that carry the HPKE info', async () => {
  const { privateKey, publicKey } = isec.generateRecipient()
  const writer = new isec.Keyring()
  writer.addPublicKey('uploads', publicKey)
  const { envelope, key } = writer.createEnvelopeSync()
  const ring = new isec.Keyring()
  ring._registerExternalPrivateKey('uploads', publicKey, 'decrypt_only')
  assert.equal(ring.keys()[0].kind, 'external_private_key')
  const task = ring.beginOpen(envelope)
  const req = task.step(ring)
  assert.deepEqual([req.kid, req.op, req.wrapAlg, req.input.length], ['uploads', 'unwrap', 'hpke-x25519', 80])
  assert.equal(Buffer.from(req.info.subarray(0, 19)).toString(), 'isec/v1/hpke-x25519')
  task.answer(isec.openWrappedDek(privateKey, req.input, req.info))
  assert.equal(task.step(ring), null)
  const opened = task.finish()
  const ct = isec.encryptSync(key, Buffer.from('hello'))
  assert.deepEqual(isec.decryptSync(opened, ct), Buffer.from('hello'))
  assert.equal(codeOf(() => isec.openWrappedDek(isec.generateRecipient().privateKey, req.input, req.info)), 'unwrap_failed')
})

test('rewrap moves an object between a KEK and a recipient, and the keyring text round-trips', async () => {
  const { privateKey } = isec.generateRecipient()
  const ring = new isec.Keyring()
  ring.addKek('kek', Buffer.alloc(32, 1))
  const { envelope, key } = ring.createEnvelopeSync()
  const ct = isec.encryptSync(key, Buffer.from('body'))
  ring.addPrivateKey('pk', privateKey)
  const toPk = await ring.rewrap(envelope)
  assert.deepEqual([toPk.kid, toPk.wrapAlg], ['pk', 'hpke-x25519'])
  assert.deepEqual(isec.decryptSync(ring.openSync(toPk), ct), Buffer.from('body'))
  ring.setState('kek', 'active')
  const back = await ring.rewrap(toPk)
  assert.deepEqual([back.kid, back.wrapAlg], ['kek', 'aes-kwp'])
  const again = isec.Keyring.fromFileText(ring.toFileText())
  assert.deepEqual(again.keys(), ring.keys())
  assert.equal(codeOf(() => isec.Keyring.fromFileText('{"keys": [{"kid": "a"}]}')), 'invalid_parameter')
})

test('addExternalPrivateKey awaits the service for each open; its failures are external_wrapper_failed', async () => {
  const { privateKey, publicKey } = isec.generateRecipient()
  const writer = new isec.Keyring()
  writer.addPublicKey('uploads', publicKey)
  const { envelope, key } = writer.createEnvelopeSync()
  const seen = []
  const ring = new isec.Keyring()
  ring.addExternalPrivateKey('uploads', publicKey, async ({ kid, wrapped, info }) => {
    seen.push([kid, wrapped.length, Buffer.from(info.subarray(0, 19)).toString()])
    await new Promise((r) => setImmediate(r))
    return isec.openWrappedDek(privateKey, wrapped, info)
  }, 'decrypt_only')
  const opened = await ring.open(envelope)
  const ct = isec.encryptSync(key, Buffer.from('from a service'))
  assert.deepEqual(isec.decryptSync(opened, ct), Buffer.from('from a service'))
  assert.deepEqual(seen, [['uploads', 80, 'isec/v1/hpke-x25519']])
  const down = new isec.Keyring()
  down.addExternalPrivateKey('uploads', publicKey, async () => {
    throw new Error('hsm unreachable')
  })
  await assert.rejects(down.open(envelope), (e) => e.code === 'external_wrapper_failed' && e.cause.message === 'hsm unreachable')
  // Creating needs no service: the public key is here.
  assert.equal((await down.createEnvelope()).envelope.wrapAlg, 'hpke-x25519')
})
