//! The envelope: everything needed to open an object except the KEK (SPEC.md §3).
//!
//! It travels in S3 user metadata as base64url text under [`META_ENVELOPE`], next to the key
//! id in clear under [`META_KID`] so that a bucket listing can find objects on an old key
//! without decoding anything. The binary form is fixed-layout so that `inspect` needs no key
//! and decoding has no allocation.

use base64ct::{Base64UrlUnpadded, Encoding};

use crate::error::{Error, Result};
pub use crate::header::{Header, Layout, SUITE_AES256GCM_HKDF_SHA256, VERSION};
use crate::kdf::ObjectKey;
use crate::limits::{
    DEFAULT_FRAME_EXP, HPKE_WRAPPED_LEN, KEY_LEN, MAX_ENVELOPE_LEN, MAX_FRAME_EXP, MAX_KID_LEN, MAX_PARTS,
    MAX_PLAINTEXT_SIZE, MIN_FRAME_EXP,
};
pub use crate::limits::{FIXED_LEN, HEADER_LEN};
use crate::wrap::{Dek, KeyWrap, WrapAlg, WrappedKey};

/// S3 user-metadata key of the envelope (sent as `x-amz-meta-isec`).
pub const META_ENVELOPE: &str = "isec";
/// S3 user-metadata key of the key id, in clear (sent as `x-amz-meta-isec-kid`).
pub const META_KID: &str = "isec-kid";

/// What the caller chooses when creating an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Frame size exponent (12..=23); 16 (64 KiB) by default.
    pub frame_exp: u8,
    /// Segment layout; [`Layout::Single`] by default.
    pub layout: Layout,
    /// Plaintext size, if known in advance; checked on decrypt.
    pub declared_size: Option<u64>,
}

impl Default for Params {
    fn default() -> Self {
        Self { frame_exp: DEFAULT_FRAME_EXP, layout: Layout::Single, declared_size: None }
    }
}

/// How a new object is cut into segments, as a caller asks for it (the layout itself is
/// [`Layout`], whose part size is in frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutRequest {
    /// One segment.
    Single,
    /// Parts of exactly this many plaintext bytes (a multiple of the frame size).
    Parts(u64),
    /// Parts fitted to an object of `size` plaintext bytes, starting from `preferred` bytes
    /// (see [`Params::with_parts_for`]).
    FitParts {
        /// The object's plaintext size.
        size: u64,
        /// The part size to start from.
        preferred: u64,
    },
    /// Parts of any size, described by a segment table.
    Table,
}

impl LayoutRequest {
    /// The layout from the option set every binding offers (a part size, a size to fit
    /// parts to, or the table flag), which exclude each other.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when more than one is given.
    pub fn from_options(part_size: Option<u64>, fit_parts: Option<(u64, u64)>, table: bool) -> Result<Self> {
        match (part_size, fit_parts, table) {
            (None, None, false) => Ok(Self::Single),
            (Some(p), None, false) => Ok(Self::Parts(p)),
            (None, Some((size, preferred)), false) => Ok(Self::FitParts { size, preferred }),
            (None, None, true) => Ok(Self::Table),
            _ => Err(Error::InvalidParameter),
        }
    }
}

impl Params {
    /// The one validating constructor: frames of `frame_size` bytes (default 64 KiB), the
    /// requested layout, and the declared plaintext size.
    ///
    /// # Errors
    /// As [`Params::with_frame_size`], [`Params::with_part_size`] and
    /// [`Params::with_parts_for`]; [`Error::LimitExceeded`] for a declared size the format
    /// cannot hold.
    pub fn new(layout: LayoutRequest, frame_size: Option<u64>, declared_size: Option<u64>) -> Result<Self> {
        let mut p = Self::default();
        if let Some(fs) = frame_size {
            p = p.with_frame_size(fs)?;
        }
        p = match layout {
            LayoutRequest::Single => p,
            LayoutRequest::Parts(size) => p.with_part_size(size)?,
            LayoutRequest::FitParts { size, preferred } => p.with_parts_for(size, preferred)?,
            LayoutRequest::Table => p.with_table(),
        };
        p.declared_size = declared_size;
        Ok(p)
    }

