//! Streaming and one-shot encryption and decryption on either backend.
//!
//! The `wasm` backend calls core's contexts with the RustCrypto cipher, synchronously. The
//! `webcrypto` backend (SPEC.md §5.4) runs core's encryptor with `cipher::Unsealed` and
//! seals the frames it writes with `crypto.subtle.encrypt`; it decrypts through
//! `Decryptor::external_segment` / `external_accept` / `external_reject` around
//! `crypto.subtle.decrypt`. Several frames are in flight at once, in a sliding window that
//! outlives a call when a stream drives the context (`_pump`): encryption takes each frame's
//! nonce from core as it sends it; decryption sends each frame under the segment key core
//! predicts for it (`Decryptor::external_segment_ahead`) and has core check it in order.
//!
//! The async methods return promises; a context runs one call at a time (a second call while
//! one is pending is `invalid_state`), and after any error it refuses further use.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use isec_core::cipher::{RustCrypto, Unsealed};
use isec_core::layout::{FrameSpec, Shape as CoreShape};
use isec_core::limits::{FRAME_OVERHEAD, NONCE_LEN};
use isec_core::{
    Decryptor as CoreDec, Encryptor as CoreEnc, Error as CoreError, ObjectKey as CoreKey, SegmentTable, oneshot,
};
use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

use crate::error::{Failure, Fallible, to_js};
use crate::keys::ObjectKey;
use crate::ops::Shape;
use crate::webcrypto::{self, Sink, Subtle};
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
    Failure::Detail(CoreError::InvalidState, "the context has finished, or failed".into())
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

/// A frame whose WebCrypto call is in flight.
struct Flight {
    nonce: [u8; NONCE_LEN],
    /// Encryption: the plaintext length; decryption: the whole frame's length.
    len: usize,
    /// Decryption: the segment whose key the frame went out under, and whether it ends the
    /// input.
    segment: u32,
    at_end: bool,
    /// `None`: a frame too short to hold a tag, never sent (core rejects it in its turn).
    call: Option<JsFuture>,
}

/// An encryptor whose frames WebCrypto seals. Core decides every frame's nonce, position and
/// the size limits through its in-place API (`seal_frame_in_place`, `finish_in_place`),
/// given a frame-sized scratch buffer in wasm memory; with `cipher::Unsealed` it writes the
/// nonce and leaves the body alone, so the plaintext itself never enters wasm memory: it goes
/// from the caller's chunks straight to `crypto.subtle.encrypt`, which copies it when called.
///
/// Frames are sent as soon as they are complete and known not to be the last (core's own
/// encryptor likewise holds back a full frame until more input arrives); up to
/// `webcrypto::window` of them are in flight while later input is cut, and their results
/// are written out in order. A frame split across chunks, and the held-back frame, are
/// gathered in one frame-sized array reused for every frame (no caller's chunk is kept
/// beyond the call that passed it).
struct WebEnc {
    enc: Option<CoreEnc<Unsealed>>,
    subtle: Subtle,
    key: CoreKey,
    /// SPEC.md §4: segment 0 for the single layout, the part number otherwise.
    segment: u32,
    crypto_key: Option<JsValue>,
    /// Plaintext bytes per frame.
    frame: usize,
    window: usize,
    /// The frame being gathered (JS memory, reused), and how much of it is filled.
    buf: Option<Uint8Array>,
    held: usize,
    /// Frame-sized scratch for core's in-place calls: nonce in front, body untouched.
    scratch: Vec<u8>,
    flights: VecDeque<Flight>,
}

impl WebEnc {
    fn new(key: &CoreKey, part: Option<(u32, bool)>, prefix: Option<isec_core::Prefix>) -> Fallible<Self> {
        let full = frame_ct_len(key)?;
        Ok(Self {
            enc: Some(make_encryptor(key, part, prefix)?),
            subtle: webcrypto::require()?,
            key: key.clone(),
            segment: part.map_or(0, |p| p.0),
            crypto_key: None,
            frame: full - FRAME_OVERHEAD,
            window: webcrypto::window(full),
            buf: None,
            held: 0,
            scratch: vec![0u8; full],
            flights: VecDeque::new(),
        })
    }

