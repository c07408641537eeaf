//! Public-key recipients (SPEC.md §3.5): a DEK wrapped with HPKE (RFC 9180, base mode) to an
//! X25519 public key, so that a writer holding only the public key creates envelopes it can
//! never open.
//!
//! The suite is DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM (KEM 0x0020, KDF 0x0001,
//! AEAD 0x0002). The envelope header is bound into HPKE's `info`, so a wrapped DEK opens only
//! under the header it was sealed for: moved to another envelope it fails at the HPKE tag,
//! before any commitment is computed. The KEM itself binds the recipient's public key.
//!
//! The `hpke` crate does the KEM, key schedule and AEAD; this module fixes the suite, the
//! `info`, the wire form (`enc || ciphertext || tag`, 80 bytes) and the keys' text forms.

use alloc::string::String;
use core::convert::Infallible;

use base64ct::{Base64UrlUnpadded, Encoding};
use hpke::aead::{AeadTag, AesGcm256};
use hpke::inout::InOutBuf;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::rand_core::{TryCryptoRng, TryRng};
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::header::Header;
use crate::limits::{HEADER_LEN, KEY_LEN};
use crate::wrap::{Dek, WrappedKey};

type Suite = X25519HkdfSha256;

/// Bytes of the encapsulated key (an X25519 public key).
pub const ENC_LEN: usize = 32;
/// Bytes of an HPKE-wrapped DEK: `enc || AES-256-GCM(DEK) || tag`.
pub const WRAPPED_LEN: usize = crate::limits::HPKE_WRAPPED_LEN;
/// Domain label at the start of HPKE's `info`.
pub const INFO_LABEL: &[u8] = b"isec/v1/hpke-x25519";
/// Bytes of HPKE's `info`: the label, then the 49 header bytes.
pub const INFO_LEN: usize = INFO_LABEL.len() + HEADER_LEN;

/// Text prefix of a recipient's public key.
pub const PUBLIC_PREFIX: &str = "isec-x25519-public:";
/// Text prefix of a recipient's private key.
pub const PRIVATE_PREFIX: &str = "isec-x25519-private:";

/// HPKE's `info` for an envelope with this header: what ties a wrapped DEK to one object.
#[must_use]
pub fn info(header: &Header) -> [u8; INFO_LEN] {
    let mut out = [0u8; INFO_LEN];
    out[..INFO_LABEL.len()].copy_from_slice(INFO_LABEL);
    out[INFO_LABEL.len()..].copy_from_slice(&header.to_bytes());
    out
}

/// A recipient's X25519 public key: enough to create envelopes, never to open one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// A public key from its 32 bytes. Every 32-byte string is accepted here, as X25519
    /// does; a low-order point fails at wrap time ([`Error::InvalidParameter`]).
    #[must_use]
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The text form: `isec-x25519-public:` and the key in base64url without padding.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut s = String::from(PUBLIC_PREFIX);
        s.push_str(&Base64UrlUnpadded::encode_string(&self.0));
        s
    }

    /// Parses the text form.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for another prefix, length or encoding.
    pub fn from_text(text: &str) -> Result<Self> {
        decode_text(text, PUBLIC_PREFIX).map(|k| Self(*k))
    }

    #[cfg_attr(
        not(any(feature = "getrandom", feature = "hazmat")),
        allow(dead_code, reason = "no caller without them")
    )]
    fn hpke(&self) -> Result<<Suite as Kem>::PublicKey> {
        <Suite as Kem>::PublicKey::from_bytes(&self.0).map_err(|_| Error::InvalidParameter)
    }

    /// Wraps `dek` for this recipient under `header`, with `eph_ikm` as the ephemeral key's
    /// seed (RFC 9180 DeriveKeyPair). Everything but deterministic vectors draws it fresh
    /// ([`PublicKey::wrap`]): one seed used twice seals two DEKs under one AEAD key and nonce.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a public key that X25519 refuses (a low-order point).
    #[cfg_attr(
        not(any(feature = "getrandom", feature = "hazmat")),
        allow(dead_code, reason = "no caller without them")
    )]
    pub(crate) fn wrap_with(&self, dek: &Dek, header: &Header, eph_ikm: &[u8; KEY_LEN]) -> Result<WrappedKey> {
        let pk = self.hpke()?;
        let mut rng = Seed { bytes: Zeroizing::new(*eph_ikm), used: 0, overdrawn: false };
        let mut out = Zeroizing::new([0u8; WRAPPED_LEN]);
        out[ENC_LEN..ENC_LEN + KEY_LEN].copy_from_slice(dek.expose());
        let sealed = hpke::single_shot_seal_inout_detached_with_rng::<AesGcm256, HkdfSha256, Suite>(
            &OpModeS::Base,
            &pk,
            &info(header),
            InOutBuf::from(&mut out[ENC_LEN..ENC_LEN + KEY_LEN]),
            &[],
            &mut rng,
        );
        // The seed holds exactly one ephemeral key's worth; a suite that asked for more would
        // have been handed zeros, so its output is discarded.
        let (enc, tag) = match sealed {
            Ok(v) if !rng.overdrawn => v,
            _ => return Err(Error::InvalidParameter),
        };
        out[..ENC_LEN].copy_from_slice(&enc.to_bytes());
        out[ENC_LEN + KEY_LEN..].copy_from_slice(&tag.to_bytes());
        WrappedKey::from_slice(&out[..])
    }

    /// Wraps `dek` for this recipient under `header`, with a fresh ephemeral key.
    ///
    /// # Errors
    /// [`Error::RandomnessUnavailable`]; [`Error::InvalidParameter`] for a public key X25519
    /// refuses.
    #[cfg(feature = "getrandom")]
    pub(crate) fn wrap(&self, dek: &Dek, header: &Header) -> Result<WrappedKey> {
        let ikm = Zeroizing::new(crate::random::array::<KEY_LEN>()?);
        self.wrap_with(dek, header, &ikm)
    }
}

