//! A frame "cipher" for AES implementations outside Rust (the browser's WebCrypto, which is
//! asynchronous and cannot sit behind the synchronous [`FrameCipher`] trait).
//!
//! The streaming encryptor writes every frame as usual (nonce, body, tag space) but leaves
//! the body in plaintext and the tag zero; the caller then seals each frame with AES-256-GCM
//! under [`crate::ObjectKey::segment_key`] (nonce = the frame's first 12 bytes, empty AAD)
//! before the bytes leave the process. Positions, nonces and lengths are still decided here,
//! so the format has one implementation. It never decrypts.

use super::FrameCipher;
use crate::error::{Error, Result};
use crate::limits::{KEY_LEN, NONCE_LEN, TAG_LEN};

/// Writes frames unsealed for an external AES-GCM (feature `external-cipher`).
#[derive(Debug, Clone, Copy)]
pub struct Unsealed;

impl FrameCipher for Unsealed {
    const NAME: &'static str = "unsealed";

    fn new(_key: &[u8; KEY_LEN]) -> Result<Self> {
        Ok(Self)
    }

    fn seal_in_place(&self, _nonce: &[u8; NONCE_LEN], _buf: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        Ok([0; TAG_LEN])
    }

    fn open_in_place(&self, _nonce: &[u8; NONCE_LEN], _ct_and_tag: &mut [u8]) -> Result<()> {
        Err(Error::AuthenticationFailed)
    }

    fn open_to(&self, _nonce: &[u8; NONCE_LEN], _ct: &[u8], _tag: &[u8; TAG_LEN], out: &mut [u8]) -> Result<()> {
        out.fill(0);
        Err(Error::AuthenticationFailed)
    }
}
