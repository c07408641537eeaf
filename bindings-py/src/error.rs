//! The one exception hierarchy of the Python package, and the one place core errors become
//! Python exceptions (SPEC.md §9: every binding exposes the stable code as `.code`).

use std::cell::RefCell;

use isec_core::{Error, ErrorFamily};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;

create_exception!(
    isec,
    IsecError,
    PyException,
    "Base class of every isec error. `code` is the stable snake_case code (SPEC.md §9), `family` its family."
);
create_exception!(
    isec,
    AuthenticationError,
    IsecError,
    "Cryptographic verification failed: the data or the key is wrong, or was tampered with."
);
create_exception!(isec, IsecKeyError, IsecError, "The keyring lacks or refuses the key (or a KMS callback failed).");
create_exception!(
    isec,
    StreamError,
    IsecError,
    "The frame sequence is structurally wrong: order, truncation, extension, lengths."
);
create_exception!(isec, FormatError, IsecError, "Bytes that should be isec (or legacy) format are not.");
create_exception!(isec, UsageError, IsecError, "The API was used outside its contract (arguments, buffers, state).");

thread_local! {
    /// The Python exception an external key wrapper raised, kept until the core error it
    /// turned into (`external_wrapper_failed`) reaches [`to_py`], which chains it as the
    /// cause. Core errors are plain codes, so this is the only way to keep the original.
    static CALLBACK_ERROR: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Records the exception a Python callback raised (see [`CALLBACK_ERROR`]).
pub(crate) fn stash_callback_error(err: PyErr) {
    CALLBACK_ERROR.with(|c| *c.borrow_mut() = Some(err));
}

/// Forgets a stale callback exception before an operation that may call back.
pub(crate) fn clear_callback_error() {
    CALLBACK_ERROR.with(|c| c.borrow_mut().take());
}

/// The mapping: a core error becomes the exception class of its family, with `.code` and
/// `.family` set. Messages are core's own text.
pub(crate) fn to_py(e: Error) -> PyErr {
    to_py_with(e, e.to_string())
}

/// [`to_py`] with a detail in front of core's text.
pub(crate) fn detailed(e: Error, detail: &str) -> PyErr {
    to_py_with(e, format!("{detail}: {e}"))
}

/// [`to_py`] with another message.
fn to_py_with(e: Error, message: String) -> PyErr {
    Python::attach(|py| {
        let err = match e.family() {
            ErrorFamily::Authentication => AuthenticationError::new_err(message),
            ErrorFamily::Key => IsecKeyError::new_err(message),
            ErrorFamily::Stream => StreamError::new_err(message),
            ErrorFamily::Format => FormatError::new_err(message),
            ErrorFamily::Usage => UsageError::new_err(message),
        };
        let value = err.value(py);
        // Setting attributes on a fresh exception instance cannot fail in practice; if it
        // did, the exception would still carry its class and message.
        let _ = value.setattr("code", e.code());
        let _ = value.setattr("family", e.family().name());
        let cause = CALLBACK_ERROR.with(|c| c.borrow_mut().take());
        if e == Error::ExternalWrapperFailed {
            err.set_cause(py, cause);
        }
        err
    })
}

/// `?`-friendly conversion of core results.
pub(crate) trait OrRaise<T> {
    /// Maps the error through [`to_py`].
    fn or_raise(self) -> PyResult<T>;
}

impl<T> OrRaise<T> for Result<T, Error> {
    fn or_raise(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// Every error code with its family name, from core's own table.
#[pyfunction]
pub(crate) fn error_codes(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    for e in Error::ALL {
        d.set_item(e.code(), e.family().name())?;
    }
    Ok(d)
}

/// The exception this package raises for `code`, built by the same mapping as every other
/// error, for the Python layer's own failures (an S3 object that is not encrypted), so that
/// they carry core's code and family like the rest. `detail` goes in front of core's text.
/// An unknown code raises `invalid_parameter`.
#[pyfunction]
#[pyo3(signature = (code, detail=None))]
pub(crate) fn isec_error(py: Python<'_>, code: &str, detail: Option<&str>) -> PyResult<Py<PyAny>> {
    let Some(e) = Error::from_code(code) else {
        return Err(to_py_with(
            Error::InvalidParameter,
            format!("unknown error code {code:?}: {}", Error::InvalidParameter),
        ));
    };
    // A stale callback exception is no cause of an error the Python layer raises itself.
    clear_callback_error();
    let err = match detail {
        Some(d) => detailed(e, d),
        None => to_py(e),
    };
    Ok(err.into_value(py).into_any())
}

/// Registers the exception classes.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("IsecError", py.get_type::<IsecError>())?;
    m.add("AuthenticationError", py.get_type::<AuthenticationError>())?;
    m.add("IsecKeyError", py.get_type::<IsecKeyError>())?;
    m.add("StreamError", py.get_type::<StreamError>())?;
    m.add("FormatError", py.get_type::<FormatError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(isec_error, m)?)?;
    Ok(())
}
