//! Node.js binding of isec (napi-rs 3).
//!
//! This crate converts types, manages threads and maps errors; every byte of the format and
//! every decision stays in `isec-core`. Modules:
//! - [`error`]: the one error mapper (`err.code` = core's code, `err.family` its family);
//!   [`codes`]: the code list and the JS layer's own errors;
//! - [`convert`]: argument types that borrow JS bytes without copying;
//! - [`keys`]: envelopes, object keys, the keyring (with the two-phase external-key flow);
//! - [`pool`]: work for the libuv pool and its cancellation token;
//! - [`oneshot`]: whole-object and whole-part encryption and decryption (sync and async);
//! - [`stream`]: the streaming encryptor and decryptors;
//! - [`layout`]: shapes, ranges, segment tables and frame nonces;
//! - [`decisions`]: object classification, the copy decision, metadata helpers, the scan;
//! - [`reencrypt`]: re-encryption jobs; [`legacy`]: the legacy proxy's objects;
//! - [`s3`]: the S3 protocol as data: opening an object after its HEAD, a copy plan's steps.
//!
//! The public JS API is `lib/index.js`, which re-exports this addon and adds `AbortSignal`
//! handling, external key wrappers, `stream.Transform` classes and file helpers.

// napi-rs' generated glue is unsafe code expanded at our call sites; the crate's own unsafe
// blocks are in `convert`, `error`, `decisions`, `codes` and `pool`, each with its reason.
#![allow(unsafe_code)]
// #[napi] items are documented for JS (index.d.ts); they take arguments by value as napi-rs
// passes them, and their errors are JS errors whose codes SPEC.md §9 lists.
#![allow(missing_docs, clippy::needless_pass_by_value, clippy::missing_errors_doc)]

pub mod codes;
pub mod convert;
pub mod decisions;
pub mod error;
pub mod keys;
pub mod layout;
pub mod legacy;
pub mod oneshot;
pub mod pool;
pub mod reencrypt;
pub mod s3;
pub mod stream;

/// The frame cipher of this addon: AWS-LC's AES-256-GCM.
pub type C = isec_core::AwsLc;

/// A size or offset as a JS number: they are below 2^53 (SPEC.md §8), exact in a double.
pub(crate) fn f(x: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let v = x as f64;
    v
}

/// A result thrown to JS through the one error mapper.
pub(crate) trait Js<T> {
    fn js(self, env: &napi::Env) -> napi::Result<T>;
}

impl<T, E: Into<error::Failure>> Js<T> for Result<T, E> {
    fn js(self, env: &napi::Env) -> napi::Result<T> {
        self.map_err(|e| error::throw(env, e))
    }
}

/// The constructor of a class whose objects only factories make: JS `new` throws a
/// `TypeError` naming them, from the constructor's doc (`Not constructible with `new`: made
/// by …`). Written once here because napi-rs needs a constructor on each
/// class for `instanceof` and subclassing to work. The caller imports `napi::Env` (napi-rs
/// knows the argument by that name).
macro_rules! made_by {
    ($class:ident, $doc:tt) => {
        #[napi_derive::napi]
        impl $class {
            #[doc = $doc]
            #[napi(constructor)]
            pub fn new(env: Env) -> napi::Result<Self> {
                // The doc names the factories; the message names them without the backticks.
                let how = $doc.trim_start_matches("Not constructible with `new`: ").trim_end_matches('.');
                let m = format!("{} objects are {}, not new", stringify!($class), how.replace('`', ""));
                Err(crate::error::throw(&env, crate::error::Failure::Type(m)))
            }
        }
    };
}
pub(crate) use made_by;

/// Read-only properties that only read the wrapped core value (`s` below, `self.inner`).
/// napi-rs needs one `#[napi(getter)]` method per JS property; this writes each from one
/// line instead of four. The return type is spelled as plain tokens (`Option<f64>`) so that
/// napi-rs maps it to its TypeScript type as if written by hand.
///
/// Docs inside this macro and [`made_by`] (and `stream::stream_class`) are written as
/// `#[doc = "…"]`: a `///` comment passed through `macro_rules!` reaches napi-rs as a raw
/// string, whose `r"` napi-rs would copy into index.d.ts.
macro_rules! getters {
    ($class:ident { $( $(#[doc = $doc:tt])* $name:ident -> $ret:ident $(<$arg:ident>)? = |$s:ident| $body:expr; )* }) => {
        #[napi_derive::napi]
        impl $class {
            $(
                $(#[doc = $doc])*
                #[napi(getter)]
                pub fn $name(&self) -> $ret $(<$arg>)? {
                    let $s = &self.inner;
                    $body
                }
            )*
        }
    };
}
pub(crate) use getters;

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
    Limits {
        min_frame_size: 1 << l::MIN_FRAME_EXP,
        max_frame_size: 1 << l::MAX_FRAME_EXP,
        default_frame_size: 1 << l::DEFAULT_FRAME_EXP,
        frame_overhead: u32::try_from(l::FRAME_OVERHEAD).unwrap_or(28),
        max_parts: l::MAX_PARTS,
        max_plaintext_size: f(l::MAX_PLAINTEXT_SIZE),
    }
}
