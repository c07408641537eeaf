//! DEK rotation and legacy migration: re-encryption as a resumable, throttled state machine
//! (SPEC.md §13).
//!
//! Like everything in core it does no I/O and reads no clock. The caller fetches source
//! ciphertext from [`Reencryption::source_offset`], feeds it to [`Reencryption::update`] with
//! the current time, and stores what comes out at [`Reencryption::target_offset`]. The new
//! object is written in the parts layout, so that it maps onto an S3 multipart upload and,
//! above all, so that a resumed job never encrypts anything under a nonce it used before:
//! [`Reencryption::checkpoint`] records whole parts only, and the part being written when the
//! job stopped is encrypted again from its start under a fresh nonce prefix. (Resuming a
//! single segment mid-way would need the old prefix again, which is safe only if the source
//! bytes at every offset are fixed; the previous proxy's objects do not guarantee that.)
//!
//! The job is split by what each piece holds: `source` the objects a job reads from (isec's
//! own and the legacy proxy's: [`Source`]), `job` the state machine itself, `rate` its
//! token-bucket throttle ([`RateLimiter`]), and `checkpoint` the authenticated record a
//! stopped job resumes from ([`Checkpoint`]).

mod checkpoint;
mod job;
mod rate;
mod source;

pub use checkpoint::{Checkpoint, UploadCheckpoint};
pub use job::{DEFAULT_PART_SIZE, Progress, Reencryption, Step, target_params};
pub use rate::RateLimiter;
pub use source::{IsecSource, LegacySource, Source, SourceDecryptor, SourceFacts};