#[cfg(feature = "hazmat")]
impl PublicKey {
    /// A new envelope for this recipient with a caller-chosen DEK, salt and ephemeral seed,
    /// for deterministic vectors only: one seed used twice seals two DEKs under one AEAD key
    /// and nonce.
    ///
    /// # Errors
    /// The parameters' errors, [`crate::envelope::Kid::new`]'s, and the wrap's.
    pub fn create_envelope_with(
        &self,
        kid: &str,
        params: crate::envelope::Params,
        dek: &Dek,
        salt: [u8; KEY_LEN],
        eph_ikm: &[u8; KEY_LEN],
    ) -> Result<(crate::envelope::Envelope, crate::kdf::ObjectKey)> {
        let header = params.header(salt)?;
        let kid = crate::envelope::Kid::new(kid)?;
        let wrapped = self.wrap_with(dek, &header, eph_ikm)?;
        Ok(crate::envelope::Envelope::assemble(header, kid, crate::wrap::WrapAlg::HpkeX25519, wrapped, dek))
    }

    /// The raw HPKE seal of `plaintext` (any length up to 64 bytes) for RFC 9180's published
    /// vectors: `enc` and `ciphertext || tag` under `info` and `aad`, ephemeral from `eph_ikm`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a refused key or a plaintext over 64 bytes.
    pub fn seal_raw(
        &self,
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        eph_ikm: &[u8],
    ) -> Result<([u8; ENC_LEN], alloc::vec::Vec<u8>)> {
        let pk = self.hpke()?;
        let mut seed = [0u8; KEY_LEN];
        if eph_ikm.len() != KEY_LEN || plaintext.len() > 64 {
            return Err(Error::InvalidParameter);
        }
        seed.copy_from_slice(eph_ikm);
        let mut rng = Seed { bytes: Zeroizing::new(seed), used: 0, overdrawn: false };
        let mut buf = alloc::vec::Vec::from(plaintext);
        let (enc, tag) = hpke::single_shot_seal_inout_detached_with_rng::<AesGcm256, HkdfSha256, Suite>(
            &OpModeS::Base,
            &pk,
            info,
            InOutBuf::from(&mut buf[..]),
            aad,
            &mut rng,
        )
        .map_err(|_| Error::InvalidParameter)?;
        if rng.overdrawn {
            return Err(Error::InvalidParameter);
        }
        buf.extend_from_slice(&tag.to_bytes());
        let mut e = [0u8; ENC_LEN];
        e.copy_from_slice(&enc.to_bytes());
        Ok((e, buf))
    }
}

impl core::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PublicKey({})", self.to_text())
    }
}

/// A recipient's X25519 private key. Wiped on drop.
#[derive(Clone, Zeroize)]
#[zeroize(drop)]
pub struct PrivateKey([u8; KEY_LEN]);

