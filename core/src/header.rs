//! The header: the key-bound format parameters of one object (SPEC.md §3.1).
//!
//! It is the part of the envelope that key derivation binds into every key, so it sits below
//! both the envelope (which encodes it) and the key schedule (which hashes it).

use crate::error::{Error, Result};
use crate::limits::{
    HEADER_LEN, KEY_LEN, MAX_FRAME_EXP, MAX_FRAMES_PER_SEGMENT, MAX_PARTS, MAX_PLAINTEXT_SIZE, MIN_FRAME_EXP,
};

/// The format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Suite 1: AES-256-GCM frames, HKDF-SHA256, HMAC-SHA256 commitment via HKDF.
pub const SUITE_AES256GCM_HKDF_SHA256: u8 = 1;

/// How the body is cut into segments (SPEC.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One segment (number 0): a single PUT or a stream.
    Single,
    /// Multipart with a declared part size of `part_frames` frames; segment `n` is part `n`.
    /// Every part but the last holds exactly `part_frames` full frames.
    Parts {
        /// Frames per part.
        part_frames: u32,
    },
    /// Multipart with parts of arbitrary sizes, described by an authenticated segment table.
    Table,
}

impl Layout {
    fn code(&self) -> u8 {
        match self {
            Self::Single => 0,
            Self::Parts { .. } => 1,
            Self::Table => 2,
        }
    }

    /// Stable name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Parts { .. } => "parts",
            Self::Table => "table",
        }
    }
}

/// The key-bound format parameters of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Frame size exponent: frames hold `1 << frame_exp` plaintext bytes.
    pub frame_exp: u8,
    /// Segment layout.
    pub layout: Layout,
    /// Plaintext size, when the writer knew it in advance.
    pub declared_size: Option<u64>,
    /// Random HKDF salt.
    pub salt: [u8; KEY_LEN],
}

impl Header {
    /// Plaintext bytes per frame.
    #[must_use]
    pub fn frame_size(&self) -> u64 {
        1u64 << self.frame_exp
    }

    /// Plaintext bytes per part for [`Layout::Parts`].
    #[must_use]
    pub fn part_size(&self) -> Option<u64> {
        match self.layout {
            Layout::Parts { part_frames } => Some(u64::from(part_frames) << self.frame_exp),
            _ => None,
        }
    }

    /// Checks parameter ranges.
    ///
    /// # Errors
    /// [`Error::InvalidFrameSize`], [`Error::InvalidParameter`] or [`Error::LimitExceeded`].
    pub fn validate(&self) -> Result<()> {
        if !(MIN_FRAME_EXP..=MAX_FRAME_EXP).contains(&self.frame_exp) {
            return Err(Error::InvalidFrameSize);
        }
        if let Layout::Parts { part_frames } = self.layout
            && (part_frames == 0 || u64::from(part_frames) >= MAX_FRAMES_PER_SEGMENT)
        {
            return Err(Error::InvalidParameter);
        }
        if let Some(size) = self.declared_size {
            if size > MAX_PLAINTEXT_SIZE {
                return Err(Error::LimitExceeded);
            }
            if let Some(ps) = self.part_size()
                && size.div_ceil(ps) > u64::from(MAX_PARTS)
            {
                return Err(Error::LimitExceeded);
            }
        }
        Ok(())
    }

    /// The 49 header bytes (SPEC.md §3.1).
    #[must_use]
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = VERSION;
        b[1] = SUITE_AES256GCM_HKDF_SHA256;
        b[2] = self.frame_exp;
        b[3] = self.layout.code();
        if let Layout::Parts { part_frames } = self.layout {
            b[4..8].copy_from_slice(&part_frames.to_be_bytes());
        }
        if let Some(size) = self.declared_size {
            b[8] = 1;
            b[9..17].copy_from_slice(&size.to_be_bytes());
        }
        b[17..49].copy_from_slice(&self.salt);
        b
    }

    pub(crate) fn from_bytes(b: &[u8; HEADER_LEN]) -> Result<Self> {
        if b[0] != VERSION {
            return Err(Error::UnsupportedVersion);
        }
        if b[1] != SUITE_AES256GCM_HKDF_SHA256 {
            return Err(Error::UnsupportedSuite);
        }
        let part_frames = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        let layout = match b[3] {
            0 => Layout::Single,
            1 => Layout::Parts { part_frames },
            2 => Layout::Table,
            _ => return Err(Error::MalformedEnvelope),
        };
        if !matches!(layout, Layout::Parts { .. }) && part_frames != 0 {
            return Err(Error::MalformedEnvelope);
        }
        let size = u64::from_be_bytes([b[9], b[10], b[11], b[12], b[13], b[14], b[15], b[16]]);
        let declared_size = match b[8] {
            0 if size == 0 => None,
            1 => Some(size),
            _ => return Err(Error::MalformedEnvelope),
        };
        let mut salt = [0u8; KEY_LEN];
        salt.copy_from_slice(&b[17..49]);
        let h = Self { frame_exp: b[2], layout, declared_size, salt };
        h.validate().map_err(|e| if e == Error::InvalidParameter { Error::MalformedEnvelope } else { e })?;
        Ok(h)
    }
}
