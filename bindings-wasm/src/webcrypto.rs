//! The browser's WebCrypto as a frame cipher outside Rust (SPEC.md §5.4).
//!
//! Only AES-256-GCM runs here: which key, which nonce, which bytes, and every check on the
//! result are core's. Segment keys are imported once per segment as non-extractable
//! `CryptoKey`s; the raw bytes exist in JS only inside `importKey`, which copies them
//! synchronously, and the array is zeroed right after the call.

use isec_core::limits::{NONCE_LEN, TAG_LEN};
use isec_core::{Error as CoreError, ObjectKey};
use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::error::{Failure, Fallible};
use crate::set;

/// Frames whose `subtle` calls are in flight at once. Each call costs tens of microseconds
/// of fixed overhead, which concurrency hides; this bounds the memory held by pending calls.
pub(crate) const MAX_IN_FLIGHT: usize = 16;

#[wasm_bindgen]
extern "C" {
    /// `crypto.subtle`.
    #[derive(Clone)]
    pub(crate) type Subtle;

    #[wasm_bindgen(method, catch, js_name = importKey)]
    fn import_key(
        this: &Subtle,
        format: &str,
        data: &Uint8Array,
        alg: &str,
        extractable: bool,
        usages: &Array,
    ) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = encrypt)]
    fn encrypt(this: &Subtle, alg: &Object, key: &JsValue, data: &Uint8Array) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = decrypt)]
    fn decrypt(this: &Subtle, alg: &Object, key: &JsValue, data: &Uint8Array) -> Result<Promise, JsValue>;
}

/// `globalThis.crypto.subtle`, if this environment has it (browsers in a secure context,
/// workers, Node >= 19).
pub(crate) fn subtle() -> Option<Subtle> {
    let c = Reflect::get(&js_sys::global(), &"crypto".into()).ok().filter(JsValue::is_object)?;
    let s = Reflect::get(&c, &"subtle".into()).ok().filter(JsValue::is_object)?;
    Some(s.unchecked_into())
}

/// Whether the WebCrypto backend can run here.
pub(crate) fn available() -> bool {
    subtle().is_some()
}

fn backend_failure(what: &str, cause: JsValue) -> Failure {
    Failure::Caused(CoreError::InvalidState, format!("WebCrypto {what} failed"), cause)
}

/// The WebCrypto handle, or the error a context made for WebCrypto gets without it.
pub(crate) fn require() -> Fallible<Subtle> {
    subtle()
        .ok_or_else(|| Failure::Detail(CoreError::InvalidState, "WebCrypto (crypto.subtle) is not available".into()))
}

/// Imports the AES-256-GCM key of `segment` as a non-extractable `CryptoKey` for `usage`
/// (`encrypt` or `decrypt`).
pub(crate) async fn segment_key(subtle: &Subtle, key: &ObjectKey, segment: u32, usage: &str) -> Fallible<JsValue> {
    let raw = Uint8Array::from(&key.segment_key(segment)[..]);
    let usages = Array::of1(&usage.into());
    let p = subtle.import_key("raw", &raw, "AES-GCM", false, &usages);
    // importKey copied the bytes before returning.
    raw.fill(0, 0, raw.length());
    let p = p.map_err(|e| backend_failure("importKey", e))?;
    JsFuture::from(p).await.map_err(|e| backend_failure("importKey", e))
}

fn gcm(iv: &Uint8Array) -> Object {
    let o = Object::new();
    set(&o, "name", "AES-GCM");
    set(&o, "iv", iv.clone());
    o
}

fn u32_of(x: usize) -> Fallible<u32> {
    u32::try_from(x).map_err(|_| Failure::Core(CoreError::LimitExceeded))
}

/// Where released bytes go: one array (the `update` / `final` API), or a list of pieces
/// handed on without concatenation (`updateParts` / `finalParts`, what the streams use: no
/// output buffer to allocate and fill).
pub(crate) enum Sink {
    Concat { out: Uint8Array, written: u32 },
    Parts { list: Array, bytes: u64 },
}

impl Sink {
    /// A single array of capacity `cap`, or a list of pieces.
    pub(crate) fn new(parts: bool, cap: usize) -> Fallible<Self> {
        Ok(if parts {
            Self::Parts { list: Array::new(), bytes: 0 }
        } else {
            Self::Concat { out: Uint8Array::new_with_length(u32_of(cap)?), written: 0 }
        })
    }

