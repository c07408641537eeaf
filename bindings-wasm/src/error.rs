//! The one error mapper: every error this package throws or rejects with is built by
//! [`to_js`], so it is a JS `Error` whose `code` is core's [`CoreError::code`] and whose
//! `family` is core's [`CoreError::family`] name. Arguments of the wrong JS type are core's
//! `invalid_parameter`, thrown as a `TypeError`. A failure of the browser's WebCrypto itself
//! (not a tag mismatch, which is `authentication_failed`) keeps the original as `cause`.

use isec_core::Error as CoreError;
use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};

/// Why a call failed.
#[derive(Debug, Clone)]
pub enum Failure {
    /// A core error.
    Core(CoreError),
    /// A core error with a more specific message than core's own.
    Detail(CoreError, String),
    /// `invalid_parameter` for an argument of the wrong JS type (a `TypeError`).
    Type(String),
    /// A core error caused by a JS exception (WebCrypto, an external wrapper), kept as `cause`.
    Caused(CoreError, String, JsValue),
}

impl From<CoreError> for Failure {
    fn from(e: CoreError) -> Self {
        Self::Core(e)
    }
}

impl From<Failure> for JsValue {
    fn from(f: Failure) -> Self {
        to_js(&f)
    }
}

/// Result of the binding's own code; converts to a thrown JS error at the boundary.
pub type Fallible<T> = Result<T, Failure>;

/// Builds the JS error for `failure`. This is the only place errors are made.
#[must_use]
pub fn to_js(failure: &Failure) -> JsValue {
    let (core, message, type_error, cause) = match failure {
        Failure::Core(e) => (*e, e.to_string(), false, None),
        Failure::Detail(e, m) => (*e, format!("{m} ({})", e.code()), false, None),
        Failure::Type(m) => {
            let e = CoreError::InvalidParameter;
            (e, format!("{m} ({})", e.code()), true, None)
        }
        Failure::Caused(e, m, c) => (*e, format!("{m} ({})", e.code()), false, Some(c)),
    };
    let err: js_sys::Error =
        if type_error { js_sys::TypeError::new(&message).unchecked_into() } else { js_sys::Error::new(&message) };
    // Setting data properties on a fresh Error object cannot fail.
    let _ = Reflect::set(&err, &"code".into(), &core.code().into());
    let _ = Reflect::set(&err, &"family".into(), &core.family().name().into());
    if let Some(c) = cause {
        let _ = Reflect::set(&err, &"cause".into(), c);
    }
    err.into()
}
