//! The streaming decryptor: a whole object, or a range of one.

use alloc::vec::Vec;

use zeroize::Zeroize;

use super::{NextFrame, Schedule, Stream};
use crate::cipher::FrameCipher;
use crate::error::{Error, Result};
use crate::frame::SegmentOpener;
use crate::header::Layout;
use crate::kdf::ObjectKey;
use crate::limits::{FRAME_OVERHEAD, MAX_PARTS, NONCE_LEN};
use crate::nonce::{FramePosition, Nonce, Prefix};
use crate::shape::{FrameSpec, RangePlan, Shape};

/// Which frames a decryptor expects.
enum Plan {
    /// Sequential decryption of a single- or parts-layout object of unknown length: frames are
    /// full-size until one carries the object-end flag.
    Open { part_frames: Option<u64>, segment: u32, ordinal: u32 },
    /// Frames known from the object's shape: a whole table-layout object or a range.
    Known { shape: Shape, next: Option<FrameSpec>, want_start: u64, want_end: u64 },
}

/// Streaming decryptor: a whole object, or a range of one.
pub struct Decryptor<C: FrameCipher> {
    key: ObjectKey,
    plan: Plan,
    schedule: Schedule,
    pending: Vec<u8>,
    scratch: Vec<u8>,
    opener: Option<(u32, SegmentOpener<C>)>,
    prefix: Option<Prefix>,
    index: u64,
    done: bool,
    /// Set after an error or the end: every further call is refused.
    locked: bool,
    released: u64,
}

impl<C: FrameCipher> Drop for Decryptor<C> {
    /// The scratch frame holds verified plaintext the caller may not have asked for (the
    /// edges of a range).
    fn drop(&mut self) {
        self.scratch.zeroize();
    }
}

impl<C: FrameCipher> Decryptor<C> {
    /// Decrypts a whole [`Layout::Single`] or [`Layout::Parts`] object from its first byte,
    /// without knowing its length.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a table-layout key (use [`Decryptor::with_shape`]).
    pub fn new(key: &ObjectKey) -> Result<Self> {
        let header = key.header();
        let (part_frames, segment) = match header.layout {
            Layout::Single => (None, 0),
            Layout::Parts { part_frames } => (Some(u64::from(part_frames)), 1),
            Layout::Table => return Err(Error::InvalidParameter),
        };
        Self::build(key.clone(), Plan::Open { part_frames, segment, ordinal: 0 })
    }

    /// Decrypts a whole object whose shape is known (required for the table layout).
    ///
    /// # Errors
    /// As [`Decryptor::for_range`].
    pub fn with_shape(key: &ObjectKey, shape: Shape) -> Result<Self> {
        let plan = shape.map_range(0, shape.plaintext_len());
        let first = shape.first_frame();
        let mut d = Self::for_range(key, shape, &plan)?;
        // The whole object is read even when empty: its one empty frame is authenticated.
        if plan.len == 0
            && let Plan::Known { next, .. } = &mut d.plan
        {
            *next = first;
            d.done = next.is_none();
        }
        Ok(d)
    }

    /// Decrypts the ciphertext `[plan.ct_start, plan.ct_end)` and releases only the planned
    /// plaintext range. Every frame fetched is authenticated, and its nonce checked against
    /// its position in the object.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the shape does not fit the key's header.
    pub fn for_range(key: &ObjectKey, shape: Shape, plan: &RangePlan) -> Result<Self> {
        if shape.frame_size() != key.header().frame_size() {
            return Err(Error::InvalidParameter);
        }
        if *plan != shape.map_range(plan.pt_start, plan.pt_start.saturating_add(plan.len)) {
            return Err(Error::InvalidParameter);
        }
        let want_start = plan.pt_start;
        let want_end = plan.pt_start + plan.len;
        // An empty range fetches nothing and so authenticates nothing; it releases nothing.
        let next = if plan.len == 0 { None } else { shape.frame_at(want_start) };
        let mut d = Self::build(key.clone(), Plan::Known { shape, next, want_start, want_end })?;
        if let Plan::Known { next: None, .. } = d.plan {
            d.done = true;
        }
        Ok(d)
    }

    fn build(key: ObjectKey, plan: Plan) -> Result<Self> {
        let schedule = Schedule::of(&key)?;
        let full = schedule.full_frame_len();
        // Only ranges release part of a frame, and need somewhere to verify it first.
        let scratch = match plan {
            Plan::Known { .. } => Vec::with_capacity(full),
            Plan::Open { .. } => Vec::new(),
        };
        Ok(Self {
            key,
            plan,
            schedule,
            pending: Vec::with_capacity(full),
            scratch,
            opener: None,
            prefix: None,
            index: 0,
            done: false,
            locked: false,
            released: 0,
        })
    }

