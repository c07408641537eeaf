//! Node.js binding of isec (napi-rs 3).
//!
//! This crate converts types, manages threads and maps errors; every byte of the format and
//! every decision stays in `isec-core`. Modules:
//! - [`error`]: the one error mapper (`err.code` = core's code, `err.family` its family);
//! - [`convert`]: argument types that borrow JS bytes without copying;
//! - [`keys`]: envelopes, object keys, the keyring (with the two-phase external-key flow);
//! - [`crypto`]: one-shot (sync and libuv-pool async) and streaming encryption, shapes,
//!   ranges, segment tables;
//! - [`ops`]: copy decision, bucket scan, re-encryption jobs, the legacy reader, nonces;
//! - [`s3`]: the S3 protocol as data: opening an object after its HEAD, a copy plan's steps.
//!
//! The public JS API is `lib/index.js`, which re-exports this addon and adds `AbortSignal`
//! handling, external key wrappers, `stream.Transform` classes and file helpers.

// napi-rs' generated glue is unsafe code expanded at our call sites; the crate's own unsafe
// blocks are in `convert`, `error` and `ops`, each with its reason.
#![allow(unsafe_code)]
// #[napi] items are documented for JS (index.d.ts); they take arguments by value as napi-rs
// passes them, and their errors are JS errors whose codes SPEC.md §9 lists.
#![allow(missing_docs, clippy::needless_pass_by_value, clippy::missing_errors_doc)]

pub mod convert;
pub mod crypto;
pub mod error;
pub mod keys;
pub mod ops;
pub mod s3;
pub mod stream;

/// Frame size limits and defaults, in bytes.
#[napi_derive::napi(object, object_from_js = false)]
pub struct Limits {
    pub min_frame_size: u32,
    pub max_frame_size: u32,
    pub default_frame_size: u32,
    pub frame_overhead: u32,
    pub max_parts: u32,
    pub max_plaintext_size: f64,
}

/// The format's limits (SPEC.md §8).
#[napi_derive::napi]
pub fn limits() -> Limits {
    use isec_core::limits as l;
    #[allow(clippy::cast_precision_loss)]
    let max_pt = l::MAX_PLAINTEXT_SIZE as f64;
    Limits {
        min_frame_size: 1 << l::MIN_FRAME_EXP,
        max_frame_size: 1 << l::MAX_FRAME_EXP,
        default_frame_size: 1 << l::DEFAULT_FRAME_EXP,
        frame_overhead: u32::try_from(l::FRAME_OVERHEAD).unwrap_or(28),
        max_parts: l::MAX_PARTS,
        max_plaintext_size: max_pt,
    }
}
