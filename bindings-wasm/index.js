// @isec/wasm for browsers and workers (ES module). Call the default export once before
// anything else: `await init()` loads and instantiates isec_wasm_bg.wasm next to this file;
// `init(input)` takes its URL (string, URL, Request), a Response, its bytes (BufferSource) or a
// compiled WebAssembly.Module, or a promise of one, for bundlers that move the file (README,
// "Bundlers"). A failed load rejects with an Error of code ERR_ISEC_WASM_LOAD.
import initWasm, * as wasm from './pkg/web/isec_wasm.js'
import { bind } from './js/api.js'

const api = bind(wasm)
let ready

const HELP =
  'pass the module to init(): its URL, bytes or WebAssembly.Module (with esbuild: ' +
  "import wasmUrl from '@isec/wasm/isec_wasm_bg.wasm' built with --loader:.wasm=file, then init(wasmUrl); " +
  'see the @isec/wasm README, "Bundlers")'

function loadError(message, cause) {
  const e = new Error(`@isec/wasm: ${message}; ${HELP}`)
  e.code = 'ERR_ISEC_WASM_LOAD'
  if (cause !== undefined) e.cause = cause
  return e
}

/**
 * isec_wasm_bg.wasm next to this file. Written as `new URL('<literal>', import.meta.url)`:
 * bundlers that understand this pattern (Vite, webpack 5, Parcel, Rollup with a URL plugin)
 * emit the file and rewrite the URL. Bundles without `import.meta.url` (IIFE or CommonJS
 * output) get ERR_ISEC_WASM_LOAD here instead of an `Invalid URL` TypeError.
 */
function defaultInput() {
  if (typeof import.meta.url !== 'string' || import.meta.url === '') {
    throw loadError('isec_wasm_bg.wasm cannot be located: this script has no import.meta.url (an IIFE or CommonJS bundle)')
  }
  return new URL('./pkg/web/isec_wasm_bg.wasm', import.meta.url)
}

async function load(input) {
  let source = await (input === undefined ? defaultInput() : input)
  if (typeof source === 'string' || source instanceof URL || (typeof Request === 'function' && source instanceof Request)) {
    const url = source instanceof Request ? source.url : String(source)
    try {
      source = await fetch(source)
    } catch (e) {
      throw loadError(`fetching ${url} failed (${e && e.message})`, e)
    }
  }
  if (typeof Response === 'function' && source instanceof Response && !source.ok) {
    throw loadError(`${source.status} ${source.statusText} fetching ${source.url || 'isec_wasm_bg.wasm'}`)
  }
  try {
    await initWasm({ module_or_path: source })
  } catch (e) {
    throw loadError(`isec_wasm_bg.wasm did not instantiate (${e && e.message})`, e)
  }
  return api
}

/** Instantiates the WebAssembly module (once); resolves to this module's API. */
export default function init(input) {
  ready ??= load(input).catch((e) => {
    ready = undefined // a failed load may be retried, e.g. with the module's URL
    throw e
  })
  return ready
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
export { initSync } from './pkg/web/isec_wasm.js'
