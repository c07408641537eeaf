//! # isec-wasm
//!
//! The browser binding of isec: wasm-bindgen classes and functions around `isec-core`.
//! This crate converts types, drives the browser's WebCrypto, and maps errors; it holds no
//! format logic and no spec constants (those come from core).
//!
//! Two frame-cipher backends, chosen per context (`{ backend: 'webcrypto' | 'wasm' }`,
//! default: WebCrypto when `crypto.subtle` exists):
//! - `webcrypto`: core writes each frame unsealed (`cipher::Unsealed`) and the binding seals
//!   it with `crypto.subtle.encrypt` under the segment key, imported once per segment as a
//!   non-extractable `CryptoKey`; decryption runs `Decryptor::external_segment`,
//!   `crypto.subtle.decrypt` and `external_accept` / `external_reject`, so every check of
//!   SPEC.md §5.3 stays in core (SPEC.md §5.4). Several frames are in flight at once.
//! - `wasm`: core's RustCrypto AES-GCM compiled to WebAssembly, synchronous.
//!
//! Both produce the same bytes and the same error codes (test/ checks it on the corpus).
//!
//! Modules: [`error`] (the one error mapper), [`convert`] (JS values), [`backend`],
//! [`keys`] (envelopes, object keys, the keyring), [`layout`] (shapes, range plans, segment
//! tables), [`encrypt`] and [`decrypt`] (the streaming classes, over [`context`]),
//! [`window`] (their WebCrypto side, over [`webcrypto`]), [`oneshot`], [`ops`] (copy
//! decision, classification, nonces) and [`legacy`] (the previous proxy's objects).

/// Read-only JS properties of a class wrapping a core value in `inner`, one a line:
/// `jsName rust_name -> Type = |inner| value;` after its doc comment.
macro_rules! getters {
    ($class:ident { $($(#[$doc:meta])* $js:ident $name:ident -> $ty:ty = |$i:ident| $e:expr;)* }) => {
        #[wasm_bindgen(js_class = $class)]
        impl $class {$(
            $(#[$doc])*
            #[wasm_bindgen(getter, js_name = $js)]
            #[must_use]
            pub fn $name(&self) -> $ty {
                let $i = &self.inner;
                $e
            }
        )*}
    };
}

mod backend;
mod context;
mod convert;
mod decrypt;
mod encrypt;
mod error;
mod keys;
mod layout;
mod legacy;
mod oneshot;
mod ops;
mod webcrypto;
mod window;

use isec_core::limits::{
    DEFAULT_FRAME_EXP, FRAME_OVERHEAD, MAX_FRAME_EXP, MAX_PARTS, MAX_PLAINTEXT_SIZE, MIN_FRAME_EXP, frame_size,
};
use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;

pub(crate) use convert::{get, num, opt_bool, opt_u64, set, to_u64};
pub use error::{Failure, Fallible, to_js};

/// Every error code core defines, with its family (SPEC.md §9).
#[wasm_bindgen(js_name = errorCodes, unchecked_return_type = "Array<{ code: string, family: string }>")]
#[must_use]
pub fn error_codes() -> Array {
    isec_core::Error::ALL
        .iter()
        .map(|e| {
            let o = Object::new();
            set(&o, "code", e.code());
            set(&o, "family", e.family().name());
            JsValue::from(o)
        })
        .collect()
}

/// The error this package throws for `code` (the same mapper as every other error), for
/// the JS layer's own failures (an external wrapper that rejected, a bad argument).
#[wasm_bindgen(js_name = isecError, unchecked_return_type = "IsecError")]
#[must_use]
pub fn isec_error(code: &str, message: Option<String>) -> JsValue {
    let e = isec_core::Error::from_code(code).unwrap_or(isec_core::Error::InvalidParameter);
    match message {
        Some(m) => to_js(&Failure::Detail(e, m)),
        None => to_js(&Failure::Core(e)),
    }
}

/// The format's limits (SPEC.md §8), in bytes.
#[wasm_bindgen(
    js_name = limits,
    unchecked_return_type = "{ minFrameSize: number, maxFrameSize: number, defaultFrameSize: number, frameOverhead: number, maxParts: number, maxPlaintextSize: number }"
)]
#[must_use]
pub fn limits() -> Object {
    let o = Object::new();
    set(&o, "minFrameSize", num(frame_size(MIN_FRAME_EXP) as u64));
    set(&o, "maxFrameSize", num(frame_size(MAX_FRAME_EXP) as u64));
    set(&o, "defaultFrameSize", num(frame_size(DEFAULT_FRAME_EXP) as u64));
    set(&o, "frameOverhead", num(FRAME_OVERHEAD as u64));
    set(&o, "maxParts", MAX_PARTS);
    set(&o, "maxPlaintextSize", num(MAX_PLAINTEXT_SIZE));
    o
}

/// Bytes of WebAssembly linear memory in use by this module (grows, never shrinks): for
/// checking that streams run in bounded memory.
#[wasm_bindgen(js_name = wasmMemoryBytes)]
#[must_use]
pub fn wasm_memory_bytes() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        num(core::arch::wasm32::memory_size(0) as u64 * 65536)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0.0
    }
}

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = include_str!("types.d.ts");