    /// The header of an object created with these parameters and `salt`.
    pub(crate) fn header(&self, salt: [u8; KEY_LEN]) -> Result<Header> {
        let header = Header { frame_exp: self.frame_exp, layout: self.layout, declared_size: self.declared_size, salt };
        header.validate()?;
        Ok(header)
    }

    /// Parameters with frames of `frame_size` bytes (a power of two, 4 KiB..=8 MiB).
    ///
    /// # Errors
    /// [`Error::InvalidFrameSize`] otherwise.
    pub fn with_frame_size(mut self, frame_size: u64) -> Result<Self> {
        if !frame_size.is_power_of_two() {
            return Err(Error::InvalidFrameSize);
        }
        let exp = u8::try_from(frame_size.trailing_zeros()).map_err(|_| Error::InvalidFrameSize)?;
        if !(MIN_FRAME_EXP..=MAX_FRAME_EXP).contains(&exp) {
            return Err(Error::InvalidFrameSize);
        }
        self.frame_exp = exp;
        Ok(self)
    }

    /// Multipart with a fixed part size in bytes, which must be a multiple of the frame size.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if it is not a positive multiple of the frame size.
    pub fn with_part_size(mut self, part_size: u64) -> Result<Self> {
        let frame = 1u64.checked_shl(u32::from(self.frame_exp)).ok_or(Error::InvalidFrameSize)?;
        if part_size == 0 || !part_size.is_multiple_of(frame) {
            return Err(Error::InvalidParameter);
        }
        let part_frames = u32::try_from(part_size / frame).map_err(|_| Error::InvalidParameter)?;
        self.layout = Layout::Parts { part_frames };
        Ok(self)
    }

    /// Multipart for an object of `plaintext_len` bytes with parts of about `preferred`
    /// bytes: the preferred size rounded up to whole frames, grown (in whole frames) until the
    /// object fits S3's 10000 parts; the chosen size is in [`Params::part_size`]. An object of
    /// one part or less is still multipart (one part).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] when the object is larger than the format allows or its parts
    /// would exceed S3's 5 GiB part limit; [`Error::InvalidParameter`] for `preferred == 0`.
    pub fn with_parts_for(self, plaintext_len: u64, preferred: u64) -> Result<Self> {
        const S3_PART_MAX: u64 = 5 << 30;
        if preferred == 0 {
            return Err(Error::InvalidParameter);
        }
        if plaintext_len > MAX_PLAINTEXT_SIZE {
            return Err(Error::LimitExceeded);
        }
        let frame = 1u64.checked_shl(u32::from(self.frame_exp)).ok_or(Error::InvalidFrameSize)?;
        let fit = plaintext_len.div_ceil(u64::from(MAX_PARTS));
        let part = preferred.max(fit).div_ceil(frame).saturating_mul(frame);
        if part > S3_PART_MAX {
            return Err(Error::LimitExceeded);
        }
        self.with_part_size(part)
    }

    /// The plaintext bytes of every part but the last, for the parts layout.
    #[must_use]
    pub fn part_size(&self) -> Option<u64> {
        match self.layout {
            Layout::Parts { part_frames } => {
                u64::from(part_frames).checked_mul(1u64.checked_shl(u32::from(self.frame_exp))?)
            }
            _ => None,
        }
    }

    /// Multipart with parts of any size, described after completion by a segment table.
    #[must_use]
    pub fn with_table(mut self) -> Self {
        self.layout = Layout::Table;
        self
    }
}

/// A key id: 1..=64 visible ASCII characters (S3 metadata values must be ASCII).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Kid {
    len: u8,
    bytes: [u8; MAX_KID_LEN],
}

impl Kid {
    /// Validates and stores a key id.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if empty, too long, or not visible ASCII.
    pub fn new(kid: &str) -> Result<Self> {
        let b = kid.as_bytes();
        if b.is_empty() || b.len() > MAX_KID_LEN || !b.iter().all(|c| (0x21..=0x7e).contains(c)) {
            return Err(Error::InvalidParameter);
        }
        let mut bytes = [0u8; MAX_KID_LEN];
        bytes[..b.len()].copy_from_slice(b);
        Ok(Self { len: u8::try_from(b.len()).map_err(|_| Error::InvalidParameter)?, bytes })
    }

