// The JS layer of @isec/wasm over the wasm-bindgen module (either build: `--target web` or
// `--target nodejs`): the `Keyring` that serves async external (KMS) wrappers, the copy
// decision's optional arguments, and the WHATWG streams (./streams.js). No format logic
// lives here: every decision is made by isec-core inside the wasm module.

import { makeGuard, SIGNATURES } from './guard.js'
import { makeStreams, toBytes as bytesOrThrow } from './streams.js'
import { externalKeyring } from './keyring.js'

SIGNATURES.decideCopy = ['any', 'Keyring?']
SIGNATURES.fetchAndDecryptRange = { async: true, params: ['ObjectKey', 'Envelope', 'number', 'number', 'number', 'function', 'any'] }
SIGNATURES.toBytes = ['any']

export function bind(raw) {
  // Every export with its arguments checked (js/guard.js); classes are wasm-bindgen's, so
  // `instanceof` tests against them hold for objects the module itself returns.
  const { guardClass, guardFunction, check, typeError } = makeGuard(raw)
  const isClass = (name, v) => typeof v === 'function' && /^[A-Z]/.test(name) && typeof v.prototype?.free === 'function'
  const classes = Object.fromEntries(Object.entries(raw).filter(([n, v]) => isClass(n, v)))
  const wasm = {}
  for (const [name, v] of Object.entries(raw)) {
    wasm[name] = isClass(name, v) ? guardClass(name, v, classes) : typeof v === 'function' ? guardFunction(name, v, classes) : v
  }
  const toBytes = (chunk) => bytesOrThrow(chunk, typeError)

  // The Keyring class (external KMS wrappers awaited for core's KeyTasks), shared with
  // @isec/node. `raw.KeyTask`: tasks the module returns are instances of its own class.
  const Keyring = externalKeyring(wasm.Keyring, { isecError: wasm.isecError, typeError, KeyTask: raw.KeyTask })

  /**
   * Decides how to copy an object as cheaply as the format allows (SPEC.md §12); reads no
   * object bytes. `keyring` is needed when a key must change or the source re-encrypted.
   */
  function decideCopy(request, keyring) {
    const shape = check('decideCopy', 0, 'Shape?', request?.sourceShape, classes)
    const rewrapped = check('decideCopy', 0, 'Envelope?', request?.rewrapped, classes)
    // The rewrapped envelope crosses as its metadata text (core decodes and checks it).
    if (rewrapped != null) request = { ...request, rewrapped: rewrapped.toText() }
    if (keyring != null && shape != null) return wasm._decideCopyKeyringShape(request, keyring, shape)
    if (keyring != null) return wasm._decideCopyKeyring(request, keyring)
    if (shape != null) return wasm._decideCopyShape(request, shape)
    return wasm._decideCopy(request)
  }

  /**
   * Decrypts plaintext `[start, end)` of an object of `ciphertextLength` stored bytes,
   * fetching exactly the ciphertext it needs with `fetchRange(ctStart, ctEnd)` (e.g. an HTTP
   * GET with `plan.httpRange`). Single and parts layouts; pass `{ shape }` for a table.
   */
  async function fetchAndDecryptRange(key, envelope, ciphertextLength, start, end, fetchRange, options = {}) {
    const shape = check('fetchAndDecryptRange', 6, 'Shape?', options?.shape, classes) ?? wasm.Shape.fromCiphertextLength(envelope, ciphertextLength)
    const plan = shape.mapRange(start, end)
    const fetched = plan.ctEnd > plan.ctStart ? toBytes(await fetchRange(plan.ctStart, plan.ctEnd, plan)) : new Uint8Array(0)
    return wasm.decryptRange(key, shape, start, end, fetched, options)
  }

  return {
    ...wasm,
    Keyring: guardClass('Keyring', Keyring, classes),
    decideCopy: guardFunction('decideCopy', decideCopy, classes),
    fetchAndDecryptRange: guardFunction('fetchAndDecryptRange', fetchAndDecryptRange, classes),
    toBytes: guardFunction('toBytes', toBytes, classes),
    ...makeStreams(wasm, { toBytes, check, classes }),
  }
}