impl PrivateKey {
    /// A private key from its 32 bytes (any 32 bytes: X25519 clamps them).
    #[must_use]
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key pair RFC 9180's DeriveKeyPair makes from `ikm` (at least 32 bytes of seed).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a seed shorter than 32 bytes.
    pub fn derive(ikm: &[u8]) -> Result<Self> {
        if ikm.len() < KEY_LEN {
            return Err(Error::InvalidParameter);
        }
        let (sk, _) = Suite::derive_keypair(ikm);
        let mut bytes = sk.to_bytes();
        let mut k = Self([0u8; KEY_LEN]);
        k.0.copy_from_slice(&bytes);
        bytes.as_mut_slice().zeroize();
        Ok(k)
    }

    /// A fresh random private key.
    ///
    /// # Errors
    /// [`Error::RandomnessUnavailable`].
    #[cfg(feature = "getrandom")]
    pub fn generate() -> Result<Self> {
        let ikm = Zeroizing::new(crate::random::array::<KEY_LEN>()?);
        Self::derive(&ikm[..])
    }

    /// The matching public key.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        let mut out = [0u8; KEY_LEN];
        if let Ok(sk) = self.hpke() {
            out.copy_from_slice(&Suite::sk_to_pk(&sk).to_bytes());
        }
        PublicKey(out)
    }

    /// The raw bytes, for writing key files.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The text form: `isec-x25519-private:` and the key in base64url without padding.
    #[must_use]
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::from(PRIVATE_PREFIX));
        let mut b64 = Zeroizing::new([0u8; 43]);
        if let Ok(t) = Base64UrlUnpadded::encode(&self.0, &mut b64[..]) {
            s.push_str(t);
        }
        s
    }

    /// Parses the text form.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for another prefix, length or encoding.
    pub fn from_text(text: &str) -> Result<Self> {
        decode_text(text, PRIVATE_PREFIX).map(|k| Self(*k))
    }

    fn hpke(&self) -> Result<<Suite as Kem>::PrivateKey> {
        <Suite as Kem>::PrivateKey::from_bytes(&self.0).map_err(|_| Error::InvalidParameter)
    }

    /// Opens an HPKE-wrapped DEK with this key and the `info` of its envelope: what a service
    /// holding the private key (an HSM) computes for a caller (SPEC.md §3.5).
    ///
    /// # Errors
    /// [`Error::UnwrapFailed`] for a wrapped DEK that does not open under this key and `info`
    /// (wrong key, altered bytes, another header).
    pub fn unwrap(&self, wrapped: &[u8], info: &[u8]) -> Result<Dek> {
        if wrapped.len() != WRAPPED_LEN {
            return Err(Error::UnwrapFailed);
        }
        let sk = self.hpke().map_err(|_| Error::UnwrapFailed)?;
        let enc = <Suite as Kem>::EncappedKey::from_bytes(&wrapped[..ENC_LEN]).map_err(|_| Error::UnwrapFailed)?;
        let tag = AeadTag::<AesGcm256>::from_bytes(&wrapped[ENC_LEN + KEY_LEN..]).map_err(|_| Error::UnwrapFailed)?;
        let mut dek = Zeroizing::new([0u8; KEY_LEN]);
        dek.copy_from_slice(&wrapped[ENC_LEN..ENC_LEN + KEY_LEN]);
        hpke::single_shot_open_inout_detached::<AesGcm256, HkdfSha256, Suite>(
            &OpModeR::Base,
            &sk,
            &enc,
            info,
            InOutBuf::from(&mut dek[..]),
            &[],
            &tag,
        )
        .map_err(|_| Error::UnwrapFailed)?;
        Ok(Dek::from_bytes(*dek))
    }
}

impl core::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PrivateKey(.. public {})", self.public_key().to_text())
    }
}

/// `prefix` and exactly 32 bytes of canonical base64url.
fn decode_text(text: &str, prefix: &str) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    let body = text.trim().strip_prefix(prefix).ok_or(Error::InvalidParameter)?;
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    match Base64UrlUnpadded::decode(body, &mut out[..]) {
        Ok(b) if b.len() == KEY_LEN => Ok(out),
        _ => Err(Error::InvalidParameter),
    }
}

/// The randomness HPKE draws for one ephemeral key, drawn beforehand through core's one
/// fallible source (HPKE's own generator API cannot fail, and core never panics). Asked for
/// more than it holds, it hands out zeros and says so, and the caller discards the result.
struct Seed {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    used: usize,
    overdrawn: bool,
}

impl TryRng for Seed {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let left = &self.bytes[self.used..];
        if dst.len() > left.len() {
            self.overdrawn = true;
            dst.fill(0);
        } else {
            dst.copy_from_slice(&left[..dst.len()]);
            self.used += dst.len();
        }
        Ok(())
    }
}

impl TryCryptoRng for Seed {}