    fn core(&mut self) -> Fallible<&mut CoreEnc<Unsealed>> {
        self.enc.as_mut().ok_or(Failure::Core(CoreError::InvalidState))
    }

    fn buffer(&mut self) -> Fallible<Uint8Array> {
        if self.buf.is_none() {
            self.buf = Some(Uint8Array::new_with_length(u32_of(self.frame)?));
        }
        self.buf.clone().ok_or(Failure::Core(CoreError::InvalidState))
    }

    async fn crypto_key(&mut self) -> Fallible<JsValue> {
        if let Some(k) = &self.crypto_key {
            return Ok(k.clone());
        }
        let k = webcrypto::segment_key(&self.subtle, &self.key, self.segment, "encrypt").await?;
        self.crypto_key = Some(k.clone());
        Ok(k)
    }

    /// Writes the oldest frame in flight, once sealed.
    async fn land(&mut self, sink: &mut Sink) -> Fallible<()> {
        if let Some(f) = self.flights.pop_front() {
            let call = f.call.ok_or(Failure::Core(CoreError::InvalidState))?;
            sink.put_frame(&f.nonce, &webcrypto::sealed(call.await, f.len)?)?;
        }
        Ok(())
    }

    /// Writes frames in flight, oldest first, until at most `keep` remain.
    async fn drain(&mut self, keep: usize, sink: &mut Sink) -> Fallible<()> {
        while self.flights.len() > keep {
            self.land(sink).await?;
        }
        Ok(())
    }

    /// Sends one frame's plaintext with its nonce from core (`None`: the next full frame,
    /// known not to be the last), after making room in the window.
    async fn send(&mut self, pt: &Uint8Array, nonce: Option<[u8; NONCE_LEN]>, sink: &mut Sink) -> Fallible<()> {
        let keep = self.window - 1;
        self.drain(keep, sink).await?;
        let key = self.crypto_key().await?;
        let nonce = match nonce {
            Some(n) => n,
            None => {
                let mut scratch = std::mem::take(&mut self.scratch);
                let r = self.core().and_then(|e| Ok(e.seal_frame_in_place(&mut scratch)?));
                let mut n = [0u8; NONCE_LEN];
                n.copy_from_slice(&scratch[..NONCE_LEN]);
                self.scratch = scratch;
                r?;
                n
            }
        };
        let call = webcrypto::seal(&self.subtle, &key, &nonce, pt)?;
        self.flights.push_back(Flight {
            nonce,
            len: pt.length() as usize,
            segment: self.segment,
            at_end: false,
            call: Some(call),
        });
        Ok(())
    }

    /// Whether `n` more bytes only fill the held frame (nothing to send): the caller may then
    /// [`WebEnc::absorb`] them without going async.
    fn absorbs(&self, n: usize) -> bool {
        self.held + n <= self.frame
    }

    /// Copies `chunk` into the held frame; only when [`WebEnc::absorbs`] said so.
    fn absorb(&mut self, chunk: &Uint8Array) -> Fallible<()> {
        let buf = self.buffer()?;
        buf.set(chunk, u32_of(self.held)?);
        self.held += chunk.length() as usize;
        Ok(())
    }

    /// Cuts `chunk` into frames and sends every frame that more input shows is not the last.
    async fn push(&mut self, chunk: &Uint8Array, sink: &mut Sink) -> Fallible<()> {
        let f = self.frame;
        let len = chunk.length() as usize;
        let mut at = 0;
        while at < len {
            if self.held == f {
                // More input follows the held full frame: it is not the last. WebCrypto
                // copies it when called, so the buffer is free again right after.
                let buf = self.buffer()?;
                self.send(&buf, None, sink).await?;
                self.held = 0;
            } else if self.held == 0 && len - at > f {
                self.send(&chunk.subarray(u32_of(at)?, u32_of(at + f)?), None, sink).await?;
                at += f;
            } else {
                let take = (f - self.held).min(len - at);
                self.absorb(&chunk.subarray(u32_of(at)?, u32_of(at + take)?))?;
                at += take;
            }
        }
        Ok(())
    }

