//! The browser's WebCrypto as a frame cipher outside Rust (SPEC.md §5.4).
//!
//! Only AES-256-GCM runs here: which key, which nonce, which bytes, and every check on the
//! result are core's. Segment keys are imported once per segment as non-extractable
//! `CryptoKey`s; the raw bytes exist in JS only inside `importKey`, which copies them
//! synchronously, and the array is zeroed right after the call.

use std::collections::VecDeque;

use isec_core::limits::{NONCE_LEN, TAG_LEN};
use isec_core::{Error as CoreError, ObjectKey};
use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::convert::u32_of;
use crate::error::{Failure, Fallible};

/// Bytes of frames whose `subtle` calls may be in flight at once, per context, and the
/// bounds on that many frames. Each call carries tens of microseconds of fixed cost and a hop
/// to WebCrypto's thread; keeping several queued hides both, and keeps that thread busy
/// while this one copies results and reads input. The bound caps what pending calls hold.
const IN_FLIGHT_BYTES: usize = 4 << 20;
const MIN_IN_FLIGHT: usize = 4;
const MAX_IN_FLIGHT: usize = 16;

/// How many frames of `frame_ct_len` bytes a context keeps in flight.
pub(crate) fn window(frame_ct_len: usize) -> usize {
    (IN_FLIGHT_BYTES / frame_ct_len.max(1)).clamp(MIN_IN_FLIGHT, MAX_IN_FLIGHT)
}

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

thread_local! {
    /// The strings of every call's algorithm object, made once rather than decoded from
    /// wasm memory per frame.
    static GCM_STRINGS: [JsValue; 3] = [JsValue::from_str("name"), JsValue::from_str("AES-GCM"), JsValue::from_str("iv")];
}

/// `{ name: 'AES-GCM', iv: nonce }`.
fn gcm(nonce: &[u8; NONCE_LEN]) -> Object {
    let o = Object::new();
    GCM_STRINGS.with(|[name, aes_gcm, iv]| {
        let _ = Reflect::set(&o, name, aes_gcm);
        let _ = Reflect::set(&o, iv, &Uint8Array::from(&nonce[..]));
    });
    o
}

/// WebCrypto under one object's segment keys, each imported on first use as a
/// non-extractable `CryptoKey` for one usage (`encrypt` or `decrypt`). The raw bytes exist
/// in JS only inside `importKey`, which copies them synchronously; the array is zeroed right
/// after. The last two keys stay imported (the current segment's and the next one's).
pub(crate) struct SegmentCipher {
    subtle: Subtle,
    key: ObjectKey,
    usage: &'static str,
    imported: VecDeque<(u32, JsValue)>,
}

impl SegmentCipher {
    /// The cipher of `key`'s segments, or the error a context made for WebCrypto gets
    /// without it.
    pub(crate) fn new(key: &ObjectKey, usage: &'static str) -> Fallible<Self> {
        let subtle = subtle().ok_or_else(|| {
            Failure::Detail(CoreError::InvalidState, "WebCrypto (crypto.subtle) is not available".into())
        })?;
        Ok(Self { subtle, key: key.clone(), usage, imported: VecDeque::new() })
    }

    async fn crypto_key(&mut self, segment: u32) -> Fallible<JsValue> {
        if let Some((_, k)) = self.imported.iter().find(|(s, _)| *s == segment) {
            return Ok(k.clone());
        }
        let raw = Uint8Array::from(&self.key.segment_key(segment)[..]);
        let p = self.subtle.import_key("raw", &raw, "AES-GCM", false, &Array::of1(&self.usage.into()));
        raw.fill(0, 0, raw.length());
        let p = p.map_err(|e| backend_failure("importKey", e))?;
        let k = JsFuture::from(p).await.map_err(|e| backend_failure("importKey", e))?;
        if self.imported.len() >= 2 {
            self.imported.pop_front();
        }
        self.imported.push_back((segment, k.clone()));
        Ok(k)
    }

    /// Starts sealing one frame's plaintext of `segment` with `nonce`; resolves to
    /// `ciphertext || tag`. WebCrypto copies `plaintext` when called, so the caller may
    /// reuse its buffer once this returns.
    pub(crate) async fn seal(
        &mut self,
        segment: u32,
        nonce: &[u8; NONCE_LEN],
        plaintext: &Uint8Array,
    ) -> Fallible<JsFuture> {
        let key = self.crypto_key(segment).await?;
        let p = self.subtle.encrypt(&gcm(nonce), &key, plaintext).map_err(|e| backend_failure("encrypt", e))?;
        Ok(JsFuture::from(p))
    }

