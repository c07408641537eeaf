// Argument checks at the package's boundary, before anything reaches wasm-bindgen's glue.
//
// The glue trusts its callers: a string parameter given a number makes the module read
// memory at a bogus address (a trap), a byte parameter given an array, a string or another
// typed array is copied element by element as if it were bytes (other bytes encrypted, with
// no error), a wrong class or a freed object is a plain `Error` without a code, and a Symbol
// or BigInt where a number goes is a bare TypeError. So every entry point is declared here
// with the JS type of each parameter, and a call whose arguments do not match is refused
// with a `TypeError` carrying core's `invalid_parameter` (for promise-returning calls: a
// rejected promise), and a method called on a freed object with `invalid_state`. Byte
// parameters take a Uint8Array, or any other ArrayBufferView or ArrayBuffer as the bytes it
// holds. Values are not otherwise judged here: ranges, sizes and contents are core's.
//
// test/node/guard.test.mjs checks that every export of the wasm-bindgen module is declared.

const STR = 'string'
const NUM = 'number'
const BOOL = 'boolean'
const BYTES = 'bytes'
const U32 = 'u32'
const FN = 'function'
const OBJ = 'object'
const ARR = 'array'
const ANY = 'any'
const opt = (kind) => `${kind}?`

/**
 * Parameters of every function and method: `name` (module function), `Class.name` (static),
 * `Class#name` (instance), `Class()` (constructor). `async`: the call returns a promise, so
 * a refusal is a rejection.
 */