    /// The key id text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only visible ASCII is ever stored, which is valid UTF-8.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl core::fmt::Debug for Kid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Kid({:?})", self.as_str())
    }
}

/// A decoded envelope. Holds no secret: it can be logged and inspected without a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    header: Header,
    commitment: [u8; KEY_LEN],
    kid: Kid,
    wrap_alg: WrapAlg,
    wrapped: WrappedKey,
}

/// The key-free view of an envelope that `inspect` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnvelopeInfo<'a> {
    /// Format version.
    pub version: u8,
    /// Cipher suite id.
    pub suite: u8,
    /// Key id.
    pub kid: &'a str,
    /// Wrap algorithm.
    pub wrap_alg: WrapAlg,
    /// Plaintext bytes per frame.
    pub frame_size: u64,
    /// Segment layout.
    pub layout: Layout,
    /// Plaintext bytes per part, for [`Layout::Parts`].
    pub part_size: Option<u64>,
    /// Declared plaintext size, if any.
    pub declared_size: Option<u64>,
    /// Length of the binary envelope.
    pub envelope_len: usize,
}

impl Envelope {
    /// Creates an envelope with a fresh random DEK and salt, wrapping the DEK with `wrapper`.
    /// Returns the envelope and the key that encrypts the object.
    ///
    /// # Errors
    /// Parameter errors from [`Header::validate`], [`Kid::new`], the wrapper's errors, and
    /// [`Error::RandomnessUnavailable`].
    #[cfg(feature = "getrandom")]
    pub fn create(wrapper: &dyn KeyWrap, kid: &str, params: Params) -> Result<(Self, ObjectKey)> {
        Self::create_with(wrapper, kid, params, &Dek::generate()?, crate::random::array()?)
    }
}

/// [`Envelope::create_with`], public under `hazmat` (deterministic vectors need to choose the
/// DEK and salt) and otherwise private to [`Envelope::create`]: one body either way.
macro_rules! envelope_create_with {
    ($vis:vis) => {
        impl Envelope {
            /// [`Envelope::create`] with a caller-chosen DEK and salt, for deterministic vectors.
            ///
            /// # Errors
            /// As [`Envelope::create`].
            #[cfg_attr(
                not(any(feature = "getrandom", feature = "hazmat")),
                allow(dead_code, reason = "only the creating constructors use it")
            )]
            $vis fn create_with(
                wrapper: &dyn KeyWrap,
                kid: &str,
                params: Params,
                dek: &Dek,
                salt: [u8; KEY_LEN],
            ) -> Result<(Self, ObjectKey)> {
                let header = params.header(salt)?;
                let kid = Kid::new(kid)?;
                let wrapped = wrapper.wrap(dek)?;
                Ok(Self::assemble(header, kid, wrapper.alg(), wrapped, dek))
            }
        }
    };
}

#[cfg(feature = "hazmat")]
envelope_create_with!(pub);
#[cfg(not(feature = "hazmat"))]
envelope_create_with!(pub(crate));

impl Envelope {
    /// The envelope of a new object from its parts: the DEK's commitment and key are derived
    /// here, so a wrapped key can only ever be paired with the DEK it wraps by the caller
    /// that holds both (the keyring's create task).
    pub(crate) fn assemble(
        header: Header,
        kid: Kid,
        wrap_alg: WrapAlg,
        wrapped: WrappedKey,
        dek: &Dek,
    ) -> (Self, ObjectKey) {
        let (key, commitment) = ObjectKey::derive(dek, &header);
        (Self { header, commitment, kid, wrap_alg, wrapped }, key)
    }

    /// The object key from an unwrapped DEK, checked against the commitment.
    pub(crate) fn open_dek(&self, dek: &Dek) -> Result<ObjectKey> {
        ObjectKey::derive_checked(dek, &self.header, &self.commitment)
    }

    /// This object's envelope with another wrapping of its (already checked) DEK.
    pub(crate) fn rewrapped(&self, kid: Kid, wrap_alg: WrapAlg, wrapped: WrappedKey) -> Self {
        Self { header: self.header, commitment: self.commitment, kid, wrap_alg, wrapped }
    }

