//! AES-256-GCM from AWS-LC: hardware AES and carry-less multiply, out-of-place open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use super::FrameCipher;
use crate::error::{Error, Result};
use crate::limits::{KEY_LEN, NONCE_LEN, TAG_LEN};

/// The AWS-LC backend (`aws-lc` feature).
pub struct AwsLc(LessSafeKey);

impl FrameCipher for AwsLc {
    const NAME: &'static str = "aws-lc";

    fn new(key: &[u8; KEY_LEN]) -> Result<Self> {
        let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| Error::InvalidParameter)?;
        Ok(Self(LessSafeKey::new(unbound)))
    }

    fn seal_in_place(&self, nonce: &[u8; NONCE_LEN], buf: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::empty(), buf)
            .map_err(|_| Error::LimitExceeded)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    fn seal_to(&self, nonce: &[u8; NONCE_LEN], plaintext: &[u8], out: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        if out.len() != plaintext.len() {
            return Err(Error::BufferTooSmall);
        }
        let mut tag = [0u8; TAG_LEN];
        self.0
            .seal_out_of_place_scatter(
                Nonce::assume_unique_for_key(*nonce),
                Aad::empty(),
                plaintext,
                out,
                &[],
                &mut tag,
            )
            .map_err(|_| Error::LimitExceeded)?;
        Ok(tag)
    }

    fn open_in_place(&self, nonce: &[u8; NONCE_LEN], ct_and_tag: &mut [u8]) -> Result<()> {
        self.0
            .open_in_place(Nonce::assume_unique_for_key(*nonce), Aad::empty(), ct_and_tag)
            .map(|_| ())
            .map_err(|_| Error::AuthenticationFailed)
    }

    fn open_to(&self, nonce: &[u8; NONCE_LEN], ct: &[u8], tag: &[u8; TAG_LEN], out: &mut [u8]) -> Result<()> {
        if out.len() != ct.len() {
            return Err(Error::BufferTooSmall);
        }
        self.0
            .open_separate_gather(Nonce::assume_unique_for_key(*nonce), Aad::empty(), ct, tag, out)
            .map_err(|_| Error::AuthenticationFailed)
    }
}