export const SIGNATURES = {
  // Module functions.
  backends: [],
  buildNonce: [BYTES, NUM, BOOL, BOOL],
  classifyMetadata: [ANY, opt(BOOL)],
  decrypt: { async: true, params: ['ObjectKey', BYTES, ANY] },
  decryptRange: { async: true, params: ['ObjectKey', 'Shape', NUM, NUM, BYTES, ANY] },
  decryptRangeSync: ['ObjectKey', 'Shape', NUM, NUM, BYTES],
  decryptSync: ['ObjectKey', BYTES],
  decryptWithTable: { async: true, params: ['ObjectKey', BYTES, BYTES, ANY] },
  decryptWithTableSync: ['ObjectKey', BYTES, BYTES],
  encrypt: { async: true, params: ['ObjectKey', BYTES, ANY] },
  encryptPart: { async: true, params: ['ObjectKey', NUM, BOOL, BYTES, ANY] },
  encryptPartSync: ['ObjectKey', NUM, BOOL, BYTES],
  encryptSync: ['ObjectKey', BYTES],
  errorCodes: [],
  generateRecipient: [],
  isecError: [STR, opt(STR)],
  legacyDecrypt: ['LegacyKey', 'LegacyObject', BYTES],
  legacyDecryptRange: ['LegacyKey', 'LegacyObject', NUM, NUM, BYTES],
  limits: [],
  parseNonce: [BYTES],
  publicKeyOf: [STR],
  shapeFor: ['Envelope', NUM],
  wasmMemoryBytes: [],
  _decideCopy: [ANY],
  _decideCopyKeyring: [ANY, 'Keyring'],
  _decideCopyShape: [ANY, 'Shape'],
  _decideCopyKeyringShape: [ANY, 'Keyring', 'Shape'],
  beginCopyRewrap: [ANY, 'Keyring'],
  __recipientUnwrap: [STR, BYTES, BYTES],

  'Decryptor()': ['ObjectKey', ANY],
  'Decryptor.forRange': ['ObjectKey', 'Shape', NUM, NUM, ANY],
  'Decryptor.withShape': ['ObjectKey', 'Shape', ANY],
  'Decryptor#update': { async: true, params: [ANY] },
  'Decryptor#updateParts': { async: true, params: [ANY] },
  'Decryptor#_pump': { async: true, params: [ANY] },
  'Decryptor#updateSync': [BYTES],
  'Decryptor#final': { async: true, params: [] },
  'Decryptor#finalParts': { async: true, params: [] },
  'Decryptor#finalSync': [],

  'Encryptor()': ['ObjectKey', ANY],
  'Encryptor.forPart': ['ObjectKey', NUM, BOOL, ANY],
  'Encryptor.__withPrefix': ['ObjectKey', U32, BOOL, BYTES, ANY],
  'Encryptor#update': { async: true, params: [ANY] },
  'Encryptor#updateParts': { async: true, params: [ANY] },
  'Encryptor#_pump': { async: true, params: [ANY] },
  'Encryptor#updateSync': [BYTES],
  'Encryptor#updateLength': [NUM],
  'Encryptor#final': { async: true, params: [] },
  'Encryptor#finalParts': { async: true, params: [] },
  'Encryptor#finalSync': [],

  'Envelope.decode': [BYTES],
  'Envelope.decodeText': [STR],
  'Envelope#encode': [],
  'Envelope#equals': ['Envelope'],
  'Envelope#header': [],
  'Envelope#inspect': [opt(NUM)],
  'Envelope#toText': [],

  'Keyring()': [],
  'Keyring#_registerExternal': [STR, opt(STR)],
  'Keyring#_registerExternalPrivateKey': [STR, STR, opt(STR)],
  'Keyring#_loadFileText': [STR],
  'Keyring#addKek': [STR, BYTES, opt(STR)],
  'Keyring#addLegacySecretString': [STR, STR],
  'Keyring#addPrivateKey': [STR, STR, opt(STR)],
  'Keyring#addPublicKey': [STR, STR, opt(STR)],
  'Keyring#beginCreate': [ANY],
  'Keyring#beginOpen': ['Envelope'],
  'Keyring#beginRewrap': ['Envelope', opt(STR)],
  'Keyring#createEnvelopeSync': [ANY],
  'Keyring#keys': [],
  'Keyring#legacyKey': ['LegacyObject', opt(STR)],
  'Keyring#openSync': ['Envelope'],
  'Keyring#rewrapSync': ['Envelope'],
  'Keyring#rewrapToSync': ['Envelope', STR],
  'Keyring#setDefaultLegacy': [STR],
  'Keyring#setMinVersion': [NUM],
  'Keyring#setState': [STR, STR],
  // The JS Keyring's own methods (js/api.js).
  'Keyring#addExternal': [STR, ANY, opt(STR)],
  'Keyring#addExternalPrivateKey': [STR, STR, FN, opt(STR)],
  'Keyring.fromFileText': [STR],
  'Keyring#withExternal': { async: true, params: ['KeyTask'] },
  'Keyring#open': { async: true, params: ['Envelope'] },
  'Keyring#createEnvelope': { async: true, params: [ANY] },
  'Keyring#rewrap': { async: true, params: ['Envelope'] },
  'Keyring#rewrapTo': { async: true, params: ['Envelope', STR] },

  'KeyTask#answer': [BYTES],
  'KeyTask#finish': [],
  'KeyTask#step': ['Keyring'],

  'LegacyDecryptor()': ['LegacyKey', 'LegacyObject'],
  'LegacyDecryptor.forRange': ['LegacyKey', 'LegacyObject', NUM, NUM],
  'LegacyDecryptor#update': [BYTES],
  'LegacyDecryptor#final': [],

  'LegacyKey.fromSecretString': [STR, STR],
  'LegacyKey.open': [BYTES, STR],

  'LegacyMetadata.fromPairs': [ANY],
  'LegacyMetadata#sidecarKey': [STR],

  'LegacyObject.create': ['LegacyMetadata', NUM],
  'LegacyObject.withSidecar': ['LegacyMetadata', 'LegacySidecar', NUM],
  'LegacyObject#planRange': [NUM, NUM],
  'LegacyObject#withUploadId': [STR],

  'LegacySidecar.fromJson': [BYTES],
  'LegacySidecar.parse': [BYTES, opt(NUM)],

  'SegmentTable()': [ARR],
  'SegmentTable.decode': [BYTES, 'ObjectKey'],
  'SegmentTable#encode': ['ObjectKey'],

  'Shape.forPlaintext': ['Envelope', NUM],
  'Shape.fromCiphertextLength': ['Envelope', NUM],
  'Shape.fromTable': ['ObjectKey', BYTES, NUM],
  'Shape#ctBoundaryFloor': [NUM],
  'Shape#mapRange': [NUM, NUM],
  'Shape#segment': [U32],
}

/** Members of the wasm-bindgen classes that take no checks: lifetime and internals. */
export const UNCHECKED = new Set(['constructor', 'free', '__destroy_into_raw', '__wrap', '__unwrap'])

const describe = (v) => (v === null ? 'null' : typeof v === 'object' ? (v.constructor?.name ?? 'object') : typeof v)

