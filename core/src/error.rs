//! The one error type of isec.
//!
//! Every binding maps this enum to its own typed errors through [`Error::code`], so the codes
//! are a stable public contract (SPEC.md §9) and the vector corpus asserts on them.
//! Authentication failures are deliberately collapsed into [`Error::AuthenticationFailed`]:
//! telling a forger *which* check failed only helps the forger. Structural failures (wrong
//! lengths, out-of-order frames) are distinct because they are visible without any key.

use core::fmt;

/// Everything that can go wrong in isec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The envelope bytes or their metadata text are not a well-formed isec envelope.
    MalformedEnvelope,
    /// The envelope names a format version this build does not read.
    UnsupportedVersion,
    /// The envelope names a cipher suite or wrap algorithm this build does not know.
    UnsupportedSuite,
    /// A frame size outside 4 KiB..=8 MiB or not a power of two.
    InvalidFrameSize,
    /// An argument is outside what the API or the layout allows (part number, part size...).
    InvalidParameter,
    /// The caller's output buffer is smaller than the documented bound.
    BufferTooSmall,
    /// No key with the envelope's key id is in the keyring.
    UnknownKid,
    /// The key exists but is disabled: it neither encrypts nor decrypts.
    KeyDisabled,
    /// The key id names a key of another kind than the object needs: a previous-proxy
    /// secret named by an isec envelope (necessarily a forgery: such keys never wrap), or an
    /// isec KEK named by a previous-proxy object.
    WrongKeyKind,
    /// The key may decrypt but not create envelopes (decrypt-only, or not the active key).
    KeyNotActive,
    /// The key id names a public-key recipient whose private key this keyring does not hold:
    /// it creates envelopes but never opens one.
    PublicKeyOnly,
    /// The object's format version is below the keyring's minimum.
    VersionRefused,
    /// The key-encryption key could not unwrap the DEK (wrong KEK or damaged wrapped DEK).
    UnwrapFailed,
    /// The DEK does not match the envelope's commitment: the envelope or key was altered.
    CommitmentMismatch,
    /// A frame, segment table or checkpoint failed authentication.
    AuthenticationFailed,
    /// A frame's embedded position (index or segment prefix) is not where it stands.
    FrameOutOfOrder,
    /// A frame's final-segment / final-object flags contradict its position.
    BadFrameFlags,
    /// The ciphertext ends before its final frame.
    Truncated,
    /// Bytes follow the final frame.
    TrailingData,
    /// A frame's length is impossible for its position.
    BadFrameLength,
    /// A segment table is malformed or does not fit the object.
    MalformedSegmentTable,
    /// A size, count or counter exceeds the format's limits (SPEC.md §8).
    LimitExceeded,
    /// An external key wrapper (KMS) reported a failure.
    ExternalWrapperFailed,
    /// A re-encryption checkpoint is malformed or belongs to another job.
    MalformedCheckpoint,
    /// Metadata of the legacy proxy format is malformed or inconsistent.
    MalformedLegacy,
    /// A legacy sidecar would inflate beyond the size cap.
    SidecarTooLarge,
    /// The randomness source failed.
    RandomnessUnavailable,
    /// The operation is not valid in the context's current state (e.g. after an error).
    InvalidState,
    /// The object carries no encryption metadata of any kind, and the caller needs it encrypted.
    NotEncrypted,
    /// A key id is already in the keyring.
    DuplicateKid,
    /// Detached metadata (an envelope given apart from the object) does not belong to the
    /// object: its declared size or its frame arithmetic rules out the object's length, or
    /// the object carries another envelope of its own.
    MetadataMismatch,
    /// A byte range starts at or past the end of the object (HTTP 416).
    RangeNotSatisfiable,
}

