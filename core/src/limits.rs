//! Format limits, with units. SPEC.md §8 derives each one.

/// Smallest frame-size exponent: 4 KiB frames.
pub const MIN_FRAME_EXP: u8 = 12;
/// Largest frame-size exponent: 8 MiB frames.
pub const MAX_FRAME_EXP: u8 = 23;
/// Default frame-size exponent: 64 KiB frames.
pub const DEFAULT_FRAME_EXP: u8 = 16;
/// Bytes a frame adds to its plaintext: 12-byte nonce in front, 16-byte tag behind.
pub const FRAME_OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Length of the embedded nonce.
pub const NONCE_LEN: usize = 12;
/// Length of the AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// Length of the random segment prefix inside each nonce (56 bits).
pub const PREFIX_LEN: usize = 7;
/// Frames in one segment: the nonce's frame index is a u32.
pub const MAX_FRAMES_PER_SEGMENT: u64 = 1 << 32;
/// Largest multipart part number (S3 allows 1..=10000); also the segment-table length cap.
pub const MAX_PARTS: u32 = 10_000;
/// Largest plaintext object in bytes (16 TiB): above S3's 5 TiB, and low enough that every
/// offset computation in u64 is free of overflow.
pub const MAX_PLAINTEXT_SIZE: u64 = 1 << 44;
/// Length of the DEK, the KEKs, the salt and the commitment.
pub const KEY_LEN: usize = 32;
/// Longest key id, in bytes of UTF-8.
pub const MAX_KID_LEN: usize = 64;
/// Longest wrapped DEK (AES-KWP gives 40; an external KMS blob may be larger).
pub const MAX_WRAPPED_LEN: usize = 200;
/// Bytes of an HPKE-wrapped DEK (SPEC.md §3.5): encapsulated key, sealed DEK, tag.
pub const HPKE_WRAPPED_LEN: usize = 32 + KEY_LEN + 16;
/// Bytes of the header: the part bound into every derived key.
pub const HEADER_LEN: usize = 49;
/// Bytes of the header plus the commitment.
pub const FIXED_LEN: usize = HEADER_LEN + KEY_LEN;
/// Longest binary envelope; its base64url text is at most 464 characters.
pub const MAX_ENVELOPE_LEN: usize = FIXED_LEN + 1 + MAX_KID_LEN + 2 + MAX_WRAPPED_LEN;

/// Plaintext bytes in a frame of exponent `exp`.
#[must_use]
pub const fn frame_size(exp: u8) -> usize {
    1usize << exp
}