export function makeGuard(wasm) {
  const typeError = (message) => {
    const e = wasm.isecError('invalid_parameter', message)
    Object.setPrototypeOf(e, TypeError.prototype)
    return e
  }
  const freed = (what) => wasm.isecError('invalid_state', `${what}: the object was freed (or never made by this package)`)

  /** The bytes a value holds, or undefined. */
  const bytesOf = (v) => {
    if (v instanceof Uint8Array) return v
    if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
    if (v instanceof ArrayBuffer) return new Uint8Array(v)
    return undefined
  }

  /** `v` checked against `kind`, possibly converted (bytes); throws the refusal. */
  function check(where, i, kind, v, classes) {
    const optional = kind.endsWith('?')
    const k = optional ? kind.slice(0, -1) : kind
    if (optional && v == null) return v
    const bad = (want) => typeError(`${where}: argument ${i + 1} must be ${want}, not ${describe(v)}`)
    switch (k) {
      case ANY:
        return v
      case STR:
        if (typeof v !== 'string') throw bad('a string')
        return v
      case NUM:
        if (typeof v !== 'number') throw bad('a number')
        return v
      case U32:
        if (typeof v !== 'number') throw bad('a number')
        if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw typeError(`${where}: argument ${i + 1} must be an integer in 0..2^32-1, not ${v}`)
        return v
      case BOOL:
        if (typeof v !== 'boolean') throw bad('a boolean')
        return v
      case FN:
        if (typeof v !== 'function') throw bad('a function')
        return v
      case ARR:
        if (!Array.isArray(v)) throw bad('an array')
        return v
      case OBJ:
        if (v === null || typeof v !== 'object') throw bad('an object')
        return v
      case BYTES: {
        const b = bytesOf(v)
        if (b === undefined) throw bad('a Uint8Array (or another ArrayBufferView or ArrayBuffer)')
        return b
      }
      default: {
        const cls = classes[k]
        if (!(v instanceof cls)) throw bad(`a ${k}`)
        if (!v.__wbg_ptr) throw freed(`${where}: argument ${i + 1}`)
        return v
      }
    }
  }

  const spec = (s) => (Array.isArray(s) ? { async: false, params: s } : s)

  /** `fn` with its arguments checked; `self`: whether `this` must be a live object. */
  function wrap(where, s, fn, classes, self) {
    const { async, params } = spec(s)
    const checked = function (...args) {
      try {
        if (self && !this?.__wbg_ptr) throw freed(where)
        for (let i = 0; i < params.length; i++) args[i] = check(where, i, params[i], args[i], classes)
      } catch (e) {
        if (async) return Promise.reject(e)
        throw e
      }
      return fn.apply(this, args)
    }
    Object.defineProperty(checked, 'name', { value: fn.name })
    Object.defineProperty(checked, 'length', { value: fn.length })
    return checked
  }

  /**
   * Checks the members of `cls` (a class of the module, or the JS Keyring) in place, and
   * returns it wrapped so that `new` checks the constructor's arguments too.
   */
  function guardClass(name, cls, classes) {
    for (const key of Object.getOwnPropertyNames(cls)) {
      const s = SIGNATURES[`${name}.${key}`]
      const d = Object.getOwnPropertyDescriptor(cls, key)
      if (s && typeof d.value === 'function') cls[key] = wrap(`${name}.${key}`, s, d.value, classes, false)
    }
    const proto = cls.prototype
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (UNCHECKED.has(key)) continue
      const d = Object.getOwnPropertyDescriptor(proto, key)
      const where = `${name}#${key}`
      if (typeof d.value === 'function') {
        // A method of the module's class the table lacks still gets the liveness check.
        proto[key] = wrap(where, SIGNATURES[where] ?? [], d.value, classes, true)
      } else if (d.get || d.set) {
        Object.defineProperty(proto, key, {
          ...d,
          get: d.get && wrap(where, [], d.get, classes, true),
          set: d.set && wrap(where, [ANY], d.set, classes, true),
        })
      }
    }
    const ctor = SIGNATURES[`${name}()`]
    if (!ctor) return cls
    const { params } = spec(ctor)
    return new Proxy(cls, {
      construct(target, args, newTarget) {
        const checkedArgs = params.map((p, i) => check(`new ${name}`, i, p, args[i], classes))
        return Reflect.construct(target, [...checkedArgs, ...args.slice(params.length)], newTarget)
      },
    })
  }

  /** Checks a module function. */
  const guardFunction = (name, fn, classes) => (SIGNATURES[name] ? wrap(name, SIGNATURES[name], fn, classes, false) : fn)

  return { guardClass, guardFunction, check, typeError }
}
