// Types of @isec/wasm: the wasm-bindgen classes and functions (pkg/web/isec_wasm.d.ts,
// generated from the Rust doc comments) plus the JS layer (js/api.js, js/streams.js).
import * as wasm from './pkg/web/isec_wasm.js'
import type {
  BackendOptions,
  CopyPlan,
  CopyRequestInput,
  Envelope,
  EnvelopeOptions,
  KeyState,
  LegacyKey,
  LegacyObject,
  ObjectKey,
  RangePlan,
  Shape,
} from './pkg/web/isec_wasm.js'

export * from './pkg/web/isec_wasm.js'

// The generated classes declare `[Symbol.dispose]()` (explicit resource management), which
// TypeScript's lib has only from `esnext`. Declared here as @types/node declares it, so the
// package type-checks with older libs too (`lib: ["es2022", "dom"]`); identical to, and merged
// with, lib.esnext's declaration where that is in use.
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol
  }
}

/** Instantiates the WebAssembly module (once); resolves to this module's API. */
export default function init(moduleOrPath?: wasm.InitInput | Promise<wasm.InitInput>): Promise<typeof import('./index.js')>

/** An external (KMS) key wrapper; results may be promises. */
export interface KeyWrapper {
  wrap(kid: string, dek: Uint8Array): Promise<Uint8Array> | Uint8Array
  unwrap(kid: string, wrapped: Uint8Array): Promise<Uint8Array> | Uint8Array
}

/**
 * Opens a public-key recipient's wrapped DEK with its private key, held by a service (an
 * HSM): `wrapped` is the 80-byte HPKE wrap, `info` the envelope's HPKE info (SPEC.md §3.5);
 * returns the 32-byte DEK.
 */
export type RecipientUnwrap = (request: { kid: string; wrapped: Uint8Array; info: Uint8Array }) => Promise<Uint8Array> | Uint8Array

/**
 * KEKs by key id, their states and the one active key. Local keys work synchronously
 * (`openSync`, ...); the async methods also serve external keys added with `addExternal`.
 */
export declare class Keyring extends wasm.Keyring {
  /** A keyring from the text of a keyring file (SPEC.md §10.3). */
  static fromFileText(text: string): Keyring
  /** Adds a key held by an external service (default state `active`). */
  addExternal(kid: string, wrapper: KeyWrapper, state?: KeyState): void
  /**
   * Adds a public-key recipient by its public key whose private key a service holds,
   * reached with `unwrap` (default state `active`).
   */
  addExternalPrivateKey(kid: string, publicKey: string, unwrap: RecipientUnwrap, state?: KeyState): void
  /**
   * Drives a `KeyTask` of this keyring (`beginOpen`, `beginCreate`, `beginRewrap`,
   * `beginCopyRewrap`) to its result, awaiting the external wrappers it asks for.
   */
  withExternal(task: wasm.KeyTask): Promise<ObjectKey | { envelope: Envelope; key: ObjectKey } | Envelope>
  /** Opens an envelope with the key its kid names (local or external). */
  open(envelope: Envelope): Promise<ObjectKey>
  /** A new envelope under the active key. */
  createEnvelope(options?: EnvelopeOptions): Promise<{ envelope: Envelope; key: ObjectKey }>
  /** The same object's envelope under the active key (metadata only). */
  rewrap(envelope: Envelope): Promise<Envelope>
  /** `rewrap` to a named key, which must be the active key. */
  rewrapTo(envelope: Envelope, kid: string): Promise<Envelope>
}

/** Decides how to copy an object as cheaply as the format allows (SPEC.md §12). */
export declare function decideCopy(request: CopyRequestInput, keyring?: wasm.Keyring): CopyPlan

/**
 * Decrypts plaintext `[start, end)` of an object of `ciphertextLength` stored bytes,
 * fetching exactly the ciphertext it needs with `fetchRange(ctStart, ctEnd, plan)`.
 */
export declare function fetchAndDecryptRange(
  key: ObjectKey,
  envelope: Envelope,
  ciphertextLength: number,
  start: number,
  end: number,
  fetchRange: (ctStart: number, ctEnd: number, plan: RangePlan) => Promise<BufferSource> | BufferSource,
  options?: BackendOptions & { shape?: Shape },
): Promise<Uint8Array>

/** A chunk as bytes: Uint8Array, any ArrayBufferView, or ArrayBuffer. */
export declare function toBytes(chunk: BufferSource): Uint8Array

interface StreamStrategies {
  writableStrategy?: QueuingStrategy<BufferSource>
  readableStrategy?: QueuingStrategy<Uint8Array>
}

/** Options of an `EncryptStream`: a whole single-layout object, or one part. */
export interface EncryptStreamOptions extends BackendOptions, StreamStrategies {
  partNumber?: number
  isLast?: boolean
}

/** Encrypts a byte stream in bounded memory: `file.stream().pipeThrough(new EncryptStream(key))`. */
export declare class EncryptStream extends TransformStream<BufferSource, Uint8Array> {
  constructor(key: ObjectKey, options?: EncryptStreamOptions)
  readonly backend: 'webcrypto' | 'wasm'
  /** The 7-byte nonce prefix of this encryption: a table-layout part's `SegmentTable` entry records it. */
  readonly prefix: Uint8Array
}

/** Options of a `DecryptStream`: `shape` for a table layout; `shape`, `start`, `end` for a range. */
export interface DecryptStreamOptions extends BackendOptions, StreamStrategies {
  shape?: Shape
  start?: number
  end?: number
}

/** Decrypts a byte stream, releasing only verified frames; errors carry core's codes. */
export declare class DecryptStream extends TransformStream<BufferSource, Uint8Array> {
  constructor(key: ObjectKey, options?: DecryptStreamOptions)
  readonly backend: 'webcrypto' | 'wasm'
}

/** Decrypts a legacy proxy object's stream (wasm backend). */
export declare class LegacyDecryptStream extends TransformStream<BufferSource, Uint8Array> {
  constructor(key: LegacyKey, object: LegacyObject, options?: StreamStrategies & { start?: number; end?: number })
}
