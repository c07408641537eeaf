// The argument checks at the package's boundary (js/guard.js): every export of the
// wasm-bindgen module is declared with its parameters, and wrong JS types are refused with a
// coded TypeError before they reach the glue (which would trap, or read them as other bytes).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

import init from '../../node.mjs'
import { SIGNATURES, UNCHECKED } from '../../js/guard.js'

const require = createRequire(import.meta.url)
const isec = await init()
const raw = require('../../pkg/node/isec_wasm.js')
const params = (s) => (Array.isArray(s) ? s : s.params)

test('every function and method of the module is declared, with its number of parameters', () => {
  const missing = []
  const arity = []
  const declared = (key, fn) => {
    const s = SIGNATURES[key]
    if (!s) missing.push(key)
    // wasm-bindgen writes every parameter out, so a function's length is its parameter count.
    else if (fn.length !== params(s).length) arity.push(`${key}: ${fn.length} parameters, ${params(s).length} declared`)
  }
  for (const [name, v] of Object.entries(raw)) {
    if (typeof v !== 'function') continue
    if (!/^[A-Z]/.test(name)) {
      declared(name, v)
      continue
    }
    for (const key of Object.getOwnPropertyNames(v)) {
      if (['length', 'name', 'prototype', '__wrap'].includes(key) || typeof v[key] !== 'function') continue
      declared(`${name}.${key}`, v[key])
    }
    for (const key of Object.getOwnPropertyNames(v.prototype)) {
      const d = Object.getOwnPropertyDescriptor(v.prototype, key)
      if (UNCHECKED.has(key) || typeof d.value !== 'function') continue
      declared(`${name}#${key}`, d.value)
    }
    if (`${name}()` in SIGNATURES) assert.equal(v.length, params(SIGNATURES[`${name}()`]).length, `${name}()`)
  }
  assert.deepEqual(missing, [], 'exports without a declared signature')
  assert.deepEqual(arity, [])
})

async function refusal(fn, code = 'invalid_parameter') {
  let threw
  try {
    await fn()
  } catch (e) {
    threw = e
  }
  assert.ok(threw instanceof Error, 'refused')
  assert.equal(threw.code, code, threw.message)
  if (code === 'invalid_parameter') assert.ok(threw instanceof TypeError)
  return threw
}

test('wrong JS types are refused with a coded TypeError; promise-returning calls reject', async () => {
  const ring = new isec.Keyring()
  ring.addKek('k', new Uint8Array(32).fill(3))
  const { envelope, key } = ring.createEnvelopeSync({ frameSize: 4096 })
  // Would read memory at a bogus address in the glue.
  await refusal(() => isec.Envelope.decodeText(7))
  await refusal(() => ring.addKek(7, new Uint8Array(32)))
  // Would be copied element by element as bytes.
  await refusal(() => isec.encryptSync(key, 'abc'))
  await refusal(() => isec.encryptSync(key, [1, 2, 300]))
  await refusal(() => ring.addKek('k2', Array(32).fill(1)))
  // A plain Error from the glue otherwise; a Symbol or BigInt where a number goes.
  await refusal(() => ring.openSync(key))
  await refusal(() => envelope.inspect(Symbol('s')))
  await refusal(() => isec.Shape.forPlaintext(envelope, 10n))
  await refusal(() => envelope.equals({}))
  await refusal(() => new isec.SegmentTable(null))
  await refusal(() => new isec.Decryptor(envelope))
  await refusal(() => new isec.EncryptStream(key, 'fast'))
  // Async calls reject rather than throw.
  const p = isec.encrypt(envelope, new Uint8Array(1))
  assert.ok(p instanceof Promise)
  await refusal(() => p)
  const q = ring.open('text')
  assert.ok(q instanceof Promise)
  await refusal(() => q)
})

test('byte parameters take any view or ArrayBuffer as exactly the bytes it holds', async () => {
  const ring = new isec.Keyring()
  ring.addKek('k', new Uint8Array(32).fill(4))
  const { key } = ring.createEnvelopeSync({ frameSize: 4096 })
  const u16 = new Uint16Array([1, 256, 65535])
  const bytes = new Uint8Array(u16.buffer)
  for (const v of [u16, u16.buffer, new DataView(u16.buffer)]) {
    assert.deepEqual(isec.decryptSync(key, isec.encryptSync(key, v)), bytes)
    for (const backend of ['webcrypto', 'wasm']) {
      assert.deepEqual(await isec.decrypt(key, await isec.encrypt(key, v, { backend }), { backend }), bytes)
    }
  }
})

test('freed objects are refused with invalid_state, as arguments and as receivers', async () => {
  const ring = new isec.Keyring()
  ring.addKek('k', new Uint8Array(32).fill(5))
  const { envelope, key } = ring.createEnvelopeSync()
  const text = envelope.toText()
  key.free()
  await refusal(() => isec.encryptSync(key, new Uint8Array(1)), 'invalid_state')
  await refusal(() => isec.encrypt(key, new Uint8Array(1)), 'invalid_state')
  envelope.free()
  await refusal(() => envelope.toText(), 'invalid_state')
  await refusal(() => envelope.kid, 'invalid_state')
  // What was freed stays usable through a fresh object.
  assert.equal(isec.Envelope.decodeText(text).toText(), text)
})
