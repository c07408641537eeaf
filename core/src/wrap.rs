//! Key material and DEK wrapping: AES-KWP (RFC 5649) under a local KEK, or an external
//! wrapper (a KMS) behind the [`KeyWrap`] trait.

use aes_kw::KekAes256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};
use crate::limits::{KEY_LEN, MAX_WRAPPED_LEN};

/// A 256-bit data-encryption key. Wiped on drop; never leaves core through the public API
/// except through [`Dek::expose`] (hazmat).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Dek([u8; KEY_LEN]);

impl Dek {
    /// Wraps raw bytes as a DEK.
    #[must_use]
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh random DEK.
    ///
    /// # Errors
    /// [`Error::RandomnessUnavailable`] if the OS or browser source fails.
    #[cfg(feature = "getrandom")]
    pub fn generate() -> Result<Self> {
        crate::random::array().map(Self)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The raw key bytes. Needed by external wrappers implemented outside core (a KMS
    /// Encrypt call must see the DEK it wraps) and by deterministic test vectors; nothing
    /// else should call it.
    #[must_use]
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl core::fmt::Debug for Dek {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Dek(..)")
    }
}

/// How a DEK is wrapped; the envelope records it (SPEC.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum WrapAlg {
    /// AES-256 Key Wrap with Padding (RFC 5649) under a local KEK: 40 bytes.
    AesKwp = 1,
    /// An opaque blob produced by an external wrapper (KMS); its own format.
    External = 2,
    /// HPKE (RFC 9180) to an X25519 public-key recipient, bound to the envelope header:
    /// 80 bytes (SPEC.md §3.5).
    HpkeX25519 = 3,
}

impl WrapAlg {
    /// Parses the envelope byte.
    ///
    /// # Errors
    /// [`Error::UnsupportedSuite`] for unknown values.
    pub fn from_byte(b: u8) -> Result<Self> {
        match b {
            1 => Ok(Self::AesKwp),
            2 => Ok(Self::External),
            3 => Ok(Self::HpkeX25519),
            _ => Err(Error::UnsupportedSuite),
        }
    }

    /// Stable name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::AesKwp => "aes-kwp",
            Self::External => "external",
            Self::HpkeX25519 => "hpke-x25519",
        }
    }
}

/// A wrapped DEK, stored inline (no allocation) up to [`MAX_WRAPPED_LEN`] bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    len: u8,
    bytes: [u8; MAX_WRAPPED_LEN],
}

impl WrappedKey {
    /// Copies a wrapped key.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] if longer than [`MAX_WRAPPED_LEN`]; [`Error::MalformedEnvelope`]
    /// if empty.
    pub fn from_slice(b: &[u8]) -> Result<Self> {
        if b.is_empty() {
            return Err(Error::MalformedEnvelope);
        }
        let len = u8::try_from(b.len()).map_err(|_| Error::LimitExceeded)?;
        if b.len() > MAX_WRAPPED_LEN {
            return Err(Error::LimitExceeded);
        }
        let mut bytes = [0u8; MAX_WRAPPED_LEN];
        bytes[..b.len()].copy_from_slice(b);
        Ok(Self { len, bytes })
    }

    /// The wrapped bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl core::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "WrappedKey({} bytes)", self.len)
    }
}

/// Something that wraps and unwraps DEKs: a local KEK, or a KMS reached by a binding.
pub trait KeyWrap {
    /// The algorithm recorded in envelopes this wrapper writes.
    fn alg(&self) -> WrapAlg;
    /// Wraps `dek`.
    ///
    /// # Errors
    /// [`Error::ExternalWrapperFailed`] from external wrappers; local wrapping cannot fail.
    fn wrap(&self, dek: &Dek) -> Result<WrappedKey>;
    /// Unwraps `wrapped`.
    ///
    /// # Errors
    /// [`Error::UnwrapFailed`] if the integrity check fails (wrong KEK or damaged input).
    fn unwrap(&self, wrapped: &[u8]) -> Result<Dek>;
}

/// A local 256-bit key-encryption key. Wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Kek([u8; KEY_LEN]);

impl Kek {
    /// A KEK from raw bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A KEK from a slice that must be exactly 32 bytes.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != KEY_LEN {
            return Err(Error::InvalidParameter);
        }
        let mut k = Self([0u8; KEY_LEN]);
        k.0.copy_from_slice(bytes);
        Ok(k)
    }

    /// A fresh random KEK.
    ///
    /// # Errors
    /// [`Error::RandomnessUnavailable`] if the randomness source fails.
    #[cfg(feature = "getrandom")]
    pub fn generate() -> Result<Self> {
        crate::random::array().map(Self)
    }

    /// The legacy proxy's KEK: SHA-256 of a configured secret string, no salt and no
    /// stretching. Only for reading and migrating that proxy's objects (SPEC.md §11).
    #[must_use]
    pub fn legacy_from_secret_string(secret: &str) -> Self {
        use sha2::{Digest, Sha256};
        let mut digest = Sha256::digest(secret.as_bytes());
        let mut k = Self([0u8; KEY_LEN]);
        k.0.copy_from_slice(&digest);
        digest.as_mut_slice().zeroize();
        k
    }

    /// Raw bytes, for writing key files.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl core::fmt::Debug for Kek {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Kek(..)")
    }
}

impl Kek {
    /// The AES key schedule, built from a borrow of the key (no copy of it is left on the
    /// stack); its round keys are wiped on drop (the `aes` crate's `zeroize` feature).
    fn cipher(&self) -> Result<KekAes256> {
        KekAes256::try_from(&self.0[..]).map_err(|_| Error::InvalidParameter)
    }
}

impl KeyWrap for Kek {
    fn alg(&self) -> WrapAlg {
        WrapAlg::AesKwp
    }

    fn wrap(&self, dek: &Dek) -> Result<WrappedKey> {
        let kek = self.cipher()?;
        let mut out = [0u8; KEY_LEN + 8];
        kek.wrap_with_padding(dek.bytes(), &mut out).map_err(|_| Error::InvalidParameter)?;
        WrappedKey::from_slice(&out)
    }

    fn unwrap(&self, wrapped: &[u8]) -> Result<Dek> {
        if wrapped.len() != KEY_LEN + 8 {
            return Err(Error::UnwrapFailed);
        }
        let kek = self.cipher()?;
        let mut out = zeroize::Zeroizing::new([0u8; KEY_LEN]);
        let dek = kek.unwrap_with_padding(wrapped, &mut out[..]).map_err(|_| Error::UnwrapFailed)?;
        // Written in place rather than through an array temporary that would outlive it.
        let mut key = Dek([0u8; KEY_LEN]);
        if dek.len() != KEY_LEN {
            return Err(Error::UnwrapFailed);
        }
        key.0.copy_from_slice(dek);
        Ok(key)
    }
}
