//! The error codes as data: the list core defines, and the error the JS layer throws for
//! its own failures, made by the same mapper as every other.

use isec_core::Error as CoreError;
use napi::Env;
use napi::bindgen_prelude::{ToNapiValue, Unknown};
use napi_derive::napi;

use crate::convert::Text;
use crate::error::{Failure, js_error, throw};

/// One error code and its family.
#[napi(object, object_from_js = false)]
pub struct ErrorCode {
    pub code: String,
    pub family: String,
}

/// Every error code core defines, with its family (SPEC.md §9).
#[napi]
pub fn error_codes() -> Vec<ErrorCode> {
    CoreError::ALL
        .iter()
        .map(|e| ErrorCode { code: e.code().to_string(), family: e.family().name().to_string() })
        .collect()
}

/// The error the binding throws for `code` (the same mapper as every other error), for
/// the JS layer's own failures (an external wrapper that rejected, a bad argument).
#[napi(ts_return_type = "Error")]
pub fn isec_error(
    env: Env,
    #[napi(ts_arg_type = "string")] code: Text,
    #[napi(ts_arg_type = "string")] message: Option<Text>,
) -> napi::Result<Unknown<'static>> {
    let failure = match (code.0.as_str(), CoreError::from_code(&code.0)) {
        ("ABORT_ERR", _) => Failure::Aborted,
        (_, Some(e)) => match message {
            Some(m) => Failure::Detail(e, m.0),
            None => Failure::Core(e),
        },
        (c, None) => {
            return Err(throw(&env, Failure::Detail(CoreError::InvalidParameter, format!("unknown code {c:?}"))));
        }
    };
    let err = js_error(env.raw(), &failure);
    // SAFETY: the value was just created on this env and is returned to JS at once.
    unsafe {
        let v = ToNapiValue::to_napi_value(env.raw(), err)?;
        Ok(Unknown::from_raw_unchecked(env.raw(), v))
    }
}