    /// Whether `other` commits to the same DEK and header (the same object, however wrapped).
    #[must_use]
    pub fn same_dek_as(&self, other: &Self) -> bool {
        self.header == other.header && self.commitment == other.commitment
    }

    /// The wrapped DEK, for the keyring's requests to an external wrapper.
    #[cfg(feature = "alloc")]
    pub(crate) fn wrapped(&self) -> &[u8] {
        self.wrapped.as_bytes()
    }

    /// Unwraps the DEK with `wrapper`, checks the commitment, and returns the object key.
    ///
    /// # Errors
    /// [`Error::UnsupportedSuite`] if `wrapper` writes another wrap algorithm,
    /// [`Error::UnwrapFailed`] for a wrong KEK, [`Error::CommitmentMismatch`] if the DEK does
    /// not belong to this header.
    pub fn open(&self, wrapper: &dyn KeyWrap) -> Result<ObjectKey> {
        self.open_dek(&self.unwrap_dek(wrapper)?)
    }

    pub(crate) fn unwrap_dek(&self, wrapper: &dyn KeyWrap) -> Result<Dek> {
        if wrapper.alg() != self.wrap_alg {
            return Err(Error::UnsupportedSuite);
        }
        wrapper.unwrap(self.wrapped.as_bytes())
    }

    /// A new envelope for the same object under another key: the DEK is unwrapped with `old`,
    /// checked against the commitment, and wrapped with `new`. The object body is untouched.
    ///
    /// # Errors
    /// As [`Envelope::open`], plus [`Kid::new`] and `new`'s wrap errors.
    pub fn rewrap(&self, old: &dyn KeyWrap, new: &dyn KeyWrap, new_kid: &str) -> Result<Self> {
        let dek = self.unwrap_dek(old)?;
        self.open_dek(&dek)?;
        let kid = Kid::new(new_kid)?;
        let wrapped = new.wrap(&dek)?;
        Ok(self.rewrapped(kid, new.alg(), wrapped))
    }

