//! The WebCrypto windows (SPEC.md §5.4): an encryptor whose frames `crypto.subtle.encrypt`
//! seals, and a decryptor whose frames `crypto.subtle.decrypt` opens, several frames in flight
//! at once. Core decides every frame's nonce, position and length and checks every result;
//! only AES-256-GCM runs in WebCrypto. A window outlives a call when a stream drives the
//! context (`_pump`).

use std::collections::VecDeque;

use isec_core::cipher::{RustCrypto, Unsealed};
use isec_core::limits::{FRAME_OVERHEAD, NONCE_LEN};
use isec_core::shape::Shape;
use isec_core::stream::Schedule;
use isec_core::{Decryptor, Encryptor, Error as CoreError, ObjectKey, Prefix, Stream};
use js_sys::Uint8Array;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use crate::context::Window;
use crate::convert::u32_of;
use crate::error::{Failure, Fallible};
use crate::webcrypto::{self, SegmentCipher, Sink};

fn invalid_state() -> Failure {
    Failure::Core(CoreError::InvalidState)
}

/// A frame split across chunks, gathered in one JS array of `cap` bytes reused for every
/// such frame: no caller's chunk is kept beyond the call that passed it.
struct Gather {
    buf: Option<Uint8Array>,
    cap: usize,
    held: usize,
}

impl Gather {
    fn new(cap: usize) -> Self {
        Self { buf: None, cap, held: 0 }
    }

    fn buffer(&mut self) -> Fallible<Uint8Array> {
        if self.buf.is_none() {
            self.buf = Some(Uint8Array::new_with_length(u32_of(self.cap)?));
        }
        self.buf.clone().ok_or_else(invalid_state)
    }

    fn absorb(&mut self, chunk: &Uint8Array) -> Fallible<()> {
        if chunk.length() == 0 {
            return Ok(());
        }
        self.buffer()?.set(chunk, u32_of(self.held)?);
        self.held += chunk.length() as usize;
        Ok(())
    }

    /// The bytes held, emptied. WebCrypto copies what it is given when called, so the
    /// array is free again right after the call.
    fn take(&mut self) -> Fallible<Uint8Array> {
        match std::mem::take(&mut self.held) {
            0 => Ok(Uint8Array::new_with_length(0)),
            held => Ok(self.buffer()?.subarray(0, u32_of(held)?)),
        }
    }
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
/// from the caller's chunks straight to `crypto.subtle.encrypt`.
///
/// Frames are sent as soon as they are complete and known not to be the last (core's own
/// encryptor likewise holds back a full frame until more input arrives); up to
/// `webcrypto::window` of them are in flight while later input is cut, and their results
/// are written out in order.
pub(crate) struct WebEnc {
    enc: Option<Encryptor<Unsealed>>,
    cipher: SegmentCipher,
    /// SPEC.md §4: segment 0 for the single layout, the part number otherwise.
    segment: u32,
    schedule: Schedule,
    window: usize,
    gather: Gather,
    /// Frame-sized scratch for core's in-place calls: nonce in front, body untouched.
    scratch: Vec<u8>,
    flights: VecDeque<Flight>,
}

impl WebEnc {
    pub(crate) fn new(key: &ObjectKey, part: Option<(u32, bool)>, prefix: Option<Prefix>) -> Fallible<Self> {
        let enc = make_encryptor(key, part, prefix)?;
        let schedule = enc.schedule();
        Ok(Self {
            enc: Some(enc),
            cipher: SegmentCipher::new(key, "encrypt")?,
            segment: part.map_or(0, |p| p.0),
            schedule,
            window: webcrypto::window(schedule.full_frame_len()),
            gather: Gather::new(schedule.frame_size()),
            scratch: vec![0u8; schedule.full_frame_len()],
            flights: VecDeque::new(),
        })
    }

    fn core(&self) -> Fallible<&Encryptor<Unsealed>> {
        self.enc.as_ref().ok_or_else(invalid_state)
    }

    /// The nonce prefix of this encryption.
    pub(crate) fn prefix(&self) -> Fallible<Prefix> {
        Ok(self.core()?.prefix())
    }

    /// Writes frames in flight, oldest first and once sealed, until at most `keep` remain.
    async fn drain(&mut self, keep: usize, sink: &mut Sink) -> Fallible<()> {
        while self.flights.len() > keep {
            let f = self.flights.pop_front().ok_or_else(invalid_state)?;
            let call = f.call.ok_or_else(invalid_state)?;
            sink.put_frame(&f.nonce, &webcrypto::sealed(call.await, f.len)?)?;
        }
        Ok(())
    }

