//! The stateless per-frame primitive: seal or open one frame of one segment.
//!
//! Both types are immutable after construction and `Sync`, so many threads (or a browser's
//! workers, or a proxy's request handlers) can seal frames of the same segment at once;
//! positions are passed in rather than counted here (as in RustCrypto's `StreamPrimitive`).
//! The streaming contexts in [`crate::stream`] add the counting and the checks.
//!
//! Frame layout: `nonce (12) || ciphertext (n) || tag (16)`. The length arithmetic of a
//! segment (how many frames, how many ciphertext bytes) sits here too, below both the shape
//! of an object and its segment table.

use crate::cipher::FrameCipher;
use crate::error::{Error, Result};
use crate::limits::{FRAME_OVERHEAD, MAX_FRAMES_PER_SEGMENT, MAX_PLAINTEXT_SIZE, NONCE_LEN, TAG_LEN};
use crate::nonce::{FramePosition, Nonce, Prefix};

/// Seals frames of one encryption of one segment.
pub struct SegmentSealer<C> {
    cipher: C,
    prefix: Prefix,
}

impl<C: FrameCipher> SegmentSealer<C> {
    #[cfg_attr(not(feature = "alloc"), allow(dead_code, reason = "the streaming encryptor needs alloc"))]
    pub(crate) fn new(cipher: C, prefix: Prefix) -> Self {
        Self { cipher, prefix }
    }

    /// The nonce prefix of this segment encryption.
    #[must_use]
    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// Seals `plaintext` as the frame at `pos` into `out`, which must be exactly
    /// `plaintext.len() + 28` bytes.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `out` has the wrong length.
    pub fn seal_to(&self, pos: FramePosition, plaintext: &[u8], out: &mut [u8]) -> Result<()> {
        if out.len() != plaintext.len() + FRAME_OVERHEAD {
            return Err(Error::BufferTooSmall);
        }
        let nonce = Nonce::new(&self.prefix, pos);
        let (head, rest) = out.split_at_mut(NONCE_LEN);
        head.copy_from_slice(nonce.as_bytes());
        let (body, tag) = rest.split_at_mut(plaintext.len());
        tag.copy_from_slice(&self.cipher.seal_to(nonce.as_bytes(), plaintext, body)?);
        Ok(())
    }

    /// Seals in place: `frame` holds the plaintext at `[12 .. len-16]`; the nonce and the
    /// tag are written around it.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `frame` is shorter than 28 bytes.
    pub fn seal_in_place(&self, pos: FramePosition, frame: &mut [u8]) -> Result<()> {
        if frame.len() < FRAME_OVERHEAD {
            return Err(Error::BufferTooSmall);
        }
        let nonce = Nonce::new(&self.prefix, pos);
        let (head, rest) = frame.split_at_mut(NONCE_LEN);
        head.copy_from_slice(nonce.as_bytes());
        let body_len = rest.len() - TAG_LEN;
        let (body, tag) = rest.split_at_mut(body_len);
        tag.copy_from_slice(&self.cipher.seal_in_place(nonce.as_bytes(), body)?);
        Ok(())
    }
}

/// Opens frames of one segment. Knows nothing of positions: callers check the returned
/// nonce against where the frame stands before using the plaintext.
pub struct SegmentOpener<C> {
    cipher: C,
}

impl<C: FrameCipher> SegmentOpener<C> {
    pub(crate) fn new(cipher: C) -> Self {
        Self { cipher }
    }

    /// Verifies `frame` and writes its plaintext (`frame.len() - 28` bytes) to the front of
    /// `out`. On failure `out` is wiped, so no unauthenticated plaintext survives.
    ///
    /// # Errors
    /// [`Error::BadFrameLength`] for frames under 28 bytes, [`Error::BufferTooSmall`],
    /// [`Error::AuthenticationFailed`].
    pub fn open_to(&self, frame: &[u8], out: &mut [u8]) -> Result<usize> {
        let n = frame.len().checked_sub(FRAME_OVERHEAD).ok_or(Error::BadFrameLength)?;
        let nonce = Nonce::read(frame)?;
        let out = out.get_mut(..n).ok_or(Error::BufferTooSmall)?;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&frame[NONCE_LEN + n..]);
        match self.cipher.open_to(nonce.as_bytes(), &frame[NONCE_LEN..NONCE_LEN + n], &tag, out) {
            Ok(()) => Ok(n),
            Err(e) => {
                out.fill(0);
                Err(e)
            }
        }
    }

    /// Verifies `frame` in place; on success the plaintext is at `frame[12 .. 12 + n]` and
    /// `n` is returned. On failure the frame is wiped.
    ///
    /// # Errors
    /// As [`SegmentOpener::open_to`].
    pub fn open_in_place(&self, frame: &mut [u8]) -> Result<usize> {
        let n = frame.len().checked_sub(FRAME_OVERHEAD).ok_or(Error::BadFrameLength)?;
        let nonce = Nonce::read(frame)?;
        match self.cipher.open_in_place(nonce.as_bytes(), &mut frame[NONCE_LEN..]) {
            Ok(()) => Ok(n),
            Err(e) => {
                frame.fill(0);
                Err(e)
            }
        }
    }
}

const OVERHEAD: u64 = FRAME_OVERHEAD as u64;

/// Ciphertext bytes of a segment holding `pt_len` plaintext bytes in frames of `frame` bytes.
///
/// # Errors
/// [`Error::LimitExceeded`] past the frame-count limit.
pub fn segment_ct_len(pt_len: u64, frame: u64) -> Result<u64> {
    let frames = frames_in(pt_len, frame);
    if frames > MAX_FRAMES_PER_SEGMENT || pt_len > MAX_PLAINTEXT_SIZE {
        return Err(Error::LimitExceeded);
    }
    Ok(pt_len + frames * OVERHEAD)
}

/// Frames in a segment of `pt_len` bytes: at least one (an empty segment is one empty frame).
#[must_use]
pub fn frames_in(pt_len: u64, frame: u64) -> u64 {
    pt_len.div_ceil(frame).max(1)
}

/// Plaintext bytes of a segment whose ciphertext is `ct_len` bytes.
///
/// # Errors
/// [`Error::BadFrameLength`] if no plaintext length encrypts to `ct_len` (a cut or padded
/// final frame), [`Error::Truncated`] if shorter than one frame.
pub fn segment_pt_len(ct_len: u64, frame: u64) -> Result<u64> {
    if ct_len < OVERHEAD {
        return Err(Error::Truncated);
    }
    let full = frame + OVERHEAD;
    let frames = ct_len.div_ceil(full);
    let last = ct_len - (frames - 1) * full;
    if last < OVERHEAD {
        // Too short to be a frame: most likely the end was cut inside the last frame.
        return Err(Error::Truncated);
    }
    if frames > 1 && last == OVERHEAD {
        return Err(Error::BadFrameLength);
    }
    if frames > MAX_FRAMES_PER_SEGMENT {
        return Err(Error::LimitExceeded);
    }
    Ok(ct_len - frames * OVERHEAD)
}
