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
   * External keys run in two phases per key (see src/keys.rs): core runs the operation;
   * when it needs an external wrap or unwrap it has no answer for, the call fails and the
   * request is recorded; this class awaits the user's wrapper and runs the operation again
   * with the answer. Core makes every decision in every round.
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
      }
      if (!(out instanceof Uint8Array)) {
        throw wasm.isecError('external_wrapper_failed', `external ${req.op} under ${req.kid} returned no Uint8Array`)
      }
      return { kid: req.kid, op: req.op, input: req.input, output: new Uint8Array(out) }
    }

    /**
     * Runs `fn` (any synchronous call that uses this keyring: `openSync`,
     * `createEnvelopeSync`, `decideCopy`, ...) until every external key it needs has
     * answered, and returns its result.
     */
    async withExternal(fn) {
      const answers = []
      try {
        for (;;) {
          this._setAnswers(answers)
          try {
            return fn()
          } catch (e) {
            const req = this._takeRequest()
            if (!req || answers.length > 8) throw e
            answers.push(await this.#answer(req))
          }
        }
      } finally {
        this._setAnswers([])
        for (const a of answers) {
          if (a.op === 'wrap') a.input.fill(0)
          else a.output.fill(0)
        }
      }
    }

    /** Opens an envelope with the key its kid names (local or external). */
    open(envelope) {
      return this.withExternal(() => this.openSync(envelope))
    }

    /** A new envelope under the active key: `{ envelope, key }`. */
    createEnvelope(options) {
      return this.withExternal(() => this.createEnvelopeSync(options))
    }

    /** The same object's envelope under the active key (metadata only). */
    rewrap(envelope) {
      return this.withExternal(() => this.rewrapSync(envelope))
    }

    /** `rewrap` to a named key, which must be the active key. */
    rewrapTo(envelope, kid) {
      return this.withExternal(() => this.rewrapToSync(envelope, kid))
    }
  }

  /**
   * Decides how to copy an object as cheaply as the format allows (SPEC.md §12); reads no
   * object bytes. `keyring` is needed when a key must change or the source re-encrypted.
   */
  function decideCopy(request, keyring) {
    const shape = check('decideCopy', 0, 'Shape?', request?.sourceShape, classes)
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