    /// Seals the held bytes (possibly none) as the segment's last frame and writes every
    /// frame still in flight.
    async fn finish(mut self, sink: &mut Sink) -> Fallible<()> {
        let held = self.held;
        let enc = self.enc.take().ok_or(Failure::Core(CoreError::InvalidState))?;
        let frame = self.scratch.get_mut(..held + FRAME_OVERHEAD).ok_or(Failure::Core(CoreError::InvalidState))?;
        enc.finish_in_place(frame)?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&frame[..NONCE_LEN]);
        let pt = match held {
            0 => Uint8Array::new_with_length(0),
            _ => self.buffer()?.subarray(0, u32_of(held)?),
        };
        self.send(&pt, Some(nonce), sink).await?;
        self.drain(0, sink).await
    }

    /// Bytes of frames in flight, once sealed.
    fn in_flight(&self) -> usize {
        self.flights.iter().map(|f| f.len + FRAME_OVERHEAD).sum()
    }

    /// Bytes `update` returns for `n` more input bytes: the frames in flight and those it
    /// completes.
    fn update_len(&self, n: usize) -> usize {
        let total = self.held + n;
        let sent = if total == 0 { 0 } else { (total - 1) / self.frame * (self.frame + FRAME_OVERHEAD) };
        self.in_flight() + sent
    }

    /// Plaintext bytes taken so far.
    fn consumed(&self) -> u64 {
        self.enc.as_ref().map_or(0, CoreEnc::consumed) + self.held as u64
    }

    /// A whole segment: `update(pt)` then `final()`, written to `sink`.
    async fn run(mut self, pt: &Uint8Array, sink: &mut Sink) -> Fallible<()> {
        self.push(pt, sink).await?;
        self.finish(sink).await
    }
}

