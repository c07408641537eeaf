//! Streaming and one-shot encryption and decryption on either backend.
//!
//! The `wasm` backend calls core's contexts with the RustCrypto cipher, synchronously. The
//! `webcrypto` backend (SPEC.md §5.4) runs core's encryptor with `cipher::Unsealed` and
//! seals the frames it writes with `crypto.subtle.encrypt`; it decrypts through
//! `Decryptor::external_segment` / `external_accept` / `external_reject` around
//! `crypto.subtle.decrypt`. Frames of one segment are decrypted concurrently: the segment of
//! the next frame is known once the previous frame is accepted, and a frame whose segment
//! turns out to differ from the batch's is simply decrypted again with the right key.
//!
//! The async methods return promises; a context runs one call at a time (a second call while
//! one is pending is `invalid_state`), and after any error it refuses further use.

use std::cell::RefCell;
use std::rc::Rc;

use isec_core::cipher::{RustCrypto, Unsealed};
use isec_core::layout::{FrameSpec, Shape as CoreShape};
use isec_core::limits::{FRAME_OVERHEAD, NONCE_LEN};
use isec_core::{
    Decryptor as CoreDec, Encryptor as CoreEnc, Error as CoreError, ObjectKey as CoreKey, SegmentTable, oneshot,
};
use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::error::{Failure, Fallible, to_js};
use crate::keys::ObjectKey;
use crate::ops::Shape;
use crate::webcrypto::{self, MAX_IN_FLIGHT, Sink, Subtle};
use crate::{Backend, num, to_u64};

fn u32_of(x: usize) -> Fallible<u32> {
    u32::try_from(x).map_err(|_| Failure::Core(CoreError::LimitExceeded))
}

fn frame_ct_len(key: &CoreKey) -> Fallible<usize> {
    usize::try_from(key.header().frame_size())
        .map_err(|_| Failure::Core(CoreError::InvalidFrameSize))
        .map(|f| f + FRAME_OVERHEAD)
}

fn busy() -> Failure {
    Failure::Detail(CoreError::InvalidState, "the previous call on this context has not finished".into())
}

fn finished() -> Failure {
    Failure::Detail(CoreError::InvalidState, "the context has finished".into())
}

fn needs_wasm(what: &str) -> Failure {
    Failure::Detail(CoreError::InvalidState, format!("{what} needs the wasm backend; use the async method"))
}

fn to_part_number(n: f64) -> Fallible<u32> {
    u32::try_from(to_u64(n, "partNumber", false)?).map_err(|_| Failure::Core(CoreError::InvalidParameter))
}

/// `Uint8Array | Uint8Array[]` as a list of arrays.
fn chunks_of(v: &JsValue) -> Fallible<Vec<Uint8Array>> {
    let bad = || Failure::Type("update takes a Uint8Array or an array of them".into());
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(vec![a.clone()]);
    }
    if Array::is_array(v) {
        let a: &Array = v.unchecked_ref();
        return a.iter().map(|c| c.dyn_into::<Uint8Array>().map_err(|_| bad())).collect();
    }
    Err(bad())
}

fn total_len(chunks: &[Uint8Array]) -> usize {
    chunks.iter().map(|c| c.length() as usize).sum()
}

/// The chunks' bytes in wasm memory, for the wasm backend.
fn joined(chunks: &[Uint8Array]) -> Vec<u8> {
    let mut v = vec![0u8; total_len(chunks)];
    let mut at = 0;
    for c in chunks {
        let n = c.length() as usize;
        c.copy_to(&mut v[at..at + n]);
        at += n;
    }
    v
}

/// A settled promise for a synchronous outcome.
fn settle(r: Fallible<JsValue>) -> Promise {
    match r {
        Ok(v) => Promise::resolve(&v),
        Err(e) => Promise::reject(&to_js(&e)),
    }
}

/// A context's state between calls.
enum Slot<T> {
    Ready(T),
    /// An async call holds the context.
    Busy,
    /// `final` ran (or failed).
    Done,
}