    /// The key-bound parameters.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        self.kid.as_str()
    }

    /// The wrap algorithm.
    #[must_use]
    pub fn wrap_alg(&self) -> WrapAlg {
        self.wrap_alg
    }

    /// The key-free summary.
    #[must_use]
    pub fn info(&self) -> EnvelopeInfo<'_> {
        EnvelopeInfo {
            version: VERSION,
            suite: SUITE_AES256GCM_HKDF_SHA256,
            kid: self.kid.as_str(),
            wrap_alg: self.wrap_alg,
            frame_size: self.header.frame_size(),
            layout: self.header.layout,
            part_size: self.header.part_size(),
            declared_size: self.header.declared_size,
            envelope_len: self.encoded_len(),
        }
    }

    /// Length of the binary form.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        FIXED_LEN + 1 + usize::from(self.kid.len) + 2 + self.wrapped.as_bytes().len()
    }

    /// Writes the binary form into `out`, returning its length (SPEC.md §3.1).
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `out` is shorter than [`Envelope::encoded_len`].
    pub fn encode_into(&self, out: &mut [u8]) -> Result<usize> {
        let len = self.encoded_len();
        let out = out.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        out[..HEADER_LEN].copy_from_slice(&self.header.to_bytes());
        out[HEADER_LEN..FIXED_LEN].copy_from_slice(&self.commitment);
        let mut at = FIXED_LEN;
        let kid = &self.kid.bytes[..usize::from(self.kid.len)];
        out[at] = self.kid.len;
        out[at + 1..at + 1 + kid.len()].copy_from_slice(kid);
        at += 1 + kid.len();
        let wrapped = self.wrapped.as_bytes();
        out[at] = self.wrap_alg as u8;
        // WrappedKey caps its length at 200, so it fits a byte.
        out[at + 1] = u8::try_from(wrapped.len()).map_err(|_| Error::LimitExceeded)?;
        out[at + 2..at + 2 + wrapped.len()].copy_from_slice(wrapped);
        Ok(len)
    }

    /// Parses the binary form. Key-free; checks structure and parameter ranges only.
    ///
    /// # Errors
    /// [`Error::MalformedEnvelope`] for bad structure or trailing bytes,
    /// [`Error::UnsupportedVersion`] / [`Error::UnsupportedSuite`] for unknown identifiers,
    /// [`Error::InvalidFrameSize`] and [`Error::LimitExceeded`] for out-of-range parameters.
    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.first().is_some_and(|v| *v != VERSION) {
            return Err(Error::UnsupportedVersion);
        }
        if b.len() > MAX_ENVELOPE_LEN {
            return Err(Error::MalformedEnvelope);
        }
        let header_bytes: &[u8; HEADER_LEN] =
            b.get(..HEADER_LEN).and_then(|h| h.try_into().ok()).ok_or(Error::MalformedEnvelope)?;
        let header = Header::from_bytes(header_bytes)?;
        let mut commitment = [0u8; KEY_LEN];
        commitment.copy_from_slice(b.get(HEADER_LEN..FIXED_LEN).ok_or(Error::MalformedEnvelope)?);
        let mut at = FIXED_LEN;
        let kid_len = usize::from(*b.get(at).ok_or(Error::MalformedEnvelope)?);
        let kid_bytes = b.get(at + 1..at + 1 + kid_len).ok_or(Error::MalformedEnvelope)?;
        let kid_str = core::str::from_utf8(kid_bytes).map_err(|_| Error::MalformedEnvelope)?;
        let kid = Kid::new(kid_str).map_err(|_| Error::MalformedEnvelope)?;
        at += 1 + kid_len;
        let wrap_alg = WrapAlg::from_byte(*b.get(at).ok_or(Error::MalformedEnvelope)?)?;
        let wrapped_len = usize::from(*b.get(at + 1).ok_or(Error::MalformedEnvelope)?);
        let wrapped_bytes = b.get(at + 2..at + 2 + wrapped_len).ok_or(Error::MalformedEnvelope)?;
        if at + 2 + wrapped_len != b.len() {
            return Err(Error::MalformedEnvelope);
        }
        let exact = match wrap_alg {
            WrapAlg::AesKwp => Some(KEY_LEN + 8),
            WrapAlg::HpkeX25519 => Some(HPKE_WRAPPED_LEN),
            WrapAlg::External => None,
        };
        if exact.is_some_and(|n| n != wrapped_len) {
            return Err(Error::MalformedEnvelope);
        }
        let wrapped = WrappedKey::from_slice(wrapped_bytes).map_err(|_| Error::MalformedEnvelope)?;
        Ok(Self { header, commitment, kid, wrap_alg, wrapped })
    }

    /// Writes the metadata text (base64url, no padding) into `out`, returning it.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `out` cannot hold it (464 bytes always suffice).
    pub fn encode_text<'o>(&self, out: &'o mut [u8]) -> Result<&'o str> {
        let mut bin = [0u8; MAX_ENVELOPE_LEN];
        let n = self.encode_into(&mut bin)?;
        Base64UrlUnpadded::encode(&bin[..n], out).map_err(|_| Error::BufferTooSmall)
    }

    /// Parses the metadata text form.
    ///
    /// # Errors
    /// [`Error::MalformedEnvelope`] for invalid or non-canonical base64url, else as
    /// [`Envelope::decode`].
    pub fn decode_text(text: &str) -> Result<Self> {
        let mut bin = [0u8; MAX_ENVELOPE_LEN];
        if text.len() > MAX_ENVELOPE_LEN.div_ceil(3) * 4 {
            return Err(Error::MalformedEnvelope);
        }
        let b = Base64UrlUnpadded::decode(text, &mut bin).map_err(|_| Error::MalformedEnvelope)?;
        Self::decode(b)
    }

    /// The binary form as a vector.
    #[cfg(feature = "alloc")]
    #[must_use]
    pub fn to_bytes(&self) -> alloc::vec::Vec<u8> {
        let mut v = alloc::vec![0u8; self.encoded_len()];
        let _ = self.encode_into(&mut v);
        v
    }

    /// The metadata text as a string.
    #[cfg(feature = "alloc")]
    #[must_use]
    pub fn to_text(&self) -> alloc::string::String {
        Base64UrlUnpadded::encode_string(&self.to_bytes())
    }
}