/// Streaming encryptor of one segment: a whole single-layout object, or one part.
#[wasm_bindgen(js_name = Encryptor)]
pub struct Encryptor {
    slot: Rc<RefCell<Slot<EncCtx>>>,
    backend: Backend,
    full: usize,
    /// Kept apart from the context, which `final` consumes: a table records it once the
    /// part is complete.
    prefix: isec_core::Prefix,
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
        let (ctx, prefix) = match backend {
            Backend::Wasm => {
                let e = make_encryptor(key, part, prefix)?;
                let p = e.prefix();
                (EncCtx::Wasm(e), p)
            }
            Backend::WebCrypto => {
                let mut w = WebEnc::new(key, part, prefix)?;
                let p = w.core()?.prefix();
                (EncCtx::Web(w), p)
            }
        };
        Ok(Self { slot: Rc::new(RefCell::new(Slot::Ready(ctx))), backend, full, prefix })
    }

    fn len_of(&self, f: impl Fn(&EncCtx) -> usize) -> usize {
        match &*self.slot.borrow() {
            Slot::Ready(c) => f(c),
            _ => 0,
        }
    }

    /// `update` (`pump` false: every frame the input completes is written before the promise
    /// resolves) or the streams' `_pump` (`pump` true: frames may stay in flight, written by
    /// a later call; output as pieces).
    fn update_impl(&self, chunk: &JsValue, parts: bool, pump: bool) -> Promise {
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
                // After an error the context refuses every call, on either backend.
                *self.slot.borrow_mut() = if r.is_ok() { Slot::Ready(EncCtx::Wasm(e)) } else { Slot::Done };
                settle(r.map(|v| wasm_out(&v, parts)))
            }
            EncCtx::Web(mut w) if (pump || w.flights.is_empty()) && w.absorbs(total_len(&chunks)) => {
                // Input that only fills the held frame: no WebCrypto call, no await.
                let r = chunks.iter().try_for_each(|c| w.absorb(c)).and_then(|()| Ok(Sink::new(parts, 0)?.into_js()));
                *self.slot.borrow_mut() = if r.is_ok() { Slot::Ready(EncCtx::Web(w)) } else { Slot::Done };
                settle(r)
            }
            EncCtx::Web(mut w) => {
                let slot = self.slot.clone();
                future_to_promise(async move {
                    let r = async {
                        let mut sink = Sink::new(parts, w.update_len(total_len(&chunks)))?;
                        for c in &chunks {
                            w.push(c, &mut sink).await?;
                        }
                        if !pump {
                            w.drain(0, &mut sink).await?;
                        }
                        Ok::<_, Failure>(sink.into_js())
                    }
                    .await;
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
            EncCtx::Web(w) => future_to_promise(async move {
                let r = async {
                    let mut sink = Sink::new(parts, w.in_flight() + w.held + FRAME_OVERHEAD)?;
                    w.finish(&mut sink).await?;
                    Ok::<_, Failure>(sink.into_js())
                }
                .await;
                r.map_err(|e| to_js(&e))
            }),
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

    /// The 7-byte nonce prefix of this encryption (also the first 7 bytes of its output). A
    /// table-layout writer records it in the `SegmentTable` entry of the part, for the
    /// encryption it completed the upload with. Readable after `final`.
    #[wasm_bindgen(getter, js_name = prefix)]
    #[must_use]
    pub fn prefix(&self) -> js_sys::Uint8Array {
        js_sys::Uint8Array::from(&self.prefix[..])
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
            EncCtx::Web(w) => w.in_flight() + w.held + FRAME_OVERHEAD,
        }) as u64)
    }

    /// Plaintext bytes taken so far.
    #[wasm_bindgen(getter, js_name = consumed)]
    #[must_use]
    pub fn consumed(&self) -> f64 {
        match &*self.slot.borrow() {
            Slot::Ready(EncCtx::Wasm(e)) => num(e.consumed()),
            Slot::Ready(EncCtx::Web(w)) => num(w.consumed()),
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
        self.update_impl(chunk, false, false)
    }

    /// `update` resolving to the output as pieces, without concatenating them (what
    /// `EncryptStream` enqueues).
    #[wasm_bindgen(js_name = updateParts, unchecked_return_type = "Promise<Uint8Array[]>")]
    pub fn update_parts(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | Uint8Array[]")] chunk: &JsValue,
    ) -> Promise {
        self.update_impl(chunk, true, false)
    }

    /// What `EncryptStream` calls: `updateParts`, except that frames may stay in flight in
    /// WebCrypto when the call resolves (a later call or `finalParts` hands them over), so
    /// that WebCrypto keeps working while the stream reads its next chunk. The chunk itself
    /// is not kept.
    #[wasm_bindgen(js_name = _pump, skip_typescript)]
    pub fn pump(&self, chunk: &JsValue) -> Promise {
        self.update_impl(chunk, true, true)
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
        let r = match &mut *slot {
            Slot::Ready(EncCtx::Wasm(e)) => wasm_update(e, chunk),
            Slot::Ready(EncCtx::Web(_)) => return Err(needs_wasm("updateSync")),
            Slot::Busy => return Err(busy()),
            Slot::Done => return Err(finished()),
        };
        if r.is_err() {
            *slot = Slot::Done;
        }
        r
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
/// JS memory: core needs only each frame's length and nonce, and WebCrypto reads each frame
/// from a view of the caller's chunk (a frame split across chunks is gathered in one
/// frame-sized array, reused for every such frame; no caller's chunk is kept beyond the call
/// that passed it).
///
/// Frames are sent as soon as they are complete, up to `webcrypto::window` at a time, each
/// under the key of the segment core predicts for it (`external_segment_ahead`); in order,
/// core then names the frame's segment (`external_segment`), which for an authentic object is
/// the predicted one, and accepts or rejects it (`external_accept` / `external_reject`).
/// Plaintext is released only after that.
struct WebDec {
    dec: CoreDec<RustCrypto>,
    cut: Cut,
    /// Full frame length (frame size + 28).
    full: usize,
    window: usize,
    /// A frame split across chunks: its first `held` bytes (JS memory, reused).
    buf: Option<Uint8Array>,
    held: usize,
    subtle: Subtle,
    key: CoreKey,
    /// Segment keys imported so far (the current segment's and the next one's).
    crypto_keys: VecDeque<(u32, JsValue)>,
    flights: VecDeque<Flight>,
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
        let full = frame_ct_len(key)?;
        Ok(Self {
            dec,
            cut,
            full,
            window: webcrypto::window(full),
            buf: None,
            held: 0,
            subtle: webcrypto::require()?,
            key: key.clone(),
            crypto_keys: VecDeque::new(),
            flights: VecDeque::new(),
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

    fn buffer(&mut self) -> Fallible<Uint8Array> {
        if self.buf.is_none() {
            self.buf = Some(Uint8Array::new_with_length(u32_of(self.full)?));
        }
        self.buf.clone().ok_or(Failure::Core(CoreError::InvalidState))
    }

    async fn crypto_key(&mut self, segment: u32) -> Fallible<JsValue> {
        if let Some((_, k)) = self.crypto_keys.iter().find(|(s, _)| *s == segment) {
            return Ok(k.clone());
        }
        let k = webcrypto::segment_key(&self.subtle, &self.key, segment, "decrypt").await?;
        if self.crypto_keys.len() >= 2 {
            self.crypto_keys.pop_front();
        }
        self.crypto_keys.push_back((segment, k.clone()));
        Ok(k)
    }

    /// Checks the oldest frame in flight with core and releases what core allows.
    async fn land(&mut self, sink: &mut Sink) -> Fallible<()> {
        let Some(f) = self.flights.pop_front() else { return Ok(()) };
        let segment = self.dec.external_segment(f.len, f.at_end)?;
        if segment != f.segment {
            // Cannot happen: core predicted this frame's segment from the frames it has
            // accepted since. Nothing of the frame is released.
            return Err(Failure::Detail(CoreError::InvalidState, "frame segment differs from the prediction".into()));
        }
        let outcome = match f.call {
            Some(call) => call.await.ok(),
            None => None,
        };
        let Some(pt) = outcome else {
            return Err(self.dec.external_reject().into());
        };
        let pt = Uint8Array::new(&pt);
        let r = self.dec.external_accept(&f.nonce, f.len, f.at_end)?;
        let (lo, hi) = (u32_of(r.start - NONCE_LEN)?, u32_of(r.end - NONCE_LEN)?);
        if hi > pt.length() {
            return Err(Failure::Caused(
                CoreError::InvalidState,
                "WebCrypto decrypt failed".into(),
                JsValue::from_str("unexpected output length"),
            ));
        }
        sink.put(&pt.subarray(lo, hi));
        Ok(())
    }

    async fn drain(&mut self, keep: usize, sink: &mut Sink) -> Fallible<()> {
        while self.flights.len() > keep {
            self.land(sink).await?;
        }
        Ok(())
    }

    /// Sends one whole frame to WebCrypto, after making room in the window.
    async fn send(&mut self, frame: &Uint8Array, at_end: bool, sink: &mut Sink) -> Fallible<()> {
        let keep = self.window - 1;
        self.drain(keep, sink).await?;
        let len = frame.length() as usize;
        let ahead = self.flights.len() as u64;
        let mut flight = Flight { nonce: [0; NONCE_LEN], len, segment: 0, at_end, call: None };
        // No prediction: no frame is expected there; core names the error in its turn.
        if let (Some(segment), true) = (self.dec.external_segment_ahead(ahead), len >= FRAME_OVERHEAD) {
            let key = self.crypto_key(segment).await?;
            // The nonce core checks is read when WebCrypto copies the frame: both see the
            // same bytes.
            frame.subarray(0, u32_of(NONCE_LEN)?).copy_to(&mut flight.nonce);
            flight.call = Some(webcrypto::open(&self.subtle, &key, &flight.nonce, frame)?);
            flight.segment = segment;
        }
        self.flights.push_back(flight);
        Ok(())
    }

    /// Whether `n` more bytes only extend a split frame (nothing to send, nothing pending):
    /// the caller may then [`WebDec::absorb`] them without going async.
    fn absorbs(&self, n: usize) -> bool {
        !self.failed && self.need().is_some_and(|need| self.held + n < need)
    }

    fn absorb(&mut self, chunk: &Uint8Array) -> Fallible<()> {
        let buf = self.buffer()?;
        buf.set(chunk, u32_of(self.held)?);
        self.held += chunk.length() as usize;
        Ok(())
    }

    /// Cuts `chunk` into frames and sends each complete one. Returns the bytes past the last
    /// expected frame.
    async fn push(&mut self, chunk: &Uint8Array, sink: &mut Sink) -> Fallible<usize> {
        let len = chunk.length() as usize;
        let mut at = 0usize;
        while at < len {
            let Some(need) = self.need() else { break };
            if self.held > 0 || len - at < need {
                let take = (need - self.held).min(len - at);
                self.absorb(&chunk.subarray(u32_of(at)?, u32_of(at + take)?))?;
                at += take;
                if self.held < need {
                    break;
                }
                self.held = 0;
                self.advance_cut();
                // WebCrypto copies the frame when called: the buffer is free again after.
                let frame = self.buffer()?.subarray(0, u32_of(need)?);
                self.send(&frame, false, sink).await?;
            } else {
                self.advance_cut();
                self.send(&chunk.subarray(u32_of(at)?, u32_of(at + need)?), false, sink).await?;
                at += need;
            }
        }
        Ok(len - at)
    }

    /// Feeds ciphertext; puts released plaintext into `sink`. `pump`: frames may stay in
    /// flight.
    async fn feed(&mut self, chunks: &[Uint8Array], pump: bool, sink: &mut Sink) -> Fallible<()> {
        if self.failed {
            return Err(Failure::Core(CoreError::InvalidState));
        }
        let r = async {
            let mut beyond = 0;
            for c in chunks {
                beyond += self.push(c, sink).await?;
            }
            if !pump || beyond > 0 {
                self.drain(0, sink).await?;
            }
            // Bytes after the final frame: core names the error (trailing_data), once every
            // frame before them has been checked.
            if (beyond > 0 || self.held > 0) && self.flights.is_empty() && self.dec.is_done() {
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

    /// Ends the input: checks the frames in flight, opens a final short frame, if any, and
    /// lets core report truncation.
    async fn end(mut self, sink: &mut Sink) -> Fallible<()> {
        if self.failed {
            return Err(Failure::Core(CoreError::InvalidState));
        }
        if self.held > 0 {
            let frame = self.buffer()?.subarray(0, u32_of(self.held)?);
            self.held = 0;
            self.send(&frame, true, sink).await?;
        }
        self.drain(0, sink).await?;
        self.dec.finish(&mut [])?;
        Ok(())
    }

    /// Upper bound of plaintext from what is in flight and held plus `n` more bytes.
    fn bound(&self, n: usize) -> usize {
        self.flights.iter().map(|f| f.len).sum::<usize>() + self.held + n
    }
}

/// Runs a whole ciphertext through `web` (all or nothing).
async fn web_all(mut web: WebDec, ct: Uint8Array) -> Fallible<JsValue> {
    let mut sink = Sink::new(false, ct.length() as usize)?;
    let r = async {
        web.feed(std::slice::from_ref(&ct), false, &mut sink).await?;
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

    /// `update` (`pump` false) or the streams' `_pump` (`pump` true: frames may stay in
    /// flight, released by a later call; output as pieces).
    fn update_impl(&self, chunk: &JsValue, parts: bool, pump: bool) -> Promise {
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
                *self.slot.borrow_mut() = if r.is_ok() { Slot::Ready(DecCtx::Wasm(d)) } else { Slot::Done };
                if let Ok(v) = &r {
                    *self.released.borrow_mut() += v.len() as u64;
                }
                settle(r.map(|v| wasm_out(&v, parts)))
            }
            DecCtx::Web(mut w) if (pump || w.flights.is_empty()) && w.absorbs(total_len(&chunks)) => {
                // Input that only extends a split frame: no WebCrypto call, no await.
                let r = chunks.iter().try_for_each(|c| w.absorb(c)).and_then(|()| Ok(Sink::new(parts, 0)?.into_js()));
                if r.is_err() {
                    w.failed = true;
                }
                *self.slot.borrow_mut() = Slot::Ready(DecCtx::Web(w));
                settle(r)
            }
            DecCtx::Web(mut w) => {
                let (slot, released) = (self.slot.clone(), self.released.clone());
                future_to_promise(async move {
                    let r = async {
                        let mut sink = Sink::new(parts, w.bound(total_len(&chunks)))?;
                        match w.feed(&chunks, pump, &mut sink).await {
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
        self.update_impl(chunk, false, false)
    }

    /// `update` resolving to the plaintext as pieces, without concatenating them (what
    /// `DecryptStream` enqueues).
    #[wasm_bindgen(js_name = updateParts, unchecked_return_type = "Promise<Uint8Array[]>")]
    pub fn update_parts(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | Uint8Array[]")] chunk: &JsValue,
    ) -> Promise {
        self.update_impl(chunk, true, false)
    }

    /// What `DecryptStream` calls: `updateParts`, except that frames may stay in flight in
    /// WebCrypto when the call resolves (a later call or `finalParts` releases them once
    /// verified), so that WebCrypto keeps working while the stream reads its next chunk. The
    /// chunk itself is not kept.
    #[wasm_bindgen(js_name = _pump, skip_typescript)]
    pub fn pump(&self, chunk: &JsValue) -> Promise {
        self.update_impl(chunk, true, true)
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
            Slot::Ready(DecCtx::Web(_)) => return Err(needs_wasm("updateSync")),
            Slot::Busy => return Err(busy()),
            Slot::Done => return Err(finished()),
        };
        match &r {
            Ok(v) => *self.released.borrow_mut() += v.len() as u64,
            Err(_) => *slot = Slot::Done,
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
/// its own encryptor, written straight where the shape puts it (no intermediate copy).
async fn web_encrypt(key: CoreKey, pt: Uint8Array) -> Fallible<Uint8Array> {
    let shape = CoreShape::from_plaintext_len(key.header(), u64::from(pt.length()))?;
    let out = Uint8Array::new_with_length(idx(shape.ciphertext_len())?);
    let parts = !matches!(key.header().layout, isec_core::Layout::Single);
    for ordinal in 0..shape.segment_count() {
        let seg = shape.segment(ordinal).ok_or(Failure::Core(CoreError::InvalidState))?;
        let part = parts.then_some((seg.number, seg.is_last));
        let body = pt.subarray(idx(seg.pt_start)?, idx(seg.pt_start + seg.pt_len)?);
        let mut sink = Sink::region(&out, idx(seg.ct_start)?);
        WebEnc::new(&key, part, None)?.run(&body, &mut sink).await?;
        if sink.len() != seg.ct_len {
            return Err(Failure::Core(CoreError::InvalidState));
        }
    }
    Ok(out)
}

/// One segment on WebCrypto, into an array of its own.
async fn web_encrypt_segment(w: WebEnc, pt: Uint8Array) -> Fallible<JsValue> {
    let mut sink = Sink::new(false, w.update_len(pt.length() as usize) + w.frame + FRAME_OVERHEAD)?;
    w.run(&pt, &mut sink).await?;
    Ok(sink.into_js())
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
                future_to_promise(async move { web_encrypt_segment(w, pt).await.map_err(|e| to_js(&e)) })
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
