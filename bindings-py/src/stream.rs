//! Streaming and one-shot encryption and decryption (SPEC.md §5-7), and what every streaming
//! context of the package shares: `update` / `update_into` / `finalize` / `finalize_into`
//! over core's [`Stream`] contexts, with the GIL released on large inputs. A context locks
//! itself after any error and after its end (SPEC.md §5.3); the classes only ask it.

use isec_core::{AwsLc, Decryptor, Encryptor, Error, Prefix, SegmentTable, Stream, oneshot};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::buffers::{In, Out, SCRATCH_KEEP, detached_bytes, disjoint, maybe_detach, wipe};
use crate::convert::Int;
use crate::envelope::PyObjectKey;
use crate::error::{OrRaise, to_py};
use crate::layout::{PyRangePlan, PyShape};

/// A core streaming context as the classes drive it.
pub(crate) struct Context<C: Stream> {
    ctx: C,
    /// Whether `update_len` is exact (the encryptor): `update` then writes straight into the
    /// returned bytes.
    exact: bool,
    /// Output memory reused between `update` calls of contexts whose output length is only
    /// bounded: fresh memory costs page faults on every call.
    scratch: Vec<u8>,
}

impl<C: Stream + Send> Context<C> {
    pub(crate) fn new(ctx: C, exact: bool) -> Self {
        Self { ctx, exact, scratch: Vec::new() }
    }

    /// The live context, or `invalid_state` once it locked.
    pub(crate) fn ctx(&self) -> PyResult<&C> {
        if self.ctx.is_locked() { Err(to_py(Error::InvalidState)) } else { Ok(&self.ctx) }
    }

    pub(crate) fn is_locked(&self) -> bool {
        self.ctx.is_locked()
    }

    /// Runs `f` on the context; on an error the reused output memory is wiped.
    pub(crate) fn run<T>(&mut self, f: impl FnOnce(&mut C, &mut Vec<u8>) -> PyResult<T>) -> PyResult<T> {
        let r = f(&mut self.ctx, &mut self.scratch);
        if r.is_err() {
            self.scratch.fill(0);
        }
        if r.is_err() || self.ctx.is_locked() || self.scratch.len() > SCRATCH_KEEP {
            self.scratch = Vec::new();
        }
        r
    }

    pub(crate) fn update<'py>(&mut self, py: Python<'py>, data: &In) -> PyResult<Bound<'py, PyBytes>> {
        let input = data.as_slice();
        let exact = self.exact;
        self.run(|ctx, scratch| {
            let need = ctx.update_len(input.len());
            if exact {
                PyBytes::new_with(py, need, |out| {
                    let n = maybe_detach(py, input.len(), || ctx.update(input, out)).or_raise()?;
                    if n == need { Ok(()) } else { Err(to_py(Error::InvalidState)) }
                })
            } else {
                if scratch.len() < need {
                    scratch.resize(need, 0);
                }
                let out = &mut scratch[..need];
                let n = maybe_detach(py, input.len(), || ctx.update(input, out)).or_raise()?;
                Ok(PyBytes::new(py, &scratch[..n]))
            }
        })
    }

    pub(crate) fn update_into(&mut self, py: Python<'_>, data: &In, out: &mut Out) -> PyResult<usize> {
        self.run(|ctx, _| {
            let (input, out) = disjoint(data, out);
            let r = maybe_detach(py, input.len(), || ctx.update(&input, out));
            wipe(input);
            r.or_raise()
        })
    }

    pub(crate) fn finalize<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let out = self.run(|ctx, _| ctx.finish_vec().or_raise())?;
        Ok(PyBytes::new(py, &out))
    }

    pub(crate) fn finalize_into(&mut self, out: &mut Out) -> PyResult<usize> {
        self.run(|ctx, _| ctx.finish(out.as_mut_slice()).or_raise())
    }
}

