// Types of `@isec/node/s3` (lib/s3.js): isec objects through an `@aws-sdk/client-s3` v3
// client. The SDK is an optional peer dependency; these declarations use its types.
import type { Readable } from 'node:stream'
import type {
  CompleteMultipartUploadCommandOutput,
  CopyObjectCommandInput,
  CreateMultipartUploadCommandInput,
  PutObjectCommandOutput,
  S3Client,
} from '@aws-sdk/client-s3'
import type { CopyLimitsInput, CopyPlan, Envelope, EnvelopeInfo } from '../index'
import type { CryptoStreamOptions, Keyring } from './index'

/** S3's smallest part size except the last (5 MiB). */
export declare const S3_MIN_PART: number

export interface IsecS3Options {
  /**
   * Plaintext bytes per part of a multipart upload (default 8 MiB, at least 5 MiB): rounded up
   * to whole frames, and grown by core until a body of known length fits 10000 parts.
   */
  partSize?: number
  /** Parts encrypted and uploaded (or copied) at once (default 4). */
  concurrency?: number
  /** Bodies of at most this many bytes go in one PutObject (default `partSize`). */
  multipartThreshold?: number
  /** Frame size of new objects (default: core's, 64 KiB). */
  frameSize?: number
  /** Encryptions per part, each with a fresh nonce prefix, when uploads fail transiently (default 3). */
  partAttempts?: number
  /** S3 limits for the copy decision (defaults: S3's; smaller ones exercise `part_copy`); `metadataMax` also bounds new objects' metadata. */
  copyLimits?: CopyLimitsInput
  /** Bytes per second of re-encrypting copies (0: unlimited). */
  reencryptRate?: number
  /**
   * Objects whose HEAD ranged reads keep (its answer and what opening it found, never a
   * key), least recently used dropped (default 64; 0: none). A cached object's ranged GET
   * is pinned to its ETag; a changed object is opened again.
   */
  openCache?: number
}

/** Fields common to the helper's calls. */
export interface Cancellable {
  /** Cancels the call: pending requests are aborted, native work stops, uploads are aborted. */
  signal?: AbortSignal
}

/** Object fields passed through from the SDK's response. */
export interface ObjectFields {
  ETag?: string
  VersionId?: string
  LastModified?: Date
  ContentType?: string
  ContentEncoding?: string
  ContentDisposition?: string
  ContentLanguage?: string
  CacheControl?: string
  Expires?: Date
  /** The stored user metadata, `isec` and `isec-kid` included. */
  Metadata?: Record<string, string>
  $metadata?: PutObjectCommandOutput['$metadata']
}

export type PutObjectParams = Omit<CreateMultipartUploadCommandInput, 'Bucket' | 'Key' | 'Metadata'> &
  Cancellable & {
    Bucket: string
    Key: string
    /** Plaintext: bytes, a file path, or a stream (Readable or any async iterable of bytes). */
    Body: Uint8Array | string | Readable | AsyncIterable<Uint8Array | string>
    /** The stream's length, when known (declared in the envelope and checked). */
    ContentLength?: number
    /** User metadata; keys a format owns are dropped and the envelope's added (core's `objectMetadata`). */
    Metadata?: Record<string, string>
  }

export interface PutObjectResult {
  ETag?: string
  VersionId?: string
  $metadata?: PutObjectCommandOutput['$metadata']
  envelope: Envelope
  kid: string
  /** 0 for a single PutObject, else the number of uploaded parts. */
  parts: number
  plaintextLength: number
  ciphertextLength: number
}

export interface ObjectRef extends Cancellable {
  Bucket: string
  Key: string
  VersionId?: string
}

export interface HeadResult extends ObjectFields {
  /** Stored (ciphertext) bytes. */
  ContentLength?: number
  /**
   * `isec`, `legacy` (the previous proxy's), `plaintext` or `unreadable`: core's opening of
   * the object (SPEC.md §12.1), sidecars fetched as it asks.
   */
  format: string
  kid?: string
  /** For previous-proxy objects: `single`, `streamed`, `framed` or `staged`. */
  legacyLayout?: string
  /** For isec objects. */
  envelope?: Envelope
  /** For isec objects: `Envelope#inspect` with the stored length. */
  info?: EnvelopeInfo
  plaintextLength?: number
  /** For unreadable metadata: core's error code. */
  error?: string
}

export interface GetObjectParams extends ObjectRef {
  /** Sent on the first GET; the ranged GETs after it are pinned to its ETag either way. */
  IfMatch?: string
  /**
   * Return a plaintext object (no isec envelope and no previous-proxy key) as stored
   * instead of failing. A previous-proxy object is always decrypted.
   */
  allowPlaintext?: boolean
}

export interface GetObjectResult extends ObjectFields {
  Body: Buffer
  ContentLength: number
  kid?: string
  /** What was read: `isec`, `legacy` (decrypted with the keyring's legacy secret) or `plaintext`. */
  format: string
}