    /// The frame arithmetic of this decryptor's frame size.
    #[must_use]
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// Plaintext bytes released so far.
    #[must_use]
    pub fn released(&self) -> u64 {
        self.released
    }

    /// Whether the final expected frame has been verified.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Opens the next frame in place, for callers that read whole frames into a buffer
    /// (every frame is frame size + 28 bytes except the object's last). On success the
    /// verified plaintext to release is `frame[range]`; on failure the frame is wiped.
    /// It cannot be mixed with buffered input of [`Stream::update`].
    ///
    /// # Errors
    /// As [`Stream::update`].
    pub fn open_frame_in_place(&mut self, frame: &mut [u8]) -> Result<core::ops::Range<usize>> {
        if self.locked || !self.pending.is_empty() {
            return Err(Error::InvalidState);
        }
        if self.done {
            frame.fill(0);
            self.locked = true;
            return Err(Error::TrailingData);
        }
        let full = self.schedule.full_frame_len();
        // A short frame can only be the last one; treat it as the end of input.
        let at_end = frame.len() < full;
        let r = self.process_in_place(frame, at_end);
        if r.is_err() {
            frame.fill(0);
            self.locked = true;
        }
        r
    }

    /// Checks a frame's length, finds where it stands and readies its segment's opener:
    /// the frame's plaintext length and the slice of it to keep.
    fn prepare(&mut self, len: usize, at_end: bool) -> Result<(usize, usize, usize)> {
        if len < FRAME_OVERHEAD {
            return Err(Error::Truncated);
        }
        let (segment, lo, hi) = self.locate(len, at_end)?;
        if self.opener.as_ref().map(|(s, _)| *s) != Some(segment) {
            self.opener = Some((segment, self.key.opener::<C>(segment)?));
        }
        Ok((len - FRAME_OVERHEAD, lo, hi))
    }

    fn process_in_place(&mut self, frame: &mut [u8], at_end: bool) -> Result<core::ops::Range<usize>> {
        let (pt_len, lo, hi) = self.prepare(frame.len(), at_end)?;
        let Some((_, opener)) = self.opener.as_ref() else { return Err(Error::InvalidState) };
        let nonce = Nonce::read(frame)?;
        opener.open_in_place(frame)?;
        self.accept_authentic(&nonce, pt_len, at_end, lo, hi)
    }

    /// The steps after a frame's tag verified: position checks, release, advance.
    fn accept_authentic(
        &mut self,
        nonce: &Nonce,
        pt_len: usize,
        at_end: bool,
        lo: usize,
        hi: usize,
    ) -> Result<core::ops::Range<usize>> {
        let pos = nonce.position()?;
        self.check_position(nonce, pos, at_end, pt_len)?;
        self.released += (hi - lo) as u64;
        self.advance(pos)?;
        Ok(NONCE_LEN + lo..NONCE_LEN + hi)
    }

    /// For a frame cipher outside Rust (the browser's WebCrypto, which is asynchronous): the
    /// segment whose key (`ObjectKey::segment_key`, under the `external-cipher` feature)
    /// opens the next frame, which is `frame_len` bytes long (`at_end`: the last bytes of the
    /// input). The caller then verifies and decrypts the frame with AES-256-GCM (nonce = its
    /// first 12 bytes, empty AAD) and reports the outcome with [`Decryptor::external_accept`] or
    /// [`Decryptor::external_reject`]. Every format rule stays here; only AES runs outside.
    ///
    /// # Errors
    /// Length errors as [`Stream::update`]; [`Error::InvalidState`] after an error or
    /// with input buffered by `update`.
    pub fn external_segment(&mut self, frame_len: usize, at_end: bool) -> Result<u32> {
        if self.locked || !self.pending.is_empty() {
            return Err(Error::InvalidState);
        }
        if self.done {
            self.locked = true;
            return Err(Error::TrailingData);
        }
        if frame_len < FRAME_OVERHEAD {
            self.locked = true;
            return Err(Error::Truncated);
        }
        let r = self.locate(frame_len, at_end).map(|(segment, _, _)| segment);
        if r.is_err() {
            self.locked = true;
        }
        r
    }