impl Error {
    /// The stable snake_case code of this error, shared by every binding and the corpus.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::MalformedEnvelope => "malformed_envelope",
            Self::UnsupportedVersion => "unsupported_version",
            Self::UnsupportedSuite => "unsupported_suite",
            Self::InvalidFrameSize => "invalid_frame_size",
            Self::InvalidParameter => "invalid_parameter",
            Self::BufferTooSmall => "buffer_too_small",
            Self::UnknownKid => "unknown_kid",
            Self::KeyDisabled => "key_disabled",
            Self::WrongKeyKind => "wrong_key_kind",
            Self::KeyNotActive => "key_not_active",
            Self::PublicKeyOnly => "public_key_only",
            Self::VersionRefused => "version_refused",
            Self::UnwrapFailed => "unwrap_failed",
            Self::CommitmentMismatch => "commitment_mismatch",
            Self::AuthenticationFailed => "authentication_failed",
            Self::FrameOutOfOrder => "frame_out_of_order",
            Self::BadFrameFlags => "bad_frame_flags",
            Self::Truncated => "truncated",
            Self::TrailingData => "trailing_data",
            Self::BadFrameLength => "bad_frame_length",
            Self::MalformedSegmentTable => "malformed_segment_table",
            Self::LimitExceeded => "limit_exceeded",
            Self::ExternalWrapperFailed => "external_wrapper_failed",
            Self::MalformedCheckpoint => "malformed_checkpoint",
            Self::MalformedLegacy => "malformed_legacy",
            Self::SidecarTooLarge => "sidecar_too_large",
            Self::RandomnessUnavailable => "randomness_unavailable",
            Self::InvalidState => "invalid_state",
            Self::NotEncrypted => "not_encrypted",
            Self::DuplicateKid => "duplicate_kid",
            Self::MetadataMismatch => "metadata_mismatch",
            Self::RangeNotSatisfiable => "range_not_satisfiable",
        }
    }

    /// The error family, for bindings that expose one exception class per family.
    #[must_use]
    pub const fn family(&self) -> ErrorFamily {
        match self {
            Self::AuthenticationFailed | Self::CommitmentMismatch | Self::UnwrapFailed => ErrorFamily::Authentication,
            Self::UnknownKid
            | Self::KeyDisabled
            | Self::WrongKeyKind
            | Self::KeyNotActive
            | Self::PublicKeyOnly
            | Self::VersionRefused
            | Self::ExternalWrapperFailed => ErrorFamily::Key,
            Self::FrameOutOfOrder
            | Self::BadFrameFlags
            | Self::Truncated
            | Self::TrailingData
            | Self::BadFrameLength
            | Self::MalformedSegmentTable => ErrorFamily::Stream,
            Self::MalformedEnvelope
            | Self::UnsupportedVersion
            | Self::UnsupportedSuite
            | Self::InvalidFrameSize
            | Self::MalformedCheckpoint
            | Self::MalformedLegacy
            | Self::SidecarTooLarge
            | Self::NotEncrypted
            | Self::MetadataMismatch => ErrorFamily::Format,
            Self::InvalidParameter
            | Self::DuplicateKid
            | Self::RangeNotSatisfiable
            | Self::BufferTooSmall
            | Self::LimitExceeded
            | Self::RandomnessUnavailable
            | Self::InvalidState => ErrorFamily::Usage,
        }
    }

    /// Every variant, for bindings that build their error tables and for exhaustive tests.
    pub const ALL: [Error; 32] = [
        Self::MalformedEnvelope,
        Self::UnsupportedVersion,
        Self::UnsupportedSuite,
        Self::InvalidFrameSize,
        Self::InvalidParameter,
        Self::BufferTooSmall,
        Self::UnknownKid,
        Self::KeyDisabled,
        Self::WrongKeyKind,
        Self::KeyNotActive,
        Self::PublicKeyOnly,
        Self::VersionRefused,
        Self::UnwrapFailed,
        Self::CommitmentMismatch,
        Self::AuthenticationFailed,
        Self::FrameOutOfOrder,
        Self::BadFrameFlags,
        Self::Truncated,
        Self::TrailingData,
        Self::BadFrameLength,
        Self::MalformedSegmentTable,
        Self::LimitExceeded,
        Self::ExternalWrapperFailed,
        Self::MalformedCheckpoint,
        Self::MalformedLegacy,
        Self::SidecarTooLarge,
        Self::RandomnessUnavailable,
        Self::InvalidState,
        Self::NotEncrypted,
        Self::DuplicateKid,
        Self::MetadataMismatch,
        Self::RangeNotSatisfiable,
    ];

    /// Looks a variant up by its code (for corpus harnesses in other languages' tooling).
    #[must_use]
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.code() == code)
    }
}

/// Coarse grouping of errors: what the caller can do about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorFamily {
    /// Cryptographic verification failed: the data or key is wrong or was tampered with.
    Authentication,
    /// The keyring refuses or lacks the key.
    Key,
    /// The frame sequence is structurally wrong (order, truncation, extension).
    Stream,
    /// Bytes that should be isec (or legacy) format are not.
    Format,
    /// The caller used the API outside its contract.
    Usage,
}

impl ErrorFamily {
    /// Stable snake_case name of the family.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Authentication => "authentication",
            Self::Key => "key",
            Self::Stream => "stream",
            Self::Format => "format",
            Self::Usage => "usage",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::MalformedEnvelope => "malformed isec envelope",
            Self::UnsupportedVersion => "unsupported isec format version",
            Self::UnsupportedSuite => "unsupported cipher suite or wrap algorithm",
            Self::InvalidFrameSize => "frame size must be a power of two from 4 KiB to 8 MiB",
            Self::InvalidParameter => "parameter outside the allowed range",
            Self::BufferTooSmall => "output buffer too small",
            Self::UnknownKid => "no key with this key id",
            Self::KeyDisabled => "key is disabled",
            Self::WrongKeyKind => {
                "key id names a key of another kind (previous-proxy secret, isec KEK or public-key recipient)"
            }
            Self::KeyNotActive => "key is not the active key for encryption",
            Self::PublicKeyOnly => "only the public key of this recipient is here: it encrypts, never decrypts",
            Self::VersionRefused => "object format version is below the keyring minimum",
            Self::UnwrapFailed => "could not unwrap the data key",
            Self::CommitmentMismatch => "data key does not match the envelope commitment",
            Self::AuthenticationFailed => "authentication failed",
            Self::FrameOutOfOrder => "frame out of order",
            Self::BadFrameFlags => "frame flags contradict the frame position",
            Self::Truncated => "ciphertext truncated",
            Self::TrailingData => "data after the final frame",
            Self::BadFrameLength => "frame length impossible for its position",
            Self::MalformedSegmentTable => "malformed segment table",
            Self::LimitExceeded => "format limit exceeded",
            Self::ExternalWrapperFailed => "external key wrapper failed",
            Self::MalformedCheckpoint => "malformed re-encryption checkpoint",
            Self::MalformedLegacy => "malformed legacy proxy object or metadata",
            Self::SidecarTooLarge => "legacy sidecar exceeds the size cap",
            Self::RandomnessUnavailable => "randomness source unavailable",
            Self::InvalidState => "operation invalid in the current state",
            Self::NotEncrypted => "object is not encrypted",
            Self::DuplicateKid => "a key with this key id is already in the keyring",
            Self::MetadataMismatch => "this metadata does not belong to this object",
            Self::RangeNotSatisfiable => "byte range starts at or past the end of the object",
        };
        write!(f, "{text} ({})", self.code())
    }
}

impl core::error::Error for Error {}

/// Result alias used throughout isec.
pub type Result<T, E = Error> = core::result::Result<T, E>;
