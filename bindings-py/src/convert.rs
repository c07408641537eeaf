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

/// A value as the reprs of this module's classes spell it: Python's `True`/`False`/`None`,
/// numbers as they are, strings quoted.
pub(crate) trait Repr {
    fn repr(&self) -> String;
}

impl Repr for bool {
    fn repr(&self) -> String {
        (if *self { "True" } else { "False" }).to_string()
    }
}

macro_rules! repr_as {
    ($fmt:literal: $($t:ty),*) => {
        $(impl Repr for $t {
            fn repr(&self) -> String {
                format!($fmt, self)
            }
        })*
    };
}
repr_as!("{}": u8, u32, u64, usize);
repr_as!("{:?}": String, &str);

impl<T: Repr> Repr for Option<T> {
    fn repr(&self) -> String {
        self.as_ref().map_or_else(|| "None".to_string(), Repr::repr)
    }
}

/// Declares a frozen pyclass whose fields are all read-only attributes (a plain record,
/// mostly mirroring one of core's), with the repr `Name(field=value, ...)` over the fields
/// named in `repr(...)`, optionally `From` core's record of the same field names, and any
/// further methods in a trailing block. Written once because the package has a dozen such
/// records, and by hand each repeats the same class attributes, conversion and repr.
macro_rules! record {
    (
        $(#[$meta:meta])*
        $name:literal $ty:ident $([$flag:ident])? {
            $($(#[$fmeta:meta])* $field:ident: $fty:ty),* $(,)?
        }
        repr($($shown:ident),*) $(from($src:path))?
        $({ $($methods:tt)* })?
    ) => {
        $crate::convert::record!(@class [$($flag)?] $(#[$meta])* $name $ty { $($(#[$fmeta])* $field: $fty),* });
        $crate::convert::record!(@from [$($src)?] $ty { $($field),* });

        #[::pyo3::pymethods]
        impl $ty {
            fn __repr__(&self) -> String {
                let fields = [$(format!(concat!(stringify!($shown), "={}"), $crate::convert::Repr::repr(&self.$shown))),*];
                format!(concat!($name, "({})"), fields.join(", "))
            }
            $($($methods)*)?
        }
    };
    // `eq` is spelled in these two arms, not passed through: pyo3's generated comparison
    // must see one hygiene context.
    (@class [] $(#[$meta:meta])* $name:literal $ty:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[::pyo3::pyclass(module = "isec", name = $name, frozen, get_all)]
        pub(crate) struct $ty { $($body)* }
    };
    (@class [eq] $(#[$meta:meta])* $name:literal $ty:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[::pyo3::pyclass(module = "isec", name = $name, frozen, eq, get_all)]
        pub(crate) struct $ty { $($body)* }
    };
    (@from [] $ty:ident { $($field:ident),* }) => {};
    (@from [$src:path] $ty:ident { $($field:ident),* }) => {
        impl From<$src> for $ty {
            fn from(v: $src) -> Self {
                Self { $($field: v.$field),* }
            }
        }
    };
}
pub(crate) use record;

/// A `#[pymethods]` block that starts with read-only attributes, each one expression over
/// the object (`/// doc` then `name: Type = |s| expr;`), and goes on with the class's other
/// methods. Written once because most classes here expose a core value through a row of
/// one-line getters, which pyo3 otherwise needs five lines each for.
macro_rules! getters {
    ($ty:ty { $($(#[$doc:meta])* $name:ident: $rt:ty = |$s:ident| $e:expr;)* } $($methods:tt)*) => {
        #[::pyo3::pymethods]
        impl $ty {
            $($(#[$doc])*
            #[getter]
            fn $name(&self) -> $rt {
                let $s = self;
                $e
            })*
            $($methods)*
        }
    };
}
pub(crate) use getters;

/// Lower-case hex, for reprs and key-free identifiers.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Python's spelling of an optional value in reprs.
pub(crate) fn py_opt<T: std::fmt::Debug>(v: Option<T>) -> String {
    v.map_or_else(|| "None".to_string(), |x| format!("{x:?}"))
}