    /// Reports a frame the external cipher verified: `nonce` is the frame's first 12 bytes.
    /// Returns the range of the frame's plaintext (offsets within the frame, as from
    /// [`Decryptor::open_frame_in_place`]) that may be released; on an error the caller must
    /// discard the frame's plaintext.
    ///
    /// # Errors
    /// Position errors (`frame_out_of_order`, `bad_frame_flags`, `truncated`,
    /// `trailing_data`) and [`Error::InvalidState`].
    pub fn external_accept(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        frame_len: usize,
        at_end: bool,
    ) -> Result<core::ops::Range<usize>> {
        if self.locked || frame_len < FRAME_OVERHEAD {
            self.locked = true;
            return Err(Error::InvalidState);
        }
        let r = self.locate(frame_len, at_end).and_then(|(_, lo, hi)| {
            self.accept_authentic(&Nonce::from_bytes(*nonce), frame_len - FRAME_OVERHEAD, at_end, lo, hi)
        });
        if r.is_err() {
            self.locked = true;
        }
        r
    }

    /// Reports that the external cipher rejected the frame's tag.
    pub fn external_reject(&mut self) -> Error {
        self.locked = true;
        Error::AuthenticationFailed
    }

    /// The frame expected `ahead` frames after the next one (`0`: the next one), provided
    /// every frame before it is accepted and none of them ends the object: its ciphertext
    /// length, to cut the input at, and the segment whose key opens it. `None` when no such
    /// frame is expected (past a known shape's end, beyond the part limit, or once the
    /// decryptor is done or locked).
    ///
    /// A caller that cuts frames itself and decrypts several concurrently (an external
    /// cipher) asks this for each frame it cuts, `ahead` being the frames cut but not yet
    /// accepted. A frame decrypted under this guess is still checked by
    /// [`Decryptor::external_segment`] when its turn comes; an authentic object always
    /// matches the guess, so a mismatch means the object is malformed at an earlier frame.
    #[must_use]
    pub fn next_frame(&self, ahead: u64) -> Option<NextFrame> {
        if self.locked || self.done {
            return None;
        }
        let full = self.schedule.full_frame_len();
        match &self.plan {
            Plan::Open { part_frames: None, segment, .. } => {
                Some(NextFrame { ct_len: full, exact: false, segment: *segment })
            }
            Plan::Open { part_frames: Some(pf), segment, .. } => {
                let later = self.index.checked_add(ahead)?.checked_div(*pf)?;
                let s = u64::from(*segment).checked_add(later)?;
                let segment = u32::try_from(s).ok().filter(|s| *s <= MAX_PARTS)?;
                Some(NextFrame { ct_len: full, exact: false, segment })
            }
            Plan::Known { shape, next, want_end, .. } => {
                let mut f = (*next)?;
                for _ in 0..ahead {
                    f = shape.next_frame(&f).filter(|g| g.pt_start < *want_end)?;
                }
                let ct_len = usize::try_from(f.ct_len()).ok()?;
                Some(NextFrame { ct_len, exact: true, segment: f.segment.number })
            }
        }
    }

    /// The segment of [`Decryptor::next_frame`].
    #[must_use]
    pub fn external_segment_ahead(&self, ahead: u64) -> Option<u32> {
        self.next_frame(ahead).map(|f| f.segment)
    }

    /// The segment a frame of `len` bytes belongs to and the slice of its plaintext to keep.
    fn locate(&self, len: usize, at_end: bool) -> Result<(u32, usize, usize)> {
        let pt_len = len - FRAME_OVERHEAD;
        match &self.plan {
            Plan::Open { segment, .. } => Ok((*segment, 0, pt_len)),
            Plan::Known { next, want_start, want_end, .. } => {
                let spec = next.ok_or(Error::TrailingData)?;
                if spec.ct_len() != len as u64 {
                    return Err(if at_end { Error::Truncated } else { Error::BadFrameLength });
                }
                let lo = (*want_start).max(spec.pt_start) - spec.pt_start;
                let hi = (*want_end).min(spec.pt_start + spec.pt_len).max(spec.pt_start) - spec.pt_start;
                // Both lie within one frame, so they fit any usize.
                let lo = usize::try_from(lo).map_err(|_| Error::LimitExceeded)?;
                let hi = usize::try_from(hi).map_err(|_| Error::LimitExceeded)?;
                Ok((spec.segment.number, lo, hi.max(lo)))
            }
        }
    }

