//! The proxy's deterministic nonces (SPEC.md §11).
//!
//! Decryption never needs these: every seal carries its nonce. They exist so that, where the
//! layout says a nonce was derived and the upload id is known, the reader can insist the
//! embedded nonce is the derived one: a seal moved from another position or another upload
//! under the same DEK would otherwise decrypt without complaint, since the proxy's seals have
//! no other position binding.

use sha2::{Digest, Sha256};

use crate::limits::NONCE_LEN;

/// The nonce of backend part `part_number` of a streamed PUT:
/// `SHA-256(UTF-8(upload_id + decimal(part_number)))[..12]`.
///
/// There is no separator, so ("x1", 1) and ("x", 11) give the same nonce; that is the
/// proxy's behaviour and is reproduced exactly, not fixed (the upload id is fixed per object,
/// so the collision needs two uploads whose ids differ by a trailing digit).
#[must_use]
pub fn part_nonce(upload_id: &str, part_number: u32) -> [u8; NONCE_LEN] {
    let mut digits = [0u8; 10];
    let mut h = Sha256::new();
    h.update(upload_id.as_bytes());
    h.update(decimal(part_number, &mut digits));
    truncate(&h.finalize())
}

/// The nonce of seal `frame_index` of internal part `internal_part` of a framed multipart
/// upload: `SHA-256(UTF-8("{upload_id}:{internal_part}:{frame_index}"))[..12]`.
#[must_use]
pub fn frame_nonce(upload_id: &str, internal_part: u32, frame_index: u32) -> [u8; NONCE_LEN] {
    let mut digits = [0u8; 10];
    let mut h = Sha256::new();
    h.update(upload_id.as_bytes());
    h.update(b":");
    h.update(decimal(internal_part, &mut digits));
    h.update(b":");
    h.update(decimal(frame_index, &mut digits));
    truncate(&h.finalize())
}

/// The staged layout's generation name for a wrapped DEK: `SHA-256(wrapped)`, shown as hex
/// in `s3proxy-generation` and in the sidecar's key. Exposed so callers can check a sidecar
/// belongs to the DEK it carries; the reader does not insist on it, because the vectors only
/// infer this relation (the seals authenticate under the DEK regardless).
#[must_use]
pub fn generation_for(wrapped_dek: &[u8]) -> [u8; 32] {
    Sha256::digest(wrapped_dek).into()
}

fn truncate(digest: &[u8]) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    for (o, i) in n.iter_mut().zip(digest) {
        *o = *i;
    }
    n
}

/// Python's `str(n)` for a non-negative integer, without allocating.
fn decimal(mut v: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        if let Some(slot) = buf.get_mut(at) {
            // v % 10 < 10, so the cast is exact.
            *slot = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 || at == 0 {
            break;
        }
    }
    buf.get(at..).unwrap_or(&[])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hex12(s: &str) -> [u8; 12] {
        let mut out = [0u8; 12];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        out
    }

    const UPLOAD: &str = "2~vectorUploadIdExample0123456789";

    #[test]
    fn decimal_matches_python_str() {
        let mut b = [0u8; 10];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(7, &mut b), b"7");
        assert_eq!(decimal(10, &mut b), b"10");
        assert_eq!(decimal(10_000, &mut b), b"10000");
        assert_eq!(decimal(u32::MAX, &mut b), b"4294967295");
    }

    // From nonce_and_sizes.json (derive_part_nonce).
    #[test]
    fn part_nonces() {
        assert_eq!(part_nonce(UPLOAD, 1), hex12("fb0ccc7a651116b66973cd21"));
        assert_eq!(part_nonce(UPLOAD, 2), hex12("891bf7be5f9b67d99f3e047e"));
        assert_eq!(part_nonce(UPLOAD, 11), hex12("574f359995f2c5fec543e7a8"));
        assert_eq!(part_nonce(UPLOAD, 21), hex12("3183fa9f05f5c2e26975f844"));
    }

    // From nonce_and_sizes.json (derive_frame_nonce).
    #[test]
    fn frame_nonces() {
        assert_eq!(frame_nonce(UPLOAD, 1, 0), hex12("1ecafde07cf278e4529f00fd"));
        assert_eq!(frame_nonce(UPLOAD, 1, 1), hex12("8ef3a3b76adf937ca448ff0a"));
        assert_eq!(frame_nonce(UPLOAD, 21, 0), hex12("c97ba1cdcc24bc149c92a8e8"));
        assert_eq!(frame_nonce(UPLOAD, 21, 1), hex12("3f66b0cee35216fc3184446f"));
    }

    // The separator-less part nonce collides; reproduced, not fixed (nonce_and_sizes.json).
    #[test]
    fn part_nonce_collision_demo() {
        let a = part_nonce("x1", 1);
        let b = part_nonce("x", 11);
        assert_eq!(a, b);
        assert_eq!(a, hex12("fe372293ac6fc8767d248278"));
        // The framed derivation has separators and does not collide this way.
        assert_ne!(frame_nonce("x1", 1, 0), frame_nonce("x", 11, 0));
    }

    #[test]
    fn generation_of_staged_vector() {
        let wrapped = [
            0x3b, 0x47, 0x8a, 0xd4, 0x49, 0xf3, 0xf4, 0x5e, 0xbe, 0xd1, 0x13, 0xdb, 0x23, 0xfd, 0x5c, 0xd3, 0x3a, 0xc9,
            0x67, 0x90, 0xe0, 0x72, 0xae, 0xf8, 0x00, 0xd6, 0x2b, 0xb4, 0x2d, 0x8f, 0x97, 0x1e, 0x01, 0x09, 0xb9, 0x1c,
            0x85, 0x20, 0xb1, 0x19,
        ];
        let g = generation_for(&wrapped);
        assert_eq!(g[..4], [0x71, 0x8d, 0x67, 0x94]);
        assert_eq!(g[28..], [0x38, 0xf2, 0xfe, 0xce]);
    }
}
