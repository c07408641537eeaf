//! The frame schedule: where a stream's frames fall, so that a caller who cuts or seals
//! frames itself (an asynchronous cipher outside Rust, several frames in flight) asks core
//! instead of re-deriving the format's arithmetic.
//!
//! [`Schedule`] is the arithmetic of one frame size (SPEC.md §5.1): a frame holds at most
//! `frame_size` plaintext bytes plus [`FRAME_OVERHEAD`], and a full frame is sealed only once
//! more input shows it is not the last. [`Decryptor::next_frame`](super::Decryptor::next_frame)
//! says which frame a decryptor expects next, or `ahead` frames later.

use crate::error::{Error, Result};
use crate::kdf::ObjectKey;
use crate::limits::FRAME_OVERHEAD;

/// Frame arithmetic of one object's frame size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    frame: usize,
}

impl Schedule {
    /// The schedule of `key`'s frame size.
    ///
    /// # Errors
    /// [`Error::InvalidFrameSize`] if a frame does not fit this platform's memory.
    pub fn of(key: &ObjectKey) -> Result<Self> {
        let frame = usize::try_from(key.header().frame_size()).map_err(|_| Error::InvalidFrameSize)?;
        frame.checked_add(FRAME_OVERHEAD).ok_or(Error::InvalidFrameSize)?;
        Ok(Self { frame })
    }

    /// Plaintext bytes in every frame but a segment's last.
    #[must_use]
    pub fn frame_size(self) -> usize {
        self.frame
    }

    /// Ciphertext length of a full frame (frame size + nonce + tag); only a segment's last
    /// frame may be shorter.
    #[must_use]
    pub fn full_frame_len(self) -> usize {
        self.frame + FRAME_OVERHEAD
    }

    /// Full frames an encryptor seals when `input` more plaintext bytes join the `held`
    /// bytes it has not sealed yet: every full frame that more input follows.
    #[must_use]
    pub fn sealed_frames(self, held: usize, input: usize) -> usize {
        match held.saturating_add(input) {
            0 => 0,
            total => (total - 1) / self.frame,
        }
    }

    /// Ciphertext bytes of those frames: what an encryptor's `update` emits.
    #[must_use]
    pub fn sealed_len(self, held: usize, input: usize) -> usize {
        self.sealed_frames(held, input).saturating_mul(self.full_frame_len())
    }

    /// Plaintext bytes still held after those frames are sealed (0..=frame size).
    #[must_use]
    pub fn held_after(self, held: usize, input: usize) -> usize {
        held.saturating_add(input) - self.sealed_frames(held, input) * self.frame
    }

    /// Ciphertext bytes of the final frame sealed from `held` plaintext bytes: what an
    /// encryptor's `finish` emits.
    #[must_use]
    pub fn final_len(self, held: usize) -> usize {
        held.saturating_add(FRAME_OVERHEAD)
    }

    /// An upper bound on the plaintext that `ciphertext` bytes (complete frames or not)
    /// release: what a decryptor's `update` may emit.
    #[must_use]
    pub fn opened_bound(self, ciphertext: usize) -> usize {
        ciphertext
    }
}

/// A frame a decryptor expects: where to cut the ciphertext and which segment key opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextFrame {
    /// The frame's ciphertext length. When not `exact` it is the full frame length, and a
    /// shorter frame is acceptable only at the end of the input (the object's last frame).
    pub ct_len: usize,
    /// Whether `ct_len` is exact: the decryptor knows the object's shape (table layout, a
    /// range), not merely that frames are full until the last.
    pub exact: bool,
    /// The segment whose key (`ObjectKey::segment_key`, under the `external-cipher` feature)
    /// opens the frame.
    pub segment: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arithmetic of an encryptor that holds back a full frame until more input shows
    /// it is not the last.
    #[test]
    fn sealed_frames_hold_back_the_last() {
        let s = Schedule { frame: 4 };
        assert_eq!((s.sealed_frames(0, 0), s.held_after(0, 0)), (0, 0));
        assert_eq!((s.sealed_frames(0, 4), s.held_after(0, 4)), (0, 4));
        assert_eq!((s.sealed_frames(4, 1), s.held_after(4, 1)), (1, 1));
        assert_eq!((s.sealed_frames(3, 9), s.held_after(3, 9)), (2, 4));
        assert_eq!(s.sealed_len(3, 10), 3 * (4 + FRAME_OVERHEAD));
        assert_eq!(s.final_len(2), 2 + FRAME_OVERHEAD);
        assert_eq!(s.full_frame_len(), 4 + FRAME_OVERHEAD);
    }
}