    /// Length of the next frame, and whether that is exact (known shape) or the full-frame
    /// length that only a final frame may undercut.
    fn next_need(&self) -> Option<usize> {
        match &self.plan {
            Plan::Open { .. } => Some(self.schedule.full_frame_len()),
            Plan::Known { next, .. } => next.as_ref().and_then(|f| usize::try_from(f.ct_len()).ok()),
        }
    }

    fn update_inner(&mut self, mut input: &[u8], out: &mut [u8]) -> Result<usize> {
        let mut written = 0;
        while !input.is_empty() {
            if self.done {
                return Err(Error::TrailingData);
            }
            let need = self.next_need().ok_or(Error::TrailingData)?;
            if self.pending.is_empty() && input.len() >= need {
                let (frame, rest) = input.split_at(need);
                written += self.process(frame, false, &mut out[written..])?;
                input = rest;
            } else {
                let take = (need - self.pending.len()).min(input.len());
                self.pending.extend_from_slice(&input[..take]);
                input = &input[take..];
                if self.pending.len() == need {
                    let pending = core::mem::take(&mut self.pending);
                    let r = self.process(&pending, false, &mut out[written..]);
                    self.pending = pending;
                    self.pending.clear();
                    written += r?;
                }
            }
        }
        Ok(written)
    }

    /// Opens one complete frame, checks it stands where it should, releases the wanted
    /// plaintext, and advances. `at_end` marks a short frame given by `finish`.
    ///
    /// Authentication comes first: every nonce bit is covered by the tag, so a tampered nonce
    /// reports `authentication_failed`, while the position errors (`frame_out_of_order`,
    /// `truncated`, ...) name authentic frames standing in the wrong place. Either way the
    /// output region is wiped before the error returns.
    fn process(&mut self, frame: &[u8], at_end: bool, out: &mut [u8]) -> Result<usize> {
        let (pt_len, lo, hi) = self.prepare(frame.len(), at_end)?;
        let Some((_, opener)) = self.opener.as_ref() else {
            return Err(Error::InvalidState);
        };
        let n = hi - lo;
        let dst = out.get_mut(..n).ok_or(Error::BufferTooSmall)?;
        if lo == 0 && hi == pt_len {
            opener.open_to(frame, dst)?;
        } else {
            // A partial frame: verify in scratch, copy only the wanted slice out.
            let mut scratch = core::mem::take(&mut self.scratch);
            scratch.clear();
            scratch.extend_from_slice(frame);
            let r = opener.open_in_place(&mut scratch);
            if r.is_ok() {
                dst.copy_from_slice(&scratch[NONCE_LEN + lo..NONCE_LEN + hi]);
            }
            scratch.fill(0);
            scratch.clear();
            self.scratch = scratch;
            r?;
        }
        let nonce = Nonce::read(frame)?;
        let checked = nonce.position().and_then(|pos| self.check_position(&nonce, pos, at_end, pt_len).map(|()| pos));
        match checked {
            Ok(pos) => {
                self.released += n as u64;
                self.advance(pos)?;
                Ok(n)
            }
            Err(e) => {
                dst.fill(0);
                Err(e)
            }
        }
    }

    /// The position rules of SPEC.md §5.3 for an authentic frame.
    fn check_position(&mut self, nonce: &Nonce, pos: FramePosition, at_end: bool, pt_len: usize) -> Result<()> {
        match &self.plan {
            Plan::Open { part_frames, ordinal, .. } => {
                if u64::from(pos.index) != self.index {
                    return Err(Error::FrameOutOfOrder);
                }
                match part_frames {
                    None if pos.segment_end != pos.object_end => return Err(Error::BadFrameFlags),
                    Some(pf) if !pos.object_end && pos.segment_end != (self.index + 1 == *pf) => {
                        return Err(Error::BadFrameFlags);
                    }
                    Some(pf) if self.index >= *pf => return Err(Error::BadFrameFlags),
                    _ => {}
                }
                if at_end && !pos.object_end {
                    return Err(Error::Truncated);
                }
                if pt_len == 0 && (self.index > 0 || *ordinal > 0) {
                    return Err(Error::BadFrameLength);
                }
            }
            Plan::Known { next, .. } => {
                let spec = next.ok_or(Error::TrailingData)?;
                if pos.index != spec.position.index {
                    return Err(Error::FrameOutOfOrder);
                }
                // The shape came from the object's length; a final flag earlier than that
                // length means bytes were appended, a missing one means the end was cut.
                if spec.position.object_end && !pos.object_end {
                    return Err(Error::Truncated);
                }
                if pos.object_end && !spec.position.object_end {
                    return Err(Error::TrailingData);
                }
                if pos != spec.position {
                    return Err(Error::BadFrameFlags);
                }
            }
        }
        // A table records the prefix of the encryption of each part the writer completed:
        // an older, authentic encryption of the same part is refused from its first frame.
        if let Plan::Known { shape, next: Some(spec), .. } = &self.plan
            && shape.recorded_prefix(&spec.segment).is_some_and(|p| p != nonce.prefix())
        {
            return Err(Error::FrameOutOfOrder);
        }
        // Frames of one segment encryption share a prefix: no splicing of two uploads of
        // the same part.
        if pos.index == 0 || self.prefix.is_none() {
            self.prefix = Some(nonce.prefix());
        } else if self.prefix != Some(nonce.prefix()) {
            return Err(Error::FrameOutOfOrder);
        }
        Ok(())
    }

