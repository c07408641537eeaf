// Public types of @isec/node: the generated native declarations (../index.d.ts, checked
// for drift) plus what lib/index.js and lib/streams.js add in JS.
import { Transform, TransformOptions } from 'node:stream'
import * as native from '../index'
import type { CreatedEnvelope, Envelope, EnvelopeOptions, KeyTask, LegacyKey, LegacyObject, ObjectKey, Shape } from '../index'

export * from '../index'

/** Options of the async (libuv pool) calls. */
export interface AsyncOptions {
  /** Cancels the call between chunks; it then rejects with an `AbortError` (`ABORT_ERR`). */
  signal?: AbortSignal
}

/** A key held by an external service (a KMS). Both calls may be async. */
export interface ExternalWrapper {
  /** Wraps a fresh 32-byte DEK; the buffer is zeroed after the call settles. */
  wrap(kid: string, dek: Uint8Array): Uint8Array | Promise<Uint8Array>
  /** Unwraps a DEK this wrapper wrapped. */
  unwrap(kid: string, wrapped: Uint8Array): Uint8Array | Promise<Uint8Array>
}

/** KEKs by key id, their states and the one active key (SPEC.md §10). */
export declare class Keyring extends native.Keyring {
  constructor()
  /** Adds an external (KMS) key whose wrapper JS calls asynchronously. */
  addExternal(kid: string, wrapper: ExternalWrapper, state?: 'active' | 'decrypt_only' | 'disabled'): void
  /**
   * Drives a `KeyTask` of this keyring (`beginOpen`, `beginCreate`, `beginRewrap`,
   * `ReencryptionJob.beginTarget`, `beginCopyRewrap`) to its result, awaiting the external
   * wrappers it asks for.
   */
  withExternal(task: KeyTask): Promise<ObjectKey | CreatedEnvelope | Envelope>
  /** Opens an envelope with the key its kid names (local or external). */
  open(envelope: Envelope): Promise<ObjectKey>
  /** A new envelope under the active key. */
  createEnvelope(options?: EnvelopeOptions): Promise<CreatedEnvelope>
  /** The same object's envelope under the active key (metadata only). */
  rewrap(envelope: Envelope): Promise<Envelope>
  /** `rewrap` to a named key, which must be the active key. */
  rewrapTo(envelope: Envelope, kid: string): Promise<Envelope>
}

/** `encryptSync` on the libuv pool. */
export declare function encrypt(key: ObjectKey, plaintext: Uint8Array, options?: AsyncOptions): Promise<Buffer>
/** `decryptSync` on the libuv pool. */
export declare function decrypt(key: ObjectKey, ciphertext: Uint8Array, options?: AsyncOptions): Promise<Buffer>
/** `encryptPartSync` on the libuv pool. */
export declare function encryptPart(
  key: ObjectKey,
  partNumber: number,
  isLast: boolean,
  plaintext: Uint8Array,
  options?: AsyncOptions,
): Promise<Buffer>
/**
 * `encryptPart` writing into `output` (at least the part's ciphertext length); resolves to
 * the bytes written. Every call draws a fresh nonce prefix; neither buffer may be read or
 * changed until the promise settles.
 */
export declare function encryptPartInto(
  key: ObjectKey,
  partNumber: number,
  isLast: boolean,
  plaintext: Uint8Array,
  output: Uint8Array,
  options?: AsyncOptions,
): Promise<number>
/** `decryptWithTableSync` on the libuv pool. */
export declare function decryptWithTable(
  key: ObjectKey,
  table: Uint8Array,
  ciphertext: Uint8Array,
  options?: AsyncOptions,
): Promise<Buffer>
/** `decryptRangeSync` on the libuv pool. */
export declare function decryptRange(
  key: ObjectKey,
  shape: Shape,
  start: number,
  end: number,
  fetched: Uint8Array,
  options?: AsyncOptions,
): Promise<Buffer>
/** `legacyDecryptSync` on the libuv pool. */
export declare function legacyDecrypt(
  key: LegacyKey,
  object: LegacyObject,
  ciphertext: Uint8Array,
  options?: AsyncOptions,
): Promise<Buffer>
/** Runs a native async call so that `signal` cancels it. */
export declare function abortable<T>(signal: AbortSignal | undefined, start: (token?: native.CancelToken) => Promise<T>): Promise<T>

export interface CryptoStreamOptions extends TransformOptions {
  /** Chunks at least this large are processed on the libuv pool (default 256 KiB). */
  asyncThreshold?: number
}

/** Encrypts a stream (a single-layout object, or one part with `partNumber`). */
export declare class EncryptStream extends Transform {
  constructor(key: ObjectKey, options?: CryptoStreamOptions & { partNumber?: number; isLast?: boolean })
  /** The 7-byte nonce prefix of this encryption: a table-layout part's `SegmentTable` entry records it. */
  readonly prefix: Buffer
}

/** Decrypts a stream (whole object; with `shape`, of known shape; with `range`, a range). */
export declare class DecryptStream extends Transform {
  constructor(key: ObjectKey, options?: CryptoStreamOptions & { shape?: Shape; range?: [number, number] })
}

/** Decrypts a legacy proxy object's body, or a planned range of it. */
export declare class LegacyDecryptStream extends Transform {
  constructor(key: LegacyKey, object: LegacyObject, options?: CryptoStreamOptions & { range?: [number, number] })
}

/** Encrypts file `src` to `dst` (single layout). */
export declare function encryptFile(
  key: ObjectKey,
  src: string,
  dst: string,
  options?: AsyncOptions & { highWaterMark?: number },
): Promise<void>
/** Decrypts file `src` to `dst`, all or nothing (temporary file, renamed on success). */
export declare function decryptFile(
  key: ObjectKey,
  src: string,
  dst: string,
  options?: AsyncOptions & { shape?: Shape; highWaterMark?: number },
): Promise<void>

/** Chunk size from which streams use the libuv pool. */
export declare const ASYNC_THRESHOLD: number