/// The methods every streaming class has, and the class's own (`$extra`), in one
/// `#[pymethods]` block: pyo3 takes one per class.
macro_rules! stream_class {
    ($class:ty; decryptor; $($extra:tt)*) => {
        stream_class! { $class;
            /// Plaintext bytes released so far.
            #[getter]
            fn released(&self) -> PyResult<u64> {
                Ok(self.s.ctx()?.released())
            }

            /// Whether the final expected frame (or seal) has been verified.
            #[getter]
            fn is_done(&self) -> PyResult<bool> {
                Ok(self.s.ctx()?.is_done())
            }

            $($extra)*
        }
    };
    ($class:ty; $($extra:tt)*) => {
        #[pymethods]
        impl $class {
            /// Bytes `update` returns for `input_len` more bytes (exact for an encryptor,
            /// an upper bound for a decryptor).
            fn update_len(&self, input_len: Int<usize>) -> PyResult<usize> {
                Ok(self.s.ctx()?.update_len(input_len.0))
            }

            /// Bytes `finalize` returns (exact for an encryptor, an upper bound for a
            /// decryptor).
            fn finalize_len(&self) -> PyResult<usize> {
                Ok(self.s.ctx()?.finish_len())
            }

            /// Whether the context is finalized or failed.
            #[getter]
            fn locked(&self) -> bool {
                self.s.is_locked()
            }

            /// Processes `data`; returns the output it completed.
            fn update<'py>(&mut self, py: Python<'py>, data: In) -> PyResult<Bound<'py, PyBytes>> {
                self.s.update(py, &data)
            }

            /// `update` into `out` (at least `update_len(len(data))` bytes); returns the count.
            /// On error, the part of `out` this call wrote is wiped.
            fn update_into(&mut self, py: Python<'_>, data: In, mut out: Out) -> PyResult<usize> {
                self.s.update_into(py, &data, &mut out)
            }

            /// Ends the input; returns the last output.
            fn finalize<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
                self.s.finalize(py)
            }

            /// `finalize` into `out` (at least `finalize_len()` bytes); returns the count.
            fn finalize_into(&mut self, mut out: Out) -> PyResult<usize> {
                self.s.finalize_into(&mut out)
            }

            $($extra)*
        }
    };
}
pub(crate) use stream_class;

/// Streaming encryptor for a whole single-layout object (`Encryptor(key)`) or one part of a
/// parts- or table-layout object (`Encryptor.for_part(key, n, is_last)`).
///
/// `update` / `update_into` take any amount of plaintext and return the frames completed by
/// it; `finalize` / `finalize_into` write the final frame. After `finalize`, or after any
/// error, every call raises `UsageError` (`invalid_state`).
#[pyclass(module = "isec", name = "Encryptor")]
pub(crate) struct PyEncryptor {
    s: Context<Encryptor<AwsLc>>,
}

impl PyEncryptor {
    fn wrap(e: Encryptor<AwsLc>) -> Self {
        Self { s: Context::new(e, true) }
    }
}

stream_class! {
    PyEncryptor;
    #[new]
    fn new(key: &PyObjectKey) -> PyResult<Self> {
        Ok(Self::wrap(Encryptor::new(&key.inner).or_raise()?))
    }

    /// An encryptor for part `part_number` (1..=10000); `is_last` marks the object's last part.
    #[staticmethod]
    fn for_part(key: &PyObjectKey, part_number: Int<u32>, is_last: bool) -> PyResult<Self> {
        Ok(Self::wrap(Encryptor::for_part(&key.inner, part_number.0, is_last).or_raise()?))
    }

    /// Plaintext bytes taken so far.
    #[getter]
    fn consumed(&self) -> PyResult<u64> {
        Ok(self.s.ctx()?.consumed())
    }

    /// The 7-byte nonce prefix of this encryption (also the first 7 bytes of its output).
    /// A table-layout writer records it in the `SegmentTable` entry of the part, for the
    /// encryption it completed the upload with. Readable after `finalize`.
    #[getter]
    fn prefix<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let prefix: Prefix = self.s.ctx.prefix();
        PyBytes::new(py, prefix.as_bytes())
    }

    /// Seals one full, non-final frame in place, for callers that read plaintext straight
    /// into their output buffer: `frame` is exactly frame size + `FRAME_OVERHEAD` bytes,
    /// the plaintext after the first 12; the nonce and tag are written around it. Cannot be
    /// mixed with buffered `update` input.
    fn seal_frame_in_place(&mut self, py: Python<'_>, mut frame: Out) -> PyResult<()> {
        let f = frame.as_mut_slice();
        self.s.run(|ctx, _| maybe_detach(py, f.len(), || ctx.seal_frame_in_place(f)).or_raise())
    }

    /// Seals the final frame in place (`[12][0..=frame size plaintext][16]`) and ends the
    /// segment.
    fn finalize_in_place(&mut self, mut frame: Out) -> PyResult<()> {
        self.s.run(|ctx, _| ctx.finish_in_place(frame.as_mut_slice()).or_raise())
    }
}

/// Streaming decryptor. Releases a frame's plaintext only after its tag verified and its
/// nonce matched its position. `Decryptor(key)` reads a whole single- or parts-layout object
/// of unknown length; `with_shape`, `with_table` and `for_range` read objects whose shape is
/// known. `finalize` reports truncation. After any error every call raises `invalid_state`.
#[pyclass(module = "isec", name = "Decryptor")]
pub(crate) struct PyDecryptor {
    s: Context<Decryptor<AwsLc>>,
}

impl PyDecryptor {
    fn wrap(d: Result<Decryptor<AwsLc>, Error>) -> PyResult<Self> {
        Ok(Self { s: Context::new(d.or_raise()?, false) })
    }
}

