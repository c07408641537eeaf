//! Key derivation and key commitment (SPEC.md §4).
//!
//! `prk = HKDF-Extract(salt, DEK)`; every key and the commitment are HKDF-Expand outputs
//! whose info is `label || context || header`. Putting the header (version, suite, frame
//! size, layout, declared size, salt) into every info string binds those parameters to the
//! keys: altering any of them changes the commitment, which is checked before any frame is
//! opened.

use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::cipher::FrameCipher;
use crate::error::{Error, Result};
use crate::frame::{SegmentOpener, SegmentSealer};
use crate::header::Header;
use crate::limits::{HEADER_LEN, KEY_LEN};
use crate::nonce::Prefix;
use crate::wrap::Dek;

/// HKDF info label of the key commitment.
pub const LABEL_COMMITMENT: &[u8] = b"isec/v1/commitment";
/// HKDF info label of segment frame keys (followed by the u32 BE segment number).
pub const LABEL_FRAME_KEY: &[u8] = b"isec/v1/frame-key";
/// HKDF info label of the segment-table MAC key.
pub const LABEL_TABLE_MAC: &[u8] = b"isec/v1/segment-table-mac";
/// HKDF info label of the re-encryption checkpoint MAC key.
pub const LABEL_CHECKPOINT_MAC: &[u8] = b"isec/v1/checkpoint-mac";
/// HKDF info label of the source half of a re-encryption checkpoint's MAC key.
pub const LABEL_CHECKPOINT_SOURCE: &[u8] = b"isec/v1/checkpoint-source";

/// The per-object secret from which every frame key derives. Wiped on drop.
///
/// Holding an `ObjectKey` means the DEK matched the envelope's commitment.
#[derive(Clone)]
pub struct ObjectKey {
    prk: Zeroizing<[u8; KEY_LEN]>,
    header: Header,
    header_bytes: [u8; HEADER_LEN],
}

impl core::fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ObjectKey").field("header", &self.header).finish_non_exhaustive()
    }
}

impl ObjectKey {
    /// Derives the object key and the commitment for `dek` under `header`.
    pub(crate) fn derive(dek: &Dek, header: &Header) -> (Self, [u8; KEY_LEN]) {
        let header_bytes = header.to_bytes();
        let (mut prk, _) = Hkdf::<Sha256>::extract(Some(&header.salt), dek.bytes());
        let mut prk_bytes = Zeroizing::new([0u8; KEY_LEN]);
        prk_bytes.copy_from_slice(&prk);
        // The returned array is a copy on the stack; the HKDF and HMAC states wipe
        // themselves on drop (hmac's and sha2's `zeroize` features).
        prk.as_mut_slice().zeroize();
        let key = Self { prk: prk_bytes, header: *header, header_bytes };
        let commitment = *key.expand(LABEL_COMMITMENT, &[]);
        (key, commitment)
    }

    /// Derives the object key and checks it against `commitment` in constant time.
    pub(crate) fn derive_checked(dek: &Dek, header: &Header, commitment: &[u8; KEY_LEN]) -> Result<Self> {
        let (key, expected) = Self::derive(dek, header);
        if bool::from(expected.ct_eq(commitment)) { Ok(key) } else { Err(Error::CommitmentMismatch) }
    }

    fn expand(&self, label: &[u8], context: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        // A PRK of hash length is always accepted and 32 bytes is far below 255 * 32, so
        // neither step can fail; the fallback keeps the path panic-free regardless.
        if let Ok(hk) = Hkdf::<Sha256>::from_prk(&self.prk[..]) {
            let _ = hk.expand_multi_info(&[label, context, &self.header_bytes], &mut out[..]);
        }
        out
    }

    /// The format parameters this key is bound to.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The AES-256-GCM key of segment `segment`. Exposed only for backends outside Rust
    /// (the browser's WebCrypto, feature `external-cipher`), which import it as a
    /// non-extractable key, and under `hazmat`: whoever holds it chooses nonces themselves.
    #[cfg(any(feature = "hazmat", feature = "external-cipher"))]
    #[must_use]
    pub fn segment_key(&self, segment: u32) -> Zeroizing<[u8; KEY_LEN]> {
        self.frame_key(segment)
    }

    fn frame_key(&self, segment: u32) -> Zeroizing<[u8; KEY_LEN]> {
        self.expand(LABEL_FRAME_KEY, &segment.to_be_bytes())
    }

    /// A MAC key for the given label (segment tables, checkpoints).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code, reason = "segment tables and checkpoints need alloc"))]
    pub(crate) fn mac_key(&self, label: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
        self.expand(label, &[])
    }

    /// A sealer for one encryption of `segment` with nonce prefix `prefix`, and caller-chosen
    /// frame positions: nonce choice, hence `hazmat` (the streaming [`crate::Encryptor`]
    /// draws prefixes and counts positions itself).
    ///
    /// # Errors
    /// As [`FrameCipher::new`].
    #[cfg(feature = "hazmat")]
    pub fn sealer<C: FrameCipher>(&self, segment: u32, prefix: Prefix) -> Result<SegmentSealer<C>> {
        self.segment_sealer(segment, prefix)
    }

    #[cfg_attr(not(feature = "alloc"), allow(dead_code, reason = "the streaming encryptor needs alloc"))]
    pub(crate) fn segment_sealer<C: FrameCipher>(&self, segment: u32, prefix: Prefix) -> Result<SegmentSealer<C>> {
        Ok(SegmentSealer::new(C::new(&self.frame_key(segment))?, prefix))
    }

    /// An opener for `segment`.
    ///
    /// # Errors
    /// As [`FrameCipher::new`].
    pub fn opener<C: FrameCipher>(&self, segment: u32) -> Result<SegmentOpener<C>> {
        Ok(SegmentOpener::new(C::new(&self.frame_key(segment))?))
    }
}

/// HMAC-SHA256 of the concatenation of `parts` under `key` (segment tables, checkpoints).
/// The HMAC state wipes itself on drop (hmac's `zeroize` feature).
#[cfg(feature = "alloc")]
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{KeyInit, Mac};
    let mut out = [0u8; 32];
    // HMAC accepts keys of any length, so construction cannot fail.
    if let Ok(mut m) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        for p in parts {
            m.update(p);
        }
        out.copy_from_slice(&m.finalize().into_bytes());
    }
    out
}

/// Plain HKDF-SHA256 (RFC 5869), the primitive under the key schedule, for known-answer tests.
///
/// # Errors
/// [`Error::InvalidParameter`] if `okm` is longer than 255 * 32 bytes.
#[cfg(feature = "hazmat")]
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], okm: &mut [u8]) -> Result<()> {
    Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, okm).map_err(|_| Error::InvalidParameter)
}
