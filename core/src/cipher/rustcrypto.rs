//! Portable AES-256-GCM from RustCrypto: no_std, constant-time tag check, zeroized on drop.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit};

use super::FrameCipher;
use crate::error::{Error, Result};
use crate::limits::{KEY_LEN, NONCE_LEN, TAG_LEN};

/// The RustCrypto `aes-gcm` backend.
#[derive(Clone)]
pub struct RustCrypto(Aes256Gcm);

impl FrameCipher for RustCrypto {
    const NAME: &'static str = "rustcrypto";

    fn new(key: &[u8; KEY_LEN]) -> Result<Self> {
        Ok(Self(Aes256Gcm::new(key.into())))
    }

    fn seal_in_place(&self, nonce: &[u8; NONCE_LEN], buf: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        let tag = self.0.encrypt_in_place_detached(nonce.into(), &[], buf).map_err(|_| Error::LimitExceeded)?;
        Ok(tag.into())
    }

    fn open_in_place(&self, nonce: &[u8; NONCE_LEN], ct_and_tag: &mut [u8]) -> Result<()> {
        let split = ct_and_tag.len().checked_sub(TAG_LEN).ok_or(Error::BadFrameLength)?;
        let (ct, tag) = ct_and_tag.split_at_mut(split);
        let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| Error::BadFrameLength)?;
        self.0.decrypt_in_place_detached(nonce.into(), &[], ct, (&tag).into()).map_err(|_| Error::AuthenticationFailed)
    }

    fn open_to(&self, nonce: &[u8; NONCE_LEN], ct: &[u8], tag: &[u8; TAG_LEN], out: &mut [u8]) -> Result<()> {
        if out.len() != ct.len() {
            return Err(Error::BufferTooSmall);
        }
        out.copy_from_slice(ct);
        self.0.decrypt_in_place_detached(nonce.into(), &[], out, tag.into()).map_err(|_| Error::AuthenticationFailed)
    }
}
