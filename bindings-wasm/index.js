// @isec/wasm for browsers and workers (ES module). Call the default export once before
// anything else: `await init()` loads and instantiates isec_wasm_bg.wasm (pass a URL,
// Response, BufferSource or WebAssembly.Module to load it from elsewhere).
import initWasm, * as wasm from './pkg/web/isec_wasm.js'
import { bind } from './js/api.js'

const api = bind(wasm)
let ready

/** Instantiates the WebAssembly module (once); resolves to this module's API. */
export default function init(moduleOrPath) {
  ready ??= initWasm(moduleOrPath === undefined ? undefined : { module_or_path: moduleOrPath }).then(() => api)
  return ready
}

export const {
  Envelope, ObjectKey, Keyring, Encryptor, Decryptor, Shape, SegmentTable,
  LegacyMetadata, LegacySidecar, LegacyObject, LegacyKey, LegacyDecryptor,
  backends, errorCodes, isecError, limits, wasmMemoryBytes, generateRecipient, publicKeyOf,
  encrypt, encryptSync, encryptPart, encryptPartSync, decrypt, decryptSync,
  decryptWithTable, decryptWithTableSync, decryptRange, decryptRangeSync, fetchAndDecryptRange,
  classifyMetadata, decideCopy, shapeFor, parseNonce, buildNonce,
  legacyDecrypt, legacyDecryptRange,
  EncryptStream, DecryptStream, LegacyDecryptStream, toBytes,
} = api
export { initSync } from './pkg/web/isec_wasm.js'
