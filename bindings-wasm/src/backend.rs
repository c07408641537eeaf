//! Which frame cipher a context uses: the browser's WebCrypto or core's RustCrypto AES-GCM
//! compiled to WebAssembly.

use js_sys::Array;
use wasm_bindgen::prelude::*;

use crate::convert::get;
use crate::error::{Failure, Fallible};
use crate::webcrypto;

/// The frame cipher a context uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `crypto.subtle` (asynchronous).
    WebCrypto,
    /// RustCrypto AES-GCM in WebAssembly (synchronous).
    Wasm,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::WebCrypto => "webcrypto",
            Self::Wasm => "wasm",
        }
    }

    /// The backend an `options` object asks for: `options.backend` is `'auto'` (default),
    /// `'webcrypto'` or `'wasm'`.
    pub(crate) fn from_options(options: Option<&JsValue>) -> Fallible<Self> {
        let b = options.map_or(JsValue::UNDEFINED, |o| get(o, "backend"));
        let name = if b.is_undefined() || b.is_null() {
            "auto".to_string()
        } else {
            b.as_string().ok_or_else(|| Failure::Type("options.backend must be a string".into()))?
        };
        match name.as_str() {
            "auto" => Ok(if webcrypto::available() { Self::WebCrypto } else { Self::Wasm }),
            "webcrypto" if webcrypto::available() => Ok(Self::WebCrypto),
            "webcrypto" => Err(Failure::Detail(
                isec_core::Error::InvalidParameter,
                "WebCrypto (crypto.subtle) is not available here; use { backend: 'wasm' }".into(),
            )),
            "wasm" => Ok(Self::Wasm),
            other => Err(Failure::Detail(
                isec_core::Error::InvalidParameter,
                format!("unknown backend {other:?}: 'auto', 'webcrypto' or 'wasm'"),
            )),
        }
    }
}

/// The backends usable here, best first: `['webcrypto', 'wasm']` or `['wasm']`.
#[wasm_bindgen(js_name = backends, unchecked_return_type = "Array<'webcrypto' | 'wasm'>")]
#[must_use]
pub fn backends() -> Array {
    let a = Array::new();
    if webcrypto::available() {
        a.push(&Backend::WebCrypto.name().into());
    }
    a.push(&Backend::Wasm.name().into());
    a
}