stream_class! {
    PyDecryptor;
    decryptor;
    #[new]
    fn new(key: &PyObjectKey) -> PyResult<Self> {
        Self::wrap(Decryptor::new(&key.inner))
    }

    /// A decryptor for a whole object of known shape.
    #[staticmethod]
    fn with_shape(key: &PyObjectKey, shape: &PyShape) -> PyResult<Self> {
        Self::wrap(Decryptor::with_shape(&key.inner, shape.inner.clone()))
    }

    /// A decryptor for a whole table-layout object: its encoded segment table and length.
    #[staticmethod]
    fn with_table(key: &PyObjectKey, table: In, ciphertext_len: Int<u64>) -> PyResult<Self> {
        let t = SegmentTable::decode(table.as_slice(), &key.inner).or_raise()?;
        let shape = isec_core::Shape::from_table(key.inner.header(), t, ciphertext_len.0).or_raise()?;
        Self::wrap(Decryptor::with_shape(&key.inner, shape))
    }

    /// A decryptor for the ciphertext `[plan.ct_start, plan.ct_end)` that releases exactly
    /// the planned plaintext range.
    #[staticmethod]
    fn for_range(key: &PyObjectKey, shape: &PyShape, plan: &PyRangePlan) -> PyResult<Self> {
        Self::wrap(Decryptor::for_range(&key.inner, shape.inner.clone(), &plan.inner))
    }

    /// Opens the next whole frame in place (every frame is frame size + `FRAME_OVERHEAD`
    /// bytes except the object's last); returns the `(start, end)` of the verified plaintext
    /// to release within `frame`. Cannot be mixed with buffered `update` input. After the
    /// last frame, `finalize()` confirms the object is complete.
    fn open_frame_in_place(&mut self, py: Python<'_>, mut frame: Out) -> PyResult<(usize, usize)> {
        let f = frame.as_mut_slice();
        let r = self.s.run(|ctx, _| maybe_detach(py, f.len(), || ctx.open_frame_in_place(f)).or_raise())?;
        Ok((r.start, r.end))
    }
}

/// Encrypts a whole single- or parts-layout object.
#[pyfunction]
pub(crate) fn encrypt<'py>(py: Python<'py>, key: &PyObjectKey, data: In) -> PyResult<Bound<'py, PyBytes>> {
    let (k, input) = (&key.inner, data.as_slice());
    detached_bytes(py, input.len(), || oneshot::encrypt::<AwsLc>(k, input))
}

/// Decrypts a whole single- or parts-layout object: all or nothing.
#[pyfunction]
pub(crate) fn decrypt<'py>(py: Python<'py>, key: &PyObjectKey, data: In) -> PyResult<Bound<'py, PyBytes>> {
    let (k, input) = (&key.inner, data.as_slice());
    detached_bytes(py, input.len(), || oneshot::decrypt::<AwsLc>(k, input))
}

/// Encrypts one multipart part (parts or table layout) in one call.
#[pyfunction]
pub(crate) fn encrypt_part<'py>(
    py: Python<'py>,
    key: &PyObjectKey,
    part_number: Int<u32>,
    is_last: bool,
    data: In,
) -> PyResult<Bound<'py, PyBytes>> {
    let (k, n, input) = (&key.inner, part_number.0, data.as_slice());
    detached_bytes(py, input.len(), || oneshot::encrypt_part::<AwsLc>(k, n, is_last, input))
}

/// Decrypts a whole table-layout object with its encoded segment table: all or nothing.
#[pyfunction]
pub(crate) fn decrypt_with_table<'py>(
    py: Python<'py>,
    key: &PyObjectKey,
    table: In,
    data: In,
) -> PyResult<Bound<'py, PyBytes>> {
    let (k, t, input) = (&key.inner, table.as_slice(), data.as_slice());
    detached_bytes(py, input.len(), || oneshot::decrypt_with_table::<AwsLc>(k, t, input))
}

/// Decrypts the plaintext range `[start, end)` of an object of `shape`, fetching the
/// ciphertext it needs through `fetch(ct_start, ct_end) -> bytes` (called at most once, not
/// at all for an empty range). Exceptions `fetch` raises propagate unchanged.
#[pyfunction]
pub(crate) fn decrypt_range<'py>(
    py: Python<'py>,
    key: &PyObjectKey,
    shape: &PyShape,
    start: Int<u64>,
    end: Int<u64>,
    fetch: Py<PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let (start, end) = (start.0, end.0);
    let plan = shape.inner.map_range(start, end);
    let (k, shape) = (&key.inner, shape.inner.clone());
    // Fetched here, holding the GIL, then decrypted from the caller's buffer as it is: no
    // copy of the ciphertext, and the GIL is released for the decryption.
    let fetched =
        if plan.ct_end > plan.ct_start { Some(fetch.bind(py).call1((plan.ct_start, plan.ct_end))?) } else { None };
    let view = fetched.as_ref().map(In::get).transpose()?;
    let ct: &[u8] = view.as_ref().map_or(&[], In::as_slice);
    detached_bytes(py, ct.len(), || oneshot::decrypt_fetched::<AwsLc>(k, shape, start, end, ct))
}