export interface GetObjectStreamParams extends ObjectRef {
  /** For a whole read: sent on the first GET (a ranged read pins its own GET to the HEAD's ETag). */
  IfMatch?: string
  /** First plaintext byte (default 0). */
  start?: number
  /** End of the range, exclusive (default: the end of the object). */
  end?: number
  streamOptions?: CryptoStreamOptions
}

export interface GetObjectStreamResult extends ObjectFields {
  /** Plaintext; errors with core's code when the stored object is damaged. */
  Body: Readable
  kid: string
  /** The plaintext range delivered, for ranged reads. */
  range?: [number, number]
}

export interface GetRangeParams extends ObjectRef {
  /** First plaintext byte (default 0). */
  start?: number
  /** End of the range, exclusive (default: the end of the object); clamped. */
  end?: number
  /** A previous `headObject` result, which saves the HEAD request. */
  head?: HeadResult
}

export interface GetRangeResult extends ObjectFields {
  Body: Buffer
  kid: string
  /** The plaintext range returned after clamping: `[start, end)`. */
  range: [number, number]
  plaintextLength: number
}

export type CopyObjectParams = Omit<CopyObjectCommandInput, 'Bucket' | 'Key' | 'CopySource' | 'Metadata'> &
  Cancellable & {
    SourceBucket: string
    SourceKey: string
    SourceVersionId?: string
    Bucket: string
    Key: string
    MetadataDirective?: 'COPY' | 'REPLACE'
    /** New user metadata for REPLACE. */
    Metadata?: Record<string, string>
    /** Put the copy under this key id (rewrapped; the kid must be active). */
    targetKid?: string
    /** Give the copy a new DEK (re-encrypts). */
    rotateDek?: boolean
    /** Encrypt a plaintext source (re-encrypts). */
    requireEncryption?: boolean
    /** Re-encrypt a previous-proxy source into an isec object under the active key. */
    migrateLegacy?: boolean
  }

export interface CopyResult {
  /** The plan executed: `native`, `native_replace`, `part_copy` or `reencrypt`. */
  action: string
  /** Core's copy plan. */
  plan: CopyPlan
  ETag?: string
  VersionId?: string
  $metadata?: CompleteMultipartUploadCommandOutput['$metadata']
  rewrapped?: boolean
  /** UploadPartCopy requests, for `part_copy`. */
  parts?: number
  /** For `reencrypt`: why, and the new envelope. */
  reason?: string
  kid?: string
  envelope?: Envelope
}

export interface RewrapParams extends ObjectRef {
  /** Default: the keyring's active key. */
  newKid?: string
}

export interface RewrapResult extends Partial<CopyResult> {
  /** `none` when the object already was under the key. */
  action: string
  rewrapped: boolean
}

export interface MigrateResult {
  /** `false` for an object already in the isec format (left alone). */
  migrated: boolean
  /** The kid the object is now under (for an isec object left alone: its own). */
  kid: string
  plaintextLength: number
  /** The object-keyed previous-proxy sidecar deleted after the new object read back, or null. */
  sidecarDeleted: string | null
  /** A generation-keyed sidecar (staged layout), left in place: native copies may share it. */
  sidecarLeft: string | null
  ETag?: string
  VersionId?: string
  /** `legacy_migration` when migrated. */
  reason?: string
}

/**
 * isec objects in S3 through an `S3Client`: parallel multipart uploads, whole, streamed
 * and ranged reads (of the previous proxy's objects too, with the keyring's legacy
 * secrets), copies as core's copy decision plans them and `copySteps` lists their
 * requests, and in-place rewrap.
 */
export declare class IsecS3 {
  constructor(client: S3Client, keyring: Keyring, options?: IsecS3Options)
  readonly client: S3Client
  readonly keyring: Keyring
  /** Encrypts and uploads (one PutObject, or parallel parts). */
  putObject(params: PutObjectParams): Promise<PutObjectResult>
  /** Metadata and the key-free envelope summary. */
  headObject(params: ObjectRef): Promise<HeadResult>
  /** Downloads and decrypts a whole object (all or nothing). */
  getObject(params: GetObjectParams): Promise<GetObjectResult>
  /** A Readable of plaintext, whole or a range. */
  getObjectStream(params: GetObjectStreamParams): Promise<GetObjectStreamResult>
  /**
   * Plaintext `[start, end)`, fetching only the frames it needs; the HEAD that opens the
   * object is skipped when `head` is given or the object is in the `openCache`.
   */
  getRange(params: GetRangeParams): Promise<GetRangeResult>
  /** Forgets what ranged reads remember of objects (their next read makes a HEAD). */
  clearCache(): void
  /** Copies as core's copy decision plans it, sending exactly the requests `copySteps` lists. */
  copyObject(params: CopyObjectParams): Promise<CopyResult>
  /** Rewraps an object's envelope in place (metadata only). */
  rewrap(params: RewrapParams): Promise<RewrapResult>
  /**
   * Re-encrypts a previous-proxy object in place under the active key, checks it reads
   * back, then deletes its object-keyed sidecar; an isec object is left alone, a plaintext
   * one rejects with `not_encrypted`.
   */
  migrate(bucket: string, key: string, options?: Cancellable): Promise<MigrateResult>
}
