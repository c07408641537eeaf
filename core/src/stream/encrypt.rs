//! The streaming encryptor of one segment.

use alloc::vec::Vec;

use zeroize::Zeroize;

use super::{Schedule, Stream};
use crate::cipher::FrameCipher;
use crate::error::{Error, Result};
use crate::frame::SegmentSealer;
use crate::header::Layout;
use crate::kdf::ObjectKey;
use crate::limits::{FRAME_OVERHEAD, MAX_FRAMES_PER_SEGMENT, MAX_PARTS, MAX_PLAINTEXT_SIZE};
use crate::nonce::{FramePosition, Prefix};

/// A fresh random nonce prefix for one segment encryption.
///
/// # Errors
/// [`Error::RandomnessUnavailable`].
#[cfg(feature = "getrandom")]
pub fn random_prefix() -> Result<Prefix> {
    crate::random::array().map(Prefix::from)
}

/// What the segment being encrypted must look like when it ends.
#[derive(Debug, Clone, Copy)]
struct SegmentRules {
    /// Exact plaintext length required at finish, if known.
    exact_len: Option<u64>,
    /// Upper bound on plaintext length.
    max_len: u64,
    /// Whether the segment must hold at least one byte: a parts-layout part after the first
    /// (SPEC.md §6.2 allows an empty part only as the sole one, and readers refuse others,
    /// so writing one would silently lose the object).
    non_empty: bool,
    /// Whether the final frame also carries the object-end flag.
    object_end: bool,
}

/// Streaming encryptor for one segment: a whole single-layout object, or one part.
pub struct Encryptor<C: FrameCipher> {
    sealer: SegmentSealer<C>,
    schedule: Schedule,
    frame: usize,
    pending: Vec<u8>,
    index: u64,
    consumed: u64,
    rules: SegmentRules,
    /// Set after an error or the end: every further call is refused.
    locked: bool,
}

impl<C: FrameCipher> Encryptor<C> {
    /// An encryptor for a whole [`Layout::Single`] object, with a fresh nonce prefix.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for other layouts; [`Error::RandomnessUnavailable`].
    #[cfg(feature = "getrandom")]
    pub fn new(key: &ObjectKey) -> Result<Self> {
        Self::build(key, None, false, random_prefix()?)
    }

    /// An encryptor for part `part_number` (1..=10000) of a [`Layout::Parts`] or
    /// [`Layout::Table`] object. Parts may be encrypted in any order, on any machine; a
    /// retried part draws a new prefix, so its nonces never repeat. `is_last` marks the
    /// object's final part (ignored by the table layout, whose table records it).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a single-layout key, a part number out of range, or
    /// `is_last` contradicting the declared size; [`Error::RandomnessUnavailable`].
    #[cfg(feature = "getrandom")]
    pub fn for_part(key: &ObjectKey, part_number: u32, is_last: bool) -> Result<Self> {
        Self::build(key, Some(part_number), is_last, random_prefix()?)
    }

    /// [`Encryptor::new`] / [`Encryptor::for_part`] with a caller-chosen nonce prefix, for
    /// deterministic vectors. Reusing a prefix for different plaintext of the same segment
    /// breaks confidentiality and integrity.
    ///
    /// # Errors
    /// As [`Encryptor::for_part`].
    #[cfg(feature = "hazmat")]
    pub fn with_prefix(key: &ObjectKey, part: Option<u32>, is_last: bool, prefix: Prefix) -> Result<Self> {
        Self::build(key, part, is_last, prefix)
    }

    pub(crate) fn build_for(key: &ObjectKey, part: Option<u32>, is_last: bool, prefix: Prefix) -> Result<Self> {
        Self::build(key, part, is_last, prefix)
    }

