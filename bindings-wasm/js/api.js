// The JS layer of @isec/wasm over the wasm-bindgen module (either build: `--target web` or
// `--target nodejs`): the `Keyring` that serves async external (KMS) wrappers, the copy
// decision's optional arguments, and the WHATWG streams (./streams.js). No format logic
// lives here: every decision is made by isec-core inside the wasm module.

import { makeGuard, SIGNATURES } from './guard.js'
import { makeStreams, toBytes as bytesOrThrow } from './streams.js'

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

  /**
   * KEKs by key id, their states and the one active key. Local keys work synchronously
   * (`openSync`, ...); the async methods also serve external keys added with `addExternal`.
   *
   * Every keyring operation is a core `KeyTask` (`beginOpen`, `beginCreate`, `beginRewrap`,
   * `beginCopyRewrap`): core runs it until it needs an external key, hands over the
   * request, and resumes with the wrapper's answer, which it checks. `withExternal(task)`
   * does the awaiting.
   */
  class Keyring extends wasm.Keyring {
    #wrappers = new Map()

    /**
     * Adds a key held by an external service: `wrapper.wrap(kid, dek)` and
     * `wrapper.unwrap(kid, wrapped)` return (promises of) `Uint8Array`s. The DEK given to
     * `wrap` is zeroed after the call settles.
     */
    addExternal(kid, wrapper, state = 'active') {
      if (wrapper == null || typeof wrapper.wrap !== 'function' || typeof wrapper.unwrap !== 'function') {
        throw typeError('addExternal needs { wrap(kid, dek), unwrap(kid, wrapped) }')
      }
      this._registerExternal(kid, state)
      this.#wrappers.set(kid, wrapper)
    }

    async #answer(req) {
      const w = this.#wrappers.get(req.kid)
      let out
      try {
        if (!w) throw new Error(`no wrapper for ${req.kid}`)
        out = await (req.op === 'wrap' ? w.wrap(req.kid, req.input) : w.unwrap(req.kid, req.input))
      } catch (cause) {
        const e = wasm.isecError('external_wrapper_failed', `external ${req.op} under ${req.kid} failed`)
        e.cause = cause
        throw e
      } finally {
        if (req.op === 'wrap') req.input.fill(0)
      }
      if (!(out instanceof Uint8Array)) {
        throw wasm.isecError('external_wrapper_failed', `external ${req.op} under ${req.kid} returned no Uint8Array`)
      }
      return out
    }

    /**
     * Drives a `KeyTask` of this keyring to its result, awaiting the external wrappers it
     * asks for.
     */
    async withExternal(task) {
      for (let req; (req = task.step(this)) !== undefined; ) {
        const out = await this.#answer(req)
        try {
          task.answer(out)
        } finally {
          if (req.op === 'unwrap') out.fill(0)
        }
      }
      return task.finish()
    }

    /** Opens an envelope with the key its kid names (local or external). */
    async open(envelope) {
      return this.withExternal(this.beginOpen(envelope))
    }

    /** A new envelope under the active key: `{ envelope, key }`. */
    async createEnvelope(options) {
      return this.withExternal(this.beginCreate(options))
    }

    /** The same object's envelope under the active key (metadata only). */
    async rewrap(envelope) {
      return this.withExternal(this.beginRewrap(envelope))
    }

    /** `rewrap` to a named key, which must be the active key. */
    async rewrapTo(envelope, kid) {
      return this.withExternal(this.beginRewrap(envelope, kid))
    }
  }

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
