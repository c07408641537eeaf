// TypeScript declarations of the option and result objects the wasm-bindgen exports take
// and return (wasm-bindgen writes them into pkg/*/isec_wasm.d.ts, next to the classes).
/** Which frame cipher a context uses: `'auto'` (default: WebCrypto where `crypto.subtle` exists), `'webcrypto'` or `'wasm'`. */
export interface BackendOptions {
  backend?: 'auto' | 'webcrypto' | 'wasm'
}
/** A key's lifecycle state (SPEC.md §10.1). */
export type KeyState = 'active' | 'decrypt_only' | 'disabled'
/** What a keyring entry holds: a KEK, the previous proxy's secret, a KMS key, or a public-key recipient (SPEC.md §3.5) by its public key only, with its private key, or with its private key held by a service. */
export type KeyKind = 'kek' | 'legacy' | 'external' | 'public_key' | 'private_key' | 'external_private_key'
/** One key of a keyring (`Keyring#keys`). */
export interface KeyInfo {
  kid: string
  state: KeyState
  kind: KeyKind
  legacy: boolean
  /** A KMS key, or a recipient whose private key a service holds. */
  external: boolean
  /** A recipient's public key (`isec-x25519-public:...`). */
  publicKey?: string
  /** When the key was made, as its keyring file records it. */
  created?: string
}
/** S3 user metadata: `[[name, value], ...]` or `{ name: value }` (names with or without `x-amz-meta-`). */
export type Metadata = Array<[string, string]> | Record<string, string>
/** Options of a new envelope. */
export interface EnvelopeOptions {
  /** Frame size in bytes: a power of two from 4096 to 8388608 (default 65536). */
  frameSize?: number
  /** Multipart with a fixed part size (a multiple of the frame size). */
  partSize?: number
  /** Multipart with parts of any size, described by a segment table. */
  table?: boolean
  /** The plaintext size, if known; checked on decrypt. */
  declaredSize?: number
}
/** The key-free description of an envelope (SPEC.md §3.3). */
export interface EnvelopeInfo {
  version: number
  suite: number
  kid: string
  wrapAlg: 'aes-kwp' | 'external' | 'hpke-x25519'
  frameSize: number
  layout: 'single' | 'parts' | 'table'
  partSize?: number
  declaredSize?: number
  envelopeLength: number
  /** With a ciphertext length (single and parts layouts): the plaintext length. */
  plaintextLength?: number
  /** With a ciphertext length: frames in the object. */
  frameCount?: number
  /** With a ciphertext length: segments (parts) in the object. */
  segmentCount?: number
}
/** The ciphertext to fetch for a plaintext range, and what to keep of it (SPEC.md §7). */
export interface RangePlan {
  /** First ciphertext byte to fetch. */
  ctStart: number
  /** End of the fetch (exclusive); equal to `ctStart` when nothing is needed. */
  ctEnd: number
  /** Plaintext bytes dropped from the front of the first frame. */
  skip: number
  /** Plaintext bytes returned. */
  len: number
  /** The range after clamping: `[ptStart, ptStart + len)`. */
  ptStart: number
  /** The HTTP `Range` header for the fetch, absent when nothing is needed. */
  httpRange?: string
}
/** One segment (the body, or one part) of an object. */
export interface SegmentInfo {
  number: number
  ordinal: number
  isLast: boolean
  ptStart: number
  ptLen: number
  ctStart: number
  ctLen: number
}
/** What an object's metadata says it is (SPEC.md §11.1). */
export interface Classification {
  format: 'plaintext' | 'isec' | 'legacy' | 'unreadable'
  kid?: string
  /** For `unreadable`: the error code the metadata gives. */
  error?: string
}
/** A frame nonce's fields (SPEC.md §5.1). */
export interface NonceFields {
  prefix: Uint8Array
  index: number
  segmentEnd: boolean
  objectEnd: boolean
}
/** S3 limits that shape a copy (defaults: S3's). */
export interface CopyLimitsInput {
  singleCopyMax?: number
  partMin?: number
  partMax?: number
  maxParts?: number
  metadataMax?: number
}
/** What the copy decision looks at (SPEC.md §12). */
export interface CopyRequestInput {
  sourceMetadata: Metadata
  sourceSize: number
  sourceSidecar?: boolean
  /** For table-layout sources above the single-copy limit. */
  sourceShape?: Shape
  directive?: 'COPY' | 'REPLACE'
  newMetadata?: Metadata
  targetKid?: string
  rotateDek?: boolean
  migrateLegacy?: boolean
  requireEncryption?: boolean
  limits?: CopyLimitsInput
}
/** The cheapest valid copy plan. */
export interface CopyPlan {
  action: 'native' | 'native_replace' | 'part_copy' | 'reencrypt'
  /** The destination's complete user metadata, or `null` when it is the source's as-is. */
  metadata: Array<[string, string]> | null
  /** Source byte ranges `[start, end)` for UploadPartCopy. */
  ranges: Array<[number, number]>
  copySidecar: boolean
  rewrapped: boolean
  reason?: 'dek_rotation' | 'legacy_migration' | 'legacy_key_change' | 'encrypt_plaintext'
  requests: number
  clientBytes: number
}
/** Seal range plan of a legacy object. */
export interface LegacyRange {
  ctStart: number
  ctEnd: number
  skip: number
  len: number
  ptStart: number
  firstSeal: number
  endSeal: number
  httpRange?: string
}
/** Every error this package throws: a JS `Error` (a `TypeError` for arguments of the wrong type) with core's stable code and its family (SPEC.md §9). */
export interface IsecError extends Error {
  code: string
  family: 'authentication' | 'key' | 'stream' | 'format' | 'usage'
}
