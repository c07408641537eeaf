//! # isec-wasm
//!
//! The browser binding of isec: wasm-bindgen classes and functions around `isec-core`.
//! This crate converts types, drives the browser's WebCrypto, and maps errors; it holds no
//! format logic and no spec constants (those come from core).
//!
//! Two frame-cipher backends, chosen per context (`{ backend: 'webcrypto' | 'wasm' }`,
//! default: WebCrypto when `crypto.subtle` exists):
//! - `webcrypto`: core writes each frame unsealed (`cipher::Unsealed`) and the binding seals
//!   it with `crypto.subtle.encrypt` under the segment key, imported once per segment as a
//!   non-extractable `CryptoKey`; decryption runs `Decryptor::external_segment`,
//!   `crypto.subtle.decrypt` and `external_accept` / `external_reject`, so every check of
//!   SPEC.md §5.3 stays in core (SPEC.md §5.4). Several frames are in flight at once.
//! - `wasm`: core's RustCrypto AES-GCM compiled to WebAssembly, synchronous.
//!
//! Both produce the same bytes and the same error codes (test/ checks it on the corpus).

mod error;
mod keys;
mod legacy;
mod ops;
mod stream;
mod webcrypto;

use isec_core::limits::{
    DEFAULT_FRAME_EXP, FRAME_OVERHEAD, MAX_FRAME_EXP, MAX_PARTS, MAX_PLAINTEXT_SIZE, MIN_FRAME_EXP, frame_size,
};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

pub use error::{Failure, Fallible, to_js};

/// The largest integer a JS number holds exactly.
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// A JS number as a byte count or offset: a non-negative integer (`Infinity` only where
/// `open_end`).
pub(crate) fn to_u64(x: f64, what: &str, open_end: bool) -> Fallible<u64> {
    if open_end && x == f64::INFINITY {
        return Ok(u64::MAX);
    }
    if !(0.0..=MAX_SAFE).contains(&x) || x.fract() != 0.0 {
        return Err(Failure::Type(format!("{what} must be a non-negative integer, not {x}")));
    }
    // Checked above: an integer in 0..=2^53-1.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(x as u64)
}

/// A byte count as a JS number. Sizes stay below 2^44 (SPEC.md §8): exact in a double.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn num(x: u64) -> f64 {
    x as f64
}

/// Sets `obj[key] = value` on a plain object the binding just made (cannot fail).
pub(crate) fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &key.into(), &value.into());
}

/// `obj[key]`, treating a missing object as `undefined`.
pub(crate) fn get(obj: &JsValue, key: &str) -> JsValue {
    if obj.is_object() { Reflect::get(obj, &key.into()).unwrap_or(JsValue::UNDEFINED) } else { JsValue::UNDEFINED }
}

/// The frame cipher a context uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `crypto.subtle` (asynchronous).
    WebCrypto,
    /// RustCrypto AES-GCM in WebAssembly (synchronous).
    Wasm,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::WebCrypto => "webcrypto",
            Self::Wasm => "wasm",
        }
    }

    /// The backend an `options` object asks for: `options.backend` is `'auto'` (default),
    /// `'webcrypto'` or `'wasm'`.
    pub(crate) fn from_options(options: Option<&JsValue>) -> Fallible<Self> {
        let b = options.map_or(JsValue::UNDEFINED, |o| get(o, "backend"));
        let name = if b.is_undefined() || b.is_null() {
            "auto".to_string()
        } else {
            b.as_string().ok_or_else(|| Failure::Type("options.backend must be a string".into()))?
        };
        match name.as_str() {
            "auto" => Ok(if webcrypto::available() { Self::WebCrypto } else { Self::Wasm }),
            "webcrypto" if webcrypto::available() => Ok(Self::WebCrypto),
            "webcrypto" => Err(Failure::Detail(
                isec_core::Error::InvalidParameter,
                "WebCrypto (crypto.subtle) is not available here; use { backend: 'wasm' }".into(),
            )),
            "wasm" => Ok(Self::Wasm),
            other => Err(Failure::Detail(
                isec_core::Error::InvalidParameter,
                format!("unknown backend {other:?}: 'auto', 'webcrypto' or 'wasm'"),
            )),
        }
    }
}

/// The backends usable here, best first: `['webcrypto', 'wasm']` or `['wasm']`.
#[wasm_bindgen(js_name = backends, unchecked_return_type = "Array<'webcrypto' | 'wasm'>")]
#[must_use]
pub fn backends() -> Array {
    let a = Array::new();
    if webcrypto::available() {
        a.push(&Backend::WebCrypto.name().into());
    }
    a.push(&Backend::Wasm.name().into());
    a
}

