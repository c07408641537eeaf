//! The one error mapper: every error this addon throws or rejects with is built by
//! [`js_error`], so it is a JS `Error` whose `code` is core's [`CoreError::code`] and whose
//! `family` is core's [`CoreError::family`] name. Argument-type failures are core's
//! `invalid_parameter`, thrown as a `TypeError`; a cancelled async call is an `AbortError`
//! (`code` `ABORT_ERR`, family `usage`), as Node's own cancellable APIs do.

use isec_core::Error as CoreError;
use napi::JsValue;
use napi::bindgen_prelude::Unknown;
use napi::{Env, sys};

/// Why a call failed.
#[derive(Debug, Clone)]
pub enum Failure {
    /// A core error.
    Core(CoreError),
    /// A core error caused by an argument of the wrong JS type (thrown as a `TypeError`).
    Type(String),
    /// A core error with a more specific message than core's own.
    Detail(CoreError, String),
    /// The caller's `AbortSignal` fired.
    Aborted,
}

impl From<CoreError> for Failure {
    fn from(e: CoreError) -> Self {
        Self::Core(e)
    }
}

/// Result of the binding's own code, before it meets JS.
pub type Fallible<T> = std::result::Result<T, Failure>;

/// Builds the JS error for `failure`. This is the only place errors are made.
pub fn js_error(env: sys::napi_env, failure: &Failure) -> napi::Error {
    let (code, family, message, type_error, name) = match failure {
        Failure::Core(e) => (e.code(), e.family().name(), e.to_string(), false, None),
        Failure::Detail(e, m) => (e.code(), e.family().name(), format!("{m} ({})", e.code()), false, None),
        Failure::Type(m) => {
            let e = CoreError::InvalidParameter;
            (e.code(), e.family().name(), format!("{m} ({})", e.code()), true, None)
        }
        Failure::Aborted => ("ABORT_ERR", "usage", "The operation was aborted".to_string(), false, Some("AbortError")),
    };
    match build(env, code, family, &message, type_error, name) {
        Ok(e) => e,
        // Only reachable when the JS engine cannot allocate a string: fall back to napi's own
        // error, which still carries the code.
        Err(_) => napi::Error::new(napi::Status::GenericFailure, format!("{message} [{code}]")),
    }
}

/// Maps a core error for `env` (sync calls).
pub fn throw(env: &Env, e: impl Into<Failure>) -> napi::Error {
    js_error(env.raw(), &e.into())
}

#[allow(unsafe_code)] // Node-API calls on the calling thread's env, which napi-rs hands us.
fn build(
    env: sys::napi_env,
    code: &str,
    family: &str,
    message: &str,
    type_error: bool,
    name: Option<&str>,
) -> napi::Result<napi::Error> {
    let e = Env::from_raw(env);
    let code_js = e.create_string(code)?;
    let msg_js = e.create_string(message)?;
    let family_js = e.create_string(family)?;
    let mut err = std::ptr::null_mut();
    // SAFETY: `env` is the env of the current callback; all values were created on it.
    let status = unsafe {
        if type_error {
            sys::napi_create_type_error(env, code_js.raw(), msg_js.raw(), &mut err)
        } else {
            sys::napi_create_error(env, code_js.raw(), msg_js.raw(), &mut err)
        }
    };
    if status != sys::Status::napi_ok {
        return Err(napi::Error::from_status(napi::Status::GenericFailure));
    }
    // SAFETY: as above; property names are NUL-terminated literals.
    unsafe {
        sys::napi_set_named_property(env, err, c"family".as_ptr(), family_js.raw());
        if let Some(n) = name {
            let n = e.create_string(n)?;
            sys::napi_set_named_property(env, err, c"name".as_ptr(), n.raw());
        }
        Ok(napi::Error::from(Unknown::from_raw_unchecked(env, err)))
    }
}