    pub(crate) fn put(&mut self, piece: &Uint8Array) {
        match self {
            Self::Concat { out, written } => {
                out.set(piece, *written);
                *written += piece.length();
            }
            Self::Parts { list, bytes } => {
                if piece.length() > 0 {
                    list.push(piece);
                    *bytes += u64::from(piece.length());
                }
            }
        }
    }

    /// Bytes put so far.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Self::Concat { written, .. } => u64::from(*written),
            Self::Parts { bytes, .. } => *bytes,
        }
    }

    /// Zeroes what was put (it must not be released after an error).
    pub(crate) fn wipe(&self) {
        match self {
            Self::Concat { out, .. } => {
                out.fill(0, 0, out.length());
            }
            Self::Parts { list, .. } => {
                for p in list.iter() {
                    let p: Uint8Array = p.unchecked_into();
                    p.fill(0, 0, p.length());
                }
            }
        }
    }

    /// The result: a `Uint8Array`, or an array of them.
    pub(crate) fn into_js(self) -> JsValue {
        match self {
            Self::Concat { out, written } => out.subarray(0, written).into(),
            Self::Parts { list, .. } => list.into(),
        }
    }
}

/// Seals frames: each `(plaintext, nonce)` becomes `nonce || ciphertext || tag`, all
/// concatenated in order, [`MAX_IN_FLIGHT`] calls at a time. WebCrypto copies each plaintext
/// when its call starts.
pub(crate) async fn seal_frames(
    subtle: &Subtle,
    key: &JsValue,
    frames: &[(Uint8Array, [u8; NONCE_LEN])],
    parts: bool,
) -> Fallible<JsValue> {
    let total: usize = frames.iter().map(|(p, _)| p.length() as usize + NONCE_LEN + TAG_LEN).sum();
    let mut sink = Sink::new(parts, total)?;
    for batch in frames.chunks(MAX_IN_FLIGHT) {
        let calls = Array::new();
        let mut ivs = Vec::with_capacity(batch.len());
        for (pt, nonce) in batch {
            let iv = Uint8Array::from(&nonce[..]);
            let p = subtle.encrypt(&gcm(&iv), key, pt).map_err(|e| backend_failure("encrypt", e))?;
            calls.push(&p);
            ivs.push((iv, pt.length() as usize));
        }
        let done = JsFuture::from(Promise::all(&calls)).await.map_err(|e| backend_failure("encrypt", e))?;
        let done: Array = done.unchecked_into();
        for (i, (iv, len)) in ivs.iter().enumerate() {
            let sealed = Uint8Array::new(&done.get(u32_of(i)?));
            if sealed.length() as usize != len + TAG_LEN {
                return Err(backend_failure("encrypt", JsValue::from_str("unexpected output length")));
            }
            sink.put(iv);
            sink.put(&sealed);
        }
    }
    Ok(sink.into_js())
}

/// Starts verifying and decrypting `frames` (each one whole frame) under `key`; returns
/// what resolves to one `PromiseSettledResult` per frame (never rejecting) and each frame's
/// nonce, read when WebCrypto copied the frame.
pub(crate) fn open_frames(
    subtle: &Subtle,
    key: &JsValue,
    frames: &[Uint8Array],
) -> Fallible<(JsFuture, Vec<[u8; NONCE_LEN]>)> {
    let calls = Array::new();
    let mut nonces = Vec::with_capacity(frames.len());
    for f in frames {
        if (f.length() as usize) < NONCE_LEN + TAG_LEN {
            // Core rejects such a frame before using this outcome.
            calls.push(&Promise::reject(&JsValue::from_str("frame too short")));
            nonces.push([0; NONCE_LEN]);
            continue;
        }
        let body = u32_of(NONCE_LEN)?;
        let iv = f.subarray(0, body);
        let mut nonce = [0u8; NONCE_LEN];
        iv.copy_to(&mut nonce);
        let p = match subtle.decrypt(&gcm(&Uint8Array::from(&nonce[..])), key, &f.subarray(body, f.length())) {
            Ok(p) => p,
            Err(e) => Promise::reject(&e),
        };
        calls.push(&p);
        nonces.push(nonce);
    }
    Ok((JsFuture::from(Promise::all_settled(&calls)), nonces))
}

/// The plaintext of a settled decrypt, or `None` when WebCrypto rejected the frame (its tag
/// did not verify).
pub(crate) fn settled_plaintext(outcome: &JsValue) -> Option<Uint8Array> {
    let status = Reflect::get(outcome, &"status".into()).ok()?.as_string()?;
    if status != "fulfilled" {
        return None;
    }
    Some(Uint8Array::new(&Reflect::get(outcome, &"value".into()).ok()?))
}