/// Every error code core defines, with its family (SPEC.md §9).
#[wasm_bindgen(js_name = errorCodes, unchecked_return_type = "Array<{ code: string, family: string }>")]
#[must_use]
pub fn error_codes() -> Array {
    isec_core::Error::ALL
        .iter()
        .map(|e| {
            let o = Object::new();
            set(&o, "code", e.code());
            set(&o, "family", e.family().name());
            JsValue::from(o)
        })
        .collect()
}

/// The error this package throws for `code` (the same mapper as every other error), for
/// the JS layer's own failures (an external wrapper that rejected, a bad argument).
#[wasm_bindgen(js_name = isecError, unchecked_return_type = "IsecError")]
#[must_use]
pub fn isec_error(code: &str, message: Option<String>) -> JsValue {
    let e = error::from_code(code).unwrap_or(isec_core::Error::InvalidParameter);
    match message {
        Some(m) => to_js(&Failure::Detail(e, m)),
        None => to_js(&Failure::Core(e)),
    }
}

/// The format's limits (SPEC.md §8), in bytes.
#[wasm_bindgen(
    js_name = limits,
    unchecked_return_type = "{ minFrameSize: number, maxFrameSize: number, defaultFrameSize: number, frameOverhead: number, maxParts: number, maxPlaintextSize: number }"
)]
#[must_use]
pub fn limits() -> Object {
    let o = Object::new();
    set(&o, "minFrameSize", num(frame_size(MIN_FRAME_EXP) as u64));
    set(&o, "maxFrameSize", num(frame_size(MAX_FRAME_EXP) as u64));
    set(&o, "defaultFrameSize", num(frame_size(DEFAULT_FRAME_EXP) as u64));
    set(&o, "frameOverhead", num(FRAME_OVERHEAD as u64));
    set(&o, "maxParts", MAX_PARTS);
    set(&o, "maxPlaintextSize", num(MAX_PLAINTEXT_SIZE));
    o
}

/// `options[key]` as an optional non-negative integer.
pub(crate) fn opt_u64(options: &JsValue, key: &str) -> Fallible<Option<u64>> {
    let v = get(options, key);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    let x = v.as_f64().ok_or_else(|| Failure::Type(format!("{key} must be a number")))?;
    to_u64(x, key, false).map(Some)
}

/// `options[key]` as an optional boolean.
pub(crate) fn opt_bool(options: &JsValue, key: &str) -> Fallible<Option<bool>> {
    let v = get(options, key);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.as_bool().map(Some).ok_or_else(|| Failure::Type(format!("{key} must be a boolean")))
}

/// `options[key]` as an optional string.
pub(crate) fn opt_str(options: &JsValue, key: &str) -> Fallible<Option<String>> {
    let v = get(options, key);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.as_string().map(Some).ok_or_else(|| Failure::Type(format!("{key} must be a string")))
}

/// Metadata given as `[[name, value], ...]` or `{ name: value }`.
pub(crate) fn pairs(v: &JsValue, what: &str) -> Fallible<Vec<(String, String)>> {
    if v.is_undefined() || v.is_null() {
        return Ok(Vec::new());
    }
    let bad = || Failure::Type(format!("{what} must be [[name, value], ...] or {{ name: value }}"));
    let entries: Array = if Array::is_array(v) {
        v.clone().unchecked_into()
    } else if v.is_object() {
        Object::entries(v.unchecked_ref())
    } else {
        return Err(bad());
    };
    entries
        .iter()
        .map(|p| {
            let p: Array = p.dyn_into().map_err(|_| bad())?;
            match (p.get(0).as_string(), p.get(1).as_string()) {
                (Some(k), Some(v)) if p.length() == 2 => Ok((k, v)),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// Pairs as a JS array of `[name, value]`.
pub(crate) fn pairs_to_js(p: &[(String, String)]) -> Array {
    p.iter().map(|(k, v)| JsValue::from(Array::of2(&k.into(), &v.into()))).collect()
}

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** Which frame cipher a context uses: `'auto'` (default: WebCrypto where `crypto.subtle` exists), `'webcrypto'` or `'wasm'`. */
export interface BackendOptions {
  backend?: 'auto' | 'webcrypto' | 'wasm'
}
/** A key's lifecycle state (SPEC.md §10.1). */
export type KeyState = 'active' | 'decrypt_only' | 'disabled'
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
  wrapAlg: 'aes-kwp' | 'external'
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
"#;

/// Bytes of WebAssembly linear memory in use by this module (grows, never shrinks): for
/// checking that streams run in bounded memory.
#[wasm_bindgen(js_name = wasmMemoryBytes)]
#[must_use]
pub fn wasm_memory_bytes() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        num(core::arch::wasm32::memory_size(0) as u64 * 65536)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0.0
    }
}
