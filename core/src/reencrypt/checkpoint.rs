//! Checkpoints (SPEC.md §13.2): the record a stopped job resumes from. It names the source,
//! the new object's envelope and the parts whose output is final, and is MAC'd under keys of
//! both the new object and the source, so that neither key alone can mint one.

use alloc::vec::Vec;

use zeroize::Zeroizing;

use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::kdf::{LABEL_CHECKPOINT_MAC, ObjectKey, hmac_sha256};
use crate::limits::{FRAME_OVERHEAD, KEY_LEN};
use crate::shape::Shape;

use super::source::Source;

pub(super) const CHECKPOINT_MAGIC: &[u8; 4] = b"ISCK";
pub(super) const CHECKPOINT_VERSION: u8 = 2;

/// The fields of a checkpoint, readable without a key (for progress reports).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checkpoint {
    /// Digest of the source object's metadata and size.
    pub source_identity: [u8; 32],
    /// Source ciphertext length.
    pub source_ciphertext_len: u64,
    /// The new object's binary envelope.
    pub envelope: Vec<u8>,
    /// Parts of the new object whose output is final.
    pub parts_done: u32,
}

impl Checkpoint {
    /// Parses a checkpoint's structure (the MAC is checked by [`Reencryption::resume`](super::Reencryption::resume)).
    ///
    /// # Errors
    /// [`Error::MalformedCheckpoint`].
    pub fn parse(b: &[u8]) -> Result<Self> {
        let bad = Error::MalformedCheckpoint;
        if b.get(..4) != Some(CHECKPOINT_MAGIC) || b.get(4) != Some(&CHECKPOINT_VERSION) {
            return Err(bad);
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(b.get(5..37).ok_or(bad)?);
        let ct_len = u64::from_be_bytes(b.get(37..45).and_then(|s| s.try_into().ok()).ok_or(bad)?);
        let env_len = usize::from(u16::from_be_bytes(b.get(45..47).and_then(|s| s.try_into().ok()).ok_or(bad)?));
        let env = b.get(47..47 + env_len).ok_or(bad)?.to_vec();
        let at = 47 + env_len;
        let parts = u32::from_be_bytes(b.get(at..at + 4).and_then(|s| s.try_into().ok()).ok_or(bad)?);
        if b.len() != at + 4 + 32 {
            return Err(bad);
        }
        Ok(Self { source_identity: id, source_ciphertext_len: ct_len, envelope: env, parts_done: parts })
    }

    /// Where the output resumes: bytes of the new object that are final.
    ///
    /// # Errors
    /// [`Error::MalformedCheckpoint`] if the envelope inside does not decode or is not a
    /// parts-layout envelope with a declared size.
    pub fn target_offset(&self) -> Result<u64> {
        let env = Envelope::decode(&self.envelope).map_err(|_| Error::MalformedCheckpoint)?;
        let header = env.header();
        let (Some(part), Some(size)) = (header.part_size(), header.declared_size) else {
            return Err(Error::MalformedCheckpoint);
        };
        let frame = header.frame_size();
        let part_ct = part + part.div_ceil(frame) * FRAME_OVERHEAD as u64;
        let done = u64::from(self.parts_done);
        if done > size.div_ceil(part).max(1) {
            return Err(Error::MalformedCheckpoint);
        }
        if done * part >= size {
            // Every part is final: the whole object.
            return Shape::from_plaintext_len(header, size)
                .map(|s| s.ciphertext_len())
                .map_err(|_| Error::MalformedCheckpoint);
        }
        Ok(done * part_ct)
    }
}

/// HMAC-SHA256 under `checkpoint key of the new object || checkpoint key of the source`
/// (SPEC.md §13.2): minting one needs both the new DEK and the source's key.
pub(super) fn checkpoint_mac(key: &ObjectKey, source: &dyn Source, body: &[u8]) -> [u8; 32] {
    let mut k = Zeroizing::new([0u8; 2 * KEY_LEN]);
    k[..KEY_LEN].copy_from_slice(&key.mac_key(LABEL_CHECKPOINT_MAC)[..]);
    k[KEY_LEN..].copy_from_slice(&source.checkpoint_key()[..]);
    hmac_sha256(&k[..], &[body])
}

pub(super) const UPLOAD_MAGIC: &[u8; 4] = b"ISUP";
pub(super) const UPLOAD_VERSION: u8 = 1;

/// A partial S3 upload's checkpoint (SPEC.md §13.3): the multipart upload that holds the
/// new object's first parts and the [`Checkpoint`] of the job writing it, MAC'd under the same
/// two keys. A bucket job saves it after each uploaded part so that a crash costs at most the
/// parts in flight; the upload id is authenticated because completing a foreign upload would
/// replace the object with parts nobody verified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadCheckpoint {
    /// The multipart upload's id.
    pub upload_id: alloc::string::String,
    /// The re-encryption checkpoint inside (its own MAC is checked on resume).
    pub checkpoint: Vec<u8>,
}

impl UploadCheckpoint {
    /// Parses the structure without a key: enough to abort an upload no job will take up
    /// (the MAC is checked by [`super::Reencryption::resume_upload`]).
    ///
    /// # Errors
    /// [`Error::MalformedCheckpoint`].
    pub fn parse(b: &[u8]) -> Result<Self> {
        let bad = Error::MalformedCheckpoint;
        if b.get(..4) != Some(UPLOAD_MAGIC) || b.get(4) != Some(&UPLOAD_VERSION) {
            return Err(bad);
        }
        let id_len = usize::from(u16::from_be_bytes(b.get(5..7).and_then(|s| s.try_into().ok()).ok_or(bad)?));
        let id = b.get(7..7 + id_len).ok_or(bad)?;
        let id = core::str::from_utf8(id).map_err(|_| bad)?;
        let at = 7 + id_len;
        let cp_len = u32::from_be_bytes(b.get(at..at + 4).and_then(|s| s.try_into().ok()).ok_or(bad)?);
        let cp_len = usize::try_from(cp_len).map_err(|_| bad)?;
        // Checked: a declared length near u32::MAX must not wrap on 32-bit targets (wasm32).
        let end = (at + 4).checked_add(cp_len).ok_or(bad)?;
        let cp = b.get(at + 4..end).ok_or(bad)?;
        if id.is_empty() || end.checked_add(32) != Some(b.len()) {
            return Err(bad);
        }
        Checkpoint::parse(cp)?;
        Ok(Self { upload_id: id.into(), checkpoint: cp.to_vec() })
    }

    /// The bytes before the MAC.
    pub(super) fn body(upload_id: &str, checkpoint: &[u8]) -> Result<Vec<u8>> {
        let id_len = u16::try_from(upload_id.len()).map_err(|_| Error::InvalidParameter)?;
        let cp_len = u32::try_from(checkpoint.len()).map_err(|_| Error::InvalidParameter)?;
        if upload_id.is_empty() {
            return Err(Error::InvalidParameter);
        }
        let mut b = Vec::with_capacity(4 + 1 + 2 + upload_id.len() + 4 + checkpoint.len() + 32);
        b.extend_from_slice(UPLOAD_MAGIC);
        b.push(UPLOAD_VERSION);
        b.extend_from_slice(&id_len.to_be_bytes());
        b.extend_from_slice(upload_id.as_bytes());
        b.extend_from_slice(&cp_len.to_be_bytes());
        b.extend_from_slice(checkpoint);
        Ok(b)
    }
}