    fn advance(&mut self, pos: FramePosition) -> Result<()> {
        match &mut self.plan {
            Plan::Open { segment, ordinal, .. } => {
                if pos.object_end {
                    self.done = true;
                    match self.key.header().declared_size {
                        Some(d) if self.released < d => return Err(Error::Truncated),
                        Some(d) if self.released > d => return Err(Error::TrailingData),
                        _ => {}
                    }
                } else if pos.segment_end {
                    *segment += 1;
                    *ordinal += 1;
                    if *segment > MAX_PARTS {
                        return Err(Error::LimitExceeded);
                    }
                    self.index = 0;
                    self.prefix = None;
                } else {
                    self.index += 1;
                }
            }
            Plan::Known { shape, next, want_end, .. } => {
                let cur = next.take().ok_or(Error::InvalidState)?;
                let following = shape.next_frame(&cur);
                *next = following.filter(|f| f.pt_start < *want_end);
                if next.is_none() {
                    self.done = true;
                }
                if cur.position.segment_end {
                    self.prefix = None;
                }
            }
        }
        Ok(())
    }
}

impl<C: FrameCipher> Stream for Decryptor<C> {
    lock_field!();

    /// An upper bound: the buffered ciphertext and `input_len` more bytes.
    fn update_len(&self, input_len: usize) -> usize {
        self.schedule.opened_bound(self.pending.len().saturating_add(input_len))
    }

    /// An upper bound: the buffered ciphertext.
    fn finish_len(&self) -> usize {
        self.schedule.opened_bound(self.pending.len())
    }

    /// Feeds ciphertext; writes the plaintext of every frame that is complete and verified.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `out` is shorter than [`Stream::update_len`]; any
    /// stream or authentication error (which locks the context);
    /// [`Error::InvalidState`] once locked.
    fn update(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        if self.locked {
            return Err(Error::InvalidState);
        }
        let bound = self.update_len(input.len());
        if out.len() < bound {
            self.locked = true;
            return Err(Error::BufferTooSmall);
        }
        let r = self.update_inner(input, out);
        if r.is_err() {
            // Frames verified earlier in this call were written, but the caller gets no
            // count for them: wipe so that an error never leaves plaintext behind.
            out[..bound].fill(0);
            self.locked = true;
        }
        r
    }

    /// Ends the input: decrypts a final short frame if one is pending and reports truncation.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the final frame never arrived; stream and authentication
    /// errors of the last frame; [`Error::InvalidState`] once locked.
    fn finish(&mut self, out: &mut [u8]) -> Result<usize> {
        if self.locked {
            return Err(Error::InvalidState);
        }
        self.locked = true;
        let bound = self.finish_len();
        if out.len() < bound {
            return Err(Error::BufferTooSmall);
        }
        if self.done {
            return Ok(0);
        }
        if self.pending.is_empty() {
            return Err(Error::Truncated);
        }
        let pending = core::mem::take(&mut self.pending);
        let r = self.process(&pending, true, out).and_then(|n| if self.done { Ok(n) } else { Err(Error::Truncated) });
        if r.is_err() {
            out[..bound].fill(0);
        }
        r
    }
}

#[cfg(all(test, feature = "hazmat"))]
mod tests {
    use super::*;
    use crate::cipher::RustCrypto;
    use crate::envelope::{Envelope, Params};
    use crate::oneshot;
    use crate::wrap::{Dek, Kek};
    use alloc::vec;