    /// Sends one frame's plaintext with its nonce from core (`None`: the next full frame,
    /// known not to be the last), after making room in the window.
    async fn send(&mut self, pt: &Uint8Array, nonce: Option<[u8; NONCE_LEN]>, sink: &mut Sink) -> Fallible<()> {
        self.drain(self.window - 1, sink).await?;
        let nonce = match nonce {
            Some(n) => n,
            None => {
                let e = self.enc.as_mut().ok_or_else(invalid_state)?;
                e.seal_frame_in_place(&mut self.scratch)?;
                nonce_of(&self.scratch)
            }
        };
        let call = self.cipher.seal(self.segment, &nonce, pt).await?;
        let len = pt.length() as usize;
        self.flights.push_back(Flight { nonce, len, segment: self.segment, at_end: false, call: Some(call) });
        Ok(())
    }

    /// Cuts `chunk` into frames and sends as many full frames as core's schedule says the
    /// input completes and more input follows (the last is held back until then); the rest
    /// is gathered.
    async fn push(&mut self, chunk: &Uint8Array, sink: &mut Sink) -> Fallible<()> {
        let f = self.schedule.frame_size();
        let len = chunk.length() as usize;
        let mut frames = self.schedule.sealed_frames(self.gather.held, len);
        let mut at = 0;
        if frames > 0 && self.gather.held > 0 {
            at = f - self.gather.held;
            self.gather.absorb(&chunk.subarray(0, u32_of(at)?))?;
            let frame = self.gather.take()?;
            self.send(&frame, None, sink).await?;
            frames -= 1;
        }
        for _ in 0..frames {
            self.send(&chunk.subarray(u32_of(at)?, u32_of(at + f)?), None, sink).await?;
            at += f;
        }
        self.gather.absorb(&chunk.subarray(u32_of(at)?, u32_of(len)?))
    }

    /// Bytes of frames in flight, once sealed.
    fn in_flight(&self) -> usize {
        self.flights.len() * FRAME_OVERHEAD + self.flights.iter().map(|f| f.len).sum::<usize>()
    }

    /// Plaintext bytes taken so far.
    pub(crate) fn consumed(&self) -> u64 {
        self.enc.as_ref().map_or(0, Encryptor::consumed) + self.gather.held as u64
    }

    /// A whole segment: `update(pt)` then `final()`, written to `sink`.
    pub(crate) async fn run(mut self, pt: &Uint8Array, sink: &mut Sink) -> Fallible<()> {
        self.push(pt, sink).await?;
        self.end(sink).await
    }
}

fn nonce_of(frame: &[u8]) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(&frame[..NONCE_LEN]);
    n
}

impl Window for WebEnc {
    fn idle(&self) -> bool {
        self.flights.is_empty()
    }

    fn absorbs(&self, n: usize) -> bool {
        self.schedule.sealed_frames(self.gather.held, n) == 0
    }

    fn absorb(&mut self, chunk: &Uint8Array) -> Fallible<()> {
        self.gather.absorb(chunk)
    }

    /// The frames in flight and those `n` more bytes complete.
    fn update_len(&self, n: usize) -> usize {
        self.in_flight() + self.schedule.sealed_len(self.gather.held, n)
    }

    fn final_len(&self) -> usize {
        self.in_flight() + self.schedule.final_len(self.gather.held)
    }

    async fn feed(&mut self, chunks: &[Uint8Array], pump: bool, sink: &mut Sink) -> Fallible<()> {
        for c in chunks {
            self.push(c, sink).await?;
        }
        if !pump {
            self.drain(0, sink).await?;
        }
        Ok(())
    }

    /// Seals the held bytes (possibly none) as the segment's last frame.
    async fn end(mut self, sink: &mut Sink) -> Fallible<()> {
        let held = self.gather.held;
        let mut enc = self.enc.take().ok_or_else(invalid_state)?;
        let frame = self.scratch.get_mut(..held + FRAME_OVERHEAD).ok_or_else(invalid_state)?;
        enc.finish_in_place(frame)?;
        let nonce = nonce_of(frame);
        let pt = self.gather.take()?;
        self.send(&pt, Some(nonce), sink).await?;
        self.drain(0, sink).await
    }
}

/// Core's encryptor for a segment: fresh prefix, or (tests) a chosen one.
pub(crate) fn make_encryptor<C: isec_core::FrameCipher>(
    key: &ObjectKey,
    part: Option<(u32, bool)>,
    prefix: Option<Prefix>,
) -> Fallible<Encryptor<C>> {
    Ok(match (part, prefix) {
        (None, None) => Encryptor::new(key)?,
        (Some((n, last)), None) => Encryptor::for_part(key, n, last)?,
        #[cfg(feature = "test-hooks")]
        (p, Some(prefix)) => Encryptor::with_prefix(key, p.map(|p| p.0), p.is_some_and(|p| p.1), prefix)?,
        // Only the test-hooks build passes a prefix: the shipped one has no hazmat API.
        #[cfg(not(feature = "test-hooks"))]
        (_, Some(_)) => return Err(crate::error::Failure::Core(isec_core::Error::InvalidState)),
    })
}

