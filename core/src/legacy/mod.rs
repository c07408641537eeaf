//! Reader for the existing encrypting proxy's objects (SPEC.md §11).
//!
//! isec must open every object that proxy wrote, so that it can serve and migrate them; it
//! never writes this format. The format is weaker than isec's own (SPEC.md §11 lists why):
//! seals carry no position and no final flag, the sidecar and size metadata are
//! unauthenticated, and the KEK is an unsalted hash of a string. The reader therefore treats
//! every size it is told as a claim to check against the others and against the body's
//! length, and releases plaintext only from seals whose tag verified. Migration alone may
//! release a seal too large to buffer before its tag is checked, into a new upload that is
//! aborted if the check fails (see [`LegacyDecryptor`]'s migration mode).
//!
//! The pieces, in the order a caller uses them:
//! 1. [`LegacyMetadata`] from the object's S3 user metadata (a HEAD), which says whether a
//!    sidecar is needed and where it lives ([`LegacyMetadata::sidecar_key`]);
//! 2. [`LegacySidecar::parse`] on the sidecar object's body, when there is one;
//! 3. [`LegacyObject::new`] from both and the body's length: where every seal stands;
//! 4. [`LegacyKey::open`] with the KEK ([`crate::Kek::legacy_from_secret_string`]);
//! 5. [`decrypt`] / [`decrypt_range`] for whole buffers, or [`LegacyDecryptor`] to stream,
//!    with [`LegacyObject::plan_range`] to turn a plaintext range into a ciphertext fetch.
//!
//! Everything is sans-IO: no function here reads or writes anything but its arguments.

mod decrypt;
mod gzip;
mod metadata;
mod nonce;
mod object;
mod sidecar;

pub use decrypt::{LegacyDecryptor, LegacyKey, decrypt, decrypt_range};
pub use metadata::{LegacyFormat, LegacyMetadata};
pub use nonce::{frame_nonce, generation_for, part_nonce};
pub use object::{LegacyLayout, LegacyObject, LegacyRange, LegacySeal, LegacySegment, NonceRule, split_seals};
pub use sidecar::{InternalPart, LegacySidecar, PartRecord, SidecarPart};

/// Bytes a seal adds to its plaintext: the 12-byte nonce in front and the 16-byte tag behind.
pub const SEAL_OVERHEAD: u64 = 28;

/// Plaintext bytes in every seal of a multi-seal segment but its last. The proxy never
/// wrote larger seals in a run, which is what makes boundaries computable from sizes alone.
pub const SEAL_PLAINTEXT: u64 = 8 * 1024 * 1024;

/// The largest seal [`LegacyDecryptor::new`] and [`LegacyDecryptor::for_range`] agree to
/// buffer: one full run seal. A lone seal may be bigger (the frame-count rule allows it,
/// and the proxy wrote single objects of up to 32 MiB and parts of up to 5 GiB that way);
/// such objects need [`LegacyDecryptor::with_seal_limit`] or the one-shot [`decrypt`] to be
/// read, while migration opens them as they arrive, verifying each at its end.
pub const MAX_BUFFERED_SEAL: usize = 8 * 1024 * 1024 + 28;

/// Length of the AES-KWP-wrapped 32-byte DEK.
pub const WRAPPED_DEK_LEN: usize = 40;

/// A sidecar cap that fits the largest legitimate sidecar (10,000 parts, each with many
/// internal parts, is a few MiB of JSON) with room to spare, yet bounds what a hostile
/// sidecar can make the reader allocate.
pub const DEFAULT_SIDECAR_CAP: usize = 16 * 1024 * 1024;

/// Prefix of the proxy's internal objects (sidecars, staging areas) in the bucket.
pub const INTERNAL_PREFIX: &str = ".s3proxy-internal/";
