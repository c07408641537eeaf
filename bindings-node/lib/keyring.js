// Written from bindings-wasm/js/keyring.js by scripts/sync-keyring.mjs: edit that file.
'use strict'

// The JS `Keyring`: the native (napi or wasm-bindgen) keyring plus the one thing a
// synchronous core cannot do, awaiting an external (KMS) wrapper. Core drives every keyring
// operation as a `KeyTask` and stops at each `{ kid, op, input, wrapAlg, info }` it needs;
// this class looks up the wrapper, awaits it and hands the answer back, which core checks.
// No format logic lives here.
//
// This file is the one source for both JS packages: @isec/wasm imports it as it is, and
// @isec/node ships it as lib/keyring.js, written from it by
// bindings-node/scripts/sync-keyring.mjs (test/dts.test.mjs fails when the two differ).
// So it imports nothing and uses nothing but the language.

/**
 * The `Keyring` class over a native keyring class `Base`.
 * `isecError(code, message)` makes the package's typed error; `typeError(message)` its
 * TypeError; `KeyTask` is the native task class.
 */
function externalKeyring(Base, { isecError, typeError, KeyTask }) {
  /**
   * KEKs by key id, their states and the one active key. Local keys work synchronously
   * (`openSync`, ...); the async methods also serve external keys added with `addExternal`.
   *
   * Every keyring operation is a core `KeyTask` (`beginOpen`, `beginCreate`, `beginRewrap`,
   * `ReencryptionJob.beginTarget`, `beginCopyRewrap`): core runs it until it needs an
   * external key, hands over the request, and resumes with the wrapper's answer, which it
   * checks. `withExternal(task)` does the awaiting.
   */
  class Keyring extends Base {
    #wrappers = new Map()

    /**
     * A keyring from the text of a keyring file (SPEC.md §10.3: KEKs, previous-proxy
     * secrets, recipients' public and private keys), parsed by core.
     */
    static fromFileText(text) {
      const ring = new this()
      ring._loadFileText(text)
      return ring
    }

    /**
     * Adds a key held by an external service: `wrapper.wrap(kid, dek)` and
     * `wrapper.unwrap(kid, wrapped)` return (promises of) `Uint8Array`s. The DEK given to
     * `wrap` is zeroed when the call settles, and the DEK `unwrap` returns once core has
     * taken it.
     */
    addExternal(kid, wrapper, state = 'active') {
      if (wrapper == null || typeof wrapper.wrap !== 'function' || typeof wrapper.unwrap !== 'function') {
        throw typeError('addExternal needs { wrap(kid, dek), unwrap(kid, wrapped) }')
      }
      this._registerExternal(kid, state)
      this.#wrappers.set(kid, wrapper)
    }

    /**
     * Adds a public-key recipient (`publicKey`: `isec-x25519-public:...`) whose private key
     * a service holds (an HSM): `unwrap({ kid, wrapped, info })` opens the HPKE-wrapped DEK
     * under `info` (the envelope's HPKE info, SPEC.md §3.5) and returns (a promise of) the
     * 32-byte DEK, which core checks against the envelope's commitment. New envelopes are
     * wrapped here with the public key. The DEK is zeroed once core has taken it.
     */
    addExternalPrivateKey(kid, publicKey, unwrap, state = 'active') {
      if (typeof unwrap !== 'function') throw typeError('addExternalPrivateKey needs unwrap({ kid, wrapped, info })')
      this._registerExternalPrivateKey(kid, publicKey, state)
      this.#wrappers.set(kid, { recipient: unwrap })
    }

    /** Awaits the wrapper a request names; every failure is `external_wrapper_failed`. */
    async #answer(req) {
      const w = this.#wrappers.get(req.kid)
      let out
      try {
        if (!w) throw new Error(`no wrapper for ${req.kid}`)
        if (w.recipient) {
          if (req.op !== 'unwrap') throw new Error(`${req.op} asked of the private key of ${req.kid}`)
          out = await w.recipient({ kid: req.kid, wrapped: req.input, info: req.info })
        } else {
          out = await (req.op === 'wrap' ? w.wrap(req.kid, req.input) : w.unwrap(req.kid, req.input))
        }
      } catch (cause) {
        const e = isecError('external_wrapper_failed', `external ${req.op} under ${req.kid} failed`)
        e.cause = cause
        throw e
      } finally {
        if (req.op === 'wrap') req.input.fill(0)
      }
      if (!(out instanceof Uint8Array)) {
        throw isecError('external_wrapper_failed', `external ${req.op} under ${req.kid} returned no Uint8Array`)
      }
      return out
    }

    /**
     * Drives a `KeyTask` of this keyring to its result, awaiting the external wrappers it
     * asks for.
     */
    async withExternal(task) {
      if (!(task instanceof KeyTask)) throw typeError('withExternal needs a KeyTask (keyring.beginOpen, ...)')
      for (let req; (req = task.step(this)) != null; ) {
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
    open(envelope) {
      return this.#run(() => this.beginOpen(envelope))
    }

    /** A new envelope under the active key: `{ envelope, key }`. */
    createEnvelope(options) {
      return this.#run(() => this.beginCreate(options))
    }

    /** The same object's envelope under the active key (metadata only). */
    rewrap(envelope) {
      return this.#run(() => this.beginRewrap(envelope))
    }

    /** `rewrap` to a named key, which must be the active key. */
    rewrapTo(envelope, kid) {
      return this.#run(() => this.beginRewrap(envelope, kid))
    }

    /** Errors of starting a task reject the promise, as errors of running it do. */
    async #run(begin) {
      return this.withExternal(begin())
    }
  }
  return Keyring
}

module.exports = { externalKeyring }