    fn build(key: &ObjectKey, part: Option<u32>, is_last: bool, prefix: Prefix) -> Result<Self> {
        let header = key.header();
        let schedule = Schedule::of(key)?;
        let frame = schedule.frame_size();
        let (segment, rules) = match (header.layout, part) {
            (Layout::Single, None) => (
                0,
                SegmentRules {
                    exact_len: header.declared_size,
                    max_len: MAX_PLAINTEXT_SIZE,
                    non_empty: false,
                    object_end: true,
                },
            ),
            (Layout::Parts { .. }, Some(n)) if (1..=MAX_PARTS).contains(&n) => {
                let part_size = header.part_size().ok_or(Error::InvalidParameter)?;
                let start = u64::from(n - 1).checked_mul(part_size).ok_or(Error::LimitExceeded)?;
                let exact_len = match header.declared_size {
                    Some(total) => {
                        let last = total.div_ceil(part_size).max(1);
                        if (u64::from(n) == last) != is_last || u64::from(n) > last {
                            return Err(Error::InvalidParameter);
                        }
                        Some((total - start).min(part_size))
                    }
                    None if !is_last => Some(part_size),
                    None => None,
                };
                (n, SegmentRules { exact_len, max_len: part_size, non_empty: n > 1, object_end: is_last })
            }
            (Layout::Table, Some(n)) if (1..=MAX_PARTS).contains(&n) => {
                (n, SegmentRules { exact_len: None, max_len: MAX_PLAINTEXT_SIZE, non_empty: false, object_end: false })
            }
            _ => return Err(Error::InvalidParameter),
        };
        let sealer = key.segment_sealer::<C>(segment, prefix)?;
        Ok(Self {
            sealer,
            schedule,
            frame,
            pending: Vec::with_capacity(frame),
            index: 0,
            consumed: 0,
            rules,
            locked: false,
        })
    }

    /// The frame arithmetic of this encryptor's frame size.
    #[must_use]
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// Plaintext bytes taken so far.
    #[must_use]
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The nonce prefix of this segment encryption. A table-layout writer records it in the
    /// segment table for the encryption of each part it completes the upload with.
    #[must_use]
    pub fn prefix(&self) -> Prefix {
        *self.sealer.prefix()
    }

    fn too_short(&self, total: u64) -> bool {
        self.rules.non_empty && total == 0
    }

    fn update_checked(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        let new_total = self.consumed.checked_add(input.len() as u64).ok_or(Error::LimitExceeded)?;
        if new_total > self.rules.max_len || self.rules.exact_len.is_some_and(|e| new_total > e) {
            return Err(Error::InvalidParameter);
        }
        let frames = self.schedule.sealed_frames(self.pending.len(), input.len()) as u64;
        if self.index + frames + 1 > MAX_FRAMES_PER_SEGMENT {
            return Err(Error::LimitExceeded);
        }
        let written = self.update_inner(input, out)?;
        self.consumed = new_total;
        Ok(written)
    }

