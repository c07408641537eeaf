//! Small argument conversions shared by several modules.

use isec_core::Error;
use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::{Borrowed, FromPyObject};

use crate::error::detailed;

/// An integer argument. A Python int the Rust type cannot hold (negative, or too large) is
/// a wrong value like any other the API refuses, so it raises `invalid_parameter` (as the
/// Node and wasm packages answer -1) instead of the `OverflowError` of pyo3's conversion,
/// which has no code. Anything but an int still raises `TypeError`.
#[derive(Clone, Copy)]
pub(crate) struct Int<T>(pub(crate) T);

impl<'a, 'py, T> FromPyObject<'a, 'py> for Int<T>
where
    T: FromPyObject<'a, 'py>,
    T::Error: Into<PyErr>,
{
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        T::extract(obj).map(Int).map_err(|e| {
            let e: PyErr = e.into();
            if e.is_instance_of::<PyOverflowError>(py) {
                detailed(Error::InvalidParameter, "integer out of range")
            } else {
                e
            }
        })
    }
}

/// S3 user metadata as `(name, value)` pairs, from a mapping (`dict`, boto3's `Metadata`)
/// or an iterable of 2-tuples.
pub(crate) struct Pairs(pub(crate) Vec<(String, String)>);

impl Pairs {
    /// Borrowed `(&str, &str)` pairs, as core takes them.
    pub(crate) fn view(&self) -> Vec<(&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Pairs {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let obj = obj.to_owned();
        let items =
            if obj.is_instance_of::<PyDict>() || obj.hasattr("items")? { obj.call_method0("items")? } else { obj };
        let mut out = Vec::new();
        for item in items.try_iter()? {
            let (k, v): (String, String) = item?.extract()?;
            out.push((k, v));
        }
        Ok(Self(out))
    }
}

/// `True`/`False` for reprs.
pub(crate) fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// Lower-case hex, for reprs and key-free identifiers.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Python's spelling of an optional value in reprs.
pub(crate) fn py_opt<T: std::fmt::Debug>(v: Option<T>) -> String {
    v.map_or_else(|| "None".to_string(), |x| format!("{x:?}"))
}