    fn key(part_frames: Option<u32>) -> ObjectKey {
        let mut params = Params::default().with_frame_size(4096).unwrap();
        if let Some(pf) = part_frames {
            params = params.with_part_size(u64::from(pf) * 4096).unwrap();
        }
        let kek = Kek::from_bytes([7; 32]);
        Envelope::create_with(&kek, "k", params, &Dek::from_bytes([9; 32]), [3; 32]).unwrap().1
    }

    /// Every prediction made ahead of a frame equals the segment `external_segment` names
    /// when that frame's turn comes.
    fn check_predictions(key: &ObjectKey, mut dec: Decryptor<RustCrypto>, frames: &[&[u8]]) {
        let mut predicted: Vec<Vec<u32>> = vec![Vec::new(); frames.len()];
        for (i, frame) in frames.iter().enumerate() {
            for ahead in 0..20u64 {
                let j = i + usize::try_from(ahead).unwrap();
                if let (Some(f), Some(p)) = (dec.next_frame(ahead), predicted.get_mut(j)) {
                    p.push(f.segment);
                    // The cut: exact for a known shape, else full and undercut only at the end.
                    let len = frames[j].len();
                    assert!(if f.exact { f.ct_len == len } else { f.ct_len >= len }, "frame {j}: cut {f:?} vs {len}");
                    assert!(f.exact || f.ct_len == len || j + 1 == frames.len());
                }
            }
            let seg = dec.external_segment(frame.len(), false).unwrap();
            assert!(!predicted[i].is_empty(), "frame {i}: no prediction");
            assert!(predicted[i].iter().all(|p| *p == seg), "frame {i}: {:?} vs {seg}", predicted[i]);
            let cipher = RustCrypto::new(&key.segment_key(seg)).unwrap();
            let mut f = frame.to_vec();
            let nonce: [u8; NONCE_LEN] = f[..NONCE_LEN].try_into().unwrap();
            cipher.open_in_place(&nonce, &mut f[NONCE_LEN..]).unwrap();
            dec.external_accept(&nonce, frame.len(), false).unwrap();
        }
        assert_eq!(dec.next_frame(0), None, "done");
    }

    #[test]
    fn segments_ahead_match_the_segments_named_later() {
        let frame = 4096 + FRAME_OVERHEAD;
        for (pf, len) in
            [(None, 10 * 4096 + 5usize), (Some(1u32), 5 * 4096), (Some(3), 10 * 4096 + 1), (Some(4), 8 * 4096)]
        {
            let k = key(pf);
            let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let ct = match pf {
                None => oneshot::encrypt::<RustCrypto>(&k, &pt).unwrap(),
                Some(pf) => {
                    let ps = pf as usize * 4096;
                    let n = len.div_ceil(ps);
                    (1..=n)
                        .flat_map(|p| {
                            let body = &pt[(p - 1) * ps..(p * ps).min(len)];
                            oneshot::encrypt_part::<RustCrypto>(&k, p as u32, p == n, body).unwrap()
                        })
                        .collect()
                }
            };
            let frames: Vec<&[u8]> = ct.chunks(frame).collect();
            check_predictions(&k, Decryptor::new(&k).unwrap(), &frames);
            // A known shape: the whole object, and a range starting mid-object.
            let shape = Shape::from_ciphertext_len(k.header(), ct.len() as u64).unwrap();
            check_predictions(&k, Decryptor::with_shape(&k, shape.clone()).unwrap(), &frames);
            let plan = shape.map_range(4096 + 1, len as u64 - 4096);
            let a = usize::try_from(plan.ct_start).unwrap();
            let b = usize::try_from(plan.ct_end).unwrap();
            let ranged: Vec<&[u8]> = ct[a..b].chunks(frame).collect();
            check_predictions(&k, Decryptor::for_range(&k, shape, &plan).unwrap(), &ranged);
        }
    }

    #[test]
    fn no_segment_ahead_after_a_failure() {
        let k = key(Some(2));
        let mut dec = Decryptor::<RustCrypto>::new(&k).unwrap();
        assert_eq!(dec.external_segment_ahead(0), Some(1));
        assert_eq!(dec.external_segment_ahead(5), Some(3));
        assert_eq!(dec.external_segment_ahead(u64::MAX), None);
        assert_eq!(dec.next_frame(1), Some(NextFrame { ct_len: 4096 + FRAME_OVERHEAD, exact: false, segment: 1 }));
        let _ = dec.external_reject();
        assert_eq!(dec.external_segment_ahead(0), None);
    }
}