/// A decryptor whose frames WebCrypto opens; every check is core's. The ciphertext stays in
/// JS memory: core needs only each frame's length and nonce, and WebCrypto reads each frame
/// from a view of the caller's chunk.
///
/// Frames are sent as soon as they are complete, up to `webcrypto::window` at a time, each
/// under the key of the segment core predicts for it (`external_segment_ahead`); in order,
/// core then names the frame's segment (`external_segment`), which for an authentic object is
/// the predicted one, and accepts or rejects it (`external_accept` / `external_reject`).
/// Plaintext is released only after that.
pub(crate) struct WebDec {
    pub(crate) dec: Decryptor<RustCrypto>,
    window: usize,
    gather: Gather,
    cipher: SegmentCipher,
    flights: VecDeque<Flight>,
}

impl WebDec {
    pub(crate) fn open(key: &ObjectKey) -> Fallible<Self> {
        Self::build(key, Decryptor::new(key)?)
    }

    pub(crate) fn with_shape(key: &ObjectKey, shape: Shape) -> Fallible<Self> {
        Self::build(key, Decryptor::with_shape(key, shape)?)
    }

    pub(crate) fn for_range(key: &ObjectKey, shape: &Shape, start: u64, end: u64) -> Fallible<Self> {
        Self::build(key, Decryptor::for_range(key, shape.clone(), &shape.map_range(start, end))?)
    }

    fn build(key: &ObjectKey, dec: Decryptor<RustCrypto>) -> Fallible<Self> {
        let full = dec.schedule().full_frame_len();
        Ok(Self {
            dec,
            window: webcrypto::window(full),
            gather: Gather::new(full),
            cipher: SegmentCipher::new(key, "decrypt")?,
            flights: VecDeque::new(),
        })
    }

    /// Length of the next frame to cut, if core expects another: the frames in flight are
    /// cut but not yet accepted.
    fn need(&self) -> Option<usize> {
        self.dec.next_frame(self.flights.len() as u64).map(|f| f.ct_len)
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
        self.drain(self.window - 1, sink).await?;
        let len = frame.length() as usize;
        let ahead = self.flights.len() as u64;
        let mut flight = Flight { nonce: [0; NONCE_LEN], len, segment: 0, at_end, call: None };
        // No prediction: no frame is expected there; core names the error in its turn.
        if let (Some(segment), true) = (self.dec.external_segment_ahead(ahead), len >= FRAME_OVERHEAD) {
            let (nonce, call) = self.cipher.open(segment, frame).await?;
            (flight.nonce, flight.call, flight.segment) = (nonce, Some(call), segment);
        }
        self.flights.push_back(flight);
        Ok(())
    }

    /// Cuts `chunk` into frames and sends each complete one. Returns the bytes past the last
    /// expected frame.
    async fn push(&mut self, chunk: &Uint8Array, sink: &mut Sink) -> Fallible<usize> {
        let len = chunk.length() as usize;
        let mut at = 0usize;
        while at < len {
            let Some(need) = self.need() else { break };
            if self.gather.held > 0 || len - at < need {
                let take = (need - self.gather.held).min(len - at);
                self.gather.absorb(&chunk.subarray(u32_of(at)?, u32_of(at + take)?))?;
                at += take;
                if self.gather.held < need {
                    break;
                }
                let frame = self.gather.take()?;
                self.send(&frame, false, sink).await?;
            } else {
                self.send(&chunk.subarray(u32_of(at)?, u32_of(at + need)?), false, sink).await?;
                at += need;
            }
        }
        Ok(len - at)
    }
}

impl Window for WebDec {
    fn idle(&self) -> bool {
        self.flights.is_empty()
    }

    fn absorbs(&self, n: usize) -> bool {
        self.need().is_some_and(|need| self.gather.held + n < need)
    }

    fn absorb(&mut self, chunk: &Uint8Array) -> Fallible<()> {
        self.gather.absorb(chunk)
    }

    /// Upper bound of plaintext from what is in flight and held plus `n` more bytes.
    fn update_len(&self, n: usize) -> usize {
        self.dec.schedule().opened_bound(self.flights.iter().map(|f| f.len).sum::<usize>() + self.gather.held + n)
    }

    fn final_len(&self) -> usize {
        self.update_len(0)
    }

    async fn feed(&mut self, chunks: &[Uint8Array], pump: bool, sink: &mut Sink) -> Fallible<()> {
        let mut beyond = 0;
        for c in chunks {
            beyond += self.push(c, sink).await?;
        }
        if !pump || beyond > 0 {
            self.drain(0, sink).await?;
        }
        // Bytes after the final frame: core names the error (trailing_data), once every
        // frame before them has been checked.
        if (beyond > 0 || self.gather.held > 0) && self.flights.is_empty() && self.dec.is_done() {
            self.dec.external_segment(beyond.max(self.gather.held), false)?;
        }
        Ok(())
    }

    /// Checks the frames in flight, opens a final short frame, if any, and lets core report
    /// truncation.
    async fn end(mut self, sink: &mut Sink) -> Fallible<()> {
        if self.gather.held > 0 {
            let frame = self.gather.take()?;
            self.send(&frame, true, sink).await?;
        }
        self.drain(0, sink).await?;
        self.dec.finish(&mut [])?;
        Ok(())
    }
}
