//! The frame-cipher backend: the only place AES-GCM is called.
//!
//! The format logic (nonces, positions, checks) is written once against [`FrameCipher`];
//! backends only encrypt and decrypt one frame with a given key and nonce and empty AAD.
//! Portable RustCrypto is the default (no_std, wasm); AWS-LC is 5-7x faster on native
//! targets; browsers drive WebCrypto from the same positions through [`crate::frame`].
//! The one exception to whole-frame opening is `gcm_stream`: legacy seals too large to
//! buffer, decrypted as they arrive during migration and verified at their end.

mod rustcrypto;
pub use rustcrypto::RustCrypto;

// Incremental GCM for legacy seals too large to buffer; only the legacy reader uses it.
#[cfg(feature = "alloc")]
pub(crate) mod gcm_stream;

#[cfg(feature = "external-cipher")]
mod unsealed;
#[cfg(feature = "external-cipher")]
pub use unsealed::Unsealed;

#[cfg(feature = "aws-lc")]
mod awslc;
#[cfg(feature = "aws-lc")]
pub use awslc::AwsLc;

use crate::error::Result;
use crate::limits::{KEY_LEN, NONCE_LEN, TAG_LEN};

/// AES-256-GCM with empty AAD, keyed once, usable from many threads.
pub trait FrameCipher: Sized + Send + Sync {
    /// Short backend name for benchmarks and diagnostics.
    const NAME: &'static str;

    /// Expands `key` into a cipher context.
    ///
    /// # Errors
    /// [`crate::Error::InvalidParameter`] if the backend rejects the key (never for AES-256).
    fn new(key: &[u8; KEY_LEN]) -> Result<Self>;

    /// Encrypts `buf` in place and returns the tag.
    ///
    /// # Errors
    /// [`crate::Error::LimitExceeded`] if `buf` exceeds GCM's per-message limit.
    fn seal_in_place(&self, nonce: &[u8; NONCE_LEN], buf: &mut [u8]) -> Result<[u8; TAG_LEN]>;

    /// Encrypts `plaintext` into `out` (same length) and returns the tag, skipping a copy
    /// where the backend has an out-of-place primitive.
    ///
    /// # Errors
    /// [`crate::Error::BufferTooSmall`] if the lengths differ; as
    /// [`FrameCipher::seal_in_place`].
    fn seal_to(&self, nonce: &[u8; NONCE_LEN], plaintext: &[u8], out: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        if out.len() != plaintext.len() {
            return Err(crate::Error::BufferTooSmall);
        }
        out.copy_from_slice(plaintext);
        self.seal_in_place(nonce, out)
    }

    /// Verifies the tag at the end of `ct_and_tag` and decrypts the rest in place. On failure
    /// the content is unspecified; callers wipe it (see [`crate::frame`]).
    ///
    /// # Errors
    /// [`crate::Error::AuthenticationFailed`] if the tag does not verify.
    fn open_in_place(&self, nonce: &[u8; NONCE_LEN], ct_and_tag: &mut [u8]) -> Result<()>;

    /// Verifies and decrypts `ct` into `out` (same length), skipping a copy where the
    /// backend has an out-of-place primitive.
    ///
    /// # Errors
    /// As [`FrameCipher::open_in_place`].
    fn open_to(&self, nonce: &[u8; NONCE_LEN], ct: &[u8], tag: &[u8; TAG_LEN], out: &mut [u8]) -> Result<()>;
}

/// The fastest backend compiled in: AWS-LC with the `aws-lc` feature, else RustCrypto.
#[cfg(feature = "aws-lc")]
pub type DefaultCipher = AwsLc;
/// The fastest backend compiled in: AWS-LC with the `aws-lc` feature, else RustCrypto.
#[cfg(not(feature = "aws-lc"))]
pub type DefaultCipher = RustCrypto;