impl<T> Slot<T> {
    fn take(&mut self) -> Fallible<T> {
        match std::mem::replace(self, Self::Busy) {
            Self::Ready(t) => Ok(t),
            Self::Busy => Err(busy()),
            Self::Done => {
                *self = Self::Done;
                Err(finished())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Encryption

// Boxed neither: one context per stream, moved only between calls.
#[allow(clippy::large_enum_variant)]
enum EncCtx {
    Wasm(CoreEnc<RustCrypto>),
    Web(WebEnc),
}

/// Seals frames of one segment encryption with WebCrypto under the segment's key, imported
/// once.
pub(crate) struct Sealer {
    subtle: Subtle,
    key: CoreKey,
    segment: u32,
    crypto_key: Option<JsValue>,
}

impl Sealer {
    pub(crate) fn new(key: &CoreKey, segment: u32) -> Fallible<Self> {
        Ok(Self { subtle: webcrypto::require()?, key: key.clone(), segment, crypto_key: None })
    }

    async fn crypto_key(&mut self) -> Fallible<JsValue> {
        if let Some(k) = &self.crypto_key {
            return Ok(k.clone());
        }
        let k = webcrypto::segment_key(&self.subtle, &self.key, self.segment, "encrypt").await?;
        self.crypto_key = Some(k.clone());
        Ok(k)
    }

    /// The frames `nonce || AES-256-GCM(plaintext) || tag`: concatenated, or as pieces.
    pub(crate) async fn seal(&mut self, frames: &[(Uint8Array, [u8; NONCE_LEN])], parts: bool) -> Fallible<JsValue> {
        if frames.is_empty() {
            return Ok(Sink::new(parts, 0)?.into_js());
        }
        let k = self.crypto_key().await?;
        webcrypto::seal_frames(&self.subtle, &k, frames, parts).await
    }
}

/// An encryptor whose frames WebCrypto seals. Core decides every frame's nonce, position and
/// the size limits through its in-place API (`seal_frame_in_place`, `finish_in_place`),
/// given a frame-sized scratch buffer in wasm memory; with `cipher::Unsealed` it writes the
/// nonce and leaves the body alone, so the plaintext itself never enters wasm memory: it goes
/// from the caller's chunks straight to `crypto.subtle.encrypt`. As core's own streaming
/// encryptor does, a full frame is held back until more input shows it is not the last.
struct WebEnc {
    enc: CoreEnc<Unsealed>,
    sealer: Sealer,
    /// Plaintext bytes per frame.
    frame: usize,
    /// The frame being filled (JS memory), and how much of it is filled.
    held: Option<Uint8Array>,
    held_len: usize,
    /// Frame-sized scratch for core's in-place calls: nonce in front, body untouched.
    scratch: Vec<u8>,
}

type PtFrame = (Uint8Array, [u8; NONCE_LEN]);

impl WebEnc {
    fn new(key: &CoreKey, part: Option<(u32, bool)>, prefix: Option<isec_core::Prefix>) -> Fallible<Self> {
        let frame = frame_ct_len(key)? - FRAME_OVERHEAD;
        Ok(Self {
            enc: make_encryptor(key, part, prefix)?,
            // SPEC.md §4: segment 0 for the single layout, the part number otherwise.
            sealer: Sealer::new(key, part.map_or(0, |p| p.0))?,
            frame,
            held: None,
            held_len: 0,
            scratch: vec![0u8; frame + FRAME_OVERHEAD],
        })
    }

    /// Core's nonce for the next full, non-final frame.
    fn next_nonce(&mut self) -> Fallible<[u8; NONCE_LEN]> {
        self.enc.seal_frame_in_place(&mut self.scratch)?;
        let mut n = [0u8; NONCE_LEN];
        n.copy_from_slice(&self.scratch[..NONCE_LEN]);
        Ok(n)
    }

    /// The frames `chunk` completes (each known not to be the last), with their nonces. The
    /// held frame is a fresh array owned here, handed to WebCrypto as it is once complete.
    fn cut(&mut self, chunk: &Uint8Array) -> Fallible<Vec<PtFrame>> {
        let f = self.frame;
        let len = chunk.length() as usize;
        let mut frames = Vec::new();
        let mut at = 0;
        while at < len {
            if self.held_len == f {
                // More input follows the held full frame: it is not the last.
                let held = self.held.take().ok_or(Failure::Core(CoreError::InvalidState))?;
                frames.push((held, self.next_nonce()?));
                self.held_len = 0;
            } else if self.held_len == 0 && len - at > f {
                frames.push((chunk.subarray(u32_of(at)?, u32_of(at + f)?), self.next_nonce()?));
                at += f;
            } else if self.held_len == 0 {
                // The rest of the chunk (at most a frame): a copy, since the caller may reuse
                // its buffer once this call resolves.
                self.held = Some(chunk.slice(u32_of(at)?, u32_of(len)?));
                self.held_len = len - at;
                at = len;
            } else {
                let take = (f - self.held_len).min(len - at);
                let held = self.held.take().ok_or(Failure::Core(CoreError::InvalidState))?;
                let grown = if held.length() as usize >= self.held_len + take {
                    held
                } else {
                    let g = Uint8Array::new_with_length(u32_of(f)?);
                    g.set(&held.subarray(0, u32_of(self.held_len)?), 0);
                    g
                };
                grown.set(&chunk.subarray(u32_of(at)?, u32_of(at + take)?), u32_of(self.held_len)?);
                self.held = Some(grown);
                self.held_len += take;
                at += take;
            }
        }
        Ok(frames)
    }

    /// The final frame: what is held (possibly empty), sealed as the segment's last.
    fn last(self) -> Fallible<(PtFrame, Sealer)> {
        let Self { enc, sealer, held, held_len, mut scratch, .. } = self;
        let frame = scratch.get_mut(..held_len + FRAME_OVERHEAD).ok_or(Failure::Core(CoreError::InvalidState))?;
        enc.finish_in_place(frame)?;
        let mut n = [0u8; NONCE_LEN];
        n.copy_from_slice(&frame[..NONCE_LEN]);
        let pt = match held {
            Some(h) => h.subarray(0, u32_of(held_len)?),
            None => Uint8Array::new_with_length(0),
        };
        Ok(((pt, n), sealer))
    }

    /// Bytes `update` returns for `n` more input bytes: the frames it completes.
    fn update_len(&self, n: usize) -> usize {
        let total = self.held_len + n;
        if total == 0 { 0 } else { (total - 1) / self.frame * (self.frame + FRAME_OVERHEAD) }
    }

    /// A whole segment: `update(pt)` then `final()`.
    async fn run(mut self, pt: &Uint8Array) -> Fallible<Uint8Array> {
        let mut frames = self.cut(pt)?;
        let (last, mut sealer) = self.last()?;
        frames.push(last);
        Ok(sealer.seal(&frames, false).await?.unchecked_into())
    }
}

/// Streaming encryptor of one segment: a whole single-layout object, or one part.
#[wasm_bindgen(js_name = Encryptor)]
pub struct Encryptor {
    slot: Rc<RefCell<Slot<EncCtx>>>,
    backend: Backend,
    full: usize,
}

impl Encryptor {
    fn build(key: &CoreKey, part: Option<(u32, bool)>, options: Option<&JsValue>) -> Fallible<Self> {
        Self::build_with(key, part, options, None)
    }

    /// `prefix`: a caller-chosen nonce prefix (feature `test-hooks` only).
    fn build_with(
        key: &CoreKey,
        part: Option<(u32, bool)>,
        options: Option<&JsValue>,
        prefix: Option<isec_core::Prefix>,
    ) -> Fallible<Self> {
        let backend = Backend::from_options(options)?;
        let full = frame_ct_len(key)?;
        let ctx = match backend {
            Backend::Wasm => EncCtx::Wasm(make_encryptor(key, part, prefix)?),
            Backend::WebCrypto => EncCtx::Web(WebEnc::new(key, part, prefix)?),
        };
        Ok(Self { slot: Rc::new(RefCell::new(Slot::Ready(ctx))), backend, full })
    }

    fn len_of(&self, f: impl Fn(&EncCtx) -> usize) -> usize {
        match &*self.slot.borrow() {
            Slot::Ready(c) => f(c),
            _ => 0,
        }
    }

    fn update_impl(&self, chunk: &JsValue, parts: bool) -> Promise {
        let chunks = match chunks_of(chunk) {
            Ok(c) => c,
            Err(e) => return settle(Err(e)),
        };
        let ctx = match self.slot.borrow_mut().take() {
            Ok(c) => c,
            Err(e) => return settle(Err(e)),
        };
        match ctx {
            EncCtx::Wasm(mut e) => {
                let r = wasm_update(&mut e, &joined(&chunks));
                *self.slot.borrow_mut() = Slot::Ready(EncCtx::Wasm(e));
                settle(r.map(|v| wasm_out(&v, parts)))
            }
            EncCtx::Web(mut w) => {
                let frames = chunks.iter().try_fold(Vec::new(), |mut all, c| {
                    all.extend(w.cut(c)?);
                    Ok::<_, Failure>(all)
                });
                let slot = self.slot.clone();
                future_to_promise(async move {
                    let r = match frames {
                        Ok(frames) => w.sealer.seal(&frames, parts).await,
                        Err(e) => Err(e),
                    };
                    // Core marked itself failed on its own errors; WebCrypto failures too.
                    *slot.borrow_mut() = if r.is_ok() { Slot::Ready(EncCtx::Web(w)) } else { Slot::Done };
                    r.map_err(|e| to_js(&e))
                })
            }
        }
    }

    fn final_impl(&self, parts: bool) -> Promise {
        let ctx = match self.slot.borrow_mut().take() {
            Ok(c) => c,
            Err(e) => return settle(Err(e)),
        };
        *self.slot.borrow_mut() = Slot::Done;
        match ctx {
            EncCtx::Wasm(e) => settle(wasm_finish(e).map(|v| wasm_out(&v, parts))),
            EncCtx::Web(w) => match w.last() {
                Err(e) => settle(Err(e)),
                Ok((last, mut sealer)) => {
                    future_to_promise(async move { sealer.seal(&[last], parts).await.map_err(|e| to_js(&e)) })
                }
            },
        }
    }
}

/// Output of the wasm backend: one array, or a list holding it.
fn wasm_out(v: &[u8], parts: bool) -> JsValue {
    let a = Uint8Array::from(v);
    match (parts, v.is_empty()) {
        (false, _) => a.into(),
        (true, true) => Array::new().into(),
        (true, false) => Array::of1(&a).into(),
    }
}

#[wasm_bindgen(js_class = Encryptor)]
impl Encryptor {
    /// An encryptor for a whole single-layout object. `options.backend`: `'auto'`
    /// (default: WebCrypto where available), `'webcrypto'` or `'wasm'`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        key: &ObjectKey,
        #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
    ) -> Result<Encryptor, Failure> {
        Self::build(&key.inner, None, options.as_ref())
    }

    /// An encryptor for part `partNumber` (1..=10000) of a parts- or table-layout object;
    /// parts may be encrypted in any order, on any machine.
    #[wasm_bindgen(js_name = forPart)]
    pub fn for_part(
        key: &ObjectKey,
        #[wasm_bindgen(js_name = partNumber)] part_number: f64,
        #[wasm_bindgen(js_name = isLast)] is_last: bool,
        #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
    ) -> Result<Encryptor, Failure> {
        Self::build(&key.inner, Some((to_part_number(part_number)?, is_last)), options.as_ref())
    }

    /// `webcrypto` or `wasm`.
    #[wasm_bindgen(getter, js_name = backend)]
    #[must_use]
    pub fn backend(&self) -> String {
        self.backend.name().to_string()
    }

    /// Exact bytes `update` returns for `n` more input bytes.
    #[wasm_bindgen(js_name = updateLength)]
    #[must_use]
    pub fn update_length(&self, n: f64) -> f64 {
        let n = to_u64(n, "n", false).ok().and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
        num(self.len_of(|c| match c {
            EncCtx::Wasm(e) => e.update_len(n),
            EncCtx::Web(w) => w.update_len(n),
        }) as u64)
    }

    /// Exact bytes `final` returns.
    #[wasm_bindgen(getter, js_name = finalLength)]
    #[must_use]
    pub fn final_length(&self) -> f64 {
        num(self.len_of(|c| match c {
            EncCtx::Wasm(e) => e.finish_len(),
            EncCtx::Web(w) => w.held_len + FRAME_OVERHEAD,
        }) as u64)
    }

    /// Plaintext bytes taken so far.
    #[wasm_bindgen(getter, js_name = consumed)]
    #[must_use]
    pub fn consumed(&self) -> f64 {
        match &*self.slot.borrow() {
            Slot::Ready(EncCtx::Wasm(e)) => num(e.consumed()),
            Slot::Ready(EncCtx::Web(w)) => num(w.enc.consumed() + w.held_len as u64),
            _ => 0.0,
        }
    }

    /// Encrypts `chunk` (or an array of chunks, taken as their concatenation); resolves to
    /// every frame now complete (a full frame is held back until more input shows it is not
    /// the last). The frames of one call are sealed concurrently.
    #[wasm_bindgen(js_name = update, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn update(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | Uint8Array[]")] chunk: &JsValue,
    ) -> Promise {
        self.update_impl(chunk, false)
    }

    /// `update` resolving to the output as pieces, without concatenating them (what
    /// `EncryptStream` enqueues).
    #[wasm_bindgen(js_name = updateParts, unchecked_return_type = "Promise<Uint8Array[]>")]
    pub fn update_parts(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | Uint8Array[]")] chunk: &JsValue,
    ) -> Promise {
        self.update_impl(chunk, true)
    }

    /// Seals the final frame and ends the segment; resolves to it.
    #[wasm_bindgen(js_name = final, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn final_(&self) -> Promise {
        self.final_impl(false)
    }

    /// `final` resolving to the output as pieces.
    #[wasm_bindgen(js_name = finalParts, unchecked_return_type = "Promise<Uint8Array[]>")]
    pub fn final_parts(&self) -> Promise {
        self.final_impl(true)
    }

    /// `update` for the wasm backend, synchronously.
    #[wasm_bindgen(js_name = updateSync)]
    pub fn update_sync(&self, chunk: &[u8]) -> Result<Vec<u8>, Failure> {
        let mut slot = self.slot.borrow_mut();
        match &mut *slot {
            Slot::Ready(EncCtx::Wasm(e)) => wasm_update(e, chunk),
            Slot::Ready(EncCtx::Web(_)) => Err(needs_wasm("updateSync")),
            Slot::Busy => Err(busy()),
            Slot::Done => Err(finished()),
        }
    }

    /// `final` for the wasm backend, synchronously.
    #[wasm_bindgen(js_name = finalSync)]
    pub fn final_sync(&self) -> Result<Vec<u8>, Failure> {
        let mut slot = self.slot.borrow_mut();
        if let Slot::Ready(EncCtx::Web(_)) = &*slot {
            return Err(needs_wasm("finalSync"));
        }
        match slot.take()? {
            EncCtx::Wasm(e) => {
                *slot = Slot::Done;
                wasm_finish(e)
            }
            EncCtx::Web(_) => Err(needs_wasm("finalSync")),
        }
    }

    /// Frame length of this object (frame size + 28), for callers sizing their chunks.
    #[wasm_bindgen(getter, js_name = frameCiphertextLength)]
    #[must_use]
    pub fn frame_ciphertext_length(&self) -> f64 {
        num(self.full as u64)
    }
}

fn make_encryptor<C: isec_core::FrameCipher>(
    key: &CoreKey,
    part: Option<(u32, bool)>,
    prefix: Option<isec_core::Prefix>,
) -> Fallible<CoreEnc<C>> {
    Ok(match (part, prefix) {
        (None, None) => CoreEnc::new(key)?,
        (Some((n, last)), None) => CoreEnc::for_part(key, n, last)?,
        (p, Some(prefix)) => CoreEnc::with_prefix(key, p.map(|p| p.0), p.is_some_and(|p| p.1), prefix)?,
    })
}

/// Test hook (feature `test-hooks`, never in the shipped build): an encryptor with a
/// caller-chosen nonce prefix, so the tests can show both backends write identical bytes.
#[cfg(feature = "test-hooks")]
#[wasm_bindgen(js_class = Encryptor)]
impl Encryptor {
    /// `partNumber` 0: the single layout.
    #[wasm_bindgen(js_name = __withPrefix, skip_typescript)]
    pub fn with_prefix(
        key: &ObjectKey,
        part_number: u32,
        is_last: bool,
        prefix: &[u8],
        options: Option<JsValue>,
    ) -> Result<Encryptor, Failure> {
        let prefix = prefix.try_into().map_err(|_| Failure::Type("a prefix is 7 bytes".into()))?;
        let part = (part_number > 0).then_some((part_number, is_last));
        Self::build_with(&key.inner, part, options.as_ref(), Some(prefix))
    }
}

fn wasm_update(e: &mut CoreEnc<RustCrypto>, chunk: &[u8]) -> Fallible<Vec<u8>> {
    let mut out = vec![0u8; e.update_len(chunk.len())];
    let n = e.update(chunk, &mut out)?;
    out.truncate(n);
    Ok(out)
}

fn wasm_finish(e: CoreEnc<RustCrypto>) -> Fallible<Vec<u8>> {
    let mut out = vec![0u8; e.finish_len()];
    let n = e.finish(&mut out)?;
    out.truncate(n);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Decryption

/// Where the next frames end. Core's decryptor knows this too but does not expose it, so
/// the external path follows the same public `Shape` walk (`frame_at`, `next_frame`).
enum Cut {
    /// From the object's first byte, length unknown: every frame is full until the last.
    Open { full: usize },
    /// Known shape (table layout, ranges): the next frame to cut, and the end of the want.
    Known { shape: CoreShape, cursor: Option<FrameSpec>, want_end: u64 },
}

/// A decryptor whose frames WebCrypto opens; every check is core's. The ciphertext stays in
/// JS memory: core needs only each frame's length and nonce, and WebCrypto reads the frames
/// from views of the caller's chunks (a frame split across chunks is copied into one
/// frame-sized buffer).
struct WebDec {
    dec: CoreDec<RustCrypto>,
    cut: Cut,
    /// A partial frame: its first `held` bytes.
    partial: Option<Uint8Array>,
    held: usize,
    subtle: Subtle,
    key: CoreKey,
    crypto_key: Option<(u32, JsValue)>,
    failed: bool,
}

impl WebDec {
    fn open(key: &CoreKey) -> Fallible<Self> {
        Self::build(key, CoreDec::new(key)?, Cut::Open { full: frame_ct_len(key)? })
    }

    fn with_shape(key: &CoreKey, shape: CoreShape) -> Fallible<Self> {
        let plan = shape.map_range(0, shape.plaintext_len());
        // As core: a whole object is read even when empty (its one empty frame is checked).
        let cursor = if plan.len == 0 { shape.first_frame() } else { shape.frame_at(plan.pt_start) };
        let dec = CoreDec::with_shape(key, shape.clone())?;
        Self::build(key, dec, Cut::Known { shape, cursor, want_end: plan.pt_start + plan.len })
    }

    fn for_range(key: &CoreKey, shape: CoreShape, start: u64, end: u64) -> Fallible<Self> {
        let plan = shape.map_range(start, end);
        let cursor = if plan.len == 0 { None } else { shape.frame_at(plan.pt_start) };
        let dec = CoreDec::for_range(key, shape.clone(), &plan)?;
        Self::build(key, dec, Cut::Known { shape, cursor, want_end: plan.pt_start + plan.len })
    }

    fn build(key: &CoreKey, dec: CoreDec<RustCrypto>, cut: Cut) -> Fallible<Self> {
        Ok(Self {
            dec,
            cut,
            partial: None,
            held: 0,
            subtle: webcrypto::require()?,
            key: key.clone(),
            crypto_key: None,
            failed: false,
        })
    }

    /// Length of the next frame to cut, if another is expected.
    fn need(&self) -> Option<usize> {
        match &self.cut {
            Cut::Open { full } => Some(*full),
            Cut::Known { cursor, .. } => cursor.and_then(|c| usize::try_from(c.ct_len()).ok()),
        }
    }

    fn advance_cut(&mut self) {
        if let Cut::Known { shape, cursor, want_end } = &mut self.cut {
            *cursor = cursor.and_then(|c| shape.next_frame(&c)).filter(|f| f.pt_start < *want_end);
        }
    }

    /// Cuts the complete frames of the held partial frame plus `chunk`; keeps what is left
    /// of a frame. Returns the frames and the bytes past the last expected frame.
    fn cut_frames(&mut self, chunk: &Uint8Array) -> Fallible<(Vec<Uint8Array>, usize)> {
        let len = chunk.length() as usize;
        let mut frames = Vec::new();
        let mut at = 0usize;
        while at < len {
            let Some(need) = self.need() else { break };
            if self.held > 0 || len - at < need {
                // A frame split across chunks: gathered in a fresh frame-sized array, which
                // becomes the frame once complete.
                let buf = match self.partial.take() {
                    Some(b) if b.length() as usize >= need => b,
                    Some(b) => {
                        let g = Uint8Array::new_with_length(u32_of(need)?);
                        g.set(&b.subarray(0, u32_of(self.held)?), 0);
                        g
                    }
                    None => Uint8Array::new_with_length(u32_of(need)?),
                };
                let take = (need - self.held).min(len - at);
                buf.set(&chunk.subarray(u32_of(at)?, u32_of(at + take)?), u32_of(self.held)?);
                self.held += take;
                at += take;
                if self.held < need {
                    self.partial = Some(buf);
                    break;
                }
                frames.push(buf.subarray(0, u32_of(need)?));
                self.held = 0;
            } else {
                frames.push(chunk.subarray(u32_of(at)?, u32_of(at + need)?));
                at += need;
            }
            self.advance_cut();
        }
        Ok((frames, len - at))
    }

    async fn crypto_key(&mut self, segment: u32) -> Fallible<JsValue> {
        if let Some((s, k)) = &self.crypto_key {
            if *s == segment {
                return Ok(k.clone());
            }
        }
        let k = webcrypto::segment_key(&self.subtle, &self.key, segment, "decrypt").await?;
        self.crypto_key = Some((segment, k.clone()));
        Ok(k)
    }

    /// Opens `frames` in order, putting the plaintext core releases into `sink`. `at_end`:
    /// the last frame ends the input.
    async fn open_frames(&mut self, frames: &[Uint8Array], at_end: bool, sink: &mut Sink) -> Fallible<()> {
        let last = frames.len().saturating_sub(1);
        let len = |f: &Uint8Array| f.length() as usize;
        let mut i = 0;
        while i < frames.len() {
            let segment = self.dec.external_segment(len(&frames[i]), at_end && i == last)?;
            let key = self.crypto_key(segment).await?;
            let end = (i + MAX_IN_FLIGHT).min(frames.len());
            // WebCrypto copies each frame when the call starts; the nonces core checks are
            // read at the same moment, so both see the same bytes.
            let (pending, nonces) = webcrypto::open_frames(&self.subtle, &key, &frames[i..end])?;
            let settled: Array = pending
                .await
                .map_err(|e| Failure::Caused(CoreError::InvalidState, "WebCrypto decrypt failed".into(), e))?
                .unchecked_into();
            let mut j = i;
            while j < end {
                let n = len(&frames[j]);
                let end_here = at_end && j == last;
                // Frames after the first were decrypted with the batch's key on the guess that
                // they are in its segment; core says which segment each one is in.
                if j > i && self.dec.external_segment(n, end_here)? != segment {
                    break;
                }
                let Some(pt) = webcrypto::settled_plaintext(&settled.get(u32_of(j - i)?)) else {
                    return Err(self.dec.external_reject().into());
                };
                let r = self.dec.external_accept(&nonces[j - i], n, end_here)?;
                let (lo, hi) = (u32_of(r.start - NONCE_LEN)?, u32_of(r.end - NONCE_LEN)?);
                sink.put(&pt.subarray(lo, hi));
                j += 1;
            }
            i = j;
        }
        Ok(())
    }

    /// Feeds ciphertext; puts released plaintext into `sink`.
    async fn feed(&mut self, chunks: &[Uint8Array], sink: &mut Sink) -> Fallible<()> {
        if self.failed {
            return Err(Failure::Core(CoreError::InvalidState));
        }
        let r = async {
            let (mut frames, mut beyond) = (Vec::new(), 0);
            for c in chunks {
                let (f, b) = self.cut_frames(c)?;
                frames.extend(f);
                beyond += b;
            }
            self.open_frames(&frames, false, sink).await?;
            // Bytes after the final frame: core names the error (trailing_data).
            if (beyond > 0 || self.held > 0) && self.dec.is_done() {
                self.dec.external_segment(beyond.max(self.held), false)?;
            }
            Ok(())
        }
        .await;
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Ends the input: opens a final short frame, if any, and lets core report truncation.
    async fn end(mut self, sink: &mut Sink) -> Fallible<()> {
        if self.failed {
            return Err(Failure::Core(CoreError::InvalidState));
        }
        if self.held > 0 {
            let frame = self
                .partial
                .take()
                .map(|p| p.subarray(0, p.length().min(u32::try_from(self.held).unwrap_or(u32::MAX))))
                .ok_or(Failure::Core(CoreError::InvalidState))?;
            self.held = 0;
            self.open_frames(&[frame], true, sink).await?;
        }
        self.dec.finish(&mut [])?;
        Ok(())
    }

    /// Upper bound of plaintext from what is held plus `n` more bytes.
    fn bound(&self, n: usize) -> usize {
        self.held + n
    }
}

/// Runs a whole ciphertext through `web` (all or nothing).
async fn web_all(mut web: WebDec, ct: Uint8Array) -> Fallible<JsValue> {
    let mut sink = Sink::new(false, ct.length() as usize)?;
    let r = async {
        web.feed(std::slice::from_ref(&ct), &mut sink).await?;
        web.end(&mut sink).await
    }
    .await;
    match r {
        Ok(()) => Ok(sink.into_js()),
        Err(e) => {
            sink.wipe();
            Err(e)
        }
    }
}

// Boxed neither: one context per stream, moved only between calls.
#[allow(clippy::large_enum_variant)]
enum DecCtx {
    Wasm(CoreDec<RustCrypto>),
    Web(WebDec),
}

/// Streaming decryptor: a whole object, or a range of one. Releases a frame only after its
/// tag verified and its position checked; `final` reports truncation.
#[wasm_bindgen(js_name = Decryptor)]
pub struct Decryptor {
    slot: Rc<RefCell<Slot<DecCtx>>>,
    backend: Backend,
    released: Rc<RefCell<u64>>,
    full: usize,
}

impl Decryptor {
    fn wrap(key: &CoreKey, backend: Backend, ctx: DecCtx) -> Fallible<Self> {
        let full = frame_ct_len(key)?;
        Ok(Self { slot: Rc::new(RefCell::new(Slot::Ready(ctx))), backend, released: Rc::default(), full })
    }

    fn update_impl(&self, chunk: &JsValue, parts: bool) -> Promise {
        let chunks = match chunks_of(chunk) {
            Ok(c) => c,
            Err(e) => return settle(Err(e)),
        };
        let ctx = match self.slot.borrow_mut().take() {
            Ok(c) => c,
            Err(e) => return settle(Err(e)),
        };
        match ctx {
            DecCtx::Wasm(mut d) => {
                let r = wasm_dec_update(&mut d, &joined(&chunks));
                *self.slot.borrow_mut() = Slot::Ready(DecCtx::Wasm(d));
                if let Ok(v) = &r {
                    *self.released.borrow_mut() += v.len() as u64;
                }
                settle(r.map(|v| wasm_out(&v, parts)))
            }
            DecCtx::Web(mut w) => {
                let (slot, released) = (self.slot.clone(), self.released.clone());
                future_to_promise(async move {
                    let r = async {
                        let mut sink = Sink::new(parts, w.bound(total_len(&chunks)))?;
                        match w.feed(&chunks, &mut sink).await {
                            Ok(()) => Ok(sink),
                            Err(e) => {
                                sink.wipe();
                                Err(e)
                            }
                        }
                    }
                    .await;
                    *slot.borrow_mut() = Slot::Ready(DecCtx::Web(w));
                    let sink = r.map_err(|e| to_js(&e))?;
                    *released.borrow_mut() += sink.len();
                    Ok(sink.into_js())
                })
            }
        }
    }

    fn final_impl(&self, parts: bool) -> Promise {
        let ctx = match self.slot.borrow_mut().take() {
            Ok(c) => c,
            Err(e) => return settle(Err(e)),
        };
        *self.slot.borrow_mut() = Slot::Done;
        match ctx {
            DecCtx::Wasm(d) => {
                let r = wasm_dec_finish(d);
                if let Ok(v) = &r {
                    *self.released.borrow_mut() += v.len() as u64;
                }
                settle(r.map(|v| wasm_out(&v, parts)))
            }
            DecCtx::Web(w) => {
                let released = self.released.clone();
                future_to_promise(async move {
                    let mut sink = Sink::new(parts, w.bound(0)).map_err(|e| to_js(&e))?;
                    match w.end(&mut sink).await {
                        Ok(()) => {
                            *released.borrow_mut() += sink.len();
                            Ok(sink.into_js())
                        }
                        Err(e) => {
                            sink.wipe();
                            Err(to_js(&e))
                        }
                    }
                })
            }
        }
    }
}

#[wasm_bindgen(js_class = Decryptor)]
impl Decryptor {
    /// Decrypts a whole single- or parts-layout object from its first byte.
    #[wasm_bindgen(constructor)]
    pub fn new(
        key: &ObjectKey,
        #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
    ) -> Result<Decryptor, Failure> {
        let backend = Backend::from_options(options.as_ref())?;
        let ctx = match backend {
            Backend::Wasm => DecCtx::Wasm(CoreDec::new(&key.inner)?),
            Backend::WebCrypto => DecCtx::Web(WebDec::open(&key.inner)?),
        };
        Self::wrap(&key.inner, backend, ctx)
    }

    /// Decrypts a whole object of known shape (required for the table layout).
    #[wasm_bindgen(js_name = withShape)]
    pub fn with_shape(
        key: &ObjectKey,
        shape: &Shape,
        #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
    ) -> Result<Decryptor, Failure> {
        let backend = Backend::from_options(options.as_ref())?;
        let ctx = match backend {
            Backend::Wasm => DecCtx::Wasm(CoreDec::with_shape(&key.inner, shape.inner.clone())?),
            Backend::WebCrypto => DecCtx::Web(WebDec::with_shape(&key.inner, shape.inner.clone())?),
        };
        Self::wrap(&key.inner, backend, ctx)
    }

    /// Decrypts the ciphertext `shape.mapRange(start, end)` names and releases exactly the
    /// plaintext `[start, end)` (clamped). `end` may be `Infinity`.
    #[wasm_bindgen(js_name = forRange)]
    pub fn for_range(
        key: &ObjectKey,
        shape: &Shape,
        start: f64,
        end: f64,
        #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
    ) -> Result<Decryptor, Failure> {
        let backend = Backend::from_options(options.as_ref())?;
        let (a, b) = (to_u64(start, "start", false)?, to_u64(end, "end", true)?);
        let ctx = match backend {
            Backend::Wasm => {
                let plan = shape.inner.map_range(a, b);
                DecCtx::Wasm(CoreDec::for_range(&key.inner, shape.inner.clone(), &plan)?)
            }
            Backend::WebCrypto => DecCtx::Web(WebDec::for_range(&key.inner, shape.inner.clone(), a, b)?),
        };
        Self::wrap(&key.inner, backend, ctx)
    }

    /// `webcrypto` or `wasm`.
    #[wasm_bindgen(getter, js_name = backend)]
    #[must_use]
    pub fn backend(&self) -> String {
        self.backend.name().to_string()
    }

    /// Length of a full frame of this object (frame size + 28), for callers sizing chunks.
    #[wasm_bindgen(getter, js_name = frameCiphertextLength)]
    #[must_use]
    pub fn frame_ciphertext_length(&self) -> f64 {
        num(self.full as u64)
    }

    /// Plaintext bytes released so far.
    #[wasm_bindgen(getter, js_name = released)]
    #[must_use]
    pub fn released(&self) -> f64 {
        num(*self.released.borrow())
    }

    /// Whether the final expected frame has been verified.
    #[wasm_bindgen(getter, js_name = done)]
    #[must_use]
    pub fn done(&self) -> bool {
        match &*self.slot.borrow() {
            Slot::Ready(DecCtx::Wasm(d)) => d.is_done(),
            Slot::Ready(DecCtx::Web(w)) => w.dec.is_done(),
            Slot::Busy => false,
            Slot::Done => true,
        }
    }

    /// Feeds ciphertext (a chunk, or an array of chunks taken as their concatenation);
    /// resolves to the plaintext of every frame completed and verified. The frames of one
    /// call are opened concurrently.
    #[wasm_bindgen(js_name = update, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn update(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | Uint8Array[]")] chunk: &JsValue,
    ) -> Promise {
        self.update_impl(chunk, false)
    }

    /// `update` resolving to the plaintext as pieces, without concatenating them (what
    /// `DecryptStream` enqueues).
    #[wasm_bindgen(js_name = updateParts, unchecked_return_type = "Promise<Uint8Array[]>")]
    pub fn update_parts(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | Uint8Array[]")] chunk: &JsValue,
    ) -> Promise {
        self.update_impl(chunk, true)
    }

    /// Ends the input: decrypts a final short frame and reports truncation.
    #[wasm_bindgen(js_name = final, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn final_(&self) -> Promise {
        self.final_impl(false)
    }

    /// `final` resolving to the plaintext as pieces.
    #[wasm_bindgen(js_name = finalParts, unchecked_return_type = "Promise<Uint8Array[]>")]
    pub fn final_parts(&self) -> Promise {
        self.final_impl(true)
    }

    /// `update` for the wasm backend, synchronously.
    #[wasm_bindgen(js_name = updateSync)]
    pub fn update_sync(&self, chunk: &[u8]) -> Result<Vec<u8>, Failure> {
        let mut slot = self.slot.borrow_mut();
        let r = match &mut *slot {
            Slot::Ready(DecCtx::Wasm(d)) => wasm_dec_update(d, chunk),
            Slot::Ready(DecCtx::Web(_)) => Err(needs_wasm("updateSync")),
            Slot::Busy => Err(busy()),
            Slot::Done => Err(finished()),
        };
        if let Ok(v) = &r {
            *self.released.borrow_mut() += v.len() as u64;
        }
        r
    }

    /// `final` for the wasm backend, synchronously.
    #[wasm_bindgen(js_name = finalSync)]
    pub fn final_sync(&self) -> Result<Vec<u8>, Failure> {
        let mut slot = self.slot.borrow_mut();
        if let Slot::Ready(DecCtx::Web(_)) = &*slot {
            return Err(needs_wasm("finalSync"));
        }
        let r = match slot.take()? {
            DecCtx::Wasm(d) => {
                *slot = Slot::Done;
                wasm_dec_finish(d)
            }
            DecCtx::Web(_) => Err(needs_wasm("finalSync")),
        };
        if let Ok(v) = &r {
            *self.released.borrow_mut() += v.len() as u64;
        }
        r
    }
}

fn wasm_dec_update(d: &mut CoreDec<RustCrypto>, chunk: &[u8]) -> Fallible<Vec<u8>> {
    let mut out = vec![0u8; d.update_len(chunk.len())];
    let n = d.update(chunk, &mut out)?;
    out.truncate(n);
    Ok(out)
}

fn wasm_dec_finish(d: CoreDec<RustCrypto>) -> Fallible<Vec<u8>> {
    let mut out = vec![0u8; d.finish_len()];
    let n = d.finish(&mut out)?;
    out.truncate(n);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// One-shot

fn idx(x: u64) -> Fallible<u32> {
    u32::try_from(x).map_err(|_| Failure::Core(CoreError::LimitExceeded))
}

fn to_uint8(mut v: Vec<u8>) -> Uint8Array {
    let a = Uint8Array::from(&v[..]);
    v.fill(0);
    a
}

/// A whole single- or parts-layout object on WebCrypto: each segment of core's shape through
/// its own encryptor, written where the shape puts it.
async fn web_encrypt(key: CoreKey, pt: Uint8Array) -> Fallible<Uint8Array> {
    let shape = CoreShape::from_plaintext_len(key.header(), u64::from(pt.length()))?;
    let out = Uint8Array::new_with_length(idx(shape.ciphertext_len())?);
    let parts = !matches!(key.header().layout, isec_core::Layout::Single);
    for ordinal in 0..shape.segment_count() {
        let seg = shape.segment(ordinal).ok_or(Failure::Core(CoreError::InvalidState))?;
        let part = parts.then_some((seg.number, seg.is_last));
        let body = pt.subarray(idx(seg.pt_start)?, idx(seg.pt_start + seg.pt_len)?);
        let ct = WebEnc::new(&key, part, None)?.run(&body).await?;
        if u64::from(ct.length()) != seg.ct_len {
            return Err(Failure::Core(CoreError::InvalidState));
        }
        out.set(&ct, idx(seg.ct_start)?);
    }
    Ok(out)
}

/// Encrypts a whole single- or parts-layout object (fresh nonce prefixes).
#[wasm_bindgen(js_name = encrypt, unchecked_return_type = "Promise<Uint8Array>")]
pub fn encrypt(
    key: &ObjectKey,
    plaintext: &Uint8Array,
    #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
) -> Promise {
    match Backend::from_options(options.as_ref()) {
        Err(e) => settle(Err(e)),
        Ok(Backend::Wasm) => settle(
            oneshot::encrypt::<RustCrypto>(&key.inner, &plaintext.to_vec())
                .map(|v| to_uint8(v).into())
                .map_err(Into::into),
        ),
        Ok(Backend::WebCrypto) => {
            let (k, pt) = (key.inner.clone(), plaintext.clone());
            future_to_promise(async move { web_encrypt(k, pt).await.map(Into::into).map_err(|e| to_js(&e)) })
        }
    }
}

/// Encrypts part `partNumber` (1..=10000) of a parts- or table-layout object.
#[wasm_bindgen(js_name = encryptPart, unchecked_return_type = "Promise<Uint8Array>")]
pub fn encrypt_part(
    key: &ObjectKey,
    #[wasm_bindgen(js_name = partNumber)] part_number: f64,
    #[wasm_bindgen(js_name = isLast)] is_last: bool,
    plaintext: &Uint8Array,
    #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
) -> Promise {
    let r = to_part_number(part_number).and_then(|n| Ok((n, Backend::from_options(options.as_ref())?)));
    match r {
        Err(e) => settle(Err(e)),
        Ok((n, Backend::Wasm)) => settle(
            oneshot::encrypt_part::<RustCrypto>(&key.inner, n, is_last, &plaintext.to_vec())
                .map(|v| to_uint8(v).into())
                .map_err(Into::into),
        ),
        Ok((n, Backend::WebCrypto)) => match WebEnc::new(&key.inner, Some((n, is_last)), None) {
            Err(e) => settle(Err(e)),
            Ok(w) => {
                let pt = plaintext.clone();
                future_to_promise(async move { w.run(&pt).await.map(Into::into).map_err(|e| to_js(&e)) })
            }
        },
    }
}

/// `encrypt` on the wasm backend, synchronously.
#[wasm_bindgen(js_name = encryptSync)]
pub fn encrypt_sync(key: &ObjectKey, plaintext: &[u8]) -> Result<Vec<u8>, Failure> {
    Ok(oneshot::encrypt::<RustCrypto>(&key.inner, plaintext)?)
}

/// `encryptPart` on the wasm backend, synchronously.
#[wasm_bindgen(js_name = encryptPartSync)]
pub fn encrypt_part_sync(
    key: &ObjectKey,
    #[wasm_bindgen(js_name = partNumber)] part_number: f64,
    #[wasm_bindgen(js_name = isLast)] is_last: bool,
    plaintext: &[u8],
) -> Result<Vec<u8>, Failure> {
    Ok(oneshot::encrypt_part::<RustCrypto>(&key.inner, to_part_number(part_number)?, is_last, plaintext)?)
}

fn decrypt_with(
    options: Option<&JsValue>,
    wasm: impl FnOnce() -> Fallible<Vec<u8>>,
    web: impl FnOnce() -> Fallible<(WebDec, Uint8Array)>,
) -> Promise {
    match Backend::from_options(options) {
        Err(e) => settle(Err(e)),
        Ok(Backend::Wasm) => settle(wasm().map(|v| to_uint8(v).into())),
        Ok(Backend::WebCrypto) => match web() {
            Err(e) => settle(Err(e)),
            Ok((w, ct)) => future_to_promise(async move { web_all(w, ct).await.map_err(|e| to_js(&e)) }),
        },
    }
}

/// Decrypts a whole single- or parts-layout object: all or nothing.
#[wasm_bindgen(js_name = decrypt, unchecked_return_type = "Promise<Uint8Array>")]
pub fn decrypt(
    key: &ObjectKey,
    ciphertext: &Uint8Array,
    #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
) -> Promise {
    let k = &key.inner;
    decrypt_with(
        options.as_ref(),
        || Ok(oneshot::decrypt::<RustCrypto>(k, &ciphertext.to_vec())?),
        || Ok((WebDec::open(k)?, ciphertext.clone())),
    )
}

/// `decrypt` on the wasm backend, synchronously.
#[wasm_bindgen(js_name = decryptSync)]
pub fn decrypt_sync(key: &ObjectKey, ciphertext: &[u8]) -> Result<Vec<u8>, Failure> {
    Ok(oneshot::decrypt::<RustCrypto>(&key.inner, ciphertext)?)
}

fn table_shape(key: &CoreKey, table: &[u8], ct_len: usize) -> Fallible<CoreShape> {
    let t = SegmentTable::decode(table, key)?;
    Ok(CoreShape::from_table(key.header(), t, ct_len as u64)?)
}

/// Decrypts a whole table-layout object with its encoded segment table (all or nothing).
#[wasm_bindgen(js_name = decryptWithTable, unchecked_return_type = "Promise<Uint8Array>")]
pub fn decrypt_with_table(
    key: &ObjectKey,
    table: &[u8],
    ciphertext: &Uint8Array,
    #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
) -> Promise {
    let k = &key.inner;
    decrypt_with(
        options.as_ref(),
        || Ok(oneshot::decrypt_with_table::<RustCrypto>(k, table, &ciphertext.to_vec())?),
        || Ok((WebDec::with_shape(k, table_shape(k, table, ciphertext.length() as usize)?)?, ciphertext.clone())),
    )
}

/// `decryptWithTable` on the wasm backend, synchronously.
#[wasm_bindgen(js_name = decryptWithTableSync)]
pub fn decrypt_with_table_sync(key: &ObjectKey, table: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, Failure> {
    Ok(oneshot::decrypt_with_table::<RustCrypto>(&key.inner, table, ciphertext)?)
}

/// The fetched bytes must be exactly what `shape.mapRange(start, end)` named.
fn check_fetched(shape: &CoreShape, a: u64, b: u64, fetched: usize) -> Fallible<()> {
    let plan = shape.map_range(a, b);
    if fetched as u64 != plan.ct_end - plan.ct_start {
        return Err(Failure::Detail(
            CoreError::Truncated,
            format!("fetched {fetched} bytes; the range plan names {}", plan.ct_end - plan.ct_start),
        ));
    }
    Ok(())
}

/// Decrypts the plaintext range `[start, end)` (`end` may be `Infinity`) from `fetched`, the
/// ciphertext bytes `shape.mapRange(start, end)` said to fetch. All or nothing.
#[wasm_bindgen(js_name = decryptRange, unchecked_return_type = "Promise<Uint8Array>")]
pub fn decrypt_range(
    key: &ObjectKey,
    shape: &Shape,
    start: f64,
    end: f64,
    fetched: &Uint8Array,
    #[wasm_bindgen(unchecked_optional_param_type = "BackendOptions")] options: Option<JsValue>,
) -> Promise {
    let k = &key.inner;
    let bounds = to_u64(start, "start", false).and_then(|a| Ok((a, to_u64(end, "end", true)?)));
    let (a, b) = match bounds {
        Ok(x) => x,
        Err(e) => return settle(Err(e)),
    };
    decrypt_with(
        options.as_ref(),
        || decrypt_range_wasm(k, &shape.inner, a, b, &fetched.to_vec()),
        || {
            check_fetched(&shape.inner, a, b, fetched.length() as usize)?;
            Ok((WebDec::for_range(k, shape.inner.clone(), a, b)?, fetched.clone()))
        },
    )
}

fn decrypt_range_wasm(k: &CoreKey, shape: &CoreShape, a: u64, b: u64, fetched: &[u8]) -> Fallible<Vec<u8>> {
    check_fetched(shape, a, b, fetched.len())?;
    Ok(oneshot::decrypt_range::<RustCrypto>(k, shape.clone(), a, b, &mut |_, _| Ok(fetched.to_vec()))?)
}

/// `decryptRange` on the wasm backend, synchronously.
#[wasm_bindgen(js_name = decryptRangeSync)]
pub fn decrypt_range_sync(
    key: &ObjectKey,
    shape: &Shape,
    start: f64,
    end: f64,
    fetched: &[u8],
) -> Result<Vec<u8>, Failure> {
    decrypt_range_wasm(&key.inner, &shape.inner, to_u64(start, "start", false)?, to_u64(end, "end", true)?, fetched)
}
