// @isec/wasm under Node (the `--target nodejs` build, loaded synchronously): the same API as
// index.js, for tests and server-side use of the browser package. `init()` is a no-op kept
// for symmetry with the browser entry.
import { createRequire } from 'node:module'
import { bind } from './js/api.js'

const require = createRequire(import.meta.url)
const api = bind(require('./pkg/node/isec_wasm.js'))

export default async function init() {
  return api
}

// Every public name of the API, by name (ES modules need them written out);
// test/node/exports.test.mjs fails when one is missing here or in index.d.ts.
export const {
  Envelope, ObjectKey, Keyring, KeyTask, Encryptor, Decryptor, Shape, SegmentTable,
  LegacyMetadata, LegacySidecar, LegacyObject, LegacyKey, LegacyDecryptor,
  backends, errorCodes, isecError, limits, wasmMemoryBytes, generateRecipient, publicKeyOf,
  encrypt, encryptSync, encryptPart, encryptPartSync, decrypt, decryptSync,
  decryptWithTable, decryptWithTableSync, decryptRange, decryptRangeSync, fetchAndDecryptRange,
  classifyMetadata, decideCopy, beginCopyRewrap, shapeFor, parseNonce, buildNonce,
  legacyDecrypt, legacyDecryptRange,
  EncryptStream, DecryptStream, LegacyDecryptStream, toBytes,
} = api