    /// Starts verifying and decrypting one whole frame of `segment` (`nonce || ciphertext ||
    /// tag`, at least 28 bytes). Returns the frame's nonce as read when WebCrypto copies the
    /// frame (so core checks the bytes WebCrypto used; the caller may reuse its buffer once
    /// this returns) and the call, whose rejection is a frame that did not verify.
    pub(crate) async fn open(&mut self, segment: u32, frame: &Uint8Array) -> Fallible<([u8; NONCE_LEN], JsFuture)> {
        let key = self.crypto_key(segment).await?;
        let mut nonce = [0u8; NONCE_LEN];
        frame.subarray(0, u32_of(NONCE_LEN)?).copy_to(&mut nonce);
        let body = frame.subarray(u32_of(NONCE_LEN)?, frame.length());
        let p = self.subtle.decrypt(&gcm(&nonce), &key, &body).unwrap_or_else(|e| Promise::reject(&e));
        Ok((nonce, JsFuture::from(p)))
    }
}

/// The sealed frame body of a settled `seal`, checked to be `plaintext_len + 16` bytes.
pub(crate) fn sealed(outcome: Result<JsValue, JsValue>, plaintext_len: usize) -> Fallible<Uint8Array> {
    let sealed = Uint8Array::new(&outcome.map_err(|e| backend_failure("encrypt", e))?);
    if sealed.length() as usize != plaintext_len + TAG_LEN {
        return Err(backend_failure("encrypt", JsValue::from_str("unexpected output length")));
    }
    Ok(sealed)
}

/// Where released bytes go: one array (the `update` / `final` API and the one-shot
/// functions, which may write into a region of a larger array), or a list of pieces handed
/// on without concatenation (`updateParts` / `finalParts` and the streams: no output buffer
/// to allocate and fill; each frame's bytes stay in WebCrypto's result buffer).
pub(crate) enum Sink {
    Concat { out: Uint8Array, start: u32, at: u32 },
    Parts { list: Array, bytes: u64 },
}

impl Sink {
    /// A single array of capacity `cap`, or a list of pieces.
    pub(crate) fn new(parts: bool, cap: usize) -> Fallible<Self> {
        Ok(if parts {
            Self::Parts { list: Array::new(), bytes: 0 }
        } else {
            Self::Concat { out: Uint8Array::new_with_length(u32_of(cap)?), start: 0, at: 0 }
        })
    }

    /// Writes into `out` from offset `start` on.
    pub(crate) fn region(out: &Uint8Array, start: u32) -> Self {
        Self::Concat { out: out.clone(), start, at: start }
    }

    pub(crate) fn put(&mut self, piece: &Uint8Array) {
        match self {
            Self::Concat { out, at, .. } => {
                out.set(piece, *at);
                *at += piece.length();
            }
            Self::Parts { list, bytes } => {
                if piece.length() > 0 {
                    list.push(piece);
                    *bytes += u64::from(piece.length());
                }
            }
        }
    }

    /// A sealed frame: its nonce, then WebCrypto's `ciphertext || tag`.
    pub(crate) fn put_frame(&mut self, nonce: &[u8; NONCE_LEN], sealed: &Uint8Array) -> Fallible<()> {
        match self {
            Self::Concat { out, at, .. } => {
                let end = at.checked_add(u32_of(NONCE_LEN)?).ok_or(Failure::Core(CoreError::LimitExceeded))?;
                out.subarray(*at, end).copy_from(nonce);
                *at = end;
            }
            Self::Parts { list, bytes } => {
                list.push(&Uint8Array::from(&nonce[..]));
                *bytes += NONCE_LEN as u64;
            }
        }
        self.put(sealed);
        Ok(())
    }

    /// Bytes put so far.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Self::Concat { start, at, .. } => u64::from(*at - *start),
            Self::Parts { bytes, .. } => *bytes,
        }
    }

    /// Zeroes what was put (it must not be released after an error).
    pub(crate) fn wipe(&self) {
        match self {
            Self::Concat { out, start, at } => {
                out.fill(0, *start, *at);
            }
            Self::Parts { list, .. } => {
                for p in list.iter() {
                    let p: Uint8Array = p.unchecked_into();
                    p.fill(0, 0, p.length());
                }
            }
        }
    }

    /// The result: a `Uint8Array` (what was put), or an array of them.
    pub(crate) fn into_js(self) -> JsValue {
        match self {
            Self::Concat { out, start, at } => out.subarray(start, at).into(),
            Self::Parts { list, .. } => list.into(),
        }
    }
}
