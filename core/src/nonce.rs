//! The 12-byte frame nonce, embedded in front of every frame.
//!
//! Layout (SPEC.md §5):
//! ```text
//! bytes 0..7   random segment prefix, fresh for every encryption of a segment
//! bytes 7..11  frame index within the segment, u32 big-endian, from 0
//! byte  11     flags: 0x01 last frame of the segment, 0x02 last frame of the object
//! ```
//! A nonce never repeats under one key: each segment has its own key (derived from the
//! segment number), the index counts frames within one encryption of the segment, and a
//! retried encryption of the same segment draws a new 56-bit prefix. Position and finality
//! live here because AAD stays empty (objects must stay decryptable after a byte copy).

use crate::error::{Error, Result};
use crate::limits::{NONCE_LEN, PREFIX_LEN};

/// Flag: this frame ends its segment.
pub const FLAG_SEGMENT_END: u8 = 0x01;
/// Flag: this frame ends the object (always together with [`FLAG_SEGMENT_END`]).
pub const FLAG_OBJECT_END: u8 = 0x02;

/// The random per-segment part of the nonce. A distinct type rather than a byte array so a
/// prefix cannot be confused with other 7-byte values, and its representation may change.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Prefix([u8; PREFIX_LEN]);

impl Prefix {
    /// Wraps the 7 prefix bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; PREFIX_LEN]) -> Self {
        Self(bytes)
    }

    /// The 7 prefix bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; PREFIX_LEN] {
        &self.0
    }
}

byte_array_conversions!(Prefix, PREFIX_LEN);

/// Where a frame stands, as far as its nonce says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramePosition {
    /// Frame index within its segment.
    pub index: u32,
    /// Whether the frame ends its segment.
    pub segment_end: bool,
    /// Whether the frame ends the object.
    pub object_end: bool,
}

impl FramePosition {
    fn flags(&self) -> u8 {
        let mut f = 0;
        if self.segment_end || self.object_end {
            f |= FLAG_SEGMENT_END;
        }
        if self.object_end {
            f |= FLAG_OBJECT_END;
        }
        f
    }
}

/// A frame nonce. See the module docs for the byte layout. The bytes are private so every
/// nonce is either built from a prefix and position or read whole from a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonce([u8; NONCE_LEN]);

byte_array_conversions!(Nonce, NONCE_LEN);

impl Nonce {
    /// Wraps the 12 nonce bytes as they stand in front of a frame.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; NONCE_LEN]) -> Self {
        Self(bytes)
    }

    /// The 12 nonce bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; NONCE_LEN] {
        &self.0
    }

    /// Builds the nonce for `pos` in the segment encryption identified by `prefix`.
    #[must_use]
    pub fn new(prefix: &Prefix, pos: FramePosition) -> Self {
        let mut n = [0u8; NONCE_LEN];
        n[..PREFIX_LEN].copy_from_slice(prefix.as_bytes());
        n[PREFIX_LEN..NONCE_LEN - 1].copy_from_slice(&pos.index.to_be_bytes());
        n[NONCE_LEN - 1] = pos.flags();
        Self(n)
    }

    /// Reads a nonce from the front of a frame.
    ///
    /// # Errors
    /// [`Error::BadFrameLength`] if fewer than 12 bytes are given.
    pub fn read(frame: &[u8]) -> Result<Self> {
        let bytes: [u8; NONCE_LEN] =
            frame.get(..NONCE_LEN).and_then(|b| b.try_into().ok()).ok_or(Error::BadFrameLength)?;
        Ok(Self(bytes))
    }

    /// The segment prefix.
    #[must_use]
    pub fn prefix(&self) -> Prefix {
        let mut p = [0u8; PREFIX_LEN];
        p.copy_from_slice(&self.0[..PREFIX_LEN]);
        Prefix(p)
    }

    /// The decoded position.
    ///
    /// # Errors
    /// [`Error::BadFrameFlags`] if unknown flag bits are set, or the object-end flag is set
    /// without the segment-end flag.
    pub fn position(&self) -> Result<FramePosition> {
        let flags = self.0[NONCE_LEN - 1];
        if flags & !(FLAG_SEGMENT_END | FLAG_OBJECT_END) != 0
            || (flags & FLAG_OBJECT_END != 0 && flags & FLAG_SEGMENT_END == 0)
        {
            return Err(Error::BadFrameFlags);
        }
        let mut idx = [0u8; 4];
        idx.copy_from_slice(&self.0[PREFIX_LEN..NONCE_LEN - 1]);
        Ok(FramePosition {
            index: u32::from_be_bytes(idx),
            segment_end: flags & FLAG_SEGMENT_END != 0,
            object_end: flags & FLAG_OBJECT_END != 0,
        })
    }
}