    fn update_inner(&mut self, mut input: &[u8], out: &mut [u8]) -> Result<usize> {
        let f = self.frame;
        let mut written = 0;
        if !self.pending.is_empty() {
            let take = (f - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() == f && !input.is_empty() {
                let dst = &mut out[..f + FRAME_OVERHEAD];
                self.sealer.seal_to(self.position(false), &self.pending, dst)?;
                self.index += 1;
                self.pending.clear();
                written += f + FRAME_OVERHEAD;
            }
        }
        while input.len() > f {
            let dst = &mut out[written..written + f + FRAME_OVERHEAD];
            self.sealer.seal_to(self.position(false), &input[..f], dst)?;
            self.index += 1;
            input = &input[f..];
            written += f + FRAME_OVERHEAD;
        }
        self.pending.extend_from_slice(input);
        Ok(written)
    }

    fn position(&self, last: bool) -> FramePosition {
        FramePosition {
            // Bounded by MAX_FRAMES_PER_SEGMENT, checked in `update`.
            index: u32::try_from(self.index).unwrap_or(u32::MAX),
            segment_end: last,
            object_end: last && self.rules.object_end,
        }
    }

    /// Seals one full, non-final frame in place, for callers that read plaintext straight
    /// into their output buffer: `frame` is `[12 free bytes][frame-size plaintext][16 free
    /// bytes]`; the nonce and tag are written around the plaintext. This skips the copy
    /// [`Stream::update`] makes. It cannot be mixed with buffered input.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] unless `frame` is exactly frame size + 28 bytes,
    /// [`Error::InvalidState`] if `update` left input buffered or after an error,
    /// [`Error::InvalidParameter`] past the part or declared size, [`Error::LimitExceeded`].
    pub fn seal_frame_in_place(&mut self, frame: &mut [u8]) -> Result<()> {
        if self.locked {
            return Err(Error::InvalidState);
        }
        let r = if !self.pending.is_empty() {
            Err(Error::InvalidState)
        } else if frame.len() != self.schedule.full_frame_len() {
            Err(Error::BufferTooSmall)
        } else {
            self.seal_frame_checked(frame)
        };
        self.locked = r.is_err();
        r
    }

    fn seal_frame_checked(&mut self, frame: &mut [u8]) -> Result<()> {
        // A full frame followed by more data: the object must still have room for it.
        let after = self.consumed + self.frame as u64;
        if after >= self.rules.max_len || self.rules.exact_len.is_some_and(|e| after >= e) {
            return Err(Error::InvalidParameter);
        }
        if self.index + 2 > MAX_FRAMES_PER_SEGMENT {
            return Err(Error::LimitExceeded);
        }
        self.sealer.seal_in_place(self.position(false), frame)?;
        self.index += 1;
        self.consumed = after;
        Ok(())
    }

    /// Seals the final frame in place (`[12][0..=frame-size plaintext][16]`) and ends the
    /// segment; the in-place counterpart of [`Stream::finish`].
    ///
    /// # Errors
    /// As [`Encryptor::seal_frame_in_place`], and [`Error::InvalidParameter`] if the segment
    /// is shorter than its part or declared size.
    pub fn finish_in_place(&mut self, frame: &mut [u8]) -> Result<()> {
        if core::mem::replace(&mut self.locked, true) || !self.pending.is_empty() {
            return Err(Error::InvalidState);
        }
        let n = frame.len().checked_sub(FRAME_OVERHEAD).ok_or(Error::BufferTooSmall)?;
        if n > self.frame || (n == 0 && self.consumed > 0) {
            return Err(Error::BufferTooSmall);
        }
        let total = self.consumed + n as u64;
        if total > self.rules.max_len || self.rules.exact_len.is_some_and(|e| e != total) || self.too_short(total) {
            return Err(Error::InvalidParameter);
        }
        self.sealer.seal_in_place(self.position(true), frame)
    }
}

impl<C: FrameCipher> Stream for Encryptor<C> {
    lock_field!();

    /// Exact: the frames that more input shows are not the last.
    fn update_len(&self, input_len: usize) -> usize {
        self.schedule.sealed_len(self.pending.len(), input_len)
    }

    /// Exact: the held plaintext as the final frame.
    fn finish_len(&self) -> usize {
        self.schedule.final_len(self.pending.len())
    }

    /// Encrypts `input`, writing every frame that is now complete to `out`. A full frame is
    /// held back until more input arrives, since only then is it known not to be the last.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `out` is shorter than [`Stream::update_len`],
    /// [`Error::InvalidParameter`] past the part or declared size,
    /// [`Error::LimitExceeded`] past the frame limit, [`Error::InvalidState`] once locked.
    /// Every error locks the encryptor, as it locks a decryptor (SPEC.md §5.3): a caller
    /// that ignored one cannot go on to produce an object with a hole in it.
    fn update(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        if self.locked {
            return Err(Error::InvalidState);
        }
        let r = if out.len() < self.update_len(input.len()) {
            Err(Error::BufferTooSmall)
        } else {
            self.update_checked(input, out)
        };
        self.locked = r.is_err();
        r
    }

    /// Seals the final frame into `out` and ends the segment.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `out` is shorter than [`Stream::finish_len`],
    /// [`Error::InvalidParameter`] if the segment is shorter than its part
    /// or declared size, [`Error::InvalidState`] once locked.
    fn finish(&mut self, out: &mut [u8]) -> Result<usize> {
        if self.locked {
            return Err(Error::InvalidState);
        }
        self.locked = true;
        let n = self.finish_len();
        let dst = out.get_mut(..n).ok_or(Error::BufferTooSmall)?;
        if self.rules.exact_len.is_some_and(|e| e != self.consumed) || self.too_short(self.consumed) {
            return Err(Error::InvalidParameter);
        }
        self.sealer.seal_to(self.position(true), &self.pending, dst)?;
        self.pending.zeroize();
        Ok(n)
    }
}

impl<C: FrameCipher> Drop for Encryptor<C> {
    /// The pending frame is plaintext not yet sealed.
    fn drop(&mut self) {
        self.pending.zeroize();
    }
}
