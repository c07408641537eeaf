//! Borrowing Python buffers (bytes, bytearray, memoryview, array.array, numpy arrays, mmap...)
//! as Rust slices without copying, and releasing the GIL around long computations.
//!
//! This is the only module with `unsafe` code: a buffer-protocol export is a raw pointer
//! and a length, and turning it into a slice is what lets core read (and write) Python
//! memory in place.
//!
//! Soundness rests on three facts:
//! - An exported buffer stays valid and does not move until it is released (here: when
//!   [`In`] / [`Out`] drop). Exporters guarantee this; `bytearray` refuses to resize while
//!   exported.
//! - [`Out`] is only created from buffers that are writable and C-contiguous, and hands out
//!   its slice through `&mut self`; when an input and an output share memory, the input is
//!   copied before the output slice exists (see [`disjoint`]).
//! - Python code in *another thread* may still write to a buffer while the GIL is released
//!   around a computation on it. That is the same contract as `hashlib` or `cryptography`
//!   with the GIL released: the caller must not mutate a buffer it passed in while the call
//!   runs. The result is then garbage for that call, never memory unsafety in isec (core
//!   never reads a byte twice expecting it unchanged in a way that could index out of
//!   bounds: lengths come from the slice, not from its contents).
#![allow(unsafe_code)] // Needed to view buffer-protocol memory as slices; see the module docs.

use std::borrow::Cow;

use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::{Borrowed, FromPyObject};

use crate::error::OrRaise;

/// Inputs at least this long are processed with the GIL released, so other Python threads
/// run meanwhile. Below it, releasing and re-taking the GIL costs more than it frees.
pub(crate) const DETACH_THRESHOLD: usize = 64 * 1024;

/// Reused output memory above this size is given back after the call instead of kept.
pub(crate) const SCRATCH_KEEP: usize = 16 << 20;

/// Runs `f` with the GIL released when `len` is large enough to be worth it.
pub(crate) fn maybe_detach<T, F>(py: Python<'_>, len: usize, f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    if len >= DETACH_THRESHOLD { py.detach(f) } else { f() }
}

/// A one-shot function's body: `f` over an input of `len` bytes (with the GIL released
/// when it is large), its output returned as `bytes` and core's error raised.
pub(crate) fn detached_bytes<'py>(
    py: Python<'py>,
    len: usize,
    f: impl FnOnce() -> isec_core::Result<Vec<u8>> + Send,
) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &maybe_detach(py, len, f).or_raise()?))
}

/// A read-only, C-contiguous view of any buffer-protocol object. Non-contiguous views (a
/// strided numpy slice) are copied once into a bytes object; everything else is borrowed.
pub(crate) struct In {
    buf: PyUntypedBuffer,
}

impl In {
    /// Borrows `obj`'s buffer.
    pub(crate) fn get(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let buf = PyUntypedBuffer::get(obj).map_err(|e| {
            if e.is_instance_of::<PyTypeError>(obj.py()) {
                PyTypeError::new_err(format!(
                    "a bytes-like object is required, not '{}'",
                    obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                ))
            } else {
                e
            }
        })?;
        if buf.is_c_contiguous() {
            return Ok(Self { buf });
        }
        drop(buf);
        let copy = obj.py().import("builtins")?.getattr("memoryview")?.call1((obj,))?.call_method0("tobytes")?;
        Ok(Self { buf: PyUntypedBuffer::get(copy.cast::<PyBytes>()?.as_any())? })
    }

    /// The bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        let len = self.buf.len_bytes();
        if len == 0 {
            return &[];
        }
        // SAFETY: the export is C-contiguous (checked in `get`), spans `len_bytes` bytes
        // from `buf_ptr`, and stays valid while `self.buf` is held (module docs).
        unsafe { std::slice::from_raw_parts(self.buf.buf_ptr().cast::<u8>(), len) }
    }

    /// Number of bytes.
    pub(crate) fn len(&self) -> usize {
        self.buf.len_bytes()
    }

    fn range(&self) -> (usize, usize) {
        let start = self.buf.buf_ptr() as usize;
        (start, start + self.buf.len_bytes())
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for In {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Self::get(&obj.to_owned())
    }
}

/// A writable, C-contiguous buffer to write output into (`bytearray`, a writable
/// `memoryview`, a numpy array...).
pub(crate) struct Out {
    buf: PyUntypedBuffer,
}

impl Out {
    /// Number of bytes.
    pub(crate) fn len(&self) -> usize {
        self.buf.len_bytes()
    }

    fn range(&self) -> (usize, usize) {
        let start = self.buf.buf_ptr() as usize;
        (start, start + self.buf.len_bytes())
    }

    /// The writable bytes.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.buf.len_bytes();
        if len == 0 {
            return &mut [];
        }
        // SAFETY: the export is writable and C-contiguous (checked in `extract`), spans
        // `len_bytes` bytes from `buf_ptr`, stays valid while `self.buf` is held, and this
        // is the only slice handed out of it at a time (`&mut self`).
        unsafe { std::slice::from_raw_parts_mut(self.buf.buf_ptr().cast::<u8>(), len) }
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for Out {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let type_name = || obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        let buf = PyUntypedBuffer::get(&obj.to_owned()).map_err(|_| {
            PyTypeError::new_err(format!("a writable bytes-like object is required, not '{}'", type_name()))
        })?;
        if buf.readonly() {
            return Err(PyTypeError::new_err(format!(
                "a writable bytes-like object is required, not read-only '{}'",
                type_name()
            )));
        }
        if !buf.is_c_contiguous() {
            return Err(PyTypeError::new_err("the output buffer must be C-contiguous"));
        }
        Ok(Self { buf })
    }
}

/// The input as a slice that does not overlap `out`, and `out`'s slice: an input that shares
/// memory with the output (the same bytearray passed twice, or two views of one array) is
/// copied first, so core never sees aliased slices.
pub(crate) fn disjoint<'a>(input: &'a In, out: &'a mut Out) -> (Cow<'a, [u8]>, &'a mut [u8]) {
    let (a0, a1) = input.range();
    let (b0, b1) = out.range();
    let overlap = a0 < b1 && b0 < a1 && input.len() > 0 && out.len() > 0;
    let data = if overlap { Cow::Owned(input.as_slice().to_vec()) } else { Cow::Borrowed(input.as_slice()) };
    (data, out.as_mut_slice())
}

/// Zeroes the private copy [`disjoint`] made of an aliased input (it may be plaintext).
pub(crate) fn wipe(input: Cow<'_, [u8]>) {
    if let Cow::Owned(mut v) = input {
        v.fill(0);
        std::hint::black_box(&v);
    }
}
